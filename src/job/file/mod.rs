//! One file from ID to final name, by step: `resolve` its URL, `plan` its ranges, `fetch`
//! them into its `.part`, `verify` the bytes, `place` the file; `task` runs the steps and
//! `state` is the file's state they share. Steps depend on the ones before them only.

mod fetch;
mod place;
mod plan;
mod resolve;
mod state;
mod task;
mod verify;

pub(crate) use state::Hint;
pub(crate) use task::process_file;
