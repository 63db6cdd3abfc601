//! The real app window, driven as a person drives it, against the simulator. Run by
//! scripts/e2e.sh (Xvfb, a D-Bus session with an unlocked gnome-keyring, tauri-driver).
//!
//! Every test lives in `e2e_window`, so that one test command can build the whole workspace
//! once and still run these apart from the engine's tests by name (`e2e_window::`).

mod e2e_window;
