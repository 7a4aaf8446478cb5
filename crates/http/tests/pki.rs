//! The PKI engine's first slice over a real socket; every certificate is checked with
//! `openssl verify` and `openssl x509` (tools we did not write).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{call, client, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn openssl(args: &[&str], dir: &std::path::Path) -> (bool, String) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

async fn setup(s: &Server) {
    let (st, _) = call(
        s,
        "POST",
        "sys/mounts/pki",
        Some("root"),
        Some(json!({"type": "pki"})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    call(
        s,
        "POST",
        "sys/mounts/pki/tune",
        Some("root"),
        Some(json!({"max_lease_ttl": "87600h"})),
    )
    .await;
    let (st, v) = call(
        s,
        "POST",
        "pki/root/generate/internal",
        Some("root"),
        Some(json!({"common_name": "example.com Root", "ttl": "87600h", "key_type": "ec"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["data"]["private_key"].is_null());
    assert!(v["warnings"][0]
        .as_str()
        .unwrap()
        .contains("authority information access"));
    let (st, _) = call(s, "POST", "pki/config/urls", Some("root"), Some(json!({"issuing_certificates": "http://127.0.0.1:8200/v1/pki/ca", "crl_distribution_points": "http://127.0.0.1:8200/v1/pki/crl"}))).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = call(s, "POST", "pki/roles/web", Some("root"), Some(json!({"allowed_domains": "example.com", "allow_subdomains": true, "max_ttl": "72h", "key_type": "ec"}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn root_role_issue_verified_by_openssl() {
    let s = Server::dev().await;
    setup(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = client().get(s.url("pki/ca/pem")).send().await.unwrap();
    assert_eq!(ca.status(), StatusCode::OK);
    std::fs::write(dir.path().join("ca.pem"), ca.text().await.unwrap()).unwrap();

    let (st, v) = call(&s, "POST", "pki/issue/web", Some("root"), Some(json!({"common_name": "a.example.com", "alt_names": "b.example.com", "ip_sans": "10.0.0.1", "ttl": "100h"}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let warnings: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert!(warnings.contains(&"TTL \"100h0m0s\" is longer than permitted maxTTL \"72h0m0s\", so maxTTL is being used"), "{warnings:?}");
    assert!(
        warnings.iter().any(|w| w.contains("KeyEncipherment")),
        "{warnings:?}"
    );
    let d = &v["data"];
    assert_eq!(d["private_key_type"], "ec");
    let exp = d["expiration"].as_i64().unwrap();
    let nb = d["not_before"].as_i64().unwrap();
    assert_eq!(exp - nb, 72 * 3600 + 30);
    std::fs::write(
        dir.path().join("leaf.pem"),
        d["certificate"].as_str().unwrap(),
    )
    .unwrap();
    let (ok, out) = openssl(&["verify", "-CAfile", "ca.pem", "leaf.pem"], dir.path());
    assert!(ok, "{out}");
    let (_, text) = openssl(&["x509", "-in", "leaf.pem", "-noout", "-text"], dir.path());
    assert!(
        text.contains("DNS:a.example.com, DNS:b.example.com, IP Address:10.0.0.1"),
        "{text}"
    );
    assert!(
        text.contains("TLS Web Server Authentication, TLS Web Client Authentication"),
        "{text}"
    );
    assert!(
        text.contains("Digital Signature, Key Agreement") && !text.contains("Key Encipherment"),
        "{text}"
    );
    assert!(
        text.contains("CA Issuers - URI:http://127.0.0.1:8200/v1/pki/ca"),
        "{text}"
    );
    let serial = d["serial_number"].as_str().unwrap().to_string();
    assert_eq!(serial.split(':').count(), 20);
    // RFC 5280 conformance by pkilint, when it is installed (scripts/test.sh installs it).
    if Command::new("lint_pkix_cert")
        .arg("--help")
        .output()
        .is_ok()
    {
        for kt in ["ec", "rsa", "ed25519"] {
            call(&s, "POST", &format!("pki/roles/lint-{kt}"), Some("root"), Some(json!({"allowed_domains": "example.com", "allow_subdomains": true, "key_type": kt}))).await;
            let (st, v) = call(
                &s,
                "POST",
                &format!("pki/issue/lint-{kt}"),
                Some("root"),
                Some(json!({"common_name": "lint.example.com"})),
            )
            .await;
            assert_eq!(st, StatusCode::OK, "{v}");
            let f = format!("lint-{kt}.pem");
            std::fs::write(
                dir.path().join(&f),
                v["data"]["certificate"].as_str().unwrap(),
            )
            .unwrap();
            let o = Command::new("lint_pkix_cert")
                .args(["lint", "-s", "ERROR", &f])
                .current_dir(dir.path())
                .output()
                .unwrap();
            let findings = String::from_utf8_lossy(&o.stdout);
            assert!(
                findings.trim().is_empty(),
                "pkilint on a {kt} leaf: {findings}"
            );
        }
        std::fs::write(
            dir.path().join("root.pem"),
            std::fs::read_to_string(dir.path().join("ca.pem")).unwrap(),
        )
        .unwrap();
        let o = Command::new("lint_pkix_cert")
            .args(["lint", "-s", "ERROR", "root.pem"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&o.stdout).trim().is_empty(),
            "pkilint on the root: {}",
            String::from_utf8_lossy(&o.stdout)
        );
    } else {
        eprintln!(
            "lint_pkix_cert not on PATH: skipping the pkilint checks (scripts/test.sh installs it)"
        );
    }

    // Issuers and keys.
    let (_, v) = call(&s, "LIST", "pki/issuers", Some("root"), None).await;
    let issuer_id = v["data"]["keys"][0].as_str().unwrap().to_string();
    let (st, v) = call(
        &s,
        "GET",
        &format!("pki/issuer/{issuer_id}"),
        Some("root"),
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"]["leaf_not_after_behavior"], "err");
    let pem = client()
        .get(s.url("pki/issuer/default/pem"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));
    let (_, v) = call(&s, "GET", "pki/key/default", Some("root"), None).await;
    assert_eq!(v["data"]["key_type"], "ec");
    assert!(v["data"].get("private_key").is_none());
    let (st, _) = call(&s, "GET", "pki/issuer/nope", Some("root"), None).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Inventory and fetching.
    let (_, v) = call(&s, "LIST", "pki/certs", Some("root"), None).await;
    assert!(v["data"]["keys"]
        .as_array()
        .unwrap()
        .contains(&json!(serial)));
    let (st, v) = call(
        &s,
        "GET",
        &format!("pki/cert/{}", serial.replace(':', "%3A")),
        None,
        None,
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"]["certificate"], d["certificate"]);

    // The detailed inventory records the role and CN; tidy removes expired certificates.
    let (_, v) = call(&s, "LIST", "pki/certs/detailed", Some("root"), None).await;
    assert_eq!(v["data"]["key_info"][&serial]["role"], "web");
    assert_eq!(
        v["data"]["key_info"][&serial]["common_name"],
        "a.example.com"
    );
    let (_, v) = call(
        &s,
        "POST",
        "pki/issue/web",
        Some("root"),
        Some(json!({"common_name": "short.example.com", "ttl": "1s"})),
    )
    .await;
    let short = v["data"]["serial_number"].as_str().unwrap().to_string();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (st, _) = call(
        &s,
        "POST",
        "pki/tidy",
        Some("root"),
        Some(json!({"tidy_cert_store": true, "safety_buffer": 0})),
    )
    .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, v) = call(&s, "GET", "pki/tidy-status", Some("root"), None).await;
    assert_eq!(v["data"]["state"], "Finished");
    assert_eq!(v["data"]["cert_store_deleted_count"], 1);
    let (_, v) = call(&s, "LIST", "pki/certs", Some("root"), None).await;
    let keys = v["data"]["keys"].as_array().unwrap();
    assert!(!keys.contains(&json!(short)) && keys.contains(&json!(serial)));
    let (st, _) = call(
        &s,
        "POST",
        "pki/config/crl",
        Some("root"),
        Some(json!({"expiry": "48h", "ocsp_expiry": "1h"})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (_, v) = call(&s, "GET", "pki/config/crl", Some("root"), None).await;
    assert_eq!(v["data"]["expiry"], 48 * 3600);

    // Names the role does not allow; an unknown role; no CN.
    for (body, needle) in [
        (
            json!({"common_name": "evil.com"}),
            "common name evil.com not allowed by this role",
        ),
        (
            json!({"common_name": "a.example.com", "alt_names": "x.other.org"}),
            "subject alternate name x.other.org not allowed",
        ),
        (
            json!({"common_name": "a.example.com", "uri_sans": "spiffe://cluster.local/ns/a"}),
            "URI Subject Alternative Names",
        ),
        (json!({}), "common_name field is required"),
    ] {
        let (st, v) = call(&s, "POST", "pki/issue/web", Some("root"), Some(body)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST);
        assert!(v["errors"][0].as_str().unwrap().contains(needle), "{v}");
    }
    let (st, _) = call(
        &s,
        "POST",
        "pki/issue/nope",
        Some("root"),
        Some(json!({"common_name": "a.example.com"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_csrs_like_cert_manager_and_istio_csr() {
    let s = Server::dev().await;
    setup(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = client()
        .get(s.url("pki/ca/pem"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca).unwrap();
    let (st, _) = call(&s, "POST", "pki/roles/istio", Some("root"), Some(json!({"allowed_domains": "svc", "allow_subdomains": true, "require_cn": false, "allowed_uri_sans": "spiffe://cluster.local/*", "key_type": "any", "max_ttl": "720h"}))).await;
    assert_eq!(st, StatusCode::OK);
    // A workload CSR with only a URI SAN and an empty CN.
    let (ok, out) = openssl(
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "w.key",
            "-out",
            "w.csr",
            "-subj",
            "/",
            "-addext",
            "subjectAltName=URI:spiffe://cluster.local/ns/foo/sa/sleep",
        ],
        dir.path(),
    );
    assert!(ok, "{out}");
    let csr = std::fs::read_to_string(dir.path().join("w.csr")).unwrap();
    // cert-manager's request shape.
    let (st, v) = call(&s, "POST", "pki/sign/istio", Some("root"), Some(json!({"csr": csr, "common_name": "", "alt_names": "", "ip_sans": "", "uri_sans": "spiffe://cluster.local/ns/foo/sa/sleep", "ttl": "1h", "exclude_cn_from_sans": true}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["data"]["private_key"].is_null());
    assert_eq!(v["data"]["ca_chain"].as_array().unwrap().len(), 1);
    std::fs::write(
        dir.path().join("w.pem"),
        v["data"]["certificate"].as_str().unwrap(),
    )
    .unwrap();
    let (ok, out) = openssl(&["verify", "-CAfile", "ca.pem", "w.pem"], dir.path());
    assert!(ok, "{out}");
    let (_, text) = openssl(&["x509", "-in", "w.pem", "-noout", "-text"], dir.path());
    assert!(
        text.contains("URI:spiffe://cluster.local/ns/foo/sa/sleep"),
        "{text}"
    );
    // A URI outside the role, a garbage CSR, a tampered CSR.
    let (ok, _) = openssl(
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "x.key",
            "-out",
            "x.csr",
            "-subj",
            "/",
            "-addext",
            "subjectAltName=URI:spiffe://other.local/ns/a",
        ],
        dir.path(),
    );
    assert!(ok);
    let bad_uri = std::fs::read_to_string(dir.path().join("x.csr")).unwrap();
    let (st, _) = call(
        &s,
        "POST",
        "pki/sign/istio",
        Some("root"),
        Some(json!({"csr": bad_uri})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, v) = call(&s, "POST", "pki/sign/istio", Some("root"), Some(json!({"csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let mut tampered = csr.clone().into_bytes();
    let idx = tampered.len() / 2;
    tampered[idx] = if tampered[idx] == b'A' { b'B' } else { b'A' };
    let (st, _) = call(
        &s,
        "POST",
        "pki/sign/istio",
        Some("root"),
        Some(json!({"csr": String::from_utf8(tampered).unwrap()})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    // sign-verbatim keeps the CSR's names even where no role would allow them.
    let (st, v) = call(
        &s,
        "POST",
        "pki/sign-verbatim",
        Some("root"),
        Some(json!({"csr": bad_uri, "ttl": "1h", "ext_key_usage": "ClientAuth"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    std::fs::write(
        dir.path().join("v.pem"),
        v["data"]["certificate"].as_str().unwrap(),
    )
    .unwrap();
    let (_, text) = openssl(&["x509", "-in", "v.pem", "-noout", "-text"], dir.path());
    assert!(
        text.contains("URI:spiffe://other.local/ns/a")
            && text.contains("TLS Web Client Authentication")
            && !text.contains("Server Authentication"),
        "{text}"
    );
    // An EC CSR on a role that wants RSA keys.
    let (st, v) = call(
        &s,
        "POST",
        "pki/roles/rsa-only",
        Some("root"),
        Some(json!({"allow_any_name": true})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (ok, _) = openssl(
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "y.key",
            "-out",
            "y.csr",
            "-subj",
            "/CN=host.example.com",
        ],
        dir.path(),
    );
    assert!(ok);
    let ec_csr = std::fs::read_to_string(dir.path().join("y.csr")).unwrap();
    let (st, _) = call(
        &s,
        "POST",
        "pki/sign/rsa-only",
        Some("root"),
        Some(json!({"csr": ec_csr})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let _: Value = json!(null);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_004_chain_import_intermediate_and_revocation() {
    let s = Server::dev().await;
    let dir = tempfile::tempdir().unwrap();
    // An existing root made with openssl, imported as in seed 004 (config/ca pem_bundle).
    let (ok, out) = openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "3650",
            "-subj",
            "/CN=Seed Root CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        dir.path(),
    );
    assert!(ok, "{out}");
    let bundle = format!(
        "{}{}",
        std::fs::read_to_string(dir.path().join("ca.crt")).unwrap(),
        std::fs::read_to_string(dir.path().join("ca.key")).unwrap()
    );
    call(
        &s,
        "POST",
        "sys/mounts/pki",
        Some("root"),
        Some(json!({"type": "pki"})),
    )
    .await;
    call(
        &s,
        "POST",
        "sys/mounts/pki/tune",
        Some("root"),
        Some(json!({"max_lease_ttl": "87600h"})),
    )
    .await;
    let (st, v) = call(
        &s,
        "POST",
        "pki/config/ca",
        Some("root"),
        Some(json!({"pem_bundle": bundle})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["imported_issuers"].as_array().unwrap().len(), 1);
    // A key that does not match is refused.
    let (ok, _) = openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "other.key",
        ],
        dir.path(),
    );
    assert!(ok);
    call(
        &s,
        "POST",
        "sys/mounts/other",
        Some("root"),
        Some(json!({"type": "pki"})),
    )
    .await;
    let bad = format!(
        "{}{}",
        std::fs::read_to_string(dir.path().join("ca.crt")).unwrap(),
        std::fs::read_to_string(dir.path().join("other.key")).unwrap()
    );
    let (st, _) = call(
        &s,
        "POST",
        "other/config/ca",
        Some("root"),
        Some(json!({"pem_bundle": bad})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // istioca: intermediate/generate/exported -> root/sign-intermediate format=pem_bundle -> set-signed.
    call(
        &s,
        "POST",
        "sys/mounts/istioca",
        Some("root"),
        Some(json!({"type": "pki"})),
    )
    .await;
    call(
        &s,
        "POST",
        "sys/mounts/istioca/tune",
        Some("root"),
        Some(json!({"max_lease_ttl": "43800h"})),
    )
    .await;
    let (st, v) = call(
        &s,
        "POST",
        "istioca/intermediate/generate/exported",
        Some("root"),
        Some(json!({"common_name": "test-subordinate.tetrate.info", "ttl": "43800h"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert!(v["data"]["private_key"].is_string());
    let csr = v["data"]["csr"].as_str().unwrap().to_string();
    let (st, v) = call(
        &s,
        "POST",
        "pki/root/sign-intermediate",
        Some("root"),
        Some(json!({"csr": csr, "format": "pem_bundle", "ttl": "43800h"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let signed = v["data"]["certificate"].as_str().unwrap().to_string();
    assert_eq!(signed.matches("BEGIN CERTIFICATE").count(), 2);
    let (st, v) = call(
        &s,
        "POST",
        "istioca/intermediate/set-signed",
        Some("root"),
        Some(json!({"certificate": signed})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["imported_issuers"].as_array().unwrap().len(), 2);
    let (st, _) = call(&s, "POST", "istioca/roles/cluster-local", Some("root"), Some(json!({"allowed_domains": "svc", "allow_subdomains": true, "max_ttl": "720h", "require_cn": false, "allowed_uri_sans": "spiffe://cluster.local/*", "key_type": "any"}))).await;
    assert_eq!(st, StatusCode::OK);
    let (ok, _) = openssl(
        &[
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "w.key",
            "-out",
            "w.csr",
            "-subj",
            "/",
            "-addext",
            "subjectAltName=URI:spiffe://cluster.local/ns/foo/sa/sleep",
        ],
        dir.path(),
    );
    assert!(ok);
    let (st, v) = call(
        &s,
        "POST",
        "istioca/sign/cluster-local",
        Some("root"),
        Some(
            json!({"csr": std::fs::read_to_string(dir.path().join("w.csr")).unwrap(), "ttl": "1h"}),
        ),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // ca_chain holds the intermediate and the root, so cert-manager can fill ca.crt.
    let chain = v["data"]["ca_chain"].as_array().unwrap();
    assert_eq!(chain.len(), 2);
    std::fs::write(dir.path().join("int.pem"), chain[0].as_str().unwrap()).unwrap();
    std::fs::write(
        dir.path().join("leaf.pem"),
        v["data"]["certificate"].as_str().unwrap(),
    )
    .unwrap();
    let (ok, out) = openssl(
        &[
            "verify",
            "-CAfile",
            "ca.crt",
            "-untrusted",
            "int.pem",
            "leaf.pem",
        ],
        dir.path(),
    );
    assert!(ok, "{out}");
    let serial = v["data"]["serial_number"].as_str().unwrap().to_string();

    // Revocation: the CRL lists the serial; a second revoke reports the same time.
    let (st, v) = call(
        &s,
        "POST",
        "istioca/revoke",
        Some("root"),
        Some(json!({"serial_number": serial})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["state"], "revoked");
    let t1 = v["data"]["revocation_time"].clone();
    let (_, v) = call(
        &s,
        "POST",
        "istioca/revoke",
        Some("root"),
        Some(json!({"serial_number": serial})),
    )
    .await;
    assert_eq!(v["data"]["revocation_time"], t1);
    let crl = client().get(s.url("istioca/crl")).send().await.unwrap();
    assert_eq!(crl.headers()["content-type"], "application/pkix-crl");
    std::fs::write(dir.path().join("crl.der"), crl.bytes().await.unwrap()).unwrap();
    let (ok, text) = openssl(
        &["crl", "-inform", "DER", "-in", "crl.der", "-noout", "-text"],
        dir.path(),
    );
    assert!(ok, "{text}");
    assert!(
        text.to_lowercase().contains(&serial.replace(':', "")),
        "{text}"
    );
    let (ok, out) = openssl(
        &[
            "crl", "-inform", "DER", "-in", "crl.der", "-noout", "-CAfile", "int.pem",
        ],
        dir.path(),
    );
    assert!(ok, "{out}");
    // OCSP, checked end to end by `openssl ocsp` (POST) for a revoked and a good certificate.
    let (_, v) = call(
        &s,
        "POST",
        "istioca/sign/cluster-local",
        Some("root"),
        Some(
            json!({"csr": std::fs::read_to_string(dir.path().join("w.csr")).unwrap(), "ttl": "1h"}),
        ),
    )
    .await;
    std::fs::write(
        dir.path().join("good.pem"),
        v["data"]["certificate"].as_str().unwrap(),
    )
    .unwrap();
    let url = s.url("istioca/ocsp");
    for (cert, want) in [
        ("leaf.pem", "leaf.pem: revoked"),
        ("good.pem", "good.pem: good"),
    ] {
        let (ok, out) = openssl(
            &[
                "ocsp",
                "-issuer",
                "int.pem",
                "-cert",
                cert,
                "-url",
                &url,
                "-CAfile",
                "ca.crt",
                "-verify_other",
                "int.pem",
            ],
            dir.path(),
        );
        assert!(ok, "{out}");
        assert!(out.contains("Response verify OK"), "{out}");
        assert!(out.contains(want), "{out}");
    }
    // A garbage request gets an OCSP malformedRequest answer, not an HTTP error.
    let r = client()
        .post(s.url("istioca/ocsp"))
        .header("Content-Type", "application/ocsp-request")
        .body(vec![1u8, 2, 3])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.bytes().await.unwrap().as_ref(),
        &[0x30, 0x03, 0x0a, 0x01, 0x01]
    );
    let (_, v) = call(&s, "LIST", "istioca/certs/revoked", Some("root"), None).await;
    assert_eq!(v["data"]["keys"], json!([serial]));
    // A no_store certificate can be revoked by its PEM; unknown serials are refused.
    call(
        &s,
        "POST",
        "istioca/roles/nostore",
        Some("root"),
        Some(json!({"allow_any_name": true, "no_store": true, "key_type": "ec"})),
    )
    .await;
    let (_, v) = call(
        &s,
        "POST",
        "istioca/issue/nostore",
        Some("root"),
        Some(json!({"common_name": "x.svc"})),
    )
    .await;
    let pem = v["data"]["certificate"].as_str().unwrap().to_string();
    let (st, v) = call(
        &s,
        "POST",
        "istioca/revoke",
        Some("root"),
        Some(json!({"certificate": pem})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, _) = call(
        &s,
        "POST",
        "istioca/revoke",
        Some("root"),
        Some(json!({"serial_number": "01:02:03"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (_, v) = call(&s, "GET", "istioca/cert/crl", None, None).await;
    assert!(v["data"]["certificate"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN X509 CRL-----"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_the_inventory_from_its_indexes() {
    let s = Server::dev().await;
    setup(&s).await;
    call(&s, "POST", "pki/roles/other", Some("root"), Some(json!({"allowed_domains": "other.org", "allow_subdomains": true, "key_type": "ec", "max_ttl": "720h"}))).await;
    let mut serials = std::collections::BTreeMap::new();
    for (role, cn, ttl) in [
        ("web", "a.example.com", "1h"),
        ("web", "b.example.com", "2h"),
        ("web", "api.example.com", "50h"),
        ("other", "x.other.org", "100h"),
    ] {
        let (st, v) = call(
            &s,
            "POST",
            &format!("pki/issue/{role}"),
            Some("root"),
            Some(json!({"common_name": cn, "ttl": ttl})),
        )
        .await;
        assert_eq!(st, StatusCode::OK, "{v}");
        serials.insert(cn, v["data"]["serial_number"].as_str().unwrap().to_string());
    }
    let search = |q: Value| {
        let s = &s;
        async move {
            let (st, v) = call(s, "POST", "pki/certs/search", Some("root"), Some(q)).await;
            assert_eq!(st, StatusCode::OK, "{v}");
            let mut cns: Vec<String> = v["data"]["key_info"]
                .as_object()
                .unwrap()
                .values()
                .map(|i| i["common_name"].as_str().unwrap().to_string())
                .collect();
            cns.sort();
            cns
        }
    };
    assert_eq!(
        search(json!({"name": "*.example.com"})).await,
        vec!["a.example.com", "api.example.com", "b.example.com"]
    );
    assert_eq!(
        search(json!({"name": "a.example.com"})).await,
        vec!["a.example.com"]
    );
    assert_eq!(
        search(json!({"name": "a*.example.com"})).await,
        vec!["a.example.com", "api.example.com"]
    );
    assert_eq!(search(json!({"role": "other"})).await, vec!["x.other.org"]);
    assert_eq!(
        search(json!({"issuer": "default", "role": "other"})).await,
        vec!["x.other.org"]
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert_eq!(
        search(json!({"expires_before": now + 3 * 3600})).await,
        vec!["a.example.com", "b.example.com"]
    );
    assert_eq!(
        search(json!({"expires_after": now + 3 * 3600, "role": "web"})).await,
        vec!["api.example.com"]
    );
    call(
        &s,
        "POST",
        "pki/revoke",
        Some("root"),
        Some(json!({"serial_number": serials["b.example.com"]})),
    )
    .await;
    assert_eq!(
        search(json!({"name": "*.example.com", "state": "revoked"})).await,
        vec!["b.example.com"]
    );
    assert_eq!(
        search(json!({"name": "*.example.com", "state": "valid"})).await,
        vec!["a.example.com", "api.example.com"]
    );
    let (st, _) = call(
        &s,
        "POST",
        "pki/certs/search",
        Some("root"),
        Some(json!({})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = call(
        &s,
        "POST",
        "pki/certs/search",
        Some("root"),
        Some(json!({"state": "bogus"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    s.stop().await;
}

/// The engine's background work, driven by the core's maintenance hook: auto-tidy removes a
/// certificate once it has been expired for longer than the safety buffer, and stale CRLs are
/// rebuilt without a fetch when auto_rebuild is on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_auto_tidy_and_crl_rebuild() {
    let s = Server::dev().await;
    setup(&s).await;
    let (st, v) = call(
        &s,
        "POST",
        "pki/config/auto-tidy",
        Some("root"),
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "enabling with nothing to tidy: {v}"
    );
    let (st, v) = call(&s, "POST", "pki/config/auto-tidy", Some("root"), Some(json!({"enabled": true, "tidy_cert_store": true, "tidy_revoked_certs": true, "safety_buffer": "1s", "interval_duration": "1s"}))).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["data"]["interval_duration"], 1);
    let (st, v) = call(
        &s,
        "POST",
        "pki/config/crl",
        Some("root"),
        Some(json!({"auto_rebuild": true})),
    )
    .await;
    assert!(st.is_success(), "{v}");
    let (_, short) = call(
        &s,
        "POST",
        "pki/issue/web",
        Some("root"),
        Some(json!({"common_name": "short.example.com", "ttl": "1s"})),
    )
    .await;
    let (_, long) = call(
        &s,
        "POST",
        "pki/issue/web",
        Some("root"),
        Some(json!({"common_name": "long.example.com", "ttl": "1h"})),
    )
    .await;
    let short_serial = short["data"]["serial_number"].as_str().unwrap().to_string();
    let long_serial = long["data"]["serial_number"].as_str().unwrap().to_string();
    let (st, _) = call(
        &s,
        "POST",
        "pki/revoke",
        Some("root"),
        Some(json!({"serial_number": long_serial})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;
    s.core.run_periodic().await;
    let (_, list) = call(&s, "LIST", "pki/certs", Some("root"), None).await;
    let keys: Vec<String> = list["data"]["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert!(!keys.contains(&short_serial), "expired certificate tidied");
    assert!(keys.contains(&long_serial), "valid certificate kept");
    // The CRL was rebuilt by the periodic run: it already lists the revocation.
    let (_, st_crl) = call(&s, "GET", "pki/cert/crl", None, None).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("crl.pem"),
        st_crl["data"]["certificate"].as_str().unwrap(),
    )
    .unwrap();
    let (ok, text) = openssl(&["crl", "-in", "crl.pem", "-noout", "-text"], dir.path());
    assert!(ok, "{text}");
    assert!(
        text.to_uppercase()
            .contains(&long_serial.replace(':', "").to_uppercase()[..16]),
        "{text}"
    );
}
