//! What a caller does to a running job: pause, resume, a speed limit changed on the way.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

use tdp_testkit as common;

use common::*;
use std::time::Duration;
use tdp_engine::{EventSender, JobControl, Token};
use tdp_sim::{sim_id, SimFile};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pausing_again_and_again_under_a_speed_limit_loses_no_file() {
    let files: Vec<SimFile> = (0..20)
        .map(|i| SimFile::new(sim_id(93, i), format!("org/raw/c{i:02}.bin"), 200_000))
        .collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(&sim, dir.path());
    cfg.concurrency = 4;
    cfg.limit_rate = Some(2_000_000);
    let control = JobControl::default();
    let (tx, mut rx) = EventSender::channel();
    let drain = tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let job = {
        let (control, token, input) = (control.clone(), sim.token().to_string(), ids_of(&files));
        tokio::spawn(async move {
            tdp_engine::run_controlled(cfg, Token::new(token), &input, tx, control)
                .await
                .unwrap()
        })
    };
    // Pauses land anywhere: mid-body, between chunks, while a chunk's limit is paid, just as
    // a body ends. Halfway, the limit is lifted.
    for i in 0..16 {
        tokio::time::sleep(Duration::from_millis(90)).await;
        control.pause();
        tokio::time::sleep(Duration::from_millis(40)).await;
        control.resume();
        if i == 8 {
            control.set_rate_limit(None);
        }
    }
    let result = job.await.unwrap();
    drain.await.unwrap();
    assert!(result.fatal.is_none(), "{:?}", result.fatal);
    assert_eq!(result.summary.failed, 0, "{:?}", result.problems);
    assert_eq!(result.summary.downloaded, files.len());
    let rows = tdp_engine::job::report::read(&result.report_path).unwrap();
    assert_all_landed(dir.path(), &rows, &files);
    let c = sim.counters();
    assert_eq!(c.count("s3 416"), 0, "no range past the end was asked for");
    // Each pause drops its connections: what storage had sent but the job had not read yet
    // is sent again (16 pauses here, 4 connections); what was written is never asked again.
    eprintln!(
        "16 pauses: storage sent {:.2}x the data",
        c.bytes_served as f64 / total as f64
    );
}
