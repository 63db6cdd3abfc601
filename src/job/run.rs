//! A download job: the scheduler that runs files through the API lane and the S3 slots,
//! keeps the journal, emits events and writes the report.

use crate::control::JobControl;
use crate::input::ParsedIds;
pub use crate::job::conclude::JobResult;
use crate::job::conclude::{conclude, Ended, Kept};
pub use crate::job::config::JobConfig;
use crate::job::context::{state_error, AuthGate, Ctx};
pub use crate::job::error::JobError;
use crate::job::events::{Event, EventSender, Progress};
use crate::job::file::process_file;
use crate::job::file::Hint;
use crate::job::lifecycle::Lifecycle;
use crate::job::manifest::Manifest;
use crate::job::outage::NetGate;
use crate::job::paging::{announce_found, page_search, take_page, Found};
use crate::job::report::{self};
use crate::job::ticker::{emit_progress, tick_progress};
use crate::limiter::AdaptiveLimit;
use crate::net::connect::Connector;
use crate::storage::s3::S3Client;
use crate::store::state::{StateError, Store};
use crate::tdp::client::{TdpClient, Token};
use crate::tdp::error::TdpError;
use crate::tdp::files::Files;
use crate::tdp::files::JobFiles;
use crate::tdp::search::{self, Search};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

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
    run_files(cfg, token, files.borrowed(), events, control).await
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

    let result = conclude(
        &ctx,
        Ended {
            files_in,
            input,
            started,
            cancelled: cancel.is_cancelled(),
            report_path,
            outcomes,
            found: &found,
        },
    );
    // A sync that put every hit in place moves the folder's watermark; one with files not in
    // place keeps the old one, so the next sync lists them again.
    if let (Files::Search(search), Some(listing), Some((ms, at))) =
        (files_in, &listing, listed_from)
    {
        let summary = &result.summary;
        let complete = summary.failed == 0 && summary.cancelled == 0 && result.fatal.is_none();
        if complete {
            let record = crate::job::sync::next(last_sync.as_ref(), search, listing, ms, at);
            if let Err(e) = crate::job::sync::write(&state_dir, &record) {
                tracing::warn!("could not record the sync in {}: {e}", state_dir.display());
            }
        }
    }
    events.send(Event::JobFinished {
        summary: result.summary.clone(),
    });
    Ok(result)
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
