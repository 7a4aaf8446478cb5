#!/usr/bin/env bash
# A private PostgreSQL cluster on loopback for the tests and the benchmarks.
#
#   scripts/pg.sh ensure    # initialise (once) and start; prints the connection URL
#   scripts/pg.sh url       # the connection URL
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
}

running() {
  as_owner "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1
}

start() {
  init
  if ! running; then
    as_owner "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 start >/dev/null \
      || { tail -20 "$DIR/server.log" >&2; exit 1; }
  fi
}

case "${1:-ensure}" in
  ensure) start; echo "$URL" ;;
  url) echo "$URL" ;;
  start) start ;;
  stop) running && as_owner "$BIN/pg_ctl" -D "$DIR/data" -m "${2:-fast}" -w stop >/dev/null || true ;;
  restart) as_owner "$BIN/pg_ctl" -D "$DIR/data" -m "${2:-fast}" -w stop >/dev/null || true; start ;;
  status) running && echo running || { echo stopped; exit 3; } ;;
  *) echo "usage: $0 ensure|url|start|stop|restart [fast|immediate]|status" >&2; exit 2 ;;
esac
