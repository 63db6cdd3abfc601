//! A TDP search as a job's input, against the simulator's fileinfo/search and searchEql with
//! a lowered result window: every match downloaded once and verified, nothing else; pages
//! streamed into the downloads; exclusions reported; free space checked.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

use tdp_testkit as common;

use common::*;
use std::collections::HashSet;
use tdp_engine::job::report::Status;
use tdp_engine::{ErrorKind, Event, Search};
use tdp_sim::{sim_id, SimFile, EPOCH_2025_MS};

/// 2,500 files that match `category=RAW&tags=keep` (30 of them created at one instant, to
/// straddle pages), 300 that do not, 4 deleted and 3 outdated ones that would.
fn lake() -> (Vec<SimFile>, HashSet<String>) {
    let mut files = Vec::new();
    let mut matching = HashSet::new();
    for i in 0..2_500u64 {
        let mut f = SimFile::new(
            sim_id(41, i),
            format!("org/src-{}/RAW/run/f{i}.bin", i % 7),
            100 + i % 50,
        )
        .tags(&["keep", "hplc"]);
        if (1_000..1_030).contains(&i) {
            f = f.created_ms(EPOCH_2025_MS + 86_400_000);
        }
        if i % 5 == 0 {
            f = f.with_md5_checksum();
        }
        matching.insert(f.id.clone());
        files.push(f);
    }
    for i in 2_500..2_800u64 {
        let f = SimFile::new(sim_id(41, i), format!("org/src/IDS/x/g{i}.json"), 10).tags(&["keep"]);
        files.push(if i % 2 == 0 {
            f
        } else {
            f.category("RAW").tags(&["other"])
        });
    }
    for i in 2_800..2_807u64 {
        let f =
            SimFile::new(sim_id(41, i), format!("org/src/RAW/old/h{i}.bin"), 10).tags(&["keep"]);
        files.push(if i < 2_804 { f.deleted() } else { f.outdated() });
    }
    (files, matching)
}

async fn check_search(search: Search) {
    let (files, matching) = lake();
    let sim = start(files.clone(), |c| c.result_window = 1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let (done, events) = run_search(config(&sim, dir.path()), sim.token(), &search).await;
    assert!(done.fatal.is_none(), "{:?}", done.fatal);
    let downloaded: Vec<&str> = done
        .rows
        .iter()
        .filter(|r| r.status == Status::Downloaded)
        .filter_map(|r| r.file_id.as_deref())
        .collect();
    assert_eq!(downloaded.len(), 2_500, "every match once");
    let set: HashSet<&str> = downloaded.iter().copied().collect();
    assert_eq!(set.len(), 2_500, "none twice");
    assert!(
        set.iter().all(|id| matching.contains(*id)),
        "nothing that does not match"
    );
    let wanted: Vec<SimFile> = files
        .iter()
        .filter(|f| matching.contains(&f.id))
        .cloned()
        .collect();
    assert_all_landed(dir.path(), &done.rows, &wanted);
    // Those TDP gave a checksum for were checked against it.
    for f in wanted.iter().filter(|f| f.meta.checksum.is_some()) {
        assert_eq!(
            row_for(&done.rows, &f.id).verified,
            Some(tdp_engine::store::state::Verified::Md5)
        );
    }
    let excluded: Vec<_> = done
        .rows
        .iter()
        .filter(|r| r.status == Status::Excluded)
        .collect();
    assert_eq!(
        excluded.len(),
        7,
        "4 deleted and 3 outdated are reported as excluded"
    );
    assert!(excluded.iter().all(|r| r.error.is_some()));
    assert_eq!(done.summary.excluded, 7);
    assert_eq!(done.summary.downloaded, 2_500);
    let c = sim.counters();
    assert_eq!(
        c.total("retrieve"),
        2_500,
        "each match resolved once, nothing else"
    );
    let pages = c.count("search 200") + c.count("searchEql 200");
    assert!(pages >= 3, "paged past the window of 1,000: {pages} pages");
    let found: usize = events
        .iter()
        .map(|e| match e {
            Event::FilesFound { ids, .. } => ids.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(found, 2_500, "every file announced once as found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fileinfo_search_past_the_result_window_downloads_every_match_once() {
    check_search(Search::parse_query("category=RAW&tags=keep").unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_eql_search_past_the_result_window_downloads_every_match_once() {
    let body = r#"{"query": {"bool": {"filter": [
        {"term": {"category": "RAW"}},
        {"terms": {"tags": ["keep"]}}
    ]}}}"#;
    check_search(Search::parse_eql(body).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_first_files_are_done_before_the_last_page_is_served() {
    let (files, _) = lake();
    let sim = start(files, |c| c.result_window = 1_000).await;
    sim.hold_last_search_page(true);
    let dir = tempfile::tempdir().unwrap();
    let (tx, mut rx) = tdp_engine::EventSender::channel();
    let search = Search::parse_query("category=RAW&tags=keep").unwrap();
    let cfg = config(&sim, dir.path());
    let token = sim.token().to_string();
    let job = tokio::spawn(async move {
        tdp_engine::run_search(
            cfg,
            tdp_engine::Token::new(&token),
            &search,
            tx,
            tdp_engine::JobControl::default(),
        )
        .await
    });
    let mut done_while_held = 0;
    while let Some(e) = rx.recv().await {
        if let Event::FileDone { path, .. } = &e {
            assert!(dir.path().join(path).is_file());
            done_while_held += 1;
            if done_while_held == 20 {
                break;
            }
        }
    }
    assert_eq!(
        done_while_held, 20,
        "files completed while the last page was held back"
    );
    let c = sim.counters();
    let served = c.count("search 200");
    sim.hold_last_search_page(false);
    while rx.recv().await.is_some() {}
    let result = job.await.unwrap().unwrap();
    assert!(result.fatal.is_none(), "{:?}", result.fatal);
    assert_eq!(result.summary.downloaded, 2_500);
    assert!(
        sim.counters().count("search 200") > served,
        "the held page came after"
    );
}

#[tokio::test]
async fn more_hits_at_one_instant_than_a_window_holds_stop_a_fileinfo_search_not_an_eql_one() {
    let files: Vec<SimFile> = (0..1_200u64)
        .map(|i| {
            SimFile::new(sim_id(43, i), format!("org/src/RAW/t/f{i}.bin"), 10)
                .created_ms(EPOCH_2025_MS)
        })
        .collect();
    let sim = start(files, |c| c.result_window = 1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&sim, dir.path());
    let token = || tdp_engine::Token::new(sim.token());
    let fileinfo = Search::parse_query("category=RAW").unwrap();
    let e = tdp_engine::session::preview::preview(&cfg, token(), &fileinfo, |_| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("--eql"), "{e}");
    let eql = Search::parse_eql(r#"{"query": {"term": {"category": "RAW"}}}"#).unwrap();
    let p = tdp_engine::session::preview::preview(&cfg, token(), &eql, |_| {})
        .await
        .unwrap();
    assert_eq!(p.files, 1_200);
    assert_eq!(p.bytes, 12_000);
    assert_eq!(
        sim.counters().total("retrieve"),
        0,
        "a preview resolves nothing"
    );
}

#[tokio::test]
async fn a_search_whose_files_do_not_fit_stops_before_downloading() {
    // 64 TiB as search reports it: no disk of a test machine has that free.
    let files = vec![
        SimFile::new(sim_id(44, 0), "org/src/RAW/huge.bin", 64 << 40),
        SimFile::new(sim_id(44, 1), "org/src/RAW/small.bin", 10),
    ];
    let sim = start(files, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let search = Search::parse_query("category=RAW").unwrap();
    let (done, _) = run_search(config(&sim, dir.path()), sim.token(), &search).await;
    let fatal = done.fatal.as_ref().expect("stopped");
    assert_eq!(fatal.kind(), ErrorKind::DiskFull);
    assert!(fatal.to_string().contains("64.0 TiB"), "{fatal}");
    assert_eq!(sim.counters().total("s3"), 0, "no body was fetched");
    // --no-space-check: the small one downloads (the huge one is not wanted here; another
    // search, so another folder).
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim, dir.path());
    cfg.space_check = false;
    let small = Search::parse_eql(r#"{"query": {"range": {"file.size": {"lt": 100}}}}"#).unwrap();
    let (done, _) = run_search(cfg, sim.token(), &small).await;
    assert!(done.fatal.is_none(), "{:?}", done.fatal);
    assert_eq!(done.summary.downloaded, 1);
}

#[tokio::test]
async fn the_preview_counts_files_already_in_the_folder() {
    let (files, _) = lake();
    let sim = start(files, |c| c.result_window = 1_000).await;
    let dir = tempfile::tempdir().unwrap();
    let some = Search::parse_query("category=RAW&tags=hplc&sourceId=src-3").unwrap();
    let (done, _) = run_search(config(&sim, dir.path()), sim.token(), &some).await;
    let already = done.summary.downloaded as u64;
    assert!(already > 300, "{already}");
    let all = Search::parse_query("category=RAW&tags=keep").unwrap();
    let cfg = config(&sim, dir.path());
    let p = tdp_engine::session::preview::preview(
        &cfg,
        tdp_engine::Token::new(sim.token()),
        &all,
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(
        (p.files, p.in_folder, p.deleted, p.outdated),
        (2_500, already, 4, 3)
    );
    assert!(p.line().starts_with("2,500 files, "), "{}", p.line());
}
