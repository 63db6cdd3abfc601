//! The network goes away mid-job (Wi-Fi roaming, a VPN reconnect, a short sleep): the job
//! waits for it instead of failing its files, and goes on by itself.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

use tdp_testkit as common;

use common::*;
use std::sync::Arc;
use std::time::Duration;
use tdp_engine::job::events::JobState;
use tdp_engine::{ErrorKind, JobConfig};
use tdp_sim::{sim_id, Outage, SimFile, Simulator};

fn files(seed: u64) -> Vec<SimFile> {
    (0..10)
        .map(|i| SimFile::new(sim_id(seed, i), format!("org/raw/n{i}.bin"), 3_000_000))
        .collect()
}

/// A simulator slow enough that an outage lands mid-job.
async fn shaped(files: &[SimFile]) -> Arc<Simulator> {
    Arc::new(
        start(files.to_vec(), |c| {
            c.shaping.per_connection_bps = Some(2_000_000)
        })
        .await,
    )
}

/// A config whose own retry budget an outage would use up many times over.
fn impatient(sim: &Simulator, dest: &std::path::Path) -> JobConfig {
    let mut cfg = config(sim, dest);
    cfg.retry.budget = 2;
    cfg.read_timeout = Duration::from_secs(1);
    cfg
}

async fn outage_after(sim: &Arc<Simulator>, delay: Duration, kind: Outage, length: Duration) {
    let sim = sim.clone();
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        sim.outage(kind, length);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_mid_job_is_waited_out_and_no_file_fails() {
    // Both kinds: connections cut, and traffic silently dropped (at least 3x the 1 s stall
    // timeout).
    for (seed, kind) in [(61, Outage::Reset), (62, Outage::Silent)] {
        let files = files(seed);
        let sim = shaped(&files).await;
        let dir = tempfile::tempdir().unwrap();
        outage_after(
            &sim,
            Duration::from_millis(500),
            kind,
            Duration::from_secs(4),
        )
        .await;
        let (result, events) = run(impatient(&sim, dir.path()), sim.token(), &ids_of(&files)).await;
        assert!(result.fatal.is_none(), "{kind:?}: {:?}", result.fatal);
        assert_eq!(
            result.summary.downloaded,
            files.len(),
            "{kind:?}: {:?}",
            result.summary
        );
        assert_all_landed(dir.path(), &result.rows, &files);
        assert_no_partials(dir.path(), &result.rows);
        assert_eq!(
            job_states(&events),
            vec![JobState::WaitingForNetwork, JobState::Running],
            "{kind:?}: the wait and the return are announced"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_longer_than_the_patience_stops_the_job_and_a_rerun_completes() {
    let files = files(63);
    let sim = shaped(&files).await;
    let dir = tempfile::tempdir().unwrap();
    outage_after(
        &sim,
        Duration::from_millis(300),
        Outage::Reset,
        Duration::from_secs(5),
    )
    .await;
    let mut cfg = impatient(&sim, dir.path());
    cfg.network_patience = Duration::from_secs(2);
    let (result, _) = run(cfg, sim.token(), &ids_of(&files)).await;
    let fatal = result.fatal.clone().expect("the job stops");
    assert_eq!(fatal.kind(), ErrorKind::Network, "{fatal}");
    assert_eq!(
        result.summary.failed, 0,
        "no file is blamed for the network"
    );

    tokio::time::sleep(Duration::from_secs(4)).await;
    let (result, _) = run(impatient(&sim, dir.path()), sim.token(), &ids_of(&files)).await;
    assert!(result.fatal.is_none(), "{:?}", result.fatal);
    assert_all_landed(dir.path(), &result.rows, &files);
}
