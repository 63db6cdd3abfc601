//! "Try with demo data": the engine's simulator, started inside the app on loopback.

use tdp_sim::{demo_files, Shaping, SimConfig, Simulator};

pub struct Demo {
    pub sim: Simulator,
    pub ids: String,
}

/// Files and pacing that let a person watch a download happen (a few seconds).
pub async fn start() -> std::io::Result<Demo> {
    let files = demo_files(7, 120, None);
    let ids = files.iter().map(|f| format!("{}\n", f.id)).collect();
    let mut cfg = SimConfig::new(files);
    cfg.shaping = Shaping {
        api_latency: std::time::Duration::from_millis(40),
        s3_first_byte: std::time::Duration::from_millis(20),
        per_connection_bps: Some(3_000_000),
        total_bps: Some(30_000_000),
    };
    let sim = Simulator::start(cfg).await?;
    Ok(Demo { sim, ids })
}
