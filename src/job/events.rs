//! Typed progress events. Final states go on an unbounded channel (they are few: one per
//! file); byte progress is aggregated and sent at most ~10 times a second, so a slow listener
//! never slows a transfer and never loses a file's final state.

use crate::error::ErrorKind;
use serde::Serialize;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FileStage {
    Resolving,
    Downloading,
    Retrying,
    Verifying,
}

/// What the job as a whole is doing; each change is announced by [`Event::JobState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum JobState {
    Running,
    /// TDP and storage do not answer: nothing is charged to any file; the job goes on by
    /// itself when they answer again.
    WaitingForNetwork,
    /// TDP rejected the token (expired, revoked): no TDP request is made until a new one is
    /// given; transfers whose links are in hand go on.
    WaitingForToken,
    /// Asked to pause: no request is made until it is resumed.
    Paused,
    /// Cancelled or stopped by an error: finishing writes and saving state.
    Stopping,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveFile {
    pub file_id: String,
    pub name: Option<String>,
    pub size: Option<u64>,
    pub bytes: u64,
    pub stage: FileStage,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub total_lines: usize,
    pub valid: usize,
    pub invalid: usize,
    pub duplicates: usize,
    pub downloaded: usize,
    pub skipped: usize,
    pub failed: usize,
    pub cancelled: usize,
    /// Search hits left out (deleted, or outdated versions).
    pub excluded: usize,
    /// Bytes written to final files by this run.
    pub bytes: u64,
    pub seconds: f64,
    /// Why the job stopped early, if it did.
    pub stopped: Option<String>,
    /// Its kind (`cancelled` when the user cancelled).
    pub stop_kind: Option<ErrorKind>,
    pub report: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Event {
    #[serde(rename_all = "camelCase")]
    JobStarted {
        total_lines: usize,
        valid: usize,
        invalid: usize,
        duplicates: usize,
        /// Files this run has to fetch (valid IDs not already complete).
        files: usize,
    },
    /// How a search job lists: in full (and why), or the files indexed since a moment (a sync
    /// narrowed by its folder's last one).
    #[serde(rename_all = "camelCase")]
    Listing {
        full: Option<String>,
        since: Option<String>,
    },
    /// A page of search hits came in: `ids` join the job.
    #[serde(rename_all = "camelCase")]
    FilesFound {
        ids: Vec<String>,
        /// Files to download, found so far.
        files: usize,
        /// Their sizes, as search gave them.
        bytes: u64,
        /// Hits left out so far (deleted, outdated).
        excluded: usize,
        /// The search has no more pages.
        complete: bool,
    },
    #[serde(rename_all = "camelCase")]
    FileResolved {
        file_id: String,
        name: String,
        path: String,
        size: u64,
    },
    #[serde(rename_all = "camelCase")]
    FileRetrying {
        file_id: String,
        kind: ErrorKind,
        reason: String,
        attempt: u32,
    },
    #[serde(rename_all = "camelCase")]
    Progress {
        files_done: usize,
        files_total: usize,
        bytes_done: u64,
        /// Sum of the sizes known so far.
        bytes_known: u64,
        bytes_per_second: f64,
        active: Vec<ActiveFile>,
    },
    #[serde(rename_all = "camelCase")]
    FileDone {
        file_id: String,
        path: String,
        bytes: u64,
        verified: String,
    },
    #[serde(rename_all = "camelCase")]
    FileSkipped {
        file_id: String,
        path: String,
        reason: String,
    },
    #[serde(rename_all = "camelCase")]
    FileFailed {
        file_id: String,
        kind: ErrorKind,
        reason: String,
    },
    #[serde(rename_all = "camelCase")]
    JobState { state: JobState },
    /// Something the user should know that does not stop anything.
    #[serde(rename_all = "camelCase")]
    Warning { message: String },
    #[serde(rename_all = "camelCase")]
    JobFinished { summary: Summary },
}

pub type EventReceiver = mpsc::UnboundedReceiver<Event>;

#[derive(Clone)]
pub struct EventSender(Option<mpsc::UnboundedSender<Event>>);

impl EventSender {
    pub fn channel() -> (EventSender, EventReceiver) {
        let (tx, rx) = mpsc::unbounded_channel();
        (EventSender(Some(tx)), rx)
    }

    /// A sender nobody listens to.
    pub fn none() -> EventSender {
        EventSender(None)
    }

    pub fn send(&self, e: Event) {
        if let Some(tx) = &self.0 {
            // A listener that went away does not stop the job.
            let _ = tx.send(e);
        }
    }
}

/// Live counters that the progress ticker reads.
#[derive(Default)]
pub struct Progress {
    pub bytes_done: AtomicU64,
    pub bytes_known: AtomicU64,
    pub files_done: AtomicU64,
    active: Mutex<HashMap<String, (ActiveFile, Arc<AtomicU64>)>>,
}

impl Progress {
    pub fn start_file(&self, id: &str) -> Arc<AtomicU64> {
        let counter = Arc::new(AtomicU64::new(0));
        let entry = ActiveFile {
            file_id: id.to_string(),
            name: None,
            size: None,
            bytes: 0,
            stage: FileStage::Resolving,
        };
        self.lock().insert(id.to_string(), (entry, counter.clone()));
        counter
    }

    pub fn update(&self, id: &str, f: impl FnOnce(&mut ActiveFile)) {
        if let Some((entry, _)) = self.lock().get_mut(id) {
            f(entry);
        }
    }

    /// A file left the job; it counts as done unless it was only stopped (a rerun takes it).
    pub fn end_file(&self, id: &str, finished: bool) {
        self.lock().remove(id);
        if finished {
            self.files_done.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn add_bytes(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
        self.bytes_done.fetch_add(n, Ordering::Relaxed);
    }

    /// Takes back bytes that were dropped (a part that did not verify).
    pub fn drop_bytes(&self, counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Ordering::Relaxed);
        self.bytes_done.fetch_sub(n, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (ActiveFile, Arc<AtomicU64>)>> {
        self.active.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The files in flight, largest progress first, at most `max`.
    pub fn active(&self, max: usize) -> Vec<ActiveFile> {
        let mut v: Vec<ActiveFile> = self
            .lock()
            .values()
            .map(|(e, c)| ActiveFile {
                bytes: c.load(Ordering::Relaxed),
                ..e.clone()
            })
            .collect();
        v.sort_by(|a, b| a.file_id.cmp(&b.file_id));
        v.truncate(max);
        v
    }
}
