#!/usr/bin/env bash
# The test command: formatting and lints, the Rust test suites, then the black-box conformance
# suite against signet (on SQLite and as a node of a PostgreSQL cluster) AND a real OpenBao (the
# reference). Installs its Python tools (OpenBao's
# `bao`, pytest, hvac) into a venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

VENV="${SIGNET_VENV:-$PWD/.venv}"
STAMP="$VENV/.requirements.sha256"
WANT="$(sha256sum conformance/requirements.txt | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/bao" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
  echo "==> installing the conformance tools into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -r conformance/requirements.txt
  echo "$WANT" > "$STAMP"
fi
export PATH="$VENV/bin:$PATH"

# A private PostgreSQL on loopback (scripts/pg.sh) for the PostgreSQL storage tests, the
# signet-pg conformance target (a node of a three-node cluster) and the cluster fault tests.
if [ -z "${SIGNET_TEST_PG_URL:-}" ]; then
  echo "==> starting PostgreSQL (scripts/pg.sh)"
  SIGNET_TEST_PG_URL="$(scripts/pg.sh ensure)"
fi
export SIGNET_TEST_PG_URL

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cargo test"
cargo test --workspace
echo "==> conformance suite (OpenBao, signet on SQLite, signet on a PostgreSQL cluster)"
cargo build --bin signet
SIGNET_BIN="$PWD/target/debug/signet" "$VENV/bin/python" -m pytest conformance -q -p no:cacheprovider
echo "==> benchmark smoke run: signet-bench against signet and OpenBao (no timing is judged)"
SIGNET_PROFILE=debug BAO_BIN="$VENV/bin/bao" bench/compare.sh --smoke
