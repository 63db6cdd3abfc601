//! Fetch: ranges streamed from storage into the `.part`, resumed and retried where they
//! break, checkpointed durable and journaled.

use super::place::{adopt_info, wanted_name};
use super::plan::{composite_part, streams_per_file};
use super::state::{lock, outage, resp_total, sink_failure, sleep, FileError, FileRun};
use super::verify::advance_hash;
use crate::checksum::{self, PartHasher, PieceCrc};
use crate::error::{ErrorKind, Failure, Retry, Scope};
use crate::job::context::Ctx;
use crate::job::error::JobError;
use crate::job::events::Event;
use crate::storage::error::S3Error;
use crate::storage::s3::{ObjectInfo, ObjectResponse};
use crate::store::sink::PartWriter;
use std::sync::{Arc, Mutex};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Fetches the spans in tasks, as many as the file has streams beside the `busy` ones; a
/// failure stops the attempt's other spans. Whichever task gets a storage connection takes
/// the lowest span left, so spans are fetched in order (the order tasks first run in is not
/// theirs): the MD5, which follows the completed prefix, then keeps up instead of waiting
/// for the file's start while its end is already in.
pub(super) fn spawn_spans(
    ctx: &Arc<Ctx>,
    run: &Arc<FileRun>,
    attempt: &CancellationToken,
    spans: Vec<(u64, u64)>,
    busy: u64,
) -> Vec<tokio::task::JoinHandle<Result<(), FileError>>> {
    let free = streams_per_file(ctx).saturating_sub(busy).max(1);
    let workers = spans.len().min(free as usize);
    let queue = Arc::new(Mutex::new(std::collections::VecDeque::from(spans)));
    (0..workers)
        .map(|_| {
            let (ctx, run, attempt, queue) =
                (ctx.clone(), run.clone(), attempt.clone(), queue.clone());
            tokio::spawn(async move {
                loop {
                    let permit = tokio::select! {
                        p = ctx.s3_slots.clone().acquire_owned() => p.map_err(|_| FileError::Cancelled)?,
                        _ = attempt.cancelled() => return Err(FileError::Cancelled),
                    };
                    let Some((s, e)) = lock(&queue).pop_front() else {
                        return Ok(());
                    };
                    let r = fetch_range(&ctx, &run, &attempt, s, e - 1, Some(permit)).await;
                    if r.is_err() {
                        // One range failing ends this attempt: stop its siblings (a fresh
                        // start gets a token of its own).
                        attempt.cancel();
                        return r;
                    }
                }
            })
        })
        .collect()
}

/// Checks a response against what is known of the object; the first one sets it up.
pub(super) fn accept(
    ctx: &Ctx,
    run: &FileRun,
    info: &ObjectInfo,
    disposition: Option<&str>,
) -> Result<(), FileError> {
    if let Some(known) = run.info() {
        if known.etag != info.etag || known.size != info.size {
            return Err(FileError::Changed);
        }
        return Ok(());
    }
    let wanted = wanted_name(ctx, run, disposition);
    let assigned = {
        let mut store = ctx.store();
        store
            .assign_path(&run.id, &wanted, (!info.is_gzip()).then_some(info.size))
            .and_then(|p| store.record_object(&run.id, info).map(|_| p))
    };
    let path = match assigned {
        Ok(p) => p,
        Err(e) => {
            if e.io().is_some() {
                ctx.stop(ctx.state_error(&e));
                return Err(FileError::Cancelled);
            }
            return Err(FileError::Failed(Failure::new(
                ErrorKind::Destination,
                e.to_string(),
            )));
        }
    };
    // A fresh start: any leftover bytes are not ours to trust.
    if ctx.store().may_have_old_part() {
        let _ = std::fs::remove_file(&run.part);
    }
    *lock(&run.path) = Some(path.clone());
    ctx.events.send(Event::FileResolved {
        file_id: run.id.clone(),
        name: path.rsplit('/').next().unwrap_or(&path).to_string(),
        path,
        size: info.size,
    });
    adopt_info(ctx, run, info.clone());
    Ok(())
}

pub(super) enum AttemptError {
    S3(S3Error),
    File(FileError),
    /// The job was paused mid-body: what arrived is kept, the rest asked for on resuming.
    Paused,
}

/// Fetches `[start, end]` (inclusive) into the `.part`, resuming from where each broken
/// attempt stopped, until it is complete or the file's budget is spent.
pub(super) async fn fetch_range(
    ctx: &Arc<Ctx>,
    run: &Arc<FileRun>,
    attempt: &CancellationToken,
    start: u64,
    end: u64,
    held: Option<tokio::sync::OwnedSemaphorePermit>,
) -> Result<(), FileError> {
    let mut end = end;
    let mut pos = start;
    let mut refreshes = 0u32;
    // Kept across a link refresh: a range whose link ran out does not queue again behind
    // the others for a storage connection.
    let mut permit = held;
    loop {
        if attempt.is_cancelled() || !ctx.until_resumed(attempt).await {
            return Err(FileError::Cancelled);
        }
        let (url, generation) = run.url(ctx).await?;
        if permit.is_none() {
            permit = Some(tokio::select! {
                p = ctx.s3_slots.clone().acquire_owned() => p.map_err(|_| FileError::Cancelled)?,
                _ = attempt.cancelled() => return Err(FileError::Cancelled),
            });
        }
        let etag = run.info().and_then(|i| i.etag);
        lock(&run.attempts).started();
        // S3 sends the object's checksum only for a range that is all of it: where the URL
        // lets us ask for it, the first request is open-ended (and read only to `end`).
        let ask_end =
            if pos == 0 && run.info().is_none() && crate::storage::s3::signs_checksum_mode(&url) {
                None
            } else {
                Some(end)
            };
        let got = tokio::select! {
            r = ctx.s3.get(&url, pos, ask_end, etag.as_deref()) => r,
            _ = attempt.cancelled() => return Err(FileError::Cancelled),
        };
        let mut written = 0;
        let err = match got {
            Ok(resp) => {
                accept(ctx, run, &resp.info, resp.disposition.as_deref())?;
                // The first answer tells the object's parts: the first request (open-ended,
                // as checksum mode has it) ends with the first part, and the rest is
                // planned from there (`first_span_end`). A one-byte probe stays one byte.
                if start == 0 && end > 0 {
                    if let Some(p) = run.info().as_ref().and_then(composite_part) {
                        end = p - 1;
                    }
                }
                let stop = (end + 1).min(resp.info.size);
                if resp.start != pos {
                    AttemptError::S3(S3Error::Protocol(format!(
                        "asked for bytes from {pos}, got bytes from {}",
                        resp.start
                    )))
                } else {
                    let (n, r) = stream_body(ctx, run, attempt, resp, pos, stop, &mut permit).await;
                    written = n;
                    pos += n;
                    match r {
                        Ok(()) if pos >= stop => return Ok(()),
                        Ok(()) => AttemptError::S3(S3Error::Truncated {
                            got: pos,
                            total: resp_total(run),
                        }),
                        Err(e) => e,
                    }
                }
            }
            Err(S3Error::Empty) if pos == 0 && run.info().is_none() => {
                let info = ObjectInfo {
                    size: 0,
                    etag: None,
                    encoding: None,
                    sse: None,
                    checksum: None,
                };
                accept(ctx, run, &info, None)?;
                PartWriter::create_empty(&run.part)
                    .await
                    .map_err(|e| sink_failure(ctx, e))?;
                return Ok(());
            }
            Err(e) => AttemptError::S3(e),
        };
        let e = match err {
            AttemptError::File(f) => return Err(f),
            AttemptError::S3(e) => e,
            // The body may have arrived in full just as the pause came: nothing to ask for.
            AttemptError::Paused if pos > end || run.info().is_some_and(|i| pos >= i.size) => {
                return Ok(())
            }
            AttemptError::Paused => {
                permit = None;
                continue;
            }
        };
        if e.retry() != Retry::FreshUrl {
            permit = None;
        }
        let failed_at = Instant::now();
        let progressed = written > 0;
        if progressed {
            refreshes = 0;
        }
        let wait = match e.retry() {
            Retry::FreshUrl => {
                run.invalidate_url(generation).await;
                refreshes += 1;
                if refreshes > 5 {
                    return Err(FileError::Failed(Failure::new(
                        e.kind(),
                        format!("{e}, even with {refreshes} fresh links"),
                    )));
                }
                // A fresh URL is progress: it does not use up the budget.
                run.retrying(ctx, e.kind(), format!("{e}; getting a fresh link"));
                continue;
            }
            Retry::StartOver => return Err(FileError::Changed),
            Retry::No if e.scope() == Scope::Job => {
                ctx.stop(JobError::Storage(e));
                return Err(FileError::Cancelled);
            }
            Retry::No => return Err(FileError::Failed(Failure::new(e.kind(), e.to_string()))),
            Retry::Later => {
                // Bytes that arrived are kept either way; an outage costs the file nothing.
                if e.kind() == ErrorKind::Network && outage(ctx, attempt, failed_at).await? {
                    continue;
                }
                let failures = lock(&run.attempts).stalled + 1;
                ctx.backoff(failures, e.retry_after())
            }
        };
        let more = lock(&run.attempts).failed(progressed, &ctx.cfg.retry);
        if !more {
            let n = lock(&run.attempts).total;
            return Err(FileError::Failed(Failure::new(
                e.kind(),
                format!("{e} (gave up after {n} attempts)"),
            )));
        }
        run.retrying(ctx, e.kind(), e.to_string());
        sleep(attempt, wait).await?;
    }
}

/// Streams one response body into the `.part` at `start`, up to `stop` (exclusive), and
/// gives the S3 slot back as soon as the body is in, before syncing to disk.
/// Returns the bytes written (all durable and journaled) and how the stream ended.
pub(super) async fn stream_body(
    ctx: &Arc<Ctx>,
    run: &Arc<FileRun>,
    attempt: &CancellationToken,
    mut resp: ObjectResponse,
    start: u64,
    stop: u64,
    slot: &mut Option<tokio::sync::OwnedSemaphorePermit>,
) -> (u64, Result<(), AttemptError>) {
    // A whole part of a composite-checksum object, whose own checksum S3 sent: checked as
    // it arrives and kept only if it matches, so it is journaled at its end alone, and the
    // MD5 (if any) reads it back once it is kept.
    let info = run.info();
    let mut part = info.as_ref().and_then(|i| {
        let sum = i.checksum.as_ref()?;
        let p = composite_part(i)?;
        let value = sum.part_value(|name| {
            let v = resp.resp.headers().get(name)?;
            v.to_str().ok().map(str::to_string)
        })?;
        let whole_part = start.is_multiple_of(p) && stop == (start + p).min(i.size);
        whole_part.then(|| PartCheck {
            value,
            hasher: PartHasher::new(sum.algorithm),
            part: start / p + 1,
            parts: i.size.div_ceil(p),
            algorithm: sum.algorithm,
        })
    });
    let mut w = PartWriter::new(
        &run.part,
        start,
        stop.saturating_sub(start),
        part.is_none().then(|| run.hasher.clone()),
    );
    let mut pos = start;
    let mut crc = info
        .and_then(|i| i.checksum)
        .and_then(|c| PieceCrc::new(&c, start));
    let mut since_checkpoint = 0u64;
    let mut last_checkpoint = Instant::now();
    // Made once per body, not once per chunk.
    let paused = ctx.pause_requested();
    tokio::pin!(paused);
    let ended = loop {
        let chunk = tokio::select! {
            c = resp.resp.chunk() => c,
            _ = attempt.cancelled() => break Err(AttemptError::File(FileError::Cancelled)),
            _ = &mut paused => break Err(AttemptError::Paused),
        };
        match chunk {
            Ok(Some(bytes)) => {
                let take = (bytes.len() as u64).min(stop.saturating_sub(pos)) as usize;
                if let Err(e) = w.write(&bytes[..take]).await {
                    break Err(AttemptError::File(sink_failure(ctx, e)));
                }
                if let Some(c) = &mut crc {
                    c.update(&bytes[..take]);
                }
                if let Some(p) = &mut part {
                    p.hasher.update(&bytes[..take]);
                }
                pos += take as u64;
                ctx.progress.add_bytes(&run.bytes, take as u64);

                since_checkpoint += take as u64;
                if part.is_none()
                    && (since_checkpoint >= ctx.cfg.checkpoint_bytes
                        || last_checkpoint.elapsed() >= ctx.cfg.checkpoint_interval)
                {
                    since_checkpoint = 0;
                    last_checkpoint = Instant::now();
                    if let Err(e) = checkpoint(ctx, run, &mut w, &mut crc).await {
                        break Err(AttemptError::File(e));
                    }
                }
                // The job's bandwidth limit: every chunk is paid for before the body goes on
                // or ends. A body that arrived in one chunk (a fast sender fills the socket
                // while others wait) used to end unpaid: 2 MB/s let 3 MB/s through.
                let wait = ctx.rate.take(take as u64);
                if !wait.is_zero() {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = attempt.cancelled() => break Err(AttemptError::File(FileError::Cancelled)),
                        _ = &mut paused => break Err(AttemptError::Paused),
                    }
                }
                if pos >= stop {
                    break Ok(());
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(AttemptError::S3(S3Error::network(e))),
        }
    };
    drop(resp);
    slot.take();
    if let Some(p) = part {
        let complete = ended.is_ok() && pos >= stop;
        if !complete || p.hasher.finish() != p.value {
            // Dropped: asked for again whole (a broken body) or fetched again alone
            // (damaged in transit).
            ctx.progress.drop_bytes(&run.bytes, pos - start);
            let ended = match ended {
                Ok(()) if complete => Err(AttemptError::S3(S3Error::PartMismatch {
                    part: p.part,
                    parts: p.parts,
                    algorithm: p.algorithm.label(),
                })),
                other => other,
            };
            return (0, ended);
        }
        lock(&run.part_sums).insert(start, p.value);
    }
    // Whatever arrived is kept for the next attempt or the next run.
    if let Err(e) = checkpoint(ctx, run, &mut w, &mut crc).await {
        return (pos - start, Err(AttemptError::File(e)));
    }
    (pos - start, ended)
}

/// One part being checked against the checksum S3 sent for it.
pub(super) struct PartCheck {
    value: Vec<u8>,
    hasher: PartHasher,
    /// Its number (from 1) and the object's part count, for messages.
    part: u64,
    parts: u64,
    algorithm: checksum::Algorithm,
}

/// Makes the written bytes durable, then journals them and lets the MD5 catch up; the CRC
/// of what was journaled is kept (bytes it does not match are read back at the end).
pub(super) async fn checkpoint(
    ctx: &Arc<Ctx>,
    run: &Arc<FileRun>,
    w: &mut PartWriter,
    crc: &mut Option<PieceCrc>,
) -> Result<(), FileError> {
    let (a, b) = w
        .make_durable(&ctx.syncs)
        .await
        .map_err(|e| sink_failure(ctx, e))?;
    if a == b {
        return Ok(());
    }
    if let Err(e) = ctx.store().record_range(&run.id, a, b) {
        ctx.stop(ctx.state_error(&e));
        return Err(FileError::Cancelled);
    }
    lock(&run.ranges).insert(a, b);
    if let Some(c) = crc {
        if (c.start, c.len) == (a, b - a) {
            lock(&run.crcs).push(c.take());
        } else {
            c.restart(b);
        }
    }
    advance_hash(run, None).await
}
