//! The PKI secrets engine (`pki` mount type).
//!
//! Every path, by family: `path_root.rs` (root generation, `DELETE root`, `config/urls`),
//! `path_roles.rs` (roles), `path_issue_sign.rs` (`issue/:role`, `sign/:role`),
//! `path_fetch.rs` (unauthenticated CA and certificate downloads, `LIST certs`),
//! `path_intermediate.rs` (intermediate CSRs, sign-intermediate, set-signed, bundle imports),
//! `path_revoke.rs` (revocation index and CRLs). Storage keys live in `storage.rs`; X.509 work
//! in `signet_crypto::x509`. Still to come: several issuers and keys per mount, OCSP, delta
//! CRLs, tidy, search, sign-verbatim.

mod path_config_crl;
mod path_fetch;
mod path_intermediate;
mod path_issue_sign;
mod path_issuers;
mod path_ocsp;
mod path_revoke;
mod path_roles;
mod path_root;
mod path_search;
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
    // Revocation first: `cert/crl` must win over `cert/:serial`.
    let mut specs = path_revoke::specs();
    specs.extend(path_search::specs());
    specs.extend(path_ocsp::specs());
    specs.extend(path_config_crl::specs());
    specs.extend(path_fetch::specs());
    specs.extend(path_root::specs());
    specs.extend(path_intermediate::specs());
    specs.extend(path_issuers::specs());
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
