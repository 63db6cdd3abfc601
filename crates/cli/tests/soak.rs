//! The field case behind the network issue, end to end through the CLI: the network drops
//! for 45 s, 4 s into a 60-file job of 1-40 MiB. Ignored by plain `cargo test` (it takes a
//! minute); the README's test command runs it with `--include-ignored`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

mod child;
use tdp_testkit as common;

use child::*;
use common::*;
use std::sync::Arc;
use std::time::Duration;
use tdp_sim::{sim_id, Outage, SimFile};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a one-minute soak: scripts/test.sh runs it"]
async fn soak_a_45_s_outage_4_s_into_a_60_file_job_ends_with_every_file_verified() {
    const MIB: u64 = 1 << 20;
    let files: Vec<SimFile> = (0..60u64)
        .map(|i| {
            SimFile::new(
                sim_id(71, i),
                format!("org/raw/s{i:02}.bin"),
                MIB * (1 + i * 39 / 59),
            )
        })
        .collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    // Slow enough that the outage lands mid-job.
    let sim = Arc::new(start(files.clone(), |c| c.shaping.total_bps = Some(150_000_000)).await);
    let dir = tempfile::tempdir().unwrap();
    let ids = write_ids(dir.path(), &files);
    let out = dir.path().join("out");
    let mut cmd = cli(Some(sim.token()));
    cmd.args([
        "--base-url",
        &sim.base_url(),
        "--org",
        sim.org(),
        "--quiet",
        "--out",
    ])
    .arg(&out)
    .arg("--ids")
    .arg(&ids);
    let outage = {
        let sim = sim.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            sim.outage(Outage::Reset, Duration::from_secs(45));
        })
    };
    let m = tokio::task::spawn_blocking(move || run_measured(&mut cmd))
        .await
        .unwrap();
    outage.await.unwrap();
    println!(
        "{} files, {} MiB: exit {}; {}",
        files.len(),
        total / MIB,
        m.code,
        m.stderr
            .lines()
            .filter(|l| l.contains("network"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(m.stderr.contains("waiting for the network"), "{}", m.stderr);
    assert!(m.stderr.contains("the network is back"), "{}", m.stderr);
    let rows = tdp_engine::job::report::read(&out.join("tdp-download-report.json")).unwrap();
    assert_all_landed(&out, &rows, &files);
    assert_no_partials(&out, &rows);
}
