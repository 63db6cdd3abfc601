//! What a destination folder says about its job, read without changing anything: the job
//! manifest (what was asked), the report (what the last run did), the lock (whether a job
//! runs there now). The app's Jobs view is built from this, never from memory, so a folder a
//! CLI job used shows the same.

use crate::job::manifest::{Manifest, ManifestError, STATE_DIR};
pub use crate::job::report::LastRun;
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FolderStatus {
    pub dest: String,
    pub base_url: String,
    pub org: String,
    /// When the job was first started (RFC 3339).
    pub started: String,
    /// Valid IDs asked for.
    pub files: usize,
    pub last_run: Option<LastRun>,
    /// Set while a job runs in the folder (here or in another process): who holds it.
    pub running_elsewhere: Option<String>,
    /// Files not yet in place, as far as the last report tells (all of them without one).
    pub left: usize,
    /// A search job's search, for people: such a job is synced (run again), not resumed.
    pub search: Option<String>,
}

impl FolderStatus {
    /// A job with files left to fetch that nobody is running now: one to offer to resume.
    pub fn resumable(&self) -> bool {
        self.left > 0 && self.running_elsewhere.is_none()
    }
}

pub fn read(dest: &Path) -> Result<FolderStatus, ManifestError> {
    let m = Manifest::read(dest)?;
    let report = m.config(dest).report_path();
    let last_run = crate::job::report::last_run(&report);
    // A search's files are what its last run found.
    let files = match (&m.search, &last_run) {
        (Some(_), Some(r)) => r.downloaded + r.skipped + r.failed + r.cancelled,
        (Some(_), None) => 0,
        (None, _) => m.input().counts().valid,
    };
    let left = match &last_run {
        Some(r) => files.saturating_sub(r.downloaded + r.skipped + r.failed),
        None => files,
    };
    Ok(FolderStatus {
        dest: dest.to_string_lossy().into_owned(),
        base_url: m.base_url,
        org: m.org,
        started: m.started,
        files,
        last_run,
        running_elsewhere: crate::store::lock::held_by(&dest.join(STATE_DIR)),
        left,
        search: m.search.as_ref().map(crate::tdp::search::Search::describe),
    })
}
