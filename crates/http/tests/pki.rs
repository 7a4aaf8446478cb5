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
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
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
    assert_eq!(st, StatusCode::NO_CONTENT);
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
    // An EC CSR on a role that wants RSA keys.
    let (st, v) = call(
        &s,
        "POST",
        "pki/roles/rsa-only",
        Some("root"),
        Some(json!({"allow_any_name": true})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
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
