"""sys/health, seal-status, leader, init, the OpenAPI document and ?help=1 on a running (dev,
unsealed) server, and `bao status`."""
import json
import time

import pytest

from conftest import assert_errors, ok, wait_until

HEALTH_KEYS = {
    "initialized", "sealed", "standby", "replication_performance_mode", "replication_dr_mode",
    "server_time_utc", "version", "cluster_name", "cluster_id",
}
SEAL_STATUS_KEYS = {
    "type", "initialized", "sealed", "t", "n", "progress", "nonce", "recovery_seal", "version", "commit_date",
    "migration", "cluster_name", "cluster_id", "storage_type",
}


def test_health_active_unsealed(target):
    r = target.req("GET", "sys/health", token=None)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert HEALTH_KEYS <= set(body), sorted(HEALTH_KEYS - set(body))
    assert body["initialized"] is True and body["sealed"] is False and body["standby"] is False
    assert abs(body["server_time_utc"] - time.time()) < 60
    assert isinstance(body["version"], str) and body["version"]


@pytest.mark.parametrize("query,status", [
    ({"activecode": "299"}, 299),
    ({"activecode": "204"}, 204),
    ({"standbyok": "true"}, 200),
    ({"sealedcode": "299", "uninitcode": "299"}, 200),  # neither applies to an unsealed server
])
def test_health_status_overrides(target, query, status):
    r = target.req("GET", "sys/health", token=None, params=query)
    assert r.status_code == status
    if status != 204:
        assert r.json()["sealed"] is False


def test_health_head_and_tokens(target):
    r = target.req("HEAD", "sys/health", token=None)
    assert r.status_code == 200 and r.content == b""
    assert target.req("HEAD", "sys/health", token=None, params={"activecode": "299"}).status_code == 299
    # An unauthenticated endpoint ignores a bad token.
    assert target.req("GET", "sys/health", token="bogus").status_code == 200


def test_seal_status(target):
    body = target.req("GET", "sys/seal-status", token=None).json()
    assert SEAL_STATUS_KEYS <= set(body), sorted(SEAL_STATUS_KEYS - set(body))
    assert body["type"] == "shamir" and body["initialized"] is True and body["sealed"] is False
    assert body["t"] == 1 and body["n"] == 1 and body["progress"] == 0 and body["nonce"] == ""
    assert body["recovery_seal"] is False and body["migration"] is False
    assert target.req("GET", "sys/seal-status", token="bogus").status_code == 200


def test_leader_and_init(target):
    r = target.req("GET", "sys/leader", token=None)
    if target.kind == "signet-pg":
        # A node of a cluster: HA is on, and some node (maybe this one) leads.
        body = r.json()
        assert r.status_code == 200 and body["ha_enabled"] is True, body
        assert body["leader_address"].startswith("http://127.0.0.1:"), body
    else:
        assert r.status_code == 200 and r.json() == {"ha_enabled": False}
    r = target.req("GET", "sys/init", token=None)
    assert r.status_code == 200 and r.json() == {"initialized": True}


def test_openapi_document(target):
    kv = target.mount_kv()
    r = target.req("GET", "sys/internal/specs/openapi")
    assert r.status_code == 200
    doc = r.json()
    assert {"openapi", "info", "paths", "components"} <= set(doc)
    assert doc["openapi"].startswith("3.") and isinstance(doc["info"], dict) and isinstance(doc["paths"], dict)
    assert any(p.startswith(f"/{kv}/") for p in doc["paths"]), "the new mount is not described"
    assert "/sys/mounts/{path}" in doc["paths"]
    # Unauthenticated it answers too (describing only what needs no token); a bad token is refused.
    anon = target.req("GET", "sys/internal/specs/openapi", token=None)
    assert anon.status_code == 200 and {"openapi", "paths"} <= set(anon.json())
    assert_errors(target.req("GET", "sys/internal/specs/openapi", token="bogus"), 403, ["permission denied"])


def test_help_query(target):
    kv = target.mount_kv()
    for path in (f"{kv}/anything", "sys/health", "sys/mounts"):
        r = target.req("GET", path, params={"help": "1"})
        assert r.status_code == 200, path
        body = r.json()
        assert isinstance(body["help"], str) and body["help"], path
        assert "request_id" not in body  # a help answer is not an envelope
    assert_errors(target.req("GET", f"{kv}/anything", token=None, params={"help": "1"}), 403, ["permission denied"])
    assert_errors(target.req("GET", "no-such-mount/x", params={"help": "1"}), 404,
                  ['no handler for route "no-such-mount/x". route entry not found.'])


def test_bao_status_unsealed(target):
    r = ok(target.cli("status", token=None))
    assert "Sealed" in r.stdout and "false" in r.stdout
    status = json.loads(ok(target.cli("status", "-format=json", token=None)).stdout)
    assert status["sealed"] is False and status["initialized"] is True and status["type"] == "shamir"
    if target.kind == "signet-pg":
        # A cluster node: the CLI shows HA on, the leader's address, and this node's role.
        assert status["ha_enabled"] is True, status
        assert status["leader_address"].startswith("http://127.0.0.1:"), status
        assert "HA Enabled" in r.stdout and "HA Mode" in r.stdout, r.stdout
    else:
        assert status["ha_enabled"] is False


def test_ui_mounts_refuses_a_bad_token(target):
    assert_errors(target.req("GET", "sys/internal/ui/mounts/secret", token="bogus"), 403, ["permission denied"])
    assert_errors(target.req("GET", "sys/internal/ui/mounts/secret", token=None), 403, ["permission denied"])
    r = target.req("GET", "sys/internal/ui/mounts", token=None)
    assert r.status_code == 200 and r.json()["data"] == {"auth": {}, "secret": {}}


def test_help_needs_a_valid_token_but_no_policy(target):
    kv = target.mount_kv()
    r = target.req("POST", "auth/token/create", json={"policies": ["default"], "ttl": "10m"})
    limited = r.json()["auth"]["client_token"]
    assert target.req("GET", f"{kv}/x", token=limited).status_code == 403
    r = target.req("GET", f"{kv}/x", params={"help": "1"}, token=limited)
    assert r.status_code == 200 and r.json()["help"]
    assert target.req("GET", f"{kv}/x", params={"help": "1"}, token="bogus").status_code == 403


def test_step_down_answers_204(target):
    """`sys/step-down` (OpenBao runs it in the background and always answers 204)."""
    assert target.req("PUT", "sys/step-down").status_code == 204
    assert target.req("PUT", "sys/step-down", token=None).status_code == 204
    ok(target.cli("operator", "step-down"))
    assert wait_until(lambda: target.req("GET", "sys/health", token=None).status_code == 200, timeout=15)
