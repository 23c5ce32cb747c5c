#!/usr/bin/env bash
# Regenerates the screenshots in docs/ from the real window under Xvfb, through the end-to-end
# tests (each saves its page when SCREENSHOT_DIR is set).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
(cd ui && npm run build)
cargo build -p postback -p postback-desk
# With compositing: WebKitWebDriver's screenshot of the Goals page never returned without it (the
# app draws without compositing by default, src-tauri/src/rendering.rs); the picture is the same.
POSTBACK_GPU_COMPOSITING=1 SCREENSHOT_DIR="$PWD/docs" xvfb-run -a --server-args="-screen 0 1280x900x24" bash scripts/with-postgres.sh bash scripts/with-keyring.sh \
  node --test --test-concurrency=1 tests/e2e/
ls -1 docs/*.png
