//! What every file of the state folder that a job reads back says about its format: the
//! manifest in its `format` field, the journal in its first record. A newer format is refused,
//! because this version could misread it and lose work. Below both the journal (`state`) and
//! the manifest (`job::manifest`), which each check it.

use crate::store::paths::STATE_DIR;
use std::path::{Path, PathBuf};

/// The state folder's format, written in the manifest and the journal.
pub const FORMAT: u32 = 1;
/// The manifest's file name in the state folder.
pub(crate) const MANIFEST: &str = "job.json";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{folder} has no download to resume (no {STATE_DIR}/{MANIFEST}; jobs started by earlier versions did not write one): give --out, --base-url, --org and the IDs instead")]
    Missing { folder: PathBuf },
    #[error("cannot read {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a job manifest this program can read ({reason})")]
    Invalid { path: PathBuf, reason: String },
    #[error("the download state in {folder} was written by a newer version of this program (format {found}; this one reads up to {FORMAT}): update it, or download to another folder")]
    Newer { folder: PathBuf, found: u64 },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ManifestError {
    pub fn io(&self) -> Option<&std::io::Error> {
        match self {
            ManifestError::Unreadable { source, .. } | ManifestError::Write { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

/// Refuses a state folder whose manifest is of a newer format; no manifest (a job of an
/// older version) is fine.
pub(crate) fn check_folder(state_dir: &Path) -> Result<(), ManifestError> {
    let path = state_dir.join(MANIFEST);
    let Ok(text) = std::fs::read(&path) else {
        return Ok(());
    };
    // A manifest that cannot be read is written anew by this job: it only describes the job.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(&text) else {
        return Ok(());
    };
    let folder = state_dir.parent().unwrap_or(state_dir);
    check_format(folder, &value)
}

pub(crate) fn check_format(folder: &Path, value: &serde_json::Value) -> Result<(), ManifestError> {
    match value.get("format").and_then(serde_json::Value::as_u64) {
        Some(found) if found > u64::from(FORMAT) => Err(ManifestError::Newer {
            folder: folder.to_path_buf(),
            found,
        }),
        _ => Ok(()),
    }
}
