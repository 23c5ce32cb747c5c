#!/usr/bin/env bash
# Installs everything Postback Desk needs on Debian 12, idempotently: system packages, the UI's
# npm packages (from the lock file) and, with --test, the WebDriver bridge for the window test.
set -euo pipefail
cd "$(dirname "$0")/.."

want_tests=false
[ "${1:-}" = "--test" ] && want_tests=true

packages=(libwebkit2gtk-4.1-dev librsvg2-dev build-essential pkg-config curl python3)
# The keychain tests need a real Secret Service: gnome-keyring in a private D-Bus session.
$want_tests && packages+=(webkit2gtk-driver xvfb xauth imagemagick gnome-keyring dbus-daemon)
# The PostgreSQL engine's suite runs against a throwaway cluster (scripts/with-postgres.sh).
$want_tests && packages+=(postgresql openssl)
# The worker's systemd unit is checked with systemd-analyze.
$want_tests && packages+=(systemd)
# The .deb's declared dependency beyond WebKitGTK: installed here so its install test needs no mirror.
$want_tests && packages+=(xdg-utils)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt: installing ${missing[*]}"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -q
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

for tool in cargo node npm; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (Rust via rustup, Node.js 20+ via apt)"; exit 1; }
done

if [ ! -d ui/node_modules ] || [ ui/package-lock.json -nt ui/node_modules/.package-lock.json ]; then
  echo "== npm ci (ui)"
  (cd ui && npm ci --no-audit --no-fund)
fi

if $want_tests && ! command -v tauri-driver >/dev/null; then
  echo "== cargo install tauri-driver"
  cargo install tauri-driver --version '^2' --locked
fi
