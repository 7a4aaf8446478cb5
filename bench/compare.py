#!/usr/bin/env python3
"""signet vs OpenBao, side by side on this machine, driven by signet-bench (called by
bench/compare.sh, which installs `bao` and builds the binaries first).

Both servers run with durable local storage: signet with SQLite and `seal "file"`
(auto-unseal), OpenBao with raft, initialised once and unsealed over the API. Both are
configured identically by `signet-bench setup`. Then every workload runs against both,
alternating (signet, OpenBao, signet, OpenBao, ...), for each round and each concurrency, and
for each run the server's CPU time while the clock ran (utime + stime from /proc/PID/stat,
sampled by signet-bench) is divided by the requests it answered. Cold start (spawn to the
first 200 from sys/health), idle RSS and peak RSS (VmHWM) are recorded per server.

Prints one markdown table (medians, ranges, signet/OpenBao ratios); unless --smoke or
--no-write, also writes it into bench/RESULTS.md under a dated heading that describes the
machine. --smoke: one round, 1 second per workload, 8 clients; exits non-zero when any
workload on either server had errors or did not answer (OpenBao's lack of certs/search is not
an error); never judges timings.

Python 3 standard library only.
"""
import argparse
import base64
import datetime
import http.client
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ALL_WORKLOADS = ["issue", "issue-nostore", "issue-rsa", "sign", "revoke", "crl-fetch", "ocsp",
                 "search", "approle-login", "kv-write", "kv-read", "mixed"]
# Variants of a signet-bench workload: (workload, extra arguments).
VARIANTS = {
    "issue-nostore": ("issue", ["--role", "ec-nostore"]),
    "issue-rsa": ("issue", ["--role", "rsa"]),
}
HERE = os.path.dirname(os.path.abspath(__file__))
# crl-fetch reads the CRL of a mount that `signet-bench setup` gives exactly CRL_ENTRIES
# revoked certificates on both servers (the main mount's CRL grows with each server's own
# revoke throughput, so its size would differ).
CRL_MOUNT, CRL_ENTRIES = "pki-crl", 1000


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    """A port whose successor is free too (OpenBao's cluster port)."""
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        p = s.getsockname()[1]
        s.close()
        s2 = socket.socket()
        try:
            s2.bind(("127.0.0.1", p + 1))
            s2.close()
            return p
        except OSError:
            s2.close()


def req(port, method, path, body=None, token=None, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    if token:
        h["X-Vault-Token"] = token
    c.request(method, "/v1/" + path, body=json.dumps(body) if body is not None else None, headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    try:
        return r.status, (json.loads(data) if data else None)
    except ValueError:
        return r.status, None


def proc_status_kb(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    """One server under test, with durable storage in its own directory."""

    def __init__(self, kind, binary, workdir):
        self.kind, self.binary, self.dir = kind, binary, workdir
        self.port = free_port()
        self.proc = None
        self.token = None
        self.keys = None
        os.makedirs(workdir, exist_ok=True)
        if kind == "signet":
            key = os.path.join(workdir, "unseal.key")
            with open(key, "w") as f:
                f.write(base64.b64encode(os.urandom(32)).decode())
            conf = f'''storage "sqlite" {{ path = "{workdir}/signet.db" }}
listener "tcp" {{ address = "127.0.0.1:{self.port}" tls_disable = true }}
seal "file" {{ path = "{key}" }}
log_level = "warn"
'''
        else:
            os.makedirs(f"{workdir}/raft", exist_ok=True)
            conf = f'''storage "raft" {{ path = "{workdir}/raft" node_id = "n1" }}
listener "tcp" {{ address = "127.0.0.1:{self.port}" tls_disable = true cluster_address = "127.0.0.1:{self.port + 1}" }}
api_addr = "http://127.0.0.1:{self.port}"
cluster_addr = "http://127.0.0.1:{self.port + 1}"
disable_mlock = true
log_level = "warn"
'''
        with open(f"{workdir}/server.hcl", "w") as f:
            f.write(conf)
        self.cmd = [binary, "server", f"-config={workdir}/server.hcl"]

    @property
    def addr(self):
        return f"http://127.0.0.1:{self.port}"

    def spawn(self):
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL,
                                     stderr=open(f"{self.dir}/server.log", "a"))

    def start(self):
        """Starts the server; returns seconds from spawn to the first 200 on sys/health
        (OpenBao unsealed over the API as soon as it answers sealed)."""
        t0 = time.perf_counter()
        self.spawn()
        unsealed = False
        while time.perf_counter() - t0 < 120:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}; see {self.dir}/server.log")
            try:
                st, _ = req(self.port, "GET", "sys/health", timeout=1)
            except OSError:
                time.sleep(0.001)
                continue
            if st == 200:
                return time.perf_counter() - t0
            if st == 503 and self.keys and not unsealed:
                req(self.port, "PUT", "sys/unseal", {"key": self.keys[0]})
                unsealed = True
            time.sleep(0.001)
        raise RuntimeError(f"{self.kind} did not become healthy; see {self.dir}/server.log")

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def initialise(self):
        """First start: sys/init (one share), then a restart so every later start is the
        real one (signet unseals from its file; OpenBao is unsealed with the share)."""
        self.spawn()
        t0 = time.time()
        while True:
            try:
                req(self.port, "GET", "sys/health", timeout=1)
                break
            except OSError:
                if time.time() - t0 > 120 or self.proc.poll() is not None:
                    raise RuntimeError(f"{self.kind} did not answer; see {self.dir}/server.log")
                time.sleep(0.01)
        st, body = req(self.port, "PUT", "sys/init", {"secret_shares": 1, "secret_threshold": 1}, timeout=120)
        if st != 200:
            raise RuntimeError(f"{self.kind} sys/init: {st} {body}")
        self.token = body["root_token"]
        self.keys = body.get("keys_base64") or []
        self.stop()


def run_bench(bench, server, workload, conc, seconds, timeout):
    """One signet-bench run; returns its JSON result, or a dict with 'failed'."""
    workload, extra = VARIANTS.get(workload, (workload, []))
    if workload == "crl-fetch":
        extra = ["--mount", CRL_MOUNT]
    cmd = [bench, "run", workload, *extra, "--addr", server.addr, "--token", server.token,
           "-c", str(conc), "-d", f"{seconds}s", "--json", "--quiet",
           "--server-pid", str(server.proc.pid)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"failed": f"signet-bench did not finish within {timeout:.0f} s"}
    if p.returncode != 0:
        return {"failed": (p.stderr.strip() or p.stdout.strip() or f"exit {p.returncode}")[-500:]}
    try:
        return json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"failed": f"no JSON result: {p.stdout[-300:]!r} {p.stderr[-300:]!r}"}


def problems(res):
    """Why a result counts as failed (smoke), or None."""
    if "failed" in res:
        return res["failed"]
    if res.get("unsupported"):
        return None
    if res.get("error_count"):
        ex = "; ".join(f"{k}: {v}" for k, v in (res.get("error_examples") or {}).items())
        return f"{res['error_count']} errors {res.get('errors')} ({ex})"
    if not res.get("ok"):
        return "no successful operation"
    return None


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem_gib = proc_meminfo_gib()
    try:
        cores = len(os.sched_getaffinity(0))  # what nproc prints
    except AttributeError:
        cores = os.cpu_count()
    return f"{cores} cores ({model}), {mem_gib:.0f} GiB, Linux {platform.release()}"


def proc_meminfo_gib():
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def fmt_rate(v):
    return f"{v:.0f}" if v >= 10 else f"{v:.1f}"


def med_range(vals, fmt=fmt_rate):
    if not vals:
        return "—"
    m = statistics.median(vals)
    if len(vals) == 1:
        return fmt(m)
    return f"{fmt(m)} ({fmt(min(vals))}-{fmt(max(vals))})"


def ratio(a, b):
    if not a or not b:
        return "—"
    ma, mb = statistics.median(a), statistics.median(b)
    if mb == 0:
        return "—"
    r = ma / mb
    return f"{r:.2f}x" if r < 10 else f"{r:.1f}x"


def table(results, args, cold, idle, peak, bao_version):
    lines = []
    lines.append("| workload | clients | signet ops/s | OpenBao ops/s | signet/OpenBao | p99 ms signet / OpenBao | server CPU ms per request signet / OpenBao |")
    lines.append("|---|---|---|---|---|---|---|")
    notes = []
    for w in args.workloads:
        for c in args.concurrency:
            cells = {}
            for k in ("signet", "openbao"):
                runs = results.get((w, c, k), [])
                ok = [r for r in runs if "failed" not in r and not r.get("unsupported")]
                unsup = [r for r in runs if r.get("unsupported")]
                failed = [r for r in runs if "failed" in r]
                cells[k] = {
                    "rates": [r["ops_per_s"] for r in ok],
                    "p99": [r["latency"]["p99_ms"] for r in ok],
                    "cpu": [r["server_cpu_s"] * 1000 / r["requests"] for r in ok
                            if r.get("server_cpu_s") is not None and r.get("requests")],
                    "unsupported": bool(unsup) and not ok,
                    "failed": len(failed),
                    "errors": sum(r.get("error_count", 0) for r in ok),
                    "early": sum(1 for r in ok if r.get("ended_early")),
                }
                if failed:
                    notes.append(f"{w} at {c} clients on {k}: {len(failed)} run(s) failed: {failed[0]['failed']}")
                if cells[k]["errors"]:
                    ex = "; ".join(f"{kk}: {vv}" for r in ok for kk, vv in (r.get("error_examples") or {}).items())
                    notes.append(f"{w} at {c} clients on {k}: {cells[k]['errors']} failed operations ({ex[:300]})")
                if cells[k]["early"]:
                    notes.append(f"{w} at {c} clients on {k}: the prepared revoke pool ran out before the time was up in {cells[k]['early']} run(s) (rate measured over the shorter run)")

            def rate(k):
                if cells[k]["unsupported"]:
                    return "unsupported"
                return med_range(cells[k]["rates"])

            def p99(k):
                return f"{statistics.median(cells[k]['p99']):.1f}" if cells[k]["p99"] else "—"

            def cpu(k):
                return f"{statistics.median(cells[k]['cpu']):.3f}" if cells[k]["cpu"] else "—"

            mixed_note = {"mixed": " (4 req/op)", "crl-fetch": f" ({CRL_ENTRIES} entries)",
                          "issue": " (EC P-256, stored)", "issue-nostore": " (EC P-256)",
                          "issue-rsa": " (RSA-2048)", "sign": " (EC P-256 CSR)"}.get(w, "")
            lines.append(f"| {w}{mixed_note} | {c} | {rate('signet')} | {rate('openbao')} | "
                         f"{ratio(cells['signet']['rates'], cells['openbao']['rates'])} | "
                         f"{p99('signet')} / {p99('openbao')} | {cpu('signet')} / {cpu('openbao')} |")
    fmt_ms = lambda v: f"{v * 1000:.0f}"
    lines.append(f"| cold start to 200 on sys/health, ms | | {med_range(cold['signet'], fmt_ms)} | "
                 f"{med_range(cold['openbao'], fmt_ms)} | {ratio(cold['signet'], cold['openbao'])} | | |")
    lines.append(f"| idle RSS after start, MB | | {idle['signet'] / 1024:.1f} | {idle['openbao'] / 1024:.1f} | "
                 f"{ratio([idle['signet']], [idle['openbao']])} | | |")
    lines.append(f"| peak RSS (VmHWM) over the whole run, MB | | {peak['signet'] / 1024:.1f} | {peak['openbao'] / 1024:.1f} | "
                 f"{ratio([peak['signet']], [peak['openbao']])} | | |")
    head = (f"signet (SQLite, seal \"file\") vs OpenBao {bao_version} (raft), both on local disk; "
            f"{args.rounds} round(s) of {args.seconds} s per workload and concurrency, run alternately "
            f"(signet, OpenBao, signet, OpenBao, ...); ops/s as median (min-max) over the rounds, p99 and "
            f"CPU as medians. The load generator (signet-bench, one runtime thread: about one core) "
            f"shares the machine with the server under test: quote ratios, not absolute numbers.")
    out = head + "\n\n" + "\n".join(lines) + "\n"
    if notes:
        out += "\nNotes:\n" + "\n".join(f"- {n}" for n in notes) + "\n"
    return out, notes


def write_results(text, args):
    path = os.path.join(HERE, "RESULTS.md")
    with open(path) as f:
        old = f.read()
    date = datetime.date.today().isoformat()
    cmd = "bench/compare.sh " + " ".join(args.argv)
    section = (f"## Side by side with signet-bench, {date} — {machine()}\n\n"
               f"Command: `{cmd.strip()}` (release build).\n\n{text}\n")
    marker = "# Results\n"
    if old.startswith(marker):
        new = marker + "\n" + section + old[len(marker):].lstrip("\n")
    else:
        new = section + old
    with open(path, "w") as f:
        f.write(new)
    log(f"wrote {path}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=3,
                    help="seconds per run (default 3, so the full default run fits in ~15 minutes)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--workloads", default=",".join(ALL_WORKLOADS))
    ap.add_argument("--smoke", action="store_true",
                    help="one round, 1 s per workload, 8 clients; fail on any error; no RESULTS.md")
    ap.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    ap.add_argument("--signet", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--bao", required=True)
    ap.add_argument("--keep", action="store_true", help="keep the servers' data directories")
    args = ap.parse_args()
    args.argv = [a for a in sys.argv[1:] if not a.startswith(("--signet", "--bench", "--bao"))
                 and a not in (args.signet, args.bench, args.bao)]
    if args.smoke:
        args.rounds, args.seconds, args.concurrency = 1, 1, "8"
    args.concurrency = [int(c) for c in str(args.concurrency).split(",") if c.strip()]
    args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = [w for w in args.workloads if w not in ALL_WORKLOADS]
    if unknown:
        ap.error(f"unknown workloads {unknown}; known: {','.join(ALL_WORKLOADS)}")
    if args.rounds < 1 or not args.concurrency or args.seconds <= 0:
        ap.error("--rounds, --concurrency and --seconds must be positive")

    bao_version = "?"
    try:
        v = subprocess.run([args.bao, "version"], capture_output=True, text=True, timeout=30).stdout.split()
        bao_version = v[1] if len(v) > 1 else "?"
    except (OSError, subprocess.TimeoutExpired):
        pass

    work = tempfile.mkdtemp(prefix="signet-compare-")
    servers = [Server("signet", os.path.abspath(args.signet), f"{work}/signet"),
               Server("openbao", args.bao, f"{work}/openbao")]
    cold = {s.kind: [] for s in servers}
    idle = {}
    peak = {}
    results = {}
    smoke_failures = []
    started = time.time()
    try:
        for s in servers:
            log(f"{s.kind}: initialising ({s.addr}, data in {s.dir})")
            s.initialise()
            for _ in range(min(args.rounds, 3) if not args.smoke else 1):
                cold[s.kind].append(s.start())
                s.stop()
        for s in servers:
            s.start()
            time.sleep(0.5)
            idle[s.kind] = proc_status_kb(s.proc.pid, "VmRSS")
            p = subprocess.run([args.bench, "setup", "--addr", s.addr, "--token", s.token,
                                "--crl-mount", CRL_MOUNT, "--crl-entries", str(CRL_ENTRIES)],
                               capture_output=True, text=True, timeout=300)
            if p.returncode != 0:
                raise RuntimeError(f"signet-bench setup against {s.kind} failed: {p.stderr.strip()}")
            log(f"{s.kind}: set up")
        timeout = max(120, args.seconds * 4 + 60)
        total = args.rounds * len(args.workloads) * len(args.concurrency) * len(servers)
        n = 0
        for r in range(args.rounds):
            for w in args.workloads:
                for c in args.concurrency:
                    for s in servers:
                        n += 1
                        res = run_bench(args.bench, s, w, c, args.seconds, timeout)
                        results.setdefault((w, c, s.kind), []).append(res)
                        if "failed" in res:
                            summary = "FAILED: " + res["failed"][:300]
                        elif res.get("unsupported"):
                            summary = "unsupported"
                        else:
                            cpu = res.get("server_cpu_s")
                            per = f", {cpu * 1000 / res['requests']:.3f} ms CPU/req" if cpu is not None and res.get("requests") else ""
                            summary = (f"{res['ops_per_s']:.0f} ops/s, p99 {res['latency']['p99_ms']:.1f} ms"
                                       f"{per}, {res.get('error_count', 0)} errors")
                        log(f"[{n}/{total} {time.time() - started:5.0f}s] round {r + 1} {w:13s} c={c:<3d} {s.kind:8s} {summary}")
                        why = problems(res)
                        if why:
                            smoke_failures.append(f"{w} on {s.kind} (c={c}): {why}")
                        if s.proc.poll() is not None:
                            raise RuntimeError(f"{s.kind} exited during {w}; see {s.dir}/server.log")
        for s in servers:
            peak[s.kind] = proc_status_kb(s.proc.pid, "VmHWM")
    finally:
        for s in servers:
            s.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    text, _ = table(results, args, cold, idle, peak, bao_version)
    print(text)
    elapsed = time.time() - started
    log(f"done in {elapsed:.0f} s")
    if args.smoke:
        if smoke_failures:
            log("smoke FAILED:")
            for f in smoke_failures:
                log(f"  {f}")
            return 1
        log("smoke passed: every workload answered on both servers without errors")
        return 0
    if not args.no_write:
        write_results(text, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
