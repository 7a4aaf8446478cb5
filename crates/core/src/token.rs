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
use signet_storage::{Op, Storage, StorageView};
use signet_types::Secret;
use zeroize::Zeroizing;

use crate::error::{CoreError, CoreResult};

const SALT_KEY: &str = "salt";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A stored token (never contains the token itself).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct TokenEntry {
    pub accessor: String,
    pub policies: Vec<String>,
    /// Keyed hash of the parent token; empty for orphans.
    #[serde(default)]
    pub parent: String,
    pub path: String,
    pub display_name: String,
    #[serde(default)]
    pub meta: Option<std::collections::BTreeMap<String, String>>,
    pub creation_time: u64,
    /// The TTL the token was created with (seconds; 0 = none).
    #[serde(default)]
    pub ttl: u64,
    /// When the token stops working (epoch seconds; 0 = never).
    #[serde(default)]
    pub expire_time: u64,
    #[serde(default)]
    pub last_renewal: u64,
    /// Renewals may not take the token past `creation_time + max_ttl` (0 = the mount's).
    #[serde(default)]
    pub max_ttl: u64,
    #[serde(default)]
    pub explicit_max_ttl: u64,
    #[serde(default)]
    pub period: u64,
    /// The period came from the token's role (OpenBao then omits it from lookups).
    #[serde(default)]
    pub period_from_role: bool,
    /// Uses left; 0 = unlimited.
    #[serde(default)]
    pub num_uses: i64,
    #[serde(default)]
    pub orphan: bool,
    #[serde(default)]
    pub renewable: bool,
    #[serde(default)]
    pub entity_id: String,
    #[serde(default)]
    pub role: String,
    #[serde(default)]
    pub bound_cidrs: Vec<String>,
}

impl TokenEntry {
    /// Whether this is a root token.
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// Whether the token has expired at `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.expire_time > 0 && now >= self.expire_time
    }

    /// Seconds left (0 for tokens that never expire).
    pub fn remaining(&self, now: u64) -> u64 {
        if self.expire_time == 0 {
            0
        } else {
            self.expire_time.saturating_sub(now)
        }
    }

    /// Whether `addr` may use this token (its bound CIDRs, if any).
    pub fn allows_addr(&self, addr: Option<std::net::IpAddr>) -> bool {
        if self.bound_cidrs.is_empty() {
            return true;
        }
        let Some(ip) = addr else { return false };
        self.bound_cidrs.iter().any(|c| cidr_contains(c, ip))
    }

    /// The `lookup` response shape.
    pub fn lookup_json(&self, id: Option<&str>, now: u64) -> Map<String, Value> {
        let expire_time = if self.expire_time > 0 {
            Value::String(rfc3339(self.expire_time))
        } else {
            Value::Null
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
        m.insert("issue_time".into(), json!(rfc3339(self.creation_time)));
        if self.last_renewal > 0 {
            m.insert("last_renewal".into(), json!(rfc3339(self.last_renewal)));
            m.insert("last_renewal_time".into(), json!(self.last_renewal));
        }
        m.insert("meta".into(), json!(self.meta));
        m.insert("num_uses".into(), json!(self.num_uses));
        m.insert("orphan".into(), json!(self.orphan));
        m.insert("path".into(), json!(self.path));
        if self.period > 0 && !self.period_from_role {
            m.insert("period".into(), json!(self.period));
        }
        m.insert("policies".into(), json!(self.policies));
        m.insert("renewable".into(), json!(self.renewable));
        if !self.role.is_empty() {
            m.insert("role".into(), json!(self.role));
        }
        if !self.bound_cidrs.is_empty() {
            m.insert("bound_cidrs".into(), json!(self.bound_cidrs));
        }
        m.insert("ttl".into(), json!(self.remaining(now)));
        m.insert("type".into(), json!("service"));
        m
    }

    /// The `auth` block of a login or token creation.
    pub fn auth_json(&self, token: &str, now: u64) -> Value {
        let token_policies: Vec<&String> = self.policies.iter().collect();
        json!({
            "client_token": token,
            "accessor": self.accessor,
            "policies": self.policies,
            "token_policies": token_policies,
            "metadata": self.meta,
            "lease_duration": self.remaining(now),
            "renewable": self.renewable,
            "entity_id": self.entity_id,
            "token_type": "service",
            "orphan": self.orphan,
            "mfa_requirement": null,
            "num_uses": self.num_uses,
        })
    }
}

/// Whether `ip` is inside `cidr` (`10.0.0.0/8`, `::1/128`, or a bare address).
pub fn cidr_contains(cidr: &str, ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    let (addr, bits) = match cidr.split_once('/') {
        Some((a, b)) => (a, b.parse::<u32>().ok()),
        None => (cidr, None),
    };
    let Ok(net) = addr.trim().parse::<IpAddr>() else {
        return false;
    };
    match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(n) & mask == u32::from(i) & mask
        }
        (IpAddr::V6(n), IpAddr::V6(i)) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(n) & mask == u128::from(i) & mask
        }
        (IpAddr::V4(n), IpAddr::V6(i)) => i
            .to_ipv4_mapped()
            .is_some_and(|m| cidr_contains(&format!("{n}/{}", bits.unwrap_or(32)), IpAddr::V4(m))),
        _ => false,
    }
}

/// Whether `cidr` parses as a CIDR block or address.
pub fn valid_cidr(cidr: &str) -> bool {
    let (addr, bits) = match cidr.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (cidr, None),
    };
    let Ok(ip) = addr.trim().parse::<std::net::IpAddr>() else {
        return false;
    };
    match bits {
        None => true,
        Some(b) => b
            .parse::<u32>()
            .is_ok_and(|n| n <= if ip.is_ipv4() { 32 } else { 128 }),
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
    /// Serialises use counting of use-limited tokens in this process (with a cluster-wide
    /// storage lock for the other nodes).
    uses: tokio::sync::Mutex<()>,
    /// Bumped by every invalidation: a read that started before one must not fill the cache
    /// with what it read (it may be the entry another node just revoked).
    generation: std::sync::atomic::AtomicU64,
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
            uses: tokio::sync::Mutex::new(()),
            generation: std::sync::atomic::AtomicU64::new(0),
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
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            c.remove(id_hash);
        }
    }

    /// Drops the cached entry of one token (another node changed or revoked it).
    pub fn forget(&self, id_hash: &str) {
        self.cache_remove(id_hash);
    }

    /// Drops every cached entry (another node changed tokens, or the store was sealed).
    pub fn invalidate_cache(&self) {
        if let Ok(mut c) = self.cache.write() {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
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

    /// Stores a new token (and its place under its parent) and returns it.
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
        if view.get(&format!("id/{id_hash}")).await?.is_some() {
            return Err(CoreError::bad("cannot create a token with a duplicate ID"));
        }
        let acc_hash = self.hash(&entry.accessor)?;
        let bytes = serde_json::to_vec(&entry).map_err(|e| CoreError::Internal(e.to_string()))?;
        let acc = serde_json::to_vec(&AccessorEntry {
            id_hash: id_hash.clone(),
            accessor: entry.accessor.clone(),
        })
        .map_err(|e| CoreError::Internal(e.to_string()))?;
        let mut ops = vec![
            Op::Put(format!("id/{id_hash}"), bytes),
            Op::Put(format!("accessor/{acc_hash}"), acc),
        ];
        if !entry.parent.is_empty() {
            ops.push(Op::Put(
                format!("parent/{}/{id_hash}", entry.parent),
                Vec::new(),
            ));
        }
        // A new token: no node can have it cached (lookups of missing tokens are not cached),
        // so other nodes are not told — one notification less per login.
        view.apply_unannounced(ops).await?;
        Ok((Secret::new(token), entry))
    }

    /// A root token (policies `["root"]`, no expiry), with a chosen id in dev mode.
    pub async fn create_root(&self, id: Option<String>) -> CoreResult<Secret<String>> {
        let entry = TokenEntry {
            policies: vec!["root".into()],
            path: "auth/token/root".into(),
            display_name: "root".into(),
            creation_time: now_secs(),
            orphan: true,
            ..Default::default()
        };
        self.create(id, entry).await.map(|(t, _)| t)
    }

    async fn load(&self, id_hash: &str) -> CoreResult<Option<TokenEntry>> {
        if let Some(e) = self.cache_get(id_hash) {
            return Ok(Some(e));
        }
        let generation = self.generation.load(std::sync::atomic::Ordering::SeqCst);
        let view = self.view()?;
        let Some(bytes) = view.get(&format!("id/{id_hash}")).await? else {
            return Ok(None);
        };
        let entry: TokenEntry = serde_json::from_slice(&bytes)
            .map_err(|e| CoreError::Internal(format!("token entry: {e}")))?;
        // Cached only if nothing was invalidated meanwhile (checked under the cache's lock,
        // where invalidations bump the generation).
        if let Ok(mut c) = self.cache.write() {
            if self.generation.load(std::sync::atomic::Ordering::SeqCst) == generation {
                if c.len() >= CACHE_LIMIT {
                    c.clear();
                }
                c.insert(id_hash.to_string(), entry.clone());
            }
        }
        Ok(Some(entry))
    }

    /// Finds a live token's entry. Expired tokens are revoked and reported as absent.
    pub async fn lookup(&self, token: &str) -> CoreResult<Option<TokenEntry>> {
        if token.is_empty() || token.len() > 512 {
            return Ok(None);
        }
        let id_hash = self.hash(token)?;
        self.lookup_hash(&id_hash).await
    }

    /// Like [`TokenStore::lookup`], by keyed hash.
    pub async fn lookup_hash(&self, id_hash: &str) -> CoreResult<Option<TokenEntry>> {
        let Some(entry) = self.load(id_hash).await? else {
            return Ok(None);
        };
        if entry.num_uses < 0 {
            return Ok(None);
        }
        if entry.expired(now_secs()) {
            self.revoke_tree(id_hash).await?;
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
        let acc: Option<AccessorEntry> = view.get_json(&format!("accessor/{acc_hash}")).await?;
        let Some(acc) = acc else {
            return Ok(None);
        };
        Ok(self
            .lookup_hash(&acc.id_hash)
            .await?
            .map(|e| (acc.id_hash, e)))
    }

    /// Writes an updated entry (renewal, use count).
    pub async fn update(&self, id_hash: &str, entry: &TokenEntry) -> CoreResult<()> {
        let bytes = serde_json::to_vec(entry).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.view()?.put(&format!("id/{id_hash}"), bytes).await?;
        self.cache_put(id_hash, entry);
        Ok(())
    }

    /// Counts one use of a limited-use token; returns `true` when that was its last use (the
    /// caller revokes it after the request).
    pub async fn use_once(&self, id_hash: &str, entry: &TokenEntry) -> CoreResult<bool> {
        if entry.num_uses <= 0 {
            return Ok(false);
        }
        // Count from the stored entry, under this process's lock and the storage's
        // cluster-wide one: two requests (on this node or another) cannot spend the same use.
        let _local = self.uses.lock().await;
        let view = self.view()?;
        let _cluster = view.lock(&format!("token-uses/{id_hash}")).await?;
        let stored: Option<TokenEntry> = view.get_json(&format!("id/{id_hash}")).await?;
        let Some(mut e) = stored.filter(|e| e.num_uses > 0) else {
            self.cache_remove(id_hash);
            return Err(CoreError::PermissionDenied);
        };
        e.num_uses -= 1;
        if e.num_uses == 0 {
            // Mark as spent at once so a concurrent request cannot use it again.
            e.num_uses = -1;
            self.update(id_hash, &e).await?;
            return Ok(true);
        }
        self.update(id_hash, &e).await?;
        Ok(false)
    }

    /// Revokes a token and, recursively, every token it created that is not an orphan.
    pub async fn revoke(&self, token: &str) -> CoreResult<()> {
        let id_hash = self.hash(token)?;
        self.revoke_tree(&id_hash).await
    }

    /// Revokes the token with keyed hash `id_hash` and its descendants.
    pub async fn revoke_tree(&self, id_hash: &str) -> CoreResult<()> {
        let view = self.view()?;
        let mut stack = vec![id_hash.to_string()];
        let mut order = Vec::new();
        while let Some(h) = stack.pop() {
            for child in view.list(&format!("parent/{h}/")).await? {
                stack.push(child.trim_end_matches('/').to_string());
            }
            order.push(h);
        }
        // Children first, so a crash part-way leaves no orphaned subtree behind a live parent.
        for h in order.into_iter().rev() {
            self.revoke_one(&h).await?;
        }
        Ok(())
    }

    /// Revokes one token; its children become orphans.
    pub async fn revoke_orphan(&self, id_hash: &str) -> CoreResult<()> {
        let view = self.view()?;
        for child in view.list(&format!("parent/{id_hash}/")).await? {
            let ch = child.trim_end_matches('/').to_string();
            if let Some(mut e) = self.load(&ch).await? {
                e.parent.clear();
                e.orphan = true;
                self.update(&ch, &e).await?;
            }
        }
        self.revoke_one(id_hash).await
    }

    async fn revoke_one(&self, id_hash: &str) -> CoreResult<()> {
        let view = self.view()?;
        self.cache_remove(id_hash);
        let Some(bytes) = view.get(&format!("id/{id_hash}")).await? else {
            return Ok(());
        };
        let mut ops = vec![Op::Delete(format!("id/{id_hash}"))];
        if let Ok(entry) = serde_json::from_slice::<TokenEntry>(&bytes) {
            ops.push(Op::Delete(format!(
                "accessor/{}",
                self.hash(&entry.accessor)?
            )));
            if !entry.parent.is_empty() {
                ops.push(Op::Delete(format!("parent/{}/{id_hash}", entry.parent)));
            }
        }
        for child in view.list(&format!("parent/{id_hash}/")).await? {
            ops.push(Op::Delete(format!("parent/{id_hash}/{child}")));
        }
        view.apply(ops).await?;
        self.cache_remove(id_hash);
        Ok(())
    }

    /// Every live token's accessor.
    pub async fn list_accessors(&self) -> CoreResult<Vec<String>> {
        let view = self.view()?;
        let mut out = Vec::new();
        for k in view.list("accessor/").await? {
            let acc: Option<AccessorEntry> = view.get_json(&format!("accessor/{k}")).await?;
            if let Some(a) = acc {
                out.push(a.accessor);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Deletes expired tokens and dangling index entries; returns how many tokens went.
    pub async fn tidy(&self) -> CoreResult<usize> {
        let view = self.view()?;
        let now = now_secs();
        let mut revoked = 0;
        let mut after = String::new();
        loop {
            let page = view.list_page("id/", &after, 500).await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            for h in page {
                let entry: Option<TokenEntry> = view.get_json(&format!("id/{h}")).await?;
                if entry.is_some_and(|e| e.expired(now) || e.num_uses < 0) {
                    self.revoke_tree(&h).await?;
                    revoked += 1;
                }
            }
            after = last;
        }
        for k in view.list("accessor/").await? {
            let acc: Option<AccessorEntry> = view.get_json(&format!("accessor/{k}")).await?;
            let dangling = match acc {
                None => true,
                Some(a) => view.get(&format!("id/{}", a.id_hash)).await?.is_none(),
            };
            if dangling {
                view.delete(&format!("accessor/{k}")).await?;
            }
        }
        for parent in view.list("parent/").await? {
            let ph = parent.trim_end_matches('/');
            if view.get(&format!("id/{ph}")).await?.is_none() {
                for child in view.list(&format!("parent/{ph}/")).await? {
                    view.delete(&format!("parent/{ph}/{child}")).await?;
                }
            }
        }
        Ok(revoked)
    }

    /// The token roles' storage.
    pub fn roles_view(&self) -> CoreResult<StorageView> {
        Ok(self.view()?.sub("roles/"))
    }
}

/// The accessor index entry: which token an accessor names.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccessorEntry {
    id_hash: String,
    accessor: String,
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
