#!/usr/bin/env bash
# The installer as a user meets it: build the .deb, install it with apt-get (so its declared
# dependencies resolve), start the app from its .desktop entry's Exec line under Xvfb and see
# its window, run the installed tdp-download --version, and remove the package cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if sudo -n true 2>/dev/null; then sudo=sudo; else
    echo "FAIL: installing a .deb needs root (or password-less sudo)"; exit 1
  fi
fi
scripts/build-deb.sh
deb=$(ls "$root"/target/release/bundle/deb/*.deb | head -n 1)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

$sudo apt-get install -y -qq "$deb" >/dev/null
trap '$sudo apt-get remove -y -qq tdp-bulk-downloader >/dev/null 2>&1 || true' EXIT

echo "== installed: $(dpkg-query -W -f='${Package} ${Version}' tdp-bulk-downloader)"
out=$(tdp-download --version)
echo "== tdp-download --version: $out"
[ "$out" = "tdp-download $version" ] || { echo "FAIL: expected version $version"; exit 1; }

desktop=$(dpkg -L tdp-bulk-downloader | grep '\.desktop$' | head -n 1)
exec_line=$(sed -n 's/^Exec=//p' "$desktop" | sed 's/ %[fFuUdDnNickvm]//g')
echo "== starting from $desktop: $exec_line"
grep -q '^Categories=.*Utility' "$desktop" || { echo "FAIL: no category in $desktop"; exit 1; }

work=$(mktemp -d)
Xvfb -displayfd 3 -screen 0 1280x900x24 -nolisten tcp 3>"$work/display" 2>/dev/null &
xvfb=$!
trap '$sudo apt-get remove -y -qq tdp-bulk-downloader >/dev/null 2>&1 || true; kill $xvfb 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -s "$work/display" ] && break; sleep 0.1; done
export DISPLAY=":$(cat "$work/display")"
mkdir -p "$work/home"
HOME=$work/home dbus-run-session -- bash -c "
  $exec_line >'$work/app.log' 2>&1 &
  app=\$!
  for _ in \$(seq 100); do
    xwininfo -root -tree 2>/dev/null | grep -q '\"TDP Bulk Downloader\"' && break
    sleep 0.2
  done
  sleep 2
  xwininfo -root -tree | grep '\"TDP Bulk Downloader\"' > '$work/window' || true
  import -window root '$root/target/deb-window.png' 2>/dev/null || true
  kill \$app
"
[ -s "$work/window" ] || { echo "FAIL: no window titled TDP Bulk Downloader"; cat "$work/app.log"; exit 1; }
echo "== window: $(sed 's/^ *//' "$work/window" | head -n 1)"

$sudo apt-get remove -y -qq tdp-bulk-downloader >/dev/null
if [ -e /usr/bin/tdp-download ] || [ -e /usr/bin/tdp-bulk-downloader ] || [ -e "$desktop" ]; then
  echo "FAIL: files left after removal"; exit 1
fi
echo "== removed cleanly"
echo "1 passed, 0 failed"
