//! Starts the simulator once per scenario and runs, as child processes on identical shaping,
//! `tdp-download` and a replica of the notebook's algorithm (`tdp-bench replica`); prints
//! wall times, their ratio, throughput, peak RSS (from `wait4`), the lower bound and the
//! replica's analytic time.

use clap::Args;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use tdp_engine::size::human;
use tdp_sim::{sim_id, Shaping, SimConfig, SimFile, Simulator};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Scenarios to run: notebook, small-2000, big-10, big-1, ids-100k, all, or smoke (a
    /// quick check that the benchmark works).
    #[arg(long, default_value = "all")]
    scenario: Vec<String>,
    /// Folder for downloads (emptied per run); default a temporary folder.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Also write the results as a Markdown table here.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

struct Scenario {
    name: &'static str,
    files: usize,
    size: u64,
    api_latency_ms: u64,
    first_byte_ms: u64,
    per_conn: Option<u64>,
    total: Option<u64>,
    /// S3 connections for our CLI (the replica always has 25).
    concurrency: usize,
    replica: bool,
}

const MB: u64 = 1_000_000;

fn scenarios() -> Vec<Scenario> {
    let nb = |name, files, size, replica| Scenario {
        name,
        files,
        size,
        api_latency_ms: 120,
        first_byte_ms: 25,
        per_conn: Some(25 * MB),
        total: Some(200 * MB),
        concurrency: 25,
        replica,
    };
    vec![
        nb("notebook", 100, 1 << 20, true),
        nb("small-2000", 2000, 64 << 10, true),
        Scenario {
            concurrency: 32,
            ..nb("big-10", 10, 100 << 20, true)
        },
        Scenario {
            concurrency: 32,
            ..nb("big-1", 1, 1 << 30, false)
        },
        Scenario {
            api_latency_ms: 0,
            first_byte_ms: 0,
            per_conn: None,
            total: None,
            concurrency: 32,
            ..nb("ids-100k", 100_000, 512, false)
        },
        Scenario {
            concurrency: 25,
            ..nb("smoke", 40, 256 << 10, true)
        },
    ]
}

struct Run {
    code: i32,
    wall: f64,
    rss_kib: u64,
    stderr: String,
}

#[allow(clippy::zombie_processes)] // wait4 reaps the child
fn run_child(cmd: &mut Command) -> Run {
    let start = Instant::now();
    let child = match cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            return Run {
                code: -1,
                wall: 0.0,
                rss_kib: 0,
                stderr: e.to_string(),
            };
        }
    };
    let pid = child.id();
    let stderr = child.stderr.map(|mut s| {
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = std::io::Read::read_to_string(&mut s, &mut out);
            out
        })
    });
    let (code, rss_kib) = wait_rusage(pid);
    let wall = start.elapsed().as_secs_f64();
    let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
    Run {
        code,
        wall,
        rss_kib,
        stderr,
    }
}

#[cfg(unix)]
fn wait_rusage(pid: u32) -> (i32, u64) {
    let mut status = 0;
    // SAFETY: rusage is plain data filled in by wait4 for our own child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid as libc::pid_t, &mut status, 0, &mut usage) };
    if r < 0 {
        return (-1, 0);
    }
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, usage.ru_maxrss as u64)
}

#[cfg(not(unix))]
fn wait_rusage(_pid: u32) -> (i32, u64) {
    (-1, 0)
}

/// Bytes per second one of `conns` busy connections gets: its own cap or its share of the
/// total, whichever is smaller.
fn per_connection(s: &Scenario, conns: f64) -> f64 {
    let cap = s.per_conn.map_or(f64::INFINITY, |p| p as f64);
    let share = s.total.map_or(f64::INFINITY, |t| t as f64 / conns);
    cap.min(share)
}

fn fresh(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::create_dir_all(dir);
    dir.to_path_buf()
}

struct Row {
    text: Vec<String>,
}

pub async fn run(args: BenchArgs) -> ExitCode {
    let all = scenarios();
    let wanted: Vec<&Scenario> = all
        .iter()
        .filter(|s| {
            args.scenario
                .iter()
                .any(|w| w == s.name || (w == "all" && s.name != "smoke"))
        })
        .collect();
    if wanted.is_empty() {
        eprintln!("error: unknown scenario; use notebook, small-2000, big-10, big-1, ids-100k, all or smoke");
        return ExitCode::from(2);
    }
    let tmp = tempfile_dir(args.dir.clone());
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let cli = exe.with_file_name(format!("tdp-download{}", std::env::consts::EXE_SUFFIX));
    if !cli.is_file() {
        eprintln!(
            "error: {} is missing: build with scripts/build-release.sh first",
            cli.display()
        );
        return ExitCode::from(2);
    }
    println!(
        "tdp-bench ({} build)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let mut rows = Vec::new();
    for s in wanted {
        match scenario(s, &exe, &cli, &tmp).await {
            Ok(r) => rows.push(r),
            Err(e) => {
                eprintln!("error in scenario {}: {e}", s.name);
                return ExitCode::from(1);
            }
        }
    }
    let header = [
        "scenario",
        "ours s",
        "replica s",
        "ratio",
        "ours MB/s",
        "replica MB/s",
        "ours RSS",
        "replica RSS",
        "lower bound s",
        "ours/bound",
        "replica analytic s",
        "replica meas/analytic",
        "peak streams/object",
        "notes",
    ];
    let mut md = format!(
        "| {} |\n|{}\n",
        header.join(" | "),
        " --- |".repeat(header.len())
    );
    for r in &rows {
        md.push_str(&format!("| {} |\n", r.text.join(" | ")));
    }
    println!("\n{md}");
    if let Some(p) = &args.markdown {
        if let Err(e) = std::fs::write(p, &md) {
            eprintln!("warning: cannot write {}: {e}", p.display());
        }
    }
    ExitCode::SUCCESS
}

fn tempfile_dir(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| std::env::temp_dir().join(format!("tdp-bench-{}", std::process::id())))
}

async fn scenario(s: &Scenario, exe: &Path, cli: &Path, tmp: &Path) -> Result<Row, String> {
    eprintln!("== {}: {} files of {}", s.name, s.files, human(s.size));
    let files: Vec<SimFile> = (0..s.files as u64)
        .map(|i| {
            SimFile::new(
                sim_id(77, i),
                format!("bench/src/RAW/{}/f{i:06}.bin", s.name),
                s.size,
            )
        })
        .collect();
    let total_bytes: u64 = files.iter().map(|f| f.size).sum();
    let mut cfg = SimConfig::new(files.clone());
    cfg.shaping = Shaping {
        api_latency: Duration::from_millis(s.api_latency_ms),
        s3_first_byte: Duration::from_millis(s.first_byte_ms),
        per_connection_bps: s.per_conn,
        total_bps: s.total,
    };
    let sim = Simulator::start(cfg).await.map_err(|e| e.to_string())?;
    sim.warm_up().await;
    let dir = tmp.join(s.name);
    let ids = fresh(&dir).join("ids.txt");
    std::fs::write(
        &ids,
        files
            .iter()
            .map(|f| format!("{}\n", f.id))
            .collect::<String>(),
    )
    .map_err(|e| e.to_string())?;

    let ours_out = fresh(&dir.join("ours"));
    let mut cmd = Command::new(cli);
    cmd.env("TDP_TOKEN", sim.token())
        .args([
            "--base-url",
            &sim.base_url(),
            "--org",
            sim.org(),
            "--quiet",
            "--count-events",
        ])
        .arg("--concurrency")
        .arg(s.concurrency.to_string())
        .arg("--ids")
        .arg(&ids)
        .arg("--out")
        .arg(&ours_out);
    let ours = tokio::task::spawn_blocking(move || run_child(&mut cmd))
        .await
        .map_err(|e| e.to_string())?;
    if ours.code != 0 {
        return Err(format!("our CLI exited {}: {}", ours.code, ours.stderr));
    }
    let peak_object = sim.counters().s3_peak_streams_one_object;
    let _ = std::fs::remove_dir_all(&ours_out);
    let events = ours
        .stderr
        .lines()
        .find(|l| l.starts_with("events:"))
        .unwrap_or("")
        .to_string();

    let conns = s.concurrency as f64;
    let eff_total = conns * per_connection(s, conns);
    let latency = (s.api_latency_ms + s.first_byte_ms) as f64 / 1000.0;
    let bound = latency + total_bytes as f64 / eff_total;
    let mbps = |secs: f64| total_bytes as f64 / MB as f64 / secs;

    let (replica_s, replica_mbps, replica_rss, ratio, analytic, agree) = if s.replica {
        sim.reset_peaks();
        let rep_out = fresh(&dir.join("replica"));
        let mut cmd = Command::new(exe);
        cmd.env("TDP_TOKEN", sim.token())
            .args(["replica", "--base-url", &sim.base_url(), "--org", sim.org()])
            .arg("--ids")
            .arg(&ids)
            .arg("--out")
            .arg(&rep_out);
        let rep = tokio::task::spawn_blocking(move || run_child(&mut cmd))
            .await
            .map_err(|e| e.to_string())?;
        if rep.code != 0 {
            return Err(format!("the replica exited {}: {}", rep.code, rep.stderr));
        }
        let _ = std::fs::remove_dir_all(&rep_out);
        // Each busy connection (25, or fewer files) moves at its own cap or its share of the
        // total.
        let busy = s.files.clamp(1, 25) as f64;
        let per = per_connection(s, busy);
        let rounds = (s.files as f64 / 25.0).ceil();
        let analytic = rounds * (latency + s.size as f64 / per);
        // The analytic time covers fetching; the replica also reports when its bodies were all
        // in memory, which is what it is compared with (writing them out comes after).
        let fetched = rep
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix("replica: downloaded in "))
            .and_then(|l| l.split(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(rep.wall);
        (
            format!("{:.2}", rep.wall),
            format!("{:.0}", mbps(rep.wall)),
            human(rep.rss_kib * 1024),
            format!("{:.2}x", rep.wall / ours.wall),
            format!("{analytic:.2}"),
            format!("{:.2} ({fetched:.2} s fetching)", fetched / analytic),
        )
    } else if s.files == 1 {
        // One file: compare with what one connection would take.
        let one = latency + s.size as f64 / s.per_conn.unwrap_or(u64::MAX) as f64;
        (
            format!("(1 conn: {one:.2} computed)"),
            "-".into(),
            "-".into(),
            format!("{:.2}x vs 1 conn", one / ours.wall),
            "-".into(),
            "-".into(),
        )
    } else {
        (
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
        )
    };
    let row = Row {
        text: vec![
            s.name.to_string(),
            format!("{:.2}", ours.wall),
            replica_s,
            ratio,
            format!("{:.0}", mbps(ours.wall)),
            replica_mbps,
            human(ours.rss_kib * 1024),
            replica_rss,
            format!("{bound:.3}"),
            format!("{:.2}", ours.wall / bound),
            analytic,
            agree,
            peak_object.to_string(),
            events,
        ],
    };
    eprintln!("   {}", row.text.join(" | "));
    Ok(row)
}
