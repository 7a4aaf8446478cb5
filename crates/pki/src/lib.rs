//! The PKI secrets engine (`pki` mount type).
//!
//! Every path, by family: `path_root.rs` (root generation, `DELETE root`, `config/urls`),
//! `path_roles.rs` (roles), `path_issue_sign.rs` (`issue/:role`, `sign/:role`),
//! `path_fetch.rs` (unauthenticated CA and certificate downloads, `LIST certs`),
//! `path_intermediate.rs` (intermediate CSRs, sign-intermediate, set-signed, bundle imports),
//! `path_revoke.rs` (revocation index and per-issuer CRLs), `path_ocsp.rs`, `path_config_crl.rs`
//! (CRL settings, tidy), `path_search.rs` (inventory search), `path_issuers.rs` (issuer and key
//! management over the model in `issuers.rs`). Storage keys live in `storage.rs`; X.509 work in
//! `signet_crypto::x509`. Background work (CRL prebuilds, auto-tidy) is
//! `path_config_crl::periodic`, run by the core's maintenance task.

mod issuers;
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

use std::sync::atomic::Ordering;
use std::sync::Arc;

use signet_core::framework::{Backend, PathBackend};
use signet_core::EngineFactory;

/// The engine state: everything lives in the mount's storage, except a cache of parsed
/// signing keys (parsing a PEM key on every issuance costs more than the signature).
#[derive(Default)]
pub struct Pki {
    signers: std::sync::Mutex<std::collections::HashMap<String, Arc<signet_crypto::x509::Signer>>>,
    /// Read-through cache of the small configuration records every issuance reads (issuer,
    /// role, URLs, CRL config). Every write to one of them goes through [`Pki::put`] or
    /// [`Pki::delete`], which drop the cached copy; other nodes' writes arrive through
    /// [`Pki::invalidate`] (the core's change feed).
    records: std::sync::RwLock<std::collections::HashMap<String, serde_json::Value>>,
    /// Bumped (under `records`' lock) by every invalidation: a read that started before one
    /// does not fill the cache with what it read.
    records_generation: std::sync::atomic::AtomicU64,
    /// Serialises changes to the set of issuers and keys in this process (see
    /// [`Pki::lock_issuers`]).
    pub(crate) issuers_lock: tokio::sync::Mutex<()>,
    /// Serialises CRL builds, so that concurrent fetches of a stale CRL build it once: one
    /// CRL per CRL number (RFC 5280 5.2.3), one signature.
    pub(crate) crl_lock: tokio::sync::Mutex<()>,
    /// The CRLs last built or read, per (issuer id, delta), served without reading the CRL
    /// state from storage while the revocation epoch is unchanged and they are fresh.
    pub(crate) crl_cache: std::sync::Mutex<std::collections::HashMap<(String, bool), CachedCrl>>,
}

/// Held while the set of issuers and keys changes (see [`Pki::lock_issuers`]).
pub(crate) struct IssuersGuard<'a> {
    _local: tokio::sync::MutexGuard<'a, ()>,
    _cluster: signet_storage::LockGuard,
}

/// A CRL kept in memory (see [`Pki::crl_cache`]).
#[derive(Clone)]
pub(crate) struct CachedCrl {
    pub epoch: String,
    pub built_at: i64,
    pub der: Arc<Vec<u8>>,
}

impl Pki {
    /// A configuration record, from the cache or storage.
    pub(crate) async fn get<T: serde::de::DeserializeOwned>(
        &self,
        c: &signet_core::Ctx,
        key: &str,
    ) -> signet_core::CoreResult<Option<T>> {
        let cached = self.records.read().ok().and_then(|m| m.get(key).cloned());
        let value = match cached {
            Some(v) => v,
            None => {
                let generation = self.records_generation.load(Ordering::SeqCst);
                let v: Option<serde_json::Value> = c.storage.get_json(key).await?;
                let v = v.unwrap_or(serde_json::Value::Null);
                if let Ok(mut m) = self.records.write() {
                    if self.records_generation.load(Ordering::SeqCst) == generation {
                        if m.len() > 4096 {
                            m.clear();
                        }
                        m.insert(key.to_string(), v.clone());
                    }
                }
                v
            }
        };
        if value.is_null() {
            return Ok(None);
        }
        serde_json::from_value(value)
            .map(Some)
            .map_err(|e| signet_core::CoreError::Internal(format!("{key}: {e}")))
    }

    /// Writes a configuration record and drops its cached copy.
    pub(crate) async fn put<T: serde::Serialize>(
        &self,
        c: &signet_core::Ctx,
        key: &str,
        value: &T,
    ) -> signet_core::CoreResult<()> {
        self.forget(key);
        c.storage.put_json(key, value).await?;
        self.forget(key);
        Ok(())
    }

    /// Deletes a configuration record and drops its cached copy.
    pub(crate) async fn delete(
        &self,
        c: &signet_core::Ctx,
        key: &str,
    ) -> signet_core::CoreResult<()> {
        self.forget(key);
        signet_storage::Storage::delete(&c.storage, key).await?;
        self.forget(key);
        Ok(())
    }

    fn forget(&self, key: &str) {
        if let Ok(mut m) = self.records.write() {
            self.records_generation.fetch_add(1, Ordering::SeqCst);
            m.remove(key);
        }
    }

    /// Applies a storage batch, dropping the cached copies of every key it touches.
    pub(crate) async fn apply(
        &self,
        c: &signet_core::Ctx,
        ops: Vec<signet_storage::Op>,
    ) -> signet_core::CoreResult<()> {
        let keys: Vec<String> = ops
            .iter()
            .map(|op| match op {
                signet_storage::Op::Put(k, _) | signet_storage::Op::Delete(k) => k.clone(),
            })
            .collect();
        for k in &keys {
            self.forget(k);
        }
        let out = signet_storage::Storage::apply(&c.storage, ops).await;
        for k in &keys {
            self.forget(k);
        }
        Ok(out?)
    }

    /// Takes the issuer lock: this process's mutex, then the storage's cluster-wide lock; and
    /// drops the cached records, because the last holder may have been another node whose
    /// writes' notifications have not arrived yet. Issuer changes are rare; reads after this
    /// go to storage once.
    pub(crate) async fn lock_issuers<'a>(
        &'a self,
        c: &signet_core::Ctx,
    ) -> signet_core::CoreResult<IssuersGuard<'a>> {
        let local = self.issuers_lock.lock().await;
        let cluster = signet_storage::Storage::lock(&c.storage, "issuers").await?;
        if let Ok(mut m) = self.records.write() {
            self.records_generation.fetch_add(1, Ordering::SeqCst);
            m.clear();
        }
        Ok(IssuersGuard {
            _local: local,
            _cluster: cluster,
        })
    }

    /// Another node wrote `key` (`None`: anything): drop the copies that depend on it.
    fn invalidate(&self, key: Option<&str>) {
        match key {
            Some(k) => {
                self.forget(k);
                if k.starts_with("crl/") {
                    if let Ok(mut m) = self.crl_cache.lock() {
                        m.clear();
                    }
                }
                if k.starts_with(issuers::KEY_PREFIX) || k.starts_with(issuers::ISSUER_PREFIX) {
                    if let Ok(mut m) = self.signers.lock() {
                        m.clear();
                    }
                }
            }
            None => {
                if let Ok(mut m) = self.records.write() {
                    self.records_generation.fetch_add(1, Ordering::SeqCst);
                    m.clear();
                }
                if let Ok(mut m) = self.crl_cache.lock() {
                    m.clear();
                }
                if let Ok(mut m) = self.signers.lock() {
                    m.clear();
                }
            }
        }
    }

    pub(crate) fn cached_signer(&self, key: &str) -> Option<Arc<signet_crypto::x509::Signer>> {
        self.signers.lock().ok().and_then(|m| m.get(key).cloned())
    }

    pub(crate) fn cache_signer(&self, key: String, s: Arc<signet_crypto::x509::Signer>) {
        if let Ok(mut m) = self.signers.lock() {
            if m.len() > 64 {
                m.clear();
            }
            m.insert(key, s);
        }
    }
}

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
    PathBackend::new(Arc::new(Pki::default()), specs)
        .with_periodic(signet_core::framework::handler(path_config_crl::periodic))
        .with_invalidate(Arc::new(Pki::invalidate))
        // The inventory, its indexes, the revocation index and the CRL epoch: read from
        // storage every time.
        .with_uncached(&["certs/", "idx/", "ridx/", "revoked/", "crl/epoch"])
}

/// DER of a stored PEM certificate.
pub(crate) fn pem_der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .unwrap_or_default()
}
