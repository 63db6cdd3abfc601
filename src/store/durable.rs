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
//! Where the state folder and the destination share a file system, the syncs of steps 1, 3
//! and 5 may each be one shared flush that started after the step's writes (`sync fs`, see
//! `group_sync`): one call then serves every file waiting at that step, in the same order
//! per file. What the shared flush is, per platform:
//!
//! | platform | per step (`write_back`) | shared flush (`sync_fs`) | cost it saves |
//! | --- | --- | --- | --- |
//! | Linux | nothing | `syncfs` of the file system: writes back and flushes all | an `fdatasync` per file per step |
//! | macOS | plain `fsync` of the `.part`, the journal, the folder: to the drive, not past its cache | `F_FULLFSYNC` of `.flush` in the state folder: the drive's cache, once | `F_FULLFSYNC` per file (what `sync_all` is there; tens of ms each) |
//! | Windows | `NtFlushBuffersFileEx(FLUSH_FLAGS_NO_SYNC)`: to the disk, not past its cache | `FlushFileBuffers` of `.flush`: the disk's cache, once | `FlushFileBuffers` per file |
//!
//! macOS and Windows follow git's batched fsync (`core.fsyncMethod=batch`): each file is
//! written back without a cache flush, then one flush of the device's cache makes them all
//! durable, since a cache flush covers every write the device has taken. Windows needs no
//! folder sync at all: NTFS logs a rename in its own journal, which its flush covers; Wine,
//! which lacks `NtFlushBuffersFileEx`, writes back with `FlushFileBuffers` (correct, not
//! cheaper). Where the two folders are on different volumes, or grouping is off, each step
//! syncs what it names.
//!
//! The move of step 5 never replaces: `renameat2(RENAME_NOREPLACE)` on Linux,
//! `renamex_np(RENAME_EXCL)` on macOS, `MoveFileExW` without `MOVEFILE_REPLACE_EXISTING` on
//! Windows (there, waited out for up to 10 s while another program, often an antivirus,
//! holds the file: errors 5 and 32), and only on file systems that refuse those, a hard link
//! then an unlink (Unix). A file that appears at the target at the last moment makes the
//! move fail: the `.part` keeps its one name and the name allocator gives the next name.
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

/// A handle for `sync_fs` when one flush of it also covers everything written below `dest`
/// (the same file system or volume) and the system has such a flush; None otherwise.
/// Linux: the state folder itself, for `syncfs`. macOS and Windows: a file `.flush` in the
/// state folder, whose full flush (`F_FULLFSYNC`, `FlushFileBuffers`) empties the disk's
/// cache of everything written back before it.
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
    #[cfg(any(target_os = "macos", windows))]
    {
        #[cfg(target_os = "macos")]
        let same = {
            use std::os::unix::fs::MetadataExt;
            dest.metadata().ok()?.dev() == state_dir.metadata().ok()?.dev()
        };
        #[cfg(windows)]
        let same = crate::store::windows_fs::volume_serial(dest)?
            == crate::store::windows_fs::volume_serial(state_dir)?;
        if !same {
            return None;
        }
        crate::store::paths::no_follow()
            .write(true)
            .create(true)
            .truncate(false)
            .open(state_dir.join(".flush"))
            .ok()
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    {
        let _ = (dest, state_dir);
        None
    }
}

/// Where a shared flush (`sync_fs`) does not write back every file by itself (macOS,
/// Windows), each step first writes back what it wrote: its bytes reach the disk, not yet
/// past the disk's own cache, which the shared flush then empties once for all. A no-op on
/// Linux, whose `syncfs` writes back the whole file system.
pub fn write_back(file: &File, path: &Path, what: &'static str) -> std::io::Result<()> {
    #[cfg(target_os = "macos")]
    {
        use std::os::fd::AsRawFd;
        // Plain fsync: on macOS it writes back without the drive flush F_FULLFSYNC adds.
        // SAFETY: a valid open descriptor, borrowed for the call.
        if unsafe { libc::fsync(file.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        note(what, path, "");
    }
    #[cfg(windows)]
    {
        crate::store::windows_fs::write_back(file)?;
        note(what, path, "");
    }
    #[cfg(not(any(target_os = "macos", windows)))]
    let _ = (file, path, what);
    Ok(())
}

/// The folder's new names written back before a shared flush (macOS; elsewhere the shared
/// flush covers them: Linux's `syncfs`, NTFS's log).
pub fn write_back_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "macos")]
    write_back(&File::open(dir)?, dir, "write back dir")?;
    #[cfg(not(target_os = "macos"))]
    let _ = dir;
    Ok(())
}

/// The shared flush: everything written (Linux) or written back (macOS, Windows) on the
/// file system of `dir` before the call is on disk. Stands for the syncs of the protocol in
/// a group commit.
pub fn sync_fs(dir: &File, path: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a valid open descriptor, borrowed for the call.
        if unsafe { libc::syncfs(dir.as_raw_fd()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    // F_FULLFSYNC on macOS, FlushFileBuffers on Windows: each flushes the disk's cache,
    // which holds every file written back before it, not only this one.
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
    #[cfg(windows)]
    crate::store::windows_fs::replace(from, to)?;
    #[cfg(not(windows))]
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
    let (f, t) = (c_path(from)?, c_path(to)?);
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

/// APFS and HFS+ take an exclusive rename; file systems that do not (some network shares,
/// FAT) fall back to the link.
#[cfg(target_os = "macos")]
fn no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    let (f, t) = (c_path(from)?, c_path(to)?);
    // SAFETY: both are valid NUL-terminated paths that live across the call.
    let r = unsafe { libc::renamex_np(f.as_ptr(), t.as_ptr(), libc::RENAME_EXCL) };
    if r == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::ENOTSUP) | Some(libc::EINVAL) => link_then_unlink(from, to),
        _ => Err(e),
    }
}

/// `MoveFileExW` without `MOVEFILE_REPLACE_EXISTING`: NTFS refuses an existing target in the
/// same call. Not the link: when a scanner holds the `.part`, its delete fails and the file
/// would keep two names.
#[cfg(windows)]
fn no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    crate::store::windows_fs::move_no_replace(from, to)
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    link_then_unlink(from, to)
}

#[cfg(unix)]
fn c_path(p: &Path) -> std::io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "a NUL in a path"))
}

/// The portable no-replace move: `link` fails if the target exists. Where links are not
/// supported either, an existence check right before a plain rename (a narrow race).
#[cfg(unix)]
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

/// The journal file, to make its records durable (protocol step 3 above).
pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    pub fn new(file: File, path: PathBuf) -> Self {
        Journal { file, path }
    }

    pub fn sync(&self) -> std::io::Result<()> {
        sync_data(&self.file, &self.path, "sync journal")
    }

    /// Its appended records written back for a shared flush (see `durable::write_back`).
    pub fn write_back(&self) -> std::io::Result<()> {
        write_back(&self.file, &self.path, "write back journal")
    }

    pub fn path(&self) -> &Path {
        &self.path
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

    /// Another program makes the final name at any moment around our move (the name was
    /// free when it was given): whichever comes first wins, the other's bytes are never
    /// replaced, and our file never ends with two names.
    #[test]
    fn a_target_that_appears_around_the_move_is_never_replaced_nor_a_second_name_left() {
        use std::io::Write;
        use std::sync::{Arc, Barrier};
        let dir = tempfile::tempdir().unwrap();
        let (mut ours_won, mut theirs_won) = (0, 0);
        for i in 0..300u32 {
            let (a, b) = (
                dir.path().join(format!("{i}.part")),
                dir.path().join(format!("{i}.csv")),
            );
            std::fs::write(&a, b"ours").unwrap();
            let start = Arc::new(Barrier::new(2));
            let (b2, go) = (b.clone(), start.clone());
            let them = std::thread::spawn(move || {
                go.wait();
                for _ in 0..(i % 40) * 50 {
                    std::hint::spin_loop();
                }
                let made = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&b2);
                match made {
                    Ok(mut f) => f.write_all(b"theirs").map(|_| true).unwrap(),
                    Err(e) => {
                        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
                        false
                    }
                }
            });
            start.wait();
            let moved = rename_no_replace(&a, &b);
            let they_made_it = them.join().unwrap();
            match moved {
                Ok(()) => {
                    ours_won += 1;
                    assert!(!they_made_it, "both created {}", b.display());
                    assert_eq!(std::fs::read(&b).unwrap(), b"ours");
                    assert!(!a.exists(), "two names after the move");
                }
                Err(e) => {
                    theirs_won += 1;
                    assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists, "{e}");
                    assert!(they_made_it);
                    assert_eq!(std::fs::read(&b).unwrap(), b"theirs");
                    assert_eq!(std::fs::read(&a).unwrap(), b"ours", "the .part is kept");
                }
            }
        }
        let names = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(
            names,
            300 + theirs_won,
            "one name per file, two where theirs came first"
        );
        assert_eq!(ours_won + theirs_won, 300);
    }
}
