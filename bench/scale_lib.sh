# Shared by bench/scale.sh (signet) and bench/scale_openbao.sh: the fill, the revocations and
# the timing helpers, so both servers get exactly the same requests. Source it; it uses
# ADDR, TOKEN and W (the work directory) from the caller.

# fill CERTS [BUDGET_SECONDS]: issues certificates with unique names through pki/issue/ec
# (wrk -t1 -c64, in 5-second slices, since Debian's wrk cannot stop itself from a script)
# until CERTS are stored or the budget (default: none) is spent; serials go to $W/serials.txt.
# Sets FILLED and FILL_S.
fill() {
  local certs=$1 budget=${2:-0} start offset
  start=$(date +%s.%N)
  touch "$W/serials.txt"
  while [ "$(wc -l < "$W/serials.txt")" -lt "$certs" ]; do
    if [ "$budget" -gt 0 ] && [ "$(python3 -c "import time; print(int(time.time()-$start))")" -ge "$budget" ]; then
      break
    fi
    offset=$(wc -l < "$W/serials.txt")
    cat > "$W/issue.lua" <<EOL
wrk.method = "POST"
wrk.headers["X-Vault-Token"] = "$TOKEN"
local n = $offset * 2
local out = io.open("$W/serials.txt", "a")
request = function()
  n = n + 1
  return wrk.format(nil, nil, nil, string.format('{"common_name":"svc-%d.fleet.example.com","ttl":"%dh"}', n, 1 + n % 700))
end
response = function(status, headers, body)
  local s = body:match('"serial_number":"([0-9a-f:]+)"')
  if s then out:write(s, "\n") end
end
EOL
    wrk -t1 -c64 -d5s --timeout 30s -s "$W/issue.lua" "$ADDR/v1/pki/issue/ec" >> "$W/fill.txt"
    echo "filled $(wc -l < "$W/serials.txt")" >&2
  done
  FILL_S=$(python3 -c "import time; print(round(time.time()-$start,1))")
  FILLED=$(wc -l < "$W/serials.txt")
}

# revoke_first N [BUDGET_SECONDS]: revokes the first N serials of the fill with 32 Python
# clients on keep-alive connections, within the budget (default: none). Sets REVOKED and
# REVOKE_RPS.
revoke_first() {
  head -n "$1" "$W/serials.txt" > "$W/revoke.txt"
  read -r REVOKED REVOKE_RPS < <(python3 - "$ADDR" "$TOKEN" "$W/revoke.txt" "${2:-0}" <<'PY'
import http.client, sys, threading, time
addr, token, path, budget = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
host, port = addr.split("//")[1].split(":")
serials = open(path).read().split()
done = [0]
lock = threading.Lock()
t0 = time.time()
def worker(chunk):
    c = http.client.HTTPConnection(host, int(port), timeout=300)
    for s in chunk:
        if budget and time.time() - t0 > budget:
            return
        c.request("POST", "/v1/pki/revoke", body='{"serial_number":"%s"}' % s,
                  headers={"X-Vault-Token": token, "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status == 200:
            with lock:
                done[0] += 1
n = 32
threads = [threading.Thread(target=worker, args=(serials[i::n],)) for i in range(n)]
for x in threads:
    x.start()
for x in threads:
    x.join()
print(done[0], round(done[0] / (time.time() - t0)))
PY
)
}

median() { python3 -c "import sys,statistics; v=[float(x)*1000 for x in sys.stdin.read().split()]; print(f'{statistics.median(v):.2f} ms (min {min(v):.2f}, max {max(v):.2f})')"; }
timeit() { for _ in $(seq 15); do curl -s -o /dev/null -w '%{time_total}\n' "$@"; done | median; }

# revoke_one_more: median of revoking the last 15 serials of the fill, one at a time.
revoke_one_more() {
  tail -n 15 "$W/serials.txt" | while read -r s; do
    curl -s -o /dev/null -w '%{time_total}\n' -H "X-Vault-Token: $TOKEN" -X POST "$ADDR/v1/pki/revoke" -d "{\"serial_number\":\"$s\"}"
  done | median
}

# ocsp_time SERIAL: median OCSP answer time for a serial (openssl builds the request).
ocsp_time() {
  curl -s "$ADDR/v1/pki/ca/pem" > "$W/ca.pem"
  openssl ocsp -issuer "$W/ca.pem" -serial "0x${1//:/}" -reqout "$W/ocsp.req" -no_nonce > /dev/null 2>&1
  timeit -H "Content-Type: application/ocsp-request" --data-binary @"$W/ocsp.req" "$ADDR/v1/pki/ocsp"
}
