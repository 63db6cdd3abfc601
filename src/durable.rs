//! Every call that makes something durable or moves it into place: syncs, renames, journal
//! appends. Being the only module that makes them, it can trace them in the order they happen
//! (for the test of the protocol below); nothing else in the engine syncs or renames.
//!
//! # The durability protocol
//!
//! For each file, in this order:
//!
//! 1. **Range bytes**: written into `<id>.part` with positional writes, then `fdatasync` of the
//!    `.part` (`sync part`).
//! 2. **Range record**: only then is the range appended to the journal (`append range`).
//! 3. **Journal sync** before the move: the name, object and range records of the file are
//!    made durable (`sync journal`), so a crash after the move finds them.
//! 4. **Decode** (gzip objects only): decoded into `<id>.decoding`, then `fsync` of it.
//! 5. **Move into place**: a rename that never replaces an existing file (`rename`), then
//!    `fsync` of the destination folder (`sync dir`), so the new name survives a power cut.
//! 6. **Done record**: appended only after the folder sync (`append done`); the journal is
//!    synced again when the job ends, before the report (written beside and renamed, then its
//!    folder synced).
//!
//! Where `syncfs` is at hand, the syncs of steps 1, 3 and 5 may each be a `syncfs` of the
//! file system that started after the step's writes (`sync fs`, see `group_sync`): one call
//! then serves every file waiting at that step, in the same order per file.
//!
//! What a crash at each point leaves, and what the next run does:
//! - before 1 completes: bytes that no record claims; the range is fetched again.
//! - between 1 and 2: the same (a durable range without a record is only lost work).
//! - between 2 and 3: a record may be lost with its progress; never a record without its
//!   bytes, since the bytes were synced first.
//! - between 3 and 5: the `.part` is complete and journaled; the rerun verifies and moves it.
//! - between 5 and 6: the file is in place but not recorded done; the rerun finds it under its
//!   journaled name with the journaled size and records it done without fetching anything.
//! - after 6: done; the rerun skips it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static TRACING: AtomicBool = AtomicBool::new(false);
static TRACE: Mutex<Vec<Op>> = Mutex::new(Vec::new());

/// One traced operation: what, on which path, for journal records the file ID, and the
/// bytes a `.part` write or a range record covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Op {
    pub what: &'static str,
    pub path: PathBuf,
    pub id: String,
    pub span: Option<(u64, u64)>,
}

fn note(what: &'static str, path: &Path, id: &str) {
    note_span(what, path, id, None);
}

fn note_span(what: &'static str, path: &Path, id: &str, span: Option<(u64, u64)>) {
    if TRACING.load(Ordering::Relaxed) {
        let mut t = TRACE.lock().unwrap_or_else(|e| e.into_inner());
        t.push(Op {
            what,
            path: path.to_path_buf(),
            id: id.to_string(),
            span,
        });
    }
}

/// Traces a write of `[start, end)` into a `.part` (the write itself is the sink's: it makes
/// nothing durable, but the test of the protocol needs to know what each sync covers).
pub fn wrote_part(path: &Path, start: u64, end: u64) {
    note_span("write part", path, "", Some((start, end)));
}

/// The trace of durability operations, for tests: `start` turns it on (for the whole
/// process), `take` returns and forgets the operations on paths below `dir`, in order.
#[doc(hidden)]
pub mod trace {
    use super::*;

    pub fn start() {
        TRACING.store(true, Ordering::Relaxed);
    }

    pub fn take(dir: &Path) -> Vec<Op> {
        let mut t = TRACE.lock().unwrap_or_else(|e| e.into_inner());
        let (mine, rest): (Vec<_>, Vec<_>) = t.drain(..).partition(|op| op.path.starts_with(dir));
        *t = rest;
        mine
    }
}

/// `fdatasync`: the file's bytes (and its size) are on disk.
pub fn sync_data(file: &File, path: &Path, what: &'static str) -> std::io::Result<()> {
    file.sync_data()?;
    note(what, path, "");
    Ok(())
}

/// `fsync` of a folder: the names in it (a rename's result) are on disk. A no-op where
/// folders cannot be opened (Windows, whose renames are durable through the file system).
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    note("sync dir", dir, "");
    Ok(())
}

/// A handle for `sync_fs` when one `syncfs` of `state_dir` also covers `dest` (the same
/// file system) and the system has `syncfs`; None otherwise.
pub fn fs_syncer(dest: &Path, state_dir: &Path) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let (d, s) = (dest.metadata().ok()?, state_dir.metadata().ok()?);
        if d.dev() != s.dev() {
            return None;
        }
        File::open(state_dir).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (dest, state_dir);
        None
    }
}

/// `syncfs`: everything written on the file system of `dir` before the call (file bytes,
/// names, journal lines) is on disk. Stands for the syncs of the protocol in a group commit.
pub fn sync_fs(dir: &File, path: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor, borrowed for the call.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    dir.sync_all()?;
    note("sync fs", path, "");
    Ok(())
}

/// Appends one journal line: `what` names the record, `id` its file and `span` the bytes a
/// range record claims, for the trace.
pub fn append(
    file: &mut File,
    line: &[u8],
    path: &Path,
    what: &'static str,
    id: &str,
    span: Option<(u64, u64)>,
) -> std::io::Result<()> {
    file.write_all(line)?;
    note_span(what, path, id, span);
    Ok(())
}

/// A rename that replaces the target: only for our own files (journal, report).
pub fn replace(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::rename(from, to)?;
    note("replace", to, "");
    Ok(())
}

/// Moves `from` to `to` only if `to` does not exist (`AlreadyExists` otherwise): never
/// replaces a file, even one that appears at the last moment.
pub fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    no_replace(from, to)?;
    note("rename", to, "");
    Ok(())
}

#[cfg(target_os = "linux")]
fn no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL in a path"))
    };
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: both are valid NUL-terminated paths that live across the call.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        // File systems without RENAME_NOREPLACE: a hard link cannot replace either.
        Some(libc::EINVAL) | Some(libc::ENOSYS) => link_then_unlink(from, to),
        _ => Err(e),
    }
}

#[cfg(not(target_os = "linux"))]
fn no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    link_then_unlink(from, to)
}

/// The portable no-replace move: `link` fails if the target exists. Where links are not
/// supported either, an existence check right before a plain rename (a narrow race).
fn link_then_unlink(from: &Path, to: &Path) -> std::io::Result<()> {
    match std::fs::hard_link(from, to) {
        Ok(()) => std::fs::remove_file(from),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => {
            if to.symlink_metadata().is_ok() {
                return Err(std::io::ErrorKind::AlreadyExists.into());
            }
            std::fs::rename(from, to)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_move_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"ours").unwrap();
        std::fs::write(&b, b"theirs").unwrap();
        let e = rename_no_replace(&a, &b).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&b).unwrap(), b"theirs");
        std::fs::remove_file(&b).unwrap();
        rename_no_replace(&a, &b).unwrap();
        assert_eq!(std::fs::read(&b).unwrap(), b"ours");
        assert!(!a.exists());
    }
}
