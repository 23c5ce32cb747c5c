#!/usr/bin/env bash
# Runs a command inside a private D-Bus session with an unlocked GNOME Keyring: a real Secret
# Service for the keychain tests, isolated from the user's own keyring.
#   bash scripts/with-keyring.sh cargo test --workspace
set -euo pipefail
if [ -z "${POSTBACK_KEYRING_SESSION:-}" ]; then
    export POSTBACK_KEYRING_SESSION=1
    exec dbus-run-session -- bash "$0" "$@"
fi
# A throwaway home so the test keyring never touches a real one.
export XDG_DATA_HOME="$(mktemp -d)"
printf 'postback-test' | gnome-keyring-daemon --unlock --components=secrets >/dev/null
eval "$(gnome-keyring-daemon --start --components=secrets)"
export GNOME_KEYRING_CONTROL
exec "$@"
