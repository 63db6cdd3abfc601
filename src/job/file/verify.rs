//! Verify: the MD5 that follows the completed prefix, and the final checks of the bytes.

use super::plan::composite_part;
use super::state::{internal, lock, FileError, FileRun};
use crate::checksum;
use crate::job::context::Ctx;
use crate::job::events::FileStage;
use crate::storage::s3::ObjectInfo;
use crate::store::sink::{self, SinkError};
use crate::store::state::Verified;
use std::sync::Arc;

/// The MD5 a search gave for the file, when it can be checked: of the bytes as stored, so
/// not for an object stored gzip-encoded (which of its two forms TDP summed is not known).
pub(super) fn search_md5<'a>(run: &'a FileRun, info: &ObjectInfo) -> Option<&'a str> {
    run.hint.md5.as_deref().filter(|_| !info.is_gzip())
}

/// The part sizes a multipart object may have been uploaded with (see `multipart`).
pub(super) fn multipart_sizes(info: &ObjectInfo) -> Vec<u64> {
    info.etag_multipart()
        .map(|(_, parts)| crate::multipart::part_sizes(info.size, parts))
        .unwrap_or_default()
}

/// Feeds the MD5 with the contiguous prefix completed so far (or up to `upto`).
pub(super) async fn advance_hash(run: &Arc<FileRun>, upto: Option<u64>) -> Result<(), FileError> {
    // Mostly fed as it was written: no hop to the blocking pool when nothing is left.
    let prefix = upto.unwrap_or_else(|| lock(&run.ranges).contiguous_prefix());
    // Never waits for the hash on a worker thread: a worker waiting out a read-back stalled
    // every stream it ran.
    match sink::try_hash(&run.hasher) {
        Some(h) if h.as_ref().is_none_or(|h| h.pos() >= prefix) => return Ok(()),
        // Someone is advancing it already: the final check (`upto`) catches up in any case.
        None if upto.is_none() => return Ok(()),
        _ => {}
    }
    let follower = run.clone();
    let task = tokio::task::spawn_blocking(move || {
        let mut h = lock(&follower.hasher);
        // Follows the prefix while it grows: ranges keep completing during a read-back.
        loop {
            let prefix = upto.unwrap_or_else(|| lock(&follower.ranges).contiguous_prefix());
            let Some(h) = h.as_mut().filter(|h| h.pos() < prefix) else {
                return Ok(());
            };
            let before = h.pos();
            h.advance(&follower.part, prefix)?;
            if h.pos() == before {
                return Ok(());
            }
        }
    });
    if upto.is_none() {
        // In the background: a stream that waited for a read-back (a window of parts, up to
        // half a second) stopped reading its connection and became the straggler everyone
        // else then waited for. A failed read-back shows again at the final check.
        return Ok(());
    }
    task.await
        .map_err(internal)?
        .map_err(|e: SinkError| FileError::Integrity(e.to_string()))
}

/// The final checks and the move into place.
/// The final checks of the bytes in the `.part`: every byte there, then S3's additional
/// checksum, the MD5 (of the ETag, or TDP's `file.checksum`) and a multipart ETag. Returns
/// what held and the MD5 when one was checked.
pub(super) async fn verify(
    ctx: &Arc<Ctx>,
    run: &Arc<FileRun>,
    info: &ObjectInfo,
) -> Result<(Verified, Option<String>), FileError> {
    ctx.progress
        .update(&run.id, |a| a.stage = FileStage::Verifying);
    if !lock(&run.ranges).missing(info.size).is_empty() {
        return Err(FileError::Integrity("parts of the file are missing".into()));
    }
    let on_disk = std::fs::metadata(&run.part).map(|m| m.len()).unwrap_or(0);
    if on_disk != info.size {
        return Err(FileError::Integrity(format!(
            "length mismatch: expected {} bytes, have {on_disk}",
            info.size
        )));
    }
    // S3's additional checksum first: where it holds, a multipart ETag that does not match
    // only means its part size was guessed wrong.
    let s3_checksum = match info.checksum.clone() {
        // A composite value whose part size cannot be told says nothing.
        Some(sum) if sum.parts.is_some() && composite_part(info).is_none() => None,
        None => None,
        Some(sum) => {
            let pieces = lock(&run.crcs).clone();
            let known = lock(&run.part_sums).clone();
            let checked_parts = known.len();
            let (part, size, algorithm) = (run.part.clone(), info.size, sum.algorithm);
            let part_size = composite_part(info);
            let (held, got) = tokio::task::spawn_blocking(move || {
                let file = sink::no_follow().read(true).open(&part)?;
                match part_size {
                    Some(p) => checksum::composite_matches(&sum, &known, &file, size, p),
                    None => {
                        checksum::matches(&sum, &pieces, &file, size).map(|m| (m, String::new()))
                    }
                }
            })
            .await
            .map_err(internal)?
            .map_err(|e| FileError::Integrity(format!("could not read the file back ({e})")))?;
            // No part had a checksum of its own and the whole does not match: the part size
            // may be guessed wrong (S3 sends a part's checksum only for its exact range);
            // the same bytes twice tell that from damage, as for multipart ETags.
            let guessed_wrong = !held && part_size.is_some() && checked_parts == 0 && {
                let digest = format!("composite:{got}");
                let mut seen = lock(&run.mismatches);
                let again = seen.contains(&digest);
                seen.push(digest);
                again
            };
            if !held && !guessed_wrong {
                return Err(FileError::Integrity(format!(
                    "checksum mismatch with S3's {}",
                    algorithm.label()
                )));
            }
            held.then_some(match algorithm {
                checksum::Algorithm::Crc64nvme => Verified::Crc64Nvme,
                checksum::Algorithm::Crc32c => Verified::Crc32c,
                checksum::Algorithm::Crc32 => Verified::Crc32,
                checksum::Algorithm::Sha256 => Verified::Sha256,
            })
        }
    };
    let mut md5 = None;
    let expected: Vec<&str> = info
        .etag_md5()
        .into_iter()
        .chain(search_md5(run, info))
        .collect();
    let multipart = info
        .etag_multipart()
        .filter(|_| !multipart_sizes(info).is_empty());
    let verified = if expected.is_empty() && multipart.is_none() {
        s3_checksum.unwrap_or(Verified::Size)
    } else {
        advance_hash(run, Some(info.size)).await?;
        let (got, parts) = lock(&run.hasher)
            .as_ref()
            .map(|h| (h.hex(), h.multipart_etags()))
            .unwrap_or_default();
        if let Some(e) = expected.iter().find(|e| !got.eq_ignore_ascii_case(e)) {
            return Err(FileError::Integrity(if Some(*e) == info.etag_md5() {
                "checksum mismatch".to_string()
            } else {
                "checksum mismatch with TDP's file.checksum".to_string()
            }));
        }
        if !expected.is_empty() {
            md5 = Some(got);
        }
        // S3's own records first, then TDP's checksum (see `Verified`).
        let whole = if info.etag_md5().is_some() {
            Verified::Md5
        } else {
            s3_checksum.unwrap_or(Verified::SearchChecksum)
        };
        match multipart {
            None => whole,
            Some((etag, _)) if parts.iter().any(|(_, p)| p.eq_ignore_ascii_case(etag)) => {
                Verified::MultipartMd5
            }
            // The whole file matched TDP's checksum or S3's: the part size was guessed wrong.
            Some(_) if !expected.is_empty() => whole,
            Some(_) if s3_checksum.is_some() => whole,
            Some(_) => {
                // Damage in transit changes the digest from one download to the next; a part
                // size guessed wrong gives the same one again: then the bytes are what S3
                // holds, checked by size.
                let digest = parts
                    .iter()
                    .map(|(_, p)| p.as_str())
                    .collect::<Vec<_>>()
                    .join(",");
                let mut seen = lock(&run.mismatches);
                if seen.contains(&digest) {
                    tracing::info!(
                        "{}: the same bytes twice, not matching the multipart ETag for the part \
                         sizes tried: its parts were of another size; checked by size",
                        run.id
                    );
                    Verified::Size
                } else {
                    seen.push(digest);
                    return Err(FileError::Integrity(
                        "checksum mismatch (the parts' MD5s do not give the multipart ETag)"
                            .to_string(),
                    ));
                }
            }
        }
    };
    Ok((verified, md5))
}
