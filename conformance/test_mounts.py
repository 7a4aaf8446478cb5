"""Secrets-engine mounts: sys/mounts, tune, remount and the UI mount helper, over HTTP and
through `bao secrets enable|list|tune|move|disable`."""
import json

import pytest

from conftest import assert_errors, assert_sys_copy, ok, unique, wait_until


def test_enable_list_read_disable(target):
    p = unique("m")
    r = target.req("POST", f"sys/mounts/{p}", json={"type": "kv", "description": "d", "options": {"version": "1"}})
    assert r.status_code == 204
    mounts = target.req("GET", "sys/mounts").json()["data"]
    assert "sys/" in mounts and mounts["sys/"]["type"] == "system"
    assert mounts[f"{p}/"]["type"] == "kv" and mounts[f"{p}/"]["description"] == "d"
    body = target.req("GET", f"sys/mounts/{p}").json()
    assert body["data"]["type"] == "kv" and body["data"]["options"] == {"version": "1"}
    assert body["data"]["accessor"] == mounts[f"{p}/"]["accessor"]
    assert target.req("DELETE", f"sys/mounts/{p}").status_code == 204
    assert f"{p}/" not in target.req("GET", "sys/mounts").json()["data"]
    assert_errors(target.req("GET", f"sys/mounts/{p}"), 400, [f"No secret engine mount at {p}/"])


def test_enable_with_config(target):
    p = unique("m")
    r = target.req("POST", f"sys/mounts/{p}", json={
        "type": "kv", "options": {"version": "1"},
        "config": {"default_lease_ttl": "1h", "max_lease_ttl": "2h"},
    })
    assert r.status_code == 204
    assert target.req("GET", f"sys/mounts/{p}").json()["data"]["config"] == {
        "default_lease_ttl": 3600, "force_no_cache": False, "max_lease_ttl": 7200,
    }
    tune = target.req("GET", f"sys/mounts/{p}/tune").json()["data"]
    assert tune["default_lease_ttl"] == 3600 and tune["max_lease_ttl"] == 7200


def test_enable_without_options_has_empty_options(target):
    p = unique("m")
    assert target.req("POST", f"sys/mounts/{p}", json={"type": "kv"}).status_code == 204
    assert target.req("GET", f"sys/mounts/{p}").json()["data"]["options"] == {}
    # Empty options are left out of the tune answer.
    assert "options" not in target.req("GET", f"sys/mounts/{p}/tune").json()["data"]


def test_enable_on_existing_path_is_400(target):
    kv = target.mount_kv()
    r = target.req("POST", f"sys/mounts/{kv}", json={"type": "kv"})
    assert_errors(r, 400, [f"path is already in use at {kv}/"])


def test_disable_missing_mount_is_204(target):
    assert target.req("DELETE", f"sys/mounts/{unique('nope')}").status_code == 204


def test_unknown_engine_type_is_400(target):
    r = target.req("POST", f"sys/mounts/{unique('m')}", json={"type": "no-such-engine"})
    assert_errors(r, 400, ["plugin not found in the catalog: no-such-engine"])


@pytest.mark.parametrize("path,error", [
    ("sys", 'cannot mount "sys/"'),
    ("auth/x", 'cannot mount "auth/x/"'),
])
def test_reserved_paths_cannot_be_mounted(target, path, error):
    assert_errors(target.req("POST", f"sys/mounts/{path}", json={"type": "kv"}), 400, [error])


def test_sys_cannot_be_disabled(target):
    assert_errors(target.req("DELETE", "sys/mounts/sys"), 400, ['cannot unmount "sys/"'])


def test_tune_durations_strings_and_integers(target):
    kv = target.mount_kv()
    r = target.req("POST", f"sys/mounts/{kv}/tune", json={
        "default_lease_ttl": "72h", "max_lease_ttl": "100h", "description": "tuned",
        "allowed_response_headers": ["X-Foo", "X-Bar"],
    })
    assert r.status_code == 204
    body = target.req("GET", f"sys/mounts/{kv}/tune").json()
    assert_sys_copy(body)
    assert body["data"] == {
        "default_lease_ttl": 72 * 3600, "max_lease_ttl": 100 * 3600, "description": "tuned",
        "force_no_cache": False, "allowed_response_headers": ["X-Foo", "X-Bar"], "options": {"version": "1"},
    }
    assert target.req("POST", f"sys/mounts/{kv}/tune", json={"default_lease_ttl": 3600, "max_lease_ttl": 7200}).status_code == 204
    tune = target.req("GET", f"sys/mounts/{kv}/tune").json()["data"]
    assert tune["default_lease_ttl"] == 3600 and tune["max_lease_ttl"] == 7200
    assert tune["description"] == "tuned"  # untouched by a tune that does not name it
    mount = target.req("GET", f"sys/mounts/{kv}").json()["data"]
    assert mount["description"] == "tuned"
    assert mount["config"] == {
        "default_lease_ttl": 3600, "max_lease_ttl": 7200, "force_no_cache": False,
        "allowed_response_headers": ["X-Foo", "X-Bar"],
    }


def test_tune_refuses_default_above_max(target):
    kv = target.mount_kv()
    assert target.req("POST", f"sys/mounts/{kv}/tune", json={"max_lease_ttl": "2h", "default_lease_ttl": "1h"}).status_code == 204
    r = target.req("POST", f"sys/mounts/{kv}/tune", json={"default_lease_ttl": "3h"})
    assert_errors(r, 400, ["backend max lease TTL of 7200 would be less than backend default lease TTL of 10800"])
    r = target.req("POST", f"sys/mounts/{kv}/tune", json={"max_lease_ttl": "30m"})
    assert_errors(r, 400, ["backend max lease TTL of 1800 would be less than backend default lease TTL of 3600"])


def test_tune_of_missing_mount_is_400(target):
    p = unique("nope")
    assert_errors(target.req("POST", f"sys/mounts/{p}/tune", json={"description": "x"}), 400,
                  [f'tune of path "{p}/" failed: no mount entry found'])


def test_remount_moves_the_data(target):
    src = target.mount_kv()
    dst = unique("moved")
    target.req("POST", f"{src}/k", json={"v": "1"})
    r = target.req("POST", "sys/remount", json={"from": src, "to": dst})
    assert r.status_code == 200
    body = r.json()
    assert_sys_copy(body)
    migration = body["data"]["migration_id"]
    assert migration
    # OpenBao moves the mount asynchronously: poll until the new path answers.
    moved = wait_until(lambda: target.req("GET", f"{dst}/k").status_code == 200)
    assert moved
    assert target.req("GET", f"{dst}/k").json()["data"] == {"v": "1"}
    status = target.req("GET", f"sys/remount/status/{migration}").json()["data"]
    assert status["migration_id"] == migration
    assert status["migration_info"] == {"source_mount": f"{src}/", "target_mount": f"{dst}/", "status": "success"}
    assert_errors(target.req("GET", f"{src}/k"), 404, [f'no handler for route "{src}/k". route entry not found.'])
    mounts = target.req("GET", "sys/mounts").json()["data"]
    assert f"{dst}/" in mounts and f"{src}/" not in mounts


@pytest.mark.parametrize("body,error", [
    ({"from": "no-such-mount", "to": "x"}, 'no matching mount at "no-such-mount/"'),
    ({}, "both 'from' and 'to' path must be specified as a string"),
])
def test_remount_refusals(target, body, error):
    assert_errors(target.req("POST", "sys/remount", json=body), 400, [error])


def test_remount_onto_existing_mount_is_400(target):
    a, b = target.mount_kv(), target.mount_kv()
    assert_errors(target.req("POST", "sys/remount", json={"from": a, "to": b}), 400, [f'path already in use at "{b}/"'])


def test_ui_mounts_helper(target):
    kv = target.mount_kv()
    mount = target.req("GET", f"sys/mounts/{kv}").json()["data"]
    for sub in (kv, f"{kv}/deeper/key"):
        body = target.req("GET", f"sys/internal/ui/mounts/{sub}").json()
        assert body["data"] == {**mount, "path": f"{kv}/"}
    assert target.req("GET", "sys/internal/ui/mounts/sys").json()["data"]["type"] == "system"


def test_ui_mounts_helper_refusals(target):
    kv = target.mount_kv()
    assert_errors(target.req("GET", f"sys/internal/ui/mounts/{kv}", token=None), 403, ["permission denied"])
    p = unique("nope")
    assert_errors(target.req("GET", f"sys/internal/ui/mounts/{p}"), 403, [
        f"preflight capability check returned 403, please ensure client's policies grant access to path \"{p}/\"",
    ])


# ------------------------------------------------------------------------- the bao CLI


def test_cli_secrets_enable_list_tune_disable(target):
    p = unique("clim")
    ok(target.cli("secrets", "enable", f"-path={p}", "-description=hello", "-version=1", "kv"))
    r = target.cli("secrets", "enable", f"-path={p}", "kv")
    assert r.returncode == 2 and f"path is already in use at {p}/" in r.stderr
    listed = json.loads(ok(target.cli("secrets", "list", "-format=json")).stdout)
    assert listed[f"{p}/"]["type"] == "kv" and listed[f"{p}/"]["description"] == "hello"
    assert "sys/" in listed
    ok(target.cli("secrets", "tune", "-max-lease-ttl=87600h", "-default-lease-ttl=1h",
                  "-description=tuned", "-allowed-response-headers=X-A", p))
    tune = target.req("GET", f"sys/mounts/{p}/tune").json()["data"]
    assert tune["max_lease_ttl"] == 87600 * 3600 and tune["default_lease_ttl"] == 3600
    assert tune["description"] == "tuned" and tune["allowed_response_headers"] == ["X-A"]
    ok(target.cli("secrets", "disable", p))
    assert f"{p}/" not in json.loads(ok(target.cli("secrets", "list", "-format=json")).stdout)
    # Disabling what is not mounted succeeds.
    ok(target.cli("secrets", "disable", unique("nope")))


def test_cli_secrets_move(target):
    # Slow by design: the CLI waits 10 s before it polls sys/remount/status.
    src = target.mount_kv()
    target.req("POST", f"{src}/k", json={"v": "moved"})
    r = ok(target.cli("secrets", "move", src, f"{src}-2"))
    assert f"Success! Finished moving secrets engine {src}/ to {src}-2/" in r.stdout
    assert target.req("GET", f"{src}-2/k").json()["data"] == {"v": "moved"}
