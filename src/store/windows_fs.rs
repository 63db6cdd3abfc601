//! What Windows needs beyond std for moving files into place and making them durable: a
//! move that refuses to replace (`MoveFileExW` without `MOVEFILE_REPLACE_EXISTING`), waited
//! out while another program holds the file (antivirus scanners open a just-written file for
//! a moment: access denied or a sharing violation), the name of that program where Windows
//! tells it (Restart Manager), `\\?\` paths past 260 characters, and the write-back of a
//! file's bytes without a flush of the disk's cache (`NtFlushBuffersFileEx` with
//! `FLUSH_FLAGS_NO_SYNC`, as git's batched fsync does), for `durable`'s shared flush.

use std::ffi::OsString;
use std::os::windows::ffi::{OsStrExt, OsStringExt};
use std::os::windows::io::AsRawHandle;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const ERROR_ACCESS_DENIED: i32 = 5;
const ERROR_SHARING_VIOLATION: i32 = 32;
const ERROR_LOCK_VIOLATION: i32 = 33;

/// How long a move waits for another program to let go of a file before it gives up: scans
/// take a moment; a file still held after this is held by something a user must look at.
pub const HELD_PATIENCE: Duration = Duration::from_secs(10);

/// Whether Windows refused because another program has the file open (or, for access
/// denied, may have: a scanner's handle shows up as either).
pub fn is_held(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(ERROR_ACCESS_DENIED | ERROR_SHARING_VIOLATION | ERROR_LOCK_VIOLATION)
    )
}

/// The path as a NUL-terminated wide string, in the `\\?\` form when it is too long for the
/// plain one (std does the same for its own calls; a direct Win32 call must do it itself).
pub fn wide(p: &Path) -> std::io::Result<Vec<u16>> {
    let long = p.as_os_str().len() >= 248;
    let mut w: Vec<u16> = if long {
        verbatim(p)?.as_os_str().encode_wide().collect()
    } else {
        p.as_os_str().encode_wide().collect()
    };
    if w.contains(&0) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "a NUL in a path",
        ));
    }
    w.push(0);
    Ok(w)
}

/// The `\\?\` form of a path: absolute, with `\` separators, which Win32 takes up to 32,767
/// characters long.
pub fn verbatim(p: &Path) -> std::io::Result<PathBuf> {
    let abs: Vec<u16> = std::path::absolute(p)?.as_os_str().encode_wide().collect();
    let bs = u16::from(b'\\');
    let prefixed = |s: &[u16]| s.len() >= 4 && s[0] == bs && s[1] == bs && s[3] == bs;
    let out: Vec<u16> =
        if prefixed(&abs) && (abs[2] == u16::from(b'?') || abs[2] == u16::from(b'.')) {
            abs
        } else if abs.len() >= 2 && abs[0] == bs && abs[1] == bs {
            r"\\?\UNC\"
                .encode_utf16()
                .chain(abs[2..].iter().copied())
                .collect()
        } else {
            r"\\?\".encode_utf16().chain(abs.iter().copied()).collect()
        };
    Ok(PathBuf::from(OsString::from_wide(&out)))
}

/// Moves `from` to `to` unless `to` exists (`AlreadyExists`): the file system decides, in
/// the same call, so a file that appears at `to` at the last moment is never replaced, and
/// no second name is ever made. A held file is waited for (`HELD_PATIENCE`).
pub fn move_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    move_no_replace_within(from, to, HELD_PATIENCE)
}

pub(crate) fn move_no_replace_within(
    from: &Path,
    to: &Path,
    patience: Duration,
) -> std::io::Result<()> {
    let (f, t) = (wide(from)?, wide(to)?);
    while_held(from, patience, || {
        // SAFETY: both are NUL-terminated wide strings that live across the call. No
        // MOVEFILE_REPLACE_EXISTING: an existing target fails the call; no COPY_ALLOWED: the
        // state folder is on the destination's volume, and a copy could leave two names.
        let ok = unsafe {
            windows_sys::Win32::Storage::FileSystem::MoveFileExW(f.as_ptr(), t.as_ptr(), 0)
        };
        if ok != 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    })
}

/// A rename that replaces the target (our own journal and report), waited out like a move.
pub fn replace(from: &Path, to: &Path) -> std::io::Result<()> {
    while_held(from, HELD_PATIENCE, || std::fs::rename(from, to))
}

/// Runs `op` again with a growing pause while Windows says another program holds the file,
/// for at most `patience`; then an error that says so, naming the program where it can.
fn while_held(
    held: &Path,
    patience: Duration,
    mut op: impl FnMut() -> std::io::Result<()>,
) -> std::io::Result<()> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(20);
    loop {
        match op() {
            Err(e) if is_held(&e) => {
                if start.elapsed() >= patience {
                    return Err(held_error(held, &e, start.elapsed()));
                }
                std::thread::sleep(pause.min(patience.saturating_sub(start.elapsed())));
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            other => return other,
        }
    }
}

fn held_error(path: &Path, e: &std::io::Error, waited: Duration) -> std::io::Error {
    let why = match e.raw_os_error() {
        Some(ERROR_ACCESS_DENIED) => "access denied",
        _ => "in use by another program",
    };
    let who = match holders(path).as_slice() {
        [] => "a program that has it open: often an antivirus scanner, or a backup or sync \
               client (OneDrive, Dropbox)"
            .to_string(),
        names => format!("{} has it open", names.join(", ")),
    };
    std::io::Error::new(
        e.kind(),
        format!(
            "Windows refused for {} s ({why}, error {}): {who}. Close that program or let it \
             finish, then run the same job again (it resumes); if it is an antivirus, ask IT \
             to exclude this folder",
            waited.as_secs(),
            e.raw_os_error().unwrap_or(0),
        ),
    )
}

/// The programs that have `path` open, as the Restart Manager tells them (empty where it
/// cannot: not every Windows, nor Wine, answers).
pub fn holders(path: &Path) -> Vec<String> {
    use windows_sys::Win32::System::RestartManager::*;
    let Ok(file) = wide(path) else {
        return Vec::new();
    };
    let mut session = 0u32;
    let mut key = [0u16; CCH_RM_SESSION_KEY as usize + 1];
    // SAFETY: out-pointers to locals of the sizes the API documents.
    if unsafe { RmStartSession(&mut session, 0, key.as_mut_ptr()) } != 0 {
        return Vec::new();
    }
    let mut names = Vec::new();
    let files = [file.as_ptr()];
    // SAFETY: one valid NUL-terminated path; no applications or services.
    let registered = unsafe {
        RmRegisterResources(
            session,
            1,
            files.as_ptr(),
            0,
            std::ptr::null(),
            0,
            std::ptr::null(),
        )
    };
    if registered == 0 {
        let mut infos: [RM_PROCESS_INFO; 8] = unsafe { std::mem::zeroed() };
        let (mut needed, mut count, mut reasons) = (0u32, infos.len() as u32, 0u32);
        // SAFETY: `infos` holds `count` entries; the API writes at most that many.
        let r = unsafe {
            RmGetList(
                session,
                &mut needed,
                &mut count,
                infos.as_mut_ptr(),
                &mut reasons,
            )
        };
        if r == 0 {
            for info in infos.iter().take(count as usize) {
                let n = info
                    .strAppName
                    .iter()
                    .position(|&c| c == 0)
                    .unwrap_or(info.strAppName.len());
                let name = String::from_utf16_lossy(&info.strAppName[..n]);
                names.push(format!("{name} (process {})", info.Process.dwProcessId));
            }
        }
    }
    // SAFETY: the session this call started.
    unsafe { RmEndSession(session) };
    names
}

/// Writes the file's bytes and metadata from the cache to the disk without asking the disk
/// to flush its own cache: cheap, and made durable by the next full flush of the volume
/// (`durable::sync_fs`). Where Windows lacks the call (before Windows 10 1709; Wine, which
/// exports it as a stub that aborts), a full flush of the file instead.
pub fn write_back(file: &std::fs::File) -> std::io::Result<()> {
    use windows_sys::Win32::System::SystemServices::FLUSH_FLAGS_NO_SYNC;
    let Some(flush) = nt_flush_buffers_file_ex() else {
        return file.sync_all();
    };
    let mut status: windows_sys::Win32::System::IO::IO_STATUS_BLOCK =
        // SAFETY: plain old data, written by the call.
        unsafe { std::mem::zeroed() };
    // SAFETY: a valid open handle borrowed for the call; no parameters block.
    let r = unsafe {
        flush(
            file.as_raw_handle() as _,
            FLUSH_FLAGS_NO_SYNC,
            std::ptr::null(),
            0,
            &mut status,
        )
    };
    if r >= 0 {
        Ok(())
    } else {
        file.sync_all()
    }
}

type NtFlushBuffersFileEx = unsafe extern "system" fn(
    windows_sys::Win32::Foundation::HANDLE,
    u32,
    *const std::ffi::c_void,
    u32,
    *mut windows_sys::Win32::System::IO::IO_STATUS_BLOCK,
) -> i32;

/// `ntdll!NtFlushBuffersFileEx`, looked up once, where it is real.
fn nt_flush_buffers_file_ex() -> Option<NtFlushBuffersFileEx> {
    use windows_sys::Win32::System::LibraryLoader::{GetModuleHandleW, GetProcAddress};
    static FOUND: std::sync::OnceLock<Option<NtFlushBuffersFileEx>> = std::sync::OnceLock::new();
    *FOUND.get_or_init(|| {
        let name: Vec<u16> = "ntdll.dll".encode_utf16().chain(Some(0)).collect();
        // SAFETY: a NUL-terminated name; ntdll is loaded in every process.
        let ntdll = unsafe { GetModuleHandleW(name.as_ptr()) };
        if ntdll.is_null() {
            return None;
        }
        // SAFETY: NUL-terminated names of exports; only their presence is asked.
        let wine = unsafe { GetProcAddress(ntdll, c"wine_get_version".as_ptr().cast()) };
        if wine.is_some() {
            return None;
        }
        // SAFETY: as above; the export has the documented signature of the type.
        let f = unsafe { GetProcAddress(ntdll, c"NtFlushBuffersFileEx".as_ptr().cast()) }?;
        // SAFETY: the same function, typed as documented.
        Some(unsafe { std::mem::transmute::<_, NtFlushBuffersFileEx>(f) })
    })
}

/// What the shell ("Show in folder", Explorer) can open for `path`, which stops at 260
/// characters where file operations do not: the path itself when short enough, else its
/// 8.3 short form where the volume has short names, else the nearest folder above it that
/// fits. The flag says whether it is the path itself (in some form).
pub fn shell_path(path: &Path) -> (PathBuf, bool) {
    const MAX_PATH: usize = 260;
    let fits = |p: &Path| p.as_os_str().encode_wide().count() < MAX_PATH;
    if fits(path) {
        return (path.to_path_buf(), true);
    }
    if let Some(short) = short_form(path).filter(|p| fits(p)) {
        return (short, true);
    }
    let mut up = path.parent();
    while let Some(dir) = up {
        if let Some(short) = short_form(dir).filter(|p| fits(p)) {
            return (short, false);
        }
        if fits(dir) {
            return (dir.to_path_buf(), false);
        }
        up = dir.parent();
    }
    (path.to_path_buf(), true)
}

/// The 8.3 short form of an existing path, without the `\\?\` prefix it was asked with.
fn short_form(path: &Path) -> Option<PathBuf> {
    use windows_sys::Win32::Storage::FileSystem::GetShortPathNameW;
    let long: Vec<u16> = verbatim(path)
        .ok()?
        .as_os_str()
        .encode_wide()
        .chain(Some(0))
        .collect();
    let mut buf = vec![0u16; 32_768];
    // SAFETY: a NUL-terminated input and an output buffer of the length given.
    let n = unsafe { GetShortPathNameW(long.as_ptr(), buf.as_mut_ptr(), buf.len() as u32) };
    if n == 0 || n as usize >= buf.len() {
        return None;
    }
    let s = String::from_utf16(&buf[..n as usize]).ok()?;
    let plain = match s.strip_prefix(r"\\?\UNC\") {
        Some(rest) => format!(r"\\{rest}"),
        None => s.strip_prefix(r"\\?\").unwrap_or(&s).to_string(),
    };
    Some(PathBuf::from(plain))
}

/// The serial number of the volume a path is on: files on one volume share a flush.
pub fn volume_serial(path: &Path) -> Option<u32> {
    use std::os::windows::fs::OpenOptionsExt;
    use windows_sys::Win32::Storage::FileSystem::{
        GetFileInformationByHandle, BY_HANDLE_FILE_INFORMATION, FILE_FLAG_BACKUP_SEMANTICS,
    };
    // Folders open only with backup semantics; no access rights are needed for the query.
    let f = std::fs::OpenOptions::new()
        .access_mode(0)
        .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
        .open(path)
        .ok()?;
    let mut info: BY_HANDLE_FILE_INFORMATION = unsafe { std::mem::zeroed() };
    // SAFETY: a valid handle and an out-struct of the documented type.
    let ok = unsafe { GetFileInformationByHandle(f.as_raw_handle() as _, &mut info) };
    (ok != 0).then_some(info.dwVolumeSerialNumber)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::windows::fs::OpenOptionsExt;

    #[test]
    fn long_paths_take_the_verbatim_form() {
        let dir = tempfile::tempdir().unwrap();
        let mut deep = dir.path().to_path_buf();
        for i in 0..6 {
            deep.push(format!("{i}-{}", "d".repeat(50)));
        }
        assert!(deep.as_os_str().len() > 260);
        std::fs::create_dir_all(&deep).unwrap();
        let (a, b) = (deep.join("a.part"), deep.join("b.csv"));
        std::fs::write(&a, b"bytes").unwrap();
        move_no_replace(&a, &b).unwrap();
        assert_eq!(std::fs::read(&b).unwrap(), b"bytes");
        let v = verbatim(&b).unwrap();
        assert!(v.to_string_lossy().starts_with(r"\\?\"), "{}", v.display());
        // "Show in folder" gets something the shell can open: the file in its short form,
        // or a folder above it, and never a path past 260 characters.
        let (shown, exact) = shell_path(&b);
        assert!(shown.as_os_str().len() < 260, "{}", shown.display());
        if exact {
            assert_eq!(std::fs::read(&shown).unwrap(), b"bytes");
        } else {
            assert!(shown.is_dir(), "{}", shown.display());
        }
        assert_eq!(shell_path(dir.path()), (dir.path().to_path_buf(), true));
    }

    #[test]
    fn a_file_held_by_another_program_is_moved_once_it_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("x.part"), dir.path().join("x.csv"));
        std::fs::write(&a, b"ours").unwrap();
        // As a scanner does: open with no sharing, so a move (which needs delete access) fails.
        let held = std::fs::OpenOptions::new()
            .read(true)
            .share_mode(0)
            .open(&a)
            .unwrap();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let start = Instant::now();
        move_no_replace(&a, &b).unwrap();
        t.join().unwrap();
        assert!(start.elapsed() >= Duration::from_millis(250));
        assert_eq!(std::fs::read(&b).unwrap(), b"ours");
        assert!(!a.exists());
    }

    #[test]
    fn a_file_held_too_long_fails_with_words_and_keeps_one_name() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("y.part"), dir.path().join("y.csv"));
        std::fs::write(&a, b"ours").unwrap();
        let _held = std::fs::OpenOptions::new()
            .read(true)
            .share_mode(0)
            .open(&a)
            .unwrap();
        let e = move_no_replace_within(&a, &b, Duration::from_millis(400)).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("Windows refused for"), "{text}");
        assert!(
            text.contains("antivirus") || text.contains("has it open"),
            "{text}"
        );
        assert!(a.exists() && !b.exists(), "one name: the .part");
    }
}
