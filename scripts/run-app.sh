#!/usr/bin/env bash
# Builds and opens Postback Desk on the embedded default: the built-in sandbox networks and a
# local SQLite file (in $POSTBACK_DATA_DIR, else ~/.local/share/postback-desk).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
(cd ui && npm run build)
exec cargo run -p postback-desk
