//! Resolve: the file's pre-signed URL from TDP through the API lane, renewed when it expires.

use super::state::{lock, outage, sleep, FileError, FileRun};
use crate::error::{ErrorKind, Failure, Retry, Scope};
use crate::job::context::{Ctx, Forbidden};
use crate::job::error::JobError;
use crate::link::Link;
use crate::store::naming::object_key;
use crate::tdp::error::TdpError;
use std::sync::atomic::Ordering;
use std::time::SystemTime;
use tokio::time::Instant;

impl FileRun {
    /// A fresh enough pre-signed URL and its generation.
    pub(super) async fn url(&self, ctx: &Ctx) -> Result<(String, u64), FileError> {
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
    pub(super) async fn invalidate_url(&self, generation: u64) {
        let mut g = self.url.lock().await;
        if g.generation == generation {
            g.link = None;
        }
    }
}

/// Asks TDP for the file's pre-signed URL, retrying what can be retried.
pub(super) async fn resolve(ctx: &Ctx, run: &FileRun) -> Result<Link, FileError> {
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
