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
            commands::form::app_info,
            commands::form::load_settings,
            commands::form::save_settings,
            commands::form::validate_ids,
            commands::form::read_id_file,
            commands::secrets::credentials_status,
            commands::secrets::save_token,
            commands::secrets::forget_token,
            commands::connection::check_connection,
            commands::connection::diagnose_connection,
            commands::secrets::save_proxy_password,
            commands::job::start_job,
            commands::job::cancel_job,
            commands::job::pause_job,
            commands::job::set_rate_limit,
            commands::job::set_allow_sleep,
            commands::connection::renew_token,
            commands::folders::open_folder,
            commands::job::export_failed,
            commands::job::preview_search,
            commands::folders::show_in_folder,
            commands::demo::start_demo,
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
        // `commands::job::start_job,` → `start_job`: a command is named by its path's end.
        let registered: Vec<&str> = ["commands::", "jobs::"]
            .iter()
            .flat_map(|m| handlers.split(m).skip(1))
            .filter_map(|s| {
                let path = s.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'));
                path.into_iter().next()?.rsplit("::").next()
            })
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
