"""PKI roles beyond the name policy, against both servers: the full parameter set a role read
returns, write-replaces versus PATCH, and the extensions a role puts into certificates
(extended key usages by name and OID, certificate policies, otherName SANs, IP CIDRs),
checked with openssl."""
import os
import subprocess
import tempfile
import uuid


def mount_pki(target):
    path = "pki-" + uuid.uuid4().hex[:6]
    assert target.cli("secrets", "enable", f"-path={path}", "pki").returncode == 0
    assert target.cli("secrets", "tune", "-max-lease-ttl=87600h", path).returncode == 0
    r = target.req("POST", f"{path}/root/generate/internal", json_body={"common_name": "Root", "key_type": "ec", "ttl": "8760h"})
    assert r.status_code == 200, r.text
    return path


def text_of(pem):
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "c.pem"), "w") as f:
        f.write(pem)
    return subprocess.run(["openssl", "x509", "-in", "c.pem", "-noout", "-text"], cwd=d, capture_output=True, text=True).stdout


ROLE_FIELDS = {
    "allow_any_name", "allow_bare_domains", "allow_glob_domains", "allow_globs_in_identity_templates",
    "allow_ip_sans", "allow_localhost", "allow_subdomains", "allow_token_displayname",
    "allow_wildcard_certificates", "allowed_domains", "allowed_domains_template", "allowed_ip_sans_cidr",
    "allowed_other_sans", "allowed_serial_numbers", "allowed_uri_sans", "allowed_uri_sans_template",
    "allowed_user_ids", "basic_constraints_valid_for_non_ca", "client_flag", "cn_validations",
    "code_signing_flag", "country", "email_protection_flag", "enforce_hostnames", "ext_key_usage",
    "ext_key_usage_oids", "generate_lease", "issuer_ref", "key_bits", "key_type", "key_usage", "locality",
    "max_ttl", "no_store", "not_after", "not_before_duration", "organization", "ou", "policy_identifiers",
    "postal_code", "province", "require_cn", "server_flag", "signature_bits", "street_address", "ttl",
    "use_csr_common_name", "use_csr_sans", "use_pss",
}


def test_role_read_has_openbao_fields_and_defaults(target):
    pki = mount_pki(target)
    r = target.req("POST", f"{pki}/roles/r", json_body={"allow_any_name": True})
    assert r.status_code == 200, r.text
    data = target.req("GET", f"{pki}/roles/r").json()["data"]
    missing = ROLE_FIELDS - set(data)
    assert not missing, missing
    assert data["cn_validations"] == ["email", "hostname"]
    assert data["issuer_ref"] == "default"
    assert data["key_usage"] == ["DigitalSignature", "KeyAgreement", "KeyEncipherment"]
    assert data["allowed_ip_sans_cidr"] == [] and data["ext_key_usage"] == []
    r = target.req("POST", f"{pki}/roles/bad", json_body={"allowed_ip_sans_cidr": "banana"})
    assert r.status_code == 400
    assert "allowed_ip_sans_cidr" in r.json()["errors"][0]


def test_write_replaces_patch_merges(target):
    pki = mount_pki(target)
    target.req("POST", f"{pki}/roles/r", json_body={"allowed_domains": "example.com", "allow_subdomains": True, "max_ttl": "1h"})
    target.req("POST", f"{pki}/roles/r", json_body={"max_ttl": "2h"})
    data = target.req("GET", f"{pki}/roles/r").json()["data"]
    assert data["allowed_domains"] == [] and data["allow_subdomains"] is False and data["max_ttl"] == 7200
    r = target.req("PATCH", f"{pki}/roles/r", json_body={"allowed_domains": ["example.org"]},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    data = target.req("GET", f"{pki}/roles/r").json()["data"]
    assert data["allowed_domains"] == ["example.org"] and data["max_ttl"] == 7200
    r = target.req("PATCH", f"{pki}/roles/nope", json_body={"max_ttl": "1h"},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 400
    assert r.json()["errors"] == ["Unable to fetch role entry to patch"]


def test_extensions_from_role(target):
    pki = mount_pki(target)
    r = target.req("POST", f"{pki}/roles/x", json_body={
        "allow_any_name": True, "key_type": "ec", "max_ttl": "1h",
        "ext_key_usage": ["TimeStamping"], "ext_key_usage_oids": ["1.3.6.1.4.1.311.20.2.2"],
        "policy_identifiers": ["1.3.6.1.4.1.44947.1.1.1"],
        "allowed_other_sans": ["1.3.6.1.4.1.311.20.2.3;UTF8:*@example.com"],
        "allowed_ip_sans_cidr": ["10.0.0.0/8"],
    })
    assert r.status_code == 200, r.text
    out = target.req("POST", f"{pki}/issue/x", json_body={
        "common_name": "svc.example.com", "ip_sans": "10.1.2.3",
        "other_sans": "1.3.6.1.4.1.311.20.2.3;UTF8:devops@example.com",
    })
    assert out.status_code == 200, out.text
    t = text_of(out.json()["data"]["certificate"])
    assert "Time Stamping" in t
    assert "1.3.6.1.4.1.311.20.2.2" in t or "Microsoft Smartcard" in t
    assert "1.3.6.1.4.1.44947.1.1.1" in t
    assert "devops@example.com" in t
    assert "10.1.2.3" in t
    for body in ({"common_name": "a.example.com", "ip_sans": "192.168.1.1"},
                 {"common_name": "a.example.com", "other_sans": "1.3.6.1.4.1.311.20.2.3;UTF8:x@evil.com"}):
        r = target.req("POST", f"{pki}/issue/x", json_body=body)
        assert r.status_code == 400, (body, r.text)


def test_issue_formats_and_key_encodings(target):
    pki = mount_pki(target)
    for kt in ("ec", "rsa", "ed25519"):
        assert target.req("POST", f"{pki}/roles/{kt}", json_body={"allow_any_name": True, "key_type": kt, "max_ttl": "1h"}).status_code == 200
    labels = {"ec": "EC PRIVATE KEY", "rsa": "RSA PRIVATE KEY", "ed25519": "PRIVATE KEY"}
    for kt, label in labels.items():
        d = target.req("POST", f"{pki}/issue/{kt}", json_body={"common_name": "a.example.com"}).json()["data"]
        assert d["private_key"].startswith(f"-----BEGIN {label}-----"), d["private_key"][:40]
        d = target.req("POST", f"{pki}/issue/{kt}", json_body={"common_name": "a.example.com", "private_key_format": "pkcs8"}).json()["data"]
        assert d["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    d = target.req("POST", f"{pki}/issue/ec", json_body={"common_name": "a.example.com", "format": "pem_bundle"}).json()["data"]
    begins = [l for l in d["certificate"].splitlines() if l.startswith("-----BEGIN")]
    assert begins == ["-----BEGIN EC PRIVATE KEY-----", "-----BEGIN CERTIFICATE-----", "-----BEGIN CERTIFICATE-----"], begins
    d = target.req("POST", f"{pki}/issue/ec", json_body={"common_name": "a.example.com", "format": "der"}).json()["data"]
    import base64
    for v in (d["certificate"], d["issuing_ca"], d["private_key"], *d["ca_chain"]):
        assert not v.startswith("-----") and base64.b64decode(v)[0] == 0x30
    # A SEC1 key (as issued) imports back, and pairs with nothing.
    ec = target.req("POST", f"{pki}/issue/ec", json_body={"common_name": "a.example.com"}).json()["data"]["private_key"]
    r = target.req("POST", f"{pki}/keys/import", json_body={"pem_bundle": ec})
    assert r.status_code == 200, r.text
    r = target.req("POST", f"{pki}/issue/ec", json_body={"common_name": "a.example.com", "format": "banana"})
    assert r.status_code == 400


def test_signature_bits_on_rsa_issuer(target):
    path = "pki-" + uuid.uuid4().hex[:6]
    assert target.cli("secrets", "enable", f"-path={path}", "pki").returncode == 0
    r = target.req("POST", f"{path}/root/generate/internal", json_body={"common_name": "RSA Root", "key_type": "rsa"})
    assert r.status_code == 200, r.text
    r = target.req("POST", f"{path}/roles/s384", json_body={"allow_any_name": True, "key_type": "ec", "signature_bits": 384})
    assert r.status_code == 200 and r.json()["data"]["signature_bits"] == 384, r.text
    out = target.req("POST", f"{path}/issue/s384", json_body={"common_name": "a.example.com", "ttl": "1h"})
    assert out.status_code == 200, out.text
    assert "sha384WithRSAEncryption" in text_of(out.json()["data"]["certificate"])
