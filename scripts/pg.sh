#!/usr/bin/env bash
# A private PostgreSQL cluster on loopback for the tests and the benchmarks.
#
#   scripts/pg.sh ensure    # initialise (once) and start; prints the connection URL
#   scripts/pg.sh url       # the connection URL
#   scripts/pg.sh ca        # the CA file that verifies the server's TLS certificate
#   scripts/pg.sh sql "SELECT ..."   # one statement, unaligned output
#   scripts/pg.sh stop | start | restart [fast|immediate] | status
#
# Data lives in $SIGNET_PG_DIR (default /tmp/signet-pg-<uid>), the server listens on
# 127.0.0.1:$SIGNET_PG_PORT (default 55432) and on a socket in that directory, with trust
# authentication for the `signet` role on loopback only: a throw-away cluster for tests, never
# a production set-up. As root the server runs as the `postgres` user (initdb refuses root).
# The binaries come from PATH or from Debian's /usr/lib/postgresql/<version>/bin.
set -euo pipefail

DIR="${SIGNET_PG_DIR:-/tmp/signet-pg-$(id -u)}"
PORT="${SIGNET_PG_PORT:-55432}"
URL="postgres://signet@127.0.0.1:$PORT/postgres?sslmode=disable"

bin() {
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return
  fi
  local d
  d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
  if [ -z "$d" ] || [ ! -x "$d/pg_ctl" ]; then
    echo "PostgreSQL server binaries not found: apt-get install postgresql" >&2
    exit 1
  fi
  echo "$d"
}

BIN="$(bin)"

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# TLS: a throw-away CA ($DIR/ca.pem) and a server certificate for 127.0.0.1/localhost, so the
# tests can connect with sslmode=verify-full. The role `signet_tls` may log in over TLS only
# (pg_hba rejects it in clear), which proves a connection was encrypted.
tls() {
  [ -f "$DIR/data/server.crt" ] && return
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
    -subj "/CN=signet test PostgreSQL CA" -keyout "$DIR/ca.key" -out "$DIR/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$DIR/server.key" -out "$DIR/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > "$DIR/san.ext"
  openssl x509 -req -in "$DIR/server.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca.key" -CAcreateserial \
    -days 3650 -extfile "$DIR/san.ext" -out "$DIR/server.crt" 2>/dev/null
  install -m 0600 "$DIR/server.key" "$DIR/data/server.key"
  install -m 0644 "$DIR/server.crt" "$DIR/data/server.crt"
  chmod 0644 "$DIR/ca.pem"
  echo "ssl = on" >>"$DIR/data/postgresql.conf"
  { echo "hostnossl all signet_tls 127.0.0.1/32 reject"; echo "hostssl all signet_tls 127.0.0.1/32 trust"; cat "$DIR/data/pg_hba.conf"; } \
    >"$DIR/pg_hba.new"
  cp "$DIR/pg_hba.new" "$DIR/data/pg_hba.conf"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$DIR/data/server.key" "$DIR/data/server.crt" "$DIR/data/pg_hba.conf"
  fi
}

init() {
  if [ -f "$DIR/data/PG_VERSION" ]; then
    return
  fi
  mkdir -p "$DIR"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$DIR"
  fi
  as_owner "$BIN/initdb" -D "$DIR/data" -U signet --auth=trust -E UTF8 --locale=C >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; exit 1; }
  cat >>"$DIR/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
max_connections = 400
shared_buffers = 128MB
log_min_messages = warning
EOF
  tls
}

running() {
  as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

start() {
  init
  if ! running; then
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null \
      || { tail -20 "$DIR/server.log" >&2; exit 1; }
    local psql="$BIN/psql"
    [ -x "$psql" ] || psql="$(command -v psql)"
    "$psql" -q -h 127.0.0.1 -p "$PORT" -U signet -d postgres -c \
      "DO \$\$ BEGIN CREATE ROLE signet_tls LOGIN SUPERUSER; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" >/dev/null
  fi
}

case "${1:-ensure}" in
  ensure) start; echo "$URL" ;;
  url) echo "$URL" ;;
  ca) echo "$DIR/ca.pem" ;;
  sql)
    psql="$BIN/psql"
    [ -x "$psql" ] || psql="$(command -v psql)"
    "$psql" "$URL" -tAc "$2" ;;
  start) start ;;
  stop) running && as_owner "$BIN/pg_ctl" -D "$DIR/data" -m "${2:-fast}" -w stop >/dev/null || true ;;
  restart) as_owner "$BIN/pg_ctl" -D "$DIR/data" -m "${2:-fast}" -w stop >/dev/null || true; start ;;
  status) running && echo running || { echo stopped; exit 3; } ;;
  *) echo "usage: $0 ensure|url|start|stop|restart [fast|immediate]|status" >&2; exit 2 ;;
esac
