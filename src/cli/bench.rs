//! `tdp-download bench`: this engine against a replica of the notebook, side by side.

use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> ExitCode {
    eprintln!("bench: not built yet");
    ExitCode::from(2)
}
