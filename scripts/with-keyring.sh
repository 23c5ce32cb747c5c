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
keyrings="$XDG_DATA_HOME/keyrings"
mkdir -m 700 "$keyrings"
# The default collection is a login keyring written beforehand in gnome-keyring's unencrypted
# text format: the daemon opens it without a password or a prompt however it is started (here,
# or by D-Bus activation if it ever restarts). Letting `--unlock` create it raced the first
# client, which then found no default collection at all (CI: every keychain test "Locked").
printf '[keyring]\ndisplay-name=Login\nctime=0\nmtime=0\nlock-on-idle=false\nlock-after=false\n' >"$keyrings/login.keyring"
printf 'login' >"$keyrings/default"
chmod 600 "$keyrings/login.keyring" "$keyrings/default"
# Should the daemon die mid-run, D-Bus activation restarts it with the bus's environment: give
# the bus this throwaway home, so the restarted daemon opens the same unlocked keyring (two
# full runs saw the daemon vanish mid-suite; every later keychain test then found it "Locked").
dbus-update-activation-environment XDG_DATA_HOME
eval "$(gnome-keyring-daemon --start --components=secrets)"
export GNOME_KEYRING_CONTROL

secrets() { dbus-send --session --print-reply --dest=org.freedesktop.secrets "$@" 2>&1; }
login=/org/freedesktop/secrets/collection/login
for _ in $(seq 1 100); do
    secrets /org/freedesktop/secrets org.freedesktop.Secret.Service.Unlock "array:objpath:$login" >/dev/null || true
    alias=$(secrets /org/freedesktop/secrets org.freedesktop.Secret.Service.ReadAlias string:default | sed -n 's/.*object path "\(.*\)"/\1/p')
    locked=$(secrets "$login" org.freedesktop.DBus.Properties.Get string:org.freedesktop.Secret.Collection string:Locked | sed -n 's/.*boolean \(.*\)/\1/p')
    if [ "$alias" = "$login" ] && [ "$locked" = "false" ]; then
        exec "$@"
    fi
    sleep 0.1
done
echo "error: the test keyring did not come up unlocked (default alias '${alias:-none}', locked '${locked:-unknown}')" >&2
ps -ef | grep -i '[k]eyring' >&2 || true
exit 1
