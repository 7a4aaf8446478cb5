"""The PKI engine's first slice, against both servers, driven by the bao CLI as the seed
documents do; every leaf checked with openssl."""
import json
import os
import subprocess
import tempfile
import uuid


def sh(cmd, cwd):
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)


def mount_pki(target, max_ttl="87600h"):
    path = "pki-" + uuid.uuid4().hex[:6]
    assert target.cli("secrets", "enable", f"-path={path}", "pki").returncode == 0
    assert target.cli("secrets", "tune", f"-max-lease-ttl={max_ttl}", path).returncode == 0
    return path


def test_seed_002_root_role_issue(target):
    d = tempfile.mkdtemp()
    pki = mount_pki(target)
    r = target.cli("write", "-format=json", f"{pki}/root/generate/internal", f"common_name={pki}", "ttl=87600h", "key_type=ec")
    assert r.returncode == 0, r.stderr
    root = json.loads(r.stdout)["data"]
    for k in ("certificate", "issuing_ca", "serial_number", "issuer_id", "key_id", "expiration"):
        assert k in root
    assert "private_key" not in root
    with open(os.path.join(d, "ca.pem"), "w") as f:
        f.write(root["certificate"])
    r = target.cli("write", f"{pki}/roles/member", "allow_any_name=true", "max_ttl=720h", "key_type=ec")
    assert r.returncode == 0, r.stderr
    r = target.cli("write", "-format=json", f"{pki}/issue/member", "common_name=etcd-1.example.com", "ip_sans=10.0.0.5", "ttl=1000h")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert any('TTL "1000h0m0s" is longer than permitted maxTTL "720h0m0s", so maxTTL is being used' in w for w in out["warnings"])
    data = out["data"]
    for k in ("certificate", "issuing_ca", "ca_chain", "private_key", "private_key_type", "serial_number", "expiration"):
        assert k in data, k
    assert data["private_key_type"] == "ec"
    assert data["expiration"] - data["not_before"] == 720 * 3600 + 30 if "not_before" in data else True
    with open(os.path.join(d, "leaf.pem"), "w") as f:
        f.write(data["certificate"])
    v = sh(["openssl", "verify", "-CAfile", "ca.pem", "leaf.pem"], d)
    assert v.returncode == 0, v.stdout + v.stderr
    # Unauthenticated CA download, as consul-template's cert/ca and curl users do.
    assert target.req("GET", f"{pki}/ca/pem", token=None).text.strip() == root["certificate"].strip()
    assert target.req("GET", f"{pki}/cert/ca", token=None).json()["data"]["certificate"].strip() == root["certificate"].strip()
    serial = data["serial_number"]
    assert serial in target.req("LIST", f"{pki}/certs").json()["data"]["keys"]
    assert target.req("GET", f"{pki}/cert/{serial}", token=None).json()["data"]["certificate"].strip() == data["certificate"].strip()


def test_role_refusals(target):
    pki = mount_pki(target)
    target.cli("write", f"{pki}/root/generate/internal", "common_name=root", "ttl=87600h", "key_type=ec")
    target.req("POST", f"{pki}/roles/web", json_body={"allowed_domains": "example.com", "allow_subdomains": True, "key_type": "ec"})
    for body in ({"common_name": "evil.com"}, {"common_name": "a.example.com", "alt_names": "b.evil.com"},
                 {"common_name": "a.example.com", "uri_sans": "spiffe://x/y"}):
        r = target.req("POST", f"{pki}/issue/web", json_body=body)
        assert r.status_code == 400, (body, r.text)
    assert target.req("POST", f"{pki}/issue/nope", json_body={"common_name": "a.example.com"}).status_code == 400
    target.req("POST", f"{pki}/roles/any", json_body={"allow_any_name": True, "key_type": "any"})
    assert target.req("POST", f"{pki}/issue/any", json_body={"common_name": "a.example.com"}).status_code == 400
    r = target.req("POST", f"{pki}/sign/web", json_body={"csr": "garbage", "common_name": "a.example.com"})
    assert r.status_code == 400


def test_seed_004_intermediate_and_cert_manager_sign(target):
    d = tempfile.mkdtemp()
    root = mount_pki(target)
    target.cli("write", f"{root}/root/generate/internal", "common_name=Root", "ttl=87600h", "key_type=ec")
    with open(os.path.join(d, "root.pem"), "w") as f:
        f.write(target.req("GET", f"{root}/ca/pem", token=None).text)
    inter = mount_pki(target, "43800h")
    r = target.cli("write", "-format=json", f"{inter}/intermediate/generate/exported", "common_name=test-subordinate.tetrate.info", "ttl=43800h")
    assert r.returncode == 0, r.stderr
    gen = json.loads(r.stdout)["data"]
    assert {"csr", "key_id", "private_key", "private_key_type"} <= set(gen)
    with open(os.path.join(d, "int.csr"), "w") as f:
        f.write(gen["csr"])
    r = target.cli("write", "-format=json", f"{root}/root/sign-intermediate", f"csr=@{d}/int.csr", "format=pem_bundle", "ttl=43800h")
    assert r.returncode == 0, r.stderr
    signed = json.loads(r.stdout)["data"]
    assert signed["certificate"].count("BEGIN CERTIFICATE") == 2
    with open(os.path.join(d, "int.crt"), "w") as f:
        f.write(signed["certificate"])
    r = target.cli("write", "-format=json", f"{inter}/intermediate/set-signed", f"certificate=@{d}/int.crt")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["data"]["imported_issuers"]) == 2
    r = target.req("POST", f"{inter}/roles/cluster-local", json_body={
        "allowed_domains": "svc", "allow_subdomains": True, "max_ttl": "720h", "require_cn": False,
        "allowed_uri_sans": "spiffe://cluster.local/*", "key_type": "any"})
    assert r.status_code == 200 and r.json()["data"]["require_cn"] is False, r.text
    sh(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "w.key",
        "-out", "w.csr", "-subj", "/", "-addext", "subjectAltName=URI:spiffe://cluster.local/ns/foo/sa/sleep"], d)
    # cert-manager's exact request.
    body = {"csr": open(os.path.join(d, "w.csr")).read(), "common_name": "", "alt_names": "", "ip_sans": "",
            "uri_sans": "spiffe://cluster.local/ns/foo/sa/sleep", "ttl": "1h", "exclude_cn_from_sans": True}
    r = target.req("POST", f"{inter}/sign/cluster-local", json_body=body)
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert len(data["ca_chain"]) == 2
    with open(os.path.join(d, "chain.pem"), "w") as f:
        f.write(data["ca_chain"][0])
    with open(os.path.join(d, "leaf.pem"), "w") as f:
        f.write(data["certificate"])
    v = sh(["openssl", "verify", "-CAfile", "root.pem", "-untrusted", "chain.pem", "leaf.pem"], d)
    assert v.returncode == 0, v.stdout + v.stderr
    # Revocation shows up in the CRL.
    r = target.req("POST", f"{inter}/revoke", json_body={"serial_number": data["serial_number"]})
    assert r.status_code == 200 and r.json()["data"]["state"] == "revoked"
    crl = target.req("GET", f"{inter}/crl", token=None)
    assert crl.status_code == 200
    with open(os.path.join(d, "crl.der"), "wb") as f:
        f.write(crl.content)
    text = sh(["openssl", "crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text"], d).stdout.lower()
    assert data["serial_number"].replace(":", "") in text
    # So does the certificate's own record.
    rec = target.req("GET", f"{inter}/cert/{data['serial_number']}").json()["data"]
    assert rec["revocation_time"] > 0 and rec["revocation_time_rfc3339"].endswith("Z"), rec
    # The OCSP responder agrees, checked by openssl.
    o = sh(["openssl", "ocsp", "-issuer", "chain.pem", "-cert", "leaf.pem", "-url", target.url(f"{inter}/ocsp"),
            "-CAfile", "root.pem", "-verify_other", "chain.pem"], d)
    assert o.returncode == 0, o.stdout + o.stderr
    assert "Response verify OK" in o.stderr + o.stdout and "leaf.pem: revoked" in o.stdout, o.stdout + o.stderr


def test_concurrent_crl_fetches_agree(target):
    """Right after a revocation, many clients fetch the CRL at once: they all get the same CRL
    (one CRL per CRL number, RFC 5280 5.2.3), and it lists the revoked serial."""
    from concurrent.futures import ThreadPoolExecutor
    pki = mount_pki(target)
    assert target.req("POST", f"{pki}/root/generate/internal",
                      json_body={"common_name": "CRL Root", "key_type": "ec", "ttl": "24h"}).status_code == 200
    assert target.req("POST", f"{pki}/roles/web",
                      json_body={"allow_any_name": True, "key_type": "ec", "max_ttl": "1h"}).status_code == 200
    for round_ in range(3):
        serial = target.req("POST", f"{pki}/issue/web", json_body={"common_name": f"r{round_}.example.com"}).json()["data"]["serial_number"]
        assert target.req("POST", f"{pki}/revoke", json_body={"serial_number": serial}).status_code == 200
        with ThreadPoolExecutor(16) as ex:
            crls = list(ex.map(lambda _: target.req("GET", f"{pki}/crl", token=None).content, range(32)))
        assert len(set(crls)) == 1, f"round {round_}: {len(set(crls))} different CRLs"
        d = tempfile.mkdtemp()
        with open(os.path.join(d, "crl.der"), "wb") as f:
            f.write(crls[0])
        text = sh(["openssl", "crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text"], d).stdout
        assert serial.replace(":", "").upper() in text.replace(":", "").upper(), text
