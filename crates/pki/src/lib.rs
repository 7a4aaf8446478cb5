//! The PKI secrets engine (`pki` mount type).
//!
//! Every path, by family: `path_root.rs` (root generation, `DELETE root`, `config/urls`),
//! `path_roles.rs` (roles), `path_issue_sign.rs` (`issue/:role`, `sign/:role`),
//! `path_fetch.rs` (unauthenticated CA and certificate downloads, `LIST certs`). Storage keys
//! live in `storage.rs`; X.509 work in `signet_crypto::x509`. This is the first slice of the
//! engine: one issuer per mount; intermediates, revocation, CRL/OCSP, multi-issuer and search
//! come next.

mod path_fetch;
mod path_issue_sign;
mod path_roles;
mod path_root;
mod storage;

use std::sync::Arc;

use signet_core::framework::{Backend, PathBackend};
use signet_core::EngineFactory;

/// The engine state (everything lives in the mount's storage).
pub struct Pki;

/// The factory the binary registers as type `pki`.
pub fn factory() -> EngineFactory {
    Arc::new(|_entry| Ok(Arc::new(backend()) as Arc<dyn Backend>))
}

/// Builds the engine.
pub fn backend() -> PathBackend<Pki> {
    let mut specs = path_fetch::specs();
    specs.extend(path_root::specs());
    specs.extend(path_roles::specs());
    specs.extend(path_issue_sign::specs());
    PathBackend::new(Arc::new(Pki), specs)
}

/// DER of a stored PEM certificate.
pub(crate) fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .unwrap_or_default()
}
