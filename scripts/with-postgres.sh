#!/usr/bin/env bash
# Runs a command beside a throwaway PostgreSQL cluster from Debian's package: initdb into a
# temporary directory, its own loopback port and socket directory, TLS on with a self-signed
# certificate for 127.0.0.1 / localhost; stopped and removed when the command ends.
#   bash scripts/with-postgres.sh cargo test --test store
# The command sees:
#   POSTBACK_TEST_DATABASE_URL  postgres://postback@127.0.0.1:PORT/postback
#   POSTBACK_TEST_PG_CA         the certificate, for sslmode=verify-full&sslrootcert=…
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "error: PostgreSQL is not installed (scripts/setup.sh --test installs it)" >&2; exit 1; }

dir=$(mktemp -d /tmp/postback-pg.XXXXXX)
chmod 755 "$dir"
# initdb refuses to run as root: the cluster belongs to the postgres user then.
as_owner=()
if [ "$(id -u)" = 0 ]; then
  chown postgres "$dir"
  as_owner=(runuser -u postgres --)
fi
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

stop() {
  "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT

"${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U postback --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
  || { cat "$dir/initdb.log" >&2; exit 1; }
"${as_owner[@]}" openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
  -keyout "$dir/data/server.key" -out "$dir/data/server.crt" >/dev/null 2>&1
chmod 600 "$dir/data/server.key"
cp "$dir/data/server.crt" "$dir/ca.crt" && chmod 644 "$dir/ca.crt"

# Throwaway data: no fsync (a killed worker is a process crash, which PostgreSQL survives
# without it); enough connections for several workers and the test harness.
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start -o \
  "-p $port -k $dir -c listen_addresses=127.0.0.1 -c ssl=on -c fsync=off -c full_page_writes=off -c max_connections=200" \
  >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
"$bin/createdb" -h 127.0.0.1 -p "$port" -U postback postback

export POSTBACK_TEST_DATABASE_URL="postgres://postback@127.0.0.1:$port/postback"
export POSTBACK_TEST_PG_CA="$dir/ca.crt"
status=0
"$@" || status=$?
exit $status
