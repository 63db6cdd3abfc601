//! `tdp-download` as scripts and people use it: flags, exit codes, the simulator subcommand,
//! and bounded memory measured from outside the process.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure

mod child;
use tdp_testkit as common;

use child::*;
use common::*;
use std::process::Stdio;
use tdp_sim::{demo_files, sim_id, FileKind, SimFile};

async fn measured(mut cmd: std::process::Command) -> Measured {
    tokio::task::spawn_blocking(move || run_measured(&mut cmd))
        .await
        .unwrap()
}

fn download_cmd(
    token: Option<&str>,
    base: &str,
    org: &str,
    out: &std::path::Path,
) -> std::process::Command {
    let mut cmd = cli(token);
    cmd.args(["--base-url", base, "--org", org, "--out"])
        .arg(out);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_are_the_documented_ones() {
    let files = demo_files(31, 6, Some(2000));
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let ids = write_ids(dir.path(), &files);

    // 0: every valid ID in place.
    let mut cmd = download_cmd(
        Some(sim.token()),
        &sim.base_url(),
        sim.org(),
        &dir.path().join("a"),
    );
    cmd.arg("--ids").arg(&ids);
    let m = measured(cmd).await;
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(m.stderr.contains("6 downloaded"), "{}", m.stderr);

    // 1: an unknown ID and an invalid line, each listed with its reason.
    let mut cmd = download_cmd(
        Some(sim.token()),
        &sim.base_url(),
        sim.org(),
        &dir.path().join("b"),
    );
    cmd.args([files[0].id.as_str(), sim_id(32, 0).as_str(), "hello"]);
    let m = measured(cmd).await;
    assert_eq!(m.code, 1, "{}", m.stderr);
    assert!(m.stderr.contains("[not-found]"), "{}", m.stderr);
    assert!(m.stderr.contains("line 3: invalid hello"), "{}", m.stderr);
    assert!(m.stderr.contains("[input]"), "{}", m.stderr);

    // 2: a wrong token, one clear message, nothing downloaded.
    let mut cmd = download_cmd(
        Some("wrong"),
        &sim.base_url(),
        sim.org(),
        &dir.path().join("c"),
    );
    cmd.arg("--ids").arg(&ids);
    let m = measured(cmd).await;
    assert_eq!(m.code, 2, "{}", m.stderr);
    assert_eq!(
        m.stderr.matches("rejected the auth token").count(),
        1,
        "{}",
        m.stderr
    );

    // 2: usage and configuration errors.
    let m = measured({
        let mut c = cli(Some("t"));
        c.args([
            "--base-url",
            "https://api.example.com",
            "--org",
            "o",
            files[0].id.as_str(),
        ]);
        c
    })
    .await;
    assert_eq!(m.code, 2);
    assert!(m.stderr.contains("--out"), "{}", m.stderr);
    let mut cmd = download_cmd(
        Some("t"),
        "http://api.example.com",
        "o",
        &dir.path().join("d"),
    );
    cmd.arg(&files[0].id);
    let m = measured(cmd).await;
    assert_eq!(m.code, 2);
    assert!(m.stderr.contains("plain http"), "{}", m.stderr);

    // 2: no token anywhere (and no keychain reachable) says where to put one.
    let mut cmd = download_cmd(None, &sim.base_url(), sim.org(), &dir.path().join("e"));
    cmd.arg(&files[0].id)
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
        .env_remove("DISPLAY");
    let m = measured(cmd).await;
    assert_eq!(m.code, 2, "{}", m.stderr);
    assert!(m.stderr.contains("TDP_TOKEN"), "{}", m.stderr);

    // The token never shows in what the CLI prints or writes.
    for sub in ["a", "b"] {
        let report =
            std::fs::read_to_string(dir.path().join(sub).join("tdp-download-report.json")).unwrap();
        assert!(!report.contains(sim.token()));
    }
}

/// The README's walk-through: start `tdp-download sim`, then download with what it prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sim_subcommand_serves_what_it_prints() {
    let dir = tempfile::tempdir().unwrap();
    let (mut sim, [base, org, token]) = start_sim_process(dir.path(), &["--files", "30"]);
    let mut cmd = download_cmd(Some(&token), &base, &org, &dir.path().join("out"));
    cmd.current_dir(dir.path())
        .args(["--ids", "sim-file-ids.txt"]);
    let m = measured(cmd).await;
    let _ = sim.kill();
    let _ = sim.wait();
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(m.stderr.contains("30 downloaded"), "{}", m.stderr);
    let files = demo_files(7, 30, None);
    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("out/tdp-download-report.json")).unwrap(),
    )
    .unwrap();
    for (f, row) in files.iter().zip(report["files"].as_array().unwrap()) {
        let path = dir.path().join("out").join(row["path"].as_str().unwrap());
        assert_eq!(md5_of_file(&path), expected_md5(f));
    }
}

/// Peak RSS of the CLI stays under 100 MiB while it downloads a 1 GiB file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_for_a_one_gib_file() {
    let big = SimFile::new(sim_id(33, 0), "org/src/RAW/big.raw", 1 << 30).kind(FileKind::Kms);
    let sim = start(vec![big.clone()], |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = download_cmd(Some(sim.token()), &sim.base_url(), sim.org(), dir.path());
    cmd.arg(&big.id);
    let m = measured(cmd).await;
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert_eq!(
        std::fs::metadata(dir.path().join("big.raw")).unwrap().len(),
        1 << 30
    );
    let mib = m.max_rss_kib / 1024;
    eprintln!("peak RSS of tdp-download for 1 GiB: {mib} MiB");
    assert!(mib < 100, "peak RSS {mib} MiB");
}

/// ID lists as Notepad and Excel save them: every file arrives, exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_lists_saved_by_notepad_and_excel_download_every_file() {
    let files = demo_files(34, 4, Some(1500));
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<&str> = files.iter().map(|f| f.id.as_str()).collect();
    let crlf = |lines: Vec<String>| lines.join("\r\n") + "\r\n";
    let utf16le = |text: String| {
        let mut b = vec![0xFF, 0xFE];
        b.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
        b
    };
    let forms: Vec<(&str, Vec<u8>)> = vec![
        (
            "notepad-utf8-bom.txt",
            [
                b"\xEF\xBB\xBF".to_vec(),
                crlf(ids.iter().map(|s| s.to_string()).collect()).into_bytes(),
            ]
            .concat(),
        ),
        (
            "notepad-utf8.txt",
            crlf(ids.iter().map(|s| s.to_string()).collect()).into_bytes(),
        ),
        (
            "excel-csv-utf8.csv",
            [
                b"\xEF\xBB\xBF".to_vec(),
                crlf(
                    std::iter::once("fileId,name,comment".to_string())
                        .chain(ids.iter().map(|id| format!("\"{id}\",\"a, b\",\"=1+2\"")))
                        .collect(),
                )
                .into_bytes(),
            ]
            .concat(),
        ),
        (
            "excel-unicode-text.txt",
            utf16le(crlf(
                std::iter::once("fileId\tname".to_string())
                    .chain(ids.iter().map(|id| format!("{id}\tx y")))
                    .collect(),
            )),
        ),
    ];
    for (name, bytes) in forms {
        let list = dir.path().join(name);
        std::fs::write(&list, bytes).unwrap();
        let out = dir.path().join(format!("out-{name}"));
        let mut cmd = download_cmd(Some(sim.token()), &sim.base_url(), sim.org(), &out);
        cmd.arg("--ids").arg(&list);
        let m = measured(cmd).await;
        assert_eq!(m.code, 0, "{name}: {}", m.stderr);
        assert!(m.stderr.contains("4 downloaded"), "{name}: {}", m.stderr);
        let rows = tdp_engine::job::report::read(&out.join("tdp-download-report.json")).unwrap();
        assert_all_landed(&out, &rows, &files);
    }
    // Another encoding is refused, naming the file.
    let latin1 = dir.path().join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9\n").unwrap();
    let mut cmd = download_cmd(
        Some(sim.token()),
        &sim.base_url(),
        sim.org(),
        &dir.path().join("x"),
    );
    cmd.arg("--ids").arg(&latin1);
    let m = measured(cmd).await;
    assert_eq!(m.code, 2, "{}", m.stderr);
    assert!(
        m.stderr.contains("latin1.txt is neither UTF-8 nor UTF-16"),
        "{}",
        m.stderr
    );
}

/// A 64 MiB file of lines that are not IDs: one report row per line, memory bounded by the
/// file's own size, measured from outside the process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_64_mib_file_of_non_ids_is_reported_line_by_line_in_bounded_memory() {
    use std::io::{BufRead, Write};
    let sim = start(Vec::new(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("not-ids.txt");
    let mut lines = 0u64;
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&list).unwrap());
        let mut written = 0u64;
        while written < 64 << 20 {
            // About 36 bytes, valid UTF-8, never an ID, one entry per line.
            let line = format!("sample-{lines:09}-plate-A1-well-ok\n");
            w.write_all(line.as_bytes()).unwrap();
            written += line.len() as u64;
            lines += 1;
        }
    }
    let out = dir.path().join("out");
    let mut cmd = download_cmd(Some(sim.token()), &sim.base_url(), sim.org(), &out);
    cmd.arg("--ids").arg(&list).arg("--quiet");
    let m = measured(cmd).await;
    let tail: Vec<&str> = m.stderr.lines().rev().take(5).collect();
    assert_eq!(m.code, 1, "{tail:?}");
    let json = out.join("tdp-download-report.json");
    let csv = out.join("tdp-download-report.csv");
    let rows = std::io::BufReader::new(std::fs::File::open(&csv).unwrap())
        .lines()
        .count() as u64
        - 1;
    let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().len() as f64 / (1 << 20) as f64;
    println!(
        "{lines} lines of non-IDs: peak RSS {:.1} MiB; report {:.0} MiB JSON + {:.0} MiB CSV, {rows} rows",
        m.max_rss_kib as f64 / 1024.0,
        size(&json),
        size(&csv)
    );
    assert_eq!(rows, lines, "one report row per input line");
    std::fs::remove_file(&json).unwrap();
    std::fs::remove_file(&csv).unwrap();
    assert!(
        m.max_rss_kib < 100 * 1024,
        "peak RSS {} KiB for a 64 MiB file",
        m.max_rss_kib
    );
}

/// A token pasted with a line break is refused before any request, with words that say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_with_a_line_break_is_refused_with_a_clear_message() {
    let files = demo_files(35, 2, Some(100));
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let token = format!("{}\r\n", sim.token()).replace("\r\n", "\nmore");
    let mut cmd = download_cmd(Some(&token), &sim.base_url(), sim.org(), dir.path());
    cmd.arg(&files[0].id);
    let m = measured(cmd).await;
    assert_eq!(m.code, 2, "{}", m.stderr);
    assert!(m.stderr.contains("paste it on one line"), "{}", m.stderr);
    assert_eq!(sim.counters().total("retrieve"), 0);
}

/// Two jobs on one folder (the app and a CLI, two windows): the second refuses at once and
/// says who holds the folder; the first completes; a rerun skips everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_job_on_the_same_folder_refuses_and_the_first_completes() {
    let files: Vec<SimFile> = (0..6)
        .map(|i| SimFile::new(sim_id(36, i), format!("org/raw/f{i}.bin"), 2_000_000))
        .collect();
    let sim = start(files.clone(), |c| {
        c.shaping.per_connection_bps = Some(500_000);
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ids = write_ids(dir.path(), &files);
    let dest = dir.path().join("out");
    let job = || {
        let mut c = download_cmd(Some(sim.token()), &sim.base_url(), sim.org(), &dest);
        c.arg("--ids").arg(&ids).arg("--quiet");
        c
    };
    let mut first = job()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let info = dest.join(".tdp-download").join("lock.info");
    for _ in 0..200 {
        if info.exists() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(info.exists(), "the first job holds the folder");

    let second = measured(job()).await;
    assert_eq!(second.code, 2, "{}", second.stderr);
    let holder = format!("another download is using {}", dest.display());
    assert!(second.stderr.contains(&holder), "{}", second.stderr);
    assert!(
        second.stderr.contains(&format!("process {}", first.id())),
        "{}",
        second.stderr
    );
    assert!(
        first.try_wait().unwrap().is_none(),
        "refused while the first ran"
    );

    let status = tokio::task::spawn_blocking(move || first.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let rows = tdp_engine::job::report::read(&dest.join("tdp-download-report.json")).unwrap();
    assert_all_landed(&dest, &rows, &files);
    let served = sim.counters().bytes_served;

    let third = measured(job()).await;
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(third.stderr.contains("6 skipped"), "{}", third.stderr);
    assert_eq!(
        sim.counters().bytes_served,
        served,
        "no body bytes fetched again"
    );
}

/// Runs the CLI on `files` against a simulator set up by `tweak`, with `extra` flags; returns
/// the exit code, what it printed and the report's rows.
async fn stop_way(
    files: &[SimFile],
    tweak: impl FnOnce(&mut tdp_sim::SimConfig),
    during: impl FnOnce(&std::sync::Arc<tdp_sim::Simulator>),
    extra: &[&str],
) -> (i32, String, Vec<tdp_engine::job::report::ReportRow>) {
    let sim = std::sync::Arc::new(start(files.to_vec(), tweak).await);
    let dir = tempfile::tempdir().unwrap();
    let ids = write_ids(dir.path(), files);
    let dest = dir.path().join("out");
    let mut cmd = download_cmd(Some(sim.token()), &sim.base_url(), sim.org(), &dest);
    cmd.arg("--ids").arg(&ids).args(extra);
    during(&sim);
    let m = measured(cmd).await;
    let rows = tdp_engine::job::report::read(&dest.join("tdp-download-report.json")).unwrap();
    (m.code, m.stderr, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_way_a_file_can_stop_shows_in_the_exit_code() {
    use tdp_engine::job::report::Status;
    use tdp_sim::{Faults, Outage};
    let big = |seed: u64, n: u64| -> Vec<SimFile> {
        (0..n)
            .map(|i| SimFile::new(sim_id(seed, i), format!("org/raw/s{i}.bin"), 20 << 20))
            .collect()
    };

    // The object changed mid-download (412): started over and downloaded, exit 0.
    let files = big(71, 2);
    let (code, err, rows) = stop_way(
        &files,
        |c| {
            c.faults = Faults {
                s3_changed_at_request: Some(2),
                ..Faults::default()
            }
        },
        |_| {},
        &[],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        rows.iter().all(|r| r.status == Status::Downloaded),
        "{rows:?}"
    );

    // One range keeps failing while its siblings work: the file fails, exit 1.
    let (code, err, rows) = stop_way(
        &files,
        |c| {
            c.faults = Faults {
                s3_fail_ranges_from_request: Some(3),
                ..Faults::default()
            }
        },
        |_| {},
        &["--retries", "2"],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(rows.iter().all(|r| r.status == Status::Failed), "{rows:?}");

    // Storage says every link has expired (a clock far off): the refreshes are capped and
    // the files fail, exit 1.
    let small = demo_files(72, 3, Some(10_000));
    let (code, err, rows) = stop_way(
        &small,
        |c| {
            c.faults = Faults {
                s3_expired: 1.0,
                ..Faults::default()
            }
        },
        |_| {},
        &[],
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(rows.iter().all(|r| r.status == Status::Failed), "{rows:?}");
    assert!(err.contains("fresh links"), "{err}");

    // The network stays away past the patience: the job stops, exit 2, a rerun resumes.
    let slow = big(73, 2);
    let (code, err, rows) = stop_way(
        &slow,
        |c| c.shaping.per_connection_bps = Some(4_000_000),
        |sim| {
            let sim = sim.clone();
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(800)).await;
                sim.outage(Outage::Reset, std::time::Duration::from_secs(30));
            });
        },
        &["--network-patience", "2", "--read-timeout", "1"],
    )
    .await;
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("resumes where it stopped"), "{err}");
    assert!(
        rows.iter().all(|r| r.status == Status::Cancelled),
        "{rows:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_sleep_inhibitor_the_job_warns_once_and_finishes() {
    let files = demo_files(74, 4, Some(5000));
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let ids = write_ids(dir.path(), &files);
    let mut cmd = download_cmd(
        Some(sim.token()),
        &sim.base_url(),
        sim.org(),
        &dir.path().join("out"),
    );
    cmd.arg("--ids").arg(&ids).env(
        "DBUS_SYSTEM_BUS_ADDRESS",
        "unix:path=/nonexistent/system_bus_socket",
    );
    let m = measured(cmd).await;
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert_eq!(
        m.stderr
            .matches("warning: cannot keep the computer from sleeping")
            .count(),
        1,
        "{}",
        m.stderr
    );
    // --allow-sleep does not try.
    let mut cmd = download_cmd(
        Some(sim.token()),
        &sim.base_url(),
        sim.org(),
        &dir.path().join("again"),
    );
    cmd.arg("--ids").arg(&ids).arg("--allow-sleep").env(
        "DBUS_SYSTEM_BUS_ADDRESS",
        "unix:path=/nonexistent/system_bus_socket",
    );
    let m = measured(cmd).await;
    assert_eq!(m.code, 0, "{}", m.stderr);
    assert!(!m.stderr.contains("sleeping"), "{}", m.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_doctor_names_the_broken_layer_and_prints_nothing_secret() {
    let files = demo_files(75, 2, Some(5000));
    let sim = start(files.clone(), |_| {}).await;
    let doctor = |token: &str, base: &str, org: &str, id: Option<&str>| {
        let mut c = cli(Some(token));
        c.args(["doctor", "--base-url", base, "--org", org]);
        if let Some(id) = id {
            c.arg(id);
        }
        measured(c)
    };
    let secret_free = |out: &str| {
        assert!(!out.contains(sim.token()), "{out}");
        assert!(!out.contains("X-Amz-Signature"), "{out}");
    };

    let healthy = doctor(sim.token(), &sim.base_url(), sim.org(), Some(&files[0].id)).await;
    assert_eq!(healthy.code, 0, "{}{}", healthy.stdout, healthy.stderr);
    assert!(
        healthy
            .stdout
            .contains("✓ TDP accepts the token for org demo-org"),
        "{}",
        healthy.stdout
    );
    assert!(
        healthy.stdout.contains("1 byte fetched"),
        "{}",
        healthy.stdout
    );
    assert!(!healthy.stdout.contains('✗'), "{}", healthy.stdout);
    secret_free(&healthy.stdout);

    let broken: [(&str, String, &str, Option<&str>, &str); 4] = [
        (
            "wrong-token",
            sim.base_url(),
            sim.org(),
            None,
            "✗ TDP rejected the token",
        ),
        (
            sim.token(),
            sim.base_url(),
            "other-org",
            None,
            "✗ TDP: access denied",
        ),
        (
            sim.token(),
            sim.base_url(),
            sim.org(),
            Some("3f2b8c1e-5d4a-4e2b-9c1d-7a6b5c4d3e2f"),
            "not found in TDP",
        ),
        // A port nothing listens on.
        (
            sim.token(),
            "http://127.0.0.1:9".to_string(),
            sim.org(),
            None,
            ": refused",
        ),
    ];
    for (token, base, org, id, line) in broken {
        let m = doctor(token, &base, org, id).await;
        assert_eq!(m.code, 2, "{}", m.stdout);
        assert!(m.stdout.contains(line), "{line}: {}", m.stdout);
        assert!(m.stdout.contains("    fix: "), "{}", m.stdout);
        secret_free(&m.stdout);
    }

    // The server's clock three hours ahead of this computer's.
    let skewed = start(files.clone(), |c| c.clock_offset_secs = 3 * 3600).await;
    let m = doctor(skewed.token(), &skewed.base_url(), skewed.org(), None).await;
    assert_eq!(m.code, 2, "{}", m.stdout);
    assert!(
        m.stdout
            .contains("✗ clock: this computer's clock is 180 min behind TDP's"),
        "{}",
        m.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_paces_the_whole_job_over_all_connections() {
    let files: Vec<SimFile> = (0..8)
        .map(|i| SimFile::new(sim_id(75, i), format!("org/raw/r{i}.bin"), 500_000))
        .collect();
    let total: u64 = files.iter().map(|f| f.size).sum();
    let sim = start(files.clone(), |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let ids = write_ids(dir.path(), &files);
    let out = dir.path().join("out");
    let mut cmd = download_cmd(Some(sim.token()), &sim.base_url(), sim.org(), &out);
    cmd.arg("--ids").arg(&ids).args([
        "--limit-rate",
        "2MB/s",
        "--concurrency",
        "4",
        "--allow-sleep",
    ]);
    let t = std::time::Instant::now();
    let m = measured(cmd).await;
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(m.code, 0, "{}", m.stderr);
    eprintln!(
        "--limit-rate 2MB/s: {total} bytes in {secs:.2} s = {:.2} MB/s over 4 connections",
        total as f64 / secs / 1e6
    );
    // A floor only (a busy machine is slower, never faster): 4 MB, less a quarter second's
    // burst, at 2 MB/s.
    assert!(secs >= 1.5, "{secs} s");
    for f in &files {
        assert_eq!(md5_of_file(&out.join(f.base_name())), expected_md5(f));
    }

    let mut cmd = download_cmd(Some(sim.token()), &sim.base_url(), sim.org(), &out);
    cmd.arg("--ids").arg(&ids).args(["--limit-rate", "fast"]);
    let m = measured(cmd).await;
    assert_eq!(m.code, 2);
    assert!(m.stderr.contains("\"fast\" is not a size"), "{}", m.stderr);
}
