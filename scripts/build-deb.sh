#!/usr/bin/env bash
# Builds the Linux installer: target/release/bundle/deb/*.deb with the app, the tdp-download
# CLI, a .desktop entry and icons. Uses the Tauri CLI from the npm registry (prebuilt), run on
# src-tauri/ (whose tauri.conf.json links to the one at the repository root).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
scripts/setup-debian.sh app
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if ! command -v npm >/dev/null 2>&1; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
fi
tools=$root/target/tauri-cli
[ -x "$tools/node_modules/.bin/tauri" ] ||
  npm install --silent --no-save --no-audit --no-fund --prefix "$tools" @tauri-apps/cli@2 >/dev/null
# The package carries the CLI too: build it first (tauri.conf.json lists it under deb files).
cargo build --release -p tdp-bulk-downloader --bin tdp-download
rm -f target/release/bundle/deb/*.deb
(cd src-tauri && "$tools/node_modules/.bin/tauri" build --bundles deb)
# The bundler names the file after the product ("TDP Bulk Downloader_..."); use the package name.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
for f in target/release/bundle/deb/*.deb; do
  mv "$f" "target/release/bundle/deb/tdp-bulk-downloader_${version}_amd64.deb"
done
ls target/release/bundle/deb/*.deb
