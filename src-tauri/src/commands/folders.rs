//! The destination and its files in the system's file manager.

use super::Result;
use crate::error::CmdError;
use tauri::AppHandle;
use tdp_engine::ErrorKind;

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
