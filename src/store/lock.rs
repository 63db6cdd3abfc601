//! One job per state folder: an exclusive OS lock on `.tdp-download/lock`, taken before the
//! journal is read, and released by the OS when the process ends, however it ends. Who holds
//! it is written to `lock.info` beside it, because on Windows a locked file cannot be read by
//! others. The journal itself stays readable while a job holds the lock.
//!
//! On network file systems the lock is only as good as the mount: NFSv4 and SMB carry these
//! locks between machines, but a mount without lock support (NFSv3 `nolock`, some NAS
//! appliances) accepts and ignores them, and two jobs on one folder are not prevented there.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const LOCK: &str = "lock";
const INFO: &str = "lock.info";

/// Held while a job runs; dropping it (or the process ending) releases the folder.
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another download is using {folder} ({holder}); wait for it to finish or cancel it")]
    Busy { folder: PathBuf, holder: String },
    #[error("cannot lock {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Takes the folder's lock, or says who holds it.
pub fn acquire(state_dir: &Path, folder: &Path) -> Result<FolderLock, LockError> {
    let path = state_dir.join(LOCK);
    let io = |source| LockError::Io {
        path: path.clone(),
        source,
    };
    let file = crate::store::paths::no_follow()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    // Fully qualified: newer standard libraries have an inherent `File::try_lock` too.
    match fs4::FileExt::try_lock(&file) {
        Ok(()) => {}
        Err(fs4::TryLockError::WouldBlock) => {
            return Err(LockError::Busy {
                folder: folder.to_path_buf(),
                holder: holder(state_dir),
            })
        }
        Err(fs4::TryLockError::Error(e)) => return Err(io(e)),
    }
    let info = format!(
        "process {} on {}, since {}",
        std::process::id(),
        host_name(),
        httpdate::fmt_http_date(SystemTime::now())
    );
    // Who holds it is a courtesy for the next job's message: failing to say it is not fatal.
    if let Ok(mut f) = crate::store::paths::no_follow()
        .write(true)
        .create(true)
        .truncate(true)
        .open(state_dir.join(INFO))
    {
        let _ = f.write_all(info.as_bytes());
    }
    Ok(FolderLock { _file: file })
}

/// Who runs a job in the folder now, if anyone: asks the lock without taking it for longer
/// than the question.
pub fn held_by(state_dir: &Path) -> Option<String> {
    let file = crate::store::paths::no_follow()
        .read(true)
        .open(state_dir.join(LOCK))
        .ok()?;
    match fs4::FileExt::try_lock_shared(&file) {
        Ok(()) => {
            let _ = fs4::FileExt::unlock(&file);
            None
        }
        Err(_) => Some(holder(state_dir)),
    }
}

fn holder(state_dir: &Path) -> String {
    std::fs::read_to_string(state_dir.join(INFO))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "a process that did not say who it is".into())
}

fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname NUL-terminates within it
        // or truncates, and we stop at the first NUL.
        let r = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if r == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            return String::from_utf8_lossy(&buf[..end]).into_owned();
        }
    }
    std::env::var("COMPUTERNAME").unwrap_or_else(|_| "this computer".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_and_told_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), Path::new("/data/out")).unwrap();
        let e = acquire(dir.path(), Path::new("/data/out")).unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with("another download is using /data/out (process "),
            "{text}"
        );
        assert!(text.contains(&std::process::id().to_string()), "{text}");
        drop(first);
        acquire(dir.path(), Path::new("/data/out")).unwrap();
    }
}
