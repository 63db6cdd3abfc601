//! The task of one file, from ID to final name: resolve its URL, plan and fetch its ranges,
//! verify and place it, starting over when its bytes do not verify or its object changed.

use super::fetch::{fetch_range, spawn_spans};
use super::place::{adopt_info, adopt_present, may_be_present, place};
use super::plan::{first_span_end, spans};
use super::state::{internal, lock, FileError, FileRun, Hint};
use super::verify::verify;
use crate::error::{ErrorKind, Failure};
use crate::job::context::Ctx;
use crate::job::events::Event;
use crate::job::report::{FileOutcome, Status};
use crate::ranges::Ranges;
use crate::store::state::{join_rel, DoneInfo, Verified};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The task of one file: returns its ID and what became of it.
pub(crate) async fn process_file(ctx: Arc<Ctx>, id: String, hint: Hint) -> (String, FileOutcome) {
    if let Some(outcome) = already_complete(&ctx, &id) {
        ctx.progress.files_done.fetch_add(1, Ordering::Relaxed);
        return (id, outcome);
    }
    let bytes = ctx.progress.start_file(&id);
    let run = Arc::new(FileRun::new(&ctx, &id, hint, bytes));
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

pub(super) fn start_over(ctx: &Ctx, run: &FileRun) -> Result<(), FileError> {
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
pub(super) fn already_complete(ctx: &Ctx, id: &str) -> Option<FileOutcome> {
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
pub(super) async fn download(ctx: &Arc<Ctx>, run: &Arc<FileRun>) -> Result<FileOutcome, FileError> {
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
    let info = info()?;
    let (verified, md5) = verify(ctx, run, &info).await?;
    place(ctx, run, info, verified, md5).await
}
