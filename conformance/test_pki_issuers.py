"""Several issuers and keys per PKI mount (OpenBao's multi-issuer API), against both servers:
issuer and key management, defaults, references by name, computed chains, per-issuer
issuance, leaf_not_after_behavior, per-issuer CRLs and revocation of an issuer."""
import json
import os
import subprocess
import tempfile
import uuid


def mount_pki(target, max_ttl="87600h"):
    path = "pki-" + uuid.uuid4().hex[:6]
    assert target.cli("secrets", "enable", f"-path={path}", "pki").returncode == 0
    assert target.cli("secrets", "tune", f"-max-lease-ttl={max_ttl}", path).returncode == 0
    return path


def write(target, path, **body):
    r = target.req("POST", path, json_body=body)
    assert r.status_code in (200, 204), (path, r.status_code, r.text)
    return r.json() if r.status_code == 200 else None


def openssl_verify(root_pem, chain_pems, leaf_pem):
    d = tempfile.mkdtemp()
    for name, text in (("root.pem", root_pem), ("chain.pem", "\n".join(chain_pems)), ("leaf.pem", leaf_pem)):
        with open(os.path.join(d, name), "w") as f:
            f.write(text + "\n")
    args = ["openssl", "verify", "-CAfile", "root.pem"]
    if chain_pems:
        args += ["-untrusted", "chain.pem"]
    return subprocess.run(args + ["leaf.pem"], cwd=d, capture_output=True, text=True)


def test_two_roots_defaults_and_names(target):
    pki = mount_pki(target)
    a = write(target, f"{pki}/root/generate/internal", common_name="Root A", key_type="ec", issuer_name="root-a", key_name="key-a")["data"]
    b = write(target, f"{pki}/issuers/generate/root/internal", common_name="Root B", key_type="ec", issuer_name="root-b")["data"]
    assert a["issuer_id"] != b["issuer_id"] and a["key_id"] != b["key_id"]
    assert a["issuer_name"] == "root-a" and a["key_name"] == "key-a"
    # The first issuer stays the default.
    cfg = target.req("GET", f"{pki}/config/issuers").json()["data"]
    assert cfg["default"] == a["issuer_id"]
    assert cfg["default_follows_latest_issuer"] is False
    lst = target.req("LIST", f"{pki}/issuers").json()["data"]
    assert sorted(lst["keys"]) == sorted([a["issuer_id"], b["issuer_id"]])
    assert lst["key_info"][a["issuer_id"]]["is_default"] is True
    assert lst["key_info"][b["issuer_id"]]["is_default"] is False
    assert lst["key_info"][b["issuer_id"]]["issuer_name"] == "root-b"
    keys = target.req("LIST", f"{pki}/keys").json()["data"]
    assert sorted(keys["keys"]) == sorted([a["key_id"], b["key_id"]])
    assert keys["key_info"][a["key_id"]]["key_name"] == "key-a"
    # References: id, name, default.
    for ref in (b["issuer_id"], "root-b"):
        got = target.req("GET", f"{pki}/issuer/{ref}").json()["data"]
        assert got["issuer_id"] == b["issuer_id"]
        assert got["key_id"] == b["key_id"]
        assert got["leaf_not_after_behavior"] == "err"
        assert got["ca_chain"][0].strip() == b["certificate"].strip()
        for k in ("usage", "manual_chain", "revoked", "issuing_certificates", "crl_distribution_points", "ocsp_servers"):
            assert k in got, k
    assert target.req("GET", f"{pki}/issuer/default").json()["data"]["issuer_id"] == a["issuer_id"]
    key = target.req("GET", f"{pki}/key/key-a").json()["data"]
    assert key["key_id"] == a["key_id"] and key["key_type"] == "ec" and key["subject_key_id"]
    r = target.req("GET", f"{pki}/issuer/no-such-issuer")
    assert r.status_code in (400, 500)
    # Switch the default by name; the unauthenticated CA download follows.
    r = target.req("POST", f"{pki}/config/issuers", json_body={"default": "root-b"})
    assert r.status_code in (200, 204), r.text
    assert target.req("GET", f"{pki}/config/issuers").json()["data"]["default"] == b["issuer_id"]
    assert target.req("GET", f"{pki}/ca/pem", token=None).text.strip() == b["certificate"].strip()
    # A duplicate name is refused.
    r = target.req("POST", f"{pki}/issuers/generate/root/internal", json_body={"common_name": "C", "key_type": "ec", "issuer_name": "root-a"})
    assert r.status_code == 400


def test_issue_with_chosen_issuer_and_role_issuer_ref(target):
    pki = mount_pki(target)
    a = write(target, f"{pki}/root/generate/internal", common_name="Root A", key_type="ec", issuer_name="a")["data"]
    b = write(target, f"{pki}/root/generate/internal", common_name="Root B", key_type="ec", issuer_name="b")["data"]
    write(target, f"{pki}/roles/web", allow_any_name=True, key_type="ec", max_ttl="1h")
    write(target, f"{pki}/roles/web-b", allow_any_name=True, key_type="ec", max_ttl="1h", issuer_ref="b")
    assert target.req("GET", f"{pki}/roles/web-b").json()["data"]["issuer_ref"] == "b"
    out = write(target, f"{pki}/issue/web", common_name="x.example.com")["data"]
    assert out["issuing_ca"].strip() == a["certificate"].strip()
    assert openssl_verify(a["certificate"], [], out["certificate"]).returncode == 0
    out = write(target, f"{pki}/issuer/b/issue/web", common_name="y.example.com")["data"]
    assert out["issuing_ca"].strip() == b["certificate"].strip()
    assert openssl_verify(b["certificate"], [], out["certificate"]).returncode == 0
    out = write(target, f"{pki}/issue/web-b", common_name="z.example.com")["data"]
    assert out["issuing_ca"].strip() == b["certificate"].strip()


def test_intermediate_in_same_mount_chains_to_root(target):
    pki = mount_pki(target)
    root = write(target, f"{pki}/root/generate/internal", common_name="Root", key_type="ec", issuer_name="root")["data"]
    csr = write(target, f"{pki}/intermediate/generate/internal", common_name="Int", key_type="ec", key_name="int-key")["data"]
    assert csr["key_id"]
    signed = write(target, f"{pki}/root/sign-intermediate", csr=csr["csr"], common_name="Int", ttl="8760h")["data"]
    r = write(target, f"{pki}/intermediate/set-signed", certificate=signed["certificate"])["data"]
    assert len(r["imported_issuers"]) == 1
    int_id = r["imported_issuers"][0]
    assert r["mapping"][int_id] == csr["key_id"]
    got = target.req("GET", f"{pki}/issuer/{int_id}").json()["data"]
    assert got["key_id"] == csr["key_id"]
    assert [c.strip() for c in got["ca_chain"]] == [signed["certificate"].strip(), root["certificate"].strip()]
    # The key generated by intermediate/generate is listed with its name.
    assert target.req("GET", f"{pki}/key/int-key").json()["data"]["key_id"] == csr["key_id"]
    write(target, f"{pki}/roles/web", allow_any_name=True, key_type="ec", max_ttl="1h")
    leaf = write(target, f"{pki}/issuer/{int_id}/issue/web", common_name="leaf.example.com")["data"]
    assert [c.strip() for c in leaf["ca_chain"]] == [signed["certificate"].strip(), root["certificate"].strip()]
    v = openssl_verify(root["certificate"], [signed["certificate"]], leaf["certificate"])
    assert v.returncode == 0, v.stdout + v.stderr
    # A key in use cannot be deleted; the issuer can, and then the key too.
    r = target.req("DELETE", f"{pki}/key/int-key")
    assert r.status_code == 400 and "Key in Use by Issuer" in r.json()["errors"][0]
    r = target.req("DELETE", f"{pki}/issuer/{int_id}")
    assert r.status_code in (200, 204)
    assert target.req("DELETE", f"{pki}/key/int-key").status_code in (200, 204)
    assert sorted(target.req("LIST", f"{pki}/issuers").json()["data"]["keys"]) == [root["issuer_id"]]


def test_issuer_update_patch_and_leaf_not_after(target):
    pki = mount_pki(target)
    root = write(target, f"{pki}/root/generate/internal", common_name="Root", key_type="ec", ttl="2h")["data"]
    write(target, f"{pki}/roles/web", allow_any_name=True, key_type="ec", max_ttl="10h")
    r = target.req("POST", f"{pki}/issue/web", json_body={"common_name": "a.example.com", "ttl": "5h"})
    assert r.status_code == 400
    assert "beyond the expiration of the CA certificate" in r.json()["errors"][0]
    r = target.req("PATCH", f"{pki}/issuer/default", json_body={"leaf_not_after_behavior": "truncate"},
                   headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["leaf_not_after_behavior"] == "truncate"
    out = write(target, f"{pki}/issue/web", common_name="a.example.com", ttl="5h")["data"]
    assert out["expiration"] == root["expiration"]
    out = write(target, f"{pki}/issuer/default", issuer_name="renamed", leaf_not_after_behavior="permit",
                issuing_certificates="http://ca.example/ca")["data"]
    assert out["issuer_name"] == "renamed"
    assert out["leaf_not_after_behavior"] == "permit"
    assert out["issuing_certificates"] == ["http://ca.example/ca"]
    out = write(target, f"{pki}/issue/web", common_name="a.example.com", ttl="5h")["data"]
    assert out["expiration"] > root["expiration"]
    r = target.req("POST", f"{pki}/issuer/renamed", json_body={"leaf_not_after_behavior": "sometimes"})
    assert r.status_code == 400
    r = target.req("POST", f"{pki}/issuer/renamed", json_body={"issuing_certificates": "not a url"})
    assert r.status_code == 400
    # Usage without issuing-certificates stops issuance.
    write(target, f"{pki}/issuer/renamed", usage="read-only,crl-signing,ocsp-signing")
    r = target.req("POST", f"{pki}/issue/web", json_body={"common_name": "a.example.com", "ttl": "1h"})
    assert r.status_code in (400, 500)


def test_keys_generate_import_and_existing(target):
    pki = mount_pki(target)
    g = write(target, f"{pki}/keys/generate/exported", key_type="ec", key_name="k1")["data"]
    assert g["key_type"] == "ec" and g["key_name"] == "k1" and "PRIVATE KEY" in g["private_key"]
    g2 = write(target, f"{pki}/keys/generate/internal", key_type="ec")["data"]
    assert "private_key" not in g2
    # Re-importing the same key reports it as existing.
    r = target.req("POST", f"{pki}/keys/import", json_body={"pem_bundle": g["private_key"]})
    assert r.status_code == 200, r.text
    assert r.json()["data"]["key_id"] == g["key_id"]
    assert any("already imported" in w for w in r.json()["warnings"])
    root = write(target, f"{pki}/issuers/generate/root/existing", common_name="Root", key_ref="k1")["data"]
    assert root["key_id"] == g["key_id"]
    assert target.req("GET", f"{pki}/config/keys").json()["data"]["default"] == g["key_id"]
    write(target, f"{pki}/config/keys", default=g2["key_id"])
    assert target.req("GET", f"{pki}/config/keys").json()["data"]["default"] == g2["key_id"]
    write(target, f"{pki}/key/{g2['key_id']}", key_name="k2")
    assert target.req("GET", f"{pki}/key/k2").json()["data"]["key_id"] == g2["key_id"]


def test_import_bundle_then_key_pairs_up(target):
    src = mount_pki(target)
    root = write(target, f"{src}/root/generate/exported", common_name="Imported Root", key_type="ec")["data"]
    pki = mount_pki(target)
    r = write(target, f"{pki}/issuers/import/cert", pem_bundle=root["certificate"])["data"]
    iid = r["imported_issuers"][0]
    assert r["mapping"][iid] == ""
    assert target.req("GET", f"{pki}/issuer/{iid}").json()["data"]["key_id"] == ""
    # A certificate without its key does not become the default issuer.
    assert target.req("GET", f"{pki}/config/issuers").json()["data"]["default"] == ""
    assert target.req("GET", f"{pki}/crl", token=None).status_code == 204
    r = target.req("GET", f"{pki}/issuer/{iid}/crl", token=None)
    assert r.status_code >= 400 and "unable to find" in r.json()["errors"][0]
    # Importing it again changes nothing.
    r = write(target, f"{pki}/issuers/import/bundle", pem_bundle=root["certificate"])["data"]
    assert r["imported_issuers"] is None and r["existing_issuers"] == [iid]
    # The key, imported afterwards, pairs with the issuer.
    k = write(target, f"{pki}/keys/import", pem_bundle=root["private_key"])["data"]
    assert target.req("GET", f"{pki}/issuer/{iid}").json()["data"]["key_id"] == k["key_id"]
    write(target, f"{pki}/roles/web", allow_any_name=True, key_type="ec", max_ttl="1h")
    leaf = write(target, f"{pki}/issue/web", common_name="x.example.com")["data"]
    assert openssl_verify(root["certificate"], [], leaf["certificate"]).returncode == 0


def test_per_issuer_crl_and_issuer_revocation(target):
    pki = mount_pki(target)
    root = write(target, f"{pki}/root/generate/internal", common_name="Root", key_type="ec", issuer_name="root")["data"]
    csr = write(target, f"{pki}/intermediate/generate/internal", common_name="Int", key_type="ec")["data"]
    signed = write(target, f"{pki}/root/sign-intermediate", csr=csr["csr"], common_name="Int", ttl="8760h")["data"]
    int_id = write(target, f"{pki}/intermediate/set-signed", certificate=signed["certificate"])["data"]["imported_issuers"][0]
    write(target, f"{pki}/roles/web", allow_any_name=True, key_type="ec", max_ttl="1h")
    leaf = write(target, f"{pki}/issuer/{int_id}/issue/web", common_name="x.example.com")["data"]
    write(target, f"{pki}/revoke", serial_number=leaf["serial_number"])
    d = tempfile.mkdtemp()
    for ref, pem in ((int_id, signed["certificate"]), ("root", root["certificate"])):
        crl = target.req("GET", f"{pki}/issuer/{ref}/crl/pem", token=None)
        assert crl.status_code == 200
        with open(os.path.join(d, "crl.pem"), "w") as f:
            f.write(crl.text)
        with open(os.path.join(d, "ca.pem"), "w") as f:
            f.write(pem + "\n")
        t = subprocess.run(["openssl", "crl", "-in", "crl.pem", "-CAfile", "ca.pem", "-noout", "-text"], cwd=d, capture_output=True, text=True)
        assert t.returncode == 0, t.stderr
        listed = leaf["serial_number"].replace(":", "").upper() in t.stdout.replace(":", "").upper()
        assert listed == (ref == int_id), (ref, t.stdout)
        j = target.req("GET", f"{pki}/issuer/{ref}/crl", token=None).json()["data"]
        assert "BEGIN X509 CRL" in j["crl"]
    r = target.req("POST", f"{pki}/issuer/{int_id}/revoke")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert data["revoked"] is True and data["revocation_time"] > 0
    r = target.req("POST", f"{pki}/issuer/{int_id}/issue/web", json_body={"common_name": "y.example.com"})
    assert r.status_code in (400, 500)


def test_delta_crl(target):
    pki = mount_pki(target)
    root = write(target, f"{pki}/root/generate/internal", common_name="Root", key_type="ec")["data"]
    write(target, f"{pki}/config/crl", auto_rebuild=True, enable_delta=True)
    write(target, f"{pki}/roles/web", allow_any_name=True, key_type="ec", max_ttl="1h")
    leaf = write(target, f"{pki}/issue/web", common_name="x.example.com")["data"]
    assert target.req("GET", f"{pki}/crl/rotate").status_code == 200
    write(target, f"{pki}/revoke", serial_number=leaf["serial_number"])
    r = target.req("GET", f"{pki}/crl/rotate-delta")
    assert r.status_code == 200, r.text
    d = tempfile.mkdtemp()
    with open(os.path.join(d, "ca.pem"), "w") as f:
        f.write(root["certificate"] + "\n")
    raw = target.req("GET", f"{pki}/crl/delta", token=None)
    assert raw.status_code == 200 and raw.headers["Content-Type"] == "application/pkix-crl"
    with open(os.path.join(d, "delta.der"), "wb") as f:
        f.write(raw.content)
    t = subprocess.run(["openssl", "crl", "-inform", "der", "-in", "delta.der", "-CAfile", "ca.pem", "-noout", "-text"],
                       cwd=d, capture_output=True, text=True)
    assert t.returncode == 0 and "verify OK" in (t.stdout + t.stderr), t.stdout + t.stderr
    assert "Delta CRL Indicator" in t.stdout
    assert leaf["serial_number"].replace(":", "").upper() in t.stdout.replace(":", "").upper()
    pem = target.req("GET", f"{pki}/crl/delta/pem", token=None).text
    assert "BEGIN X509 CRL" in pem
    j = target.req("GET", f"{pki}/cert/delta-crl", token=None).json()["data"]
    assert "BEGIN X509 CRL" in j["certificate"]
    j = target.req("GET", f"{pki}/issuer/default/crl/delta", token=None).json()["data"]
    assert "BEGIN X509 CRL" in j["crl"]


def test_auto_tidy_config(target):
    pki = mount_pki(target)
    cfg = target.req("GET", f"{pki}/config/auto-tidy").json()["data"]
    for k, v in (("enabled", False), ("interval_duration", 43200), ("safety_buffer", 259200),
                 ("tidy_cert_store", False), ("tidy_revoked_certs", False), ("issuer_safety_buffer", 31536000)):
        assert cfg[k] == v, (k, cfg[k])
    r = target.req("POST", f"{pki}/config/auto-tidy", json_body={"enabled": True, "tidy_cert_store": True, "interval_duration": "1h"})
    assert r.status_code == 200, r.text
    cfg = target.req("GET", f"{pki}/config/auto-tidy").json()["data"]
    assert cfg["enabled"] is True and cfg["interval_duration"] == 3600 and cfg["tidy_cert_store"] is True


def test_bao_pki_issue_verify_and_health_check(target):
    root_mount = mount_pki(target)
    int_mount = mount_pki(target)
    write(target, f"{root_mount}/root/generate/internal", common_name="Root", key_type="ec", ttl="8760h", issuer_name="root")
    r = target.cli("pki", "issue", "-issuer_name=int1", f"/{root_mount}/issuer/root", f"/{int_mount}/",
                   "common_name=Intermediate", "key_type=ec")
    assert r.returncode == 0, r.stdout + r.stderr
    r = target.cli("pki", "verify-sign", f"{root_mount}/issuer/root", f"{int_mount}/issuer/int1")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "signature_match    true" in r.stdout
    r = target.cli("pki", "list-intermediates", f"{root_mount}/issuer/root", int_mount)
    assert r.returncode == 0, r.stdout + r.stderr
    r = target.cli("pki", "health-check", int_mount)
    assert "Failed to run health check" not in r.stdout + r.stderr, r.stdout + r.stderr
    assert "crl_validity_period" in r.stdout


def test_tidy_status_and_answers(target):
    pki = mount_pki(target)
    st = target.req("GET", f"{pki}/tidy-status").json()["data"]
    assert st["state"] == "Inactive" and st["time_finished"] is None and st["cert_store_deleted_count"] is None
    assert st["internal_backend_uuid"]
    r = target.req("POST", f"{pki}/tidy", json_body={})
    assert r.status_code == 202 and "no tidy operations were set" in r.json()["warnings"][0]
    r = target.req("POST", f"{pki}/tidy", json_body={"tidy_cert_store": True, "safety_buffer": "1s"})
    assert r.status_code == 202 and r.json()["warnings"]
    import time
    for _ in range(50):
        st = target.req("GET", f"{pki}/tidy-status").json()["data"]
        if st["state"] == "Finished":
            break
        time.sleep(0.1)
    assert st["state"] == "Finished" and st["tidy_cert_store"] is True and st["cert_store_deleted_count"] == 0
    assert isinstance(st["time_finished"], str) and st["time_finished"]
    r = target.req("POST", f"{pki}/tidy-cancel")
    assert r.status_code == 200 and "cannot be cancelled" in r.json()["warnings"][0]
