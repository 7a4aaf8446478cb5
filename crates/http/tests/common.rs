//! Shared test harness: a core served on a real socket, and a JSON request helper.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use reqwest::{Client, Method, StatusCode};
use serde_json::Value;
use signet_core::{Core, CoreOptions, Registry, SealKind};
use signet_http::{router, serve, HttpOptions};
use signet_storage::backends::inmem::InmemStorage;
use signet_storage::Storage;
use tokio::sync::oneshot;

pub fn client() -> Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    Client::new()
}

pub struct Server {
    pub addr: String,
    pub core: Arc<Core>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub async fn start(physical: Arc<dyn Storage>, max_request_size: usize) -> Server {
        Self::start_with_audit(physical, max_request_size, vec![]).await
    }

    pub async fn start_with_audit(
        physical: Arc<dyn Storage>,
        max_request_size: usize,
        audit: Vec<Arc<dyn signet_core::audit::AuditDevice>>,
    ) -> Server {
        Self::start_full(physical, max_request_size, audit, false).await
    }

    /// A server whose `sys/audit/:path` may enable devices (`unsafe_allow_api_audit_creation`).
    pub async fn start_full(
        physical: Arc<dyn Storage>,
        max_request_size: usize,
        audit: Vec<Arc<dyn signet_core::audit::AuditDevice>>,
        allow_api_audit: bool,
    ) -> Server {
        let core = Core::new(
            physical,
            CoreOptions {
                registry: Registry::new()
                    .secrets("kv", signet_kv::factory())
                    .secrets("pki", signet_pki::factory())
                    .auth("approle", signet_auth::approle::factory())
                    .auth("kubernetes", signet_auth::kubernetes::factory())
                    .auth("jwt", signet_auth::jwt_auth::factory())
                    .auth("azure", signet_auth::azure::factory())
                    .auth("cert", signet_auth::cert::factory()),
                seal: SealKind::Shamir,
                audit,
                audit_factory: Some(signet_audit::factory()),
                allow_api_audit,
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel::<()>();
        let app = router(core.clone(), HttpOptions { max_request_size });
        let task = tokio::spawn(serve(listener, None, app, async move {
            let _ = rx.await;
        }));
        Server {
            addr,
            core,
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn dev() -> Server {
        let s = Server::start(Arc::new(InmemStorage::new()), 1024 * 1024).await;
        s.core.dev_bootstrap(Some("root".into())).await.unwrap();
        s
    }

    pub async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/v1/{}", self.addr, path)
    }
}

pub async fn call(
    s: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut rb = client().request(Method::from_bytes(method.as_bytes()).unwrap(), s.url(path));
    if let Some(t) = token {
        rb = rb.header("X-Vault-Token", t);
    }
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    let v = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, v)
}

/// A CA and a `localhost` server certificate made by openssl (a tool we did not write):
/// returns (ca.crt, tls.crt, tls.key).
pub fn test_pki(
    dir: &std::path::Path,
) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let script = format!(
        "set -e; cd {d}; \
         openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=test-ca -keyout ca.key -out ca.crt 2>/dev/null; \
         openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost -keyout tls.key -out tls.csr 2>/dev/null; \
         printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nbasicConstraints=CA:FALSE\\nextendedKeyUsage=serverAuth\\n' > ext; \
         openssl x509 -req -in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 1 -extfile ext -out tls.crt 2>/dev/null",
        d = dir.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .expect("sh and openssl must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (dir.join("ca.crt"), dir.join("tls.crt"), dir.join("tls.key"))
}

/// Serves `app` over TLS on 127.0.0.1 with a fresh test PKI; returns the base URL and CA PEM.
pub async fn https_fake(app: axum::Router, dir: &std::path::Path) -> (String, String) {
    let (ca, cert, key) = test_pki(dir);
    let tls = signet_http::tls_config(&cert, &key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve(
        listener,
        Some(tls),
        app,
        std::future::pending::<()>(),
    ));
    (
        format!("https://localhost:{port}"),
        std::fs::read_to_string(ca).unwrap(),
    )
}
