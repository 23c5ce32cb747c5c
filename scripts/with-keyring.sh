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
# The daemon creates the login keyring in the background: wait until it is the default
# collection and unlocked, or the first client gets "prompt dismissed".
for _ in $(seq 1 50); do
    collection=$(dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
        org.freedesktop.Secret.Service.ReadAlias string:default 2>/dev/null | sed -n 's/.*object path "\(.*\)"/\1/p')
    if [ -n "$collection" ] && [ "$collection" != "/" ]; then
        locked=$(dbus-send --session --print-reply --dest=org.freedesktop.secrets "$collection" \
            org.freedesktop.DBus.Properties.Get string:org.freedesktop.Secret.Collection string:Locked 2>/dev/null | grep -c 'boolean false' || true)
        [ "$locked" = "1" ] && break
    fi
    sleep 0.1
done
exec "$@"
