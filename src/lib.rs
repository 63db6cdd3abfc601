//! TDP Bulk Downloader engine: resolves TetraScience Data Platform file IDs to pre-signed S3
//! URLs and streams them to disk, resumably and verifiably. Knows nothing of any UI, of Tauri
//! or of the simulator.
//!
//! The public surface is what the CLI and the app use: [`run`] a job from a [`JobConfig`] and
//! [`ParsedIds`], watch its [`Event`]s, read its report; errors speak [`ErrorKind`].

// Layers, lowest first; a module imports only its own layer or those below it (tests/layers.rs
// checks): the leaves here, then `net`, then `tdp` and `storage`, then `store`, then `job`,
// then `session`.
mod awake;
mod checksum;
pub mod control;
pub mod credentials;
pub mod error;
pub mod input;
mod limiter;
pub mod link;
mod multipart;
mod ranges;
pub mod rate;
pub mod retry;
mod secret;
pub mod size;

pub mod job;
pub mod net;
pub mod session;
pub mod storage;
pub mod store;
pub mod tdp;

pub use control::JobControl;
pub use error::{ErrorKind, Failure, Scope};
pub use input::{parse_args, parse_ids, ParsedIds};
pub use job::error::JobError;
pub use job::events::{Event, EventReceiver, EventSender, Summary};
pub use job::run::{run, run_controlled, run_job, run_search, JobConfig, JobResult};
pub use store::naming::Layout;
pub use tdp::client::Token;
pub use tdp::files::JobFiles;
pub use tdp::search::Search;
pub use tokio_util::sync::CancellationToken;
