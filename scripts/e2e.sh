#!/usr/bin/env bash
# End-to-end tests of the desktop app's real window: builds the app, starts Xvfb, a D-Bus
# session with an unlocked gnome-keyring in a fresh HOME, and drives the window through
# tauri-driver + WebKitWebDriver. Screenshots land in target/e2e-screenshots/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/setup-debian.sh e2e
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
export PATH="$CARGO_HOME/bin:$PATH"

cargo build -p tdp-bulk-downloader-app -p tdp-bulk-downloader --bins
cargo build -p tdp-e2e --tests
command -v tauri-driver >/dev/null 2>&1 || cargo install tauri-driver --locked

export TDP_APP_BIN=$root/target/debug/tdp-bulk-downloader
export TDP_CLI_BIN=$root/target/debug/tdp-download
export E2E_SCREENSHOTS=${E2E_SCREENSHOTS:-$root/target/e2e-screenshots}

work=$(mktemp -d)
export HOME=$work/home
mkdir -p "$HOME/Downloads"
Xvfb -displayfd 3 -screen 0 1280x900x24 -nolisten tcp 3>"$work/display" 2>/dev/null &
xvfb=$!
trap 'kill $xvfb 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -s "$work/display" ] && break; sleep 0.1; done
export DISPLAY=":$(cat "$work/display")"

dbus-run-session -- bash -c '
  echo -n e2e-keyring-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  cargo test -p tdp-e2e -- --test-threads=1 ${E2E_FILTER:-}
'
