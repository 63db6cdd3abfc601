//! What the file tasks of a job share: the clients, the API lane and the S3 slots, the
//! journal, events and progress, the job's state and the first error that stops it. Each
//! file's own state stays with its task (`job::file`).

use crate::error::ErrorKind;
use crate::job::config::JobConfig;
use crate::job::error::JobError;
use crate::job::events::{EventSender, Progress};
use crate::job::lifecycle::Lifecycle;
use crate::job::outage::NetGate;
use crate::job::renewal::Renewal;
use crate::limiter::AdaptiveLimit;
use crate::storage::s3::S3Client;
use crate::store::lock::LockError;
use crate::store::sink::is_disk_full;
use crate::store::state::{StateError, Store};
use crate::tdp::client::TdpClient;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

pub(crate) enum Forbidden {
    ThisFile,
    WholeJob,
    Undecided,
}

#[derive(Default)]
pub(crate) struct AuthGate {
    replies: usize,
    forbidden: usize,
    successes: usize,
}

impl AuthGate {
    pub(crate) fn success(&mut self) {
        self.replies += 1;
        self.successes += 1;
    }

    /// TDP has taken the job's token at least once: a 401 now is a token that ran out, not
    /// one that was wrong from the start.
    pub(crate) fn has_succeeded(&self) -> bool {
        self.successes > 0
    }

    pub(crate) fn other(&mut self) {
        self.replies += 1;
    }

    /// A 403 from TDP. When 403s are all TDP has said so far, at least 3 of them (or one per
    /// file), the org slug or the account is wrong and the whole job stops; before that
    /// point it is too early to tell, and the file asks again.
    pub(crate) fn forbidden(&mut self, files: usize) -> Forbidden {
        self.replies += 1;
        self.forbidden += 1;
        if self.successes > 0 || self.forbidden < self.replies {
            Forbidden::ThisFile
        } else if self.forbidden >= files.clamp(1, 3) {
            Forbidden::WholeJob
        } else {
            Forbidden::Undecided
        }
    }
}

pub(crate) struct Ctx {
    pub cfg: JobConfig,
    pub tdp: TdpClient,
    pub s3: S3Client,
    pub api_lane: Arc<AdaptiveLimit>,
    pub s3_slots: Arc<Semaphore>,
    pub(crate) store: Mutex<Store>,
    pub events: EventSender,
    pub progress: Progress,
    pub cancel: CancellationToken,
    pub(crate) fatal: Mutex<Option<JobError>>,
    pub gate: Mutex<AuthGate>,
    pub net: NetGate,
    pub states: Arc<Lifecycle>,
    pub(crate) paused: watch::Receiver<bool>,
    pub(crate) renewal: Renewal,
    pub(crate) rate: Arc<crate::rate::RateLimit>,
    pub(crate) rng: Mutex<fastrand::Rng>,
    /// Where files wait to share a sync of the file system.
    pub(crate) syncs: Arc<crate::store::group_sync::GroupSync>,
    /// Grows as a search finds files.
    pub files_total: std::sync::atomic::AtomicUsize,
}

impl Ctx {
    pub fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn gate(&self) -> MutexGuard<'_, AuthGate> {
        self.gate.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Returns at once unless the job is paused; then when it is resumed. False: cancelled.
    pub async fn until_resumed(&self, cancel: &CancellationToken) -> bool {
        let mut paused = self.paused.clone();
        tokio::select! {
            r = paused.wait_for(|p| !*p) => r.is_ok(),
            _ = cancel.cancelled() => false,
        }
    }

    /// Returns at once unless TDP rejected the token in place; then when a new one is given.
    /// False: cancelled.
    pub async fn token_usable(&self, cancel: &CancellationToken) -> bool {
        self.renewal.usable(&self.tdp, cancel).await
    }

    /// Resolves when the job is paused.
    pub async fn pause_requested(&self) {
        let mut paused = self.paused.clone();
        if paused.wait_for(|p| *p).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Stops every file: the first reason given is the one reported.
    pub fn stop(&self, err: JobError) {
        let mut f = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            tracing::warn!("stopping the job: {err}");
            *f = Some(err);
            self.states.stop();
        }
        self.cancel.cancel();
    }

    pub fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let mut rng = self.rng.lock().unwrap_or_else(|e| e.into_inner());
        self.cfg
            .retry
            .delay(failures, retry_after, &mut || rng.f64())
    }

    /// The kind of the error that stopped the job, if one did.
    pub fn stop_kind(&self) -> Option<ErrorKind> {
        let f = self.fatal.lock().unwrap_or_else(|e| e.into_inner());
        f.as_ref().map(JobError::kind)
    }

    pub fn disk_error(&self, e: &std::io::Error, path: &Path) -> JobError {
        disk_error(&self.cfg.dest, e, path)
    }

    pub fn state_error(&self, e: &StateError) -> JobError {
        state_error(&self.cfg.dest, e)
    }
}

/// A write below `dest` failed: disk full and unwritable folders stop the job.
pub(crate) fn disk_error(dest: &Path, e: &std::io::Error, path: &Path) -> JobError {
    if is_disk_full(e) {
        JobError::DiskFull(dest.to_path_buf())
    } else {
        // The OS's own code is kept: the advice may depend on it (OneDrive's, say).
        let source = match e.raw_os_error() {
            Some(code) => std::io::Error::from_raw_os_error(code),
            None => std::io::Error::new(e.kind(), e.to_string()),
        };
        JobError::Destination {
            path: path.to_path_buf(),
            source: Arc::new(source),
        }
    }
}

pub(crate) fn state_error(dest: &Path, e: &StateError) -> JobError {
    match e {
        StateError::Lock(LockError::Busy { .. }) => return JobError::Busy(e.to_string()),
        StateError::NewerJournal { .. }
        | StateError::Manifest(crate::job::manifest::ManifestError::Newer { .. }) => {
            return JobError::NewerFormat(e.to_string())
        }
        _ => {}
    }
    match e.io() {
        Some(io) => disk_error(dest, io, dest),
        None => JobError::Internal(e.to_string()),
    }
}
