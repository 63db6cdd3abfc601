//! A download: previewed, started, paused, limited, cancelled, and its failed IDs exported.

use super::connection::{network_settings, NetworkRequest};
use super::form::settings_file;
use super::secrets::{account_for, token_for};
use super::Result;
use crate::error::CmdError;
use crate::forward::{AppEvent, WireEvent};
use crate::settings::{self};
use crate::state::{AppState, RunningJob};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::time::SystemTime;
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager, State};
use tdp_engine::Event;
use tdp_engine::{
    ErrorKind, EventSender, JobConfig, JobControl, JobError, JobFiles, Layout, Search, Token,
};

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
        let _ = on_event.send(vec![WireEvent::Engine(Event::Warning {
            message: format!("{w}: when it runs out, the download waits here for a new one"),
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
                let _ = on_event.send(vec![WireEvent::App(AppEvent::JobError {
                    kind: e.kind(),
                    message: e.to_string(),
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
pub(crate) fn rate_of(mbps: Option<f64>) -> Option<u64> {
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
