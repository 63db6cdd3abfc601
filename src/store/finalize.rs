//! The move of a verified `.part` into place: its folders made below the destination (never
//! through a link), a gzip object decoded on the way, and a no-replace rename that leaves
//! whatever appeared at the name meanwhile where it is.

use crate::store::durable;
use crate::store::paths::no_follow;
use crate::store::sink::{io, is_disk_full, SinkError};
use std::io::{Read, Write};
use std::path::{Component, Path};

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
/// returns the final size. The final name never holds partial bytes. A gzip object may
/// decode to at most `gzip_max_ratio` times its stored size (a bomb is an integrity error).
pub fn finalize(
    dest: &Path,
    rel: &Path,
    part: &Path,
    scratch: &Path,
    gzip: bool,
    gzip_max_ratio: u64,
    sync_folder: bool,
) -> Result<u64, SinkError> {
    if let Some(parent) = rel.parent() {
        ensure_folders(dest, parent)?;
    }
    let target = dest.join(rel);
    let source = if gzip {
        let input = no_follow()
            .read(true)
            .open(part)
            .map_err(io("read", part))?;
        let stored = input.metadata().map_err(io("read", part))?.len();
        let limit = stored.max(1).saturating_mul(gzip_max_ratio);
        let decoder = flate2::read::MultiGzDecoder::new(std::io::BufReader::new(input));
        let mut decoder = decoder.take(limit.saturating_add(1));
        let out = no_follow()
            .write(true)
            .create(true)
            .truncate(true)
            .open(scratch)
            .map_err(io("create", scratch))?;
        let mut w = std::io::BufWriter::with_capacity(256 * 1024, out);
        let decoded = std::io::copy(&mut decoder, &mut w).map_err(|e| {
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
        if decoded > limit {
            drop(w);
            let _ = std::fs::remove_file(scratch);
            return Err(SinkError::Decode(std::io::Error::other(format!(
                "it decodes to more than {gzip_max_ratio} times its stored size ({stored} bytes)"
            ))));
        }
        w.flush().map_err(io("write", scratch))?;
        durable::sync_data(w.get_ref(), scratch, "sync decoded").map_err(io("write", scratch))?;
        scratch
    } else {
        // Already durable: every range was synced before it was journaled.
        part
    };
    let size = source.metadata().map_err(io("read", source))?.len();
    match durable::rename_no_replace(source, &target) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(SinkError::Occupied {
                target,
                complete: source.to_path_buf(),
            })
        }
        Err(e) => return Err(io("move into place", &target)(e)),
    }
    let folder = target.parent().unwrap_or(dest);
    if sync_folder {
        durable::sync_dir(folder).map_err(io("sync", folder))?;
    } else {
        durable::write_back_dir(folder).map_err(io("sync", folder))?;
    }
    if gzip {
        let _ = std::fs::remove_file(part);
    }
    Ok(size)
}

/// Whether two files hold the same bytes (a file found at our name may be ours already).
pub fn same_bytes(a: &Path, b: &Path) -> std::io::Result<bool> {
    use std::io::Read;
    let (fa, fb) = (
        no_follow().read(true).open(a)?,
        no_follow().read(true).open(b)?,
    );
    let (ma, mb) = (fa.metadata()?, fb.metadata()?);
    if !mb.is_file() || ma.len() != mb.len() {
        return Ok(false);
    }
    let mut ra = std::io::BufReader::with_capacity(256 * 1024, fa);
    let mut rb = std::io::BufReader::with_capacity(256 * 1024, fb);
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let n = ra.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        rb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;
    use std::path::PathBuf;

    fn gzip_part(dir: &Path, plain: &[u8]) -> PathBuf {
        let part = dir.join("x.part");
        let mut enc = GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(plain).unwrap();
        std::fs::write(&part, enc.finish().unwrap()).unwrap();
        part
    }

    #[test]
    fn gzip_decoding_stops_past_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let zeros = vec![0u8; 1 << 20];
        let part = gzip_part(dir.path(), &zeros);
        let scratch = dir.path().join("x.decoding");
        let e = finalize(&dest, Path::new("a.bin"), &part, &scratch, true, 10, true).unwrap_err();
        assert!(matches!(e, SinkError::Decode(_)), "{e}");
        assert!(!dest.join("a.bin").exists() && !scratch.exists());
        // The same object within a generous bound lands whole.
        let n = finalize(&dest, Path::new("a.bin"), &part, &scratch, true, 1100, true).unwrap();
        assert_eq!(n, zeros.len() as u64);
        assert_eq!(std::fs::read(dest.join("a.bin")).unwrap(), zeros);
    }

    #[test]
    fn a_gzip_object_cut_short_or_changed_inside_its_stream_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("dest");
        std::fs::create_dir(&dest).unwrap();
        let plain: Vec<u8> = (0..200_000u32).map(|i| (i * 31 % 97) as u8).collect();
        let good = std::fs::read(gzip_part(dir.path(), &plain)).unwrap();
        let scratch = dir.path().join("x.decoding");
        let part = dir.path().join("x.part");
        let mut flipped = good.clone();
        flipped[good.len() / 2] ^= 0x01;
        // The last 8 bytes are the trailer: CRC-32 and length of the decoded bytes.
        let mut wrong_crc = good.clone();
        let at = good.len() - 6;
        wrong_crc[at] ^= 0x01;
        for (what, bytes) in [
            ("cut short", &good[..good.len() - 5]),
            ("cut inside the stream", &good[..good.len() / 3]),
            ("a changed byte in the stream", &flipped[..]),
            ("a changed trailer", &wrong_crc[..]),
        ] {
            std::fs::write(&part, bytes).unwrap();
            let e = finalize(&dest, Path::new("a.bin"), &part, &scratch, true, 1100, true)
                .expect_err(what);
            assert!(matches!(e, SinkError::Decode(_)), "{what}: {e}");
            assert!(!dest.join("a.bin").exists() && !scratch.exists(), "{what}");
        }
        std::fs::write(&part, &good).unwrap();
        finalize(&dest, Path::new("a.bin"), &part, &scratch, true, 1100, true).unwrap();
        assert_eq!(std::fs::read(dest.join("a.bin")).unwrap(), plain);
    }
}
