#!/usr/bin/env bash
# The window's pure modules under `node --test` (tests/ui): the event reducer as the window
# runs it, no browser. Prints "N passed, N failed" for the test command's stage table.
set -uo pipefail
cd "$(dirname "$0")/.."
command -v node >/dev/null || { echo "node is not installed (scripts/setup-debian.sh installs nodejs)"; echo "0 passed, 1 failed"; exit 1; }
out=$(node --test tests/ui/*.test.mjs 2>&1)
rc=$?
echo "$out"
pass=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' <<<"$out")
fail=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' <<<"$out")
echo "${pass:-0} passed, ${fail:-1} failed"
if [ "${pass:-0}" -eq 0 ]; then exit 1; fi
exit "$rc"
