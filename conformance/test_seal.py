"""init / unseal / seal on non-dev servers, driven over HTTP and by the real bao CLI."""
import json
import os
import subprocess

import pytest


def test_lifecycle(fresh_server):
    t = fresh_server()
    assert t.req("GET", "sys/init", token=None).json() == {"initialized": False}
    assert t.req("GET", "sys/health", token=None).status_code == 501
    r = t.cli("operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json", token=None)
    assert r.returncode == 0, r.stderr
    init = json.loads(r.stdout)
    keys, root = init["unseal_keys_b64"], init["root_token"]
    assert len(keys) == 3 and len(init["unseal_keys_hex"]) == 3 and root
    assert t.req("GET", "sys/health", token=None).status_code == 503
    r = t.req("GET", "sys/mounts", token=root)
    assert r.status_code == 503 and r.json() == {"errors": ["Vault is sealed"]}
    assert t.cli("status", token=None).returncode == 2
    # Progress, a repeated share, reset, bad input.
    assert t.req("PUT", "sys/unseal", token=None, json_body={"key": keys[0]}).json()["progress"] == 1
    assert t.req("PUT", "sys/unseal", token=None, json_body={"key": keys[0]}).json()["progress"] == 1
    assert t.req("PUT", "sys/unseal", token=None, json_body={"reset": True}).json()["progress"] == 0
    assert t.req("PUT", "sys/unseal", token=None, json_body={"key": "not-a-key!"}).status_code == 400
    assert t.req("PUT", "sys/unseal", token=None, json_body={}).status_code == 400
    r = t.cli("operator", "unseal", keys[1], token=None)
    assert r.returncode == 0, r.stderr
    r = t.cli("operator", "unseal", "-format=json", keys[2], token=None)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["sealed"] is False
    assert t.req("PUT", "sys/init", token=None, json_body={"secret_shares": 1, "secret_threshold": 1}).status_code == 400
    # The CLI works with the root token; seal and unseal again.
    kv = "sealed-kv"
    assert t.req("POST", f"sys/mounts/{kv}", token=root, json_body={"type": "kv", "options": {"version": "1"}}).status_code == 204
    assert t.req("POST", f"{kv}/db", token=root, json_body={"password": "correct-horse-7f3a"}).status_code == 204
    assert t.cli("operator", "seal", token=root).returncode == 0
    assert t.req("GET", "sys/seal-status", token=None).json()["sealed"] is True
    for k in keys[:2]:
        t.req("PUT", "sys/unseal", token=None, json_body={"key": k})
    assert t.req("GET", f"{kv}/db", token=root).json()["data"] == {"password": "correct-horse-7f3a"}
    t.root, t.keys = root, keys


@pytest.mark.parametrize("fresh_server", ["signet"], indirect=True)
def test_signet_restart_keeps_everything_encrypted(fresh_server):
    """signet only: a restart on the same SQLite file comes back sealed with every mount and
    value, and the file holds no clear text (OpenBao's reference server here is in-memory)."""
    t = fresh_server()
    init = t.req("PUT", "sys/init", token=None, json_body={"secret_shares": 1, "secret_threshold": 1}).json()
    key, root = init["keys"][0], init["root_token"]
    t.req("PUT", "sys/unseal", token=None, json_body={"key": key})
    t.req("POST", "sys/mounts/keep", token=root, json_body={"type": "kv"})
    secret = "unmistakable-secret-value-91c2"
    t.req("POST", "keep/db", token=root, json_body={"password": secret})
    t.stop()
    for name in ("signet.db", "signet.db-wal"):
        p = os.path.join(t.workdir, name)
        if os.path.exists(p):
            assert subprocess.run(["grep", "-c", secret, p], capture_output=True).stdout.strip() in (b"0", b"")
            assert subprocess.run(["grep", "-c", root, p], capture_output=True).stdout.strip() in (b"0", b"")
    t2 = fresh_server(t.workdir)
    assert t2.req("GET", "sys/seal-status", token=None).json()["sealed"] is True
    t2.req("PUT", "sys/unseal", token=None, json_body={"key": key})
    assert t2.req("GET", "keep/db", token=root).json()["data"] == {"password": secret}
