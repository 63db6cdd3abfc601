//! A search run again into its folder is a sync: it fetches only what is new, narrows an EQL
//! listing by the last sync's watermark less an overlap, finds files indexed late within the
//! overlap, and a full listing finds the rest. Nothing is fetched twice.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

use tdp_testkit as common;

use common::*;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tdp_engine::job::report::Status;
use tdp_engine::{ErrorKind, Event, Search};
use tdp_sim::{sim_id, SimFile};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn file(i: u64, tag: &str) -> SimFile {
    SimFile::new(
        sim_id(51, i),
        format!("org/src/RAW/sync/f{i}.bin"),
        1_000 + i,
    )
    .tags(&[tag])
}

fn downloaded(rows: &[tdp_engine::job::report::ReportRow]) -> Vec<String> {
    let mut v: Vec<String> = rows
        .iter()
        .filter(|r| r.status == Status::Downloaded)
        .filter_map(|r| r.file_id.clone())
        .collect();
    v.sort();
    v
}

fn listing(events: &[Event]) -> (Option<String>, Option<String>) {
    events
        .iter()
        .find_map(|e| match e {
            Event::Listing { full, since } => Some((full.clone(), since.clone())),
            _ => None,
        })
        .expect("a listing event")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_sync_fetches_what_is_new_within_the_overlap_and_a_full_one_the_rest() {
    let first: Vec<SimFile> = (0..50)
        .map(|i| file(i, "sync"))
        .chain((50..60).map(|i| file(i, "other")))
        .collect();
    let sim = start(first.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let search = Search::parse_eql(r#"{"query": {"term": {"tags": "sync"}}}"#).unwrap();
    let cfg = || {
        let mut c = config(&sim, dir.path());
        c.sync_overlap = Duration::from_secs(60);
        c
    };

    // First sync: a full listing, 50 files.
    let (one, events) = run_search(cfg(), sim.token(), &search).await;
    assert!(one.fatal.is_none(), "{:?}", one.fatal);
    assert_eq!(one.summary.downloaded, 50);
    assert!(listing(&events).0.is_some(), "the first sync lists in full");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(".tdp-download/sync.json")).unwrap())
            .unwrap();
    let watermark = record["watermarkMs"].as_i64().unwrap();
    assert!(
        (now_ms() - watermark).abs() < 30_000,
        "the watermark is the sync's start"
    );

    // Then: 5 new files, 3 indexed late within the 60 s overlap, 1 indexed 10 min late, and
    // 2 new that do not match.
    let created = watermark - 3_600_000;
    let new: Vec<SimFile> = (100..105)
        .map(|i| file(i, "sync").created_ms(created).indexed_ms(now_ms()))
        .collect();
    let late: Vec<SimFile> = (105..108)
        .map(|i| {
            file(i, "sync")
                .created_ms(created)
                .indexed_ms(watermark - 30_000)
        })
        .collect();
    let too_late = file(108, "sync")
        .created_ms(created)
        .indexed_ms(watermark - 600_000);
    let unrelated: Vec<SimFile> = (109..111)
        .map(|i| file(i, "other").created_ms(created).indexed_ms(now_ms()))
        .collect();
    sim.add_files(
        new.iter()
            .chain(&late)
            .chain(std::iter::once(&too_late))
            .chain(&unrelated)
            .cloned()
            .collect(),
    );

    // Second sync: narrowed to the overlap; exactly the 8 new files within it.
    let before = sim.counters().total("retrieve");
    let (two, events) = run_search(cfg(), sim.token(), &search).await;
    assert!(two.fatal.is_none(), "{:?}", two.fatal);
    let (full, since) = listing(&events);
    assert!(
        full.is_none() && since.is_some(),
        "narrowed: {full:?} {since:?}"
    );
    let mut want: Vec<String> = new.iter().chain(&late).map(|f| f.id.clone()).collect();
    want.sort();
    assert_eq!(downloaded(&two.rows), want);
    assert_eq!(
        sim.counters().total("retrieve") - before,
        8,
        "nothing fetched twice"
    );
    let wanted: Vec<SimFile> = new.iter().chain(&late).cloned().collect();
    assert_all_landed(dir.path(), &two.rows, &wanted);
    assert!(!two
        .rows
        .iter()
        .any(|r| r.file_id.as_deref() == Some(too_late.id.as_str())));

    // A full sync finds the one indexed later than the overlap; the rest are in place.
    let before = sim.counters().total("retrieve");
    let mut full_cfg = cfg();
    full_cfg.full_listing = true;
    let (three, events) = run_search(full_cfg, sim.token(), &search).await;
    assert!(listing(&events).0.is_some());
    assert_eq!(downloaded(&three.rows), vec![too_late.id.clone()]);
    assert_eq!(three.summary.skipped, 58);
    assert_eq!(
        sim.counters().total("retrieve") - before,
        1,
        "only the new one resolved"
    );
    assert_all_landed(dir.path(), &three.rows, std::slice::from_ref(&too_late));

    // Another search into this folder is refused: one folder, one search's sync.
    let other = Search::parse_eql(r#"{"query": {"term": {"tags": "other"}}}"#).unwrap();
    let (tx, _rx) = tdp_engine::EventSender::channel();
    let e = tdp_engine::run_search(
        cfg(),
        tdp_engine::Token::new(sim.token()),
        &other,
        tx,
        tdp_engine::JobControl::default(),
    )
    .await
    .expect_err("refused");
    assert_eq!(e.kind(), ErrorKind::Busy);
    assert!(
        e.to_string().contains("keeps the sync of another search"),
        "{e}"
    );
}
