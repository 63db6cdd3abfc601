//! The commands the window may call, by what they are for: each a few lines over the engine.
//! `lib.rs` registers them, `build.rs` lists them for the ACL and `tauri.conf.json` grants
//! them (a test checks the three agree).

pub mod connection;
pub mod demo;
pub mod folders;
pub mod form;
pub mod job;
pub mod secrets;

type Result<T> = std::result::Result<T, crate::error::CmdError>;
