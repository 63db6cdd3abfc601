//! Starts the simulator once per scenario and runs, as child processes on identical shaping,
//! `tdp-download`, a replica of the notebook's algorithm (`tdp-bench replica`) and, for one
//! large file, aria2c on the pre-resolved URL; prints for each client its wall time, CPU
//! seconds and peak RSS (from `wait4`), its rate and its ratio to the lower bound, with the
//! machine, the file system and the date.

use crate::child::{run_child, Run};
use crate::machine::{machine, which};
use clap::Args;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Duration;
use tdp_engine::size::human;
use tdp_sim::{sim_id, Shaping, SimConfig, SimFile, Simulator};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Scenarios to run: notebook, small-2000, big-10, big-1, big-1-256, cpu-20x16,
    /// small-100k, small-100k-256, ids-100k, checks-1g (each integrity check's CPU), all, or
    /// smoke (a quick check that the benchmark works).
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
    /// aria2c on the pre-resolved URL (single-file scenarios), where installed.
    aria2c: bool,
    /// Runs of each client; the table shows the median (by wall time).
    runs: usize,
}

const MB: u64 = 1_000_000;
const CHECKS: &str = "checks-1g";

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
        aria2c: false,
        runs: 1,
    };
    let small = |name, concurrency| Scenario {
        api_latency_ms: 5,
        first_byte_ms: 1,
        per_conn: None,
        total: None,
        concurrency,
        ..nb(name, 100_000, 1024, false)
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
            aria2c: true,
            runs: 3,
            ..nb("big-1", 1, 1 << 30, false)
        },
        Scenario {
            concurrency: 256,
            ..nb("big-1-256", 1, 1 << 30, false)
        },
        Scenario {
            per_conn: None,
            total: None,
            api_latency_ms: 0,
            first_byte_ms: 0,
            concurrency: 25,
            ..nb("cpu-20x16", 20, 16 << 20, true)
        },
        small("small-100k", 64),
        small("small-100k-256", 256),
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

/// Bytes per second one of `conns` busy connections gets: its own cap or its share of the
/// total, whichever is smaller.
fn per_connection(s: &Scenario, conns: f64) -> f64 {
    let cap = s.per_conn.map_or(f64::INFINITY, |p| p as f64);
    let share = s.total.map_or(f64::INFINITY, |t| t as f64 / conns);
    cap.min(share)
}

pub(crate) fn fresh(dir: &Path) -> PathBuf {
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::create_dir_all(dir);
    dir.to_path_buf()
}

/// One client's line of a scenario.
pub(crate) struct Row {
    pub(crate) text: Vec<String>,
}

const HEADER: [&str; 10] = [
    "scenario",
    "client",
    "wall s",
    "CPU s",
    "peak RSS",
    "rate",
    "÷ bound",
    "vs ours",
    "runs (wall s)",
    "notes",
];

pub async fn run(args: BenchArgs) -> ExitCode {
    let all = scenarios();
    let mut names: Vec<&str> = all.iter().map(|s| s.name).collect();
    names.push(CHECKS);
    let checks = args.scenario.iter().any(|w| w == CHECKS || w == "all");
    let wanted: Vec<&Scenario> = all
        .iter()
        .filter(|s| {
            args.scenario
                .iter()
                .any(|w| w == s.name || (w == "all" && s.name != "smoke"))
        })
        .collect();
    if wanted.is_empty() && !checks {
        eprintln!(
            "error: unknown scenario; use {}, all or smoke",
            names.join(", ")
        );
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
    let _ = std::fs::create_dir_all(&tmp);
    let machine = machine(&tmp);
    println!(
        "tdp-bench ({} build) — {machine}",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    let mut rows = Vec::new();
    for s in wanted {
        match scenario(s, &exe, &cli, &tmp).await {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("error in scenario {}: {e}", s.name);
                return ExitCode::from(1);
            }
        }
    }
    if checks {
        match crate::checks::run(&cli, &tmp).await {
            Ok(r) => rows.extend(r),
            Err(e) => {
                eprintln!("error in scenario {CHECKS}: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let mut md = format!(
        "{machine}\n\n| {} |\n|{}\n",
        HEADER.join(" | "),
        " --- |".repeat(HEADER.len())
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

/// Runs a client `runs` times and keeps the median run (by wall time), with all wall times.
pub(crate) async fn median_of(
    runs: usize,
    mut make: impl FnMut() -> (Command, PathBuf),
) -> Result<(Run, Vec<f64>), String> {
    let mut done = Vec::new();
    for _ in 0..runs.max(1) {
        let (mut cmd, out) = make();
        let r = tokio::task::spawn_blocking(move || run_child(&mut cmd))
            .await
            .map_err(|e| e.to_string())?;
        let _ = std::fs::remove_dir_all(&out);
        if r.code != 0 {
            return Err(format!("exited {}: {}", r.code, r.stderr));
        }
        done.push(r);
    }
    let walls: Vec<f64> = done.iter().map(|r| r.wall).collect();
    done.sort_by(|a, b| a.wall.total_cmp(&b.wall));
    let mid = done.len() / 2;
    Ok((done.swap_remove(mid), walls))
}

async fn scenario(s: &Scenario, exe: &Path, cli: &Path, tmp: &Path) -> Result<Vec<Row>, String> {
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

    let conns = s.concurrency as f64;
    let eff_total = conns * per_connection(s, conns);
    let latency = (s.api_latency_ms + s.first_byte_ms) as f64 / 1000.0;
    let bound = latency + total_bytes as f64 / eff_total;
    // Unshaped, the bound is only the latency: no ratio to it says anything.
    let shaped = s.per_conn.is_some() || s.total.is_some();
    let vs_bound = |wall: f64| {
        if shaped {
            format!("{:.2}", wall / bound)
        } else {
            "-".into()
        }
    };
    let rate = |secs: f64| {
        if s.size < (1 << 20) {
            format!("{:.0} files/s", s.files as f64 / secs)
        } else {
            format!("{:.0} MB/s", total_bytes as f64 / MB as f64 / secs)
        }
    };
    let mut rows = Vec::new();

    let mut n = 0;
    let (ours, ours_walls) = median_of(s.runs, || {
        n += 1;
        let out = fresh(&dir.join(format!("ours-{n}")));
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
            .arg(&out);
        (cmd, out)
    })
    .await
    .map_err(|e| format!("our CLI {e}"))?;
    let peak_object = sim.counters().s3_peak_streams_one_object;
    let events = ours
        .stderr
        .lines()
        .find(|l| l.starts_with("events:"))
        .unwrap_or("")
        .to_string();
    rows.push(Row {
        text: vec![
            s.name.to_string(),
            format!("ours ({} conns)", s.concurrency),
            format!("{:.2}", ours.wall),
            format!("{:.2}", ours.cpu),
            human(ours.rss_kib * 1024),
            rate(ours.wall),
            if shaped {
                format!("{:.2} (bound {bound:.3} s)", ours.wall / bound)
            } else {
                "-".into()
            },
            "-".into(),
            walls(&ours_walls),
            format!("MD5 verified; {peak_object} streams on one object; {events}"),
        ],
    });

    if s.replica {
        sim.reset_peaks();
        let (rep, rep_walls) = median_of(s.runs, || {
            let out = fresh(&dir.join("replica"));
            let mut cmd = Command::new(exe);
            cmd.env("TDP_TOKEN", sim.token())
                .args(["replica", "--base-url", &sim.base_url(), "--org", sim.org()])
                .arg("--ids")
                .arg(&ids)
                .arg("--out")
                .arg(&out);
            (cmd, out)
        })
        .await
        .map_err(|e| format!("the replica {e}"))?;
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
        let note = format!(
            "no verification; fetching {fetched:.2} s = {:.2}x its analytic {analytic:.2} s",
            fetched / analytic
        );
        rows.push(peer_row(
            s.name,
            "notebook replica (25 conns)",
            &rep,
            &rep_walls,
            &ours,
            (rate(rep.wall), vs_bound(rep.wall)),
            note,
        ));
    }

    if s.aria2c {
        match which("aria2c") {
            None => rows.push(Row {
                text: vec![
                    s.name.to_string(),
                    "aria2c".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "not installed (apt-get install aria2)".into(),
                ],
            }),
            Some(aria) => {
                let mut urls = Vec::new();
                for f in &files {
                    urls.push(presigned(&sim, &f.id).await?);
                }
                let (ar, ar_walls) = median_of(s.runs, || {
                    let out = fresh(&dir.join("aria2c"));
                    let mut cmd = Command::new(&aria);
                    cmd.args([
                        "-x16",
                        "-s16",
                        "--quiet=true",
                        "--file-allocation=none",
                        "--allow-overwrite=true",
                        "--auto-file-renaming=false",
                        "--console-log-level=error",
                        "-d",
                    ])
                    .arg(&out)
                    .args(&urls);
                    (cmd, out)
                })
                .await
                .map_err(|e| format!("aria2c {e}"))?;
                rows.push(peer_row(
                    s.name,
                    "aria2c -x16 -s16",
                    &ar,
                    &ar_walls,
                    &ours,
                    (rate(ar.wall), vs_bound(ar.wall)),
                    "pre-resolved URL, no verification".into(),
                ));
            }
        }
    }
    for r in &rows {
        eprintln!("   {}", r.text.join(" | "));
    }
    Ok(rows)
}

/// Every run's wall time, for the table.
pub(crate) fn walls(w: &[f64]) -> String {
    w.iter()
        .map(|x| format!("{x:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A peer's row: its figures and how they compare with ours. `rated` is its rate and its
/// ratio to the bound, as the scenario words them.
fn peer_row(
    scenario: &str,
    client: &str,
    run: &Run,
    run_walls: &[f64],
    ours: &Run,
    rated: (String, String),
    note: String,
) -> Row {
    Row {
        text: vec![
            scenario.to_string(),
            client.to_string(),
            format!("{:.2}", run.wall),
            format!("{:.2}", run.cpu),
            human(run.rss_kib * 1024),
            rated.0,
            rated.1,
            format!(
                "{:.2}x the time, {:.2}x the CPU",
                run.wall / ours.wall,
                run.cpu / ours.cpu.max(1e-9)
            ),
            walls(run_walls),
            note,
        ],
    }
}

/// A file's pre-signed URL, resolved as the notebook does, for a client that takes URLs.
async fn presigned(sim: &Simulator, id: &str) -> Result<String, String> {
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/datalake/retrieve", sim.base_url()))
        .query(&[("fileId", id), ("getPresigned", "true")])
        .header("ts-auth-token", sim.token())
        .header("x-org-slug", sim.org())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let v: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
    v["url"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no URL for {id}: {v}"))
}
