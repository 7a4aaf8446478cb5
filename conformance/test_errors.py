"""Status codes and error bodies for bad input, and a corpus of malformed requests that must
never produce a 5xx nor take the server down."""
import json
from collections import namedtuple

import pytest

from conftest import assert_errors

JSON = {"Content-Type": "application/json"}
MAX_REQUEST_SIZE = 32 * 1024 * 1024  # the listener's default max_request_size


def test_unknown_mount_is_404_no_handler(target):
    for method, path in (("GET", "no-such-mount/x"), ("POST", "no-such-mount/x"), ("GET", "no-such-mount")):
        r = target.req(method, path, json={"a": 1} if method == "POST" else None)
        assert_errors(r, 404, [f'no handler for route "{path}". route entry not found.'])


def test_token_is_checked_before_routing(target):
    assert_errors(target.req("GET", "no-such-mount/x", token=None), 403, ["permission denied"])


@pytest.mark.parametrize("token", [None, "bogus", "s.bogus", "hvs.bogus", "x" * 5000])
def test_missing_or_invalid_token_is_403(target, token):
    kv = target.mount_kv()
    target.req("POST", f"{kv}/k", json={"a": "b"})
    assert_errors(target.req("GET", f"{kv}/k", token=token), 403, ["permission denied"])
    assert_errors(target.req("GET", "sys/mounts", token=token), 403, ["permission denied"])


def test_bearer_authorization_header(target):
    kv = target.mount_kv()
    target.req("POST", f"{kv}/k", json={"a": "b"})
    r = target.req("GET", f"{kv}/k", token=None, headers={"Authorization": "Bearer root"})
    assert r.status_code == 200 and r.json()["data"] == {"a": "b"}
    assert target.req("GET", "sys/mounts", token=None, headers={"Authorization": "Bearer root"}).status_code == 200
    assert_errors(target.req("GET", f"{kv}/k", token=None, headers={"Authorization": "Bearer bogus"}), 403,
                  ["permission denied"])
    # X-Vault-Token wins over Authorization when both are sent.
    r = target.req("GET", f"{kv}/k", headers={"Authorization": "Bearer bogus"})
    assert r.status_code == 200


def test_malformed_json_is_400(target):
    kv = target.mount_kv()
    r = target.req("POST", f"{kv}/x", data="{bad json", headers=JSON)
    (msg,) = assert_errors(r, 400)
    assert msg.startswith("failed to decode JSON input: ")
    assert_errors(target.req("GET", f"{kv}/x"), 404, [])


@pytest.mark.parametrize("method,path", [("DELETE", "sys/health"), ("POST", "sys/health"), ("DELETE", "sys/seal-status")])
def test_wrong_method_is_405(target, method, path):
    assert_errors(target.req(method, path), 405, [])


def test_body_over_max_request_size_is_413(target):
    kv = target.mount_kv()
    big = b'{"v":"' + b"x" * (MAX_REQUEST_SIZE + 1024 * 1024) + b'"}'
    for token in ("root", None):  # the size check comes before authentication
        status, headers, body = target.raw("POST", f"/v1/{kv}/big", big, headers=JSON, token=token, timeout=120)
        assert status == 413, body[:300]
        assert json.loads(body) == {"errors": ["http: request body too large"]}
    assert_errors(target.req("GET", f"{kv}/big"), 404, [])
    assert target.healthy()


def test_body_well_under_the_limit_is_accepted(target):
    kv = target.mount_kv()
    value = "y" * (1024 * 1024)
    assert target.req("POST", f"{kv}/mib", json={"v": value}).status_code == 204
    assert target.req("GET", f"{kv}/mib").json()["data"]["v"] == value


# --------------------------------------------------------------------------- malformed corpus
#
# Each case records what OpenBao 2.7.2 answers. `status` is OpenBao's status; `json` says the
# answer is an {"errors": [...]} JSON body (False where Go's HTTP server answers by itself in
# text/plain or with no body); `location` is the redirect target where OpenBao redirects.
#
# Left out because OpenBao itself misbehaves on them:
#   GET sys/health?activecode=1000   OpenBao drops the connection without an answer
#                                    (an out-of-range status code panics its handler).
#   GET <kv>/ + 500 000 characters   OpenBao does not answer within 10 s.
# Left out because OpenBao accepts them (not malformed to it): a body of two JSON objects
# ({"a":1}{"b":2}, the second is ignored), invalid UTF-8 inside a JSON string (replaced by
# U+FFFD), tune with default_lease_ttl -5 or true, a POST to a 20 000-character KV path, and
# Content-Encoding: gzip on a plain body (ignored).

Case = namedtuple("Case", "id method path body headers status json location", defaults=(b"", None, 400, True, None))
DEEP_OBJECTS = b'{"a":' * 20000 + b"1" + b"}" * 20000
DEEP_ARRAYS = b'{"a":' + b"[" * 100000 + b"]" * 100000 + b"}"
BAD_CAPABILITY = json.dumps({"policy": 'path "a" { capabilities = ["reed"] }'}).encode()

CORPUS = [
    # Bodies that are not a JSON object.
    Case("invalid-utf8", "POST", "/v1/{kv}/a", b"\xff\xfe\x00", JSON),
    Case("nul-byte", "POST", "/v1/{kv}/a", b"\x00", JSON),
    Case("json-array", "POST", "/v1/{kv}/a", b"[1,2,3]", JSON),
    Case("json-string", "POST", "/v1/{kv}/a", b'"just a string"', JSON),
    Case("json-number", "POST", "/v1/{kv}/a", b"42", JSON),
    Case("json-bool", "POST", "/v1/{kv}/a", b"true", JSON),
    Case("unclosed-object", "POST", "/v1/{kv}/a", b"{", JSON),
    Case("missing-value", "POST", "/v1/{kv}/a", b'{"a":}', JSON),
    Case("trailing-comma", "POST", "/v1/{kv}/a", b'{"a":1,}', JSON),
    Case("single-quotes", "POST", "/v1/{kv}/a", b"{'a':1}", JSON),
    Case("trailing-garbage", "POST", "/v1/{kv}/a", b'{"a":1} x', JSON),
    Case("open-braces-5000", "POST", "/v1/{kv}/a", b"{" * 5000, JSON),
    Case("nested-arrays-100000", "POST", "/v1/{kv}/a", DEEP_ARRAYS, JSON),
    Case("nested-objects-20000", "POST", "/v1/{kv}/a", DEEP_OBJECTS, JSON),
    Case("xml-body", "POST", "/v1/{kv}/a", b"<xml/>", {"Content-Type": "application/xml"}),
    Case("bad-form-escape", "POST", "/v1/{kv}/a", b"a=%zz", {"Content-Type": "application/x-www-form-urlencoded"}),
    # Wrong field types and values.
    Case("mount-type-number", "POST", "/v1/sys/mounts/{kv}-x", b'{"type": 123}', JSON),
    Case("mount-type-list", "POST", "/v1/sys/mounts/{kv}-x", b'{"type": ["kv"]}', JSON),
    Case("mount-no-type", "POST", "/v1/sys/mounts/{kv}-x", b"{}", JSON),
    Case("mount-config-number", "POST", "/v1/sys/mounts/{kv}-x", b'{"type": "kv", "config": 5}', JSON),
    Case("mount-options-string", "POST", "/v1/sys/mounts/{kv}-x", b'{"type": "kv", "options": "v"}', JSON),
    Case("mount-description-object", "POST", "/v1/sys/mounts/{kv}-x", b'{"type": "kv", "description": {"a": 1}}', JSON),
    Case("mount-bad-ttl", "POST", "/v1/sys/mounts/{kv}-x",
         b'{"type": "kv", "config": {"default_lease_ttl": "forever"}}', JSON),
    Case("mount-sys", "POST", "/v1/sys/mounts/sys", b'{"type": "kv"}', JSON),
    Case("unmount-sys", "DELETE", "/v1/sys/mounts/sys"),
    Case("tune-bad-ttl", "POST", "/v1/sys/mounts/{kv}/tune", b'{"default_lease_ttl": "forever"}', JSON),
    Case("remount-missing-source", "POST", "/v1/sys/remount", b'{"from": "no-such", "to": "x"}', JSON),
    Case("remount-no-fields", "POST", "/v1/sys/remount", b"{}", JSON),
    Case("unseal-not-a-key", "POST", "/v1/sys/unseal", b'{"key": "!!!"}', JSON),
    Case("init-again", "POST", "/v1/sys/init", b'{"secret_shares": 1, "secret_threshold": 1}', JSON),
    Case("init-shares-string", "POST", "/v1/sys/init", b'{"secret_shares": "x"}', JSON),
    Case("policy-bad-capability", "POST", "/v1/sys/policies/acl/{kv}", BAD_CAPABILITY, JSON),
    Case("policy-bad-hcl", "POST", "/v1/sys/policies/acl/{kv}", b'{"policy": "}}}"}', JSON),
    # Query parameters.
    Case("list-not-bool", "GET", "/v1/{kv}/a?list=maybe"),
    Case("health-code-not-int", "GET", "/v1/sys/health?activecode=abc"),
    # Paths.
    Case("bad-percent-escape", "GET", "/v1/{kv}/%zz", json=False),
    Case("lone-percent", "GET", "/v1/{kv}/%", json=False),
    Case("nul-escape-get", "GET", "/v1/{kv}/a%00b", json=False),
    Case("nul-escape-post", "POST", "/v1/{kv}/a%00b", b'{"a": 1}', JSON, json=False),
    Case("dotdot-get", "GET", "/v1/{kv}/../sys/mounts", status=307, json=False, location="/v1/sys/mounts"),
    Case("dotdot-post", "POST", "/v1/{kv}/a/../b", b'{"a": 1}', JSON, status=307, json=False, location="/v1/{kv}/b"),
    Case("double-slash", "GET", "/v1/{kv}//a", status=307, json=False, location="/v1/{kv}/a"),
    Case("dotdot-encoded", "POST", "/v1/{kv}/a%2F..%2Fb", b'{"a": 1}', JSON),
    Case("double-slash-root", "GET", "/v1//sys/health", status=307, json=False, location="/v1/sys/health"),
    Case("long-key-8000", "GET", "/v1/{kv}/" + "y" * 8000, status=404),
    Case("many-segments", "GET", "/v1/" + "x/" * 3000, status=404),
    Case("v1-empty-route", "GET", "/v1/", status=404),
    Case("v1-bare", "GET", "/v1", status=404),
    Case("other-api-version", "GET", "/v2/sys/health", status=404),
    # Verbs.
    Case("verb-frob", "FROB", "/v1/{kv}/a", status=405),
    Case("verb-propfind", "PROPFIND", "/v1/{kv}/a", status=405),
    Case("verb-trace", "TRACE", "/v1/{kv}/a", status=405),
    Case("verb-connect", "CONNECT", "/v1/{kv}/a", status=405),
    Case("verb-options", "OPTIONS", "/v1/{kv}/a"),
    Case("verb-patch-kv1", "PATCH", "/v1/{kv}/a", b'{"a": 1}', {"Content-Type": "application/merge-patch+json"}, status=405),
    # Headers.
    Case("wrap-ttl-not-duration", "GET", "/v1/{kv}/a", headers={"X-Vault-Wrap-TTL": "banana"}),
    Case("token-with-del-char", "GET", "/v1/{kv}/a", headers={"X-Vault-Token": "ro\x7fot"}, json=False),
]


def send(target, case):
    kv = target.mount_kv()
    target.req("POST", f"{kv}/a", json={"a": 1})
    path = case.path.format(kv=kv)
    status, headers, body = target.raw(case.method, path, case.body, headers=case.headers)
    return kv, status, headers, body


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_malformed_request_is_refused_cleanly(target, case):
    """Never a 5xx; the same class of answer as OpenBao; an errors list where OpenBao sends one;
    the server still healthy afterwards."""
    kv, status, headers, body = send(target, case)
    assert status < 500, f"{status}: {body[:300]!r}"
    assert status // 100 == case.status // 100, f"OpenBao answers {case.status}, got {status}: {body[:300]!r}"
    if case.json:
        assert headers.get("content-type", "").startswith("application/json"), headers
        parsed = json.loads(body)
        assert isinstance(parsed, dict) and isinstance(parsed.get("errors"), list), body[:300]
    if case.location:
        assert headers.get("location") == case.location.format(kv=kv)
    assert target.healthy()
    # Nothing was mounted by a refused mount request.
    assert f"{kv}-x/" not in target.req("GET", "sys/mounts").json()["data"]


@pytest.mark.parametrize("case", CORPUS, ids=[c.id for c in CORPUS])
def test_malformed_request_status_matches_openbao(target, case):
    _, status, _, body = send(target, case)
    assert status == case.status, f"OpenBao answers {case.status}, got {status}: {body[:300]!r}"


# Exact messages OpenBao gives for a few of the corpus cases (clients show them to people).
EXACT = {
    "mount-no-type": ["backend type must be specified as a string"],
    "mount-type-number": ["plugin not found in the catalog: 123"],
    "mount-sys": ['cannot mount "sys/"'],
    "unmount-sys": ['cannot unmount "sys/"'],
    "remount-no-fields": ["both 'from' and 'to' path must be specified as a string"],
    "unseal-not-a-key": ["'key' must be a valid hex or base64 string"],
    "init-again": ["Vault is already initialized"],
    "list-not-bool": [],
    "health-code-not-int": [],
    "bad-form-escape": ["error parsing form data"],
    "v1-empty-route": ['no handler for route "". route entry not found.'],
    "v1-bare": [],
    "other-api-version": [],
    "verb-frob": [],
    "verb-options": ["cannot handle internal-only request operation"],
    "dotdot-encoded": ["relative paths not supported"],
}


@pytest.mark.parametrize("case_id", sorted(EXACT))
def test_malformed_request_exact_errors(target, case_id):
    case = next(c for c in CORPUS if c.id == case_id)
    _, status, _, body = send(target, case)
    assert status == case.status and json.loads(body) == {"errors": EXACT[case_id]}, f"{status}: {body[:300]!r}"
