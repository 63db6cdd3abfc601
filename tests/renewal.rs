//! A token that expires mid-job, with a caller that can give a new one (the app): the job
//! waits for it instead of stopping, and goes on with it; nothing finished is fetched again.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

use tdp_testkit as common;

use common::*;
use std::time::Duration;
use tdp_engine::job::events::JobState;
use tdp_engine::{Event, EventSender, JobControl, Token};
use tdp_sim::{sim_id, SimFile};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_waits_for_a_new_token_and_goes_on_with_it() {
    let files: Vec<SimFile> = (0..12)
        .map(|i| SimFile::new(sim_id(91, i), format!("org/raw/t{i}.bin"), 1_000_000))
        .collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    let sim = start(files.clone(), |c| c.shaping.total_bps = Some(4_000_000)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim, dir.path());
    cfg.wait_for_new_token = true;
    cfg.concurrency = 2;
    cfg.api_concurrency = 2;

    let sim = std::sync::Arc::new(sim);
    let control = JobControl::default();
    let (tx, mut rx) = EventSender::channel();
    // Plays the user: when the job asks, first a token that has expired too, then a good one.
    let user = {
        let (control, sim) = (control.clone(), sim.clone());
        move || async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let before = sim.counters().count("retrieve 401");
            control.renew_token(Token::new(sim.jwt_token(Duration::ZERO)));
            tokio::time::sleep(Duration::from_millis(500)).await;
            let rejected_again = sim.counters().count("retrieve 401") - before;
            control.renew_token(Token::new(sim.jwt_token(Duration::from_secs(3600))));
            rejected_again
        }
    };
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        let mut user = Some(user);
        let mut asked = None;
        while let Some(e) = rx.recv().await {
            if let Event::JobState {
                state: JobState::WaitingForToken,
            } = e
            {
                if let Some(user) = user.take() {
                    asked = Some(tokio::spawn(user()));
                }
            }
            events.push(e);
        }
        (events, asked)
    });

    let short = Token::new(sim.jwt_token(Duration::from_secs(1)));
    let result = tdp_engine::run_controlled(cfg, short, &ids_of(&files), tx, control)
        .await
        .unwrap();
    let (events, asked) = collector.await.unwrap();
    let rejected_again = asked.expect("the job asked for a token").await.unwrap();

    assert!(result.fatal.is_none(), "{:?}", result.fatal);
    assert_eq!(
        result.summary.downloaded,
        files.len(),
        "{:?}",
        result.summary
    );
    assert_eq!(result.summary.failed, 0);
    let rows = tdp_engine::job::report::read(&result.report_path).unwrap();
    assert_all_landed(dir.path(), &rows, &files);
    assert_no_partials(dir.path(), &rows);
    assert_eq!(
        job_states(&events),
        [JobState::WaitingForToken, JobState::Running],
        "asked once, and went on once a good token came"
    );
    assert!(
        rejected_again >= 1,
        "the expired token given while waiting was tried, and the job kept waiting"
    );
    let c = sim.counters();
    // Requests in flight when the token ran out, plus one per attempt with the expired one:
    // the waiting job itself asks TDP nothing.
    assert!(
        c.count("retrieve 401") <= 2 * 2 + 2,
        "401s: {}",
        c.count("retrieve 401")
    );
    assert!(
        c.bytes_served <= total + total / 20,
        "fetched {} bytes for {total}",
        c.bytes_served
    );
    eprintln!(
        "401s: {}; fetched {:.1}% of the data",
        c.count("retrieve 401"),
        c.bytes_served as f64 * 100.0 / total as f64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_wrong_from_the_start_stops_the_job_even_when_it_could_wait() {
    let files: Vec<SimFile> = (0..4)
        .map(|i| SimFile::new(sim_id(92, i), format!("org/raw/w{i}.bin"), 1000))
        .collect();
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim, dir.path());
    cfg.wait_for_new_token = true;
    let (result, events) = run(cfg, "not-the-token", &ids_of(&files)).await;
    let fatal = result.fatal.clone().expect("the job stops");
    assert_eq!(fatal.kind(), tdp_engine::ErrorKind::Auth, "{fatal}");
    assert!(!job_states(&events).contains(&JobState::WaitingForToken));
    assert_eq!(sim.counters().total("s3"), 0);
}

/// A search job whose token runs out while it pages (the app's case: a long listing) waits
/// for a new token like file look-ups do, and pages on with it: every file arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_job_waits_for_a_new_token_while_paging_and_goes_on() {
    let files: Vec<SimFile> = (0..400)
        .map(|i| SimFile::new(sim_id(93, i), format!("org/src/RAW/s/f{i}.bin"), 1_000))
        .collect();
    // Slow look-ups and a small window: the listing outlasts the token.
    let sim = std::sync::Arc::new(
        start(files.clone(), |c| {
            c.result_window = 100;
            c.shaping.api_latency = Duration::from_millis(250);
        })
        .await,
    );
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim, dir.path());
    cfg.wait_for_new_token = true;
    cfg.api_concurrency = 16;
    let control = JobControl::default();
    let (tx, mut rx) = EventSender::channel();
    let collector = {
        let (control, sim) = (control.clone(), sim.clone());
        tokio::spawn(async move {
            let mut states = Vec::new();
            while let Some(e) = rx.recv().await {
                if let Event::JobState { state } = e {
                    if state == JobState::WaitingForToken {
                        control.renew_token(Token::new(sim.jwt_token(Duration::from_secs(3600))));
                    }
                    states.push(state);
                }
            }
            states
        })
    };
    let search = tdp_engine::Search::parse_query("category=RAW").unwrap();
    let short = Token::new(sim.jwt_token(Duration::from_secs(2)));
    let result = tdp_engine::run_search(cfg, short, &search, tx, control)
        .await
        .unwrap();
    let states = collector.await.unwrap();
    assert!(result.fatal.is_none(), "{:?}", result.fatal);
    assert_eq!(result.summary.downloaded, 400);
    assert!(states.contains(&JobState::WaitingForToken), "{states:?}");
    let c = sim.counters();
    assert!(
        c.count("search 401") >= 1,
        "a page met the expired token: {:?}",
        c.requests
    );
    assert_eq!(c.count("retrieve 200"), 400, "each file resolved once");
    let rows = tdp_engine::job::report::read(&result.report_path).unwrap();
    assert_all_landed(dir.path(), &rows, &files);
}
