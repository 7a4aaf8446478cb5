#!/usr/bin/env bash
# Where signet's time goes for one workload: starts a release signet on SQLite (seal "file",
# as bench/compare.sh does), configures it with `signet-bench setup`, drives the workload with
# signet-bench and samples the server with `perf record -g` meanwhile, then prints the hottest
# functions and a breakdown by area (crypto, storage, HTTP, JSON, audit, runtime, kernel).
#
#   bench/profile.sh [WORKLOAD] [CLIENTS] [SECONDS] [extra signet-bench args...]
#   bench/profile.sh issue 64 10
#   bench/profile.sh issue 64 10 --role ec-nostore
#
# Needs perf (apt-get install linux-perf). The perf data stays in $WORK/perf.data for
# `perf report -i ...` or a flame graph (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
WORKLOAD="${1:-issue}"; CLIENTS="${2:-64}"; SECONDS_="${3:-10}"; shift $(( $# < 3 ? $# : 3 )) || true
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --bin signet --bin signet-bench >&2
WORK="$(mktemp -d /tmp/signet-profile.XXXXXX)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
head -c 32 /dev/urandom | base64 > "$WORK/unseal.key"
cat > "$WORK/server.hcl" <<HCL
storage "sqlite" { path = "$WORK/signet.db" }
listener "tcp" { address = "127.0.0.1:$PORT" tls_disable = true }
seal "file" { path = "$WORK/unseal.key" }
HCL
"$TARGET/release/signet" server -config="$WORK/server.hcl" > "$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
ADDR="http://127.0.0.1:$PORT"
until curl -s -o /dev/null "$ADDR/v1/sys/health"; do sleep 0.05; done
TOKEN=$(curl -s -X PUT -d '{"secret_shares":1,"secret_threshold":1}' "$ADDR/v1/sys/init" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
until [ "$(curl -s -o /dev/null -w '%{http_code}' "$ADDR/v1/sys/health")" = 200 ]; do sleep 0.05; done
"$TARGET/release/signet-bench" setup --addr "$ADDR" --token "$TOKEN" > /dev/null
"$TARGET/release/signet-bench" run "$WORKLOAD" --addr "$ADDR" --token "$TOKEN" -c "$CLIENTS" -d "${SECONDS_}s" --quiet "$@" &
BENCH=$!
sleep 1
perf record -g -F 999 -p "$PID" -o "$WORK/perf.data" -- sleep $(( SECONDS_ > 3 ? SECONDS_ - 2 : 1 )) 2> /dev/null
wait $BENCH
echo "== hottest functions (self time) =="
perf report -i "$WORK/perf.data" --no-children --sort symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | cut -c1-110 | head -30 || true
echo "== by area (self time) =="
perf report -i "$WORK/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null | grep -E '^ +[0-9]' | python3 "$(dirname "$0")/profile_areas.py" || true
echo "== by thread =="
perf report -i "$WORK/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9]' || true
echo "perf data: $WORK/perf.data"
