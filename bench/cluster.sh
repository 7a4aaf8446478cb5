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

. bench/find_bao.sh
PG_URL="${SIGNET_TEST_PG_URL:-$(scripts/pg.sh ensure)}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
echo "==> cargo build --release --bin signet --bin signet-bench" >&2
cargo build --release --bin signet --bin signet-bench
exec python3 bench/cluster.py --signet "$TARGET/release/signet" --bench "$TARGET/release/signet-bench" \
  --bao "$BAO" --pg-url "$PG_URL" "$@"
