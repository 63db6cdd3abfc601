#!/usr/bin/env bash
# Builds and starts the desktop app (release build, with its web UI embedded). Installs the
# system libraries Tauri needs on Debian/Ubuntu first. Extra arguments go to the app, e.g.
# --demo to start it on the built-in simulator.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-debian.sh app
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
# The release build the tests use (one build for everything: scripts/build-release.sh).
cargo build --release --locked --workspace --bins
exec target/release/tdp-bulk-downloader "$@"
