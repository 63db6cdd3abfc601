//! The desktop app: a thin Tauri shell over the engine. Commands delegate to the engine;
//! progress reaches the window through a channel; the token stays in Rust.

mod commands;
mod demo;
mod error;
mod forward;
mod jobs;
mod notify;
mod settings;
mod state;

pub fn run() {
    let demo_requested = std::env::args().any(|a| a == "--demo");
    let result = tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .plugin(tauri_plugin_opener::init())
        .manage(state::AppState::new(demo_requested))
        .invoke_handler(tauri::generate_handler![
            commands::app_info,
            commands::load_settings,
            commands::save_settings,
            commands::validate_ids,
            commands::read_id_file,
            commands::credentials_status,
            commands::save_token,
            commands::forget_token,
            commands::check_connection,
            commands::diagnose_connection,
            commands::save_proxy_password,
            commands::start_job,
            commands::cancel_job,
            commands::pause_job,
            commands::set_rate_limit,
            commands::set_allow_sleep,
            commands::renew_token,
            commands::open_folder,
            commands::export_failed,
            commands::preview_search,
            commands::show_in_folder,
            commands::start_demo,
            jobs::list_jobs,
            jobs::add_job_folder,
            jobs::forget_job,
            jobs::resume_job,
        ])
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("TDP Bulk Downloader could not start: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    /// A command the window calls must be registered, listed for the ACL (build.rs) and
    /// granted to the window (tauri.conf.json); a missing grant fails only at run time.
    #[test]
    fn every_command_is_granted_to_the_window() {
        let handlers = include_str!("lib.rs");
        let build = include_str!("../build.rs");
        let conf = include_str!("../../tauri.conf.json");
        let registered: Vec<&str> = ["commands::", "jobs::"]
            .iter()
            .flat_map(|m| handlers.split(m).skip(1))
            .filter_map(|s| s.split(|c: char| !(c.is_alphanumeric() || c == '_')).next())
            .filter(|name| !name.is_empty())
            .collect();
        assert!(registered.len() > 10, "{registered:?}");
        for name in registered {
            assert!(
                build.contains(&format!("\"{name}\"")),
                "{name} is not in build.rs"
            );
            let grant = format!("\"allow-{}\"", name.replace('_', "-"));
            assert!(conf.contains(&grant), "{grant} is not in tauri.conf.json");
        }
    }
}
