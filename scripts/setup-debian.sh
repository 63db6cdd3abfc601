#!/usr/bin/env bash
# Installs what building and testing need on Debian/Ubuntu (idempotent: apt runs only when a
# package is missing). Usage: scripts/setup-debian.sh [engine|app|e2e|all]
set -euo pipefail

what=${1:-all}
# ca-certificates, mount and util-linux (unshare): the corporate-network tests install a CA
# in a private copy of the OS store.
engine=(build-essential pkg-config curl libdbus-1-dev libssl-dev ca-certificates mount util-linux dbus)
app=(libwebkit2gtk-4.1-dev libxdo-dev libayatana-appindicator3-dev librsvg2-dev file)
# nodejs: `node --test` runs the window's reducer (tests/ui).
e2e=(nodejs xvfb xauth x11-utils webkit2gtk-driver dbus dbus-x11 gnome-keyring libsecret-tools imagemagick time)
case "$what" in
  engine) want=("${engine[@]}") ;;
  app) want=("${engine[@]}" "${app[@]}") ;;
  e2e|all) want=("${engine[@]}" "${app[@]}" "${e2e[@]}") ;;
  *) echo "usage: $0 [engine|app|e2e|all]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  echo "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "installing the Rust toolchain (rustup)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal -c clippy,rustfmt
fi
