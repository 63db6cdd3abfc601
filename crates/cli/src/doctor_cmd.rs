//! `tdp-download doctor`: checks each layer to TDP (and a file's storage), one line each.

use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use tdp_engine::net::connect::NetworkSettings;

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// TDP API base URL, e.g. https://api.tetrascience.com.
    #[arg(long, value_name = "URL")]
    base_url: String,
    /// Organisation slug.
    #[arg(long, value_name = "SLUG")]
    org: String,
    /// A file ID: also checks the link TDP gives for it and its storage (one byte fetched).
    #[arg(value_name = "ID")]
    id: Option<String>,
    /// A CA certificate file (PEM) to trust, as for downloads.
    #[arg(long, value_name = "PEM")]
    ca_cert: Vec<PathBuf>,
    /// A proxy for TDP and storage, as for downloads.
    #[arg(long, value_name = "URL")]
    proxy: Option<String>,
}

/// Exit 0 when every check passes, 2 otherwise. Prints nothing secret.
pub async fn run(args: DoctorArgs) -> ExitCode {
    let token = match crate::token_for(&args.base_url, &args.org) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let network = NetworkSettings {
        ca_certs: args.ca_cert.clone(),
        proxy: args.proxy.clone(),
        proxy_password: crate::proxy_password(args.proxy.as_deref()),
    };
    let checks = tdp_engine::session::doctor::diagnose(
        &args.base_url,
        &args.org,
        token,
        args.id.as_deref(),
        &network,
    )
    .await;
    for c in &checks {
        println!("{} {}", if c.ok { "✓" } else { "✗" }, c.what);
        if let Some(fix) = &c.fix {
            println!("    fix: {fix}");
        }
    }
    if checks.iter().all(|c| c.ok) {
        println!("all checks passed");
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}
