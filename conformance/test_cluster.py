"""Several signet nodes over one PostgreSQL, every node active (signet only: OpenBao's standbys
forward every request to its one active node, so none of this applies to it).

* what one node writes (mount, role, policy, token revocation, certificate revocation, barrier
  key rotation) is seen by the others within a second, without a restart;
* one leader at a time, another within seconds when it dies;
* issuance through all three nodes while one is SIGKILLed and restarted and while PostgreSQL
  restarts: every serial acknowledged is in the inventory once, no serial twice, errors only
  during the outages and only as 503s with a message, no request hangs past its timeout;
* a database unreachable at start: the node stays up, reports 503 on sys/health, and unseals
  by itself once the database is reachable.

PostgreSQL: the one scripts/pg.sh runs (restarted by the fault test) or SIGNET_TEST_PG_URL.
"""
import os
import socket
import subprocess
import threading
import time

import pytest
import requests
from cryptography import x509

from conftest import REPO, TARGETS, ANY_HEALTH, _spawn, free_port, pg_url, start_pg_cluster, unique, wait_until

pytestmark = pytest.mark.skipif("signet-pg" not in TARGETS, reason="signet-pg not selected by CONFORMANCE_TARGETS")

TIMEOUT = 15  # the clients' request timeout, seconds
H = {"X-Vault-Token": "root"}


@pytest.fixture
def cluster():
    c = start_pg_cluster(seal_file=True)
    yield c
    c.discard()


def call(addr, method, path, json=None, token="root", timeout=TIMEOUT):
    headers = {"X-Vault-Token": token} if token else {}
    return requests.request(method, f"{addr}/v1/{path}", json=json, headers=headers, timeout=timeout)


def within_a_second(fn):
    """fn() becomes truthy within one second (polled every 20 ms)."""
    value = wait_until(fn, timeout=1.0, interval=0.02)
    assert value, "not seen by the other node within a second"
    return value


def all_at_once(addrs, each, per_node=1):
    """Sends `each(session, addr)` from per_node threads per node, all released together, each
    on a connection opened beforehand; the results, in no particular order."""
    go = threading.Barrier(len(addrs) * per_node)
    results = []

    def one(a):
        sess = requests.Session()
        sess.get(f"{a}/v1/sys/health", timeout=TIMEOUT)
        go.wait()
        results.append(each(sess, a))
    threads = [threading.Thread(target=one, args=(a,)) for a in addrs for _ in range(per_node)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def setup_pki(addr, path):
    assert call(addr, "POST", f"sys/mounts/{path}", {"type": "pki", "config": {"max_lease_ttl": "87600h"}}).status_code == 204
    r = call(addr, "POST", f"{path}/root/generate/internal", {"common_name": "cluster root", "key_type": "ec", "ttl": "8760h"})
    assert r.status_code == 200, r.text
    r = call(addr, "POST", f"{path}/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                                  "key_type": "ec", "max_ttl": "1h"})
    assert r.status_code in (200, 204), r.text


def test_writes_on_one_node_are_seen_by_the_others(cluster):
    a, b, c = (n["addr"] for n in cluster.nodes)
    pki = unique("pki")
    # A mount made on A is served by B.
    assert call(a, "POST", f"sys/mounts/{pki}", {"type": "pki"}).status_code == 204
    within_a_second(lambda: call(b, "GET", f"sys/mounts/{pki}").status_code == 200)
    r = call(b, "POST", f"{pki}/root/generate/internal", {"common_name": "x", "key_type": "ec"})
    assert r.status_code == 200, r.text
    # A role made on C is used on A; narrowed on B, A refuses the old name. (Leaves of an hour:
    # the default TTL would reach past the root's own expiry, made a moment earlier.)
    assert call(c, "POST", f"{pki}/roles/web", {"allowed_domains": "example.com", "allow_subdomains": True,
                                                 "key_type": "ec", "max_ttl": "1h"}).status_code in (200, 204)
    within_a_second(lambda: call(a, "POST", f"{pki}/issue/web", {"common_name": "a.example.com"}).status_code == 200)
    assert call(b, "POST", f"{pki}/roles/web", {"allowed_domains": "example.org", "allow_subdomains": True,
                                                 "key_type": "ec", "max_ttl": "1h"}).status_code in (200, 204)
    within_a_second(lambda: call(a, "POST", f"{pki}/issue/web", {"common_name": "a.example.com"}).status_code == 400)

    # A policy changed on C applies to a token on B; a token revoked on A is refused on C.
    policy = unique("p")
    allow = f'path "{pki}/issue/web" {{ capabilities = ["update"] }}'
    assert call(a, "PUT", f"sys/policies/acl/{policy}", {"policy": allow}).status_code == 204
    r = call(a, "POST", "auth/token/create", {"policies": [policy]})
    tok = r.json()["auth"]["client_token"]
    within_a_second(lambda: call(b, "POST", f"{pki}/issue/web", {"common_name": "b.example.org"}, token=tok).status_code == 200)
    deny = f'path "{pki}/issue/other" {{ capabilities = ["update"] }}'
    assert call(c, "PUT", f"sys/policies/acl/{policy}", {"policy": deny}).status_code == 204
    within_a_second(lambda: call(b, "POST", f"{pki}/issue/web", {"common_name": "b.example.org"}, token=tok).status_code == 403)
    assert call(c, "GET", "auth/token/lookup-self", token=tok).status_code == 200
    assert call(a, "POST", "auth/token/revoke", {"token": tok}).status_code == 204
    within_a_second(lambda: call(c, "GET", "auth/token/lookup-self", token=tok).status_code == 403)

    # A certificate revoked on C is revoked on A: its record and A's CRL say so.
    r = call(b, "POST", f"{pki}/issue/web", {"common_name": "crl.example.org"})
    serial = r.json()["data"]["serial_number"]
    first_crl = x509.load_der_x509_crl(requests.get(f"{a}/v1/{pki}/crl", timeout=TIMEOUT).content)
    assert call(c, "POST", f"{pki}/revoke", {"serial_number": serial}).status_code == 200

    def revoked_on_a():
        crl = x509.load_der_x509_crl(requests.get(f"{a}/v1/{pki}/crl", timeout=TIMEOUT).content)
        return crl.get_revoked_certificate_by_serial_number(int(serial.replace(":", ""), 16)) is not None
    within_a_second(revoked_on_a)
    assert call(a, "GET", f"{pki}/cert/{serial}").json()["data"]["revocation_time"] > 0
    assert first_crl.get_revoked_certificate_by_serial_number(int(serial.replace(":", ""), 16)) is None

    # The barrier key rotated on B: A and C report the new term and read what B writes with it.
    term = call(a, "GET", "sys/key-status").json()["data"]["term"]
    assert call(b, "POST", "sys/rotate").status_code == 204
    within_a_second(lambda: call(c, "GET", "sys/key-status").json()["data"]["term"] == term + 1)
    assert call(b, "POST", "secret/after-rotate", {"v": "1"}).status_code == 204
    assert call(a, "GET", "secret/after-rotate").json()["data"] == {"v": "1"}

    # A mount disabled on C disappears from A.
    assert call(c, "DELETE", f"sys/mounts/{pki}").status_code == 204
    within_a_second(lambda: call(a, "GET", f"sys/mounts/{pki}").status_code == 400)


def leader_index(cluster):
    for i, n in enumerate(cluster.nodes):
        if n["proc"].poll() is None:
            try:
                if call(n["addr"], "GET", "sys/leader", token=None, timeout=5).json().get("is_self"):
                    return i
            except requests.RequestException:
                pass
    return None


def wait_leader(cluster, other_than=None, timeout=15):
    """The index of the leading node (not `other_than`), waiting for one; None on timeout."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        i = leader_index(cluster)
        if i is not None and i != other_than:
            return i
        time.sleep(0.1)
    return None


def test_leader_fails_over_and_killed_node_rejoins(cluster):
    first = wait_leader(cluster)
    assert first is not None
    # Every node registers at its first election round after unsealing (every 2 s).
    other = cluster.nodes[(first + 1) % 3]["addr"]
    status = wait_until(lambda: (lambda n: n if len(n) == 3 else None)(call(other, "GET", "sys/ha-status").json()["data"]["nodes"]),
                        timeout=5)
    assert status and sum(n["active_node"] for n in status) == 1, status
    assert [n for n in status if n["active_node"]][0]["api_address"] == cluster.nodes[first]["addr"]
    # Every node is active for requests: health is 200 everywhere, not 429 on "standbys".
    for n in cluster.nodes:
        assert requests.get(f"{n['addr']}/v1/sys/health", timeout=5).status_code == 200

    killed_at = time.time()
    cluster.kill_node(first)
    nxt = wait_leader(cluster, other_than=first)
    assert nxt is not None, "no other node took the lead"
    took = time.time() - killed_at
    assert took < 10, f"took {took:.1f} s"
    other = cluster.nodes[nxt]["addr"]
    assert wait_until(lambda: call(other, "GET", "sys/leader", token=None).json()["leader_address"] == other, timeout=5)

    # The killed node comes back by itself (auto-unseal from the key file), as a follower.
    cluster.start_node(first)
    back = cluster.nodes[first]["addr"]
    assert call(back, "GET", "sys/leader", token=None).json()["is_self"] is False
    assert call(back, "GET", "sys/leader", token=None).json()["leader_address"] == other


def pg_restartable():
    """The fault test restarts PostgreSQL itself: only the private cluster of scripts/pg.sh."""
    ours = subprocess.run(["bash", os.path.join(REPO, "scripts", "pg.sh"), "url"], capture_output=True, text=True).stdout.strip()
    return pg_url() == ours


def test_issuance_survives_a_killed_node_and_a_database_restart(cluster):
    if not pg_restartable():
        pytest.skip("SIGNET_TEST_PG_URL is not scripts/pg.sh's cluster: this test restarts PostgreSQL")
    addrs = [n["addr"] for n in cluster.nodes]
    pki = unique("pki")
    setup_pki(addrs[0], pki)
    for a in addrs:
        assert wait_until(lambda: call(a, "POST", f"{pki}/issue/web", {"common_name": "warm.example.com", "ttl": "5m"}).status_code == 200, timeout=2)

    stop = threading.Event()
    log = []  # (node, started, ended, status or exception text, serial)
    lock = threading.Lock()

    def client(i):
        s = requests.Session()
        n = 0
        while not stop.is_set():
            n += 1
            t0 = time.time()
            try:
                r = s.post(f"{addrs[i]}/v1/{pki}/issue/web", headers=H, timeout=TIMEOUT,
                           json={"common_name": f"c{i}-{n}.example.com", "ttl": "5m"})
                status = r.status_code
                serial = r.json()["data"]["serial_number"] if status == 200 else None
                text = "" if status == 200 else r.text
            except requests.RequestException as e:
                status, serial, text = "exc", None, type(e).__name__
                s = requests.Session()
                time.sleep(0.05)
            with lock:
                log.append((i, t0, time.time(), status, serial, text))

    threads = [threading.Thread(target=client, args=(i % 3,)) for i in range(6)]
    for t in threads:
        t.start()
    windows = []  # (node or None for all, start, end) when errors are allowed
    try:
        time.sleep(3)
        t = time.time()
        cluster.kill_node(1)
        time.sleep(2)
        cluster.start_node(1)
        windows.append((1, t, time.time()))
        time.sleep(3)
        t = time.time()
        out = subprocess.run(["bash", os.path.join(REPO, "scripts", "pg.sh"), "restart", "fast"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        back = time.time()
        # Recovery: each node answers again without being restarted.
        for a in addrs:
            assert wait_until(lambda: call(a, "POST", f"{pki}/issue/web", {"common_name": "up.example.com", "ttl": "5m"}).status_code == 200,
                              timeout=20), f"{a} did not recover"
        windows.append((None, t, time.time()))
        print(f"PostgreSQL restart took {back - t:.1f} s; every node issuing again {time.time() - back:.1f} s later")
        time.sleep(3)
    finally:
        stop.set()
        for th in threads:
            th.join(TIMEOUT + 5)

    def allowed(entry):
        node, t0, t1 = entry[0], entry[1], entry[2]
        return any((w_node is None or w_node == node) and t0 <= w_end and t1 >= w_start for w_node, w_start, w_end in windows)

    ok = [e for e in log if e[3] == 200]
    bad = [e for e in log if e[3] != 200]
    assert len(ok) > 50, f"only {len(ok)} certificates issued"
    # Errors only during the outages, and only the clear kinds.
    outside = [e for e in bad if not allowed(e)]
    assert not outside, f"errors outside the outage windows: {outside[:5]}"
    for e in bad:
        if e[3] == "exc":
            assert e[5] != "ReadTimeout", f"a request hung past {TIMEOUT} s: {e}"
            assert e[0] == 1 or e[5] in ("ConnectionError",), e  # only the killed node drops connections
        else:
            assert e[3] == 503 and "errors" in e[5], f"unexpected error answer: {e}"
    slowest = max(e[2] - e[1] for e in log)
    assert slowest < TIMEOUT + 1, slowest
    # No serial twice; every acknowledged serial in the inventory (each node agrees).
    serials = [e[4] for e in ok]
    assert len(serials) == len(set(serials)), "two certificates share a serial"
    for a in addrs:
        r = call(a, "LIST", f"{pki}/certs")
        assert r.status_code == 200, r.text
        inventory = r.json()["data"]["keys"]
        assert len(inventory) == len(set(inventory))
        missing = set(serials) - set(inventory)
        assert not missing, f"{len(missing)} acknowledged serials missing from {a}'s inventory"
    for s in serials[:: max(1, len(serials) // 20)]:
        assert call(addrs[2], "GET", f"{pki}/cert/{s}").status_code == 200
    print(f"issued {len(ok)}, errors {len(bad)} ({sum(1 for e in bad if e[3] == 503)} x 503), slowest {slowest:.2f} s")


class Forwarder:
    """A TCP forwarder to PostgreSQL, started late: the database is "unreachable" until then."""

    def __init__(self, port, target):
        self.port, self.target = port, target
        self.sock = None

    def start(self):
        self.sock = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stop(self):
        if self.sock:
            self.sock.close()


def test_database_unreachable_at_start(cluster):
    url = pg_url()
    host_port = url.split("@", 1)[1].split("/", 1)[0]
    pg_port = int(host_port.rsplit(":", 1)[1])
    proxy_port = free_port()
    late_url = url.replace(f":{pg_port}/", f":{proxy_port}/")
    seal = os.path.join(cluster.workdir, "seal.key")
    d = os.path.join(cluster.workdir, "late")
    os.makedirs(d)
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    conf = os.path.join(d, "late.hcl")
    with open(conf, "w") as f:
        f.write(f'storage "postgresql" {{\n  connection_url = "{late_url}"\n  table = "{cluster.table}"\n}}\n'
                f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
                f'seal "file" {{\n  path = "{seal}"\n}}\n')
    proc, log = _spawn("signet-pg", [f"-config={conf}"], d, addr, want=ANY_HEALTH)
    fwd = Forwarder(proxy_port, ("127.0.0.1", pg_port))
    try:
        r = requests.get(f"{addr}/v1/sys/health", timeout=TIMEOUT)
        assert r.status_code == 503, r.text
        assert "storage" in " ".join(r.json()["errors"]), r.text
        r = requests.get(f"{addr}/v1/secret/x", headers=H, timeout=TIMEOUT)
        assert r.status_code == 503, r.text
        time.sleep(3)
        assert proc.poll() is None, "the node exited while the database was unreachable"
        fwd.start()
        # It unseals by itself (backoff is at most 5 s) and serves what the cluster holds.
        assert wait_until(lambda: requests.get(f"{addr}/v1/sys/health", timeout=5).status_code == 200, timeout=20), \
            open(log).read()[-2000:]
        assert call(cluster.addr, "POST", "secret/late", {"v": "1"}).status_code == 204
        assert call(addr, "GET", "secret/late").json()["data"] == {"v": "1"}
    finally:
        proc.terminate()
        proc.wait(10)
        fwd.stop()


def test_single_use_secret_id_logs_in_once_across_nodes(cluster):
    """A secret ID with secret_id_num_uses=1, presented to all three nodes at once, logs in
    exactly once: its use count is taken under a cluster-wide lock."""
    addrs = [n["addr"] for n in cluster.nodes]
    path = unique("approle")
    assert call(addrs[0], "POST", f"sys/auth/{path}", {"type": "approle"}).status_code == 204
    assert call(addrs[0], "POST", f"auth/{path}/role/once", {"secret_id_num_uses": 1}).status_code == 204
    role_id = call(addrs[1], "GET", f"auth/{path}/role/once/role-id").json()["data"]["role_id"]
    for _ in range(10):
        secret = call(addrs[2], "POST", f"auth/{path}/role/once/secret-id").json()["data"]["secret_id"]
        results = all_at_once(addrs, lambda sess, a: sess.post(
            f"{a}/v1/auth/{path}/login", json={"role_id": role_id, "secret_id": secret}, timeout=TIMEOUT).status_code,
            per_node=3)
        assert sorted(results).count(200) == 1, results


def test_single_use_token_is_used_once_across_nodes(cluster):
    """A token with num_uses=1, presented to all three nodes at once, serves one request."""
    addrs = [n["addr"] for n in cluster.nodes]
    for _ in range(10):
        tok = call(addrs[0], "POST", "auth/token/create", {"num_uses": 1, "policies": ["default"]}).json()["auth"]["client_token"]
        wait_until(lambda: all(call(a, "GET", "sys/health", token=None).status_code == 200 for a in addrs), timeout=2)
        results = all_at_once(addrs, lambda sess, a: sess.get(
            f"{a}/v1/auth/token/lookup-self", headers={"X-Vault-Token": tok}, timeout=TIMEOUT).status_code,
            per_node=3)
        assert sorted(results).count(200) == 1, results
        assert set(results) <= {200, 403}, results


def test_node_that_missed_notifications_resynchronises(cluster):
    """Node B's change-feed connection is cut (pg_terminate_backend) and a policy changes on
    node A at once, while B may not be listening: B must still apply it within a second —
    after reconnecting it drops every cache, since notifications sent meanwhile are lost."""
    if not pg_restartable():
        pytest.skip("SIGNET_TEST_PG_URL is not scripts/pg.sh's cluster: this test cuts its connections")
    a, b = cluster.nodes[0]["addr"], cluster.nodes[1]["addr"]
    policy = unique("p")
    pki = unique("pki")
    setup_pki(a, pki)
    allow = f'path "{pki}/issue/web" {{ capabilities = ["update"] }}'
    assert call(a, "PUT", f"sys/policies/acl/{policy}", {"policy": allow}).status_code == 204
    tok = call(a, "POST", "auth/token/create", {"policies": [policy]}).json()["auth"]["client_token"]
    # B has the policy and the token in its caches.
    within_a_second(lambda: call(b, "POST", f"{pki}/issue/web", {"common_name": "x.example.com"}, token=tok).status_code == 200)
    for _ in range(3):
        cut = subprocess.run(["bash", os.path.join(REPO, "scripts", "pg.sh"), "sql",
                              f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                              f"WHERE query ILIKE 'LISTEN {cluster.table}_changes%' AND pid <> pg_backend_pid()"],
                             capture_output=True, text=True, timeout=30)
        assert cut.returncode == 0 and int(cut.stdout.strip()) >= 1, cut.stdout + cut.stderr
        deny = f'path "{pki}/issue/none" {{ capabilities = ["update"] }}'
        assert call(a, "PUT", f"sys/policies/acl/{policy}", {"policy": deny}).status_code == 204
        within_a_second(lambda: call(b, "POST", f"{pki}/issue/web", {"common_name": "x.example.com"}, token=tok).status_code == 403)
        assert call(a, "PUT", f"sys/policies/acl/{policy}", {"policy": allow}).status_code == 204
        within_a_second(lambda: call(b, "POST", f"{pki}/issue/web", {"common_name": "x.example.com"}, token=tok).status_code == 200)
        time.sleep(1.5)  # every node listening again


def test_step_down_hands_the_lead_to_another_node(cluster):
    first = wait_leader(cluster)
    assert first is not None
    leader = cluster.nodes[first]["addr"]
    # Without sudo the node stays leader (the answer is 204 all the same, as OpenBao's).
    assert call(leader, "PUT", "sys/step-down", token=None).status_code == 204
    time.sleep(0.5)
    assert leader_index(cluster) == first
    assert call(leader, "PUT", "sys/step-down").status_code == 204
    nxt = wait_leader(cluster, other_than=first, timeout=10)
    assert nxt is not None, "no other node took the lead"
    assert call(leader, "GET", "sys/leader", token=None).json()["is_self"] is False


def test_issuers_created_concurrently_on_three_nodes(cluster):
    """Issuer changes are serialised across nodes (a cluster-wide lock, reads from storage
    under it): roots generated at once through all three nodes all end up in the mount, with
    one default, as every node sees it."""
    addrs = [n["addr"] for n in cluster.nodes]
    pki = unique("pki")
    assert call(addrs[0], "POST", f"sys/mounts/{pki}", {"type": "pki"}).status_code == 204
    within_a_second(lambda: all(call(a, "GET", f"sys/mounts/{pki}").status_code == 200 for a in addrs))
    def gen(sess, a):
        name = unique("r")
        r = sess.post(f"{a}/v1/{pki}/issuers/generate/root/internal", headers=H, timeout=TIMEOUT,
                      json={"common_name": f"root {name}", "key_type": "ec", "issuer_name": name})
        return r.status_code, r.json()["data"]["issuer_id"] if r.status_code == 200 else r.text
    made = all_at_once(addrs, gen, per_node=2)
    assert all(st == 200 for st, _ in made), made
    ids = sorted(i for _, i in made)
    for a in addrs:
        def complete():
            r = call(a, "LIST", f"{pki}/issuers")
            return r.status_code == 200 and sorted(r.json()["data"]["keys"]) == ids
        within_a_second(complete)
        default = call(a, "GET", f"{pki}/config/issuers").json()["data"]["default"]
        assert default in ids


def test_mounts_enabled_concurrently_on_three_nodes(cluster):
    """The mount table is one record: enabling mounts through all three nodes at once keeps
    every one (changes take a cluster-wide lock and re-read the table under it)."""
    addrs = [n["addr"] for n in cluster.nodes]
    names = [unique("kv") for _ in range(9)]
    left = list(names)

    def enable(sess, a):
        name = left.pop()  # each thread its own name (list.pop is atomic)
        return sess.post(f"{a}/v1/sys/mounts/{name}", headers=H, timeout=TIMEOUT,
                         json={"type": "kv", "options": {"version": "1"}}).status_code
    results = all_at_once(addrs, enable, per_node=3)
    assert results == [204] * len(names), results
    for a in addrs:
        within_a_second(lambda: all(f"{n}/" in call(a, "GET", "sys/mounts").json()["data"] for n in names))
