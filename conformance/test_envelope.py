"""The shape of every answer: the logical-response envelope, the copy of `data` to the top
level that sys/mounts* answers carry, error bodies, and 204 for writes that return nothing."""
from conftest import ENVELOPE_KEYS, assert_errors, assert_exact_envelope, assert_sys_copy

# The keys OpenBao gives for one secrets-engine mount (GET sys/mounts/<path>, and each entry of
# GET sys/mounts); sys/internal/ui/mounts/<path> adds "path".
MOUNT_KEYS = {
    "accessor", "config", "deprecation_status", "description", "external_entropy_access", "local", "options",
    "plugin_version", "running_plugin_version", "running_sha256", "seal_wrap", "type", "uuid",
}
TUNE_KEYS = {"default_lease_ttl", "description", "force_no_cache", "max_lease_ttl", "options"}


def test_read_envelope_is_exact(target):
    kv = target.mount_kv()
    assert target.req("POST", f"{kv}/k", json={"a": "b"}).status_code == 204
    r = target.req("GET", f"{kv}/k")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "application/json"
    body = r.json()
    assert_exact_envelope(body)
    assert body["data"] == {"a": "b"}
    assert body["lease_id"] == "" and body["renewable"] is False
    assert body["wrap_info"] is None and body["warnings"] is None and body["auth"] is None


def test_list_envelope_is_exact(target):
    kv = target.mount_kv()
    target.req("POST", f"{kv}/k", json={"a": "b"})
    body = target.req("LIST", f"{kv}/").json()
    assert_exact_envelope(body)
    assert body["data"] == {"keys": ["k"]}
    assert body["lease_duration"] == 0


def test_write_without_data_is_204_with_empty_body(target):
    kv = target.mount_kv()
    for method in ("POST", "PUT"):
        r = target.req(method, f"{kv}/k", json={"a": "b"})
        assert r.status_code == 204 and r.content == b""
    r = target.req("DELETE", f"{kv}/k")
    assert r.status_code == 204 and r.content == b""
    r = target.req("POST", f"sys/mounts/{kv}/tune", json={"description": "x"})
    assert r.status_code == 204 and r.content == b""


def test_error_body_is_errors_only(target):
    kv = target.mount_kv()
    r = target.req("GET", f"{kv}/missing")
    assert_errors(r, 404, [])
    assert r.headers["Content-Type"] == "application/json"
    assert_errors(target.req("GET", f"{kv}/missing", token=None), 403, ["permission denied"])
    assert_errors(target.req("POST", f"sys/mounts/{kv}", json={"type": "kv"}), 400, [f"path is already in use at {kv}/"])


def test_sys_mount_read_copies_data_to_top_level(target):
    kv = target.mount_kv()
    body = target.req("GET", f"sys/mounts/{kv}").json()
    assert_sys_copy(body)
    data = body["data"]
    assert set(data) == MOUNT_KEYS
    assert data["type"] == "kv" and data["description"] == "" and data["options"] == {"version": "1"}
    assert data["config"] == {"default_lease_ttl": 0, "force_no_cache": False, "max_lease_ttl": 0}
    assert data["accessor"].startswith("kv_")
    assert data["local"] is False and data["seal_wrap"] is False and data["external_entropy_access"] is False
    assert data["plugin_version"] == "" and data["running_sha256"] == ""
    assert data["deprecation_status"] == "supported"


def test_sys_mount_tune_read_copies_data_to_top_level(target):
    kv = target.mount_kv()
    body = target.req("GET", f"sys/mounts/{kv}/tune").json()
    assert_sys_copy(body)
    assert set(body["data"]) == TUNE_KEYS
    assert body["data"] == {
        "default_lease_ttl": 2764800, "max_lease_ttl": 2764800, "description": "",
        "force_no_cache": False, "options": {"version": "1"},
    }


def test_sys_mounts_list_copies_data_to_top_level(target):
    kv = target.mount_kv()
    body = target.req("GET", "sys/mounts").json()
    assert_sys_copy(body)
    assert {"sys/", f"{kv}/"} <= set(body["data"])
    assert set(body["data"][f"{kv}/"]) == MOUNT_KEYS


def test_ui_mount_read_is_a_plain_envelope(target):
    kv = target.mount_kv()
    body = target.req("GET", f"sys/internal/ui/mounts/{kv}").json()
    assert set(body) == ENVELOPE_KEYS  # no top-level copy here
    assert set(body["data"]) == MOUNT_KEYS | {"path"}
