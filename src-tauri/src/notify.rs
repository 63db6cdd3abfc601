//! Telling a user who is looking elsewhere that a job ended or needs them: a desktop
//! notification when the window is not focused. On Linux it goes to the session's
//! notification service (org.freedesktop.Notifications) over D-Bus; elsewhere none is sent
//! yet (the window's title carries the progress).

use tauri::{AppHandle, Manager};

/// Set in tests: the window counts as not focused whatever the window manager says.
const ASSUME_UNFOCUSED: &str = "TDP_ASSUME_UNFOCUSED";

fn window_focused(app: &AppHandle) -> bool {
    if std::env::var_os(ASSUME_UNFOCUSED).is_some() {
        return false;
    }
    app.get_webview_window("main")
        .and_then(|w| w.is_focused().ok())
        .unwrap_or(false)
}

/// Sends a notification unless the window has the focus; a failure is logged, never shown.
pub fn when_away(app: &AppHandle, summary: String, body: String) {
    if window_focused(app) {
        return;
    }
    tauri::async_runtime::spawn_blocking(move || {
        if let Err(e) = send(&summary, &body) {
            tracing::info!("no desktop notification: {e}");
        }
    });
}

#[cfg(target_os = "linux")]
fn send(summary: &str, body: &str) -> Result<(), String> {
    use dbus::arg::{PropMap, Variant};
    use std::time::Duration;
    let conn = dbus::blocking::Connection::new_session().map_err(|e| e.to_string())?;
    let proxy = conn.with_proxy(
        "org.freedesktop.Notifications",
        "/org/freedesktop/Notifications",
        Duration::from_secs(3),
    );
    let mut hints = PropMap::new();
    hints.insert(
        "category".into(),
        Variant(Box::new("transfer.complete".to_string())),
    );
    let _: (u32,) = proxy
        .method_call(
            "org.freedesktop.Notifications",
            "Notify",
            (
                "TDP Bulk Downloader",
                0u32,
                "folder-download",
                summary,
                body,
                Vec::<String>::new(),
                hints,
                -1i32,
            ),
        )
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn send(_summary: &str, _body: &str) -> Result<(), String> {
    Err("desktop notifications are not sent on this platform yet".into())
}
