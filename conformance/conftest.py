"""Black-box conformance suite: every case runs against a real OpenBao (the reference) and
against signet, so the expectations themselves are checked against the reference.

Targets are started here on free loopback ports. Environment:
  SIGNET_BIN            signet binary (default: <repo>/target/debug/signet)
  BAO_BIN               OpenBao binary (default: `bao` on PATH)
  CONFORMANCE_TARGETS   comma list of targets to run (default: openbao,signet)
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid

import pytest
import requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIGNET_BIN = os.environ.get("SIGNET_BIN", os.path.join(REPO, "target", "debug", "signet"))
BAO_BIN = os.environ.get("BAO_BIN") or shutil.which("bao") or "bao"
TARGETS = [t for t in os.environ.get("CONFORMANCE_TARGETS", "openbao,signet").split(",") if t]


def free_port():
    """A port P with P+1 free too (OpenBao binds P+1 for its cluster listener)."""
    for _ in range(100):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        s2 = socket.socket()
        try:
            s2.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
        finally:
            s2.close()
    raise RuntimeError("no free port pair")


class Target:
    """A running server and the helpers the tests use on it."""

    def __init__(self, kind, addr, token, proc, workdir):
        self.kind, self.addr, self.token, self.proc, self.workdir = kind, addr, token, proc, workdir

    def url(self, path):
        return f"{self.addr}/v1/{path.lstrip('/')}"

    def req(self, method, path, token="__default__", json_body=None, data=None, headers=None, params=None):
        h = dict(headers or {})
        tok = self.token if token == "__default__" else token
        if tok:
            h["X-Vault-Token"] = tok
        return requests.request(method, self.url(path), json=json_body, data=data, headers=h, params=params, timeout=30)

    def cli(self, *args, input=None, token="__default__", env_extra=None):
        env = dict(os.environ)
        for k in list(env):
            if k.startswith(("VAULT_", "BAO_")):
                del env[k]
        env["BAO_ADDR"] = self.addr
        tok = self.token if token == "__default__" else token
        if tok:
            env["BAO_TOKEN"] = tok
        env["HOME"] = self.workdir  # keep the CLI's token helper away from the user's
        env.update(env_extra or {})
        return subprocess.run([BAO_BIN, *args], input=input, capture_output=True, text=True, env=env, timeout=60)

    def mount_kv(self):
        path = "kv-" + uuid.uuid4().hex[:8]
        r = self.req("POST", f"sys/mounts/{path}", json_body={"type": "kv", "options": {"version": "1"}})
        assert r.status_code == 204, r.text
        return path

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_ready(addr, proc, log, want=(200,)):
    deadline = time.time() + 60
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {open(log).read()[-2000:]}")
        try:
            r = requests.get(f"{addr}/v1/sys/health", timeout=2)
            if r.status_code in want:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server at {addr} never became ready: {open(log).read()[-2000:]}")


def start_dev(kind):
    workdir = tempfile.mkdtemp(prefix=f"conf-{kind}-")
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    log = os.path.join(workdir, "server.log")
    binary = SIGNET_BIN if kind == "signet" else BAO_BIN
    if kind == "signet" and not os.path.exists(binary):
        pytest.fail(f"signet binary not found at {binary}: run `cargo build --bin signet` first")
    cmd = [binary, "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"]
    if kind == "signet":
        cmd.append("-dev-no-store-token")
    env = dict(os.environ, HOME=workdir)
    proc = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
    wait_ready(addr, proc, log)
    return Target(kind, addr, "root", proc, workdir)


@pytest.fixture(scope="session")
def servers():
    started = {}
    yield lambda kind: started.setdefault(kind, start_dev(kind))
    for t in started.values():
        t.stop()


@pytest.fixture(params=TARGETS)
def target(request, servers):
    return servers(request.param)


@pytest.fixture(params=TARGETS)
def fresh_server(request):
    """A factory for non-dev servers (sealed, uninitialised) of the parametrised kind."""
    kind = request.param
    made = []

    def make(workdir=None):
        workdir = workdir or tempfile.mkdtemp(prefix=f"conf-{kind}-sealed-")
        port = free_port()
        addr = f"http://127.0.0.1:{port}"
        conf = os.path.join(workdir, "server.hcl")
        if kind == "signet":
            body = f'storage "sqlite" {{ path = "{workdir}/signet.db" }}\n'
            body += f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
            binary = SIGNET_BIN
        else:
            body = 'storage "inmem" {}\n'
            body += f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\ndisable_mlock = true\n'
            binary = BAO_BIN
        with open(conf, "w") as f:
            f.write(body)
        log = os.path.join(workdir, "server.log")
        proc = subprocess.Popen([binary, "server", f"-config={conf}"], stdout=open(log, "a"), stderr=subprocess.STDOUT,
                                env=dict(os.environ, HOME=workdir))
        wait_ready(addr, proc, log, want=(200, 429, 472, 473, 501, 503))
        t = Target(kind, addr, None, proc, workdir)
        made.append(t)
        return t

    make.kind = kind
    yield make
    for t in made:
        t.stop()


def assert_envelope(body):
    for k in ("request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth"):
        assert k in body, f"{k} missing from {json.dumps(body)[:300]}"
