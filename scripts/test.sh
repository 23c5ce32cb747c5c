#!/usr/bin/env bash
# Every check and test of the project, as CI runs it: formatting, lints, Rust tests (engine,
# store on real SQLite, Tauri commands), contract cases through the CLI, UI type check and unit
# tests, the end-to-end test in the real window under Xvfb, and the packages, installed and run.
# Prints one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
step() { echo; echo "== $*"; }

step "setup"
scripts/setup.sh --test
export PATH="$HOME/.cargo/bin:$PATH"

# The app's default ports (sandbox 47811, ingest 47820) lie inside Linux's ephemeral range: one
# run's window found 47820 held by some test connection's local end and had no ingest. Keep
# them out of the ephemeral pool where this machine lets us (root, writable sysctl).
reserved=/proc/sys/net/ipv4/ip_local_reserved_ports
if [ -w "$reserved" ]; then
  current=$(cat "$reserved")
  echo "${current:+$current,}47811,47820" >"$reserved" 2>/dev/null || true
fi

step "ui build (embedded into the app binary)"
(cd ui && npm run build)

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "build the tests (outside the keyring session: a long build inside it saw the keyring locked)"
cargo test --workspace --no-fail-fast --no-run

step "cargo test --workspace (a private D-Bus session with GNOME Keyring: a real Secret Service; a throwaway PostgreSQL cluster)"
bash scripts/with-postgres.sh bash scripts/with-keyring.sh cargo test --workspace --no-fail-fast 2>&1 | tee "$logs/cargo.log"

step "contract cases through the CLI (shared/contract/check.py)"
# The shared checker and cases when shared/ stands beside the repo (CI); the copies otherwise.
contract=tests/conformance
[ -f ../shared/contract/check.py ] && contract=../shared/contract
python3 "$contract/check.py" --bin target/debug/postback "$contract/cases" | tee "$logs/contract.log"

step "ui type check and unit tests"
(cd ui && npm run check && NO_COLOR=1 npx vitest run) 2>&1 | sed "s/\x1b\[[0-9;]*m//g" | tee "$logs/vitest.log"

step "build the app binary"
cargo build -p postback-desk

step "end to end in the real window (Xvfb + tauri-driver + WebKitWebDriver; a throwaway PostgreSQL cluster for the team workspace)"
xvfb-run -a --server-args="-screen 0 1280x800x24" bash scripts/with-postgres.sh bash scripts/with-keyring.sh \
  node --test --test-concurrency=1 --test-reporter=tap tests/e2e/ 2>&1 | tee "$logs/e2e.log"

step "packages (.deb, .rpm) with the Tauri bundler; the .deb installed with apt-get, its app run under Xvfb, removed"
bash scripts/package.sh
deb=$(ls -t target/release/bundle/deb/*.deb | head -1)
POSTBACK_DEB="$deb" xvfb-run -a --server-args="-screen 0 1280x800x24" bash scripts/with-keyring.sh \
  node --test --test-concurrency=1 --test-reporter=tap tests/package/ 2>&1 | tee "$logs/package.log"

passed=0
failed=0
add() { passed=$((passed + ${1:-0})); failed=$((failed + ${2:-0})); }
while read -r p f; do add "$p" "$f"; done < <(sed -n 's/^test result: [a-zA-Z]*\. \([0-9]*\) passed; \([0-9]*\) failed.*/\1 \2/p' "$logs/cargo.log")
read -r p f < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' "$logs/contract.log" | tail -1) && add "$p" "$f"
p=$(sed -n 's/.*Tests *\([0-9]*\) passed.*/\1/p' "$logs/vitest.log" | tail -1); add "${p:-0}" 0
for tap in "$logs/e2e.log" "$logs/package.log"; do
  p=$(sed -n 's/^# pass \([0-9]*\)/\1/p' "$tap" | tail -1); f=$(sed -n 's/^# fail \([0-9]*\)/\1/p' "$tap" | tail -1); add "${p:-0}" "${f:-0}"
done
echo
echo "total: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
