#!/usr/bin/env bash
# End-to-end tests of the desktop app's real window: uses the shared release build
# (scripts/build-release.sh), starts Xvfb, a D-Bus session with an unlocked gnome-keyring in a
# fresh HOME, and drives the window through tauri-driver + WebKitWebDriver. Screenshots land
# in target/e2e-screenshots/. E2E_FILTER narrows the tests by name.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/setup-debian.sh e2e
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_HOME=${CARGO_HOME:-$HOME/.cargo}
export RUSTUP_HOME=${RUSTUP_HOME:-$HOME/.rustup}
export PATH="$CARGO_HOME/bin:$PATH"

scripts/build-release.sh
command -v tauri-driver >/dev/null 2>&1 || cargo install tauri-driver --locked

# axe-core for the accessibility audit: a pinned copy from the npm registry, checked.
axe_version=4.10.3
axe_sha256=0f2b4d7dcdf7d1219df8d1959ad68e565f51d14c3f0d88bb71cd59abeb956292
tools=$root/target/e2e-tools
export AXE_JS=$tools/axe-core-$axe_version.min.js
if [ ! -s "$AXE_JS" ]; then
  if ! command -v npm >/dev/null 2>&1; then
    sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null
  fi
  mkdir -p "$tools"
  (cd "$tools" && npm pack --silent "axe-core@$axe_version" >/dev/null)
  echo "$axe_sha256  $tools/axe-core-$axe_version.tgz" | sha256sum -c --quiet
  tar -xzf "$tools/axe-core-$axe_version.tgz" -C "$tools" package/axe.min.js
  mv "$tools/package/axe.min.js" "$AXE_JS"
  rmdir "$tools/package"
fi

export TDP_APP_BIN=$root/target/release/tdp-bulk-downloader
export TDP_CLI_BIN=$root/target/release/tdp-download
export E2E_SCREENSHOTS=${E2E_SCREENSHOTS:-$root/target/e2e-screenshots}

work=$(mktemp -d)
export HOME=$work/home
mkdir -p "$HOME/Downloads"
Xvfb -displayfd 3 -screen 0 1280x900x24 -nolisten tcp 3>"$work/display" 2>/dev/null &
xvfb=$!
trap 'kill $xvfb 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -s "$work/display" ] && break; sleep 0.1; done
export DISPLAY=":$(cat "$work/display")"

# The same cargo selection as scripts/build-release.sh (so nothing is rebuilt); the name
# filter picks the E2E tests, one at a time (each owns the screen and the keyring).
e2e() {
  dbus-run-session -- bash -c '
    echo -n e2e-keyring-password | gnome-keyring-daemon --unlock --components=secrets >/dev/null
    cargo test --release --locked --workspace --lib --bins --tests -- --test-threads=1 --nocapture "$@"
  ' e2e "$@"
}
log=$work/e2e.log
set +e
e2e "e2e_window::${E2E_FILTER:-}" >"$log" 2>&1
rc=$?
set -e
if [ "$rc" -eq 0 ] || ! grep -q 'page crash or hang' "$log"; then
  cat "$log"
  exit "$rc"
fi
# WebKit's web process crashed or hung under the test (an environment failure, seen about once
# in ten runs on 2 cores, not one of our assertions): the failed tests run once more, and the
# counts say so. Any other failure fails at once.
count() { sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$1" |
  awk '{p+=$1; f+=$2} END {print p+0, f+0}'; }
sed 's/^test result:/(first run) test result:/' "$log"
read -r passed first_failed < <(count "$log")
failed_tests=$(awk '/^failures:$/ {f=1; next} f && /^    e2e_window::/ {print $1}' "$log" | sort -u)
if [ -z "$failed_tests" ] || [ "$(echo "$failed_tests" | wc -l)" -ne "$first_failed" ]; then
  exit "$rc"
fi
failed=0
for t in $failed_tests; do
  echo "== WebKit's page crashed or hung: running $t once more"
  set +e
  e2e --exact "$t" >"$log.again" 2>&1
  set -e
  sed 's/^test result:/(again) test result:/' "$log.again"
  read -r p f < <(count "$log.again")
  passed=$((passed + p))
  failed=$((failed + f))
  [ "$p" -gt 0 ] || [ "$f" -gt 0 ] || failed=$((failed + 1))
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
