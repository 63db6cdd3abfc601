//! The `checks-1g` scenario: what each integrity check costs. One 1 GiB object of each kind
//! of S3 object TDP serves — KMS (nothing to check but its size), KMS with S3's CRC-64/NVME
//! (asked for with checksum mode), plain (MD5 in the ETag) — fetched by our CLI one after
//! another on one simulator at the notebook's shaping; then each check's own cost, measured
//! in this process on 1 GiB in memory. A check costs what it should when the CLI's CPU over
//! the KMS row's is near its own cost. (Gzip objects are left out: the simulator keeps their
//! encoded bytes in memory.)

use crate::bench::{fresh, median_of, Row};
use std::path::Path;
use std::process::Command;
use std::time::Duration;
use tdp_engine::size::human;
use tdp_sim::{sim_id, FileKind, Shaping, SimConfig, SimFile, Simulator, StoredChecksum};

const GIB: u64 = 1 << 30;
const MB: u64 = 1_000_000;
const RUNS: usize = 5;

struct Kind {
    client: &'static str,
    check: &'static str,
    file: fn(SimFile) -> SimFile,
    /// The check fed a buffer in the chunks HTTP bodies arrive in (None: no check), for its
    /// own cost.
    own: Option<fn(&[u8]) -> u64>,
}

/// Bodies arrive in chunks of about this size (hyper's reads), and the checks are fed so.
const CHUNK: usize = 16 << 10;

fn kinds() -> Vec<Kind> {
    vec![
        Kind {
            client: "ours, KMS object",
            check: "size",
            file: |f| f.kind(FileKind::Kms),
            own: None,
        },
        Kind {
            client: "ours, KMS + CRC-64/NVME",
            check: "crc64nvme",
            file: |f| {
                f.kind(FileKind::Kms)
                    .stored_checksum(StoredChecksum::Crc64Nvme)
            },
            own: Some(|b| {
                let mut d = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc64Nvme);
                b.chunks(CHUNK).for_each(|c| d.update(c));
                d.finalize()
            }),
        },
        Kind {
            client: "ours, plain object",
            check: "md5",
            file: |f| f,
            own: Some(|b| {
                use md5::Digest as _;
                let mut h = md5::Md5::new();
                b.chunks(CHUNK).for_each(|c| h.update(c));
                h.finalize()[0] as u64
            }),
        },
    ]
}

/// CPU seconds of this process (user + system) so far.
fn cpu_now() -> f64 {
    #[cfg(unix)]
    {
        // SAFETY: getrusage fills the struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        secs(u.ru_utime) + secs(u.ru_stime)
    }
    #[cfg(not(unix))]
    {
        0.0
    }
}

/// The check's CPU seconds over 1 GiB, as 16 passes over 64 MiB in memory.
fn own_cost(check: fn(&[u8]) -> u64) -> f64 {
    let buf: Vec<u8> = (0..64u64 << 20)
        .map(|i| (i.wrapping_mul(0x9E37_79B9) >> 13) as u8)
        .collect();
    let start = cpu_now();
    let mut sink = 0u64;
    for _ in 0..16 {
        sink ^= check(std::hint::black_box(&buf));
    }
    std::hint::black_box(sink);
    cpu_now() - start
}

pub async fn run(cli: &Path, tmp: &Path) -> Result<Vec<Row>, String> {
    let name = "checks-1g";
    eprintln!("== {name}: one 1 GiB object of each kind");
    let kinds = kinds();
    let files: Vec<SimFile> = kinds
        .iter()
        .enumerate()
        .map(|(i, k)| {
            (k.file)(SimFile::new(
                sim_id(78, i as u64),
                format!("bench/src/RAW/{name}/k{i}.bin"),
                GIB,
            ))
        })
        .collect();
    let mut cfg = SimConfig::new(files.clone());
    cfg.sign_checksum_mode = true;
    cfg.shaping = Shaping {
        api_latency: Duration::from_millis(120),
        s3_first_byte: Duration::from_millis(25),
        per_connection_bps: Some(25 * MB),
        total_bps: Some(200 * MB),
    };
    let sim = Simulator::start(cfg).await.map_err(|e| e.to_string())?;
    sim.warm_up().await;
    let dir = tmp.join(name);
    fresh(&dir);
    let mut rows = Vec::new();
    let mut baseline = None;
    for (i, (k, f)) in kinds.iter().zip(&files).enumerate() {
        let ids = dir.join(format!("ids-{i}.txt"));
        std::fs::write(&ids, format!("{}\n", f.id)).map_err(|e| e.to_string())?;
        // CPU seconds vary run to run by about a tenth of a second here: five runs each,
        // and the medians of wall and CPU apart.
        let mut runs = Vec::new();
        for _ in 0..RUNS {
            let (run, _) = median_of(1, || {
                let out = fresh(&dir.join(format!("out-{i}")));
                let mut cmd = Command::new(cli);
                cmd.env("TDP_TOKEN", sim.token())
                    .args(["--base-url", &sim.base_url(), "--org", sim.org(), "--quiet"])
                    .args(["--concurrency", "32", "--ids"])
                    .arg(&ids)
                    .arg("--out")
                    .arg(&out);
                (cmd, out)
            })
            .await
            .map_err(|e| format!("our CLI on the {} object {e}", k.check))?;
            runs.push(run);
        }
        let median = |mut v: Vec<f64>| {
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let walls: Vec<f64> = runs.iter().map(|r| r.wall).collect();
        let cpus: Vec<f64> = runs.iter().map(|r| r.cpu).collect();
        let (wall, cpu) = (median(walls.clone()), median(cpus.clone()));
        let rss = runs.iter().map(|r| r.rss_kib).max().unwrap_or(0);
        let own = k.own.map(own_cost);
        let base: f64 = *baseline.get_or_insert(cpu);
        let note = match own {
            None => "no checksum: the CPU of receiving and writing alone".to_string(),
            Some(own) => format!(
                "checked by {}: +{:.2} CPU s over the KMS row; the check's own cost {own:.2} CPU s/GiB",
                k.check,
                cpu - base
            ),
        };
        rows.push(Row {
            text: vec![
                name.to_string(),
                k.client.to_string(),
                format!("{wall:.2}"),
                format!("{cpu:.2}"),
                human(rss * 1024),
                format!("{:.0} MB/s", GIB as f64 / MB as f64 / wall),
                "-".into(),
                "-".into(),
                format!(
                    "wall {}; CPU {}",
                    crate::bench::walls(&walls),
                    crate::bench::walls(&cpus)
                ),
                note,
            ],
        });
    }
    for r in &rows {
        eprintln!("   {}", r.text.join(" | "));
    }
    Ok(rows)
}
