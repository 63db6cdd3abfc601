//! TDP Bulk Downloader engine: resolves TetraScience Data Platform file IDs to pre-signed S3
//! URLs and streams them to disk, resumably and verifiably. Knows nothing of any UI, of Tauri
//! or of the simulator.
//!
//! The public surface is what the CLI and the app use: [`run`] a job from a [`JobConfig`] and
//! [`ParsedIds`], watch its [`Event`]s, read its report; errors speak [`ErrorKind`].

mod config;
pub mod connect;
mod context;
pub mod control;
pub mod credentials;
pub mod doctor;
pub mod error;
pub mod events;
pub mod expiry;
pub mod files;
pub mod folder_status;
pub mod input;
pub mod link;
pub mod manifest;
pub mod preview;
pub mod report;
pub mod retry;
pub mod search;
pub mod shard;
pub mod size;
pub mod state;
pub mod sync;
pub mod tdp;
pub mod trust;

mod awake;
mod checksum;
#[doc(hidden)]
pub mod durable;
mod group_sync;
mod http_error;
mod job;
mod lifecycle;
mod limiter;
mod lock;
mod multipart;
mod naming;
mod network;
mod paths;
mod ranges;
pub mod rate;
mod renewal;
mod s3;
mod secret;
mod sink;
mod transfer;
#[cfg(windows)]
pub mod windows_fs;

pub use control::JobControl;
pub use error::{ErrorKind, Failure, JobError, Scope};
pub use events::{Event, EventReceiver, EventSender, Summary};
pub use files::JobFiles;
pub use input::{parse_args, parse_ids, ParsedIds};
pub use job::{run, run_controlled, run_job, run_search, JobConfig, JobResult};
pub use naming::Layout;
pub use search::Search;
pub use tdp::Token;
pub use tokio_util::sync::CancellationToken;
