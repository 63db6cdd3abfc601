//! Fault tolerance: every known file arrives with the right bytes or is reported with a reason,
//! whatever the simulator throws at the engine. Faults are drawn from (seed, fileId, attempt),
//! so each run sees the same ones.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

use tdp_testkit as common;

use common::*;
use std::time::Duration;
use tdp_engine::job::report::Status;
use tdp_engine::{ErrorKind, Event};
use tdp_sim::{demo_files, sim_id, Faults, SimFile, Simulator};

async fn run_all(sim: &Simulator, files: &[SimFile], unknown: &[String]) -> Finished {
    let dir = tempfile::tempdir().unwrap();
    let mut text: String = files.iter().map(|f| format!("{}\n", f.id)).collect();
    for u in unknown {
        text.push_str(u);
        text.push('\n');
    }
    let mut cfg = config(sim, dir.path());
    cfg.read_timeout = Duration::from_secs(1);
    let (result, _) = run(cfg, sim.token(), &tdp_engine::parse_ids(&text)).await;
    assert!(result.fatal.is_none(), "{:?}", result.fatal);
    assert_all_landed(dir.path(), &result.rows, files);
    assert_no_partials(dir.path(), &result.rows);
    for u in unknown {
        let row = row_for(&result.rows, u);
        assert_eq!(row.status, Status::Failed);
        assert_eq!(row.kind, Some(ErrorKind::NotFound), "{row:?}");
    }
    assert_eq!(result.summary.downloaded, files.len());
    assert_eq!(result.summary.failed, unknown.len());
    assert_eq!(sim.counters().s3_requests_with_tdp_headers, 0);
    // The report on disk says the same.
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("tdp-download-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["summary"]["downloaded"], files.len());
    assert_eq!(
        json["files"].as_array().unwrap().len(),
        files.len() + unknown.len()
    );
    result
}

async fn with_faults(seed: u64, n: usize, faults: Faults) -> (Simulator, Vec<SimFile>) {
    let files = demo_files(seed, n, None);
    let sim = start(files.clone(), |c| {
        c.faults = faults;
        c.seed = seed;
    })
    .await;
    (sim, files)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_429_with_retry_after_is_retried() {
    let (sim, files) = with_faults(
        41,
        60,
        Faults {
            api_429: 0.3,
            retry_after_secs: 1,
            ..Faults::default()
        },
    )
    .await;
    run_all(&sim, &files, &[]).await;
    assert!(sim.counters().count("retrieve 429") > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_502_and_503_are_retried() {
    let (sim, files) = with_faults(
        42,
        60,
        Faults {
            api_502: 0.3,
            api_503: 0.3,
            ..Faults::default()
        },
    )
    .await;
    run_all(&sim, &files, &[]).await;
    let c = sim.counters();
    assert!(
        c.count("retrieve 502") > 0 && c.count("retrieve 503") > 0,
        "{c:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_500_and_slowdown_are_retried() {
    let (sim, files) = with_faults(
        43,
        60,
        Faults {
            s3_500: 0.3,
            s3_slowdown: 0.3,
            ..Faults::default()
        },
    )
    .await;
    run_all(&sim, &files, &[]).await;
    let c = sim.counters();
    assert!(c.count("s3 500") > 0 && c.count("s3 503") > 0, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_and_truncated_bodies_resume_by_range() {
    let (sim, files) = with_faults(
        44,
        60,
        Faults {
            s3_reset: 0.15,
            s3_truncate: 0.15,
            ..Faults::default()
        },
    )
    .await;
    let total: u64 = files.iter().map(|f| f.size).sum();
    run_all(&sim, &files, &[]).await;
    let c = sim.counters();
    // Resumed from where they broke, not from zero: little is fetched twice.
    assert!(
        c.bytes_served <= total * 115 / 100,
        "served {} for {total}",
        c.bytes_served
    );
    assert!(c.count("s3 206") > files.len() as u64, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_are_detected_and_resumed() {
    let (sim, files) = with_faults(
        45,
        30,
        Faults {
            s3_stall: 0.2,
            ..Faults::default()
        },
    )
    .await;
    run_all(&sim, &files, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_urls_are_fetched_again_and_the_transfer_continues() {
    // Every URL dies after 1 s; slow links and resets make transfers outlive them.
    let files: Vec<SimFile> = (0..6)
        .map(|i| SimFile::new(sim_id(46, i), format!("org/raw/f{i}.bin"), 3_000_000))
        .collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    let sim = start(files.clone(), |c| {
        c.faults = Faults {
            short_url_ttl: 1.0,
            s3_reset: 0.5,
            ..Faults::default()
        };
        c.shaping.per_connection_bps = Some(1_500_000);
    })
    .await;
    run_all(&sim, &files, &[]).await;
    let c = sim.counters();
    assert!(c.count("s3 403") > 0, "some URLs expired: {c:?}");
    assert!(
        c.total("retrieve") > files.len() as u64,
        "fresh URLs were fetched"
    );
    assert!(
        c.bytes_served <= total * 115 / 100,
        "served {} for {total}",
        c.bytes_served
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_objects_arrive_decoded_and_unknown_ids_are_reported() {
    let (sim, files) = with_faults(47, 40, Faults::default()).await;
    let unknown = vec![sim_id(470, 1), sim_id(470, 2)];
    let result = run_all(&sim, &files, &unknown).await;
    assert!(result.rows.iter().any(|r| r.decoded));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_bytes_are_downloaded_again_then_reported() {
    let files: Vec<SimFile> = (0..8)
        .map(|i| SimFile::new(sim_id(48, i), format!("org/raw/c{i}.bin"), 200_000))
        .collect();
    // Half of the bodies have a flipped byte: MD5 catches them, downloads within the retry
    // budget heal them.
    let sim = start(files.clone(), |c| {
        c.faults = Faults {
            s3_corrupt: 0.5,
            ..Faults::default()
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run(config(&sim, dir.path()), sim.token(), &ids_of(&files)).await;
    for f in &files {
        let row = row_for(&result.rows, &f.id);
        match row.status {
            Status::Downloaded => {
                assert_eq!(
                    md5_of_file(&dir.path().join(row.path.as_deref().unwrap())),
                    expected_md5(f)
                )
            }
            Status::Failed => {
                assert_eq!(
                    row.error.as_deref(),
                    Some("checksum mismatch after 8 attempts")
                );
                assert!(!dir.path().join(format!("c{}.bin", &f.key[10..11])).exists());
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(result.summary.downloaded, 8, "{:?}", result.summary);
    // Always corrupt: fails with the reason, and no final file holds wrong bytes.
    sim.set_faults(Faults {
        s3_corrupt: 1.0,
        ..Faults::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run(config(&sim, dir.path()), sim.token(), &ids_of(&files[..2])).await;
    assert_eq!(result.summary.failed, 2);
    assert!(!dir.path().join("c0.bin").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_lane_backs_off_under_a_concurrency_limit() {
    const K: usize = 12;
    let files = demo_files(49, 1000, Some(100));
    let sim = start(files.clone(), |c| {
        c.faults = Faults {
            api_concurrency_limit: Some(K),
            retry_after_secs: 0,
            ..Faults::default()
        };
        c.shaping.api_latency = Duration::from_millis(15);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let input = ids_of(&files);
    let job = run(config(&sim, dir.path()), sim.token(), &input);
    let settle = async {
        while sim.counters().count("retrieve 200") < 200 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        sim.reset_peaks();
    };
    let ((result, _), ()) = tokio::join!(job, settle);
    assert_eq!(result.summary.downloaded, files.len());
    let c = sim.counters();
    let throttled = c.count("retrieve 429") as f64 / c.total("retrieve") as f64;
    eprintln!(
        "429s: {:.1}% of {} look-ups; settled peak {}",
        throttled * 100.0,
        c.total("retrieve"),
        c.api_peak_concurrent
    );
    assert!(throttled < 0.10, "{throttled}");
    // AIMD probes one above the limit now and then; it never storms past it.
    assert!(
        c.api_peak_concurrent <= K + 1,
        "peak {}",
        c.api_peak_concurrent
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_faults_at_once_over_300_files() {
    let faults = Faults {
        api_429: 0.05,
        api_502: 0.05,
        api_503: 0.05,
        retry_after_secs: 1,
        s3_500: 0.05,
        s3_slowdown: 0.05,
        s3_reset: 0.05,
        s3_truncate: 0.05,
        s3_stall: 0.05,
        short_url_ttl: 0.05,
        ..Faults::default()
    };
    let (sim, files) = with_faults(50, 300, faults).await;
    let unknown: Vec<String> = (0..5).map(|i| sim_id(500, i)).collect();
    run_all(&sim, &files, &unknown).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_that_changed_mid_download_is_started_over_and_lands() {
    // The third request of every file answers 412 (the object changed); the file is split
    // into ranges, so a sibling range is in flight when it happens.
    let files: Vec<SimFile> = (0..3)
        .map(|i| SimFile::new(sim_id(47, i), format!("org/raw/c{i}.bin"), 1_000_000))
        .collect();
    let sim = start(files.clone(), |c| {
        c.faults = Faults {
            s3_changed_at_request: Some(3),
            ..Faults::default()
        };
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim, dir.path());
    cfg.split_threshold = 128 << 10;
    cfg.part_size = 128 << 10;
    let (result, events) = run(cfg, sim.token(), &ids_of(&files)).await;
    assert!(sim.counters().count("s3 412") >= files.len() as u64);
    assert_eq!(
        (
            result.summary.downloaded,
            result.summary.cancelled,
            result.summary.failed
        ),
        (files.len(), 0, 0),
        "{:?}",
        result.summary
    );
    assert_all_landed(dir.path(), &result.rows, &files);
    for f in &files {
        let restarted = events.iter().any(|e| {
            matches!(e, Event::FileRetrying { file_id, kind: ErrorKind::Integrity, .. } if *file_id == f.id)
        });
        assert!(restarted, "{} was started over", f.key);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_signed_before_a_sleep_is_fetched_again_before_use() {
    // Every file's first link is an hour old by its X-Amz-Date, as after a laptop slept.
    let (sim, files) = with_faults(
        48,
        12,
        Faults {
            stale_first_url: true,
            ..Faults::default()
        },
    )
    .await;
    run_all(&sim, &files, &[]).await;
    let c = sim.counters();
    assert_eq!(
        c.count("s3 403"),
        0,
        "no request spent on a dead link: {c:?}"
    );
    assert_eq!(c.count("retrieve 200"), 2 * files.len() as u64, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_clocks_hours_off_neither_loop_nor_fail() {
    // TDP and S3 agree with each other and disagree with this computer by two hours.
    for offset in [-7200, 7200] {
        let files = demo_files(49, 12, None);
        let sim = start(files.clone(), |c| c.clock_offset_secs = offset).await;
        run_all(&sim, &files, &[]).await;
        let c = sim.counters();
        assert_eq!(c.count("s3 403"), 0, "offset {offset}: {c:?}");
        assert_eq!(
            c.count("retrieve 200"),
            files.len() as u64,
            "offset {offset}: one link per file: {c:?}"
        );
    }
}
