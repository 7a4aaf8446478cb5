//! One keep-alive HTTP/1.1 connection per virtual client, on hyper's low-level client
//! (`hyper::client::conn::http1`): no pool, no redirects, no TLS, so a request costs the
//! generator little more than its bytes. A connection that fails is dropped and the next
//! request dials again; the failure is reported to the caller, never retried silently.
//!
//! Plain `http://` only: the generator runs against servers on the same machine, and `https://`
//! is refused with an error rather than measured through a TLS stack nobody asked for.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Where requests go: the resolved socket address and the `Host` header sent with them.
#[derive(Debug, Clone)]
pub struct Target {
    pub socket: SocketAddr,
    pub host: HeaderValue,
}

/// Splits `http://host:port[/]` (scheme optional) into `host:port`; `https` is refused.
pub fn authority(addr: &str) -> anyhow::Result<String> {
    let rest = if let Some(r) = addr.strip_prefix("http://") {
        r
    } else if addr.starts_with("https://") {
        bail!("https addresses are not supported: signet-bench speaks plain HTTP/1.1 to a local listener (give http://HOST:PORT)");
    } else if addr.contains("://") {
        bail!("unsupported address scheme in {addr:?}: give http://HOST:PORT");
    } else {
        addr
    };
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() || rest.contains('/') {
        bail!("the address must be http://HOST:PORT without a path, got {addr:?}");
    }
    if rest
        .rsplit_once(':')
        .is_none_or(|(_, p)| p.parse::<u16>().is_err())
    {
        return Ok(format!("{rest}:80"));
    }
    Ok(rest.to_string())
}

impl Target {
    pub async fn resolve(addr: &str) -> anyhow::Result<Arc<Target>> {
        let auth = authority(addr)?;
        let socket = tokio::net::lookup_host(auth.as_str())
            .await
            .with_context(|| format!("cannot resolve {auth}"))?
            .next()
            .ok_or_else(|| anyhow!("{auth} resolves to no address"))?;
        Ok(Arc::new(Target {
            socket,
            host: HeaderValue::from_str(&auth).context("bad host")?,
        }))
    }
}

/// Why a request got no HTTP status.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Failure {
    #[error("connect: {0}")]
    Connect(String),
    #[error("connection: {0}")]
    Io(String),
    #[error("timeout")]
    Timeout,
}

impl Failure {
    /// The key errors are counted under.
    pub fn key(&self) -> &'static str {
        match self {
            Failure::Connect(_) => "connect",
            Failure::Io(_) => "connection",
            Failure::Timeout => "timeout",
        }
    }
}

/// A response: status and the whole body.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

impl Reply {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    pub fn json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// One client's connection.
pub struct Conn {
    target: Arc<Target>,
    timeout: Duration,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    pub fn new(target: Arc<Target>, timeout: Duration) -> Conn {
        Conn {
            target,
            timeout,
            sender: None,
        }
    }

    async fn dial(&self) -> Result<SendRequest<Full<Bytes>>, Failure> {
        let stream = TcpStream::connect(self.target.socket)
            .await
            .map_err(|e| Failure::Connect(e.to_string()))?;
        stream
            .set_nodelay(true)
            .map_err(|e| Failure::Connect(e.to_string()))?;
        let (sender, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| Failure::Connect(e.to_string()))?;
        tokio::spawn(async move {
            // The connection ends when the sender is dropped or the peer closes it; an error
            // here also surfaces on the pending request, where it is counted.
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Sends one request and reads the whole response. `token` goes in `X-Vault-Token`.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> Result<Reply, Failure> {
        let timeout = self.timeout;
        match tokio::time::timeout(
            timeout,
            self.send_inner(method, path, token, content_type, body),
        )
        .await
        {
            Ok(r) => {
                if r.is_err() {
                    self.sender = None;
                }
                r
            }
            Err(_) => {
                self.sender = None;
                Err(Failure::Timeout)
            }
        }
    }

    async fn send_inner(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&'static str>,
        body: Bytes,
    ) -> Result<Reply, Failure> {
        let reusable = match self.sender.take() {
            Some(mut s) => s.ready().await.is_ok().then_some(s),
            None => None,
        };
        let mut sender = match reusable {
            Some(s) => s,
            None => {
                let mut s = self.dial().await?;
                s.ready()
                    .await
                    .map_err(|e| Failure::Connect(e.to_string()))?;
                s
            }
        };
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.target.host.clone());
        if let Some(t) = token {
            req = req.header("X-Vault-Token", t);
        }
        if let Some(ct) = content_type {
            req = req.header(CONTENT_TYPE, ct);
        }
        let req = req
            .body(Full::new(body))
            .map_err(|e| Failure::Io(format!("bad request: {e}")))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| Failure::Io(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| Failure::Io(e.to_string()))?
            .to_bytes();
        self.sender = Some(sender);
        Ok(Reply { status, body })
    }

    /// A JSON request (`POST`/`PUT`/`GET`) with an optional body.
    pub async fn json(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<Reply, Failure> {
        let (ct, bytes) = match body {
            Some(v) => (Some("application/json"), Bytes::from(v.to_string())),
            None => (None, Bytes::new()),
        };
        self.send(method, path, token, ct, bytes).await
    }
}

/// `/v1/` + a path with surrounding slashes removed.
pub fn api_path(path: &str) -> String {
    format!("/v1/{}", path.trim_matches('/'))
}

/// The first error message of a Vault error body, or the body itself, shortened.
pub fn error_text(reply: &Reply) -> String {
    if let Some(v) = reply.json() {
        if let Some(e) = v.get("errors").and_then(|e| e.as_array()) {
            let msgs: Vec<String> = e
                .iter()
                .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string))
                .collect();
            return format!("HTTP {}: {}", reply.status, msgs.join("; "));
        }
    }
    let text = String::from_utf8_lossy(&reply.body);
    let short: String = text.chars().take(200).collect();
    format!("HTTP {}: {}", reply.status, short)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authority_forms() {
        assert_eq!(
            authority("http://127.0.0.1:8200").unwrap(),
            "127.0.0.1:8200"
        );
        assert_eq!(
            authority("http://127.0.0.1:8200/").unwrap(),
            "127.0.0.1:8200"
        );
        assert_eq!(authority("localhost:8300").unwrap(), "localhost:8300");
        assert_eq!(authority("http://localhost").unwrap(), "localhost:80");
        assert!(authority("https://127.0.0.1:8200")
            .unwrap_err()
            .to_string()
            .contains("https"));
        assert!(authority("ftp://x:1").is_err());
        assert!(authority("http://x:1/v1").is_err());
    }

    #[test]
    fn api_paths() {
        assert_eq!(api_path("pki/issue/ec"), "/v1/pki/issue/ec");
        assert_eq!(api_path("/kv/"), "/v1/kv");
    }
}
