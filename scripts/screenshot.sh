#!/usr/bin/env bash
# Regenerates docs/screenshot.png from the real window under Xvfb (through the end-to-end test).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
(cd ui && npm run build)
cargo build -p postback-desk
SCREENSHOT_OUT="$PWD/docs/screenshot.png" xvfb-run -a --server-args="-screen 0 1280x800x24" bash scripts/with-keyring.sh \
  node --test tests/e2e/
echo "wrote docs/screenshot.png"
