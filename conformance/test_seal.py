"""init / unseal / seal on non-dev servers (OpenBao on inmem storage, signet on SQLite),
driven over HTTP and by the real bao CLI."""
import base64
import json
import os
import subprocess

import pytest

from conftest import assert_errors, ok

SEALED = ["Vault is sealed"]


def assert_progress(server, progress):
    status = server.seal_status()
    assert status["sealed"] is True and status["progress"] == progress, status
    # A nonce identifies an unseal attempt in progress; there is none at progress 0.
    assert (status["nonce"] != "") == (progress > 0), status
    return status


def test_uninitialised_server(fresh_server):
    t = fresh_server()
    r = t.req("GET", "sys/init")
    assert r.status_code == 200 and r.json() == {"initialized": False}
    r = t.req("GET", "sys/health")
    assert r.status_code == 501
    assert r.json()["initialized"] is False and r.json()["sealed"] is True
    assert t.req("GET", "sys/health", params={"uninitcode": "200"}).status_code == 200
    status = t.seal_status()
    assert status["initialized"] is False and status["sealed"] is True
    assert status["t"] == 0 and status["n"] == 0 and status["progress"] == 0 and status["type"] == "shamir"
    assert_errors(t.req("PUT", "sys/unseal", json={"key": "AAAA"}), 400, ["Vault is not initialized"])
    assert_errors(t.req("GET", "secret/foo", token="some-token"), 503, SEALED)
    assert t.cli("status").returncode == 2


def test_init_with_cli_then_unseal_share_by_share(fresh_server):
    t = fresh_server()
    r = ok(t.cli("operator", "init", "-key-shares=3", "-key-threshold=2", "-format=json"))
    init = json.loads(r.stdout)
    keys_b64, keys_hex, root = init["unseal_keys_b64"], init["unseal_keys_hex"], init["root_token"]
    assert len(keys_b64) == 3 and len(keys_hex) == 3 and root
    assert init["unseal_shares"] == 3 and init["unseal_threshold"] == 2
    for b, h in zip(keys_b64, keys_hex):
        assert base64.b64decode(b).hex() == h

    # Sealed: health 503 (or the override), every other request 503 "Vault is sealed".
    assert t.req("GET", "sys/health").status_code == 503
    assert t.req("GET", "sys/health", params={"sealedcode": "299"}).status_code == 299
    assert t.req("GET", "sys/init").json() == {"initialized": True}
    status = assert_progress(t, 0)
    assert status["initialized"] is True and status["t"] == 2 and status["n"] == 3
    assert_errors(t.req("GET", "sys/mounts", token=root), 503, SEALED)
    assert_errors(t.req("GET", "kv/foo", token=root), 503, SEALED)
    assert_errors(t.req("POST", "kv/foo", token=root, json={"a": "b"}), 503, SEALED)
    assert_errors(t.req("GET", "kv/foo"), 503, SEALED)
    assert t.cli("status").returncode == 2

    # One share: progress 1. The same share again changes nothing; reset starts over.
    out = json.loads(ok(t.cli("operator", "unseal", "-format=json", keys_b64[0])).stdout)
    assert out["sealed"] is True and out["progress"] == 1 and out["t"] == 2
    first = assert_progress(t, 1)
    r = t.req("PUT", "sys/unseal", json={"key": keys_b64[0]})
    assert r.status_code == 200 and r.json()["progress"] == 1 and r.json()["nonce"] == first["nonce"]
    r = t.req("PUT", "sys/unseal", json={"reset": True})
    assert r.status_code == 200 and r.json()["progress"] == 0 and r.json()["sealed"] is True
    assert_progress(t, 0)

    # Bad input is refused without touching progress.
    assert_errors(t.req("PUT", "sys/unseal", json={"key": "not-a-key!"}), 400, ["'key' must be a valid hex or base64 string"])
    assert_errors(t.req("PUT", "sys/unseal", json={}), 400, ["'key' must be specified in request body as JSON, or 'reset' set to true"])
    assert_errors(t.req("PUT", "sys/unseal", json={"key": "AAAA"}), 400)  # too short to be a share
    assert_progress(t, 0)

    # A well-formed share that does not belong: refused once the threshold is reached, and
    # the attempt starts over.
    t.req("PUT", "sys/unseal", json={"key": keys_b64[0]})
    wrong = base64.b64encode(bytes(range(33))).decode()
    errors = assert_errors(t.req("PUT", "sys/unseal", json={"key": wrong}), 400)
    assert errors and errors[0]
    assert_progress(t, 0)

    # Two shares (one base64, one hex) through the CLI unseal it.
    out = json.loads(ok(t.cli("operator", "unseal", "-format=json", keys_b64[1])).stdout)
    assert out["sealed"] is True and out["progress"] == 1
    out = json.loads(ok(t.cli("operator", "unseal", "-format=json", keys_hex[2])).stdout)
    assert out["sealed"] is False and out["progress"] == 0
    assert t.req("GET", "sys/health").status_code == 200
    assert ok(t.cli("status")).returncode == 0
    # Unsealing an unsealed server just answers the status.
    r = t.req("PUT", "sys/unseal", json={"key": keys_b64[0]})
    assert r.status_code == 200 and r.json()["sealed"] is False

    # A second init is refused, over HTTP and by the CLI.
    r = t.req("PUT", "sys/init", json={"secret_shares": 1, "secret_threshold": 1})
    assert_errors(r, 400, ["Vault is already initialized"])
    r = t.cli("operator", "init", "-key-shares=1", "-key-threshold=1")
    assert r.returncode == 2 and "Vault is already initialized" in r.stderr


def test_seal_and_unseal_again_keeps_data(fresh_server):
    t = fresh_server()
    r = t.req("PUT", "sys/init", json={"secret_shares": 3, "secret_threshold": 2})
    assert r.status_code == 200
    init = r.json()
    assert {"keys", "keys_base64", "root_token"} <= set(init)
    assert len(init["keys"]) == 3 and len(init["keys_base64"]) == 3
    t.keys, t.root = init["keys_base64"], init["root_token"]
    assert t.unseal()["sealed"] is False

    assert t.req("POST", "sys/mounts/app", token=t.root, json={"type": "kv", "options": {"version": "1"}}).status_code == 204
    assert t.req("POST", "app/db", token=t.root, json={"password": "correct-horse-7f3a"}).status_code == 204
    assert_errors(t.req("PUT", "sys/seal"), 403, ["permission denied"])
    assert t.req("GET", "sys/seal-status").json()["sealed"] is False

    ok(t.cli("operator", "seal", token=t.root))
    assert_progress(t, 0)
    assert_errors(t.req("GET", "app/db", token=t.root), 503, SEALED)
    assert t.req("GET", "sys/health").status_code == 503

    assert t.unseal(t.keys[1:])["sealed"] is False
    r = t.req("GET", "app/db", token=t.root)
    assert r.status_code == 200 and r.json()["data"] == {"password": "correct-horse-7f3a"}


def grep_count(needle, path):
    """`grep -c` on a (binary) file: how many lines hold `needle`; 0 for a missing file."""
    if not os.path.exists(path):
        return 0
    r = subprocess.run(["grep", "-c", "-a", "-F", needle, path], capture_output=True, text=True)
    assert r.returncode in (0, 1), r.stderr
    return int(r.stdout.strip() or 0)


# signet only: OpenBao's reference server here runs on in-memory storage, which a restart
# loses; signet's SQLite file is what this case is about.
@pytest.mark.parametrize("fresh_server", ["signet"], indirect=True)
def test_signet_restart_comes_back_sealed_with_data_encrypted_at_rest(fresh_server):
    t = fresh_server()
    t.init(shares=3, threshold=2)
    assert t.unseal()["sealed"] is False
    secret = "unmistakable-secret-value-91c2"
    assert t.req("POST", "sys/mounts/keep", token=t.root, json={"type": "kv", "options": {"version": "1"}}).status_code == 204
    assert t.req("POST", "keep/db", token=t.root, json={"password": secret}).status_code == 204
    assert t.req("POST", "sys/mounts/keep/tune", token=t.root, json={"default_lease_ttl": "1h"}).status_code == 204

    files = [t.db_path, t.db_path + "-wal"]
    assert os.path.exists(t.db_path)
    for path in files:  # while running, the value may still sit in the WAL
        assert grep_count(secret, path) == 0, f"{secret} in clear text in {path}"
        assert grep_count(t.root, path) == 0, f"the root token in clear text in {path}"

    t.restart()
    for path in files:
        assert grep_count(secret, path) == 0, f"{secret} in clear text in {path}"
    status = t.seal_status()
    assert status["initialized"] is True and status["sealed"] is True and status["t"] == 2 and status["n"] == 3
    assert_errors(t.req("GET", "keep/db", token=t.root), 503, SEALED)
    assert t.unseal()["sealed"] is False
    r = t.req("GET", "keep/db", token=t.root)
    assert r.status_code == 200 and r.json()["data"] == {"password": secret}
    assert r.json()["lease_duration"] == 3600  # the tune survived too
    assert "keep/" in t.req("GET", "sys/mounts", token=t.root).json()["data"]
