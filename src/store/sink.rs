//! Bytes to disk: positional writes into `<fileId>.part`, made durable before their range is
//! journaled, and the MD5 computed over the contiguous prefix as it completes. The move into
//! place is `finalize`'s.

use crate::store::durable;
use md5::{Digest, Md5};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

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
    /// Something is at the final name already (it was free when the name was given). The
    /// complete bytes stay at `complete`.
    #[error("{} appeared while downloading; not overwriting it", .target.display())]
    Occupied { target: PathBuf, complete: PathBuf },
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

pub use crate::store::paths::no_follow;

/// ENOSPC or a quota: the job must stop, keeping everything for a resume.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(28) | Some(122))
        || e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
}

pub(crate) fn io_error(what: &'static str, path: &Path, source: std::io::Error) -> SinkError {
    io(what, path)(source)
}

pub(crate) fn io<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(std::io::Error) -> SinkError + 'a {
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

/// The MD5 a writer feeds as it writes, when its bytes continue the hashed prefix.
pub type SharedMd5 = std::sync::Arc<std::sync::Mutex<Option<Md5Follower>>>;

/// The shared hash if nobody holds it. Nothing on a stream's path waits for it: a read-back
/// holds it for up to a window of parts (half a second).
pub fn try_hash(m: &SharedMd5) -> Option<std::sync::MutexGuard<'_, Option<Md5Follower>>> {
    match m.try_lock() {
        Ok(g) => Some(g),
        Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
        Err(std::sync::TryLockError::WouldBlock) => None,
    }
}

/// Sequential writes into one region of a `.part` file, as positional writes so that several
/// ranges of one file can be written at once through their own handles.
pub struct PartWriter {
    /// Opened with the first write, in the same blocking call: a small file costs one hop
    /// to the blocking pool, not two.
    file: Option<std::sync::Arc<std::fs::File>>,
    path: PathBuf,
    buf: Vec<u8>,
    /// File offset of `buf[0]`.
    buf_start: u64,
    unrecorded_from: u64,
    md5: Option<SharedMd5>,
}

fn open_part(path: &Path) -> std::io::Result<std::fs::File> {
    no_follow()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// What `write_out` gives back: the opened file or what failed, and the buffer for reuse.
type Written = (
    Result<std::sync::Arc<std::fs::File>, (&'static str, std::io::Error)>,
    Vec<u8>,
);

/// Writes `buf` at `offset` (opening the `.part` first if need be) and feeds the MD5 with it.
fn write_out(
    file: Option<std::sync::Arc<std::fs::File>>,
    path: &Path,
    buf: Vec<u8>,
    offset: u64,
    md5: Option<SharedMd5>,
) -> Written {
    let file = match file {
        Some(f) => f,
        None => match open_part(path) {
            Ok(f) => std::sync::Arc::new(f),
            Err(e) => return (Err(("create", e)), buf),
        },
    };
    if buf.is_empty() {
        return (Ok(file), buf);
    }
    if let Err(e) = write_at(&file, &buf, offset) {
        return (Err(("write", e)), buf);
    }
    durable::wrote_part(path, offset, offset + buf.len() as u64);
    if let Some(m) = md5 {
        // Waiting here held up the group's round and every stream behind it; bytes not fed
        // now are read back later.
        if let Some(h) = try_hash(&m).as_mut().and_then(|g| g.as_mut()) {
            h.feed(offset, &buf);
        }
    }
    (Ok(file), buf)
}

impl PartWriter {
    /// `len` is how many bytes this writer expects (it sizes the buffer). `md5` is fed the
    /// bytes written where they continue its prefix (the rest it reads back later).
    pub fn new(path: &Path, offset: u64, len: u64, md5: Option<SharedMd5>) -> Self {
        PartWriter {
            file: None,
            path: path.to_path_buf(),
            buf: Vec::with_capacity((len as usize).min(WRITE_BUF)),
            buf_start: offset,
            unrecorded_from: offset,
            md5,
        }
    }

    /// Creates an empty `.part` (for an empty object).
    pub async fn create_empty(path: &Path) -> Result<(), SinkError> {
        let p = path.to_path_buf();
        tokio::task::spawn_blocking(move || open_part(&p).map(drop))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r)
            .map_err(io("create", path))
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
        let done = tokio::task::spawn_blocking(self.take_write())
            .await
            .map_err(|e| SinkError::Io {
                what: "write",
                path: self.path.clone(),
                source: std::io::Error::other(e.to_string()),
            })?;
        self.written(done)
    }

    /// The blocking work of writing out the buffer (which it takes along).
    fn take_write(&mut self) -> impl FnOnce() -> Written + Send + 'static {
        let buf = std::mem::take(&mut self.buf);
        let (file, path, offset, md5) = (
            self.file.clone(),
            self.path.clone(),
            self.buf_start,
            self.md5.clone(),
        );
        move || write_out(file, &path, buf, offset, md5)
    }

    /// Takes back the buffer (and the opened file) from `write_out`.
    fn written(&mut self, (result, mut buf): Written) -> Result<(), SinkError> {
        let file = result.map_err(|(what, e)| io(what, &self.path)(e))?;
        self.file = Some(file);
        self.buf_start += buf.len() as u64;
        buf.clear();
        self.buf = buf;
        Ok(())
    }

    /// Writes out and syncs (alone, or in the group's next sync of the file system); returns
    /// the span written since the last call, now safe to journal.
    pub async fn make_durable(
        &mut self,
        group: &std::sync::Arc<crate::store::group_sync::GroupSync>,
    ) -> Result<(u64, u64), SinkError> {
        if group.grouped() {
            if self.buf.is_empty() && self.unrecorded_from == self.buf_start {
                return Ok((self.buf_start, self.buf_start));
            }
            // The write rides in the same round of the group as the sync that covers it; where
            // that sync does not write back every file itself, the `.part` is written back.
            let write = self.take_write();
            let path = self.path.clone();
            let done = group
                .after(move || {
                    let (r, buf) = write();
                    let r =
                        r.and_then(
                            |f| match durable::write_back(&f, &path, "write back part") {
                                Ok(()) => Ok(f),
                                Err(e) => Err(("write", e)),
                            },
                        );
                    (r, buf)
                })
                .await
                .map_err(io("write", &self.path))?;
            self.written(done)?;
            let span = (self.unrecorded_from, self.buf_start);
            self.unrecorded_from = self.buf_start;
            return Ok(span);
        }
        self.flush_buf().await?;
        let span = (self.unrecorded_from, self.buf_start);
        if span.0 == span.1 {
            return Ok(span);
        }
        if let Some(file) = self.file.clone() {
            let path = self.path.clone();
            tokio::task::spawn_blocking(move || durable::sync_data(&file, &path, "sync part"))
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))
                .and_then(|r| r)
                .map_err(io("write", &self.path))?;
        }
        self.unrecorded_from = self.buf_start;
        Ok(span)
    }
}

/// MD5 of a `.part` file's contiguous prefix, advanced as ranges complete, so checking a file
/// needs no second pass once it is whole; and for an object uploaded in parts, the MD5s of
/// its parts for each part size it may have had, cut as the prefix passes their ends.
pub struct Md5Follower {
    pos: u64,
    /// None where the whole file's MD5 checks nothing (a multipart object).
    ctx: Option<Md5>,
    parts: Vec<PartHashes>,
}

impl Default for Md5Follower {
    /// The whole file's MD5 only.
    fn default() -> Self {
        Md5Follower::new(true, &[])
    }
}

/// The MD5s of the parts so far for one part size, and of the part being read.
struct PartHashes {
    size: u64,
    current: Md5,
    digests: Vec<u8>,
}

impl Md5Follower {
    /// A follower that hashes the whole prefix when `whole`, and the parts of each of
    /// `part_sizes`.
    pub fn new(whole: bool, part_sizes: &[u64]) -> Self {
        Md5Follower {
            pos: 0,
            ctx: whole.then(Md5::new),
            parts: part_sizes
                .iter()
                .map(|&size| PartHashes {
                    size: size.max(1),
                    current: Md5::new(),
                    digests: Vec::new(),
                })
                .collect(),
        }
    }

    /// How far the hash has come.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Hashes the part of `data` (written at `offset`) that continues the prefix; bytes
    /// beyond a gap are left for `advance` to read back.
    pub fn feed(&mut self, offset: u64, data: &[u8]) {
        let end = offset + data.len() as u64;
        if offset <= self.pos && self.pos < end {
            self.update(&data[(self.pos - offset) as usize..]);
        }
    }

    fn update(&mut self, data: &[u8]) {
        if let Some(ctx) = self.ctx.as_mut() {
            ctx.update(data);
        }
        for p in &mut self.parts {
            let mut at = self.pos;
            let mut rest = data;
            while !rest.is_empty() {
                let left_in_part = p.size - at % p.size;
                let n = (left_in_part as usize).min(rest.len());
                p.current.update(&rest[..n]);
                if n as u64 == left_in_part {
                    let done = std::mem::replace(&mut p.current, Md5::new());
                    p.digests.extend_from_slice(&done.finalize());
                }
                at += n as u64;
                rest = &rest[n..];
            }
        }
        self.pos += data.len() as u64;
    }

    pub fn advance(&mut self, part: &Path, upto: u64) -> Result<(), SinkError> {
        if upto <= self.pos {
            return Ok(());
        }
        let mut f = no_follow()
            .read(true)
            .open(part)
            .map_err(io("read", part))?;
        f.seek(SeekFrom::Start(self.pos))
            .map_err(io("read", part))?;
        let mut buf = vec![0u8; ((upto - self.pos) as usize).min(128 * 1024)];
        while self.pos < upto {
            let want = ((upto - self.pos) as usize).min(buf.len());
            let n = f.read(&mut buf[..want]).map_err(io("read", part))?;
            if n == 0 {
                break;
            }
            self.update(&buf[..n]);
        }
        Ok(())
    }

    /// The whole prefix's MD5 (empty where it was not asked for).
    pub fn hex(&self) -> String {
        self.ctx
            .as_ref()
            .map(|c| hex::encode(c.clone().finalize()))
            .unwrap_or_default()
    }

    /// For each part size followed, the multipart ETag of the prefix as it stands:
    /// `<md5 of the parts' MD5s>-<parts>`.
    pub fn multipart_etags(&self) -> Vec<(u64, String)> {
        self.parts
            .iter()
            .map(|p| {
                let mut digests = p.digests.clone();
                if !self.pos.is_multiple_of(p.size) || self.pos == 0 {
                    digests.extend_from_slice(&p.current.clone().finalize());
                }
                let n = digests.len() / 16;
                (
                    p.size,
                    format!("{}-{n}", hex::encode(Md5::digest(&digests))),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_hashed_as_the_prefix_passes_their_ends() {
        let data: Vec<u8> = (0..2500u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut want = Vec::new();
        for part in data.chunks(1000) {
            want.extend_from_slice(&Md5::digest(part));
        }
        let want = format!("{}-3", hex::encode(Md5::digest(&want)));
        // Fed in pieces that straddle the part ends, one out of order (ignored, read later).
        let dir = tempfile::tempdir().unwrap();
        let part = dir.path().join("x.part");
        std::fs::write(&part, &data).unwrap();
        let mut h = Md5Follower::new(false, &[1000, 999]);
        h.feed(0, &data[..700]);
        h.feed(1700, &data[1700..2000]);
        h.feed(700, &data[700..1500]);
        h.advance(&part, 2500).unwrap();
        let etags = h.multipart_etags();
        assert_eq!(etags[0], (1000, want));
        assert!(etags[1].1.ends_with("-3"));
        assert_eq!(h.hex(), "", "no whole MD5 was asked for");
        // A size that is a whole number of parts has no empty last part.
        let mut even = Md5Follower::new(true, &[1250]);
        even.feed(0, &data);
        assert!(even.multipart_etags()[0].1.ends_with("-2"));
        assert_eq!(even.hex(), hex::encode(Md5::digest(&data)));
    }
}
