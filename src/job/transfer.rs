//! One file from ID to final name: resolve its URL through the API lane, fetch it as one or
//! several ranges over the S3 slots into its `.part`, resume and retry what breaks, verify,
//! and move it into place.

use crate::checksum::{self, PartHasher, PieceCrc};
use crate::error::{ErrorKind, Failure, Retry, Scope};
use crate::job::context::{Ctx, Forbidden};
use crate::job::error::JobError;
use crate::job::events::{Event, FileStage};
use crate::job::outage::Verdict;
use crate::job::report::{FileOutcome, Status};
use crate::link::Link;
use crate::ranges::Ranges;
use crate::retry::Attempts;
use crate::storage::error::S3Error;
use crate::storage::s3::{ObjectInfo, ObjectResponse};
use crate::store::naming::{disposition_filename, is_name_refused, object_key, relative_path};
use crate::store::sink::{self, Md5Follower, PartWriter, SinkError};
use crate::store::state::{join_rel, DoneInfo, Verified};
use crate::tdp::error::TdpError;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why one attempt at a file ended.
#[derive(Debug)]
pub(crate) enum FileError {
    /// The job is cancelled or stopping; the state is kept for a rerun.
    Cancelled,
    /// This file cannot be downloaded.
    Failed(Failure),
    /// Bytes on disk are wrong (length, MD5, gzip); worth one fresh download.
    Integrity(String),
    /// The object changed since the download began; start it over.
    Changed,
}

struct UrlState {
    link: Option<Link>,
    generation: u64,
}

/// What a search told of a file before it is fetched.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hint {
    /// `file.checksum` in MD5 form: checked besides the ETag (and for KMS objects, whose
    /// ETag is not an MD5, instead of it).
    pub md5: Option<String>,
}

struct FileRun {
    id: String,
    hint: Hint,
    part: PathBuf,
    cancel: CancellationToken,
    url: tokio::sync::Mutex<UrlState>,
    key: Mutex<Vec<String>>,
    info: Mutex<Option<ObjectInfo>>,
    path: Mutex<Option<String>>,
    /// Names given up because other bytes were there, first to last.
    given_up: Mutex<Vec<String>>,
    ranges: Mutex<Ranges>,
    attempts: Mutex<Attempts>,
    hasher: sink::SharedMd5,
    /// The multipart digests of earlier complete downloads that did not match the ETag.
    mismatches: Mutex<Vec<String>>,
    /// CRCs of the pieces this run wrote, for the object's additional checksum.
    crcs: Mutex<Vec<checksum::Piece>>,
    /// A composite-checksum object's parts that were checked as they arrived: start → the
    /// part's checksum.
    part_sums: Mutex<std::collections::BTreeMap<u64, Vec<u8>>>,
    bytes: Arc<AtomicU64>,
    /// Told when the object's size and ETag become known.
    info_known: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FileRun {
    fn info(&self) -> Option<ObjectInfo> {
        lock(&self.info).clone()
    }

    fn retrying(&self, ctx: &Ctx, kind: ErrorKind, reason: String) {
        let attempt = lock(&self.attempts).total;
        ctx.progress
            .update(&self.id, |a| a.stage = FileStage::Retrying);
        ctx.events.send(Event::FileRetrying {
            file_id: self.id.clone(),
            kind,
            reason,
            attempt,
        });
    }

    /// A fresh enough pre-signed URL and its generation.
    async fn url(&self, ctx: &Ctx) -> Result<(String, u64), FileError> {
        let mut g = self.url.lock().await;
        if let Some(l) = &g.link {
            if l.usable(SystemTime::now(), ctx.cfg.url_max_age) {
                return Ok((l.url.clone(), g.generation));
            }
        }
        let mut link = resolve(ctx, self).await?;
        // Expired on arrival (signed before a sleep, or by a clock far off): asked for once
        // more; a second such link is used as it is, and storage has the last word.
        if !link.usable(SystemTime::now(), ctx.cfg.url_max_age) {
            link = resolve(ctx, self).await?;
        }
        let url = link.url.clone();
        ctx.net.storage_seen(&url);
        if let Ok(parsed) = url::Url::parse(&url) {
            *lock(&self.key) = object_key(&parsed);
        }
        g.link = Some(link);
        g.generation += 1;
        Ok((url, g.generation))
    }

    /// Drops the URL of `generation` so the next request fetches a new one.
    async fn invalidate_url(&self, generation: u64) {
        let mut g = self.url.lock().await;
        if g.generation == generation {
            g.link = None;
        }
    }
}

/// Asks TDP for the file's pre-signed URL, retrying what can be retried.
async fn resolve(ctx: &Ctx, run: &FileRun) -> Result<Link, FileError> {
    let mut failures = 0u32;
    let mut throttled = 0u32;
    loop {
        if !ctx.until_resumed(&run.cancel).await || !ctx.token_usable(&run.cancel).await {
            return Err(FileError::Cancelled);
        }
        let permit = tokio::select! {
            p = ctx.api_lane.acquire() => p,
            _ = run.cancel.cancelled() => return Err(FileError::Cancelled),
        };
        lock(&run.attempts).started();
        let token_used = ctx.tdp.token_version();
        let result = tokio::select! {
            r = ctx.tdp.presigned_url(&run.id) => r,
            _ = run.cancel.cancelled() => return Err(FileError::Cancelled),
        };
        let err = match result {
            Ok(url) => {
                permit.success();
                ctx.gate().success();
                ctx.renewal.accepted(token_used, &ctx.tdp, &ctx.states);
                return Ok(url);
            }
            Err(e) => e,
        };
        let failed_at = Instant::now();
        match &err {
            // A token wrong from the start stops the job (the form is where to fix it).
            TdpError::Unauthorized(m)
                if ctx.cfg.wait_for_new_token && ctx.gate().has_succeeded() =>
            {
                // Not the file's failure: it asks again once a new token is given.
                drop(permit);
                tracing::warn!("TDP rejected the token ({m}): waiting for a new one");
                ctx.renewal
                    .rejected_token(token_used, &ctx.tdp, &ctx.states);
            }
            e if e.scope() == Scope::Job => {
                ctx.stop(JobError::Tdp(e.clone()));
                return Err(FileError::Cancelled);
            }
            TdpError::Forbidden(m) => {
                let verdict = ctx
                    .gate()
                    .forbidden(ctx.files_total.load(Ordering::Relaxed));
                match verdict {
                    Forbidden::WholeJob => {
                        ctx.stop(JobError::Forbidden(m.clone()));
                        return Err(FileError::Cancelled);
                    }
                    Forbidden::ThisFile => {
                        return Err(FileError::Failed(Failure::new(
                            ErrorKind::Forbidden,
                            err.to_string(),
                        )))
                    }
                    Forbidden::Undecided => {
                        drop(permit);
                        failures += 1;
                        sleep(&run.cancel, ctx.backoff(failures, None)).await?;
                    }
                }
            }
            TdpError::NotFound(_) => {
                ctx.gate().other();
                return Err(FileError::Failed(Failure::new(
                    ErrorKind::NotFound,
                    err.to_string(),
                )));
            }
            TdpError::Throttled { retry_after } => {
                permit.throttled();
                throttled += 1;
                // Throttling is the lane's business, not the file's: it has a generous cap.
                if throttled > ctx.cfg.retry.budget * 8 {
                    return Err(FileError::Failed(Failure::new(
                        ErrorKind::Throttled,
                        format!("TDP kept throttling (429) after {throttled} attempts"),
                    )));
                }
                let wait = ctx.backoff(throttled.min(6), *retry_after);
                sleep(&run.cancel, wait).await?;
                continue;
            }
            e if e.retry() == Retry::Later => {
                drop(permit);
                if e.kind() == ErrorKind::Network && outage(ctx, &run.cancel, failed_at).await? {
                    continue;
                }
                failures += 1;
                if failures >= ctx.cfg.retry.budget {
                    return Err(FileError::Failed(Failure::new(
                        e.kind(),
                        format!("{e} (gave up after {failures} attempts)"),
                    )));
                }
                run.retrying(ctx, e.kind(), e.to_string());
                sleep(&run.cancel, ctx.backoff(failures, e.retry_after())).await?;
            }
            e => {
                ctx.gate().other();
                return Err(FileError::Failed(Failure::new(e.kind(), e.to_string())));
            }
        }
    }
}

/// Asks the job's network gate about a connection-level failure: true when it was an outage
/// that is over (retry at no cost), false when the network answers (the file's own failure).
async fn outage(
    ctx: &Ctx,
    cancel: &CancellationToken,
    failed_at: Instant,
) -> Result<bool, FileError> {
    match ctx.net.after_failure(failed_at, cancel).await {
        Verdict::Online => Ok(false),
        Verdict::Restored => Ok(true),
        Verdict::Lost(waited) => {
            ctx.stop(JobError::NetworkLost(waited));
            Err(FileError::Cancelled)
        }
        Verdict::Cancelled => Err(FileError::Cancelled),
    }
}

async fn sleep(cancel: &CancellationToken, d: Duration) -> Result<(), FileError> {
    tokio::select! {
        _ = tokio::time::sleep(d) => Ok(()),
        _ = cancel.cancelled() => Err(FileError::Cancelled),
    }
}

/// The task of one file: returns its ID and what became of it.
pub(crate) async fn process_file(ctx: Arc<Ctx>, id: String, hint: Hint) -> (String, FileOutcome) {
    if let Some(outcome) = already_complete(&ctx, &id) {
        ctx.progress.files_done.fetch_add(1, Ordering::Relaxed);
        return (id, outcome);
    }
    let bytes = ctx.progress.start_file(&id);
    let part = ctx.store().part_path(&id);
    let run = Arc::new(FileRun {
        id: id.clone(),
        hint,
        part,
        cancel: ctx.cancel.child_token(),
        url: tokio::sync::Mutex::new(UrlState {
            link: None,
            generation: 0,
        }),
        key: Mutex::new(Vec::new()),
        info: Mutex::new(None),
        path: Mutex::new(None),
        given_up: Mutex::new(Vec::new()),
        ranges: Mutex::new(Ranges::default()),
        attempts: Mutex::new(Attempts::default()),
        hasher: Arc::new(Mutex::new(None)),
        mismatches: Mutex::new(Vec::new()),
        crcs: Mutex::new(Vec::new()),
        part_sums: Mutex::new(Default::default()),
        bytes,
        info_known: tokio::sync::Notify::new(),
    });
    // Bytes that do not verify are fetched again within the file's normal retry budget, as
    // a reset is: damage in transit is as transient.
    let integrity_budget = ctx.cfg.retry.budget.max(1);
    let (mut fresh_starts, mut integrity_failures) = (0, 0);
    let result = loop {
        match download(&ctx, &run).await {
            Err(FileError::Integrity(reason)) if integrity_failures + 1 < integrity_budget => {
                integrity_failures += 1;
                run.retrying(
                    &ctx,
                    ErrorKind::Integrity,
                    format!("{reason}; downloading it again"),
                );
                if let Err(e) = start_over(&ctx, &run) {
                    break Err(e);
                }
            }
            Err(FileError::Changed) if fresh_starts == 0 => {
                fresh_starts += 1;
                run.retrying(
                    &ctx,
                    ErrorKind::Integrity,
                    "the file changed in storage; downloading it again".into(),
                );
                if let Err(e) = start_over(&ctx, &run) {
                    break Err(e);
                }
            }
            Err(FileError::Integrity(reason)) => {
                break Err(FileError::Failed(Failure::new(
                    ErrorKind::Integrity,
                    format!("{reason} after {} attempts", integrity_failures + 1),
                )))
            }
            other => break other,
        }
    };
    let attempts = lock(&run.attempts).total;
    ctx.progress
        .end_file(&id, !matches!(result, Err(FileError::Cancelled)));
    let failure = match result {
        Ok(o) => return (id, o),
        Err(FileError::Cancelled) => {
            // Not finished: a rerun resumes it. Its kind is what stopped the job.
            let kind = ctx.stop_kind().unwrap_or(ErrorKind::Cancelled);
            let outcome = FileOutcome::failed(
                Status::Cancelled,
                attempts,
                kind,
                "not finished: the job stopped; run it again to resume",
            );
            return (id, outcome);
        }
        Err(FileError::Failed(f)) => f,
        Err(FileError::Integrity(reason)) => Failure::new(ErrorKind::Integrity, reason),
        Err(FileError::Changed) => Failure::new(
            ErrorKind::Integrity,
            "the file kept changing in storage during the download",
        ),
    };
    ctx.events.send(Event::FileFailed {
        file_id: id.clone(),
        kind: failure.kind,
        reason: failure.message.clone(),
    });
    let outcome = FileOutcome::failed(Status::Failed, attempts, failure.kind, failure.message);
    (id, outcome)
}

fn start_over(ctx: &Ctx, run: &FileRun) -> Result<(), FileError> {
    if let Err(e) = ctx.store().reset(&run.id) {
        ctx.stop(ctx.state_error(&e));
        return Err(FileError::Cancelled);
    }
    *lock(&run.info) = None;
    *lock(&run.ranges) = Ranges::default();
    *lock(&run.hasher) = None;
    lock(&run.crcs).clear();
    lock(&run.part_sums).clear();
    run.bytes.store(0, Ordering::Relaxed);
    Ok(())
}

/// A file this job completed before (and still in place) is skipped without any request.
fn already_complete(ctx: &Ctx, id: &str) -> Option<FileOutcome> {
    let (st, part) = {
        let store = ctx.store();
        (store.file(id), store.part_path(id))
    };
    let path = st.path.clone()?;
    let on_disk = join_rel(&ctx.cfg.dest, &path).symlink_metadata().ok();
    let done = match (&st.done, &st.object) {
        (Some(done), _) => done.clone(),
        // Renamed into place, but stopped before the journal said so.
        (None, Some(obj))
            if !obj.is_gzip()
                && !part.exists()
                && st.ranges.missing(obj.size).is_empty()
                && on_disk
                    .as_ref()
                    .is_some_and(|m| m.is_file() && m.len() == obj.size) =>
        {
            let info = DoneInfo {
                path: path.clone(),
                bytes: obj.size,
                etag: obj.etag.clone(),
                md5: None,
                verified: Verified::Size,
                decoded: false,
            };
            let _ = ctx.store().record_done(id, info.clone());
            info
        }
        _ => return None,
    };
    match on_disk {
        Some(m) if m.is_file() && m.len() == done.bytes => {}
        _ => return None,
    }
    ctx.events.send(Event::FileSkipped {
        file_id: id.to_string(),
        path: done.path.clone(),
        reason: "already downloaded".into(),
    });
    Some(FileOutcome::placed(Status::Skipped, done, 0))
}

/// One full try at a file: whatever is missing of it, then the final checks.
async fn download(ctx: &Arc<Ctx>, run: &Arc<FileRun>) -> Result<FileOutcome, FileError> {
    // This try's own cancellation: a failing range stops its siblings, not the next try.
    let attempt = run.cancel.child_token();
    let st = ctx.store().file(&run.id);
    let resumable = st.object.is_some() && run.part.exists();
    let mut tasks = Vec::new();
    let mut first_err = None;
    if let (true, Some(obj)) = (resumable, st.object.clone()) {
        run.bytes.store(st.ranges.covered(), Ordering::Relaxed);
        *lock(&run.ranges) = st.ranges.clone();
        *lock(&run.path) = st.path.clone();
        adopt_info(ctx, run, obj);
    } else {
        // Moved into place but not yet recorded done when the last run stopped (between
        // steps 5 and 6 of the protocol in `durable`): the journal knows its name and object,
        // so its bytes are checked where they lie, with no request.
        if let (Some(obj), None, false) = (st.object.clone(), &st.done, run.part.exists()) {
            if st.path.is_some() {
                *lock(&run.path) = st.path.clone();
                adopt_info(ctx, run, obj.clone());
                if let Some(adopted) = adopt_present(ctx, run).await? {
                    return Ok(adopted);
                }
                ctx.progress
                    .bytes_known
                    .fetch_sub(obj.size, Ordering::Relaxed);
            }
        }
        if st.object.is_some() {
            start_over(ctx, run)?;
        }
        // A file may already be at this one's name: an earlier job's, whose state folder is
        // gone. Then the first request asks for one byte, whose answer tells the object's
        // ETag and length: for an MD5 ETag that is enough to adopt the file.
        let probe = st.done.is_none() && may_be_present(ctx, run).await?;
        if probe {
            fetch_range(ctx, run, &attempt, 0, 0, None).await?;
            if let Some(adopted) = adopt_present(ctx, run).await? {
                return Ok(adopted);
            }
        } else {
            let first_end = ctx.cfg.part_size.max(1) - 1;
            let first = fetch_range(ctx, run, &attempt, 0, first_end, None);
            tokio::pin!(first);
            // The rest is asked for as soon as the first answer tells the object's size, not
            // once the first part is in: a part takes a third of a second at 25 MB/s.
            let mut planned = false;
            let r = loop {
                tokio::select! {
                    r = &mut first => break r,
                    _ = run.info_known.notified(), if !planned => {
                        if let Some(info) = run.info() {
                            planned = true;
                            let first_stop = first_span_end(ctx, &info);
                            // A small file is all in the first request: nothing to plan.
                            if info.size > first_stop {
                                // The first request is one of the file's streams.
                                let todo = spans(ctx, run, &info, first_stop);
                                tasks = spawn_spans(ctx, run, &attempt, todo, 1);
                            }
                        }
                    }
                }
            };
            if let Err(e) = r {
                // Its siblings stop; the first real failure among them all is the file's.
                attempt.cancel();
                first_err = Some(e);
            }
        }
    }
    let info = || {
        run.info().ok_or_else(|| {
            FileError::Failed(Failure::new(
                ErrorKind::Protocol,
                "storage sent no object details",
            ))
        })
    };
    if first_err.is_none() && tasks.is_empty() {
        let info = info()?;
        // One span (a small file, or the rest of one): fetched in this task, not a task of
        // its own.
        let todo = spans(ctx, run, &info, 0);
        match todo[..] {
            [] => {}
            [(s, e)] => {
                if let Err(e) = fetch_range(ctx, run, &attempt, s, e - 1, None).await {
                    return Err(if ctx.cancel.is_cancelled() {
                        FileError::Cancelled
                    } else {
                        e
                    });
                }
            }
            _ => tasks = spawn_spans(ctx, run, &attempt, todo, 0),
        }
    }
    for t in tasks {
        let r = t.await.unwrap_or_else(|e| Err(internal(e)));
        if let Err(e) = r {
            match (&first_err, &e) {
                (None, _) | (Some(FileError::Cancelled), _) => first_err = Some(e),
                _ => {}
            }
        }
    }
    if let Some(e) = first_err {
        if ctx.cancel.is_cancelled() {
            return Err(FileError::Cancelled);
        }
        return Err(e);
    }
    finish(ctx, run, info()?).await
}

/// Pieces near a file's end are no smaller than this (a request costs a round trip).
const MIN_PIECE: u64 = 1 << 20;

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
fn spans(ctx: &Ctx, run: &FileRun, info: &ObjectInfo, from: u64) -> Vec<(u64, u64)> {
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

/// Fetches the spans in tasks, as many as the file has streams beside the `busy` ones; a
/// failure stops the attempt's other spans. Whichever task gets a storage connection takes
/// the lowest span left, so spans are fetched in order (the order tasks first run in is not
/// theirs): the MD5, which follows the completed prefix, then keeps up instead of waiting
/// for the file's start while its end is already in.
fn spawn_spans(
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

/// The part size of an object with a composite checksum (None: any ranges will do).
fn composite_part(info: &ObjectInfo) -> Option<u64> {
    info.checksum.as_ref()?.part_size(info.size)
}

/// Where the first request of a file stops: a part of the job's size, or of the object's
/// own where its parts are checked one by one.
fn first_span_end(ctx: &Ctx, info: &ObjectInfo) -> u64 {
    composite_part(info).unwrap_or(ctx.cfg.part_size.max(1))
}

/// Streams on one file at most: more share the same link and each costs a connection and a
/// buffer (at 256 connections, 127 streams on one 1 GiB file were no faster).
const MAX_STREAMS_PER_FILE: u64 = 32;

fn streams_per_file(ctx: &Ctx) -> u64 {
    (ctx.cfg.concurrency as u64).clamp(1, MAX_STREAMS_PER_FILE)
}

/// Whether a regular file is at one of the names this file may get.
async fn may_be_present(ctx: &Ctx, run: &FileRun) -> Result<bool, FileError> {
    // The URL is needed anyway; it names the object.
    run.url(ctx).await?;
    let wanted = wanted_name(ctx, run, None);
    Ok(ctx.store().may_be_present(&run.id, &wanted))
}

/// The relative path the file asks for: its `Content-Disposition` name when storage sent
/// one, else the object key's last part, else its ID; placed by the job's layout.
fn wanted_name(ctx: &Ctx, run: &FileRun, disposition: Option<&str>) -> String {
    let key = lock(&run.key).clone();
    let own_name = disposition
        .and_then(disposition_filename)
        .or_else(|| key.last().cloned())
        .unwrap_or_else(|| run.id.clone());
    let rel = relative_path(ctx.cfg.layout, &key, &own_name);
    rel.to_string_lossy().replace('\\', "/")
}

/// After the one-byte probe: the file at this one's name (or at its next names) with this
/// object's length and MD5 is this file, taken as it is. None: download it.
async fn adopt_present(ctx: &Ctx, run: &FileRun) -> Result<Option<FileOutcome>, FileError> {
    let Some(info) = run.info() else {
        return Ok(None);
    };
    // Other ETags (KMS, multipart) say nothing of the bytes, and a gzip object's file is
    // its decoded form: those are downloaded and compared at placing.
    let Some(expected) = info.etag_md5().map(str::to_ascii_lowercase) else {
        return Ok(None);
    };
    if info.is_gzip() {
        return Ok(None);
    }
    loop {
        let Some(rel) = lock(&run.path).clone() else {
            return Ok(None);
        };
        let target = join_rel(&ctx.cfg.dest, &rel);
        let same_length = target
            .symlink_metadata()
            .is_ok_and(|m| m.is_file() && m.len() == info.size);
        if !same_length {
            return Ok(None);
        }
        let size = info.size;
        let md5 = tokio::task::spawn_blocking(move || {
            let mut h = Md5Follower::default();
            h.advance(&target, size).map(|()| h.hex())
        })
        .await
        .map_err(internal)?;
        if md5.as_deref().ok() == Some(expected.as_str()) {
            return adopt(ctx, run, &info, rel, expected).map(Some);
        }
        let tried = {
            let mut given_up = lock(&run.given_up);
            given_up.push(rel);
            given_up.clone()
        };
        if tried.len() > 4 {
            return Ok(None);
        }
        let next = ctx.store().next_name(&run.id, &tried, Some(info.size));
        match next {
            Ok(p) => renamed_to(ctx, run, &p, info.size),
            Err(_) => return Ok(None),
        }
    }
}

/// Takes the file at `rel` as this one's, done: what the probe fetched is dropped.
fn adopt(
    ctx: &Ctx,
    run: &FileRun,
    info: &ObjectInfo,
    rel: String,
    md5: String,
) -> Result<FileOutcome, FileError> {
    let done = DoneInfo {
        path: rel.clone(),
        bytes: info.size,
        etag: info.etag.clone(),
        md5: Some(md5.clone()),
        verified: Verified::Md5,
        decoded: false,
    };
    if let Err(e) = ctx.store().record_done(&run.id, done.clone()) {
        ctx.stop(ctx.state_error(&e));
        return Err(FileError::Cancelled);
    }
    let _ = std::fs::remove_file(&run.part);
    let fetched = run.bytes.swap(0, Ordering::Relaxed);
    ctx.progress
        .bytes_done
        .fetch_sub(fetched, Ordering::Relaxed);
    ctx.progress
        .bytes_known
        .fetch_sub(info.size, Ordering::Relaxed);
    ctx.events.send(Event::FileSkipped {
        file_id: run.id.clone(),
        path: rel.clone(),
        reason: "already in the folder (same MD5)".into(),
    });
    Ok(FileOutcome::placed(
        Status::Skipped,
        done,
        lock(&run.attempts).total,
    ))
}

/// The MD5 a search gave for the file, when it can be checked: of the bytes as stored, so
/// not for an object stored gzip-encoded (which of its two forms TDP summed is not known).
fn search_md5<'a>(run: &'a FileRun, info: &ObjectInfo) -> Option<&'a str> {
    run.hint.md5.as_deref().filter(|_| !info.is_gzip())
}

/// The part sizes a multipart object may have been uploaded with (see `multipart`).
fn multipart_sizes(info: &ObjectInfo) -> Vec<u64> {
    info.etag_multipart()
        .map(|(_, parts)| crate::multipart::part_sizes(info.size, parts))
        .unwrap_or_default()
}

/// Takes the object's details: name, journal, hasher, progress.
fn adopt_info(ctx: &Ctx, run: &FileRun, info: ObjectInfo) {
    let whole = info.etag_md5().is_some() || search_md5(run, &info).is_some();
    let part_sizes = multipart_sizes(&info);
    if whole || !part_sizes.is_empty() {
        let mut h = lock(&run.hasher);
        if h.is_none() {
            *h = Some(Md5Follower::new(whole, &part_sizes));
        }
    }
    let name = lock(&run.path).clone();
    ctx.progress
        .bytes_known
        .fetch_add(info.size, Ordering::Relaxed);
    ctx.progress.update(&run.id, |a| {
        a.size = Some(info.size);
        a.name = name;
        a.stage = FileStage::Downloading;
    });
    *lock(&run.info) = Some(info);
    run.info_known.notify_one();
}

/// Checks a response against what is known of the object; the first one sets it up.
fn accept(
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

enum AttemptError {
    S3(S3Error),
    File(FileError),
    /// The job was paused mid-body: what arrived is kept, the rest asked for on resuming.
    Paused,
}

/// Fetches `[start, end]` (inclusive) into the `.part`, resuming from where each broken
/// attempt stopped, until it is complete or the file's budget is spent.
async fn fetch_range(
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

/// The file's name changed at placing: the run and the window learn the new one.
fn renamed_to(ctx: &Ctx, run: &FileRun, rel: &str, size: u64) {
    *lock(&run.path) = Some(rel.to_string());
    ctx.events.send(Event::FileResolved {
        file_id: run.id.clone(),
        name: rel.rsplit('/').next().unwrap_or(rel).to_string(),
        path: rel.to_string(),
        size,
    });
}

fn resp_total(run: &FileRun) -> u64 {
    run.info().map(|i| i.size).unwrap_or(0)
}

fn sink_failure(ctx: &Ctx, e: SinkError) -> FileError {
    match e.io_error() {
        Some(io) => {
            let path = match &e {
                SinkError::Io { path, .. } => path.clone(),
                _ => ctx.cfg.dest.clone(),
            };
            ctx.stop(ctx.disk_error(io, &path));
            FileError::Cancelled
        }
        None => FileError::Failed(Failure::new(ErrorKind::Destination, e.to_string())),
    }
}

fn internal(e: impl std::fmt::Display) -> FileError {
    FileError::Failed(Failure::new(
        ErrorKind::Internal,
        format!("internal error: {e}"),
    ))
}

/// Streams one response body into the `.part` at `start`, up to `stop` (exclusive), and
/// gives the S3 slot back as soon as the body is in, before syncing to disk.
/// Returns the bytes written (all durable and journaled) and how the stream ended.
async fn stream_body(
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
struct PartCheck {
    value: Vec<u8>,
    hasher: PartHasher,
    /// Its number (from 1) and the object's part count, for messages.
    part: u64,
    parts: u64,
    algorithm: checksum::Algorithm,
}

/// Makes the written bytes durable, then journals them and lets the MD5 catch up; the CRC
/// of what was journaled is kept (bytes it does not match are read back at the end).
async fn checkpoint(
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

/// Feeds the MD5 with the contiguous prefix completed so far (or up to `upto`).
async fn advance_hash(run: &Arc<FileRun>, upto: Option<u64>) -> Result<(), FileError> {
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
async fn finish(
    ctx: &Arc<Ctx>,
    run: &Arc<FileRun>,
    info: ObjectInfo,
) -> Result<FileOutcome, FileError> {
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
        Some(sum) if sum.parts.is_some() && composite_part(&info).is_none() => None,
        None => None,
        Some(sum) => {
            let pieces = lock(&run.crcs).clone();
            let known = lock(&run.part_sums).clone();
            let checked_parts = known.len();
            let (part, size, algorithm) = (run.part.clone(), info.size, sum.algorithm);
            let part_size = composite_part(&info);
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
        .chain(search_md5(run, &info))
        .collect();
    let multipart = info
        .etag_multipart()
        .filter(|_| !multipart_sizes(&info).is_empty());
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
    let rel = lock(&run.path)
        .clone()
        .ok_or_else(|| internal("no file name was assigned"))?;
    let (dest, part, scratch, journal) = {
        let store = ctx.store();
        (
            store.dest().to_path_buf(),
            store.part_path(&run.id),
            store.scratch_path(&run.id),
            store.journal(),
        )
    };
    let journal = match journal {
        Ok(j) => j,
        Err(e) => {
            ctx.stop(ctx.state_error(&e));
            return Err(FileError::Cancelled);
        }
    };
    let journal = Arc::new(journal);
    let gzip = info.is_gzip();
    let ratio = ctx.cfg.gzip_max_ratio;
    let mut rel = rel;
    let mut fell_back = false;
    let mut tried = lock(&run.given_up).clone();
    tried.push(rel.clone());
    let bytes = loop {
        let rel_path = join_rel(std::path::Path::new(""), &rel);
        let (d, p, sc, j) = (
            dest.clone(),
            part.clone(),
            scratch.clone(),
            Arc::clone(&journal),
        );
        // The file's records are durable before its name is, and its name before its done
        // record (the protocol in `durable`): in the group's syncs, or each on its own.
        let grouped = ctx.syncs.grouped();
        if grouped {
            ctx.syncs
                .sync()
                .await
                .map_err(|e| sink_failure(ctx, sink::io_error("sync", journal.path(), e)))?;
        }
        let place = move || {
            if !grouped {
                j.sync().map_err(|source| SinkError::Io {
                    what: "sync",
                    path: j.path().to_path_buf(),
                    source,
                })?;
            }
            sink::finalize(&d, &rel_path, &p, &sc, gzip, ratio, !grouped)
        };
        let placed = if grouped && !gzip {
            // The move rides in a round of the group, before the sync that makes it durable.
            ctx.syncs
                .after(place)
                .await
                .unwrap_or_else(|e| Err(sink::io_error("sync", &dest, e)))
        } else {
            let placed = tokio::task::spawn_blocking(place).await.map_err(internal)?;
            match placed {
                Ok(bytes) if grouped => match ctx.syncs.sync().await {
                    Ok(()) => Ok(bytes),
                    Err(e) => Err(sink::io_error("sync", &dest, e)),
                },
                other => other,
            }
        };
        match placed {
            Ok(bytes) => break bytes,
            // The file system will not take this name (too long for it, an encoding it
            // refuses): this file alone gets `<fileId><ext>`, and the job goes on.
            Err(e) if !fell_back && e.io_error().is_some_and(is_name_refused) => {
                fell_back = true;
                let renamed = ctx.store().fall_back(&run.id, &rel);
                match renamed {
                    Ok(p) => {
                        tracing::warn!("the file system refused the name {rel}; using {p}");
                        rel = p;
                        renamed_to(ctx, run, &rel, info.size);
                    }
                    Err(_) => return Err(sink_failure(ctx, e)),
                }
            }
            // Something arrived at our name meanwhile. The same bytes: it is this file, kept
            // where it is. Other bytes: they keep their place, ours takes the next name.
            Err(SinkError::Occupied { target, complete }) if tried.len() <= 4 => {
                let (t, src) = (target.clone(), complete.clone());
                let same = tokio::task::spawn_blocking(move || sink::same_bytes(&src, &t))
                    .await
                    .map_err(internal)?
                    .unwrap_or(false);
                if same {
                    let _ = std::fs::remove_file(&complete);
                    let _ = std::fs::remove_file(&part);
                    // The decoded size for a gzip object: what is on disk.
                    break std::fs::metadata(&target).map_or(info.size, |m| m.len());
                }
                let final_len = (!gzip).then_some(info.size);
                let next = ctx.store().next_name(&run.id, &tried, final_len);
                match next {
                    Ok(p) => {
                        tracing::warn!("{rel} is taken by another file; using {p}");
                        rel = p;
                        tried.push(rel.clone());
                        renamed_to(ctx, run, &rel, info.size);
                    }
                    Err(_) => {
                        return Err(sink_failure(ctx, SinkError::Occupied { target, complete }))
                    }
                }
            }
            Err(SinkError::Decode(err)) => {
                return Err(FileError::Integrity(format!(
                    "could not decode the gzip-encoded file ({err})"
                )))
            }
            Err(other) => return Err(sink_failure(ctx, other)),
        }
    };
    // Decoding checked the gzip trailer's CRC-32 and length of what it gave.
    let verified = match verified {
        Verified::Size if gzip => Verified::GzipCrc32,
        v => v,
    };
    let done = DoneInfo {
        path: rel.clone(),
        bytes,
        etag: info.etag.clone(),
        md5: md5.clone(),
        verified,
        decoded: gzip,
    };
    if let Err(e) = ctx.store().record_done(&run.id, done.clone()) {
        ctx.stop(ctx.state_error(&e));
        return Err(FileError::Cancelled);
    }
    ctx.events.send(Event::FileDone {
        file_id: run.id.clone(),
        path: rel.clone(),
        bytes,
        verified: verified.as_str().to_string(),
    });
    Ok(FileOutcome::placed(
        Status::Downloaded,
        done,
        lock(&run.attempts).total,
    ))
}
