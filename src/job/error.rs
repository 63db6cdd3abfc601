//! Why a whole job could not start or had to stop, in words a user can act on.

use crate::error::ErrorKind;
use crate::storage::error::S3Error;
use crate::tdp::error::{SearchError, TdpError};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Why a folder cannot be written, in words a user can act on (the OS's own words after).
fn why_unwritable(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    if is_cloud_provider_off(e) {
        return format!(
            "it is in a OneDrive (or other cloud-synced) folder and its sync app is not running. \
             Start OneDrive and wait until it is signed in, or choose a folder outside it ({e})"
        );
    }
    let why = match e.kind() {
        K::PermissionDenied => "you do not have permission to write there",
        K::ReadOnlyFilesystem => "it is on a read-only disk or share",
        K::NotFound => "it does not exist and could not be made (is the drive or share connected?)",
        K::NotADirectory => "part of the path is a file, not a folder",
        K::StorageFull | K::QuotaExceeded => "there is no space left",
        _ => return e.to_string(),
    };
    format!("{why} ({e})")
}

/// Windows' ERROR_CLOUD_FILE_PROVIDER_NOT_RUNNING (HRESULT 0x8007016A): a cloud-synced
/// folder (OneDrive's Files On-Demand) whose client is not running takes no files.
pub fn is_cloud_provider_off(e: &std::io::Error) -> bool {
    cfg!(windows) && e.raw_os_error() == Some(362)
}

/// Why a whole job could not start or had to stop.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Tdp(#[from] TdpError),
    #[error(transparent)]
    Storage(#[from] S3Error),
    #[error(
        "TDP denied access ({0}). Check the org slug and that your account may read these files"
    )]
    Forbidden(String),
    #[error("the disk is full at {0}. Free some space and run the same job again: it resumes where it stopped")]
    DiskFull(PathBuf),
    #[error(
        "cannot write to {path}: {}. Choose a writable folder",
        why_unwritable(source)
    )]
    Destination {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("the files found need {} more and {folder} has {} free. Free some space, choose another folder, or use --no-space-check to start anyway", crate::size::human(*.needed), crate::size::human(*.free))]
    NoSpace {
        folder: PathBuf,
        needed: u64,
        free: u64,
    },
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("{} keeps the sync of another search ({theirs}): one folder holds one search's files. Choose another folder, or delete its .tdp-download folder to start this one there", folder.display())]
    OtherSearch { folder: PathBuf, theirs: String },
    #[error("the network has been unreachable for {} s (neither TDP nor storage answered). Run the same job again when it is back: it resumes where it stopped", .0.as_secs())]
    NetworkLost(Duration),
    /// Another job holds the destination's state folder.
    #[error("{0}")]
    Busy(String),
    /// The state folder was written by a newer version.
    #[error("{0}")]
    NewerFormat(String),
    /// The network settings cannot be used: a CA file, a proxy address.
    #[error(transparent)]
    Connect(#[from] crate::net::connect::ConnectError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl JobError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            JobError::Tdp(e) => e.kind(),
            JobError::Storage(e) => e.kind(),
            JobError::Forbidden(_) => ErrorKind::Forbidden,
            JobError::DiskFull(_) | JobError::NoSpace { .. } => ErrorKind::DiskFull,
            JobError::Search(e) => e.kind(),
            JobError::OtherSearch { .. } => ErrorKind::Busy,
            JobError::Destination { .. } => ErrorKind::Destination,
            JobError::Busy(_) => ErrorKind::Busy,
            JobError::NetworkLost(_) => ErrorKind::Network,
            JobError::Connect(_) | JobError::NewerFormat(_) => ErrorKind::Config,
            JobError::Internal(_) => ErrorKind::Internal,
        }
    }
}

#[cfg(all(test, windows))]
mod tests {
    use super::*;

    #[test]
    fn a_onedrive_folder_whose_client_is_off_says_to_start_it() {
        let e = JobError::Destination {
            path: PathBuf::from(r"C:\Users\ana\OneDrive - Lab\plates"),
            source: Arc::new(std::io::Error::from_raw_os_error(362)),
        };
        let text = e.to_string();
        assert!(text.contains("Start OneDrive"), "{text}");
        assert!(text.contains("choose a folder outside it"), "{text}");
        assert_eq!(e.kind(), ErrorKind::Destination);
    }
}
