"""KV version 1 over HTTP and through the real `bao` CLI.

Never relies on `secret/` (OpenBao dev mounts it as KV v2, signet dev as KV v1): every case
mounts its own KV v1 engine at a fresh path."""
import json

import pytest

from conftest import assert_errors, assert_exact_envelope, ok, unique

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
JSON = {"Content-Type": "application/json"}


def test_json_write_read_delete(target):
    kv = target.mount_kv()
    value = {"password": "s3cret", "n": 3, "t": True, "none": None, "nested": {"a": [1, "2"]}}
    assert target.req("POST", f"{kv}/app/db", json=value).status_code == 204
    r = target.req("GET", f"{kv}/app/db")
    assert r.status_code == 200
    body = r.json()
    assert_exact_envelope(body)
    assert body["data"] == value
    assert body["lease_duration"] == 2764800  # the mount's default lease: 768h, untuned
    assert target.req("DELETE", f"{kv}/app/db").status_code == 204
    assert_errors(target.req("GET", f"{kv}/app/db"), 404, [])
    # Deleting what is not there is not an error.
    assert target.req("DELETE", f"{kv}/app/db").status_code == 204


def test_overwrite_replaces_the_whole_value(target):
    kv = target.mount_kv()
    target.req("POST", f"{kv}/k", json={"a": "1", "b": "2"})
    target.req("PUT", f"{kv}/k", json={"c": "3"})
    assert target.req("GET", f"{kv}/k").json()["data"] == {"c": "3"}


def test_missing_key_is_404_with_empty_errors(target):
    kv = target.mount_kv()
    assert_errors(target.req("GET", f"{kv}/no/such/key"), 404, [])


def test_form_encoded_body(target):
    kv = target.mount_kv()
    r = target.req("POST", f"{kv}/form", data="a=b&c=d%20e&c=f", headers=FORM)
    assert r.status_code == 204
    # A repeated form field is joined with commas.
    assert target.req("GET", f"{kv}/form").json()["data"] == {"a": "b", "c": "d e,f"}


def test_non_form_content_type_is_parsed_as_json(target):
    kv = target.mount_kv()
    r = target.req("POST", f"{kv}/plain", data=b'{"a":"b"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 204
    assert target.req("GET", f"{kv}/plain").json()["data"] == {"a": "b"}


@pytest.mark.parametrize("body", [b"{}", b"", b"null"], ids=["empty-object", "no-body", "null"])
def test_write_without_fields_is_refused(target, body):
    kv = target.mount_kv()
    assert_errors(target.req("POST", f"{kv}/k", data=body, headers=JSON), 400, ["missing data fields"])


def test_list_with_verb_and_query_and_nested_dirs(target):
    kv = target.mount_kv()
    for key in ("top", "dir/x", "dir/sub/y", "other/z"):
        assert target.req("POST", f"{kv}/{key}", json={"v": key}).status_code == 204
    want_root = {"keys": ["dir/", "other/", "top"]}
    for path in (f"{kv}/", kv):
        assert target.req("LIST", path).json()["data"] == want_root
        r = target.req("GET", path, params={"list": "true"})
        assert r.status_code == 200 and r.json()["data"] == want_root
    assert target.req("LIST", f"{kv}/dir/").json()["data"] == {"keys": ["sub/", "x"]}
    assert target.req("GET", f"{kv}/dir", params={"list": "true"}).json()["data"] == {"keys": ["sub/", "x"]}
    assert target.req("LIST", f"{kv}/dir/sub").json()["data"] == {"keys": ["y"]}


def test_list_of_empty_prefix_is_404(target):
    kv = target.mount_kv()
    assert_errors(target.req("LIST", f"{kv}/"), 404, [])
    target.req("POST", f"{kv}/a", json={"v": 1})
    assert_errors(target.req("LIST", f"{kv}/nothing/"), 404, [])


def test_list_query_must_be_a_bool(target):
    kv = target.mount_kv()
    assert_errors(target.req("GET", f"{kv}/", params={"list": "maybe"}), 400, [])


def test_percent_encoded_path(target):
    kv = target.mount_kv()
    assert target.req("POST", f"{kv}/a%3Ab", json={"v": "colon"}).status_code == 204
    assert target.req("POST", f"{kv}/sp%20ace", json={"v": "space"}).status_code == 204
    assert target.req("GET", f"{kv}/a:b").json()["data"] == {"v": "colon"}
    assert target.req("GET", f"{kv}/a%3ab").json()["data"] == {"v": "colon"}
    assert target.req("GET", f"{kv}/sp%20ace").json()["data"] == {"v": "space"}
    assert target.req("LIST", f"{kv}/").json()["data"]["keys"] == ["a:b", "sp ace"]


def test_lease_duration_follows_tune(target):
    kv = target.mount_kv()
    target.req("POST", f"{kv}/x", json={"a": "b"})
    assert target.req("GET", f"{kv}/x").json()["lease_duration"] == 2764800
    assert target.req("POST", f"sys/mounts/{kv}/tune", json={"default_lease_ttl": "1h"}).status_code == 204
    assert target.req("GET", f"{kv}/x").json()["lease_duration"] == 3600
    # A LIST carries no lease.
    assert target.req("LIST", f"{kv}/").json()["lease_duration"] == 0


# ------------------------------------------------------------------------- the bao CLI


def test_cli_enable_write_read_list_delete(target):
    path = unique("clikv")
    r = ok(target.cli("secrets", "enable", f"-path={path}", "-version=1", "kv"))
    assert f"Enabled the kv secrets engine at: {path}/" in r.stdout
    assert target.req("GET", f"sys/mounts/{path}").json()["data"]["options"] == {"version": "1"}
    ok(target.cli("write", f"{path}/foo", "a=b", "n=1"))
    out = json.loads(ok(target.cli("read", "-format=json", f"{path}/foo")).stdout)
    assert out["data"] == {"a": "b", "n": "1"} and out["lease_duration"] == 2764800
    assert ok(target.cli("read", "-field=a", f"{path}/foo")).stdout == "b"
    r = target.cli("read", "-field=nope", f"{path}/foo")
    assert r.returncode == 1 and 'Field "nope" not present in secret' in r.stderr
    assert json.loads(ok(target.cli("list", "-format=json", f"{path}/")).stdout) == ["foo"]
    ok(target.cli("delete", f"{path}/foo"))
    r = target.cli("read", f"{path}/foo")
    assert r.returncode == 2 and f"No value found at {path}/foo" in r.stderr
    assert target.cli("list", f"{path}/").returncode == 2


def test_cli_write_from_file_and_stdin(target, tmp_path):
    kv = target.mount_kv()
    f = tmp_path / "value.txt"
    f.write_text("from-a-file")
    ok(target.cli("write", f"{kv}/file", f"data=@{f}"))
    assert ok(target.cli("read", "-field=data", f"{kv}/file")).stdout == "from-a-file"
    ok(target.cli("write", f"{kv}/stdin", "-", input=json.dumps({"from": "stdin", "n": 2})))
    assert target.req("GET", f"{kv}/stdin").json()["data"] == {"from": "stdin", "n": 2}


def test_cli_kv_subcommands_on_a_v1_mount(target):
    # `bao kv` first asks sys/internal/ui/mounts/<path> for the mount's version, then uses the
    # v1 paths directly.
    kv = target.mount_kv()
    ok(target.cli("kv", "put", f"{kv}/app", "k=v"))
    out = json.loads(ok(target.cli("kv", "get", "-format=json", f"{kv}/app")).stdout)
    assert out["data"] == {"k": "v"}
    assert ok(target.cli("kv", "get", "-field=k", f"{kv}/app")).stdout == "v"
    assert json.loads(ok(target.cli("kv", "list", "-format=json", kv)).stdout) == ["app"]
    ok(target.cli("kv", "delete", f"{kv}/app"))
    r = target.cli("kv", "get", f"{kv}/app")
    assert r.returncode == 2 and f"No value found at {kv}/app" in r.stderr
