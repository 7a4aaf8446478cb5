"""Status codes and error bodies for bad input; a corpus of malformed requests never 5xx."""
import requests


def test_unknown_route(target):
    r = target.req("GET", "no-such-mount/x")
    assert r.status_code == 404
    assert r.json() == {"errors": ['no handler for route "no-such-mount/x". route entry not found.']}


def test_missing_and_bad_tokens(target):
    assert target.req("GET", "sys/mounts", token=None).json() == {"errors": ["permission denied"]}
    assert target.req("GET", "sys/mounts", token=None).status_code == 403
    assert target.req("GET", "sys/mounts", token="s.not-a-token").status_code == 403
    r = requests.get(target.url("sys/mounts"), headers={"Authorization": "Bearer root"}, timeout=10)
    assert r.status_code == 200


def test_malformed_json_and_wrong_method(target):
    kv = target.mount_kv()
    r = target.req("POST", f"{kv}/x", data="{bad json", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json()["errors"][0].startswith("failed to decode JSON input")
    assert target.req("GET", f"{kv}/x").status_code == 404
    assert target.req("DELETE", "sys/health").status_code == 405


def test_oversized_body(target):
    kv = target.mount_kv()
    body = b'{"v":"' + b"x" * (33 * 1024 * 1024) + b'"}'
    try:
        r = requests.post(target.url(f"{kv}/big"), data=body, headers={"X-Vault-Token": "root"}, timeout=60)
        assert r.status_code == 413
    except requests.ConnectionError:
        pass  # the server may close before reading the whole body
    assert target.req("GET", f"{kv}/big").status_code == 404


CORPUS = [
    ("POST", "{kv}/a", b"\xff\xfe\x00", "application/json"),
    ("POST", "{kv}/a", b"[1,2,3]", "application/json"),
    ("POST", "{kv}/a", b'"just a string"', "application/json"),
    ("POST", "{kv}/a", b"42", "application/json"),
    ("POST", "{kv}/a", b"{" * 5000, "application/json"),
    ("POST", "sys/mounts/{kv}-x", b'{"type": 123}', "application/json"),
    ("POST", "sys/mounts/{kv}-y", b'{"type": "kv", "config": 5}', "application/json"),
    ("POST", "sys/mounts/{kv}/tune", b'{"default_lease_ttl": "forever"}', "application/json"),
    ("POST", "sys/remount", b'{"from": "no-such", "to": "x"}', "application/json"),
    ("POST", "sys/unseal", b'{"key": "!!!"}', "application/json"),
    ("POST", "sys/init", b'{"secret_shares": 1, "secret_threshold": 1}', "application/json"),
    ("POST", "sys/policies/acl/broken", b'{"policy": "path \\"a\\" { capabilities = [\\"reed\\"] }"}', "application/json"),
    ("GET", "{kv}/%zz", b"", ""),
    ("GET", "no/such/" + "x/" * 500, b"", ""),
]


def test_malformed_corpus_never_5xx(target):
    kv = target.mount_kv()
    for method, path, body, ct in CORPUS:
        headers = {"X-Vault-Token": "root"}
        if ct:
            headers["Content-Type"] = ct
        r = requests.request(method, target.url(path.format(kv=kv)), data=body, headers=headers, timeout=30)
        assert 400 <= r.status_code < 500, f"{method} {path}: {r.status_code} {r.text[:200]}"
        if r.headers.get("Content-Type", "").startswith("application/json") and r.text:
            assert isinstance(r.json().get("errors"), list), f"{method} {path}: {r.text[:200]}"
    assert target.req("GET", "sys/health").status_code == 200
    assert f"{kv}-x/" not in target.req("GET", "sys/mounts").json()["data"]
