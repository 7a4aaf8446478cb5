//! What the agent reports on its listener: `/health` (200 once authenticated, else 503) and
//! `/metrics` in Prometheus' text format (seconds to expiry per certificate, renewals and
//! failures per certificate, token renewals and authentication failures).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default, Clone)]
struct CertStats {
    not_after: i64,
    renewals: u64,
    failures: u64,
}

/// Shared counters.
#[derive(Debug, Default)]
pub struct Metrics {
    certs: Mutex<BTreeMap<String, CertStats>>,
    pub token_renewals: AtomicU64,
    pub auth_failures: AtomicU64,
    pub authenticated: AtomicBool,
}

impl Metrics {
    pub fn cert_written(&self, name: &str, not_after: i64) {
        if let Ok(mut m) = self.certs.lock() {
            let e = m.entry(name.to_string()).or_default();
            e.not_after = not_after;
            e.renewals += 1;
        }
    }

    pub fn cert_current(&self, name: &str, not_after: i64) {
        if let Ok(mut m) = self.certs.lock() {
            m.entry(name.to_string()).or_default().not_after = not_after;
        }
    }

    pub fn cert_failed(&self, name: &str) {
        if let Ok(mut m) = self.certs.lock() {
            m.entry(name.to_string()).or_default().failures += 1;
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, now: i64) -> String {
        let certs = self.certs.lock().map(|m| m.clone()).unwrap_or_default();
        let esc = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
        let mut out = String::new();
        out.push_str("# HELP signet_agent_certificate_expiry_seconds Seconds until the certificate on disk expires.\n# TYPE signet_agent_certificate_expiry_seconds gauge\n");
        for (n, c) in &certs {
            out.push_str(&format!(
                "signet_agent_certificate_expiry_seconds{{name=\"{}\"}} {}\n",
                esc(n),
                c.not_after - now
            ));
        }
        out.push_str("# HELP signet_agent_certificate_renewals_total Certificates written.\n# TYPE signet_agent_certificate_renewals_total counter\n");
        for (n, c) in &certs {
            out.push_str(&format!(
                "signet_agent_certificate_renewals_total{{name=\"{}\"}} {}\n",
                esc(n),
                c.renewals
            ));
        }
        out.push_str("# HELP signet_agent_certificate_failures_total Failed issuance attempts.\n# TYPE signet_agent_certificate_failures_total counter\n");
        for (n, c) in &certs {
            out.push_str(&format!(
                "signet_agent_certificate_failures_total{{name=\"{}\"}} {}\n",
                esc(n),
                c.failures
            ));
        }
        out.push_str(&format!(
            "# HELP signet_agent_token_renewals_total Token renewals and re-logins.\n# TYPE signet_agent_token_renewals_total counter\nsignet_agent_token_renewals_total {}\n# HELP signet_agent_auth_failures_total Failed logins.\n# TYPE signet_agent_auth_failures_total counter\nsignet_agent_auth_failures_total {}\n",
            self.token_renewals.load(Ordering::Relaxed),
            self.auth_failures.load(Ordering::Relaxed)
        ));
        out
    }
}

/// Serves `/health` and `/metrics` on a bound listener until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, metrics: Arc<Metrics>) -> Result<(), String> {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::get;
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let m1 = metrics.clone();
    let m2 = metrics;
    let app = axum::Router::new()
        .route(
            "/health",
            get(move || {
                let ok = m1.authenticated.load(Ordering::Relaxed);
                async move {
                    let (code, body) = if ok {
                        (StatusCode::OK, "{\"status\":\"ok\"}")
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            "{\"status\":\"unauthenticated\"}",
                        )
                    };
                    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
                }
            }),
        )
        .route(
            "/metrics",
            get(move || {
                let text = m2.render(crate::now());
                async move {
                    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
                }
            }),
        );
    tracing::info!(address = %address, "agent listener: /health and /metrics");
    axum::serve(listener, app)
        .await
        .map_err(|e| format!("listener stopped: {e}"))
}
