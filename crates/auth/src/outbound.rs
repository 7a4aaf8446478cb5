//! Outbound HTTPS for auth methods (Kubernetes TokenReview, JWKS and OIDC discovery, Azure
//! keys): rustls with aws-lc-rs, trusting only the CA the method's config names. There are no
//! built-in public roots: a method talks to the endpoints its operator configured, with the CA
//! the operator gave.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use signet_core::{CoreError, CoreResult};

/// A client trusting the PEM CA bundle `ca_pem` (plain HTTP works without one).
pub fn client(ca_pem: &str) -> CoreResult<reqwest::Client> {
    let mut roots = rustls::RootCertStore::empty();
    if !ca_pem.trim().is_empty() {
        for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
            let cert = cert.map_err(|e| CoreError::bad(format!("invalid CA certificate: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| CoreError::bad(format!("invalid CA certificate: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| CoreError::Internal(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| CoreError::Internal(format!("http client: {e}")))
}

/// Checks that a PEM CA bundle parses (config validation).
pub fn check_ca(ca_pem: &str) -> CoreResult<()> {
    client(ca_pem).map(|_| ())
}
