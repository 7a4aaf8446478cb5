//! The token store: who a request is.
//!
//! Tokens are `s.` followed by 24 random base62 characters (OpenBao's shape). They are never
//! stored: an entry lives at `id/<HMAC-SHA256(salt, token)>` and its accessor at
//! `accessor/<HMAC(salt, accessor)>`, with a per-installation salt created at first unseal and
//! kept in the barrier. Looking a token up is one keyed hash and one storage read, so no
//! comparison ever runs over a secret. This scope is root tokens and `lookup-self`;
//! the full token store (roles, children, renewal, expiry) builds on the same entry.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use signet_storage::{Storage, StorageView};
use signet_types::Secret;
use zeroize::Zeroizing;

use crate::error::{CoreError, CoreResult};

const SALT_KEY: &str = "salt";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A stored token (never contains the token itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TokenEntry {
    pub accessor: String,
    pub policies: Vec<String>,
    #[serde(default)]
    pub parent: String,
    pub path: String,
    pub display_name: String,
    #[serde(default)]
    pub meta: Option<std::collections::BTreeMap<String, String>>,
    pub creation_time: u64,
    /// Seconds; 0 means no expiry.
    #[serde(default)]
    pub ttl: u64,
    #[serde(default)]
    pub explicit_max_ttl: u64,
    #[serde(default)]
    pub period: u64,
    #[serde(default)]
    pub num_uses: i64,
    #[serde(default)]
    pub orphan: bool,
    #[serde(default)]
    pub renewable: bool,
    #[serde(default)]
    pub entity_id: String,
}

impl TokenEntry {
    /// Whether this is a root token.
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// Whether the token has expired at `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.ttl > 0 && now >= self.creation_time.saturating_add(self.ttl)
    }

    /// The `lookup` response shape.
    pub fn lookup_json(&self, id: Option<&str>, now: u64) -> Map<String, Value> {
        let expire_time = if self.ttl > 0 {
            Value::String(rfc3339(self.creation_time + self.ttl))
        } else {
            Value::Null
        };
        let remaining = if self.ttl > 0 {
            (self.creation_time + self.ttl).saturating_sub(now)
        } else {
            0
        };
        let mut m = Map::new();
        m.insert("accessor".into(), json!(self.accessor));
        m.insert("creation_time".into(), json!(self.creation_time));
        m.insert("creation_ttl".into(), json!(self.ttl));
        m.insert("display_name".into(), json!(self.display_name));
        m.insert("entity_id".into(), json!(self.entity_id));
        m.insert("expire_time".into(), expire_time);
        m.insert("explicit_max_ttl".into(), json!(self.explicit_max_ttl));
        m.insert("id".into(), json!(id.unwrap_or("")));
        m.insert("meta".into(), json!(self.meta));
        m.insert("num_uses".into(), json!(self.num_uses));
        m.insert("orphan".into(), json!(self.orphan));
        m.insert("path".into(), json!(self.path));
        m.insert("policies".into(), json!(self.policies));
        m.insert("renewable".into(), json!(self.renewable));
        m.insert("ttl".into(), json!(remaining));
        m.insert("type".into(), json!("service"));
        m
    }
}

/// Seconds since the epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RFC 3339 UTC timestamp of epoch seconds (no external date crate needed for this one format).
pub fn rfc3339(secs: u64) -> String {
    let days = secs / 86400;
    let rem = secs % 86400;
    let (h, mi, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// Entries kept in memory before the cache is emptied and refilled from storage.
const CACHE_LIMIT: usize = 100_000;

/// The token store over its storage view, with an in-memory cache of entries by keyed hash
/// (every request looks its token up; the cache saves a storage read and a decryption).
pub struct TokenStore {
    view: RwLock<Option<StorageView>>,
    salt: RwLock<Option<hmac::Key>>,
    cache: RwLock<HashMap<String, TokenEntry>>,
    rng: SystemRandom,
}

impl Default for TokenStore {
    fn default() -> Self {
        Self::new()
    }
}

impl TokenStore {
    pub fn new() -> Self {
        TokenStore {
            view: RwLock::new(None),
            salt: RwLock::new(None),
            cache: RwLock::new(HashMap::new()),
            rng: SystemRandom::new(),
        }
    }

    /// Attaches the store to its (unsealed) storage, creating the salt on first use.
    pub async fn setup(&self, view: StorageView) -> CoreResult<()> {
        let salt = match view.get(SALT_KEY).await? {
            Some(s) => Zeroizing::new(s),
            None => {
                let s = self.random_bytes(32)?;
                view.put(SALT_KEY, s.to_vec()).await?;
                s
            }
        };
        if let Ok(mut slot) = self.salt.write() {
            *slot = Some(hmac::Key::new(hmac::HMAC_SHA256, &salt));
        }
        if let Ok(mut slot) = self.view.write() {
            *slot = Some(view);
        }
        Ok(())
    }

    fn cache_get(&self, id_hash: &str) -> Option<TokenEntry> {
        self.cache.read().ok().and_then(|c| c.get(id_hash).cloned())
    }

    fn cache_put(&self, id_hash: &str, entry: &TokenEntry) {
        if let Ok(mut c) = self.cache.write() {
            if c.len() >= CACHE_LIMIT {
                c.clear();
            }
            c.insert(id_hash.to_string(), entry.clone());
        }
    }

    fn cache_remove(&self, id_hash: &str) {
        if let Ok(mut c) = self.cache.write() {
            c.remove(id_hash);
        }
    }

    /// Drops every cached entry (another node changed tokens, or the store was sealed).
    pub fn invalidate_cache(&self) {
        if let Ok(mut c) = self.cache.write() {
            c.clear();
        }
    }

    /// Forgets the salt and storage (on seal).
    pub fn teardown(&self) {
        self.invalidate_cache();
        if let Ok(mut s) = self.salt.write() {
            *s = None;
        }
        if let Ok(mut v) = self.view.write() {
            *v = None;
        }
    }

    fn random_bytes(&self, n: usize) -> CoreResult<Zeroizing<Vec<u8>>> {
        let mut b = Zeroizing::new(vec![0u8; n]);
        self.rng
            .fill(&mut b)
            .map_err(|_| CoreError::Internal("random number generator failed".into()))?;
        Ok(b)
    }

    /// A random base62 string of `n` characters (rejection sampling, no modulo bias).
    pub fn random_id(&self, n: usize) -> CoreResult<String> {
        let mut out = String::with_capacity(n);
        while out.len() < n {
            let buf = self.random_bytes(n * 2)?;
            for b in buf.iter() {
                if *b < 248 {
                    out.push(BASE62[(*b % 62) as usize] as char);
                    if out.len() == n {
                        break;
                    }
                }
            }
        }
        Ok(out)
    }

    fn view(&self) -> CoreResult<StorageView> {
        self.view
            .read()
            .ok()
            .and_then(|v| v.clone())
            .ok_or(CoreError::Sealed)
    }

    /// The keyed hash of a token or accessor, hex-encoded.
    pub fn hash(&self, value: &str) -> CoreResult<String> {
        let guard = self.salt.read().map_err(|_| CoreError::Sealed)?;
        let key = guard.as_ref().ok_or(CoreError::Sealed)?;
        Ok(hex::encode(hmac::sign(key, value.as_bytes()).as_ref()))
    }

    /// Stores a new token and returns it.
    pub async fn create(
        &self,
        id: Option<String>,
        mut entry: TokenEntry,
    ) -> CoreResult<(Secret<String>, TokenEntry)> {
        let token = match id {
            Some(id) if !id.is_empty() => id,
            _ => format!("s.{}", self.random_id(24)?),
        };
        if entry.accessor.is_empty() {
            entry.accessor = self.random_id(24)?;
        }
        let view = self.view()?;
        let id_hash = self.hash(&token)?;
        let acc_hash = self.hash(&entry.accessor)?;
        let bytes = serde_json::to_vec(&entry).map_err(|e| CoreError::Internal(e.to_string()))?;
        view.apply(vec![
            signet_storage::Op::Put(format!("id/{id_hash}"), bytes),
            signet_storage::Op::Put(format!("accessor/{acc_hash}"), id_hash.into_bytes()),
        ])
        .await?;
        Ok((Secret::new(token), entry))
    }

    /// A root token (policies `["root"]`, no expiry), with a chosen id in dev mode.
    pub async fn create_root(&self, id: Option<String>) -> CoreResult<Secret<String>> {
        let entry = TokenEntry {
            accessor: String::new(),
            policies: vec!["root".into()],
            parent: String::new(),
            path: "auth/token/root".into(),
            display_name: "root".into(),
            meta: None,
            creation_time: now_secs(),
            ttl: 0,
            explicit_max_ttl: 0,
            period: 0,
            num_uses: 0,
            orphan: true,
            renewable: false,
            entity_id: String::new(),
        };
        self.create(id, entry).await.map(|(t, _)| t)
    }

    /// Finds a live token's entry. Expired tokens are deleted and reported as absent.
    pub async fn lookup(&self, token: &str) -> CoreResult<Option<TokenEntry>> {
        if token.is_empty() || token.len() > 512 {
            return Ok(None);
        }
        let id_hash = self.hash(token)?;
        let entry = match self.cache_get(&id_hash) {
            Some(e) => e,
            None => {
                let view = self.view()?;
                let Some(bytes) = view.get(&format!("id/{id_hash}")).await? else {
                    return Ok(None);
                };
                let entry: TokenEntry = serde_json::from_slice(&bytes)
                    .map_err(|e| CoreError::Internal(format!("token entry: {e}")))?;
                self.cache_put(&id_hash, &entry);
                entry
            }
        };
        if entry.expired(now_secs()) {
            self.revoke_by_hash(&id_hash, &entry).await?;
            return Ok(None);
        }
        Ok(Some(entry))
    }

    /// Finds a token entry by accessor; returns the token's keyed hash and entry.
    pub async fn lookup_accessor(
        &self,
        accessor: &str,
    ) -> CoreResult<Option<(String, TokenEntry)>> {
        if accessor.is_empty() || accessor.len() > 512 {
            return Ok(None);
        }
        let view = self.view()?;
        let acc_hash = self.hash(accessor)?;
        let Some(id_hash) = view.get(&format!("accessor/{acc_hash}")).await? else {
            return Ok(None);
        };
        let id_hash = String::from_utf8(id_hash)
            .map_err(|_| CoreError::Internal("accessor index corrupt".into()))?;
        let Some(bytes) = view.get(&format!("id/{id_hash}")).await? else {
            return Ok(None);
        };
        let entry: TokenEntry = serde_json::from_slice(&bytes)
            .map_err(|e| CoreError::Internal(format!("token entry: {e}")))?;
        if entry.expired(now_secs()) {
            self.revoke_by_hash(&id_hash, &entry).await?;
            return Ok(None);
        }
        Ok(Some((id_hash, entry)))
    }

    /// Revokes a token.
    pub async fn revoke(&self, token: &str) -> CoreResult<()> {
        let id_hash = self.hash(token)?;
        let view = self.view()?;
        if let Some(bytes) = view.get(&format!("id/{id_hash}")).await? {
            if let Ok(entry) = serde_json::from_slice::<TokenEntry>(&bytes) {
                self.revoke_by_hash(&id_hash, &entry).await?;
            }
        }
        Ok(())
    }

    /// Revokes the token whose keyed hash is `id_hash`.
    pub async fn revoke_by_hash(&self, id_hash: &str, entry: &TokenEntry) -> CoreResult<()> {
        let view = self.view()?;
        let acc_hash = self.hash(&entry.accessor)?;
        self.cache_remove(id_hash);
        view.apply(vec![
            signet_storage::Op::Delete(format!("id/{id_hash}")),
            signet_storage::Op::Delete(format!("accessor/{acc_hash}")),
        ])
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_795_403_369), "2026-11-23T03:09:29Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
