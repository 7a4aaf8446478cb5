#!/usr/bin/env python3
"""Issuance with several signet nodes over one PostgreSQL, beside one signet node on SQLite and
OpenBao on raft, in one run on this machine (called by bench/cluster.sh, which builds the
binaries and starts PostgreSQL).

Setups, each configured by `signet-bench setup` and driven by `signet-bench run issue`:

  openbao      OpenBao, raft, one node (its standbys would forward writes to it anyway)
  sqlite       signet, SQLite, one node
  pg-1         signet, PostgreSQL, one node (the cost of the database round trips alone)
  pg-3         signet, PostgreSQL, three nodes, the clients spread evenly over them

Runs alternate between setups, for each round, workload and concurrency. For each run the CPU
seconds used by the signet/OpenBao processes and by PostgreSQL's processes while the clock ran
are divided by the certificates issued: CPU per certificate is what tells how far the setup
would go on separate hosts (see the table's notes). Prints a markdown table; with --write it
is also added to bench/RESULTS.md.

Python 3 standard library only; reuses bench/compare.py's server handling.
"""
import argparse
import datetime
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import HERE, Server, free_port, log, machine, req  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return 0


def postgres_pids():
    """Every process of the PostgreSQL server (postmaster and backends)."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() in ("postgres", "postmaster"):
                        pids.append(int(d))
            except OSError:
                pass
    return pids


def pg_ticks():
    return sum(cpu_ticks(p) for p in postgres_pids())


class PgCluster:
    """`size` signet nodes over one PostgreSQL table, auto-unsealed from one key file."""

    def __init__(self, name, binary, workdir, url, size):
        self.kind, self.dir, self.size = name, workdir, size
        os.makedirs(workdir, exist_ok=True)
        key = os.path.join(workdir, "unseal.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        table = "bench_" + uuid.uuid4().hex[:10]
        self.nodes = []
        for i in range(size):
            port = free_port()
            conf = os.path.join(workdir, f"node{i}.hcl")
            with open(conf, "w") as f:
                f.write(f'''storage "postgresql" {{ connection_url = "{url}" table = "{table}" }}
listener "tcp" {{ address = "127.0.0.1:{port}" tls_disable = true }}
seal "file" {{ path = "{key}" }}
log_level = "warn"
''')
            self.nodes.append({"port": port, "cmd": [binary, "server", f"-config={conf}"], "proc": None})
        self.token = None

    @property
    def addr(self):
        return ",".join(f"http://127.0.0.1:{n['port']}" for n in self.nodes)

    @property
    def pids(self):
        return [n["proc"].pid for n in self.nodes]

    def start(self):
        for i, n in enumerate(self.nodes):
            n["proc"] = subprocess.Popen(n["cmd"], stdout=subprocess.DEVNULL,
                                         stderr=open(f"{self.dir}/node{i}.log", "a"))
        first = self.nodes[0]["port"]
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                st, _ = req(first, "GET", "sys/health", timeout=1)
                if st in (501, 503, 200):
                    break
            except OSError:
                time.sleep(0.05)
        st, body = req(first, "PUT", "sys/init", {}, timeout=60)
        if st != 200:
            raise RuntimeError(f"{self.kind} sys/init: {st} {body}")
        self.token = body["root_token"]
        for n in self.nodes:
            while True:
                if time.time() > deadline:
                    raise RuntimeError(f"{self.kind}: node on {n['port']} did not unseal; see {self.dir}")
                try:
                    if req(n["port"], "GET", "sys/health", timeout=1)[0] == 200:
                        break
                except OSError:
                    pass
                time.sleep(0.1)

    def stop(self):
        for n in self.nodes:
            if n["proc"]:
                n["proc"].terminate()
        for n in self.nodes:
            if n["proc"]:
                try:
                    n["proc"].wait(20)
                except subprocess.TimeoutExpired:
                    n["proc"].kill()
                n["proc"] = None


class Single:
    """compare.py's Server (signet on SQLite, OpenBao on raft) with the same interface."""

    def __init__(self, name, server):
        self.kind, self.s = name, server

    @property
    def addr(self):
        return self.s.addr

    @property
    def token(self):
        return self.s.token

    @property
    def pids(self):
        return [self.s.proc.pid]

    def start(self):
        self.s.initialise()
        self.s.start()

    def stop(self):
        self.s.stop()


VARIANTS = {"issue": [], "issue-nostore": ["--role", "ec-nostore"]}


def run(bench, setup, workload, conc, seconds):
    import json
    cmd = [bench, "run", "issue", *VARIANTS[workload], "--addr", setup.addr, "--token", setup.token,
           "-c", str(conc), "-d", f"{seconds}s", "--json", "--quiet", "--threads", "1"]
    before = [cpu_ticks(p) for p in setup.pids]
    pg_before = pg_ticks()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 4 + 120)
    server_s = (sum(cpu_ticks(p) for p in setup.pids) - sum(before)) / TICKS
    pg_s = (pg_ticks() - pg_before) / TICKS
    if p.returncode != 0:
        return {"failed": (p.stderr or p.stdout)[-400:]}
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["server_s"], res["pg_s"] = server_s, pg_s
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--signet", required=True)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--bao", required=True)
    ap.add_argument("--pg-url", required=True)
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", default="8,64")
    ap.add_argument("--workloads", default="issue,issue-nostore")
    ap.add_argument("--write", action="store_true", help="add the table to bench/RESULTS.md")
    args = ap.parse_args()
    concs = [int(c) for c in args.concurrency.split(",")]
    workloads = [w for w in args.workloads.split(",") if w]

    work = tempfile.mkdtemp(prefix="signet-cluster-bench-")
    setups = [
        Single("openbao", Server("openbao", args.bao, f"{work}/openbao")),
        Single("sqlite", Server("signet", os.path.abspath(args.signet), f"{work}/sqlite")),
        PgCluster("pg-1", os.path.abspath(args.signet), f"{work}/pg1", args.pg_url, 1),
        PgCluster("pg-3", os.path.abspath(args.signet), f"{work}/pg3", args.pg_url, 3),
    ]
    results = {}
    started = time.time()
    try:
        for s in setups:
            s.start()
            p = subprocess.run([args.bench, "setup", "--addr", s.addr.split(",")[0], "--token", s.token,
                                "--crl-entries", "0"], capture_output=True, text=True, timeout=300)
            if p.returncode != 0:
                raise RuntimeError(f"setup of {s.kind} failed: {p.stderr[-400:]}")
            log(f"{s.kind}: up and set up ({s.addr})")
        for r in range(args.rounds):
            for w in workloads:
                for c in concs:
                    for s in setups:
                        res = run(args.bench, s, w, c, args.seconds)
                        results.setdefault((w, c, s.kind), []).append(res)
                        if "failed" in res:
                            log(f"round {r + 1} {w} c={c} {s.kind}: FAILED {res['failed'][:200]}")
                        else:
                            log(f"round {r + 1} {w:13s} c={c:<3d} {s.kind:8s} {res['ops_per_s']:7.0f}/s "
                                f"p99 {res['latency']['p99_ms']:6.1f} ms  cpu/cert {1000 * res['server_s'] / max(1, res['ok']):.3f} ms "
                                f"+ pg {1000 * res['pg_s'] / max(1, res['ok']):.3f} ms  errors {res.get('error_count', 0)}")
    finally:
        for s in setups:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)

    def med(key, f):
        vals = [f(x) for x in results.get(key, []) if "failed" not in x]
        return statistics.median(vals) if vals else None

    lines = [f"### Several nodes over PostgreSQL — {datetime.date.today()} (`bench/cluster.sh`)", "",
             f"{machine()}; {args.rounds} rounds x {args.seconds:g} s per run, medians; the load generator "
             "(one thread) shares the machine. CPU/cert: CPU seconds of the server processes (all nodes) "
             "and of PostgreSQL per certificate issued.", "",
             "| workload | clients | setup | certs/s | p99 ms | vs OpenBao | server CPU/cert | PostgreSQL CPU/cert | errors |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|"]
    for w in workloads:
        for c in concs:
            base = med((w, c, "openbao"), lambda x: x["ops_per_s"])
            for s in setups:
                k = (w, c, s.kind)
                rate = med(k, lambda x: x["ops_per_s"])
                if rate is None:
                    lines.append(f"| {w} | {c} | {s.kind} | failed | | | | | |")
                    continue
                p99 = med(k, lambda x: x["latency"]["p99_ms"])
                cpu = med(k, lambda x: 1000 * x["server_s"] / max(1, x["ok"]))
                pg = med(k, lambda x: 1000 * x["pg_s"] / max(1, x["ok"]))
                errs = sum(x.get("error_count", 0) for x in results[k] if "failed" not in x)
                ratio = f"{rate / base:.2f}x" if base else ""
                pg_txt = f"{pg:.3f} ms" if s.kind.startswith("pg") else "—"
                lines.append(f"| {w} | {c} | {s.kind} | {rate:,.0f} | {p99:.1f} | {ratio} | {cpu:.3f} ms | {pg_txt} | {errs} |")
    text = "\n".join(lines) + "\n"
    print(text)
    log(f"done in {time.time() - started:.0f} s")
    if args.write:
        path = os.path.join(HERE, "RESULTS.md")
        with open(path, "a") as f:
            f.write("\n" + text)
        log(f"appended to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
