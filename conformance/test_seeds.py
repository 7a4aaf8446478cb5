"""The seed documents' commands, replayed with the bao CLI against both servers.

Seed 002 (Kubernetes cluster CAs with per-component policies and a periodic token role) and
seed 004 (an offline root imported with config/ca, an istio intermediate signed by it, an
AppRole for cert-manager) are run as the articles write them, with two changes forced by the
reference itself: the `vault mount`, `mount-tune`, `policy-write` and `token-create` verbs of
the 0.x CLI are gone from `bao`, so their current names are used (signet's own CLI keeps the
old verbs: crates/cli/tests), and OpenBao's dev server mounts `secret/` as KV v2, so seed 002's
shared secret goes to a KV v1 mount made for it. Every mount path carries a per-test cluster id
because both servers are shared across the session.
"""
import json
import os
import subprocess
import tempfile
import uuid


def sh(cmd, cwd, **kw):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, **kw)


def ok(r):
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def test_seed_002_cluster_cas_policies_and_token_role(target):
    d = tempfile.mkdtemp()
    cid = "c" + uuid.uuid4().hex[:6]
    for component in ("etcd", "k8s"):
        ok(target.cli("secrets", "enable", f"-path={cid}/pki/{component}", "pki"))
        ok(target.cli("secrets", "tune", "-max-lease-ttl=87600h", f"{cid}/pki/{component}"))
        ok(target.cli("write", f"{cid}/pki/{component}/root/generate/internal",
                      f"common_name={cid}/pki/{component}", "ttl=87600h"))
    ok(target.cli("write", f"{cid}/pki/etcd/roles/member", "allow_any_name=true", 'max_ttl=720h'))
    ok(target.cli("write", f"{cid}/pki/k8s/roles/kubelet", "allowed_domains=kubelet", "allow_bare_domains=true",
                  "allow_subdomains=false", "max_ttl=720h"))
    ok(target.cli("write", f"{cid}/pki/k8s/roles/kube-apiserver", "allowed_domains=kube-apiserver",
                  "allow_bare_domains=true", "allow_subdomains=false", "max_ttl=720h"))
    ok(target.cli("secrets", "enable", f"-path={cid}-secret", "-version=1", "kv"))
    ok(sh(["openssl", "genrsa", "-out", "token-key", "2048"], d))
    ok(target.cli("write", f"{cid}-secret/{cid}/k8s/token", f"key=@{d}/token-key"))
    os.remove(os.path.join(d, "token-key"))
    ok(target.cli("policy", "write", f"{cid}/pki/etcd/member", "-",
                  input=f'path "{cid}/pki/etcd/issue/member" {{\n  policy = "write"\n}}\n'))
    ok(target.cli("policy", "write", f"{cid}/pki/k8s/kube-apiserver", "-",
                  input=f'path "{cid}/pki/k8s/issue/kube-apiserver" {{\n  policy = "write"\n}}\n'
                        f'path "{cid}-secret/{cid}/k8s/token" {{\n  policy = "read"\n}}\n'))
    ok(target.cli("write", f"auth/token/roles/k8s-{cid}", "period=720h", "orphan=true",
                  f"allowed_policies={cid}/pki/etcd/member,{cid}/pki/k8s/kube-apiserver"))
    r = ok(target.cli("token", "create", "-format=json", f"-policy={cid}/pki/etcd/member", f"-role=k8s-{cid}"))
    auth = json.loads(r.stdout)["auth"]
    etcd_token = auth["client_token"]
    assert f"{cid}/pki/etcd/member" in auth["policies"]
    assert auth["lease_duration"] == 720 * 3600 and auth["renewable"] is True
    assert auth["orphan"] is True
    r = ok(target.cli("policy", "list", "-format=json"))
    assert f"{cid}/pki/etcd/member" in json.loads(r.stdout)
    r = ok(target.cli("policy", "read", f"{cid}/pki/etcd/member"))
    assert f"{cid}/pki/etcd/issue/member" in r.stdout
    # The etcd node's token issues member certificates (what its consul-template asks for)...
    r = ok(target.cli("write", "-format=json", f"{cid}/pki/etcd/issue/member", "common_name=etcd-1.example.com",
                      token=etcd_token))
    cert = json.loads(r.stdout)["data"]
    for name in ("cert.pem", "ca.pem"):
        with open(os.path.join(d, name), "w") as f:
            f.write(cert["certificate" if name == "cert.pem" else "issuing_ca"])
    ok(sh(["openssl", "verify", "-CAfile", "ca.pem", "cert.pem"], d))
    # ...and nothing else: not the k8s CA, not the shared secret.
    r = target.cli("write", f"{cid}/pki/k8s/issue/kube-apiserver", "common_name=kube-apiserver", token=etcd_token)
    assert r.returncode == 2 and "permission denied" in r.stderr
    r = target.cli("read", f"{cid}-secret/{cid}/k8s/token", token=etcd_token)
    assert r.returncode == 2 and "permission denied" in r.stderr
    # The periodic token renews itself indefinitely.
    r = ok(target.cli("token", "renew", "-format=json", token=etcd_token))
    assert json.loads(r.stdout)["auth"]["lease_duration"] == 720 * 3600
    # The kubelet role allows its one CN only.
    ok(target.cli("write", f"{cid}/pki/k8s/issue/kubelet", "common_name=kubelet"))
    r = target.cli("write", f"{cid}/pki/k8s/issue/kubelet", "common_name=kube-proxy")
    assert r.returncode == 2 and "kube-proxy" in r.stderr
    # A token from the role cannot carry a policy the role does not allow.
    r = target.cli("token", "create", "-policy=root", f"-role=k8s-{cid}")
    assert r.returncode == 2


def test_seed_004_offline_root_istio_intermediate_approle(target):
    d = tempfile.mkdtemp()
    cid = "i" + uuid.uuid4().hex[:6]
    pki, istioca = f"{cid}-pki", f"{cid}-istioca"
    # The offline root, made with openssl as the article does.
    ok(sh(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
           "-days", "3650", "-subj", "/O=Tetrate/CN=Tetrate Root CA",
           "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"], d))
    ok(target.cli("secrets", "enable", f"-path={pki}", "pki"))
    ok(target.cli("secrets", "tune", "-max-lease-ttl=87600h", pki))
    bundle = open(os.path.join(d, "ca.crt")).read() + open(os.path.join(d, "ca.key")).read()
    r = ok(target.cli("write", "-format=json", f"{pki}/config/ca", f"pem_bundle={bundle}"))
    imported = json.loads(r.stdout)["data"]
    assert len(imported["imported_issuers"]) == 1 and len(imported["imported_keys"]) == 1
    ok(target.cli("secrets", "enable", f"-path={istioca}", "pki"))
    ok(target.cli("secrets", "tune", "-max-lease-ttl=43800h", istioca))
    r = ok(target.cli("write", "-format=json", f"{istioca}/intermediate/generate/exported",
                      "common_name=test-subordinate.tetrate.info", "ttl=43800h"))
    with open(os.path.join(d, "istioca.csr"), "w") as f:
        f.write(json.loads(r.stdout)["data"]["csr"])
    r = ok(target.cli("write", "-format=json", f"{pki}/root/sign-intermediate", f"csr=@{d}/istioca.csr",
                      "format=pem_bundle", "ttl=43800h"))
    with open(os.path.join(d, "istioca.crt"), "w") as f:
        f.write(json.loads(r.stdout)["data"]["certificate"])
    ok(target.cli("write", f"{istioca}/intermediate/set-signed", f"certificate=@{d}/istioca.crt"))
    ok(target.cli("write", f"{istioca}/roles/cluster-local", 'allowed_domains=svc', "allow_subdomains=true",
                  'max_ttl=720h', "require_cn=false", 'allowed_uri_sans=spiffe://cluster.local/*'))
    ok(target.cli("auth", "enable", f"-path={cid}-approle", "approle"))
    ok(target.cli("policy", "write", f"{cid}-cert-manager", "-",
                  input=f'path "{istioca}/sign/cluster-local" {{ capabilities = ["update"] }}\n'))
    ok(target.cli("write", f"auth/{cid}-approle/role/cert-manager", f"token_policies={cid}-cert-manager",
                  "token_ttl=1h", "token_max_ttl=4h"))
    r = ok(target.cli("read", "-format=json", f"auth/{cid}-approle/role/cert-manager/role-id"))
    role_id = json.loads(r.stdout)["data"]["role_id"]
    r = ok(target.cli("write", "-format=json", "-force", f"auth/{cid}-approle/role/cert-manager/secret-id"))
    secret_id = json.loads(r.stdout)["data"]["secret_id"]
    # cert-manager logs in with the AppRole and sends its exact sign request.
    r = target.req("POST", f"auth/{cid}-approle/login", token=None, json_body={"role_id": role_id, "secret_id": secret_id})
    assert r.status_code == 200, r.text
    token = r.json()["auth"]["client_token"]
    # The role keeps the default key_type (rsa), so the workload's CSR is RSA.
    ok(sh(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes",
           "-keyout", "w.key", "-out", "w.csr", "-subj", "/",
           "-addext", "subjectAltName=URI:spiffe://cluster.local/ns/default/sa/httpbin"], d))
    body = {"csr": open(os.path.join(d, "w.csr")).read(), "common_name": "", "alt_names": "", "ip_sans": "",
            "uri_sans": "spiffe://cluster.local/ns/default/sa/httpbin", "ttl": "1h", "exclude_cn_from_sans": True}
    r = target.req("POST", f"{istioca}/sign/cluster-local", token=token, json_body=body)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    # ca_chain: the intermediate and, imported with it in the pem_bundle, the root.
    assert len(data["ca_chain"]) == 2
    with open(os.path.join(d, "leaf.pem"), "w") as f:
        f.write(data["certificate"])
    with open(os.path.join(d, "chain.pem"), "w") as f:
        f.write(data["ca_chain"][0])
    ok(sh(["openssl", "verify", "-CAfile", "ca.crt", "-untrusted", "chain.pem", "leaf.pem"], d))
    # The AppRole token can sign and do nothing else.
    r = target.req("POST", f"{istioca}/issue/cluster-local", token=token, json_body={"common_name": "a.svc"})
    assert r.status_code == 403


from test_auth_methods import kube, sa_token  # noqa: E402,F401  (the TokenReview fake)


def test_seed_001_terraform_layout_cert_manager_kubernetes_auth(target, kube):
    """Seed 001 drives Vault with Terraform's vault provider; Terraform is not installable
    here, so this replays the provider's API calls for the article's resources (mounts, root
    and intermediate, role, policy, Kubernetes auth) and then cert-manager's login and sign
    with a 10-minute certificate."""
    fake, good, _other, _forged = kube
    d = tempfile.mkdtemp()
    cid = "t" + uuid.uuid4().hex[:6]
    root, inter, k8s = f"{cid}-pki", f"{cid}-pki_int", f"{cid}-kubernetes"

    def call(method, path, body=None, want=(200, 204)):
        r = target.req(method, path, json_body=body)
        assert r.status_code in want, (path, r.status_code, r.text)
        return r.json() if r.status_code == 200 else None

    call("POST", f"sys/auth/{k8s}", {"type": "kubernetes"})
    call("POST", f"auth/{k8s}/config", {"kubernetes_host": fake.url, "kubernetes_ca_cert": fake.ca_pem,
                                        "token_reviewer_jwt": "reviewer-jwt"})
    assert call("GET", f"auth/{k8s}/config")["data"]["kubernetes_host"] == fake.url
    call("POST", f"sys/mounts/{root}", {"type": "pki", "config": {"max_lease_ttl": "315360000s"}})
    call("POST", f"sys/mounts/{inter}", {"type": "pki", "config": {"max_lease_ttl": "157680000s"}})
    r = call("POST", f"{root}/root/generate/internal", {
        "common_name": "testlab.local Root CA", "ttl": "315360000s", "format": "pem", "private_key_format": "der",
        "key_type": "rsa", "key_bits": 4096, "exclude_cn_from_sans": True, "ou": "Lab", "organization": "Testlab"})
    root_pem = r["data"]["certificate"]
    call("POST", f"{root}/config/urls", {
        "issuing_certificates": [target.url(f"{root}/ca")], "crl_distribution_points": [target.url(f"{root}/crl")]})
    csr = call("POST", f"{inter}/intermediate/generate/internal", {
        "common_name": "testlab.local Intermediate CA", "format": "pem", "private_key_format": "der",
        "key_type": "rsa", "key_bits": 2048})["data"]["csr"]
    signed = call("POST", f"{root}/root/sign-intermediate", {
        "csr": csr, "common_name": "testlab.local Intermediate CA", "format": "pem_bundle", "ttl": "157680000s",
        "exclude_cn_from_sans": True})["data"]
    call("POST", f"{inter}/intermediate/set-signed", {"certificate": signed["certificate"]})
    call("POST", f"{inter}/config/urls", {
        "issuing_certificates": [target.url(f"{inter}/ca")], "crl_distribution_points": [target.url(f"{inter}/crl")]})
    call("POST", f"{inter}/roles/fruits-catalog", {
        "allowed_domains": ["testlab.local"], "allow_subdomains": True, "max_ttl": "600s", "key_type": "rsa",
        "key_bits": 2048, "generate_lease": True})
    role = call("GET", f"{inter}/roles/fruits-catalog")["data"]
    assert role["allowed_domains"] == ["testlab.local"] and role["max_ttl"] == 600
    call("PUT", f"sys/policies/acl/{cid}-fruits-catalog", {"policy":
         f'path "{inter}/sign/fruits-catalog" {{ capabilities = ["create", "update"] }}\n'
         f'path "{inter}/issue/fruits-catalog" {{ capabilities = ["create"] }}\n'})
    call("POST", f"auth/{k8s}/role/cert-manager", {
        "bound_service_account_names": ["cert-manager-sa"], "bound_service_account_namespaces": ["fruits-catalog"],
        "token_ttl": 1200, "token_policies": [f"{cid}-fruits-catalog"]})
    # cert-manager: log in with its service account, then sign its Certificate's CSR.
    r = target.req("POST", f"auth/{k8s}/login", token=None, json_body={"role": "cert-manager", "jwt": good})
    assert r.status_code == 200, r.text
    token = r.json()["auth"]["client_token"]
    ok(sh(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "tls.key", "-out", "tls.csr",
           "-subj", "/CN=fruits.testlab.local", "-addext", "subjectAltName=DNS:fruits.testlab.local"], d))
    body = {"csr": open(os.path.join(d, "tls.csr")).read(), "common_name": "fruits.testlab.local",
            "alt_names": "fruits.testlab.local", "ip_sans": "", "uri_sans": "", "ttl": "10m",
            "exclude_cn_from_sans": False}
    r = target.req("POST", f"{inter}/sign/fruits-catalog", token=token, json_body=body)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["expiration"] - int(__import__("time").time()) <= 600 + 5
    for name, text in (("root.pem", root_pem), ("chain.pem", data["issuing_ca"]), ("tls.crt", data["certificate"])):
        with open(os.path.join(d, name), "w") as f:
            f.write(text + "\n")
    ok(sh(["openssl", "verify", "-CAfile", "root.pem", "-untrusted", "chain.pem", "tls.crt"], d))
    t = ok(sh(["openssl", "x509", "-in", "tls.crt", "-noout", "-text"], d)).stdout
    assert "DNS:fruits.testlab.local" in t and "TLS Web Server Authentication" in t
    assert target.url(f"{inter}/ca") in t and target.url(f"{inter}/crl") in t
    # The article's browser step: the CA chain is downloadable without a token.
    chain = target.req("GET", f"{inter}/ca_chain", token=None)
    assert chain.status_code == 200 and chain.text.count("BEGIN CERTIFICATE") == 2
