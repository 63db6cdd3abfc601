#!/usr/bin/env bash
# The one build that the tests, the end-to-end tests, the .deb and run-app.sh share.
#
# Why this shape (measured on 2 cores, see the closing note of the CI-time issue and
# docs/ci.md):
# - One profile, release: the E2E tests drive the app users get, the .deb packs the same
#   binaries (`tauri bundle`, which builds nothing), and the engine tests run on them too, so
#   the Tauri dependency tree is compiled once instead of once per profile.
# - Always the whole workspace: cargo unifies the features of shared dependencies over the
#   packages selected, so `-p one-package` can switch a feature of tokio or hyper and rebuild
#   them and everything above them. Every step selects `--workspace`; tests are told apart by
#   name (E2E tests live in `e2e_window::`), never by package selection.
# - The app always has `tauri/custom-protocol` (src-tauri/Cargo.toml): the bundler's build
#   and ours are the same build.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --locked --workspace --bins
cargo test --release --locked --workspace --no-run
