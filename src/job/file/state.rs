//! One file's state, in one place: what is known of its object, its URL, its ranges and
//! their checks, its name, its attempts. Every step of the file's task reads and writes it.

use crate::checksum;
use crate::error::{ErrorKind, Failure};
use crate::job::context::Ctx;
use crate::job::error::JobError;
use crate::job::events::{Event, FileStage};
use crate::job::outage::Verdict;
use crate::link::Link;
use crate::ranges::Ranges;
use crate::retry::Attempts;
use crate::storage::s3::ObjectInfo;
use crate::store::sink::{self, SinkError};
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why one attempt at a file ended.
#[derive(Debug)]
pub(crate) enum FileError {
    /// The job is cancelled or stopping; the state is kept for a rerun.
    Cancelled,
    /// This file cannot be downloaded.
    Failed(Failure),
    /// Bytes on disk are wrong (length, MD5, gzip); worth one fresh download.
    Integrity(String),
    /// The object changed since the download began; start it over.
    Changed,
}

pub(super) struct UrlState {
    pub(super) link: Option<Link>,
    pub(super) generation: u64,
}

/// What a search told of a file before it is fetched.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hint {
    /// `file.checksum` in MD5 form: checked besides the ETag (and for KMS objects, whose
    /// ETag is not an MD5, instead of it).
    pub md5: Option<String>,
}

pub(super) struct FileRun {
    pub(super) id: String,
    pub(super) hint: Hint,
    pub(super) part: PathBuf,
    pub(super) cancel: CancellationToken,
    pub(super) url: tokio::sync::Mutex<UrlState>,
    pub(super) key: Mutex<Vec<String>>,
    pub(super) info: Mutex<Option<ObjectInfo>>,
    pub(super) path: Mutex<Option<String>>,
    /// Names given up because other bytes were there, first to last.
    pub(super) given_up: Mutex<Vec<String>>,
    pub(super) ranges: Mutex<Ranges>,
    pub(super) attempts: Mutex<Attempts>,
    pub(super) hasher: sink::SharedMd5,
    /// The multipart digests of earlier complete downloads that did not match the ETag.
    pub(super) mismatches: Mutex<Vec<String>>,
    /// CRCs of the pieces this run wrote, for the object's additional checksum.
    pub(super) crcs: Mutex<Vec<checksum::Piece>>,
    /// A composite-checksum object's parts that were checked as they arrived: start → the
    /// part's checksum.
    pub(super) part_sums: Mutex<std::collections::BTreeMap<u64, Vec<u8>>>,
    pub(super) bytes: Arc<AtomicU64>,
    /// Told when the object's size and ETag become known.
    pub(super) info_known: tokio::sync::Notify,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FileRun {
    /// A file's state at the start of its task: nothing known of its object yet.
    pub(super) fn new(ctx: &Ctx, id: &str, hint: Hint, bytes: Arc<AtomicU64>) -> Self {
        FileRun {
            id: id.to_string(),
            hint,
            part: ctx.store().part_path(id),
            cancel: ctx.cancel.child_token(),
            url: tokio::sync::Mutex::new(UrlState {
                link: None,
                generation: 0,
            }),
            key: Mutex::new(Vec::new()),
            info: Mutex::new(None),
            path: Mutex::new(None),
            given_up: Mutex::new(Vec::new()),
            ranges: Mutex::new(Ranges::default()),
            attempts: Mutex::new(Attempts::default()),
            hasher: Arc::new(Mutex::new(None)),
            mismatches: Mutex::new(Vec::new()),
            crcs: Mutex::new(Vec::new()),
            part_sums: Mutex::new(Default::default()),
            bytes,
            info_known: tokio::sync::Notify::new(),
        }
    }

    pub(super) fn info(&self) -> Option<ObjectInfo> {
        lock(&self.info).clone()
    }

    pub(super) fn retrying(&self, ctx: &Ctx, kind: ErrorKind, reason: String) {
        let attempt = lock(&self.attempts).total;
        ctx.progress
            .update(&self.id, |a| a.stage = FileStage::Retrying);
        ctx.events.send(Event::FileRetrying {
            file_id: self.id.clone(),
            kind,
            reason,
            attempt,
        });
    }
}

/// Asks the job's network gate about a connection-level failure: true when it was an outage
/// that is over (retry at no cost), false when the network answers (the file's own failure).
pub(super) async fn outage(
    ctx: &Ctx,
    cancel: &CancellationToken,
    failed_at: Instant,
) -> Result<bool, FileError> {
    match ctx.net.after_failure(failed_at, cancel).await {
        Verdict::Online => Ok(false),
        Verdict::Restored => Ok(true),
        Verdict::Lost(waited) => {
            ctx.stop(JobError::NetworkLost(waited));
            Err(FileError::Cancelled)
        }
        Verdict::Cancelled => Err(FileError::Cancelled),
    }
}

pub(super) async fn sleep(cancel: &CancellationToken, d: Duration) -> Result<(), FileError> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = cancel.cancelled() => Err(FileError::Cancelled),
    }
}

pub(super) fn resp_total(run: &FileRun) -> u64 {
    run.info().map(|i| i.size).unwrap_or(0)
}

pub(super) fn sink_failure(ctx: &Ctx, e: SinkError) -> FileError {
    match e.io_error() {
        Some(io) => {
            let path = match &e {
                SinkError::Io { path, .. } => path.clone(),
                _ => ctx.cfg.dest.clone(),
            };
            ctx.stop(ctx.disk_error(io, &path));
            FileError::Cancelled
        }
        None => FileError::Failed(Failure::new(ErrorKind::Destination, e.to_string())),
    }
}

pub(super) fn internal(e: impl std::fmt::Display) -> FileError {
    FileError::Failed(Failure::new(
        ErrorKind::Internal,
        format!("internal error: {e}"),
    ))
}
