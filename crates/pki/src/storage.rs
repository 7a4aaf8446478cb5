//! Every storage key of the PKI engine and the records stored under them.
//!
//! * `config/issuer/<id>`, `config/key/<id>`, `config/issuers`, `config/keys` — the issuers
//!   and keys (see `issuers.rs`); keys are PKCS#8, encrypted by the barrier like everything else.
//! * `config/urls` — AIA and CRL distribution URLs put into issued certificates.
//! * `role/<name>` — roles.
//! * `certs/<serial>` — every stored certificate with who asked for it and under which role.

use serde::{Deserialize, Serialize};

pub const CONFIG_URLS: &str = "config/urls";
pub const ROLE_PREFIX: &str = "role/";
pub const CERTS_PREFIX: &str = "certs/";
/// One entry per revoked certificate: revocation never rewrites a shared blob.
pub const REVOKED_PREFIX: &str = "revoked/";
/// The last CRL built by each issuer, and its number: `crl/state/<issuer id>`.
pub const CRL_STATE: &str = "crl/state";
/// Changes whenever a revocation (or a CRL setting) makes every built CRL stale. Older stores
/// have this one key; a change now writes one of [`CRL_EPOCH_SHARDS`] keys under
/// `crl/epoch/<n>`, chosen at random, so concurrent revocations do not all update one row (on
/// PostgreSQL one hot row serialised every revocation behind the previous commit). The epoch
/// is all of them read together ([`crl_epoch_keys`]).
pub const CRL_EPOCH: &str = "crl/epoch";
/// How many keys the CRL epoch is spread over.
pub const CRL_EPOCH_SHARDS: usize = 16;

/// Every key whose values together make the CRL epoch.
pub fn crl_epoch_keys() -> Vec<String> {
    std::iter::once(CRL_EPOCH.to_string())
        .chain((0..CRL_EPOCH_SHARDS).map(|i| format!("{CRL_EPOCH}/{i}")))
        .collect()
}

/// A write that changes the CRL epoch (marks every CRL stale).
pub fn crl_epoch_bump() -> signet_storage::Op {
    let id = uuid::Uuid::new_v4();
    let shard = (id.as_u128() % CRL_EPOCH_SHARDS as u128) as usize;
    signet_storage::Op::Put(format!("{CRL_EPOCH}/{shard}"), id.to_string().into_bytes())
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
    /// Epoch seconds of revocation; 0 while valid.
    #[serde(default)]
    pub revoked_at: i64,
    /// CN and DNS SANs, as indexed.
    #[serde(default)]
    pub names: Vec<String>,
    /// The issuer that signed it ("" in records older than several issuers per mount).
    #[serde(default)]
    pub issuer_id: String,
}

/// The revocation index the CRL builder pages through without reading entries:
/// `ridx/<issuer id or ->/<serial key>_<revocation time>`, written in the same batch as
/// `revoked/<serial>` (`-` stands for "no issuer recorded").
pub const RIDX_PREFIX: &str = "ridx/";

pub fn ridx_key(issuer_id: &str, serial: &str, revoked_at: i64) -> String {
    let issuer = if issuer_id.is_empty() { "-" } else { issuer_id };
    format!(
        "{RIDX_PREFIX}{issuer}/{}_{}",
        serial_key(serial),
        revoked_at.max(0)
    )
}

/// A revoked serial.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RevokedEntry {
    pub serial: String,
    pub revoked_at: i64,
    /// The issuer whose CRL lists it.
    #[serde(default)]
    pub issuer_id: String,
}

/// The CRL cache: rebuilt when a revocation happened after it was built.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CrlState {
    pub number: u64,
    pub built_at: i64,
    /// DER, base64.
    pub der: String,
    /// Unused since `epoch` (kept so older records parse).
    #[serde(default)]
    pub dirty: bool,
    /// The value of `crl/epoch` when built: stale when it differs.
    #[serde(default)]
    pub epoch: String,
    /// The number of the complete CRL in `der` (`number` is the last number used by either).
    #[serde(default)]
    pub base_number: u64,
    /// The delta CRL: DER base64, when built, the epoch then, and the complete CRL it extends.
    #[serde(default)]
    pub delta_der: String,
    #[serde(default)]
    pub delta_built_at: i64,
    #[serde(default)]
    pub delta_epoch: String,
    #[serde(default)]
    pub delta_base: u64,
}

/// Secondary indexes of the inventory, written in the same batch as the certificate record, so
/// `certs/search` reads index keys and never every certificate:
/// `idx/name/<reversed DNS name>|<issued>_<serial>` (CN and DNS SANs, labels reversed so
/// `*.example.com` is a prefix scan of `com.example.`; flat, so a scan reads a thousand
/// entries per query whatever the names), `idx/role/<role>/<issued>_<serial>`,
/// `idx/exp/<zero-padded notAfter>/<serial>`. The zero-padded issuance time in front of the
/// (random) serial makes new entries append at the end of their prefix: under issuance load
/// the B-tree pages an insert dirties stay few (measured: the random-serial layout made every
/// issuance dirty a page per index).
pub const IDX_NAME: &str = "idx/name/";
pub const IDX_ROLE: &str = "idx/role/";
pub const IDX_EXP: &str = "idx/exp/";

/// `a.example.com` -> `com.example.a` (lower case).
pub fn reverse_name(name: &str) -> String {
    let n = name.trim_end_matches('.').to_lowercase();
    n.rsplit('.').collect::<Vec<_>>().join(".")
}

fn serial_key(serial: &str) -> String {
    serial.to_lowercase().replace(':', "-")
}

/// The serial storage key (`aa-bb`) an index entry names (`<issued>_aa-bb` or `aa-bb`).
pub fn index_serial(child: &str) -> &str {
    match child.split_once('_') {
        Some((t, s)) if t.len() == 12 && t.bytes().all(|b| b.is_ascii_digit()) => s,
        _ => child,
    }
}

/// The index entries of a stored certificate.
pub fn index_keys(
    serial: &str,
    names: &[String],
    role: &str,
    not_after: i64,
    issued_at: i64,
) -> Vec<String> {
    let s = serial_key(serial);
    let t = format!("{:012}_{s}", issued_at.max(0));
    let mut keys: Vec<String> = names
        .iter()
        .filter(|n| !n.is_empty() && !n.contains('/') && !n.contains('|'))
        .map(|n| format!("{IDX_NAME}{}|{t}", reverse_name(n)))
        .collect();
    if !role.is_empty() && !role.contains('/') {
        keys.push(format!("{IDX_ROLE}{role}/{t}"));
    }
    keys.push(format!("{IDX_EXP}{:012}_{s}", not_after.max(0)));
    keys.sort();
    keys.dedup();
    keys
}

/// The key a serial is stored under (`aa:bb` -> `certs/aa-bb`, as Vault does).
pub fn cert_key(serial: &str) -> String {
    format!("{CERTS_PREFIX}{}", serial.to_lowercase().replace(':', "-"))
}
