//! Jobs that die or run out of disk resume where they stopped, fetching little twice and
//! never leaving wrong bytes under a final name.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

mod child;
use tdp_testkit as common;

use child::*;
use common::*;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;
use tdp_sim::{sim_id, SimFile};

fn files(seed: u64, n: u64, size: u64) -> Vec<SimFile> {
    (0..n)
        .map(|i| SimFile::new(sim_id(seed, i), format!("org/raw/big-{i}.bin"), size))
        .collect()
}

fn assert_dest(dest: &Path, files: &[SimFile]) {
    for (i, f) in files.iter().enumerate() {
        assert_eq!(
            md5_of_file(&dest.join(format!("big-{i}.bin"))),
            expected_md5(f),
            "big-{i}.bin"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_job_resumes_without_fetching_much_twice() {
    let files = files(61, 8, 16 << 20);
    let total: u64 = files.iter().map(|f| f.size).sum();
    let sim = start(files.clone(), |c| c.shaping.total_bps = Some(24_000_000)).await;
    let dir = tempfile::tempdir().unwrap();
    let ids = write_ids(dir.path(), &files);
    let dest = dir.path().join("out");
    let cmd = |token: &str| {
        let mut c = cli(Some(token));
        c.args(["--base-url", &sim.base_url(), "--org", sim.org(), "--out"])
            .arg(&dest)
            .arg("--ids")
            .arg(&ids)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let mut first = cmd(sim.token()).spawn().unwrap();
    while sim.counters().bytes_served < total * 3 / 10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(
            first.try_wait().unwrap().is_none(),
            "the first run ended before it was killed"
        );
    }
    first.kill().unwrap(); // SIGKILL: no chance to clean up
    first.wait().unwrap();
    let at_kill = sim.counters().bytes_served;
    // Nothing under a final name is partial.
    for (i, f) in files.iter().enumerate() {
        let p = dest.join(format!("big-{i}.bin"));
        if p.exists() {
            assert_eq!(md5_of_file(&p), expected_md5(f));
        }
    }

    sim.set_shaping(Default::default());
    let mut second = cmd(sim.token());
    let m = tokio::task::spawn_blocking(move || run_measured(&mut second))
        .await
        .unwrap();
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert_dest(&dest, &files);
    let served = sim.counters().bytes_served;
    eprintln!(
        "killed at {:.0}% served; both runs fetched {:.1}% of the data",
        at_kill as f64 * 100.0 / total as f64,
        served as f64 * 100.0 / total as f64
    );
    assert!(
        served <= total * 115 / 100,
        "fetched {served} bytes for {total}"
    );
    assert!(std::fs::read_dir(dest.join(".tdp-download"))
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".part")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_finishes_a_killed_job_from_its_folder_alone() {
    let files = files(62, 6, 4 << 20);
    let total: u64 = files.iter().map(|f| f.size).sum();
    // What a kill loses is what each of the 3 streams received since its last range record
    // (at most 500 ms of its share of the link) plus what arrives while the kill lands: at
    // 4 MB/s that is ~2 MB of 24 MiB, inside the bound below with room for a slow kill
    // (Wine's TerminateProcess on 2 busy cores; at 8 MB/s 20% was seen there once).
    let sim = start(files.clone(), |c| c.shaping.total_bps = Some(4_000_000)).await;
    let dir = tempfile::tempdir().unwrap();
    let ids = write_ids(dir.path(), &files);
    let dest = dir.path().join("out");
    let mut first = cli(Some(sim.token()))
        .args(["--base-url", &sim.base_url(), "--org", sim.org(), "--out"])
        .arg(&dest)
        .arg("--ids")
        .arg(&ids)
        .args(["--layout", "mirror", "--concurrency", "3"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while sim.counters().bytes_served < total * 3 / 10 {
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(first.try_wait().unwrap().is_none(), "ended before the kill");
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let at_kill = sim.counters().bytes_served;
    // The ID list is gone: the folder alone must do.
    std::fs::remove_file(&ids).unwrap();

    let resume = |extra: &[&str]| {
        let mut c = cli(Some(sim.token()));
        c.arg("--resume").arg(&dest).args(extra);
        tokio::task::spawn_blocking(move || run_measured(&mut c))
    };
    let refused = resume(&["--out", "elsewhere"]).await.unwrap();
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("cannot be used with"),
        "{}",
        refused.stderr
    );
    let nothing = {
        let mut c = cli(Some(sim.token()));
        c.arg("--resume").arg(dir.path());
        tokio::task::spawn_blocking(move || run_measured(&mut c))
            .await
            .unwrap()
    };
    assert_eq!(nothing.code, 2, "{}", nothing.stderr);
    assert!(
        nothing.stderr.contains("has no download to resume"),
        "{}",
        nothing.stderr
    );

    sim.set_shaping(Default::default());
    // A tuning flag given with --resume overrides the recorded one; the rest is as recorded.
    let done = resume(&["--retries", "7"]).await.unwrap();
    assert_eq!(done.code, 0, "{}", done.stderr);
    let rows = tdp_engine::job::report::read(&dest.join("tdp-download-report.json")).unwrap();
    assert_all_landed(&dest, &rows, &files);
    assert!(
        rows.iter()
            .all(|r| r.path.as_deref().is_some_and(|p| p.contains('/'))),
        "the mirror layout was kept"
    );
    let m = tdp_engine::job::manifest::Manifest::read(&dest).unwrap();
    assert_eq!((m.options.retries, m.options.concurrency), (7, 3));
    let served = sim.counters().bytes_served;
    eprintln!(
        "killed at {:.0}% served; both runs fetched {:.1}% of the data",
        at_kill as f64 * 100.0 / total as f64,
        served as f64 * 100.0 / total as f64
    );
    assert!(
        served <= total * 115 / 100,
        "fetched {served} bytes for {total}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_expires_mid_job_stops_it_and_a_fresh_one_resumes_it() {
    let files = files(63, 8, 2 << 20);
    let total: u64 = files.iter().map(|f| f.size).sum();
    let sim = start(files.clone(), |c| c.shaping.total_bps = Some(4_000_000)).await;
    let dir = tempfile::tempdir().unwrap();
    let ids = write_ids(dir.path(), &files);
    let dest = dir.path().join("out");
    let job = |token: &str| {
        let mut c = cli(Some(token));
        c.args(["--base-url", &sim.base_url(), "--org", sim.org(), "--out"])
            .arg(&dest)
            .arg("--ids")
            .arg(&ids)
            .args(["--concurrency", "1", "--api-concurrency", "1"]);
        tokio::task::spawn_blocking(move || run_measured(&mut c))
    };
    // A JWT good for 2 s; the job needs about 4 s, and asks for each file's link as it goes.
    let short = sim.jwt_token(Duration::from_secs(2));
    let first = job(&short).await.unwrap();
    assert_eq!(first.code, 2, "{}", first.stderr);
    assert!(
        first.stderr.contains("warning: the auth token expires in"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("rejected the auth token")
            && first.stderr.contains("resumes where it stopped"),
        "{}",
        first.stderr
    );
    let rows = tdp_engine::job::report::read(&dest.join("tdp-download-report.json")).unwrap();
    let done_first = rows
        .iter()
        .filter(|r| r.status == tdp_engine::job::report::Status::Downloaded)
        .count();
    assert!(
        done_first > 0,
        "some files arrived before the token ran out"
    );

    sim.set_shaping(Default::default());
    let fresh = sim.jwt_token(Duration::from_secs(3600));
    let second = job(&fresh).await.unwrap();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        !second.stderr.contains("warning: the auth token"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&format!("{done_first} skipped")),
        "{}",
        second.stderr
    );
    assert_dest(&dest, &files);
    let served = sim.counters().bytes_served;
    eprintln!(
        "token expired after {done_first} of {} files; both runs fetched {:.1}% of the data",
        files.len(),
        served as f64 * 100.0 / total as f64
    );
    assert!(
        served <= total * 115 / 100,
        "fetched {served} bytes for {total}"
    );
}

fn mount_tmpfs(dir: &Path, size: &str) -> bool {
    std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tdp-test"])
        .arg(dir)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

struct Unmount<'a>(&'a Path);

impl Drop for Unmount<'_> {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(self.0).status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_job_clearly_and_it_resumes_after_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small-disk");
    std::fs::create_dir(&mnt).unwrap();
    // A small disk of its own is the only honest full disk; mounting one needs root, which the
    // test command has (CI runs as root).
    assert!(
        mount_tmpfs(&mnt, "10m"),
        "cannot mount a 10 MiB tmpfs for the disk-full test: run the tests as root"
    );
    let _unmount = Unmount(&mnt);
    let files = files(62, 6, 3 << 20);
    let sim = start(files.clone(), |_| {}).await;
    let ids = write_ids(dir.path(), &files);
    let dest = mnt.join("out");
    let report = dir.path().join("report.json");
    let cmd = || {
        let mut c = cli(Some(sim.token()));
        c.args([
            "--base-url",
            &sim.base_url(),
            "--org",
            sim.org(),
            "--concurrency",
            "2",
            "--out",
        ])
        .arg(&dest)
        .arg("--ids")
        .arg(&ids)
        .arg("--report")
        .arg(&report);
        c
    };
    let mut first = cmd();
    let m = tokio::task::spawn_blocking(move || run_measured(&mut first))
        .await
        .unwrap();
    assert_eq!(m.code, 2, "{}", m.stderr);
    assert!(m.stderr.contains("run the same job again"), "{}", m.stderr);
    let rows = tdp_engine::job::report::read(&report).unwrap();
    assert_kinds(&rows);
    let unfinished: Vec<_> = rows
        .iter()
        .filter(|r| r.status == tdp_engine::job::report::Status::Cancelled)
        .collect();
    assert!(!unfinished.is_empty());
    assert!(
        unfinished
            .iter()
            .all(|r| r.kind == Some(tdp_engine::ErrorKind::DiskFull)),
        "{unfinished:?}"
    );
    // What completed is kept and right; the rest waits as .part files.
    let mut complete = 0;
    for (i, f) in files.iter().enumerate() {
        let p = dest.join(format!("big-{i}.bin"));
        if p.exists() {
            assert_eq!(md5_of_file(&p), expected_md5(f));
            complete += 1;
        }
    }
    assert!(complete < files.len());
    let parts = std::fs::read_dir(dest.join(".tdp-download"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".part")
        })
        .count();
    assert!(parts > 0, "partial files are kept for the resume");

    let ok = std::process::Command::new("mount")
        .args(["-o", "remount,size=64m"])
        .arg(&mnt)
        .status()
        .unwrap();
    assert!(ok.success());
    let mut second = cmd();
    let m = tokio::task::spawn_blocking(move || run_measured(&mut second))
        .await
        .unwrap();
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(
        m.stderr.contains(&format!("{complete} skipped")),
        "{}",
        m.stderr
    );
    assert_dest(&dest, &files);
}

/// Thousands of small files whose durability steps share file-system syncs: killed (SIGKILL)
/// mid-job, nothing partial is under a final name, and the rerun verifies every file while
/// fetching again only what was not yet in place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_job_of_small_files_resumes_and_every_file_verifies() {
    const N: u64 = 4000;
    let files: Vec<SimFile> = (0..N)
        .map(|i| SimFile::new(sim_id(64, i), format!("org/raw/s-{i}.bin"), 1024 + i % 7))
        .collect();
    let sim = start(files.clone(), |c| {
        c.shaping.api_latency = Duration::from_millis(5);
        c.shaping.s3_first_byte = Duration::from_millis(1);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ids = write_ids(dir.path(), &files);
    let dest = dir.path().join("out");
    let cmd = || {
        let mut c = cli(Some(sim.token()));
        c.args(["--base-url", &sim.base_url(), "--org", sim.org(), "--out"])
            .arg(&dest)
            .arg("--ids")
            .arg(&ids)
            .args(["--concurrency", "64", "--allow-sleep"]);
        c
    };
    let mut first = cmd()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while sim.counters().total("s3") < N * 2 / 5 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(first.try_wait().unwrap().is_none(), "ended before the kill");
    }
    first.kill().unwrap(); // SIGKILL: no chance to clean up
    first.wait().unwrap();
    let fetched_first = sim.counters().total("s3");
    let mut in_place = 0;
    for (i, f) in files.iter().enumerate() {
        let p = dest.join(format!("s-{i}.bin"));
        if p.exists() {
            assert_eq!(
                md5_of_file(&p),
                expected_md5(f),
                "partial bytes in s-{i}.bin"
            );
            in_place += 1;
        }
    }
    assert!(in_place > 0, "nothing was in place at the kill");

    let mut second = cmd();
    let m = tokio::task::spawn_blocking(move || run_measured(&mut second))
        .await
        .unwrap();
    assert_eq!(m.code, 0, "{}", m.stderr);
    for (i, f) in files.iter().enumerate() {
        let p = dest.join(format!("s-{i}.bin"));
        assert_eq!(md5_of_file(&p), expected_md5(f), "s-{i}.bin");
    }
    let fetched_again = sim.counters().total("s3") - fetched_first;
    eprintln!(
        "killed with {in_place} of {N} files in place ({fetched_first} fetched); \
         the rerun fetched {fetched_again}"
    );
    assert!(
        fetched_again <= N - in_place,
        "the rerun fetched {fetched_again}, with {in_place} of {N} in place"
    );
    assert!(std::fs::read_dir(dest.join(".tdp-download"))
        .unwrap()
        .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".part")));
}
