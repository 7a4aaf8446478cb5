"""Kubernetes and JWT logins against both servers, through the bao CLI and hvac, with the
peers (kube-apiserver TokenReview) served locally in their wire format."""
import json
import tempfile
import time
import uuid

import hvac
import pytest

from fakes import HttpsFake, RsaSigner


def sa_token(signer, ns, name, aud="https://kubernetes.default.svc"):
    now = int(time.time())
    return signer.sign({
        "aud": [aud], "exp": now + 600, "iat": now - 5, "nbf": now - 5,
        "iss": "https://kubernetes.default.svc.cluster.local",
        "kubernetes.io": {"namespace": ns, "pod": {"name": "app-1", "uid": "pod-uid"},
                          "serviceaccount": {"name": name, "uid": f"uid-{ns}-{name}"}},
        "sub": f"system:serviceaccount:{ns}:{name}",
    })


@pytest.fixture(scope="module")
def kube():
    signer = RsaSigner()
    valid = {}

    def review(body, headers):
        if headers.get("Authorization") != "Bearer reviewer-jwt":
            return 401, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "Unauthorized", "code": 401}
        token = body["spec"]["token"]
        status = {"user": {}, "error": "[invalid bearer token, token lookup failed]"}
        if token in valid:
            ns, name = valid[token]
            status = {"authenticated": True,
                      "user": {"username": f"system:serviceaccount:{ns}:{name}", "uid": f"uid-{ns}-{name}",
                               "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"]},
                      "audiences": body["spec"].get("audiences") or ["https://kubernetes.default.svc"]}
        return 201, {"kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1",
                     "metadata": {"creationTimestamp": None}, "spec": body["spec"], "status": status}

    fake = HttpsFake(tempfile.mkdtemp(prefix="kube-"), {("POST", "/apis/authentication.k8s.io/v1/tokenreviews"): review})
    good = sa_token(signer, "fruits-catalog", "cert-manager-sa")
    other = sa_token(signer, "kube-system", "cert-manager-sa")
    valid[good] = ("fruits-catalog", "cert-manager-sa")
    valid[other] = ("kube-system", "cert-manager-sa")
    yield fake, good, other, sa_token(RsaSigner(), "fruits-catalog", "cert-manager-sa")
    fake.close()


def test_kubernetes_login(target, kube):
    fake, good, other_ns, forged = kube
    mount = "k8s-" + uuid.uuid4().hex[:6]
    assert target.cli("auth", "enable", f"-path={mount}", "kubernetes").returncode == 0
    r = target.req("POST", f"auth/{mount}/config", json_body={
        "kubernetes_host": fake.url, "kubernetes_ca_cert": fake.ca_pem, "token_reviewer_jwt": "reviewer-jwt"})
    assert r.status_code == 204, r.text
    r = target.cli("write", f"auth/{mount}/role/fruits", "bound_service_account_names=cert-manager-sa",
                   "bound_service_account_namespaces=fruits-catalog", "token_policies=fruits-catalog", "token_ttl=20m")
    assert r.returncode == 0, r.stderr
    r = target.cli("write", "-format=json", f"auth/{mount}/login", "role=fruits", f"jwt={good}", token=None)
    assert r.returncode == 0, r.stderr
    auth = json.loads(r.stdout)["auth"]
    assert auth["policies"] == ["default", "fruits-catalog"] and auth["lease_duration"] == 1200
    assert auth["metadata"]["service_account_namespace"] == "fruits-catalog"
    resp = hvac.Client(url=target.addr).auth.kubernetes.login(role="fruits", jwt=good, mount_point=mount)
    assert resp["auth"]["token_policies"] == ["default", "fruits-catalog"]
    assert target.req("POST", f"auth/{mount}/login", token=None, json_body={"role": "fruits", "jwt": other_ns}).status_code == 403
    assert target.req("POST", f"auth/{mount}/login", token=None, json_body={"role": "fruits", "jwt": forged}).status_code == 403
    assert target.req("POST", f"auth/{mount}/login", token=None, json_body={"role": "nope", "jwt": good}).status_code == 400


def test_jwt_login(target):
    signer = RsaSigner()
    mount = "jwt-" + uuid.uuid4().hex[:6]
    assert target.cli("auth", "enable", f"-path={mount}", "jwt").returncode == 0
    r = target.req("POST", f"auth/{mount}/config", json_body={
        "jwt_validation_pubkeys": [signer.public_pem()], "bound_issuer": "https://idp.example"})
    assert r.status_code == 204, r.text
    r = target.req("POST", f"auth/{mount}/role/ci", json_body={
        "role_type": "jwt", "bound_audiences": ["signet"], "user_claim": "sub",
        "bound_claims": {"repo": "acme/web"}, "token_policies": ["ci"]})
    assert r.status_code == 204, r.text
    now = int(time.time())
    claims = {"iss": "https://idp.example", "aud": "signet", "sub": "build-42", "repo": "acme/web", "exp": now + 300, "iat": now}
    r = target.cli("write", "-format=json", f"auth/{mount}/login", "role=ci", f"jwt={signer.sign(claims)}", token=None)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["auth"]["policies"] == ["ci", "default"]
    resp = hvac.Client(url=target.addr).auth.jwt.jwt_login(role="ci", jwt=signer.sign(claims), path=mount)
    assert resp["auth"]["token_policies"] == ["ci", "default"]
    for bad in ({**claims, "aud": "other"}, {**claims, "repo": "evil/web"}, {**claims, "exp": now - 3600},
                {**claims, "iss": "https://evil.example"}):
        r = target.req("POST", f"auth/{mount}/login", token=None, json_body={"role": "ci", "jwt": signer.sign(bad)})
        assert r.status_code == 400, (bad, r.text)
    r = target.req("POST", f"auth/{mount}/login", token=None, json_body={"role": "ci", "jwt": RsaSigner().sign(claims)})
    assert r.status_code == 400
