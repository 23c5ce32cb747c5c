#!/usr/bin/env bash
# Builds the app (debug, or the packaged release binary with --release) and measures its window
# under Xvfb with scripts/measure-window.mjs: web view CPU per page with the demo at 10 events/s,
# CPU per page visit, idle RSS, start to first page. Extra arguments go to the script (--json).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
export PATH="$HOME/.cargo/bin:$PATH"
if [ "${1:-}" = "--release" ]; then
  shift
  # The binary the packages ship (Tauri's release build, the UI embedded).
  ui/node_modules/.bin/tauri build --ci --no-bundle
  export POSTBACK_APP=target/release/postback-desk
else
  (cd ui && npm run build)
  cargo build -p postback-desk
fi
xvfb-run -a --server-args="-screen 0 1280x900x24" bash scripts/with-keyring.sh node scripts/measure-window.mjs "$@"
