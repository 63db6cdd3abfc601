// Only the commands listed here are callable from the window, and only those its capability
// grants (tauri.conf.json).
const COMMANDS: &[&str] = &[
    "app_info",
    "load_settings",
    "save_settings",
    "validate_ids",
    "read_id_file",
    "credentials_status",
    "save_token",
    "forget_token",
    "check_connection",
    "diagnose_connection",
    "save_proxy_password",
    "start_job",
    "cancel_job",
    "pause_job",
    "set_rate_limit",
    "set_allow_sleep",
    "renew_token",
    "open_folder",
    "export_failed",
    "preview_search",
    "show_in_folder",
    "start_demo",
    "list_jobs",
    "add_job_folder",
    "forget_job",
    "resume_job",
];

fn main() {
    let attrs = tauri_build::Attributes::new()
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(e) = tauri_build::try_build(attrs) {
        eprintln!("tauri-build failed: {e:#}");
        std::process::exit(1);
    }
}
