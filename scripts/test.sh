#!/usr/bin/env bash
# Every test: formatting, lints, engine unit and integration tests against the simulator,
# then the desktop app's end-to-end tests. Sets up what it needs on Debian/Ubuntu first.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

scripts/setup-debian.sh all
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== engine tests"
cargo test -p tdp-bulk-downloader
echo "== desktop app end-to-end tests"
scripts/e2e.sh
echo "== installer: build, install, start, remove"
scripts/test-deb.sh
