#!/usr/bin/env bash
# Inventory and revocation at scale, on signet with SQLite on local disk (or, with
# STORAGE=postgresql, on a fresh table of the PostgreSQL at $SIGNET_TEST_PG_URL, default
# scripts/pg.sh's private cluster).
#
#   bench/scale.sh [CERTS] [REVOKE]     (defaults: 100000 certificates, 20000 revoked)
#
# Fills the inventory through the real issuance path (POST pki/issue/ec, wrk with 64
# connections, unique common names so the name index has CERTS entries), revokes REVOKE of
# them (wrk), then times single operations with curl (median of 15): revoking one more
# certificate, certs/search by exact name, by role, by expiry window, fetching the rebuilt CRL,
# and an OCSP query. Prints a markdown table. Needs wrk, curl, openssl and a release build
# (cargo build --release --bin signet). The load generator shares the machine's cores.
set -euo pipefail
CERTS="${1:-100000}"
REVOKE="${2:-20000}"
cd "$(dirname "$0")/.."
BIN="$PWD/target/release/signet"
[ -x "$BIN" ] || { echo "build first: cargo build --release --bin signet" >&2; exit 1; }
W="$(mktemp -d /tmp/signet-scale.XXXXXX)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
ADDR="http://127.0.0.1:$PORT"
head -c 32 /dev/urandom | base64 > "$W/unseal.key"
STORAGE="${STORAGE:-sqlite}"
if [ "$STORAGE" = postgresql ]; then
  PG_URL="${SIGNET_TEST_PG_URL:-$(scripts/pg.sh ensure)}"
  PG_TABLE="scale_$(date +%s)"
  STANZA="storage \"postgresql\" { connection_url = \"$PG_URL\" table = \"$PG_TABLE\" }"
else
  STANZA="storage \"sqlite\" { path = \"$W/signet.db\" }"
fi
cat > "$W/conf.hcl" <<EOF
$STANZA
listener "tcp" { address = "127.0.0.1:$PORT" tls_disable = true }
seal "file" { path = "$W/unseal.key" }
EOF
"$BIN" server -config "$W/conf.hcl" > "$W/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "$ADDR/v1/sys/health" && break; sleep 0.05; done
TOKEN=$(curl -s -X PUT "$ADDR/v1/sys/init" -d '{"secret_shares":1,"secret_threshold":1}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["root_token"])')
sleep 0.3
H="X-Vault-Token: $TOKEN"
curl -s -H "$H" -X POST "$ADDR/v1/sys/mounts/pki" -d '{"type":"pki","config":{"max_lease_ttl":"87600h"}}'
curl -s -H "$H" -X POST "$ADDR/v1/pki/root/generate/internal" -d '{"common_name":"Scale Root","key_type":"ec","ttl":"8760h"}' > /dev/null
curl -s -H "$H" -X POST "$ADDR/v1/pki/roles/ec" -d '{"allow_any_name":true,"key_type":"ec","max_ttl":"720h"}' > /dev/null

# 1. Fill, 2. revoke (bench/scale_lib.sh, shared with scale_openbao.sh).
. "$(dirname "$0")/scale_lib.sh"
fill "$CERTS"
filled=$FILLED; fill_s=$FILL_S
fill_rps=$(python3 -c "print(round($filled/$fill_s))")
echo "filled $filled certificates in ${fill_s}s" >&2

revoke_first "$REVOKE"
revoke_rps=$REVOKE_RPS
echo "revoked $REVOKE at $revoke_rps/s" >&2


# 3. Single operations.
one_revoke=$(revoke_one_more)
search_name=$(timeit -H "$H" -X POST "$ADDR/v1/pki/certs/search" -d '{"name":"svc-4242.fleet.example.com"}')
search_glob=$(timeit -H "$H" -X POST "$ADDR/v1/pki/certs/search" -d '{"name":"svc-99*.fleet.example.com","limit":100}')
search_role=$(timeit -H "$H" -X POST "$ADDR/v1/pki/certs/search" -d '{"role":"ec","limit":100}')
now=$(date +%s)
search_exp=$(timeit -H "$H" -X POST "$ADDR/v1/pki/certs/search" -d "{\"expires_after\":$((now+3600*100)),\"expires_before\":$((now+3600*101)),\"limit\":100}")
list_page=$(timeit -H "$H" -X LIST "$ADDR/v1/pki/certs?limit=1000")
crl_first=$( { curl -s -o "$W/crl.der" -w '%{time_total}\n' "$ADDR/v1/pki/crl"; } | median)
crl_cached=$(timeit "$ADDR/v1/pki/crl")
crl_entries=$(openssl crl -inform der -in "$W/crl.der" -noout -text | grep -c "Serial Number" || true)
ocsp=$(ocsp_time "$(tail -n 1 "$W/revoke.txt")")
rss=$(grep VmHWM /proc/$PID/status | awk '{print $2/1024 " MB"}')
if [ "$STORAGE" = postgresql ]; then
  db=$(psql "$PG_URL" -tAc "SELECT pg_size_pretty(pg_total_relation_size('$PG_TABLE'))")
else
  db=$(du -sh "$W" | cut -f1)
fi
kill $PID; wait $PID 2>/dev/null || true
start=$(date +%s.%N)
"$BIN" server -config "$W/conf.hcl" >> "$W/server.log" 2>&1 &
PID=$!
until curl -s -o /dev/null -w '%{http_code}' "$ADDR/v1/sys/health" | grep -q 200; do sleep 0.01; done
startup=$(python3 -c "import time; print(round((time.time()-$start)*1000))")
restart_rss=$(grep VmRSS /proc/$PID/status | awk '{print $2/1024 " MB"}')

cat <<EOF
## Scale run: $filled stored certificates, $REVOKE revoked ($(date -u +%Y-%m-%d), $(nproc) cores)

Command: \`STORAGE=$STORAGE bench/scale.sh $CERTS $REVOKE\` (signet, $STORAGE on local disk, wrk -t1 -c64 on the same machine)

| measurement | result |
|---|---|
| fill: issue EC P-256 (stored, unique names), certs/s | $fill_rps ($filled in ${fill_s}s) |
| revoke throughput, 32 Python clients (client-bound), revocations/s | $revoke_rps |
| revoke one more (with $REVOKE already revoked), median of 15 | $one_revoke |
| certs/search exact name | $search_name |
| certs/search name glob (svc-99*), limit 100 | $search_glob |
| certs/search role, limit 100 | $search_role |
| certs/search expiry window (1 h), limit 100 | $search_exp |
| LIST certs, limit 1000 | $list_page |
| CRL fetch after the revocations (rebuild) | $crl_first ($crl_entries entries) |
| CRL fetch, cached | $crl_cached |
| OCSP (POST, revoked serial) | $ocsp |
| peak RSS during the run | $rss |
| restart to healthy with this store | ${startup} ms (RSS $restart_rss) |
| store size on disk | $db |
EOF
rm -rf "$W"
