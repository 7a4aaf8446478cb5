"""sys/health, seal-status, leader, init, OpenAPI and help on a running (dev) server."""


def test_health_and_overrides(target):
    r = target.req("GET", "sys/health", token=None)
    assert r.status_code == 200
    body = r.json()
    for k in ("initialized", "sealed", "standby", "server_time_utc", "version"):
        assert k in body
    assert body["initialized"] is True and body["sealed"] is False
    assert target.req("GET", "sys/health", token=None, params={"activecode": "299"}).status_code == 299
    assert target.req("HEAD", "sys/health", token=None).status_code == 200


def test_seal_status_leader_init(target):
    s = target.req("GET", "sys/seal-status", token=None).json()
    assert s["type"] == "shamir" and s["sealed"] is False and s["initialized"] is True
    assert s["t"] == 1 and s["n"] == 1
    assert "ha_enabled" in target.req("GET", "sys/leader", token=None).json()
    assert target.req("GET", "sys/init", token=None).json() == {"initialized": True}


def test_openapi_and_help(target):
    kv = target.mount_kv()
    doc = target.req("GET", "sys/internal/specs/openapi").json()
    assert doc["openapi"].startswith("3.") and isinstance(doc["paths"], dict)
    r = target.req("GET", f"{kv}/anything", params={"help": "1"})
    assert r.status_code == 200
    assert isinstance(r.json()["help"], str) and r.json()["help"]


def test_bao_status(target):
    r = target.cli("status")
    assert r.returncode == 0, r.stderr
    assert "Sealed" in r.stdout
