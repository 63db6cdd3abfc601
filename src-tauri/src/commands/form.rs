//! The form's commands: what the app is, its saved settings, the IDs typed or read from a file.

use super::Result;
use crate::error::CmdError;
use crate::settings::{self, Settings};
use crate::state::AppState;
use serde::Serialize;
use std::path::PathBuf;
use tauri::{AppHandle, Manager, State};
use tdp_engine::input::{Entry, ParsedIds};
use tdp_engine::{ErrorKind, JobConfig};

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

pub(crate) fn check_ids(parsed: &ParsedIds) -> IdCheck {
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
