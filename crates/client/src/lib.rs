//! A small async client for the Vault/OpenBao HTTP API, used by the `signet` CLI (and, next, the
//! agent and the load generator). It speaks only the public API, so it works against signet,
//! OpenBao and Vault alike.
//!
//! TLS is rustls with aws-lc-rs and trusts only the CA bundle it is given (`-ca-cert`,
//! `VAULT_CACERT`); there are no built-in public roots, since Vault-API servers are usually
//! served by a private CA. Plain HTTP needs no CA.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use serde_json::Value;

/// Characters escaped in path segments (the rest of the path is sent as given).
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'%');

/// How to reach a server.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    /// `http(s)://host:port`.
    pub address: String,
    pub token: Option<String>,
    /// PEM bundle to trust.
    pub ca_cert: Option<PathBuf>,
    pub tls_skip_verify: bool,
    pub tls_server_name: Option<String>,
    /// A PEM client certificate (with its chain) and key presented in the TLS handshake (the
    /// `cert` auth method logs in with it).
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

/// A failed call.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Could not talk to the server (connection refused, TLS, timeout).
    #[error("{0}")]
    Transport(String),
    /// The server answered with an error status.
    #[error("Error making API request.\n\nURL: {method} {url}\nCode: {status}. Errors:\n\n{}", .errors.iter().map(|e| format!("* {e}")).collect::<Vec<_>>().join("\n"))]
    Api {
        method: String,
        url: String,
        status: u16,
        errors: Vec<String>,
    },
    /// Local configuration problem (bad CA file).
    #[error("{0}")]
    Config(String),
}

impl ClientError {
    /// The HTTP status of an API error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The client.
#[derive(Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

#[derive(Debug)]
struct NoVerify(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerify {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Reads the certificates of a PEM file (`what` names it in errors).
fn read_pem_certs(
    path: &std::path::Path,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let pem = std::fs::read(path)
        .map_err(|e| ClientError::Config(format!("cannot read {what} {}: {e}", path.display())))?;
    CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ClientError::Config(format!("invalid {what} {}: {e}", path.display())))
}

/// Reads a PEM client certificate chain and its private key (PKCS#1, SEC1 or PKCS#8). The
/// key's bytes are zeroized by rustls when the identity is dropped.
fn load_identity(
    cert: &std::path::Path,
    key: &std::path::Path,
) -> Result<
    (
        Vec<CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    ),
    ClientError,
> {
    let chain = read_pem_certs(cert, "client certificate")?;
    if chain.is_empty() {
        return Err(ClientError::Config(format!(
            "no certificate in {}",
            cert.display()
        )));
    }
    let key_pem = zeroize::Zeroizing::new(std::fs::read(key).map_err(|e| {
        ClientError::Config(format!("cannot read client key {}: {e}", key.display()))
    })?);
    let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|_| ClientError::Config(format!("no usable private key in {}", key.display())))?;
    Ok((chain, key))
}

impl Client {
    /// Builds a client.
    pub fn new(cfg: ClientConfig) -> Result<Client, ClientError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        if let Some(path) = &cfg.ca_cert {
            for c in read_pem_certs(path, "CA certificate")? {
                roots.add(c).map_err(|e| {
                    ClientError::Config(format!("invalid CA certificate {}: {e}", path.display()))
                })?;
            }
        }
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let builder = if cfg.tls_skip_verify {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerify(provider)))
        } else {
            builder.with_root_certificates(roots)
        };
        let tls = match (&cfg.client_cert, &cfg.client_key) {
            (Some(cert), Some(key)) => {
                let (chain, key) = load_identity(cert, key)?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| ClientError::Config(format!("invalid client certificate: {e}")))?
            }
            (None, None) => builder.with_no_client_auth(),
            _ => {
                return Err(ClientError::Config(
                    "a client certificate needs both client_cert and client_key".into(),
                ))
            }
        };
        let mut http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .timeout(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(10));
        let mut base = cfg.address.trim_end_matches('/').to_string();
        if let Some(name) = &cfg.tls_server_name {
            // Connect to the given address but verify (and send SNI for) another name.
            if let Ok(url) = reqwest::Url::parse(&base) {
                if let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) {
                    if let Ok(addrs) = std::net::ToSocketAddrs::to_socket_addrs(&(host, port)) {
                        if let Some(a) = addrs.into_iter().next() {
                            http = http.resolve(name, a);
                            base = format!("{}://{name}:{port}", url.scheme());
                        }
                    }
                }
            }
        }
        Ok(Client {
            base,
            token: cfg.token.filter(|t| !t.is_empty()),
            http: http
                .build()
                .map_err(|e| ClientError::Config(e.to_string()))?,
        })
    }

    /// The server address.
    pub fn address(&self) -> &str {
        &self.base
    }

    /// Replaces the token.
    pub fn set_token(&mut self, token: Option<String>) {
        self.token = token;
    }

    fn url(&self, path: &str) -> String {
        let p = path.trim_start_matches('/');
        format!("{}/v1/{}", self.base, utf8_percent_encode(p, PATH))
    }

    /// One request. `Ok(None)` for 204 No Content; the JSON body otherwise.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        query: &[(String, String)],
    ) -> Result<Option<Value>, ClientError> {
        let url = self.url(path);
        let m = reqwest::Method::from_bytes(method.as_bytes())
            .map_err(|e| ClientError::Config(e.to_string()))?;
        let mut rb = self.http.request(m, &url);
        if !query.is_empty() {
            rb = rb.query(query);
        }
        if let Some(t) = &self.token {
            rb = rb.header("X-Vault-Token", t);
        }
        if let Some(b) = body {
            let ct = if method == "PATCH" {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            rb = rb
                .header("Content-Type", ct)
                .body(serde_json::to_vec(b).map_err(|e| ClientError::Config(e.to_string()))?);
        }
        let resp = rb.send().await.map_err(|e| {
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg = format!("{msg}: {s}");
                src = s.source();
            }
            ClientError::Transport(format!("{method} {url}: {msg}"))
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if status >= 400 {
            let errors = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("errors").and_then(Value::as_array).cloned())
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_else(|| {
                    if text.is_empty() {
                        vec![]
                    } else {
                        vec![text.clone()]
                    }
                });
            return Err(ClientError::Api {
                method: method.to_string(),
                url,
                status,
                errors,
            });
        }
        if status == 204 || text.trim().is_empty() {
            return Ok(None);
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| ClientError::Transport(format!("invalid JSON from {url}: {e}")))
    }

    /// GETs an absolute URL outside the Vault API (a cloud metadata service) and parses its
    /// JSON answer; the token is not sent.
    pub async fn get_url(&self, url: &str, headers: &[(&str, &str)]) -> Result<Value, ClientError> {
        let text = self.get_text(url, headers).await?;
        serde_json::from_str(&text).map_err(|e| ClientError::Transport(format!("GET {url}: {e}")))
    }

    /// GETs an API path whose answer is not JSON (`pki/ca_chain`, `pki/crl/pem`) and returns
    /// the body as text.
    pub async fn read_raw(&self, path: &str) -> Result<String, ClientError> {
        let token = self.token.clone();
        let headers: Vec<(&str, &str)> = token
            .as_deref()
            .map(|t| ("X-Vault-Token", t))
            .into_iter()
            .collect();
        self.get_text(&self.url(path), &headers).await
    }

    /// A GET whose 2xx body is returned as text; other statuses are API errors.
    async fn get_text(&self, url: &str, headers: &[(&str, &str)]) -> Result<String, ClientError> {
        let mut rb = self.http.get(url);
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let resp = rb
            .send()
            .await
            .map_err(|e| ClientError::Transport(format!("GET {url}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if !(200..300).contains(&status) {
            return Err(ClientError::Api {
                method: "GET".into(),
                url: url.into(),
                status,
                errors: vec![text.chars().take(300).collect()],
            });
        }
        Ok(text)
    }

    pub async fn read(&self, path: &str) -> Result<Option<Value>, ClientError> {
        self.request("GET", path, None, &[]).await
    }

    pub async fn list(&self, path: &str) -> Result<Option<Value>, ClientError> {
        self.request("LIST", path, None, &[]).await
    }

    pub async fn write(&self, path: &str, body: &Value) -> Result<Option<Value>, ClientError> {
        self.request("PUT", path, Some(body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Result<Option<Value>, ClientError> {
        self.request("DELETE", path, None, &[]).await
    }
}
