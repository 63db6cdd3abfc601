//! A download job: the scheduler that runs files through the API lane and the S3 slots,
//! keeps the journal, emits events and writes the report.

use crate::control::JobControl;
use crate::error::ErrorKind;
use crate::input::{Entry, InputLine, ParsedIds};
pub use crate::job::config::JobConfig;
use crate::job::context::{state_error, AuthGate, Ctx};
pub use crate::job::error::JobError;
use crate::job::events::{Event, EventSender, Progress, Summary};
use crate::job::file::process_file;
use crate::job::file::Hint;
use crate::job::lifecycle::Lifecycle;
use crate::job::manifest::Manifest;
use crate::job::outage::{NetGate, Verdict};
use crate::job::report::{self, FileOutcome, Status};
use crate::limiter::AdaptiveLimit;
use crate::net::connect::Connector;
use crate::storage::s3::S3Client;
use crate::store::state::{StateError, Store};
use crate::tdp::client::{TdpClient, Token};
use crate::tdp::error::TdpError;
use crate::tdp::files::JobFiles;
use crate::tdp::pager::Pager;
use crate::tdp::search::{self, Exclusion, Hit, Search, SearchError};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub const MAX_PROBLEMS: usize = 1000;

/// What the job keeps of a finished file: the rest is in the state journal.
struct Kept {
    status: Status,
    attempts: u32,
    kind: Option<ErrorKind>,
    error: Option<Box<str>>,
}

/// What a finished (or stopped) job produced.
#[derive(Debug, Clone)]
pub struct JobResult {
    pub summary: Summary,
    /// Report rows of failed and invalid lines (at most [`MAX_PROBLEMS`]); every row is in
    /// the report on disk.
    pub problems: Vec<report::ReportRow>,
    /// Set when the job stopped because of an error that concerns every file.
    pub fatal: Option<JobError>,
    pub cancelled: bool,
    pub report_path: PathBuf,
    pub report_error: Option<String>,
}

/// Relative names of the report files when they sit inside the destination.
fn reserved_names(dest: &Path, report: &Path) -> Vec<String> {
    [
        report.to_path_buf(),
        report::csv_path(report),
        dest.join(report::FAILED_LIST),
    ]
    .iter()
    .filter_map(|p| p.strip_prefix(dest).ok())
    .map(|p| p.to_string_lossy().replace('\\', "/"))
    .collect()
}

/// Runs a job to the end, a fatal error, or cancellation. Every valid ID ends in the result.
pub async fn run(
    cfg: JobConfig,
    token: Token,
    input: &ParsedIds,
    events: EventSender,
    cancel: CancellationToken,
) -> Result<JobResult, JobError> {
    run_controlled(cfg, token, input, events, JobControl::with_cancel(cancel)).await
}

/// [`run`], with a handle that can also pause and resume the job.
pub async fn run_controlled(
    cfg: JobConfig,
    token: Token,
    input: &ParsedIds,
    events: EventSender,
    control: JobControl,
) -> Result<JobResult, JobError> {
    run_files(cfg, token, Files::Ids(input), events, control).await
}

/// Runs a job over the files a TDP search finds: downloads start with the first page, and
/// every hit ends in the report (those left out as `excluded`).
pub async fn run_search(
    cfg: JobConfig,
    token: Token,
    search: &Search,
    events: EventSender,
    control: JobControl,
) -> Result<JobResult, JobError> {
    run_files(cfg, token, Files::Search(search), events, control).await
}

/// Runs a job over IDs or a search, as [`JobFiles`] says.
pub async fn run_job(
    cfg: JobConfig,
    token: Token,
    files: &JobFiles,
    events: EventSender,
    control: JobControl,
) -> Result<JobResult, JobError> {
    let files = match files {
        JobFiles::Ids(ids) => Files::Ids(ids),
        JobFiles::Search(search) => Files::Search(search),
    };
    run_files(cfg, token, files, events, control).await
}

/// [`JobFiles`], borrowed.
#[derive(Clone, Copy)]
enum Files<'a> {
    Ids(&'a ParsedIds),
    Search(&'a Search),
}

/// What a search job has found so far, in the order found.
#[derive(Default)]
struct Found {
    /// Every hit's ID as a number, excluded ones too: the report's rows, in order.
    order: Vec<u128>,
    excluded: HashMap<u128, Exclusion>,
    /// Hits to download, not yet given to a task, with what search told of them.
    queue: std::collections::VecDeque<(String, Hint)>,
    files: usize,
    bytes: u64,
    /// Bytes of the hits found that are not in place yet (for the free-space check).
    needed: u64,
    complete: bool,
}

async fn run_files(
    cfg: JobConfig,
    token: Token,
    files_in: Files<'_>,
    events: EventSender,
    control: JobControl,
) -> Result<JobResult, JobError> {
    let empty = ParsedIds::default();
    let input = match files_in {
        Files::Ids(input) => input,
        Files::Search(_) => &empty,
    };
    let cancel = control.cancel_token().clone();
    let started = Instant::now();
    if cfg.limit_rate.is_some() {
        control.set_rate_limit(cfg.limit_rate);
    }
    let (connector, tdp) = connect(&cfg, token)?;
    let s3 = S3Client::new(&connector, cfg.connect_timeout, cfg.read_timeout)
        .map_err(|e| TdpError::Client(Arc::new(e)))?;
    let report_path = cfg.report_path();
    let reserved = reserved_names(&cfg.dest, &report_path);
    let dest = cfg.dest.clone();
    let state_dir = cfg.state_dir();
    // Made here, moved to the blocking thread: the input's text is shared, not copied.
    let mut manifest = Manifest::of(&cfg, input);
    if let Files::Search(search) = files_in {
        manifest.search = Some(search.clone());
    }
    let shard = cfg.shard;
    let state_dir_kept = state_dir.clone();
    let (store, previous, last_sync) = tokio::task::spawn_blocking(move || {
        let store = Store::open_in(&dest, &state_dir, &reserved)?;
        // Read under the lock, before this job's manifest replaces it.
        let previous = Manifest::read_shard(&dest, shard).ok();
        let last_sync = crate::job::sync::read(&state_dir);
        Ok::<_, StateError>((store, previous, last_sync))
    })
    .await
    .map_err(|e| JobError::Internal(e.to_string()))?
    .map_err(|e| state_error(&cfg.dest, &e))?;
    let state_dir = state_dir_kept;
    // One folder, one search's sync: another search would mix two sets of files.
    if let (Files::Search(search), Some(theirs)) =
        (files_in, previous.as_ref().and_then(|m| m.search.as_ref()))
    {
        if theirs != search {
            return Err(JobError::OtherSearch {
                folder: cfg.dest.clone(),
                theirs: theirs.describe(),
            });
        }
    }
    let listing = match files_in {
        Files::Search(search) => Some(crate::job::sync::plan(last_sync.as_ref(), search, &cfg)),
        Files::Ids(_) => None,
    };
    {
        let dir = state_dir.clone();
        let manifest_written =
            tokio::task::spawn_blocking(move || manifest.write(&dir).map_err(StateError::from))
                .await
                .map_err(|e| JobError::Internal(e.to_string()))?;
        manifest_written.map_err(|e| state_error(&cfg.dest, &e))?;
    }

    let counts = input.counts();
    let files = counts.valid;
    events.send(Event::JobStarted {
        total_lines: input.total(),
        valid: counts.valid,
        invalid: counts.invalid,
        duplicates: counts.duplicates,
        files,
    });
    let mut store = store;
    store.set_name_max(
        cfg.name_max
            .unwrap_or_else(|| crate::store::naming::name_limit(&cfg.dest)),
    );
    store.reserve(files);
    let concurrency = cfg.concurrency.max(1);
    let api = cfg.api_concurrency.max(1);
    // Files in flight: those transferring plus a look-ahead whose URLs are being resolved,
    // so S3 slots never wait on the API; bounded, so memory does not grow with the job.
    let in_flight = concurrency + api.max(concurrency);
    let job_cancel = cancel.child_token();
    // Probes answer fast or not at all: never wait longer than a stalled read would.
    let probe_timeout = cfg
        .read_timeout
        .clamp(Duration::from_secs(1), Duration::from_secs(5));
    let mut sleep_allowed = control.watch_sleep_allowed();
    let allowed_now = *sleep_allowed.borrow_and_update();
    let states = Arc::new(Lifecycle::start(events.clone(), cfg.keep_awake, allowed_now).await);
    let net = NetGate::new(
        tdp.base().clone(),
        &connector,
        cfg.network_patience,
        probe_timeout,
        states.clone(),
    )
    .map_err(|e| TdpError::Client(Arc::new(e)))?;
    // Cancelled from outside (Ctrl-C, the window's Cancel): the job is stopping.
    let on_cancel = {
        let (states, cancel) = (states.clone(), cancel.clone());
        tokio::spawn(async move {
            cancel.cancelled().await;
            states.stop();
        })
    };
    // Paused and resumed from outside: the state machine follows.
    let on_pause = {
        let (states, mut paused) = (states.clone(), control.watch_paused());
        tokio::spawn(async move {
            loop {
                let now = *paused.borrow_and_update();
                states.set_paused(now);
                if paused.changed().await.is_err() {
                    return;
                }
            }
        })
    };
    // The user's "let it sleep" while the job runs: the inhibitor follows.
    let on_sleep_choice = {
        let states = states.clone();
        tokio::spawn(async move {
            while sleep_allowed.changed().await.is_ok() {
                let allowed = *sleep_allowed.borrow_and_update();
                states.allow_sleep(allowed);
            }
        })
    };
    // Where the shared flush does not write back the journal itself (macOS, Windows), its
    // rounds do, through a handle of their own.
    let journal = cfg!(not(target_os = "linux"))
        .then(|| store.journal().ok())
        .flatten();
    let ctx = Arc::new(Ctx {
        paused: control.watch_paused(),
        renewal: crate::job::renewal::Renewal::new(control.watch_tokens()),
        rate: control.rate(),
        states,
        net,
        tdp,
        s3,
        api_lane: AdaptiveLimit::new(api.min(32), api),
        s3_slots: Arc::new(Semaphore::new(concurrency)),
        store: Mutex::new(store),
        events: events.clone(),
        progress: Progress::default(),
        cancel: job_cancel.clone(),
        fatal: Mutex::new(None),
        gate: Mutex::new(AuthGate::default()),
        rng: Mutex::new(fastrand::Rng::new()),
        files_total: AtomicUsize::new(files),
        syncs: crate::store::group_sync::GroupSync::new(
            &cfg.dest,
            &state_dir,
            cfg.group_sync,
            journal,
        ),
        cfg,
    });

    let ticker_stop = CancellationToken::new();
    let ticker = tokio::spawn(tick_progress(ctx.clone(), ticker_stop.clone()));

    // Keyed by the ID as a number: a job may have 100,000 of them.
    let num = |id: &str| uuid::Uuid::try_parse(id).map(|u| u.as_u128()).unwrap_or(0);
    let mut outcomes: HashMap<u128, Kept> = HashMap::with_capacity(files);
    let mut tasks = JoinSet::new();
    let mut pending = input.ids().iter().cloned();
    let mut found = Found::default();
    // A search pages in its own task, a few pages ahead of the downloads and no more.
    let (page_tx, mut pages) = tokio::sync::mpsc::channel(2);
    if let Some(listing) = &listing {
        let (full, since) = match listing {
            crate::job::sync::Listing::Full(why) => (Some(why.clone()), None),
            crate::job::sync::Listing::Since(ms) => (None, Some(search::iso_ms(*ms))),
        };
        events.send(Event::Listing { full, since });
    }
    let since_ms = match listing {
        Some(crate::job::sync::Listing::Since(ms)) => Some(ms),
        _ => None,
    };
    let pager = match files_in {
        Files::Search(search) => Some(tokio::spawn(page_search(
            ctx.clone(),
            search.clone(),
            since_ms,
            page_tx,
        ))),
        Files::Ids(_) => {
            drop(page_tx);
            found.complete = true;
            None
        }
    };
    loop {
        while tasks.len() < in_flight && !job_cancel.is_cancelled() {
            let next = match pending.next() {
                Some(id) => Some((id, Hint::default())),
                None => found.queue.pop_front(),
            };
            let Some((id, hint)) = next else { break };
            tasks.spawn(process_file(ctx.clone(), id, hint));
        }
        let want_page = !found.complete
            && found.queue.len() < in_flight.max(search::PAGE)
            && !job_cancel.is_cancelled();
        tokio::select! {
            biased;
            joined = tasks.join_next(), if !tasks.is_empty() => match joined {
                Some(Ok((id, o))) => {
                    let kept = Kept {
                        status: o.status,
                        attempts: o.attempts,
                        kind: o.kind,
                        error: o.error.map(String::into_boxed_str),
                    };
                    outcomes.insert(num(&id), kept);
                }
                Some(Err(e)) => tracing::error!("a file task ended abnormally: {e}"),
                None => {}
            },
            page = pages.recv(), if want_page => match page {
                Some(Ok(hits)) => take_page(&ctx, &mut found, hits),
                Some(Err(e)) => {
                    ctx.stop(JobError::Search(e));
                    found.complete = true;
                }
                None => {
                    found.complete = true;
                    announce_found(&ctx, &found, Vec::new());
                }
            },
            else => break,
        }
    }
    // The pager has ended when the search is complete; else it is stopped here.
    let mut listed_from = None;
    if let Some(pager) = pager {
        if found.complete && !job_cancel.is_cancelled() {
            listed_from = pager.await.ok();
        } else {
            pager.abort();
        }
    }
    ticker_stop.cancel();
    let _ = ticker.await;
    on_cancel.abort();
    on_pause.abort();
    on_sleep_choice.abort();
    emit_progress(&ctx, 0.0);
    // The done records are durable before the report says so.
    let journal = ctx.store().journal();
    if let Ok(j) = journal {
        if let Ok(Err(e)) = tokio::task::spawn_blocking(move || j.sync()).await {
            tracing::warn!("could not sync the journal: {e}");
        }
    }

    let fatal = ctx.fatal.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let cancelled = cancel.is_cancelled();
    let mut summary = Summary {
        total_lines: input.total(),
        valid: counts.valid,
        invalid: counts.invalid,
        duplicates: counts.duplicates,
        seconds: started.elapsed().as_secs_f64(),
        stopped: fatal
            .as_ref()
            .map(|f| f.to_string())
            .or_else(|| cancelled.then(|| "cancelled".to_string())),
        stop_kind: fatal
            .as_ref()
            .map(JobError::kind)
            .or_else(|| cancelled.then_some(ErrorKind::Cancelled)),
        report: Some(report_path.to_string_lossy().into_owned()),
        ..Summary::default()
    };
    let stopped_by = summary.stop_kind.unwrap_or(ErrorKind::Cancelled);
    for o in outcomes.values() {
        match o.status {
            Status::Downloaded => summary.downloaded += 1,
            Status::Skipped => summary.skipped += 1,
            Status::Failed => summary.failed += 1,
            _ => summary.cancelled += 1,
        }
    }
    if let Files::Search(_) = files_in {
        summary.total_lines = found.order.len();
        summary.valid = found.files;
        summary.excluded = found.excluded.len();
        summary.cancelled += found.files.saturating_sub(outcomes.len());
    } else {
        summary.cancelled += counts.valid.saturating_sub(outcomes.len());
    }
    // A file's details live in the journal; the job kept only its status and error.
    let lookup = |id: &str| -> Option<FileOutcome> {
        let kept = outcomes.get(&num(id))?;
        let done = match kept.status {
            Status::Downloaded | Status::Skipped => ctx.store().file(id).done,
            _ => None,
        };
        Some(FileOutcome {
            status: kept.status,
            path: done.as_ref().map(|d| d.path.clone()),
            bytes: done.as_ref().map(|d| d.bytes),
            etag: done.as_ref().and_then(|d| d.etag.clone()),
            md5: done.as_ref().and_then(|d| d.md5.clone()),
            verified: done.as_ref().map(|d| d.verified),
            decoded: done.as_ref().is_some_and(|d| d.decoded),
            attempts: kept.attempts,
            kind: kept.kind,
            error: kept.error.as_deref().map(str::to_string),
        })
    };
    for (id, o) in &outcomes {
        if o.status == Status::Downloaded {
            let id = uuid::Uuid::from_u128(*id).hyphenated().to_string();
            summary.bytes += ctx.store().file(&id).done.map(|d| d.bytes).unwrap_or(0);
        }
    }
    let lookup = |id: &str| -> Option<FileOutcome> {
        match found.excluded.get(&num(id)) {
            Some(why) => Some(FileOutcome {
                error: Some(why.reason().to_string()),
                kind: None,
                ..FileOutcome::failed(Status::Excluded, 0, ErrorKind::Input, "")
            }),
            None => lookup(id),
        }
    };
    // A search job's lines are its hits, in the order found.
    let hit_lines = || {
        found.order.iter().enumerate().map(|(i, key)| {
            let id = uuid::Uuid::from_u128(*key).hyphenated().to_string();
            InputLine {
                line: i + 1,
                input: id.clone(),
                entry: Entry::Valid { id },
            }
        })
    };
    let lines = || -> Box<dyn Iterator<Item = InputLine> + '_> {
        match files_in {
            Files::Ids(input) => Box::new(input.lines()),
            Files::Search(_) => Box::new(hit_lines()),
        }
    };
    let problems: Vec<report::ReportRow> = lines()
        .map(|l| report::row(&l, &lookup, stopped_by))
        .filter(|r| matches!(r.status, Status::Failed | Status::Invalid))
        .take(MAX_PROBLEMS)
        .collect();
    // Written here, not on a blocking thread: the transfers are over, and the rows are made
    // one at a time from the input so that a large job never holds them all.
    let mut rows = lines().map(|l| report::row(&l, &lookup, stopped_by));
    let report_error = report::write(&report_path, &summary, &mut rows)
        .err()
        .map(|e| format!("could not write the report {}: {e}", report_path.display()));
    // A sync that put every hit in place moves the folder's watermark; one with files not in
    // place keeps the old one, so the next sync lists them again.
    if let (Files::Search(search), Some(listing), Some((ms, at))) =
        (files_in, &listing, listed_from)
    {
        let complete = summary.failed == 0 && summary.cancelled == 0 && fatal.is_none();
        if complete {
            let record = crate::job::sync::next(last_sync.as_ref(), search, listing, ms, at);
            if let Err(e) = crate::job::sync::write(&state_dir, &record) {
                tracing::warn!("could not record the sync in {}: {e}", state_dir.display());
            }
        }
    }
    events.send(Event::JobFinished {
        summary: summary.clone(),
    });
    Ok(JobResult {
        summary,
        problems,
        fatal,
        cancelled,
        report_path,
        report_error,
    })
}

/// The job's connector (trust, proxy) and its TDP client, after the token's own checks.
pub(crate) fn connect(cfg: &JobConfig, token: Token) -> Result<(Connector, TdpClient), JobError> {
    token.check()?;
    let connector = Connector::new(&cfg.network)?;
    let tdp = TdpClient::new(
        &cfg.base_url,
        &cfg.org,
        token,
        &connector,
        cfg.connect_timeout,
        cfg.read_timeout,
    )?;
    Ok((connector, tdp))
}

/// Pages the search to its end, handing each page to the job; stops at the first error.
/// Returns when the listing started (the sync's next watermark).
async fn page_search(
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
fn take_page(ctx: &Ctx, found: &mut Found, hits: Vec<Hit>) {
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

fn announce_found(ctx: &Ctx, found: &Found, ids: Vec<String>) {
    ctx.events.send(Event::FilesFound {
        ids,
        files: found.files,
        bytes: found.bytes,
        excluded: found.excluded.len(),
        complete: found.complete,
    });
}

fn emit_progress(ctx: &Ctx, rate: f64) {
    ctx.events.send(Event::Progress {
        files_done: ctx.progress.files_done.load(Ordering::Relaxed) as usize,
        files_total: ctx.files_total.load(Ordering::Relaxed),
        bytes_done: ctx.progress.bytes_done.load(Ordering::Relaxed),
        bytes_known: ctx.progress.bytes_known.load(Ordering::Relaxed),
        bytes_per_second: rate,
        active: ctx.progress.active(200),
    });
}

/// At most ten progress events a second, whatever the number of files.
async fn tick_progress(ctx: Arc<Ctx>, stop: CancellationToken) {
    let mut interval = tokio::time::interval(Duration::from_millis(100));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last = (Instant::now(), 0u64);
    let mut rate = 0.0;
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.cancelled() => return,
        }
        let now = Instant::now();
        let bytes = ctx.progress.bytes_done.load(Ordering::Relaxed);
        let dt = now.duration_since(last.0).as_secs_f64();
        if dt > 0.0 {
            let inst = (bytes - last.1) as f64 / dt;
            rate = if rate == 0.0 {
                inst
            } else {
                0.7 * rate + 0.3 * inst
            };
        }
        last = (now, bytes);
        emit_progress(&ctx, rate);
    }
}
