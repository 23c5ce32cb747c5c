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
# A CA of its own and a server certificate it signs (rustls refuses a self-signed certificate
# as the server's own: "CA used as end entity").
tls="$dir/tls"
mkdir -p "$tls"
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' >"$tls/server.ext"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=Postback Desk test CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
  -keyout "$tls/ca.key" -out "$dir/ca.crt" >/dev/null 2>&1
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$tls/server.key" -out "$tls/server.csr" >/dev/null 2>&1
openssl x509 -req -in "$tls/server.csr" -CA "$dir/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial -days 2 \
  -extfile "$tls/server.ext" -out "$tls/server.crt" >/dev/null 2>&1
install -m 600 "$tls/server.key" "$dir/data/server.key"
install -m 644 "$tls/server.crt" "$dir/data/server.crt"
[ "$(id -u)" = 0 ] && chown postgres "$dir/data/server.key" "$dir/data/server.crt"
rm -rf "$tls"
chmod 644 "$dir/ca.crt"

# Throwaway data: no fsync (a killed worker is a process crash, which PostgreSQL survives
# without it) unless POSTBACK_PG_DURABLE=1 (benchmarks: commits synced as on a real server);
# enough connections for several workers and the test harness.
durability="-c fsync=off -c full_page_writes=off"
[ "${POSTBACK_PG_DURABLE:-0}" = 1 ] && durability=""
"${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start -o \
  "-p $port -k $dir -c listen_addresses=127.0.0.1 -c ssl=on $durability -c max_connections=200" \
  >/dev/null || { cat "$dir/server.log" >&2; exit 1; }
"$bin/createdb" -h 127.0.0.1 -p "$port" -U postback postback

export POSTBACK_TEST_DATABASE_URL="postgres://postback@127.0.0.1:$port/postback"
export POSTBACK_TEST_PG_CA="$dir/ca.crt"
status=0
"$@" || status=$?
exit $status
