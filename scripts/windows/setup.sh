#!/usr/bin/env bash
# Sets up the Windows stage on Debian 12 (idempotent): Debian's rustc-web with its std
# sources, the MinGW-w64 linker, Wine, and a Wine prefix of the stage's own that can run
# programs built with Rust's std.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/env.sh"

want=(rustc-web cargo-web rust-web-src mingw-w64 wine64 wine)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -d /usr/lib/rustlib/src/rust/library ] || {
  echo "rust-web-src did not install the std sources build-std needs (/usr/lib/rustlib/src/rust)" >&2
  exit 1
}

mkdir -p "$CARGO_TARGET_DIR"
dll="$CARGO_TARGET_DIR/bcryptprimitives.dll"
if [ ! -f "$dll" ] || [ "$here/processprng.c" -nt "$dll" ]; then
  x86_64-w64-mingw32-gcc -shared -O2 -o "$dll" "$here/processprng.c" "$here/processprng.def" -lbcrypt
fi
sys32="$WINEPREFIX/drive_c/windows/system32"
if [ ! -d "$sys32" ]; then
  echo "creating the Wine prefix $WINEPREFIX (about a minute the first time)"
  wineboot --init >/dev/null 2>&1 || true
  wineserver --wait || true
fi
[ -d "$sys32" ] || { echo "wineboot did not create $sys32" >&2; exit 1; }
cp "$dll" "$sys32/bcryptprimitives.dll"
