//! The built-in demo: the simulator started once, and what to fill in.

use super::secrets::account_for;
use super::Result;
use crate::error::CmdError;
use crate::state::AppState;
use serde::Serialize;
use tauri::{AppHandle, Manager, State};
use tdp_engine::{ErrorKind, Token};

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
