//! The commands the window may call: each a few lines over the engine.

use crate::error::CmdError;
use crate::settings::{self, Settings};
use crate::state::{AppState, RunningJob};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager, State};
use tdp_engine::credentials::{self, DEFAULT_TIMEOUT};
use tdp_engine::input::{Entry, ParsedIds};
use tdp_engine::net::connect::{Connector, NetworkSettings};
use tdp_engine::tdp::client::{api_host, normalise_base_url, TdpClient, TdpError};
use tdp_engine::{
    ErrorKind, EventSender, JobConfig, JobControl, JobError, JobFiles, Layout, Search, Token,
};

type Result<T> = std::result::Result<T, CmdError>;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    version: &'static str,
    demo_requested: bool,
    downloads_dir: Option<String>,
    defaults: Defaults,
}

/// The engine's defaults the form starts from.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Defaults {
    concurrency: usize,
    max_concurrency: usize,
}

#[tauri::command]
pub fn app_info(app: AppHandle, state: State<'_, AppState>) -> AppInfo {
    AppInfo {
        version: env!("CARGO_PKG_VERSION"),
        defaults: Defaults {
            concurrency: JobConfig::DEFAULT_CONCURRENCY,
            max_concurrency: JobConfig::MAX_CONCURRENCY,
        },
        demo_requested: state.demo_requested,
        downloads_dir: app
            .path()
            .download_dir()
            .ok()
            .map(|p| p.to_string_lossy().into_owned()),
    }
}

pub(crate) fn settings_file(app: &AppHandle) -> Result<PathBuf> {
    app.path()
        .app_config_dir()
        .map(settings::path)
        .map_err(|e| CmdError::new(ErrorKind::Internal, format!("no config folder: {e}")))
}

#[tauri::command]
pub fn load_settings(app: AppHandle) -> Result<Settings> {
    Ok(settings::load(&settings_file(&app)?))
}

#[tauri::command]
pub fn save_settings(app: AppHandle, settings: Settings) -> Result<()> {
    settings::save(&settings_file(&app)?, &settings).map_err(|e| {
        CmdError::new(
            ErrorKind::Internal,
            format!("could not save the settings: {e}"),
        )
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvalidLine {
    line: usize,
    input: String,
    reason: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IdCheck {
    valid: usize,
    invalid: usize,
    duplicates: usize,
    /// The first invalid lines (at most 100).
    invalid_lines: Vec<InvalidLine>,
}

fn check_ids(parsed: &ParsedIds) -> IdCheck {
    let c = parsed.counts();
    let invalid_lines = parsed
        .invalid_sample()
        .iter()
        .filter_map(|l| match &l.entry {
            Entry::Invalid { reason } => Some(InvalidLine {
                line: l.line,
                input: l.input.clone(),
                reason: reason.clone(),
            }),
            _ => None,
        })
        .collect();
    IdCheck {
        valid: c.valid,
        invalid: c.invalid,
        duplicates: c.duplicates,
        invalid_lines,
    }
}

/// Async, so it runs off the main thread: a large pasted or imported list never freezes the
/// window.
#[tauri::command]
pub async fn validate_ids(text: String) -> Result<IdCheck> {
    tauri::async_runtime::spawn_blocking(move || check_ids(&tdp_engine::input::parse_text(text)))
        .await
        .map_err(|e| CmdError::new(ErrorKind::Internal, e.to_string()))
}

/// Reads a .txt or .csv of IDs that the user picked in the file dialog.
#[tauri::command]
pub async fn read_id_file(path: String) -> Result<String> {
    let meta = tokio::fs::metadata(&path)
        .await
        .map_err(|e| CmdError::new(ErrorKind::Input, format!("cannot read {path}: {e}")))?;
    if meta.len() > 64 << 20 {
        return Err(CmdError::new(
            ErrorKind::Input,
            format!("{path} is larger than 64 MiB; is it a list of IDs?"),
        ));
    }
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| CmdError::new(ErrorKind::Input, format!("cannot read {path}: {e}")))?;
    tdp_engine::input::decode_text(bytes, &path).map_err(|e| CmdError::new(ErrorKind::Input, e))
}

fn account_for(base_url: &str, org: &str) -> Result<String> {
    let base = normalise_base_url(base_url)?;
    if org.trim().is_empty() {
        return Err(CmdError::new(ErrorKind::Config, "enter the org slug"));
    }
    Ok(credentials::account(org, &api_host(&base)))
}

/// Keychain calls block (a locked keychain may wait for a prompt): off the async runtime.
async fn keychain<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, credentials::KeychainError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| CmdError::new(ErrorKind::Internal, e.to_string()))?
        .map_err(CmdError::from)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialsStatus {
    /// A token is saved in the keychain for this org and host.
    saved: bool,
    /// A token was typed for this session only.
    session: bool,
    keychain_available: bool,
    message: Option<String>,
}

#[tauri::command]
pub async fn credentials_status(
    state: State<'_, AppState>,
    base_url: String,
    org: String,
) -> Result<CredentialsStatus> {
    let account = account_for(&base_url, &org)?;
    let session = state.session_token(&account).is_some();
    let acc = account.clone();
    match keychain(move || credentials::load(&acc, DEFAULT_TIMEOUT)).await {
        Ok(t) => Ok(CredentialsStatus {
            saved: t.is_some(),
            session,
            keychain_available: true,
            message: None,
        }),
        Err(e) => Ok(CredentialsStatus {
            saved: false,
            session,
            keychain_available: false,
            message: Some(e.message),
        }),
    }
}

/// Keeps the token for this session, and in the keychain when `remember` is set.
#[tauri::command]
pub async fn save_token(
    state: State<'_, AppState>,
    base_url: String,
    org: String,
    token: String,
    remember: bool,
) -> Result<()> {
    let account = account_for(&base_url, &org)?;
    let token = Token::new(token);
    if token.is_empty() {
        return Err(CmdError::new(ErrorKind::Input, "enter the auth token"));
    }
    token.check()?;
    state.remember_for_session(&account, token.clone());
    if remember {
        keychain(move || credentials::save(&account, token.expose(), DEFAULT_TIMEOUT)).await?;
    }
    Ok(())
}

#[tauri::command]
pub async fn forget_token(state: State<'_, AppState>, base_url: String, org: String) -> Result<()> {
    let account = account_for(&base_url, &org)?;
    state.forget_session_token(&account);
    keychain(move || credentials::forget(&account, DEFAULT_TIMEOUT)).await
}

/// The token for a job: typed this session, else saved in the keychain.
pub(crate) async fn token_for(state: &AppState, base_url: &str, org: &str) -> Result<Token> {
    let account = account_for(base_url, org)?;
    if let Some(t) = state.session_token(&account) {
        return Ok(t);
    }
    let acc = account.clone();
    match keychain(move || credentials::load(&acc, DEFAULT_TIMEOUT)).await? {
        Some(t) => Ok(Token::new(t)),
        None => Err(CmdError::new(
            ErrorKind::Auth,
            "no auth token: enter one (and tick \"Remember in keychain\" to keep it)",
        )),
    }
}

/// The form's network settings: an extra CA file and an explicit proxy.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkRequest {
    ca_cert: String,
    proxy: String,
}

/// The settings for the engine; the proxy's password comes from the keychain.
async fn network_settings(n: &NetworkRequest) -> Result<NetworkSettings> {
    let proxy = Some(n.proxy.trim().to_string()).filter(|p| !p.is_empty());
    let proxy_password = proxy_password(proxy.as_deref()).await?;
    let ca_cert = n.ca_cert.trim();
    Ok(NetworkSettings {
        ca_certs: if ca_cert.is_empty() {
            Vec::new()
        } else {
            vec![PathBuf::from(ca_cert)]
        },
        proxy,
        proxy_password,
    })
}

/// The password of a proxy given as `USER@HOST`, from the keychain.
pub(crate) async fn proxy_password(proxy: Option<&str>) -> Result<Option<Token>> {
    match proxy {
        Some(p) if p.contains('@') => {
            let account = credentials::proxy_account(p);
            Ok(
                keychain(move || credentials::load(&account, DEFAULT_TIMEOUT))
                    .await?
                    .map(Token::new),
            )
        }
        _ => Ok(None),
    }
}

/// Keeps a proxy's password in the keychain (an empty one removes it).
#[tauri::command]
pub async fn save_proxy_password(proxy: String, password: String) -> Result<()> {
    let account = credentials::proxy_account(&proxy);
    if password.is_empty() {
        keychain(move || credentials::forget(&account, DEFAULT_TIMEOUT)).await
    } else {
        keychain(move || credentials::save(&account, &password, DEFAULT_TIMEOUT)).await
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionCheck {
    message: String,
}

/// Asks TDP for a file that does not exist: "not found" means the token and org work.
async fn try_token(
    base_url: &str,
    org: &str,
    token: Token,
    settings: &NetworkSettings,
) -> Result<ConnectionCheck> {
    let lifetime = token
        .lifetime_text(std::time::SystemTime::now())
        .map(|t| format!(" (the token {t})"))
        .unwrap_or_default();
    let connector = Connector::new(settings).map_err(JobError::from)?;
    let client = TdpClient::new(
        base_url,
        org,
        token,
        &connector,
        Duration::from_secs(10),
        Duration::from_secs(20),
    )?;
    let probe = uuid::Uuid::new_v4().to_string();
    match client.presigned_url(&probe).await {
        Err(TdpError::NotFound(_)) | Ok(_) => Ok(ConnectionCheck {
            message: format!(
                "Connected: the token works for org {}{lifetime}",
                org.trim()
            ),
        }),
        // TDP answers 403 for a token of another org: the job's own words say so.
        Err(TdpError::Forbidden(m)) => Err(JobError::Forbidden(m).into()),
        Err(e) => Err(e.into()),
    }
}

#[tauri::command]
pub async fn check_connection(
    state: State<'_, AppState>,
    base_url: String,
    org: String,
    network: Option<NetworkRequest>,
) -> Result<ConnectionCheck> {
    let token = token_for(&state, &base_url, &org).await?;
    let settings = network_settings(&network.unwrap_or_default()).await?;
    try_token(&base_url, &org, token, &settings).await
}

/// A new token for a job that waits for one: checked with TDP first, kept for the session
/// (and in the keychain when `remember` is set), then the same job goes on with it.
#[tauri::command]
pub async fn renew_token(
    state: State<'_, AppState>,
    job: u64,
    token: String,
    remember: bool,
) -> Result<ConnectionCheck> {
    let Some(running) = state.job(job) else {
        return Err(CmdError::new(
            ErrorKind::Internal,
            "this download has ended",
        ));
    };
    let token = Token::new(token);
    if token.is_empty() {
        return Err(CmdError::new(ErrorKind::Input, "enter the new auth token"));
    }
    token.check()?;
    let checked = try_token(
        &running.base_url,
        &running.org,
        token.clone(),
        &running.network,
    )
    .await?;
    let account = account_for(&running.base_url, &running.org)?;
    state.remember_for_session(&account, token.clone());
    if remember {
        let t = token.clone();
        keychain(move || credentials::save(&account, t.expose(), DEFAULT_TIMEOUT)).await?;
    }
    running.control.renew_token(token);
    Ok(checked)
}

/// One line of the connection doctor.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DiagnosisLine {
    ok: bool,
    what: String,
    fix: Option<String>,
}

/// The connection doctor, layer by layer; with the first valid ID of the Files box, its
/// storage too (one byte).
#[tauri::command]
pub async fn diagnose_connection(
    state: State<'_, AppState>,
    base_url: String,
    org: String,
    network: Option<NetworkRequest>,
    ids: Option<String>,
) -> Result<Vec<DiagnosisLine>> {
    let token = token_for(&state, &base_url, &org).await?;
    let settings = network_settings(&network.unwrap_or_default()).await?;
    let first_id = ids
        .as_deref()
        .map(tdp_engine::parse_ids)
        .and_then(|p| p.ids().first().cloned());
    let checks = tdp_engine::session::doctor::diagnose(
        &base_url,
        &org,
        token,
        first_id.as_deref(),
        &settings,
    )
    .await;
    Ok(checks
        .into_iter()
        .map(|c| DiagnosisLine {
            ok: c.ok,
            what: c.what,
            fix: c.fix,
        })
        .collect())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartRequest {
    base_url: String,
    org: String,
    ids: String,
    dest: String,
    layout: String,
    concurrency: Option<usize>,
    #[serde(default)]
    network: NetworkRequest,
    #[serde(default)]
    allow_sleep: bool,
    /// MB/s over all connections; none or 0: no limit.
    #[serde(default)]
    limit_mbps: Option<f64>,
    /// The files of a search instead of `ids`.
    #[serde(default)]
    search: Option<SearchRequest>,
}

/// A search as the window gives it: fileinfo parameters in URL-query form, or an EQL body.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SearchRequest {
    #[serde(default)]
    query: String,
    #[serde(default)]
    eql: String,
    #[serde(default)]
    include_outdated: bool,
}

impl SearchRequest {
    fn search(&self) -> Result<Search> {
        let parsed = if self.eql.trim().is_empty() {
            Search::parse_query(&self.query)
        } else {
            Search::parse_eql(&self.eql)
        };
        parsed.map_err(|e| CmdError::new(e.kind(), e.to_string()))
    }
}

/// What the preview of a search asks for.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewRequest {
    base_url: String,
    org: String,
    dest: String,
    search: SearchRequest,
    #[serde(default)]
    network: NetworkRequest,
}

/// A preview, with the line the window shows.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewAnswer {
    #[serde(flatten)]
    preview: tdp_engine::session::preview::Preview,
    line: String,
}

/// Pages through a search and says what it would download, downloading nothing.
#[tauri::command]
pub async fn preview_search(
    state: State<'_, AppState>,
    request: PreviewRequest,
) -> Result<PreviewAnswer> {
    let search = request.search.search()?;
    let token = token_for(&state, &request.base_url, &request.org).await?;
    let mut cfg = JobConfig::new(
        &request.base_url,
        &request.org,
        std::path::Path::new(request.dest.trim()),
    );
    cfg.include_outdated = request.search.include_outdated;
    cfg.network = network_settings(&request.network).await?;
    let preview = tdp_engine::session::preview::preview(&cfg, token, &search, |_| {})
        .await
        .map_err(|e| CmdError::new(e.kind(), e.to_string()))?;
    let line = preview.line();
    Ok(PreviewAnswer { preview, line })
}

/// A job that started: its number, and its files (valid IDs, each once, in input order) so
/// the window lists every one from the start.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StartedJob {
    pub(crate) job: u64,
    pub(crate) ids: Vec<String>,
}

#[tauri::command]
pub async fn start_job(
    app: AppHandle,
    state: State<'_, AppState>,
    request: StartRequest,
    on_event: Channel<crate::forward::Batch>,
) -> Result<StartedJob> {
    if request.dest.trim().is_empty() {
        return Err(CmdError::new(
            ErrorKind::Destination,
            "no folder is chosen yet: type its path or press \"Choose folder…\"",
        ));
    }
    let source = match &request.search {
        Some(search) => JobFiles::Search(search.search()?),
        None => {
            let parsed = tdp_engine::parse_ids(&request.ids);
            if parsed.counts().valid == 0 {
                return Err(CmdError::new(
                    ErrorKind::Input,
                    "there is no valid file ID to download",
                ));
            }
            JobFiles::Ids(parsed)
        }
    };
    let token = token_for(&state, &request.base_url, &request.org).await?;
    let mut cfg = JobConfig::new(
        &request.base_url,
        &request.org,
        std::path::Path::new(request.dest.trim()),
    );
    cfg.layout = if request.layout == "mirror" {
        Layout::Mirror
    } else {
        Layout::Flat
    };
    if let Some(c) = request
        .concurrency
        .filter(|c| (1..=JobConfig::MAX_CONCURRENCY).contains(c))
    {
        cfg.concurrency = c;
    }
    cfg.network = network_settings(&request.network).await?;
    cfg.limit_rate = rate_of(request.limit_mbps);
    cfg.include_outdated = request.search.as_ref().is_some_and(|s| s.include_outdated);
    launch(
        &app,
        &state,
        cfg,
        source,
        token,
        request.allow_sleep,
        on_event,
    )
}

/// Runs a job for the window: it may be paused, given a new token, limited; its events go
/// to `on_event`; its folder joins the Jobs view.
pub(crate) fn launch(
    app: &AppHandle,
    state: &AppState,
    mut cfg: JobConfig,
    source: JobFiles,
    token: Token,
    allow_sleep: bool,
    on_event: Channel<crate::forward::Batch>,
) -> Result<StartedJob> {
    if state.any_job_running() {
        return Err(CmdError::new(
            ErrorKind::Busy,
            "a download is already running",
        ));
    }
    // The window asks for a new token when TDP rejects this one, and the job goes on.
    cfg.wait_for_new_token = true;
    // Whether the computer may sleep is the user's choice, changeable while the job runs.
    cfg.keep_awake = true;
    let account = account_for(&cfg.base_url, &cfg.org)?;
    let control = JobControl::default();
    control.allow_sleep(allow_sleep);
    let id = state.add_job(RunningJob {
        control: control.clone(),
        base_url: cfg.base_url.clone(),
        org: cfg.org.clone(),
        network: cfg.network.clone(),
    });
    crate::jobs::remember(app, &cfg.dest);
    // A token that will not last the job: said before it starts (the job then waits for a
    // new one). The rate is this folder's last job's, else the app's last job's.
    let settings_path = settings_file(app).ok();
    let last_rate = || {
        tdp_engine::session::expiry::rate_of_report(&cfg.report_path())
            .or_else(|| settings_path.as_deref().and_then(settings::load_rate))
    };
    if let Some(w) =
        tdp_engine::session::expiry::warning(&token, source.known(), last_rate, SystemTime::now())
    {
        let _ = on_event.send(vec![serde_json::json!({
            "type": "warning",
            "message": format!("{w}: when it runs out, the download waits here for a new one"),
        })]);
    }
    let (tx, rx) = EventSender::channel();
    let forwarder =
        tauri::async_runtime::spawn(crate::forward::forward(rx, on_event.clone(), app.clone()));
    // A search's files come with its pages (filesFound events).
    let ids = source.ids().to_vec();
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        let result = tdp_engine::run_job(cfg, token, &source, tx, control).await;
        let _ = forwarder.await;
        let state = app.state::<AppState>();
        match result {
            Err(e) => {
                let _ = on_event.send(vec![serde_json::json!({
                    "type": "jobError",
                    "kind": e.kind(),
                    "message": e.to_string(),
                })]);
            }
            // A token TDP rejected is not kept for the session.
            Ok(r) if r.fatal.as_ref().map(JobError::kind) == Some(ErrorKind::Auth) => {
                state.forget_session_token(&account);
            }
            Ok(r) => {
                if let Some(p) = &settings_path {
                    settings::save_rate(p, &r.summary);
                }
            }
        }
        state.end_job(id);
    });
    Ok(StartedJob { job: id, ids })
}

/// Writes the failed IDs of the job beside its report, as a list the app and the CLI take.
#[tauri::command]
pub async fn export_failed(dest: String, ids: Vec<String>) -> Result<String> {
    let dest = PathBuf::from(dest.trim());
    tokio::task::spawn_blocking(move || tdp_engine::job::report::write_failed_list(&dest, &ids))
        .await
        .map_err(|e| CmdError::new(ErrorKind::Internal, e.to_string()))?
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|e| {
            CmdError::new(
                ErrorKind::Destination,
                format!("could not write the list of failed IDs: {e}"),
            )
        })
}

#[tauri::command]
pub fn cancel_job(state: State<'_, AppState>, job: u64) -> bool {
    state.cancel_job(job)
}

/// MB/s as the window gives it, in bytes per second; none for no limit.
fn rate_of(mbps: Option<f64>) -> Option<u64> {
    mbps.filter(|r| r.is_finite() && *r > 0.0)
        .map(|r| (r * 1e6).max(1000.0) as u64)
}

/// Changes a running job's speed limit (MB/s; none or 0 lifts it); false when it has ended.
#[tauri::command]
pub fn set_rate_limit(state: State<'_, AppState>, job: u64, limit_mbps: Option<f64>) -> bool {
    match state.job(job) {
        Some(j) => {
            j.control.set_rate_limit(rate_of(limit_mbps));
            true
        }
        None => false,
    }
}

/// Lets the computer sleep during a running job, or keeps it awake; false when it has ended.
#[tauri::command]
pub fn set_allow_sleep(state: State<'_, AppState>, job: u64, allowed: bool) -> bool {
    state
        .job(job)
        .map(|j| j.control.allow_sleep(allowed))
        .is_some()
}

/// Pauses (`paused` set) or resumes a running job; false when it has ended.
#[tauri::command]
pub fn pause_job(state: State<'_, AppState>, job: u64, paused: bool) -> bool {
    match state.job(job) {
        Some(j) if paused => j.control.pause(),
        Some(j) => j.control.resume(),
        None => return false,
    }
    true
}

#[tauri::command]
pub fn open_folder(app: AppHandle, path: String) -> Result<()> {
    use tauri_plugin_opener::OpenerExt;
    app.opener()
        .open_path(path.clone(), None::<&str>)
        .map_err(|e| CmdError::new(ErrorKind::Internal, format!("could not open {path}: {e}")))
}

/// Shows a downloaded file in the system's file manager. `path` is the file's name below
/// `dest` as the job reported it; only names inside `dest` are shown.
#[tauri::command]
pub fn show_in_folder(app: AppHandle, dest: String, path: String) -> Result<()> {
    use tauri_plugin_opener::OpenerExt;
    if path
        .split('/')
        .any(|p| p.is_empty() || p == "." || p == "..")
    {
        return Err(CmdError::new(
            ErrorKind::Input,
            format!("not a file of this download: {path}"),
        ));
    }
    let file = tdp_engine::store::state::join_rel(std::path::Path::new(dest.trim()), &path);
    // Explorer stops at 260 characters: a longer path is shown by its short form, or its
    // nearest folder that fits is opened.
    #[cfg(windows)]
    let file = match tdp_engine::store::windows_fs::shell_path(&file) {
        (p, true) => p,
        (folder, false) => {
            return app
                .opener()
                .open_path(folder.to_string_lossy(), None::<&str>)
                .map_err(|e| {
                    CmdError::new(
                        ErrorKind::Internal,
                        format!("could not open {}: {e}", folder.display()),
                    )
                })
        }
    };
    app.opener().reveal_item_in_dir(&file).map_err(|e| {
        CmdError::new(
            ErrorKind::Internal,
            format!("could not show {}: {e}", file.display()),
        )
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoInfo {
    base_url: String,
    org: String,
    ids: String,
    dest: String,
}

/// Starts the built-in simulator (once) and says what to fill in. Its token is kept for this
/// session only, never in the keychain.
#[tauri::command]
pub async fn start_demo(app: AppHandle, state: State<'_, AppState>) -> Result<DemoInfo> {
    let mut demo = state.demo.lock().await;
    if demo.is_none() {
        let d = crate::demo::start().await.map_err(|e| {
            CmdError::new(
                ErrorKind::Internal,
                format!("could not start the demo: {e}"),
            )
        })?;
        *demo = Some(d);
    }
    let Some(d) = demo.as_ref() else {
        return Err(CmdError::new(ErrorKind::Internal, "the demo did not start"));
    };
    let account = account_for(&d.sim.base_url(), d.sim.org())?;
    state.remember_for_session(&account, Token::new(d.sim.token()));
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let base = app
        .path()
        .download_dir()
        .or_else(|_| app.path().home_dir())
        .unwrap_or_else(|_| std::env::temp_dir());
    Ok(DemoInfo {
        base_url: d.sim.base_url(),
        org: d.sim.org().to_string(),
        ids: d.ids.clone(),
        dest: base
            .join(format!("TDP demo {stamp}"))
            .to_string_lossy()
            .into_owned(),
    })
}
