#!/usr/bin/env bash
# Every test: formatting, lints, the engine's unit and integration tests against the
# simulator, the same for Windows under Wine, the desktop app's end-to-end tests, the .deb
# install/start/remove test. Sets up
# what it needs on Debian/Ubuntu first. Ends with a table of each stage's wall time and one
# line "N passed, N failed" that counts the tests of every stage.
#
# Build plan (why it is fast; figures in docs/ci.md): the workspace is built once, in the
# release profile, by scripts/build-release.sh, and every later stage reuses that build. Only
# clippy's check build cannot share it; it runs in the release profile too, so that the proc
# macros and build scripts it compiles are the very ones the release build reuses.
# Caches: none outside the clone. A second run of the same clone reuses its target/ folder.
set -uo pipefail
cd "$(dirname "$0")/.."
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

log=$(mktemp -d)
trap 'rm -rf "$log"' EXIT
names=() secs=() passed=() failed=() states=()
total_pass=0 total_fail=0
start_all=$(date +%s)

# stage NAME COMMAND...: runs it with its output shown and kept, records its time and the
# tests it ran (cargo's "test result:" lines; a script may print its own "N passed, N failed").
stage() {
  local name=$1; shift
  echo "== $name"
  local t0 p=0 f=0 rc
  t0=$(date +%s)
  "$@" 2>&1 | tee "$log/out"
  rc=${PIPESTATUS[0]}
  while read -r a b; do p=$((p + a)); f=$((f + b)); done < <(
    sed -n -e 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' \
      -e 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$log/out")
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  names+=("$name"); secs+=($(($(date +%s) - t0))); passed+=("$p"); failed+=("$f")
  states+=("$([ "$rc" -eq 0 ] && echo ok || echo FAILED)")
  total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
  return "$rc"
}

report() {
  echo
  echo "== stage times (wall clock, seconds)"
  printf '%-34s %8s %8s %8s  %s\n' stage seconds passed failed result
  local i
  for i in "${!names[@]}"; do
    printf '%-34s %8s %8s %8s  %s\n' "${names[$i]}" "${secs[$i]}" "${passed[$i]}" "${failed[$i]}" "${states[$i]}"
  done
  printf '%-34s %8s\n' total $(($(date +%s) - start_all))
  echo "$total_pass passed, $total_fail failed"
}

run_all() {
  stage "system packages and toolchain" scripts/setup-debian.sh all || return 1
  [ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
  stage "cargo fmt --check" cargo fmt --all -- --check || return 1
  stage "clippy (check build)" cargo clippy --release --locked --workspace --all-targets -- -D warnings || return 1
  stage "release build (whole workspace)" scripts/build-release.sh || return 1
  # Same selection and profile as the build, so nothing is compiled again; the E2E tests are
  # skipped here by name and run in their own stage.
  # --include-ignored: the soak test (a 45 s network outage) runs here, not in plain `cargo test`.
  stage "engine tests" cargo test --release --locked --workspace --lib --bins --tests -- --include-ignored --skip e2e_window:: || return 1
  # Windows: its own build (Debian's rustc-web, MinGW, build-std) in target/windows, the
  # tests under Wine, a download with tdp-download.exe, the app checked (docs/windows-macos.md).
  stage "windows: build, tests under Wine" scripts/windows/test.sh || return 1
  stage "window's reducer (node --test)" scripts/test-ui.sh || return 1
  stage "desktop app end-to-end tests" scripts/e2e.sh || return 1
  stage "installer: build, install, start, remove" scripts/test-deb.sh || return 1
}

run_all
rc=$?
report
exit "$rc"
