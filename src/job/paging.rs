//! A search job's files as its pages come: paged in a task of their own, a few pages ahead of
//! the downloads, each hit taken into the job or noted as excluded.

use crate::job::context::Ctx;
use crate::job::error::JobError;
use crate::job::events::Event;
use crate::job::file::Hint;
use crate::job::outage::Verdict;
use crate::tdp::error::TdpError;
use crate::tdp::pager::Pager;
use crate::tdp::search::{Exclusion, Hit, Search, SearchError};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What a search job has found so far, in the order found.
#[derive(Default)]
pub(crate) struct Found {
    /// Every hit's ID as a number, excluded ones too: the report's rows, in order.
    pub(crate) order: Vec<u128>,
    pub(crate) excluded: HashMap<u128, Exclusion>,
    /// Hits to download, not yet given to a task, with what search told of them.
    pub(crate) queue: std::collections::VecDeque<(String, Hint)>,
    pub(crate) files: usize,
    pub(crate) bytes: u64,
    /// Bytes of the hits found that are not in place yet (for the free-space check).
    pub(crate) needed: u64,
    pub(crate) complete: bool,
}

/// Pages the search to its end, handing each page to the job; stops at the first error.
/// Returns when the listing started (the sync's next watermark).
pub(crate) async fn page_search(
    ctx: Arc<Ctx>,
    search: Search,
    since_ms: Option<i64>,
    out: tokio::sync::mpsc::Sender<Result<Vec<Hit>, SearchError>>,
) -> (i64, String) {
    let mut pager = Pager::since(&search, ctx.cfg.retry, ctx.cfg.network_patience, since_ms);
    pager.defer_network = true;
    let started = (pager.started_ms, pager.started.clone());
    let mut failures = 0;
    loop {
        // Paging follows the job as file look-ups do: it holds while the job is paused, and
        // while it waits for a new token or for the network.
        if !ctx.until_resumed(&ctx.cancel).await || !ctx.token_usable(&ctx.cancel).await {
            return started;
        }
        let token_used = ctx.tdp.token_version();
        let failed_at = tokio::time::Instant::now();
        let page = tokio::select! {
            p = pager.next_page(&ctx.tdp) => p,
            _ = ctx.cancel.cancelled() => return started,
        };
        match &page {
            Ok(_) => {
                failures = 0;
                ctx.gate().success();
                ctx.renewal.accepted(token_used, &ctx.tdp, &ctx.states);
            }
            Err(SearchError::Tdp(TdpError::Unauthorized(m)))
                if ctx.cfg.wait_for_new_token && ctx.gate().has_succeeded() =>
            {
                tracing::warn!("TDP rejected the token while paging ({m}): waiting for a new one");
                ctx.renewal
                    .rejected_token(token_used, &ctx.tdp, &ctx.states);
                continue;
            }
            Err(SearchError::Tdp(TdpError::Network(_))) => {
                match ctx.net.after_failure(failed_at, &ctx.cancel).await {
                    Verdict::Restored => continue,
                    // The network is there and this request failed: TDP's side. Retried
                    // with a back-off, as many times as a file would be.
                    Verdict::Online if failures < ctx.cfg.retry.budget => {
                        failures += 1;
                        tokio::select! {
                            _ = tokio::time::sleep(ctx.backoff(failures, None)) => continue,
                            _ = ctx.cancel.cancelled() => return started,
                        }
                    }
                    Verdict::Online => {}
                    Verdict::Lost(waited) => {
                        ctx.stop(JobError::NetworkLost(waited));
                        return started;
                    }
                    Verdict::Cancelled => return started,
                }
            }
            Err(_) => {}
        }
        let done = matches!(page, Ok(None) | Err(_));
        let page = page.map(Option::unwrap_or_default);
        if out.send(page).await.is_err() || done {
            break;
        }
    }
    if pager.shifts > 0 {
        ctx.events.send(Event::Warning {
            message: format!(
                "the search's results changed {} time(s) while it was paged; it went back to the last file taken each time, so none was missed",
                pager.shifts
            ),
        });
    }
    started
}

/// Takes a page of hits into the job: the excluded are noted, the rest queued, the free
/// space checked against what they need.
pub(crate) fn take_page(ctx: &Ctx, found: &mut Found, hits: Vec<Hit>) {
    let num = |id: &str| uuid::Uuid::try_parse(id).map(|u| u.as_u128()).unwrap_or(0);
    let mut ids = Vec::with_capacity(hits.len());
    {
        let store = ctx.store();
        for hit in hits {
            let key = num(&hit.id);
            if ctx.cfg.shard.is_some_and(|s| !s.takes(key)) {
                continue;
            }
            found.order.push(key);
            if let Some(why) = hit.excluded(ctx.cfg.include_outdated) {
                found.excluded.insert(key, why);
                continue;
            }
            found.files += 1;
            let size = hit.size.unwrap_or(0);
            found.bytes += size;
            if store.file(&hit.id).done.is_none() {
                found.needed += size;
            }
            ids.push(hit.id.clone());
            found.queue.push_back((hit.id, Hint { md5: hit.md5 }));
        }
    }
    ctx.files_total.store(found.files, Ordering::Relaxed);
    announce_found(ctx, found, ids);
    if ctx.cfg.space_check {
        let written = ctx.progress.bytes_done.load(Ordering::Relaxed);
        let still = found.needed.saturating_sub(written);
        if let Ok(free) = fs4::available_space(&ctx.cfg.dest) {
            if still > free {
                ctx.stop(JobError::NoSpace {
                    folder: ctx.cfg.dest.clone(),
                    needed: still,
                    free,
                });
            }
        }
    }
}

pub(crate) fn announce_found(ctx: &Ctx, found: &Found, ids: Vec<String>) {
    ctx.events.send(Event::FilesFound {
        ids,
        files: found.files,
        bytes: found.bytes,
        excluded: found.excluded.len(),
        complete: found.complete,
    });
}
