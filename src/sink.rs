//! Bytes to disk: positional writes into `<fileId>.part`, made durable before their range is
//! journaled; MD5 computed over the contiguous prefix as it completes; and the final step,
//! which checks, decodes gzip objects and renames into place atomically.

use md5::{Digest, Md5};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot {what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Blocked(String),
    #[error("could not decode the gzip-encoded file: {0}")]
    Decode(std::io::Error),
}

impl SinkError {
    pub fn io_error(&self) -> Option<&std::io::Error> {
        match self {
            SinkError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// ENOSPC or a quota: the job must stop, keeping everything for a resume.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28) | Some(122))
        || e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
}

fn io<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SinkError + 'a {
    move |source| SinkError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// Bytes buffered per stream before a positional write: bounds memory per connection.
const WRITE_BUF: usize = 256 * 1024;

#[cfg(unix)]
fn write_at(file: &std::fs::File, data: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, data, offset)
}

#[cfg(windows)]
fn write_at(file: &std::fs::File, mut data: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::windows::fs::FileExt;
    while !data.is_empty() {
        let n = file.seek_write(data, offset)?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        data = &data[n..];
        offset += n as u64;
    }
    Ok(())
}

/// Sequential writes into one region of a `.part` file, as positional writes so that several
/// ranges of one file can be written at once through their own handles.
pub struct PartWriter {
    file: std::sync::Arc<std::fs::File>,
    path: PathBuf,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_start: u64,
    unrecorded_from: u64,
}

impl PartWriter {
    /// `len` is how many bytes this writer expects (it sizes the buffer).
    pub async fn open(path: &Path, offset: u64, len: u64) -> Result<Self, SinkError> {
        let p = path.to_path_buf();
        let file = tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(&p)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(io("create", path))?;
        Ok(PartWriter {
            file: std::sync::Arc::new(file),
            path: path.to_path_buf(),
            buf: Vec::with_capacity((len as usize).min(WRITE_BUF)),
            buf_start: offset,
            unrecorded_from: offset,
        })
    }

    pub async fn write(&mut self, data: &[u8]) -> Result<(), SinkError> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WRITE_BUF {
            self.flush_buf().await?;
        }
        Ok(())
    }

    async fn flush_buf(&mut self) -> Result<(), SinkError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        let (file, offset) = (self.file.clone(), self.buf_start);
        let (result, mut buf) = tokio::task::spawn_blocking(move || {
            let r = write_at(&file, &buf, offset);
            (r, buf)
        })
        .await
        .map_err(|e| SinkError::Io {
            what: "write",
            path: self.path.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        result.map_err(io("write", &self.path))?;
        self.buf_start += buf.len() as u64;
        buf.clear();
        self.buf = buf;
        Ok(())
    }

    /// Writes out and syncs; returns the span written since the last call, now safe to journal.
    pub async fn make_durable(&mut self) -> Result<(u64, u64), SinkError> {
        self.flush_buf().await?;
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(io("write", &self.path))?;
        let span = (self.unrecorded_from, self.buf_start);
        self.unrecorded_from = self.buf_start;
        Ok(span)
    }
}

/// MD5 of a `.part` file's contiguous prefix, advanced as ranges complete, so checking a file
/// needs no second pass once it is whole.
#[derive(Default)]
pub struct Md5Follower {
    pos: u64,
    ctx: Md5,
}

impl Md5Follower {
    pub fn advance(&mut self, part: &Path, upto: u64) -> Result<(), SinkError> {
        if upto <= self.pos {
            return Ok(());
        }
        let mut f = std::fs::File::open(part).map_err(io("read", part))?;
        f.seek(SeekFrom::Start(self.pos))
            .map_err(io("read", part))?;
        let mut buf = vec![0u8; ((upto - self.pos) as usize).min(128 * 1024)];
        while self.pos < upto {
            let want = ((upto - self.pos) as usize).min(buf.len());
            let n = f.read(&mut buf[..want]).map_err(io("read", part))?;
            if n == 0 {
                break;
            }
            self.ctx.update(&buf[..n]);
            self.pos += n as u64;
        }
        Ok(())
    }

    pub fn position(&self) -> u64 {
        self.pos
    }

    pub fn hex(&self) -> String {
        hex::encode(self.ctx.clone().finalize())
    }
}

/// Creates the folders of `rel_parent` below `dest`, refusing links and non-folders on the
/// way, so nothing can be written outside the destination.
pub fn ensure_folders(dest: &Path, rel_parent: &Path) -> Result<(), SinkError> {
    let mut path = dest.to_path_buf();
    for c in rel_parent.components() {
        let Component::Normal(part) = c else {
            return Err(SinkError::Blocked(format!(
                "refusing a path that leaves the destination: {}",
                rel_parent.display()
            )));
        };
        path.push(part);
        match path.symlink_metadata() {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(SinkError::Blocked(format!(
                    "{} is a link or a file, not a folder; not writing through it",
                    path.display()
                )))
            }
            Err(_) => match std::fs::create_dir(&path) {
                Ok(()) => {}
                // Another file of the job made it just now.
                Err(e)
                    if e.kind() == std::io::ErrorKind::AlreadyExists
                        && path.symlink_metadata().is_ok_and(|m| m.is_dir()) => {}
                Err(e) => return Err(io("create folder", &path)(e)),
            },
        }
    }
    Ok(())
}

/// Moves a complete, checked `.part` into place (decoding gzip objects on the way) and
/// returns the final size. The final name never holds partial bytes.
pub fn finalize(
    dest: &Path,
    rel: &Path,
    part: &Path,
    scratch: &Path,
    gzip: bool,
) -> Result<u64, SinkError> {
    if let Some(parent) = rel.parent() {
        ensure_folders(dest, parent)?;
    }
    let target = dest.join(rel);
    if target.symlink_metadata().is_ok() {
        return Err(SinkError::Blocked(format!(
            "{} appeared while downloading; not overwriting it",
            target.display()
        )));
    }
    let source = if gzip {
        let input = std::fs::File::open(part).map_err(io("read", part))?;
        let mut decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(input));
        let out = std::fs::File::create(scratch).map_err(io("create", scratch))?;
        let mut w = std::io::BufWriter::with_capacity(256 * 1024, out);
        std::io::copy(&mut decoder, &mut w).map_err(|e| {
            let _ = std::fs::remove_file(scratch);
            if is_disk_full(&e) {
                SinkError::Io {
                    what: "write",
                    path: scratch.to_path_buf(),
                    source: e,
                }
            } else {
                SinkError::Decode(e)
            }
        })?;
        w.flush().map_err(io("write", scratch))?;
        w.get_ref().sync_all().map_err(io("write", scratch))?;
        scratch
    } else {
        // Already durable: every range was synced before it was journaled.
        part
    };
    let size = source.metadata().map_err(io("read", source))?.len();
    std::fs::rename(source, &target).map_err(io("move into place", &target))?;
    if gzip {
        let _ = std::fs::remove_file(part);
    }
    Ok(size)
}
