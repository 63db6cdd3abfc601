//! `tdp-download --search/--eql` as people run it: the preview of a million hits in bounded
//! memory, the free-space check on a small disk, a typo in a search named.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

mod child;
use tdp_testkit as common;

use child::*;
use common::*;
use tdp_sim::{sim_id, SimFile};

fn search_cmd(sim: &tdp_sim::Simulator, out: &std::path::Path) -> std::process::Command {
    let mut cmd = cli(Some(sim.token()));
    cmd.args(["--base-url", &sim.base_url(), "--org", sim.org(), "--out"])
        .arg(out);
    cmd
}

/// The preview pages through 1,000,000 hits (past Elasticsearch's 10,000 many times over),
/// fetches no body, and the CLI's peak RSS stays under 100 MiB. The simulator runs in a
/// process of its own (`tdp-download sim`): a child spawned from this test's process would
/// inherit the simulator's memory in its peak RSS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_over_a_million_hits_fetches_nothing_in_bounded_memory() {
    const N: u64 = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let (mut sim, [base, org, token]) =
        start_sim_process(dir.path(), &["--files", &N.to_string(), "--size", "1000"]);
    let mut cmd = cli(Some(&token));
    cmd.args(["--base-url", &base, "--org", &org, "--out"])
        .arg(dir.path().join("out"))
        .args(["--search", "sourceType=sim-instrument", "--dry-run"]);
    let m = tokio::task::spawn_blocking(move || run_measured(&mut cmd))
        .await
        .unwrap();
    let c: tdp_sim::CountersSnapshot = reqwest::get(format!("{base}/_sim/counters"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let _ = sim.kill();
    let _ = sim.wait();
    assert_eq!(m.code, 0, "{}", m.stderr);
    let line = m.stdout.trim();
    assert_eq!(line, "1,000,000 files, 953.7 MiB, 0 already in this folder");
    assert_eq!(
        c.total("retrieve") + c.total("s3"),
        0,
        "nothing resolved, no body fetched"
    );
    let pages = c.count("search 200");
    let mib = m.max_rss_kib / 1024;
    eprintln!("dry run over {N} hits: {pages} pages, peak RSS {mib} MiB");
    assert!(pages >= 1_000, "{pages} pages");
    assert!(mib <= 100, "peak RSS {mib} MiB");
    assert!(!dir.path().join("out").exists(), "a dry run writes nothing");
}

/// On a 2 MiB tmpfs (mounted in a private mount namespace), 6 MiB of hits stop the job with
/// exit 2 and the missing amount, before any body is fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_that_does_not_fit_on_a_small_disk_stops_with_the_missing_amount() {
    let files: Vec<SimFile> = (0..6u64)
        .map(|i| SimFile::new(sim_id(62, i), format!("org/src/RAW/f{i}.bin"), 1 << 20))
        .collect();
    let sim = start(files, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("small-disk");
    std::fs::create_dir(&out).unwrap();
    // `unshare` gives this command a mount namespace of its own: the tmpfs is seen by it
    // alone and goes away with it. CI runs as root; this test fails, never skips, without it.
    let mut cmd = std::process::Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs -o size=2m tmpfs \"$0\" && exec \"$@\"")
        .arg(&out)
        .arg(env!("CARGO_BIN_EXE_tdp-download"))
        .args(["--base-url", &sim.base_url(), "--org", sim.org(), "--out"])
        .arg(&out)
        .args(["--search", "category=RAW", "--allow-sleep"])
        .env("TDP_TOKEN", sim.token());
    let m = tokio::task::spawn_blocking(move || run_measured(&mut cmd))
        .await
        .unwrap();
    assert_eq!(m.code, 2, "{}", m.stderr);
    assert!(
        m.stderr.contains("need 6.0 MiB more") && m.stderr.contains("free"),
        "{}",
        m.stderr
    );
    assert!(m.stderr.contains("--no-space-check"), "{}", m.stderr);
    assert_eq!(sim.counters().total("s3"), 0, "no body fetched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_typo_in_a_search_is_an_error_naming_it_and_nothing_is_sent() {
    let sim = start(
        vec![SimFile::new(sim_id(63, 0), "org/src/RAW/a.bin", 10)],
        |_| {},
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = search_cmd(&sim, dir.path());
    cmd.args(["--search", "category=RAW&sourcetype=hplc"]);
    let m = tokio::task::spawn_blocking(move || run_measured(&mut cmd))
        .await
        .unwrap();
    assert_eq!(m.code, 2, "{}", m.stderr);
    assert!(
        m.stderr.contains(
            "\"sourcetype\" is not a fileinfo search parameter (did you mean sourceType?)"
        ),
        "{}",
        m.stderr
    );
    assert_eq!(sim.counters().total("search"), 0);
}

/// A search downloads, and `--resume` of its folder runs the same search again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_job_downloads_and_resumes_from_its_folder() {
    let files: Vec<SimFile> = (0..40u64)
        .map(|i| {
            let f = SimFile::new(sim_id(64, i), format!("org/src/RAW/r{}/f.bin", i), 5000 + i);
            if i % 2 == 0 {
                f.tags(&["want"])
            } else {
                f
            }
        })
        .collect();
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut cmd = search_cmd(&sim, &out);
    cmd.args([
        "--search",
        "tags=want",
        "--layout",
        "mirror",
        "--allow-sleep",
    ]);
    let m = tokio::task::spawn_blocking(move || run_measured(&mut cmd))
        .await
        .unwrap();
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(m.stderr.contains("search: 20 files found"), "{}", m.stderr);
    let rows = tdp_engine::job::report::read(&out.join("tdp-download-report.json")).unwrap();
    let wanted: Vec<SimFile> = files.iter().step_by(2).cloned().collect();
    assert_all_landed(&out, &rows, &wanted);
    assert!(
        out.join("org/src/RAW/r0/f.bin").is_file(),
        "mirror layout by the key"
    );
    let mut again = cli(Some(sim.token()));
    again.arg("--resume").arg(&out).arg("--allow-sleep");
    let m = tokio::task::spawn_blocking(move || run_measured(&mut again))
        .await
        .unwrap();
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(
        m.stderr.contains("0 downloaded, 20 skipped"),
        "{}",
        m.stderr
    );
}

/// 4 shards side by side, given their index as Kubernetes and as Slurm give it (by
/// scripts/shards-locally.sh), cover every hit exactly once into one shared destination.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_shards_side_by_side_cover_every_hit_once() {
    let files: Vec<SimFile> = (0..240u64)
        .map(|i| {
            SimFile::new(
                sim_id(65, i),
                format!("org/src/RAW/sh{}/f{i}.bin", i % 5),
                3_000 + i,
            )
            .tags(&["split"])
        })
        .collect();
    let sim = start(files.clone(), |c| c.result_window = 100).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../scripts/shards-locally.sh"
    );
    for style in ["k8s", "slurm"] {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("shared");
        let mut cmd = std::process::Command::new("bash");
        cmd.arg(script)
            .args(["4", style, env!("CARGO_BIN_EXE_tdp-download")])
            .args(["--base-url", &sim.base_url(), "--org", sim.org(), "--out"])
            .arg(&out)
            .args(["--search", "tags=split", "--shard", "auto", "--allow-sleep"])
            .env("TDP_TOKEN", sim.token());
        let m = tokio::task::spawn_blocking(move || run_measured(&mut cmd))
            .await
            .unwrap();
        assert_eq!(m.code, 0, "{style}: {}", m.stderr);
        let mut seen = std::collections::HashMap::new();
        let mut rows = Vec::new();
        for i in 0..4 {
            let report = out.join(format!("tdp-download-report.shard-{i}-of-4.json"));
            let shard_rows = tdp_engine::job::report::read(&report).unwrap();
            assert!(
                out.join(format!(".tdp-download/shard-{i}-of-4/journal.jsonl"))
                    .is_file(),
                "each shard keeps its own state folder"
            );
            assert!(
                shard_rows.len() > 30,
                "{style}: shard {i} took {}",
                shard_rows.len()
            );
            for r in &shard_rows {
                *seen.entry(r.file_id.clone().unwrap()).or_insert(0) += 1;
            }
            rows.extend(shard_rows);
        }
        assert_eq!(seen.len(), 240, "{style}: every hit");
        assert!(seen.values().all(|n| *n == 1), "{style}: no hit twice");
        assert_all_landed(&out, &rows, &files);
    }
    assert_eq!(
        sim.counters().total("retrieve"),
        480,
        "each file resolved once per style"
    );
}
