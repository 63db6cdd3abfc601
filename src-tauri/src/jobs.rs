//! The Jobs view: the folders the app's jobs used (or that the user added, such as a CLI
//! job's), each shown from what is on disk in it (`folder_status`), never from memory. The
//! list of folders is kept beside the settings.

use crate::commands::form::settings_file;
use crate::commands::job::{launch, StartedJob};
use crate::commands::secrets::{proxy_password, token_for};
use crate::error::CmdError;
use crate::state::AppState;
use std::path::{Path, PathBuf};
use tauri::ipc::Channel;
use tauri::{AppHandle, State};
use tdp_engine::job::manifest::Manifest;
use tdp_engine::session::folder_status::{self, FolderStatus};
use tdp_engine::ErrorKind;

type Result<T> = std::result::Result<T, CmdError>;

/// The most folders the view keeps.
const KEEP: usize = 50;

fn list_file(app: &AppHandle) -> Option<PathBuf> {
    settings_file(app)
        .ok()
        .map(|p| p.with_file_name("job-folders.json"))
}

fn load(app: &AppHandle) -> Vec<String> {
    list_file(app)
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save(app: &AppHandle, folders: &[String]) {
    let Some(file) = list_file(app) else { return };
    if let Some(dir) = file.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let tmp = file.with_extension("json.tmp");
    if let Ok(bytes) = serde_json::to_vec_pretty(folders) {
        if std::fs::write(&tmp, bytes).is_ok() {
            let _ = std::fs::rename(tmp, file);
        }
    }
}

/// Puts a job's folder first in the view.
pub fn remember(app: &AppHandle, dest: &Path) {
    let dest = dest.to_string_lossy().into_owned();
    let mut folders = load(app);
    folders.retain(|f| *f != dest);
    folders.insert(0, dest);
    folders.truncate(KEEP);
    save(app, &folders);
}

/// Every remembered folder that still holds a job, as its files say now.
#[tauri::command]
pub async fn list_jobs(app: AppHandle) -> Vec<FolderStatus> {
    let folders = load(&app);
    tauri::async_runtime::spawn_blocking(move || {
        folders
            .iter()
            .filter_map(|f| folder_status::read(Path::new(f)).ok())
            .collect()
    })
    .await
    .unwrap_or_default()
}

/// Reads what a folder says of its job, off the async runtime; a folder without a job is
/// the user's input to fix.
async fn read_folder<T: Send + 'static>(
    dest: &Path,
    read: fn(&Path) -> std::result::Result<T, tdp_engine::job::manifest::ManifestError>,
) -> Result<T> {
    let dest = dest.to_path_buf();
    tauri::async_runtime::spawn_blocking(move || read(&dest))
        .await
        .map_err(|e| CmdError::new(ErrorKind::Internal, e.to_string()))?
        .map_err(|e| CmdError::new(ErrorKind::Input, e.to_string()))
}

/// Adds a folder a job used (the app's or the CLI's) to the view.
#[tauri::command]
pub async fn add_job_folder(app: AppHandle, path: String) -> Result<FolderStatus> {
    let dest = PathBuf::from(path.trim());
    let status = read_folder(&dest, folder_status::read).await?;
    remember(&app, &dest);
    Ok(status)
}

/// Takes a folder out of the view; its files stay.
#[tauri::command]
pub fn forget_job(app: AppHandle, path: String) {
    let mut folders = load(&app);
    folders.retain(|f| *f != path);
    save(&app, &folders);
}

/// Runs the job of a folder again, as its manifest says: it goes on where it stopped.
#[tauri::command]
pub async fn resume_job(
    app: AppHandle,
    state: State<'_, AppState>,
    path: String,
    on_event: Channel<crate::forward::Batch>,
) -> Result<StartedJob> {
    let dest = PathBuf::from(path.trim());
    let manifest = read_folder(&dest, Manifest::read).await?;
    let token = token_for(&state, &manifest.base_url, &manifest.org).await?;
    let mut cfg = manifest.config(&dest);
    cfg.network.proxy_password = proxy_password(cfg.network.proxy.as_deref()).await?;
    let allow_sleep = settings_file(&app)
        .map(|f| crate::settings::load(&f).allow_sleep)
        .unwrap_or(false);
    launch(
        &app,
        &state,
        cfg,
        manifest.files(),
        token,
        allow_sleep,
        on_event,
    )
}
