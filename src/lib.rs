//! TDP Bulk Downloader engine: resolves TetraScience Data Platform file IDs to pre-signed S3
//! URLs and streams them to disk, resumably and verifiably. Knows nothing of any UI.

pub mod credentials;
pub mod events;
mod http_error;
pub mod input;
pub mod job;
pub mod limiter;
pub mod naming;
pub mod ranges;
pub mod report;
pub mod retry;
pub mod s3;
pub mod sim;
pub mod sink;
pub mod state;
pub mod tdp;
mod transfer;

pub use events::{Event, EventReceiver, EventSender, Summary};
pub use input::{parse_args, parse_ids, ParsedIds};
pub use job::{run, JobConfig, JobError, JobResult};
pub use naming::Layout;
pub use tdp::Token;
pub use tokio_util::sync::CancellationToken;
