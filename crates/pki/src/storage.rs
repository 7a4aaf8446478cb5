//! Every storage key of the PKI engine and the records stored under them.
//!
//! * `issuer` — the mount's CA: certificate, private key (PKCS#8, encrypted by the barrier like
//!   everything else), chain above it.
//! * `config/urls` — AIA and CRL distribution URLs put into issued certificates.
//! * `role/<name>` — roles.
//! * `certs/<serial>` — every stored certificate with who asked for it and under which role.

use serde::{Deserialize, Serialize};

pub const ISSUER: &str = "issuer";
pub const CONFIG_URLS: &str = "config/urls";
pub const ROLE_PREFIX: &str = "role/";
pub const CERTS_PREFIX: &str = "certs/";

/// The mount's CA.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuerEntry {
    pub issuer_id: String,
    pub issuer_name: String,
    pub key_id: String,
    pub key_name: String,
    /// PEM.
    pub certificate: String,
    /// PKCS#8 PEM; never returned by reads.
    pub private_key: String,
    /// PEM certificates above this one, nearest first.
    #[serde(default)]
    pub chain: Vec<String>,
    pub serial_number: String,
    pub not_after: i64,
}

/// `config/urls`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UrlsConfig {
    #[serde(default)]
    pub issuing_certificates: Vec<String>,
    #[serde(default)]
    pub crl_distribution_points: Vec<String>,
    #[serde(default)]
    pub ocsp_servers: Vec<String>,
}

/// A stored certificate.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CertRecord {
    pub certificate: String,
    #[serde(default)]
    pub role: String,
    /// Accessor of the token that asked (never the token).
    #[serde(default)]
    pub requester: String,
    pub issued_at: i64,
    pub common_name: String,
    pub not_after: i64,
}

/// The key a serial is stored under (`aa:bb` -> `certs/aa-bb`, as Vault does).
pub fn cert_key(serial: &str) -> String {
    format!("{CERTS_PREFIX}{}", serial.to_lowercase().replace(':', "-"))
}
