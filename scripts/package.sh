#!/usr/bin/env bash
# Builds the installable packages with the Tauri bundler: on Linux a .deb and an .rpm, each with
# the app (/usr/bin/postback-desk, its desktop entry and icons) and the `postback` CLI
# (/usr/bin/postback). AppImage is left out: its bundler downloads tools at build time.
# On macOS and Windows the same command would name dmg / msi (see README "Install").
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
# The CLI first: the bundle configuration copies target/release/postback into both packages.
cargo build --release --locked -p postback --bin postback
ui/node_modules/.bin/tauri build --ci --bundles deb,rpm
ls -l target/release/bundle/deb/*.deb target/release/bundle/rpm/*.rpm
