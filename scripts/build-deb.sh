#!/usr/bin/env bash
# Builds the Linux installer: target/release/bundle/deb/*.deb with the app, the tdp-download
# CLI, a .desktop entry and icons, from the shared release build (scripts/build-release.sh).
# Uses the Tauri CLI from the npm registry (prebuilt), run on src-tauri/ (whose
# tauri.conf.json links to the one at the repository root).
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
# The package carries the app and the CLI from the shared release build; `tauri bundle` packs
# them without building anything (`tauri build` would run its own cargo build on a narrower
# package selection, which can unify features differently and rebuild the tree).
scripts/build-release.sh
rm -f target/release/bundle/deb/*.deb
(cd src-tauri && "$tools/node_modules/.bin/tauri" bundle --bundles deb)
# The bundler names the file after the product ("TDP Bulk Downloader_..."); use the package name.
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
for f in target/release/bundle/deb/*.deb; do
  mv "$f" "target/release/bundle/deb/tdp-bulk-downloader_${version}_amd64.deb"
done
ls target/release/bundle/deb/*.deb
