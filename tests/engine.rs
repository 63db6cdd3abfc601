//! The engine against the simulator over real HTTP: the acceptance of the engine issue.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

use tdp_testkit as common;

use common::*;
use std::time::Duration;
use tdp_engine::job::report::Status;
use tdp_engine::store::state::Verified;
use tdp_engine::{CancellationToken, ErrorKind, Event, JobError, Layout};
use tdp_sim::{demo_files, sim_id, FileKind, SimFile};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_mixed_files_land_with_the_right_bytes() {
    let files = demo_files(11, 100, None);
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let (result, events) = run(config(&sim, dir.path()), sim.token(), &ids_of(&files)).await;

    assert!(result.fatal.is_none(), "{:?}", result.fatal);
    assert_eq!(result.summary.downloaded, 100, "{:?}", result.summary);
    assert_all_landed(dir.path(), &result.rows, &files);
    assert_no_partials(dir.path(), &result.rows);
    assert_eq!(sim.counters().s3_requests_with_tdp_headers, 0);

    // KMS ETags are not MD5s: those files pass by size; gzip objects arrive decoded.
    for f in &files {
        let row = row_for(&result.rows, &f.id);
        match f.kind {
            FileKind::Kms => assert_eq!(row.verified, Some(Verified::Size), "{}", f.key),
            FileKind::Gzip => {
                // The MD5 ETag of the encoded bytes is the stronger check.
                assert_eq!(row.verified, Some(Verified::Md5), "{}", f.key);
                assert!(row.decoded);
                assert_eq!(row.bytes, Some(f.size));
            }
            FileKind::KmsGzip => {
                assert_eq!(row.verified, Some(Verified::GzipCrc32), "{}", f.key);
                assert!(row.decoded);
            }
            FileKind::Plain if f.size > 0 => assert_eq!(row.verified, Some(Verified::Md5)),
            FileKind::Plain => {}
            FileKind::KmsMultipart { .. } => assert_eq!(row.verified, Some(Verified::Size)),
            FileKind::Multipart { .. } => {
                assert_eq!(row.verified, Some(Verified::MultipartMd5))
            }
        }
    }
    // The report is on disk as JSON and CSV, one row per input line.
    let json: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("tdp-download-report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(json["files"].as_array().unwrap().len(), 100);
    let csv = std::fs::read_to_string(dir.path().join("tdp-download-report.csv")).unwrap();
    assert_eq!(csv.lines().count(), 101);
    // Events: started, one final state per file, finished last.
    assert!(matches!(
        events.first(),
        Some(Event::JobStarted { files: 100, .. })
    ));
    assert!(matches!(events.last(), Some(Event::JobFinished { .. })));
    let done = events
        .iter()
        .filter(|e| matches!(e, Event::FileDone { .. }))
        .count();
    assert_eq!(done, 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_stops_the_job_with_one_clear_error() {
    let files = demo_files(12, 50, Some(1024));
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let (result, events) = run(config(&sim, dir.path()), "not-the-token", &ids_of(&files)).await;

    let fatal = result.fatal.clone().expect("the job stops");
    assert_eq!(fatal.kind(), ErrorKind::Auth, "{fatal:?}");
    assert_eq!(result.summary.downloaded, 0);
    assert_eq!(result.summary.failed, 0, "no file is blamed for the token");
    // Every unfinished row carries the kind that stopped the job.
    assert!(result
        .rows
        .iter()
        .all(|r| r.status == Status::Cancelled && r.kind == Some(ErrorKind::Auth)));
    assert_eq!(result.summary.stop_kind, Some(ErrorKind::Auth));
    let c = sim.counters();
    assert_eq!(c.total("s3"), 0);
    assert!(c.count("retrieve 401") <= 64 + 32, "stopped at once: {c:?}");
    let failed = events
        .iter()
        .filter(|e| matches!(e, Event::FileFailed { .. }))
        .count();
    assert_eq!(failed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_org_stops_the_job_but_one_forbidden_file_fails_alone() {
    let files = demo_files(13, 20, Some(1000));
    let forbidden = files[7].id.clone();
    let sim = start(files.clone(), |c| c.forbidden = vec![forbidden.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim, dir.path());
    cfg.org = "someone-elses-org".into();
    let (result, _) = run(cfg, sim.token(), &ids_of(&files)).await;
    assert!(
        result.fatal.as_ref().map(JobError::kind) == Some(ErrorKind::Forbidden),
        "{:?}",
        result.fatal
    );
    assert_eq!(result.summary.failed, 0);

    let dir = tempfile::tempdir().unwrap();
    let (result, _) = run(config(&sim, dir.path()), sim.token(), &ids_of(&files)).await;
    assert!(result.fatal.is_none());
    assert_eq!(result.summary.downloaded, 19);
    let row = row_for(&result.rows, &forbidden);
    assert_eq!(row.status, Status::Failed);
    assert_eq!(row.kind, Some(ErrorKind::Forbidden), "{row:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_malformed_ids_fail_alone() {
    let files = demo_files(14, 10, Some(5000));
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let unknown = [sim_id(999, 1), sim_id(999, 2)];
    let text = format!(
        "{}\n{}\nnot-a-uuid\n{}\n{}\n",
        files
            .iter()
            .map(|f| f.id.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        unknown[0],
        unknown[1],
        files[0].id,
    );
    let input = tdp_engine::parse_ids(&text);
    let (result, _) = run(config(&sim, dir.path()), sim.token(), &input).await;

    assert!(result.fatal.is_none());
    let s = &result.summary;
    assert_eq!(
        (s.downloaded, s.failed, s.invalid, s.duplicates),
        (10, 2, 1, 1),
        "{s:?}"
    );
    assert_all_landed(dir.path(), &result.rows, &files);
    for id in &unknown {
        let row = row_for(&result.rows, id);
        assert_eq!(row.status, Status::Failed);
        assert_eq!(row.kind, Some(ErrorKind::NotFound), "{row:?}");
    }
    let bad = result
        .rows
        .iter()
        .find(|r| r.status == Status::Invalid)
        .unwrap();
    assert_eq!((bad.line, bad.input.as_str()), (12, "not-a-uuid"));
    assert_eq!(bad.kind, Some(ErrorKind::Input));
    // Invalid lines are never sent.
    assert_eq!(sim.counters().count("retrieve 400"), 0);
    let dup = result
        .rows
        .iter()
        .find(|r| r.status == Status::Duplicate)
        .unwrap();
    assert_eq!(dup.line, 14);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traversal_and_reserved_names_stay_inside_the_destination() {
    let id = |i| sim_id(15, i);
    let files = vec![
        SimFile::new(id(0), "org/src/RAW/a.csv", 100)
            .disposition("attachment; filename=\"../../evil.txt\""),
        SimFile::new(id(1), "org/src/RAW/b.csv", 100)
            .disposition("attachment; filename=\"/etc/passwd\""),
        SimFile::new(id(2), "org/src/RAW/CON", 100),
        SimFile::new(id(3), "org/src/RAW/x:y*z?.json", 100),
        SimFile::new(id(4), "org/.../RAW/nul.txt", 100),
        SimFile::new(id(5), "org/src/RAW/.tdp-download", 100),
        SimFile::new(id(6), "org/src/RAW/tdp-download-report.json", 100),
        SimFile::new(id(7), ".tdp-download/journal.jsonl", 100),
    ];
    let sim = start(files.clone(), |_| {}).await;
    let outer = tempfile::tempdir().unwrap();
    let dest = outer.path().join("dest");
    for layout in [Layout::Flat, Layout::Mirror] {
        let dest = dest.join(format!("{layout:?}"));
        let mut cfg = config(&sim, &dest);
        cfg.layout = layout;
        let (result, _) = run(cfg, sim.token(), &ids_of(&files)).await;
        assert_eq!(
            result.summary.downloaded,
            files.len(),
            "{:?}",
            result.summary
        );
        assert_all_landed(&dest, &result.rows, &files);
        let paths: Vec<String> = files
            .iter()
            .map(|f| row_for(&result.rows, &f.id).path.clone().unwrap())
            .collect();
        let prefix = if layout == Layout::Mirror {
            "org/src/RAW/"
        } else {
            ""
        };
        assert_eq!(paths[0], format!("{prefix}evil.txt"));
        assert_eq!(paths[1], format!("{prefix}passwd"));
        assert_eq!(paths[2], format!("{prefix}_CON"));
        assert_eq!(paths[3], format!("{prefix}x_y_z_.json"));
        let nul = if layout == Layout::Mirror {
            "org/_/RAW/_nul.txt"
        } else {
            "_nul.txt"
        };
        assert_eq!(paths[4], nul);
        // The state folder and the report keep their names; the files get suffixes.
        if layout == Layout::Flat {
            assert!(paths[5].starts_with(".tdp-download~"), "{}", paths[5]);
            assert!(paths[6].starts_with("tdp-download-report~"), "{}", paths[6]);
            assert_eq!(paths[7], "journal.jsonl");
        } else {
            // A key inside a folder named like the state folder never writes into it.
            assert_eq!(paths[7], "_.tdp-download/journal.jsonl");
        }
    }
    // Nothing was written beside the destination.
    let outside: Vec<_> = std::fs::read_dir(outer.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside, vec![std::ffi::OsString::from("dest")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_name_files_all_survive_and_keep_their_names_on_a_rerun() {
    let files: Vec<SimFile> = (0..4)
        .map(|i| {
            SimFile::new(
                sim_id(16, i),
                format!("org/ids/IDS/{}.json/0.json", 1000 + i),
                300 + i,
            )
        })
        .collect();
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    // A file of the user's own with the same name is never overwritten nor taken for ours.
    std::fs::write(dir.path().join("0.json"), b"the user's own file").unwrap();

    let (first, _) = run(config(&sim, dir.path()), sim.token(), &ids_of(&files)).await;
    assert_eq!(first.summary.downloaded, 4);
    assert_all_landed(dir.path(), &first.rows, &files);
    assert_eq!(
        std::fs::read(dir.path().join("0.json")).unwrap(),
        b"the user's own file"
    );
    for f in &files {
        let short: String = f.id.chars().filter(|c| *c != '-').take(8).collect();
        assert_eq!(
            row_for(&first.rows, &f.id).path.as_deref(),
            Some(format!("0~{short}.json").as_str())
        );
    }

    // A rerun skips them all without asking TDP or S3; a deleted one comes back by its name.
    let before = sim.counters();
    let (second, _) = run(config(&sim, dir.path()), sim.token(), &ids_of(&files)).await;
    assert_eq!(second.summary.skipped, 4);
    let after = sim.counters();
    assert_eq!(after.total("retrieve"), before.total("retrieve"));
    assert_eq!(after.total("s3"), before.total("s3"));

    let gone = row_for(&first.rows, &files[2].id).path.clone().unwrap();
    std::fs::remove_file(dir.path().join(&gone)).unwrap();
    let (third, _) = run(config(&sim, dir.path()), sim.token(), &ids_of(&files)).await;
    assert_eq!((third.summary.downloaded, third.summary.skipped), (1, 3));
    assert_eq!(
        row_for(&third.rows, &files[2].id).path.as_deref(),
        Some(gone.as_str())
    );
    assert_all_landed(dir.path(), &third.rows, &files);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_leaves_no_partial_final_file_and_a_rerun_finishes() {
    let files = demo_files(17, 12, Some(3 << 20));
    let total: u64 = files.iter().map(|f| f.size).sum();
    let sim = start(files.clone(), |c| {
        c.shaping.per_connection_bps = Some(4_000_000);
        c.shaping.total_bps = Some(12_000_000);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let watch = async {
        while sim.counters().bytes_served < total / 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        trigger.cancel();
    };
    let input = ids_of(&files);
    let ((result, _), ()) = tokio::join!(
        run_cancellable(
            config(&sim, dir.path()),
            sim.token(),
            &input,
            cancel.clone()
        ),
        watch
    );
    assert!(result.cancelled);
    assert!(result.summary.cancelled > 0, "{:?}", result.summary);
    for r in result.rows.iter().filter(|r| r.status == Status::Cancelled) {
        assert_eq!(r.kind, Some(ErrorKind::Cancelled), "{r:?}");
    }
    // Whatever is under a final name is whole and right.
    for f in &files {
        let row = row_for(&result.rows, &f.id);
        if row.status == Status::Downloaded {
            assert_eq!(
                md5_of_file(&dir.path().join(row.path.as_deref().unwrap())),
                expected_md5(f)
            );
        } else {
            assert_eq!(row.status, Status::Cancelled);
        }
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("sample-")
                || n.ends_with(".json") && !n.starts_with("tdp-download-report")
        })
        .collect();
    assert_eq!(names.len(), result.summary.downloaded, "{names:?}");

    sim.set_shaping(Default::default());
    let (rerun, _) = run(config(&sim, dir.path()), sim.token(), &ids_of(&files)).await;
    assert_eq!(
        rerun.summary.downloaded + rerun.summary.skipped,
        files.len()
    );
    assert_all_landed(dir.path(), &rerun.rows, &files);
    assert_no_partials(dir.path(), &rerun.rows);
    let served = sim.counters().bytes_served;
    assert!(served <= total * 115 / 100, "served {served} for {total}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_pasted_with_a_line_break_is_refused_before_any_request() {
    let files = demo_files(16, 3, Some(100));
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let (tx, _rx) = tdp_engine::EventSender::channel();
    let token = tdp_engine::Token::new(format!("{}\nsecond-line", sim.token()));
    let err = tdp_engine::run(
        config(&sim, dir.path()),
        token,
        &ids_of(&files),
        tx,
        CancellationToken::new(),
    )
    .await
    .expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert_eq!(sim.counters().total("retrieve"), 0);
}

/// The durability protocol (`tdp_engine::store::durable`), checked on the trace that the one module
/// making the sync, rename and journal calls writes as it makes them: each file syncing what
/// it names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_names_and_records_become_durable_in_the_protocols_order() {
    durability_order(false).await;
}

/// The same protocol where files share syncs of the file system (`syncfs`, Linux): each
/// step's sync is one that began after the step's writes.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_shared_syncs_the_protocols_order_holds_for_every_file() {
    durability_order(true).await;
}

async fn durability_order(grouped: bool) {
    use tdp_engine::store::durable::trace;
    trace::start();
    let mut files = demo_files(17, 12, Some(150_000));
    files.push(SimFile::new(sim_id(17, 100), "org/raw/gz.csv", 90_000).kind(FileKind::Gzip));
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim, dir.path());
    // Several ranges per file, several checkpoints per range.
    cfg.split_threshold = 64 << 10;
    cfg.part_size = 48 << 10;
    cfg.checkpoint_bytes = 16 << 10;
    cfg.group_sync = grouped;
    let (result, _) = run(cfg, sim.token(), &ids_of(&files)).await;
    assert_eq!(
        result.summary.downloaded,
        files.len(),
        "{:?}",
        result.summary
    );
    let ops = trace::take(dir.path());
    let state = dir.path().join(".tdp-download");
    let pos = |pred: &dyn Fn(&tdp_engine::store::durable::Op) -> bool| -> Vec<usize> {
        ops.iter()
            .enumerate()
            .filter(|(_, o)| pred(o))
            .map(|(i, _)| i)
            .collect()
    };
    // A sync of the whole file system stands for every sync on it; it is used in one mode
    // only.
    let fs_syncs = pos(&|o| o.what == "sync fs" && o.path == state);
    assert_eq!(
        !fs_syncs.is_empty(),
        grouped,
        "file system syncs: {fs_syncs:?}"
    );
    let or_fs = |mut own: Vec<usize>| {
        own.extend(&fs_syncs);
        own.sort();
        own
    };
    for f in &files {
        let part = state.join(format!("{}.part", f.id));
        let row = row_for(&result.rows, &f.id);
        let target = dir.path().join(row.path.as_deref().unwrap());
        let syncs = or_fs(pos(&|o| o.what == "sync part" && o.path == part));
        let ranges = pos(&|o| o.what == "append range" && o.id == f.id);
        assert!(!ranges.is_empty(), "{}", f.key);
        // Every range record follows the writes of its bytes, and a sync of the .part (or of
        // the file system) after the last of them.
        for (k, &r) in ranges.iter().enumerate() {
            let (s, e) = ops[r].span.expect("a range record has a span");
            let writes: Vec<usize> = pos(&|o| {
                o.what == "write part"
                    && o.path == part
                    && o.span.is_some_and(|(a, b)| a < e && s < b)
            })
            .into_iter()
            .filter(|w| *w < r)
            .collect();
            let written: u64 = writes
                .iter()
                .filter_map(|w| ops[*w].span)
                .map(|(a, b)| b.min(e) - a.max(s))
                .sum();
            assert!(
                written >= e - s,
                "range record {k} of {} ({s}..{e}) before its bytes were written",
                f.key
            );
            let last_write = *writes.last().unwrap();
            assert!(
                syncs.iter().any(|y| *y > last_write && *y < r),
                "range record {k} of {} ({s}..{e}) before its sync",
                f.key
            );
        }
        let last_range = *ranges.last().unwrap();
        let rename = pos(&|o| o.what == "rename" && o.path == target);
        assert_eq!(rename.len(), 1, "{}", f.key);
        let rename = rename[0];
        let journal_synced = or_fs(pos(&|o| o.what == "sync journal"));
        assert!(
            journal_synced
                .iter()
                .any(|j| *j > last_range && *j < rename),
            "the journal is synced between the last record and the move of {}",
            f.key
        );
        if f.kind.is_gzip() {
            let decoded = pos(&|o| o.what == "sync decoded");
            assert!(decoded.iter().any(|d| *d < rename), "{}", f.key);
        }
        let folder = target.parent().unwrap();
        let dir_synced = or_fs(pos(&|o| o.what == "sync dir" && o.path == folder));
        let dir_sync = dir_synced.iter().find(|d| **d > rename).copied();
        let dir_sync = dir_sync.unwrap_or_else(|| panic!("no folder sync after moving {}", f.key));
        let done = pos(&|o| o.what == "append done" && o.id == f.id);
        assert_eq!(done.len(), 1);
        assert!(
            done[0] > dir_sync,
            "done recorded before the folder sync: {}",
            f.key
        );
    }
    // At the end: the journal, then the report.
    let last_done = *pos(&|o| o.what == "append done").last().unwrap();
    let final_sync = *pos(&|o| o.what == "sync journal").last().unwrap();
    let report = *pos(&|o| o.what == "replace" && o.path.ends_with("tdp-download-report.json"))
        .last()
        .unwrap();
    assert!(last_done < final_sync && final_sync < report);
}

/// Files whose names are long, a name limit the test sets, and what lands on disk.
fn long_named_files(seed: u64) -> Vec<SimFile> {
    let mut files = demo_files(seed, 4, Some(3000));
    for (i, f) in files.iter_mut().enumerate() {
        // 200 and 300 bytes: the first fits ext4's 255, the second does not.
        let stem = "n".repeat(if i % 2 == 0 { 200 } else { 300 });
        f.key = format!("demo-org/{}/{stem}-{i}.json", "folder".repeat(30));
        f.content_disposition = None;
    }
    files
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_are_shortened_to_the_file_systems_limit() {
    let files = long_named_files(95);
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    for layout in [Layout::Flat, Layout::Mirror] {
        let dest = dir.path().join(format!("{layout:?}"));
        let mut cfg = config(&sim, &dest);
        cfg.layout = layout;
        cfg.name_max = Some(100); // as a small file system would say
        let (done, _) = run(cfg.clone(), sim.token(), &ids_of(&files)).await;
        assert_eq!(done.summary.downloaded, files.len(), "{layout:?}");
        assert_all_landed(&dest, &done.rows, &files);
        for row in &done.rows {
            let path = row.path.as_deref().unwrap();
            assert!(path.split('/').all(|c| c.len() <= 100), "{path}");
            assert!(path.ends_with(".json"), "{path}");
        }
        let (again, _) = run(cfg, sim.token(), &ids_of(&files)).await;
        assert_eq!(again.summary.skipped, files.len(), "{layout:?} rerun");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_the_file_system_refuses_falls_back_to_the_file_id() {
    let files = long_named_files(96);
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let mut cfg = config(&sim, &dest);
    // Believe names up to 1000 bytes fit: ext4 refuses the 300-byte ones when they are placed.
    cfg.name_max = Some(1000);
    let (done, _) = run(cfg.clone(), sim.token(), &ids_of(&files)).await;
    assert!(done.fatal.is_none(), "{:?}", done.fatal);
    assert_eq!(done.summary.downloaded, files.len());
    assert_all_landed(&dest, &done.rows, &files);
    for (i, f) in files.iter().enumerate() {
        let path = row_for(&done.rows, &f.id).path.clone().unwrap();
        if i % 2 == 1 {
            assert_eq!(path, format!("{}.json", f.id));
        } else {
            assert!(path.len() > 200, "{path}");
        }
    }
    // The journal kept the names the file system took: a rerun skips everything.
    let (again, _) = run(cfg, sim.token(), &ids_of(&files)).await;
    assert_eq!(again.summary.skipped, files.len());
}

fn files_on_disk(dest: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dest)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != ".tdp-download" && !n.starts_with("tdp-download-report"))
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_put_at_our_name_keeps_its_place_and_ours_takes_the_next_name() {
    let files = demo_files(97, 4, Some(4000));
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let cfg = config(&sim, &dest);
    let (first, _) = run(cfg.clone(), sim.token(), &ids_of(&files)).await;
    assert_eq!(first.summary.downloaded, files.len());
    // Someone replaces one of our files by hand with other bytes.
    let theirs = row_for(&first.rows, &files[0].id).path.clone().unwrap();
    std::fs::write(dest.join(&theirs), b"my own notes, not a TDP file").unwrap();
    for round in 0..2 {
        let (again, _) = run(cfg.clone(), sim.token(), &ids_of(&files)).await;
        assert!(again.fatal.is_none(), "{:?}", again.fatal);
        assert_eq!(again.summary.failed, 0, "round {round}");
        assert_all_landed(&dest, &again.rows, &files);
        let ours = row_for(&again.rows, &files[0].id).path.clone().unwrap();
        assert_ne!(ours, theirs);
        assert_eq!(
            std::fs::read(dest.join(&theirs)).unwrap(),
            b"my own notes, not a TDP file"
        );
        assert_eq!(files_on_disk(&dest).len(), files.len() + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_already_at_our_name_with_our_bytes_is_adopted_not_duplicated() {
    // Gzip objects cannot be recognised by length alone: they are fetched again and compared.
    let files: Vec<SimFile> = demo_files(98, 6, Some(4000))
        .into_iter()
        .map(|f| f.kind(FileKind::Gzip))
        .collect();
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let cfg = config(&sim, &dest);
    let (first, _) = run(cfg.clone(), sim.token(), &ids_of(&files)).await;
    assert_eq!(first.summary.downloaded, files.len());
    // The journal loses its "done" records (as a second process's compaction once did).
    let journal = dest.join(".tdp-download/journal.jsonl");
    let kept: String = std::fs::read_to_string(&journal)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("\"t\":\"done\""))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&journal, kept).unwrap();
    let (again, _) = run(cfg.clone(), sim.token(), &ids_of(&files)).await;
    assert!(again.fatal.is_none(), "{:?}", again.fatal);
    assert_eq!(again.summary.failed, 0);
    assert_all_landed(&dest, &again.rows, &files);
    // No duplicates: every file kept its first name.
    assert_eq!(files_on_disk(&dest).len(), files.len());
    for f in &files {
        assert_eq!(
            row_for(&again.rows, &f.id).path,
            row_for(&first.rows, &f.id).path
        );
    }
    let (third, _) = run(cfg, sim.token(), &ids_of(&files)).await;
    assert_eq!(third.summary.skipped, files.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_without_the_state_folder_adopts_what_is_there() {
    // Mixed objects: MD5 ETags, KMS ETags, gzip; same names ("0.json") of other lengths.
    rerun_without_state(demo_files(99, 9, None)).await;
    // Same names and the same length: only the bytes tell them apart.
    rerun_without_state(demo_files(100, 9, Some(4000))).await;
}

async fn rerun_without_state(files: Vec<SimFile>) {
    let files: Vec<SimFile> = files
        .into_iter()
        .enumerate()
        .map(|(i, f)| match i % 3 {
            0 => f.kind(FileKind::Plain),
            1 => f.kind(FileKind::Kms),
            _ => f.kind(FileKind::Gzip),
        })
        .collect();
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().join("out");
    let cfg = config(&sim, &dest);
    let (first, _) = run(cfg.clone(), sim.token(), &ids_of(&files)).await;
    assert_eq!(first.summary.downloaded, files.len());
    let first_served = sim.counters().bytes_served;
    std::fs::remove_dir_all(dest.join(".tdp-download")).unwrap();
    let (again, _) = run(cfg.clone(), sim.token(), &ids_of(&files)).await;
    assert!(again.fatal.is_none(), "{:?}", again.fatal);
    assert_eq!(again.summary.failed, 0);
    // Objects with an MD5 ETag cost one byte each; the others (KMS, gzip) are fetched again
    // and compared.
    let md5_objects: Vec<&SimFile> = files.iter().filter(|f| f.kind == FileKind::Plain).collect();
    let md5_bytes: u64 = md5_objects.iter().map(|f| f.size).sum();
    let others = first_served - md5_bytes;
    let served = sim.counters().bytes_served - first_served;
    eprintln!(
        "rerun without state: {served} bytes fetched; KMS and gzip objects {others} bytes, {} MD5 objects ({md5_bytes} bytes)",
        md5_objects.len()
    );
    assert!(
        served <= others + md5_objects.len() as u64,
        "the rerun fetched {served} bytes; at most {others} + 1 per MD5 object"
    );
    assert_eq!(
        again.summary.skipped,
        md5_objects.iter().filter(|f| f.size > 0).count(),
        "MD5 objects are adopted without download"
    );
    assert_all_landed(&dest, &again.rows, &files);
    assert_eq!(files_on_disk(&dest).len(), files.len(), "no duplicates");
    let (third, _) = run(cfg, sim.token(), &ids_of(&files)).await;
    assert_eq!(third.summary.skipped, files.len());
}
