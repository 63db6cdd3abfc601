//! `tdp-download sim`: a local TDP + S3 to try the CLI and the app without a TDP account.

use clap::Args;
use std::path::PathBuf;
use std::time::Duration;
use tdp_engine::size::{human, parse_size};
use tdp_sim::{demo_files, Shaping, SimConfig, Simulator};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Number of files in the simulated data lake.
    #[arg(long, default_value_t = 100)]
    pub files: usize,
    /// Size of every file (e.g. 1MiB); default: a mix of sizes and kinds.
    #[arg(long)]
    pub size: Option<String>,
    /// API port (default: any free port). S3 gets a port of its own.
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// Where to write the list of file IDs.
    #[arg(long, default_value = "sim-file-ids.txt")]
    pub ids_out: PathBuf,
    /// Delay of each `retrieve` answer, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub api_latency_ms: u64,
    /// Delay before S3 sends response headers, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub first_byte_ms: u64,
    /// Bandwidth of one S3 connection (e.g. 25MB); default unlimited.
    #[arg(long)]
    pub per_connection: Option<String>,
    /// Bandwidth of all S3 connections together (e.g. 200MB); default unlimited.
    #[arg(long)]
    pub total_bandwidth: Option<String>,
    /// Seed for contents and IDs.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

pub async fn run(args: SimArgs) -> Result<(), String> {
    let size = args.size.as_deref().map(parse_size).transpose()?;
    let files = demo_files(args.seed, args.files, size);
    let total: u64 = files.iter().map(|f| f.size).sum();
    let ids: String = files.iter().map(|f| format!("{}\n", f.id)).collect();
    std::fs::write(&args.ids_out, ids)
        .map_err(|e| format!("cannot write {}: {e}", args.ids_out.display()))?;
    let mut cfg = SimConfig::new(files);
    cfg.seed = args.seed;
    cfg.port = args.port;
    cfg.shaping = Shaping {
        api_latency: Duration::from_millis(args.api_latency_ms),
        s3_first_byte: Duration::from_millis(args.first_byte_ms),
        per_connection_bps: args.per_connection.as_deref().map(parse_size).transpose()?,
        total_bps: args
            .total_bandwidth
            .as_deref()
            .map(parse_size)
            .transpose()?,
    };
    let sim = Simulator::start(cfg)
        .await
        .map_err(|e| format!("cannot start the simulator: {e}"))?;
    // One write, its error ignored: a reader that stops after the first lines (`| head`, a
    // test taking the token) must not take the simulator down with a broken pipe.
    let banner = format!(
        "TDP simulator running on loopback (Ctrl-C to stop)\n\
         \x20 base URL : {base}\n\
         \x20 org      : {org}\n\
         \x20 token    : {token}\n\
         \x20 file IDs : {ids} ({n} files, {total})\n\
         \x20 counters : {base}/_sim/counters\n\
         \n\
         Try, in another terminal:\n\
         \x20 TDP_TOKEN={token} tdp-download --base-url {base} --org {org} --ids {ids} --out ./tdp-downloads\n",
        base = sim.base_url(),
        org = sim.org(),
        token = sim.token(),
        ids = args.ids_out.display(),
        n = args.files,
        total = human(total),
    );
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    }
    let _ = tokio::signal::ctrl_c().await;
    Ok(())
}
