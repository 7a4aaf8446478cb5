//! The mount's issuers and keys: several of each, as in OpenBao since Vault 1.11.
//!
//! An issuer is a CA certificate (with the id of its key when the mount holds that key); a key
//! is a private key, stored once however many issuers share it. `config/issuers` names the
//! default issuer, `config/keys` the default key. References (`:ref`, `issuer_ref`) resolve an
//! id, a name, or `default`.
//!
//! Chains are computed, not trusted from input: after every change to the set of issuers each
//! issuer's `ca_chain` is rebuilt by finding, among the mount's issuers, the certificate whose
//! subject is its issuer and whose key verifies its signature (or from `manual_chain`). So an
//! imported root makes every intermediate below it chain to it, and deleting it shortens them.
//!
//! Every mutation runs under [`Pki::lock_issuers`]: the set of issuers is read (from storage,
//! not the cache), changed and written back as one step, on this node and across the nodes
//! sharing the storage.

use serde::{Deserialize, Serialize};
use signet_core::framework::Ctx;
use signet_core::{CoreError, CoreResult};
use signet_crypto::x509;
use signet_storage::{Op, Storage};

use crate::Pki;

pub const ISSUER_PREFIX: &str = "config/issuer/";
pub const KEY_PREFIX: &str = "config/key/";
pub const CONFIG_ISSUERS: &str = "config/issuers";
pub const CONFIG_KEYS: &str = "config/keys";

/// Every usage an issuer can have, in OpenBao's order.
pub const ALL_USAGES: [&str; 4] = [
    "read-only",
    "issuing-certificates",
    "crl-signing",
    "ocsp-signing",
];

/// A CA certificate of the mount.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IssuerEntry {
    pub issuer_id: String,
    #[serde(default)]
    pub issuer_name: String,
    /// Empty when the mount does not hold this certificate's key.
    #[serde(default)]
    pub key_id: String,
    /// PEM.
    pub certificate: String,
    /// PEM certificates above this one, nearest first (computed).
    #[serde(default)]
    pub chain: Vec<String>,
    /// Issuer ids of a chain set by hand (first is this issuer); empty = computed.
    #[serde(default)]
    pub manual_chain: Vec<String>,
    pub serial_number: String,
    pub not_after: i64,
    /// err, truncate or permit.
    #[serde(default = "default_leaf_behavior")]
    pub leaf_not_after_behavior: String,
    #[serde(default = "default_usage")]
    pub usage: Vec<String>,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default)]
    pub revocation_time: i64,
    /// Per-issuer AIA URLs; when all are empty the mount's `config/urls` apply.
    #[serde(default)]
    pub issuing_certificates: Vec<String>,
    #[serde(default)]
    pub crl_distribution_points: Vec<String>,
    #[serde(default)]
    pub ocsp_servers: Vec<String>,
    #[serde(default)]
    pub enable_aia_url_templating: bool,
    #[serde(default)]
    pub revocation_signature_algorithm: String,
}

fn default_leaf_behavior() -> String {
    "err".into()
}

fn default_usage() -> Vec<String> {
    ALL_USAGES.iter().map(|s| s.to_string()).collect()
}

impl IssuerEntry {
    /// A new issuer for a DER certificate.
    pub fn new(der: &[u8], key_id: String, name: String) -> CoreResult<IssuerEntry> {
        let info = x509::cert_info(der).map_err(|e| CoreError::bad(e.to_string()))?;
        Ok(IssuerEntry {
            issuer_id: uuid::Uuid::new_v4().to_string(),
            issuer_name: name,
            key_id,
            certificate: x509::cert_pem(der),
            chain: vec![],
            manual_chain: vec![],
            serial_number: info.serial,
            not_after: info.not_after,
            leaf_not_after_behavior: default_leaf_behavior(),
            usage: default_usage(),
            revoked: false,
            revocation_time: 0,
            issuing_certificates: vec![],
            crl_distribution_points: vec![],
            ocsp_servers: vec![],
            enable_aia_url_templating: false,
            revocation_signature_algorithm: String::new(),
        })
    }

    /// This certificate followed by its chain.
    pub fn ca_chain(&self) -> Vec<String> {
        std::iter::once(self.certificate.clone())
            .chain(self.chain.iter().cloned())
            .collect()
    }

    pub fn der(&self) -> Vec<u8> {
        crate::pem_der(&self.certificate)
    }

    pub fn has_usage(&self, usage: &str) -> bool {
        self.usage.iter().any(|u| u == usage)
    }

    /// Refuses an operation this issuer's `usage` does not allow, with OpenBao's wording.
    pub fn require_usage(&self, usage: &str) -> CoreResult<()> {
        if self.has_usage(usage) {
            return Ok(());
        }
        let what = match usage {
            "issuing-certificates" => "issuance",
            "crl-signing" => "CRL signing",
            "ocsp-signing" => "OCSP signing",
            other => other,
        };
        Err(CoreError::bad(format!(
            "cannot use issuer {} for {what}: the issuer's usage does not include {usage}",
            self.issuer_id
        )))
    }

    pub fn has_own_urls(&self) -> bool {
        !(self.issuing_certificates.is_empty()
            && self.crl_distribution_points.is_empty()
            && self.ocsp_servers.is_empty())
    }
}

/// A private key of the mount. `Debug` redacts it; it is wiped from memory on drop.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyEntry {
    pub key_id: String,
    #[serde(default)]
    pub key_name: String,
    /// rsa, ec or ed25519.
    pub key_type: String,
    /// PKCS#8 PEM; returned only when generated with `exported`.
    pub private_key: String,
    /// DER SubjectPublicKeyInfo, base64: matches keys to certificates without parsing the key.
    pub spki: String,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("key_id", &self.key_id)
            .field("key_name", &self.key_name)
            .field("key_type", &self.key_type)
            .field("private_key", &"REDACTED")
            .finish_non_exhaustive()
    }
}

impl Drop for KeyEntry {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.private_key);
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IssuersConfig {
    #[serde(default)]
    pub default: String,
    #[serde(default)]
    pub default_follows_latest_issuer: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeysConfig {
    #[serde(default)]
    pub default: String,
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn json_bytes<T: Serialize>(v: &T) -> CoreResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(|e| CoreError::Internal(e.to_string()))
}

/// Names: letters, digits, `-` and `_`, not a UUID-like reserved word.
pub fn check_name(name: &str, what: &str) -> CoreResult<()> {
    if name.is_empty() {
        return Ok(());
    }
    if name == "default" || name == "self" {
        return Err(CoreError::bad(format!("reserved {what} name: {name}")));
    }
    if name.len() > 128
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(CoreError::bad(format!(
            "{what} name outside of valid character limits"
        )));
    }
    Ok(())
}

pub async fn issuers_config(pki: &Pki, c: &Ctx) -> CoreResult<IssuersConfig> {
    Ok(pki.get(c, CONFIG_ISSUERS).await?.unwrap_or_default())
}

pub async fn keys_config(pki: &Pki, c: &Ctx) -> CoreResult<KeysConfig> {
    Ok(pki.get(c, CONFIG_KEYS).await?.unwrap_or_default())
}

pub async fn issuer_ids(c: &Ctx) -> CoreResult<Vec<String>> {
    Ok(c.storage.list(ISSUER_PREFIX).await?)
}

pub async fn all_issuers(pki: &Pki, c: &Ctx) -> CoreResult<Vec<IssuerEntry>> {
    let mut out = Vec::new();
    for id in issuer_ids(c).await? {
        if let Some(i) = pki.get(c, &format!("{ISSUER_PREFIX}{id}")).await? {
            out.push(i);
        }
    }
    Ok(out)
}

pub async fn all_keys(c: &Ctx) -> CoreResult<Vec<KeyEntry>> {
    let mut out = Vec::new();
    for id in c.storage.list(KEY_PREFIX).await? {
        if let Some(k) = c.storage.get_json(&format!("{KEY_PREFIX}{id}")).await? {
            out.push(k);
        }
    }
    Ok(out)
}

/// The issuer a reference names, or `None`.
pub async fn find_issuer(pki: &Pki, c: &Ctx, reference: &str) -> CoreResult<Option<IssuerEntry>> {
    let reference = reference.trim();
    if reference.is_empty() || reference == "default" {
        let cfg = issuers_config(pki, c).await?;
        if cfg.default.is_empty() {
            return Ok(None);
        }
        return pki.get(c, &format!("{ISSUER_PREFIX}{}", cfg.default)).await;
    }
    if !reference.contains('/') {
        if let Some(i) = pki.get(c, &format!("{ISSUER_PREFIX}{reference}")).await? {
            return Ok(Some(i));
        }
    }
    Ok(all_issuers(pki, c)
        .await?
        .into_iter()
        .find(|i| !i.issuer_name.is_empty() && i.issuer_name == reference))
}

/// The issuer a reference names, or OpenBao's error.
pub async fn resolve_issuer(pki: &Pki, c: &Ctx, reference: &str) -> CoreResult<IssuerEntry> {
    match find_issuer(pki, c, reference).await? {
        Some(i) => Ok(i),
        None if reference.is_empty() || reference == "default" => {
            Err(CoreError::bad("no default issuer currently configured"))
        }
        None => Err(CoreError::bad(format!(
            "unable to find PKI issuer for reference: {reference}"
        ))),
    }
}

/// The key a reference names, or `None`.
pub async fn find_key(pki: &Pki, c: &Ctx, reference: &str) -> CoreResult<Option<KeyEntry>> {
    let reference = reference.trim();
    let id = if reference.is_empty() || reference == "default" {
        let cfg = keys_config(pki, c).await?;
        if cfg.default.is_empty() {
            return Ok(None);
        }
        cfg.default
    } else {
        reference.to_string()
    };
    if !id.contains('/') {
        if let Some(k) = c.storage.get_json(&format!("{KEY_PREFIX}{id}")).await? {
            return Ok(Some(k));
        }
    }
    Ok(all_keys(c)
        .await?
        .into_iter()
        .find(|k| !k.key_name.is_empty() && k.key_name == reference))
}

pub async fn resolve_key(pki: &Pki, c: &Ctx, reference: &str) -> CoreResult<KeyEntry> {
    match find_key(pki, c, reference).await? {
        Some(k) => Ok(k),
        None if reference.is_empty() || reference == "default" => {
            Err(CoreError::bad("no default key currently configured"))
        }
        None => Err(CoreError::bad(format!(
            "unable to find PKI key for reference: {reference}"
        ))),
    }
}

/// The parsed signer of an issuer (cached), refusing issuers whose key the mount lacks.
pub async fn signer(
    pki: &Pki,
    c: &Ctx,
    issuer: &IssuerEntry,
) -> CoreResult<std::sync::Arc<x509::Signer>> {
    if issuer.key_id.is_empty() {
        return Err(CoreError::bad(format!(
            "issuer {} has no private key in this mount; it cannot sign",
            issuer.issuer_id
        )));
    }
    let cache_key = format!(
        "{}/{}/{}",
        issuer.issuer_id, issuer.serial_number, issuer.key_id
    );
    if let Some(s) = pki.cached_signer(&cache_key) {
        return Ok(s);
    }
    let key: KeyEntry = c
        .storage
        .get_json(&format!("{KEY_PREFIX}{}", issuer.key_id))
        .await?
        .ok_or_else(|| {
            CoreError::Internal(format!(
                "key {} of issuer {} is missing",
                issuer.key_id, issuer.issuer_id
            ))
        })?;
    let s = std::sync::Arc::new(
        x509::Signer::load(&issuer.certificate, &key.private_key)
            .map_err(|e| CoreError::Internal(e.to_string()))?,
    );
    pki.cache_signer(cache_key, s.clone());
    Ok(s)
}

/// Generates a key pair (not stored).
pub fn new_key(kt: x509::KeyType, name: String) -> CoreResult<KeyEntry> {
    let key = x509::generate_key(kt).map_err(|e| CoreError::Internal(e.to_string()))?;
    Ok(KeyEntry {
        key_id: uuid::Uuid::new_v4().to_string(),
        key_name: name,
        key_type: kt.name().to_string(),
        private_key: key.serialize_pem(),
        spki: b64(&x509::spki_of(&key)),
    })
}

/// A key entry for an imported PEM key (not stored).
pub fn key_from_pem(pem: &str, name: String) -> CoreResult<KeyEntry> {
    let (key, kt) = x509::load_key(pem).map_err(|e| CoreError::bad(e.to_string()))?;
    Ok(KeyEntry {
        key_id: uuid::Uuid::new_v4().to_string(),
        key_name: name,
        key_type: kt.name().to_string(),
        private_key: key.serialize_pem(),
        spki: b64(&x509::spki_of(&key)),
    })
}

/// Result of adding certificates and keys.
#[derive(Debug, Default)]
pub struct Imported {
    pub imported_issuers: Vec<String>,
    pub existing_issuers: Vec<String>,
    pub imported_keys: Vec<String>,
    pub existing_keys: Vec<String>,
    /// issuer id -> key id ("" when the key is not in the mount), for every issuer touched.
    pub mapping: Vec<(String, String)>,
}

/// Adds keys and CA certificates to the mount in one storage batch: keys already present (same
/// public key) and certificates already present (same DER) are reused; new certificates are
/// paired with any key of the mount that matches them; chains and defaults are recomputed.
/// `names` gives the name of the first new issuer and of the first new key.
pub async fn add(
    pki: &Pki,
    c: &Ctx,
    certs: &[Vec<u8>],
    keys: Vec<KeyEntry>,
    issuer_name: &str,
    key_name: &str,
) -> CoreResult<Imported> {
    let _guard = pki.lock_issuers(c).await?;
    check_name(issuer_name, "issuer")?;
    check_name(key_name, "key")?;
    let mut issuers = all_issuers(pki, c).await?;
    let mut all = all_keys(c).await?;
    if !issuer_name.is_empty() && issuers.iter().any(|i| i.issuer_name == issuer_name) {
        return Err(CoreError::bad("issuer name already in use"));
    }
    if !key_name.is_empty() && all.iter().any(|k| k.key_name == key_name) {
        return Err(CoreError::bad("key name already in use"));
    }
    let mut out = Imported::default();
    let mut ops = Vec::new();
    let mut key_named = false;
    for mut k in keys {
        if let Some(existing) = all.iter().find(|e| e.spki == k.spki) {
            out.existing_keys.push(existing.key_id.clone());
            continue;
        }
        if !key_named && !key_name.is_empty() {
            k.key_name = key_name.to_string();
            key_named = true;
        }
        out.imported_keys.push(k.key_id.clone());
        ops.push(Op::Put(
            format!("{KEY_PREFIX}{}", k.key_id),
            json_bytes(&k)?,
        ));
        all.push(k);
    }
    let mut issuer_named = false;
    let mut changed: Vec<String> = Vec::new();
    // Issuers that are new or just got their key: the candidates for the default.
    let mut gained_key: Vec<String> = Vec::new();
    for der in certs {
        let info = x509::cert_info(der).map_err(|e| CoreError::bad(e.to_string()))?;
        if !info.is_ca {
            return Err(CoreError::bad(format!(
                "refusing to import non-CA certificate (serial {})",
                info.serial
            )));
        }
        let pem = x509::cert_pem(der);
        let spki = b64(&x509::cert_spki(der).map_err(|e| CoreError::bad(e.to_string()))?);
        let key_id = all
            .iter()
            .find(|k| k.spki == spki)
            .map(|k| k.key_id.clone())
            .unwrap_or_default();
        if let Some(existing) = issuers.iter_mut().find(|i| i.certificate == pem) {
            if existing.key_id.is_empty() && !key_id.is_empty() {
                existing.key_id = key_id.clone();
                changed.push(existing.issuer_id.clone());
                gained_key.push(existing.issuer_id.clone());
            }
            out.existing_issuers.push(existing.issuer_id.clone());
            out.mapping
                .push((existing.issuer_id.clone(), existing.key_id.clone()));
            continue;
        }
        let name = if !issuer_named && !issuer_name.is_empty() {
            issuer_named = true;
            issuer_name.to_string()
        } else {
            String::new()
        };
        let entry = IssuerEntry::new(der, key_id.clone(), name)?;
        out.imported_issuers.push(entry.issuer_id.clone());
        if !key_id.is_empty() {
            gained_key.push(entry.issuer_id.clone());
        }
        out.mapping.push((entry.issuer_id.clone(), key_id));
        changed.push(entry.issuer_id.clone());
        issuers.push(entry);
    }
    // Keys imported after their certificates pair up with them too.
    for i in issuers.iter_mut().filter(|i| i.key_id.is_empty()) {
        let spki = x509::cert_spki(&i.der())
            .map(|s| b64(&s))
            .unwrap_or_default();
        if let Some(k) = all.iter().find(|k| k.spki == spki) {
            i.key_id = k.key_id.clone();
            changed.push(i.issuer_id.clone());
            gained_key.push(i.issuer_id.clone());
        }
    }
    rebuild_chains(&mut issuers, &mut changed);
    let mut cfg = issuers_config(pki, c).await?;
    let mut cfg_changed = false;
    // The newest issuer with a key (new, or newly paired with an imported key) becomes the
    // default when there is none, or always when the default follows the latest issuer. A
    // certificate without its key never becomes the default (OpenBao's rule too).
    let newest_with_key = gained_key.last().cloned();
    if let Some(id) = newest_with_key {
        if cfg.default.is_empty() || cfg.default_follows_latest_issuer {
            cfg.default = id;
            cfg_changed = true;
        }
    }
    let mut kcfg = keys_config(pki, c).await?;
    let mut kcfg_changed = false;
    if kcfg.default.is_empty() {
        if let Some(id) = out.imported_keys.first() {
            kcfg.default = id.clone();
            kcfg_changed = true;
        }
    }
    for i in issuers.iter().filter(|i| changed.contains(&i.issuer_id)) {
        ops.push(Op::Put(
            format!("{ISSUER_PREFIX}{}", i.issuer_id),
            json_bytes(i)?,
        ));
    }
    if cfg_changed {
        ops.push(Op::Put(CONFIG_ISSUERS.into(), json_bytes(&cfg)?));
    }
    if kcfg_changed {
        ops.push(Op::Put(CONFIG_KEYS.into(), json_bytes(&kcfg)?));
    }
    pki.apply(c, ops).await?;
    Ok(out)
}

/// Recomputes the chain of every issuer; ids whose chain changed are added to `changed`.
pub fn rebuild_chains(issuers: &mut [IssuerEntry], changed: &mut Vec<String>) {
    let ders: Vec<Vec<u8>> = issuers.iter().map(|i| i.der()).collect();
    let parent_of = |idx: usize| -> Option<usize> {
        if x509::issued_by(&ders[idx], &ders[idx]) {
            return None;
        }
        // Prefer a parent with the latest expiry when several match (reissued CAs).
        (0..ders.len())
            .filter(|&p| p != idx && x509::issued_by(&ders[idx], &ders[p]))
            .max_by_key(|&p| issuers[p].not_after)
    };
    let parents: Vec<Option<usize>> = (0..issuers.len()).map(parent_of).collect();
    let by_id: std::collections::HashMap<String, usize> = issuers
        .iter()
        .enumerate()
        .map(|(n, i)| (i.issuer_id.clone(), n))
        .collect();
    let mut chains = Vec::with_capacity(issuers.len());
    for (idx, issuer) in issuers.iter().enumerate() {
        let mut chain = Vec::new();
        if !issuer.manual_chain.is_empty() {
            for id in issuer.manual_chain.iter().skip(1) {
                if let Some(&p) = by_id.get(id) {
                    chain.push(issuers[p].certificate.clone());
                }
            }
        } else {
            let mut seen = vec![idx];
            let mut cur = idx;
            while let Some(p) = parents[cur] {
                if seen.contains(&p) {
                    break;
                }
                seen.push(p);
                chain.push(issuers[p].certificate.clone());
                cur = p;
            }
        }
        chains.push(chain);
    }
    for (issuer, chain) in issuers.iter_mut().zip(chains) {
        if issuer.chain != chain {
            issuer.chain = chain;
            if !changed.contains(&issuer.issuer_id) {
                changed.push(issuer.issuer_id.clone());
            }
        }
    }
}

/// Writes one issuer after a change that may affect chains (manual_chain), recomputing all.
pub async fn save_issuer(pki: &Pki, c: &Ctx, updated: IssuerEntry) -> CoreResult<IssuerEntry> {
    let _guard = pki.lock_issuers(c).await?;
    let mut issuers = all_issuers(pki, c).await?;
    let id = updated.issuer_id.clone();
    let mut changed = vec![id.clone()];
    match issuers.iter_mut().find(|i| i.issuer_id == id) {
        Some(slot) => *slot = updated,
        None => return Err(CoreError::NotFound),
    }
    rebuild_chains(&mut issuers, &mut changed);
    let mut ops = Vec::new();
    for i in issuers.iter().filter(|i| changed.contains(&i.issuer_id)) {
        ops.push(Op::Put(
            format!("{ISSUER_PREFIX}{}", i.issuer_id),
            json_bytes(i)?,
        ));
    }
    pki.apply(c, ops).await?;
    issuers
        .into_iter()
        .find(|i| i.issuer_id == id)
        .ok_or(CoreError::NotFound)
}

/// Deletes one issuer (its key stays); returns whether it was the default.
pub async fn delete_issuer(pki: &Pki, c: &Ctx, id: &str) -> CoreResult<bool> {
    let _guard = pki.lock_issuers(c).await?;
    let mut issuers = all_issuers(pki, c).await?;
    issuers.retain(|i| i.issuer_id != id);
    for i in issuers.iter_mut() {
        i.manual_chain.retain(|m| m != id);
        if i.manual_chain.len() <= 1 {
            i.manual_chain.clear();
        }
    }
    let mut changed = Vec::new();
    rebuild_chains(&mut issuers, &mut changed);
    let mut ops = vec![Op::Delete(format!("{ISSUER_PREFIX}{id}"))];
    for i in issuers.iter().filter(|i| changed.contains(&i.issuer_id)) {
        ops.push(Op::Put(
            format!("{ISSUER_PREFIX}{}", i.issuer_id),
            json_bytes(i)?,
        ));
    }
    let mut cfg = issuers_config(pki, c).await?;
    let was_default = cfg.default == id;
    if was_default {
        cfg.default.clear();
        ops.push(Op::Put(CONFIG_ISSUERS.into(), json_bytes(&cfg)?));
    }
    pki.apply(c, ops).await?;
    Ok(was_default)
}

/// Deletes every issuer and key (`DELETE root`).
pub async fn delete_all(pki: &Pki, c: &Ctx) -> CoreResult<()> {
    let _guard = pki.lock_issuers(c).await?;
    let mut ops = Vec::new();
    for id in issuer_ids(c).await? {
        ops.push(Op::Delete(format!("{ISSUER_PREFIX}{id}")));
    }
    for id in c.storage.list(KEY_PREFIX).await? {
        ops.push(Op::Delete(format!("{KEY_PREFIX}{id}")));
    }
    let mut cfg = issuers_config(pki, c).await?;
    cfg.default.clear();
    ops.push(Op::Put(CONFIG_ISSUERS.into(), json_bytes(&cfg)?));
    ops.push(Op::Delete(CONFIG_KEYS.into()));
    pki.apply(c, ops).await
}
