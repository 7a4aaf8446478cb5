"""sys/mounts, tune, remount and the UI mount helper, over HTTP and the bao CLI."""
import time
import uuid


def test_enable_read_tune_disable(target):
    p = "m-" + uuid.uuid4().hex[:8]
    r = target.req("POST", f"sys/mounts/{p}", json_body={"type": "kv", "description": "d", "options": {"version": "1"}})
    assert r.status_code == 204
    # Enabling twice is refused.
    assert target.req("POST", f"sys/mounts/{p}", json_body={"type": "kv"}).status_code == 400
    body = target.req("GET", f"sys/mounts/{p}").json()
    assert body["data"]["type"] == "kv" and body["type"] == "kv"  # sys responses copy data to the top level
    assert body["data"]["options"] == {"version": "1"}
    r = target.req("POST", f"sys/mounts/{p}/tune", json_body={"default_lease_ttl": "1h", "max_lease_ttl": 7200, "description": "tuned"})
    assert r.status_code == 204
    body = target.req("GET", f"sys/mounts/{p}/tune").json()
    assert body["data"]["default_lease_ttl"] == 3600 and body["max_lease_ttl"] == 7200
    assert body["data"]["description"] == "tuned"
    mounts = target.req("GET", "sys/mounts").json()
    assert f"{p}/" in mounts["data"] and "sys/" in mounts["data"]
    assert target.req("DELETE", f"sys/mounts/{p}").status_code == 204
    assert f"{p}/" not in target.req("GET", "sys/mounts").json()["data"]


def test_unknown_engine_type_is_refused(target):
    r = target.req("POST", "sys/mounts/nope-" + target.kind, json_body={"type": "no-such-engine"})
    assert r.status_code == 400
    assert r.json()["errors"]


def test_remount_moves_data(target):
    src = target.mount_kv()
    dst = src + "-moved"
    target.req("POST", f"{src}/k", json_body={"v": "1"})
    r = target.req("POST", "sys/remount", json_body={"from": src, "to": dst})
    assert r.status_code == 200
    assert "migration_id" in r.json()["data"]
    deadline = time.time() + 10
    while time.time() < deadline:
        r = target.req("GET", f"{dst}/k")
        if r.status_code == 200:
            break
        time.sleep(0.1)
    assert r.json()["data"] == {"v": "1"}
    assert target.req("GET", f"{src}/k").status_code in (403, 404)


def test_ui_mounts_helper(target):
    kv = target.mount_kv()
    body = target.req("GET", f"sys/internal/ui/mounts/{kv}/deeper/key").json()
    assert body["data"]["type"] == "kv"
    assert body["data"]["path"] == f"{kv}/"
    assert body["data"]["options"] == {"version": "1"}
    r = target.req("GET", f"sys/internal/ui/mounts/{kv}", token=None)
    assert r.status_code == 403


def test_bao_secrets_commands(target):
    p = "clim-" + uuid.uuid4().hex[:6]
    assert target.cli("secrets", "enable", f"-path={p}", "-description=hello", "kv").returncode == 0
    r = target.cli("secrets", "tune", "-max-lease-ttl=87600h", "-default-lease-ttl=1h", p)
    assert r.returncode == 0, r.stderr
    tune = target.req("GET", f"sys/mounts/{p}/tune").json()["data"]
    assert tune["max_lease_ttl"] == 87600 * 3600 and tune["default_lease_ttl"] == 3600
    r = target.cli("secrets", "list", "-format=json")
    assert r.returncode == 0 and f"{p}/" in r.stdout
    r = target.cli("secrets", "move", p, p + "-2")
    assert r.returncode == 0, r.stderr
    assert target.cli("secrets", "disable", p + "-2").returncode == 0
