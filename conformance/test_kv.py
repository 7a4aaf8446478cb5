"""KV version 1 over HTTP and through the real `bao` CLI."""
import json

from conftest import assert_envelope


def test_write_read_list_delete(target):
    kv = target.mount_kv()
    r = target.req("POST", f"{kv}/app/db", json_body={"password": "s3cret", "n": 3})
    assert r.status_code == 204
    r = target.req("GET", f"{kv}/app/db")
    assert r.status_code == 200
    body = r.json()
    assert_envelope(body)
    assert body["data"] == {"password": "s3cret", "n": 3}
    assert body["lease_duration"] == 2764800
    assert body["lease_id"] == "" and body["renewable"] is False
    r = target.req("LIST", f"{kv}/")
    assert r.json()["data"]["keys"] == ["app/"]
    r = target.req("GET", f"{kv}/app", params={"list": "true"})
    assert r.json()["data"]["keys"] == ["db"]
    assert target.req("DELETE", f"{kv}/app/db").status_code == 204
    r = target.req("GET", f"{kv}/app/db")
    assert r.status_code == 404 and r.json() == {"errors": []}


def test_form_body_and_percent_encoded_path(target):
    kv = target.mount_kv()
    r = target.req("POST", f"{kv}/a%3Ab", data="k=v&x=y", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 204
    assert target.req("GET", f"{kv}/a:b").json()["data"] == {"k": "v", "x": "y"}
    assert target.req("LIST", f"{kv}/").json()["data"]["keys"] == ["a:b"]


def test_lease_duration_follows_tune(target):
    kv = target.mount_kv()
    target.req("POST", f"{kv}/x", json_body={"a": "b"})
    assert target.req("POST", f"sys/mounts/{kv}/tune", json_body={"default_lease_ttl": "1h"}).status_code == 204
    assert target.req("GET", f"{kv}/x").json()["lease_duration"] == 3600


def test_bao_cli_drives_kv(target, tmp_path):
    path = "clikv-" + target.kind
    r = target.cli("secrets", "enable", f"-path={path}", "-version=1", "kv")
    assert r.returncode == 0, r.stderr
    r = target.cli("write", f"{path}/foo", "a=b", "n=1")
    assert r.returncode == 0, r.stderr
    r = target.cli("read", "-format=json", f"{path}/foo")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["data"] == {"a": "b", "n": "1"}
    r = target.cli("read", "-field=a", f"{path}/foo")
    assert r.stdout.strip() == "b"
    f = tmp_path / "value.txt"
    f.write_text("from-a-file")
    assert target.cli("write", f"{path}/file", f"data=@{f}").returncode == 0
    assert target.cli("read", "-field=data", f"{path}/file").stdout.strip() == "from-a-file"
    r = target.cli("write", f"{path}/stdin", "-", input=json.dumps({"from": "stdin"}))
    assert r.returncode == 0, r.stderr
    assert target.cli("read", "-field=from", f"{path}/stdin").stdout.strip() == "stdin"
    r = target.cli("list", "-format=json", f"{path}/")
    assert sorted(json.loads(r.stdout)) == ["file", "foo", "stdin"]
    # `bao kv` asks sys/internal/ui/mounts first, then uses the v1 paths.
    r = target.cli("kv", "put", f"{path}/kvput", "k=v")
    assert r.returncode == 0, r.stderr
    r = target.cli("kv", "get", "-format=json", f"{path}/kvput")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["data"] == {"k": "v"}
    assert target.cli("delete", f"{path}/foo").returncode == 0
    r = target.cli("read", f"{path}/foo")
    assert r.returncode == 2
    assert target.cli("secrets", "disable", path).returncode == 0
