//! Plan: which byte spans of a file are fetched, and by how many streams.

use super::state::{lock, FileRun};
use crate::job::context::Ctx;
use crate::storage::s3::ObjectInfo;

/// Pieces near a file's end are no smaller than this (a request costs a round trip).
pub(super) const MIN_PIECE: u64 = 1 << 20;

/// The byte spans still missing from `from` on, each at most a part long (a file below the
/// split threshold: one span).
///
/// The MD5 follows the completed prefix, so pieces should complete in order, one after
/// another. In a file of more parts than it has streams, parts of one size started together
/// finished together, wave after wave, and the hash then had a window of parts (256 MiB at
/// 32 streams) to read back at once, the last one after the last byte. So there the first
/// pieces grow from a part per stream to a part (their ends are staggered, and stay so), and
/// where less than a part per stream is left they shrink again (to `MIN_PIECE`). Smaller
/// files keep whole parts: more requests would cost more than their window.
pub(super) fn spans(ctx: &Ctx, run: &FileRun, info: &ObjectInfo, from: u64) -> Vec<(u64, u64)> {
    // A composite-checksum object is fetched a part per request: S3 sends a part's
    // checksum only for a range that is that part.
    let composite = composite_part(info);
    let part_size = composite.unwrap_or(ctx.cfg.part_size.max(1));
    let streams = streams_per_file(ctx);
    let split = info.size >= ctx.cfg.split_threshold || composite.is_some();
    let staggered = split && composite.is_none() && info.size / part_size > streams;
    let mut spans = Vec::new();
    for (a, b) in lock(&run.ranges).missing(info.size) {
        let mut s = a.max(from);
        while s < b {
            let piece = if staggered {
                let ramp = (spans.len() as u64 + 1).saturating_mul(part_size) / streams;
                let tail = (info.size - s) / streams;
                part_size.min(ramp.min(tail).max(MIN_PIECE))
            } else if split {
                part_size
            } else {
                u64::MAX
            };
            let e = match composite {
                // To the next part boundary: a piece that starts within a part (after a
                // one-byte probe) ends where the part does, and the rest are whole parts.
                Some(p) => b.min((s / p + 1).saturating_mul(p)),
                None => b.min(s.saturating_add(piece)),
            };
            spans.push((s, e));
            s = e;
        }
    }
    spans
}

/// The part size of an object with a composite checksum (None: any ranges will do).
pub(super) fn composite_part(info: &ObjectInfo) -> Option<u64> {
    info.checksum.as_ref()?.part_size(info.size)
}

/// Where the first request of a file stops: a part of the job's size, or of the object's
/// own where its parts are checked one by one.
pub(super) fn first_span_end(ctx: &Ctx, info: &ObjectInfo) -> u64 {
    composite_part(info).unwrap_or(ctx.cfg.part_size.max(1))
}

/// Streams on one file at most: more share the same link and each costs a connection and a
/// buffer (at 256 connections, 127 streams on one 1 GiB file were no faster).
pub(super) const MAX_STREAMS_PER_FILE: u64 = 32;

pub(super) fn streams_per_file(ctx: &Ctx) -> u64 {
    (ctx.cfg.concurrency as u64).clamp(1, MAX_STREAMS_PER_FILE)
}
