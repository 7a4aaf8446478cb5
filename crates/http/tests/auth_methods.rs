//! Kubernetes and JWT logins against peers that cannot run here, served from local HTTPS
//! endpoints in their exact wire format: a kube-apiserver TokenReview endpoint that checks the
//! reviewer's bearer token, and an OIDC issuer (discovery document + JWKS). Tokens are shaped
//! like real projected service-account tokens and signed with keys openssl generated.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::routing::{get, post};
use axum::{Json, Router};
use common::{call, https_fake, Server};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An RSA key pair from openssl: (private PEM, public PEM).
fn rsa_keys(dir: &std::path::Path, name: &str) -> (String, String) {
    let key = dir.join(format!("{name}.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let pubout = std::process::Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&key)
        .output()
        .unwrap();
    (
        std::fs::read_to_string(&key).unwrap(),
        String::from_utf8(pubout.stdout).unwrap(),
    )
}

fn sa_token(key: &str, kid: &str, ns: &str, name: &str, aud: &str, exp: u64) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    let claims = json!({
        "aud": [aud],
        "exp": exp,
        "iat": now() - 10,
        "nbf": now() - 10,
        "iss": "https://kubernetes.default.svc.cluster.local",
        "kubernetes.io": {
            "namespace": ns,
            "pod": {"name": "app-7d9f", "uid": "0b6d4a3e-pod"},
            "serviceaccount": {"name": name, "uid": format!("uid-{ns}-{name}")}
        },
        "sub": format!("system:serviceaccount:{ns}:{name}")
    });
    jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_pem(key.as_bytes()).unwrap(),
    )
    .unwrap()
}

#[derive(Clone)]
struct Kube {
    reviewer: String,
    /// token -> (namespace, name)
    valid: Arc<HashMap<String, (String, String)>>,
}

async fn token_review(
    State(k): State<Kube>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (AxStatus, Json<Value>) {
    let bearer = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if bearer != format!("Bearer {}", k.reviewer) {
        return (
            AxStatus::UNAUTHORIZED,
            Json(
                json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "Unauthorized", "reason": "Unauthorized", "code": 401}),
            ),
        );
    }
    let token = body
        .pointer("/spec/token")
        .and_then(Value::as_str)
        .unwrap_or("");
    let audiences = body
        .pointer("/spec/audiences")
        .cloned()
        .unwrap_or(json!(["https://kubernetes.default.svc"]));
    let status = match k.valid.get(token) {
        Some((ns, name)) => json!({
            "authenticated": true,
            "user": {
                "username": format!("system:serviceaccount:{ns}:{name}"),
                "uid": format!("uid-{ns}-{name}"),
                "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
                "extra": {"authentication.kubernetes.io/pod-name": ["app-7d9f"]}
            },
            "audiences": audiences
        }),
        None => json!({"user": {}, "error": "[invalid bearer token, token lookup failed]"}),
    };
    (
        AxStatus::CREATED,
        Json(json!({
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": null},
            "spec": body.get("spec").cloned().unwrap_or(json!({})),
            "status": status
        })),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes_login_through_token_review() {
    let dir = tempfile::tempdir().unwrap();
    let (sa_key, _) = rsa_keys(dir.path(), "sa");
    let aud = "https://kubernetes.default.svc";
    let good = sa_token(
        &sa_key,
        "k1",
        "fruits-catalog",
        "cert-manager-sa",
        aud,
        now() + 600,
    );
    let other_ns = sa_token(
        &sa_key,
        "k1",
        "kube-system",
        "cert-manager-sa",
        aud,
        now() + 600,
    );
    let forged = sa_token(
        &rsa_keys(dir.path(), "evil").0,
        "k1",
        "fruits-catalog",
        "cert-manager-sa",
        aud,
        now() + 600,
    );
    let kube = Kube {
        reviewer: "reviewer-jwt".into(),
        valid: Arc::new(HashMap::from([
            (
                good.clone(),
                ("fruits-catalog".to_string(), "cert-manager-sa".to_string()),
            ),
            (
                other_ns.clone(),
                ("kube-system".to_string(), "cert-manager-sa".to_string()),
            ),
        ])),
    };
    let app = Router::new()
        .route(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            post(token_review),
        )
        .with_state(kube);
    let (host, ca) = https_fake(app, dir.path()).await;

    let s = Server::dev().await;
    call(
        &s,
        "POST",
        "sys/auth/kubernetes",
        Some("root"),
        Some(json!({"type": "kubernetes"})),
    )
    .await;
    let (st, v) = call(
        &s,
        "POST",
        "auth/kubernetes/config",
        Some("root"),
        Some(json!({
            "kubernetes_host": host, "kubernetes_ca_cert": ca, "token_reviewer_jwt": "reviewer-jwt"
        })),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, v) = call(
        &s,
        "POST",
        "auth/kubernetes/role/fruits",
        Some("root"),
        Some(json!({
            "bound_service_account_names": "cert-manager-sa",
            "bound_service_account_namespaces": "fruits-catalog",
            "token_policies": "fruits-catalog", "token_ttl": "20m"
        })),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");

    let (st, v) = call(
        &s,
        "POST",
        "auth/kubernetes/login",
        None,
        Some(json!({"role": "fruits", "jwt": good})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["auth"]["policies"], json!(["default", "fruits-catalog"]));
    assert_eq!(
        v["auth"]["metadata"]["service_account_namespace"],
        json!("fruits-catalog")
    );
    assert_eq!(v["auth"]["lease_duration"], json!(1200));

    // A namespace the role does not bind, a forged token, an unknown role.
    let (st, _) = call(
        &s,
        "POST",
        "auth/kubernetes/login",
        None,
        Some(json!({"role": "fruits", "jwt": other_ns})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = call(
        &s,
        "POST",
        "auth/kubernetes/login",
        None,
        Some(json!({"role": "fruits", "jwt": forged})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = call(
        &s,
        "POST",
        "auth/kubernetes/login",
        None,
        Some(json!({"role": "nope", "jwt": good})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    // Local verification against pem_keys instead of TokenReview.
    let (_, sa_pub) = (sa_key.clone(), {
        let out = std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(dir.path().join("sa.key"))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    });
    call(
        &s,
        "POST",
        "auth/kubernetes/config",
        Some("root"),
        Some(json!({
            "kubernetes_host": host, "kubernetes_ca_cert": ca, "pem_keys": [sa_pub]
        })),
    )
    .await;
    let (st, v) = call(
        &s,
        "POST",
        "auth/kubernetes/login",
        None,
        Some(json!({"role": "fruits", "jwt": good})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, _) = call(
        &s,
        "POST",
        "auth/kubernetes/login",
        None,
        Some(json!({"role": "fruits", "jwt": forged})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_login_with_oidc_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = rsa_keys(dir.path(), "idp");
    let enc = EncodingKey::from_rsa_pem(key.as_bytes()).unwrap();
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&enc, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("idp-1".into());
    let jwks = json!({"keys": [jwk]});
    let issuer = Arc::new(std::sync::Mutex::new(String::new()));
    let iss2 = issuer.clone();
    let app = Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let iss = iss2.lock().unwrap().clone();
                async move { Json(json!({"issuer": iss, "jwks_uri": format!("{iss}/keys")})) }
            }),
        )
        .route(
            "/keys",
            get(move || {
                let j = jwks.clone();
                async move { Json(j) }
            }),
        );
    let (base, ca) = https_fake(app, dir.path()).await;
    *issuer.lock().unwrap() = base.clone();

    let s = Server::dev().await;
    call(
        &s,
        "POST",
        "sys/auth/jwt",
        Some("root"),
        Some(json!({"type": "jwt"})),
    )
    .await;
    let (st, v) = call(
        &s,
        "POST",
        "auth/jwt/config",
        Some("root"),
        Some(json!({"oidc_discovery_url": base, "oidc_discovery_ca_pem": ca})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, v) = call(
        &s,
        "POST",
        "auth/jwt/role/ci",
        Some("root"),
        Some(json!({
            "role_type": "jwt", "bound_audiences": "signet", "user_claim": "sub",
            "bound_claims": {"repo": "acme/*"}, "bound_claims_type": "glob",
            "claim_mappings": {"repo": "repository"}, "token_policies": "ci"
        })),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let sign = |claims: Value, kid: &str| {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some(kid.into());
        jsonwebtoken::encode(&h, &claims, &enc).unwrap()
    };
    let base_claims = json!({"iss": base, "aud": "signet", "sub": "build-42", "repo": "acme/web", "exp": now() + 300, "iat": now()});
    let (st, v) = call(
        &s,
        "POST",
        "auth/jwt/login",
        None,
        Some(json!({"role": "ci", "jwt": sign(base_claims.clone(), "idp-1")})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["auth"]["metadata"]["repository"], json!("acme/web"));
    assert_eq!(v["auth"]["policies"], json!(["ci", "default"]));

    let mut wrong_aud = base_claims.clone();
    wrong_aud["aud"] = json!("other");
    let mut wrong_repo = base_claims.clone();
    wrong_repo["repo"] = json!("evil/web");
    let mut expired = base_claims.clone();
    expired["exp"] = json!(now() - 3600);
    let mut wrong_iss = base_claims.clone();
    wrong_iss["iss"] = json!("https://evil.example");
    for (what, jwt) in [
        ("audience", sign(wrong_aud, "idp-1")),
        ("bound claim", sign(wrong_repo, "idp-1")),
        ("expired", sign(expired, "idp-1")),
        ("issuer", sign(wrong_iss, "idp-1")),
        ("unknown key", sign(base_claims.clone(), "other-kid")),
        ("tampered", {
            let t = sign(base_claims.clone(), "idp-1");
            let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
            parts[1] = base64_url(&json!({"iss": base, "aud": "signet", "sub": "admin", "repo": "acme/web", "exp": now() + 300}).to_string());
            parts.join(".")
        }),
        (
            "alg none",
            format!(
                "{}.{}.",
                base64_url(r#"{"alg":"none","typ":"JWT"}"#),
                base64_url(&base_claims.to_string())
            ),
        ),
    ] {
        let (st, v) = call(
            &s,
            "POST",
            "auth/jwt/login",
            None,
            Some(json!({"role": "ci", "jwt": jwt})),
        )
        .await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{what}: {v}");
        assert!(v["auth"].is_null(), "{what}");
    }
    s.stop().await;
}

fn base64_url(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_managed_identity_login() {
    let dir = tempfile::tempdir().unwrap();
    let tenant = "7f1a2b3c-0000-4000-8000-00000000aaaa";
    let (key, _) = rsa_keys(dir.path(), "aad");
    let enc = EncodingKey::from_rsa_pem(key.as_bytes()).unwrap();
    let mut jwk = jsonwebtoken::jwk::Jwk::from_encoding_key(&enc, Algorithm::RS256).unwrap();
    jwk.common.key_id = Some("aad-key-1".into());
    let jwks = json!({"keys": [jwk]});
    let base_cell = Arc::new(std::sync::Mutex::new(String::new()));
    let b2 = base_cell.clone();
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(move || {
            let base = b2.lock().unwrap().clone();
            // Azure AD v1: the issuer is sts.windows.net/<tenant>/, keys are served elsewhere.
            async move { Json(json!({"issuer": format!("https://sts.windows.net/{tenant}/"), "jwks_uri": format!("{base}/common/discovery/keys"), "token_endpoint": format!("{base}/oauth2/token")})) }
        }))
        .route("/common/discovery/keys", get(move || { let j = jwks.clone(); async move { Json(j) } }));
    let (base, ca) = https_fake(app, dir.path()).await;
    *base_cell.lock().unwrap() = base.clone();

    let sub = "11111111-2222-3333-4444-555555555555";
    let mi_token = |rg: &str, vm: &str, aud: &str| {
        let mut h = Header::new(Algorithm::RS256);
        h.kid = Some("aad-key-1".into());
        h.typ = Some("JWT".into());
        let claims = json!({
            "aud": aud, "iss": format!("https://sts.windows.net/{tenant}/"),
            "iat": now() - 5, "nbf": now() - 5, "exp": now() + 3600,
            "aio": "E2ZgYJiTenZ", "appid": "a0b1c2d3-0000-4000-8000-000000000001", "appidacr": "2",
            "idp": format!("https://sts.windows.net/{tenant}/"),
            "oid": "9e8d7c6b-0000-4000-8000-0000000000bb", "rh": "0.AAAA", "sub": "9e8d7c6b-0000-4000-8000-0000000000bb",
            "tid": tenant, "uti": "x-Yz", "ver": "1.0",
            "xms_mirid": format!("/subscriptions/{sub}/resourcegroups/{rg}/providers/Microsoft.Compute/virtualMachines/{vm}")
        });
        jsonwebtoken::encode(&h, &claims, &enc).unwrap()
    };
    let s = Server::dev().await;
    call(
        &s,
        "POST",
        "sys/auth/azure",
        Some("root"),
        Some(json!({"type": "azure"})),
    )
    .await;
    let (st, v) = call(
        &s,
        "POST",
        "auth/azure/config",
        Some("root"),
        Some(json!({
            "tenant_id": tenant, "resource": "https://management.azure.com/",
            "oidc_discovery_url": base, "oidc_discovery_ca_pem": ca
        })),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, v) = call(&s, "POST", "auth/azure/role/p12345", Some("root"), Some(json!({
        "bound_subscription_ids": sub, "bound_resource_groups": "rg-p12345", "token_policies": "customer-p12345"
    }))).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let login = |jwt: String, rg: &str, vm: &str| json!({"role": "p12345", "jwt": jwt, "subscription_id": sub, "resource_group_name": rg, "vm_name": vm});
    let (st, v) = call(
        &s,
        "POST",
        "auth/azure/login",
        None,
        Some(login(
            mi_token("rg-p12345", "envoy-vm-1", "https://management.azure.com/"),
            "rg-p12345",
            "envoy-vm-1",
        )),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["auth"]["policies"], json!(["customer-p12345", "default"]));
    assert_eq!(v["auth"]["metadata"]["vm_name"], json!("envoy-vm-1"));
    // A resource group the role does not allow; a login that lies about its VM; a wrong audience.
    let (st, _) = call(
        &s,
        "POST",
        "auth/azure/login",
        None,
        Some(login(
            mi_token("rg-other", "vm-x", "https://management.azure.com/"),
            "rg-other",
            "vm-x",
        )),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = call(
        &s,
        "POST",
        "auth/azure/login",
        None,
        Some(login(
            mi_token("rg-other", "vm-x", "https://management.azure.com/"),
            "rg-p12345",
            "envoy-vm-1",
        )),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = call(
        &s,
        "POST",
        "auth/azure/login",
        None,
        Some(login(
            mi_token("rg-p12345", "envoy-vm-1", "https://vault.azure.net"),
            "rg-p12345",
            "envoy-vm-1",
        )),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    s.stop().await;
}

/// A client CA and a client certificate signed by it (openssl): returns (ca pem, cert+key pem).
fn client_pki(dir: &std::path::Path, cn: &str, san: &str) -> (String, String) {
    let script = format!(
        "set -e; cd {d}; \\
         openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=client-ca -keyout cca.key -out cca.crt 2>/dev/null; \\
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj '/OU=mesh/CN={cn}' -keyout client.key -out client.csr 2>/dev/null; \\
         printf 'subjectAltName={san}\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=clientAuth\\n' > cext; \\
         openssl x509 -req -in client.csr -CA cca.crt -CAkey cca.key -CAcreateserial -days 1 -extfile cext -out client.crt 2>/dev/null",
        d = dir.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ca = std::fs::read_to_string(dir.join("cca.crt")).unwrap();
    let identity = format!(
        "{}{}",
        std::fs::read_to_string(dir.join("client.crt")).unwrap(),
        std::fs::read_to_string(dir.join("client.key")).unwrap()
    );
    (ca, identity)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_login_with_the_tls_client_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (server_ca, cert, key) = common::test_pki(dir.path());
    let cdir = tempfile::tempdir().unwrap();
    let (client_ca, identity) = client_pki(
        cdir.path(),
        "web-1.svc",
        "DNS:web-1.svc,URI:spiffe://cluster.local/ns/web/sa/web",
    );
    let other = tempfile::tempdir().unwrap();
    let (_, stranger) = client_pki(other.path(), "web-1.svc", "DNS:web-1.svc");

    let plain = Server::dev().await;
    let core = plain.core.clone();
    let tls = signet_http::tls_config(&cert, &key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(signet_http::serve(
        listener,
        Some(tls),
        signet_http::router(core, Default::default()),
        std::future::pending::<()>(),
    ));

    call(
        &plain,
        "POST",
        "sys/auth/cert",
        Some("root"),
        Some(json!({"type": "cert"})),
    )
    .await;
    let (st, v) = call(
        &plain,
        "POST",
        "auth/cert/certs/web",
        Some("root"),
        Some(json!({
            "certificate": client_ca, "allowed_uri_sans": "spiffe://cluster.local/ns/web/*",
            "allowed_organizational_units": "mesh", "token_policies": "web", "token_ttl": "10m"
        })),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, _) = call(
        &plain,
        "POST",
        "auth/cert/certs/bad",
        Some("root"),
        Some(json!({"certificate": "not a pem"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);

    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&server_ca).unwrap()).unwrap();
    let with = |id: Option<&str>| {
        let mut b = reqwest::Client::builder().add_root_certificate(ca.clone());
        if let Some(pem) = id {
            b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
        }
        b.build().unwrap()
    };
    let url = format!("https://localhost:{port}/v1/auth/cert/login");
    let r = with(Some(&identity))
        .post(&url)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["auth"]["policies"], json!(["default", "web"]));
    assert_eq!(v["auth"]["lease_duration"], json!(600));
    assert_eq!(v["auth"]["metadata"]["common_name"], json!("web-1.svc"));
    // A certificate from a CA the method does not trust, and no certificate at all.
    let r = with(Some(&stranger))
        .post(&url)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = with(None).post(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    plain.stop().await;
}
