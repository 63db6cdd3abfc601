//! `tdp-bench`: measures `tdp-download` against a replica of the published notebook, side by
//! side on the simulator. A maintainer's tool: not part of the shipped CLI or package.
//!
//! Build once with `scripts/build-release.sh`, then run `target/release/tdp-bench`; it runs
//! the `tdp-download` found beside it.

mod bench;
mod checks;
mod child;
mod machine;
mod replica;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "tdp-bench", version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    bench: bench::BenchArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The notebook's algorithm, run as a child process by the benchmark.
    #[command(hide = true)]
    Replica(replica::ReplicaArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Replica(args)) => replica::run(args).await,
        None => bench::run(cli.bench).await,
    }
}
