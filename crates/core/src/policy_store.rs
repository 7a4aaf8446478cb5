//! Stored ACL policies and the compiled ACL cache.
//!
//! Policies live at `sys/policy/<name>` (the text as written, so `read` returns it verbatim).
//! `root` is built in and cannot be read back as text or changed; `default` is created on
//! first unseal and may be edited but not deleted, as in Vault. Compiled [`Acl`]s are cached
//! per set of policy names and dropped whenever any policy changes.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use signet_policy::{parse, Acl, Policy};
use signet_storage::{Storage, StorageView};

use crate::error::{CoreError, CoreResult};

/// signet's `default` policy: what every token may do on itself.
pub const DEFAULT_POLICY: &str = r#"# Lets a token look itself up, renew and revoke itself, and check its own capabilities.
path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/renew-self" {
  capabilities = ["update"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}

path "sys/capabilities-self" {
  capabilities = ["update"]
}

path "sys/internal/ui/resultant-acl" {
  capabilities = ["read"]
}

path "sys/leases/renew" {
  capabilities = ["update"]
}

path "sys/leases/lookup" {
  capabilities = ["update"]
}

path "sys/tools/hash" {
  capabilities = ["update"]
}

path "sys/tools/hash/*" {
  capabilities = ["update"]
}

path "cubbyhole/*" {
  capabilities = ["create", "read", "update", "delete", "list"]
}
"#;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredPolicy {
    name: String,
    policy: String,
}

/// The policy store.
#[derive(Default)]
pub struct PolicyStore {
    view: RwLock<Option<StorageView>>,
    parsed: RwLock<HashMap<String, Arc<Policy>>>,
    acls: RwLock<HashMap<Vec<String>, Arc<Acl>>>,
    /// Bumped by every invalidation; a read that started before one does not fill the caches.
    generation: std::sync::atomic::AtomicU64,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || "-_./@+=".contains(c))
}

impl PolicyStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Attaches the store to its storage and creates `default` if missing.
    pub async fn setup(&self, view: StorageView) -> CoreResult<()> {
        if view.get("default").await?.is_none() {
            view.put_json(
                "default",
                &StoredPolicy {
                    name: "default".into(),
                    policy: DEFAULT_POLICY.into(),
                },
            )
            .await?;
        }
        if let Ok(mut v) = self.view.write() {
            *v = Some(view);
        }
        self.invalidate();
        Ok(())
    }

    /// Forgets storage and caches (on seal).
    pub fn teardown(&self) {
        if let Ok(mut v) = self.view.write() {
            *v = None;
        }
        self.invalidate();
    }

    /// Drops every cached policy and ACL.
    pub fn invalidate(&self) {
        if let Ok(mut p) = self.parsed.write() {
            self.generation
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            p.clear();
        }
        if let Ok(mut a) = self.acls.write() {
            a.clear();
        }
    }

    fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn view(&self) -> CoreResult<StorageView> {
        self.view
            .read()
            .ok()
            .and_then(|v| v.clone())
            .ok_or(CoreError::Sealed)
    }

    /// Names of stored policies, plus `root`.
    pub async fn list(&self) -> CoreResult<Vec<String>> {
        // Names may contain `/` (`cluster/pki/etcd/member`): walk the folders.
        let view = self.view()?;
        let mut names = Vec::new();
        let mut folders = vec![String::new()];
        while let Some(prefix) = folders.pop() {
            for child in view.list(&prefix).await? {
                if child.ends_with('/') {
                    folders.push(format!("{prefix}{child}"));
                } else {
                    names.push(format!("{prefix}{child}"));
                }
            }
        }
        names.push("root".into());
        names.sort();
        Ok(names)
    }

    /// The text of a policy (`None` if missing). `root` has no text.
    pub async fn read(&self, name: &str) -> CoreResult<Option<String>> {
        let name = name.to_lowercase();
        if name == "root" {
            return Ok(Some(String::new()));
        }
        let stored: Option<StoredPolicy> = self.view()?.get_json(&name).await?;
        Ok(stored.map(|s| s.policy))
    }

    /// Validates and stores a policy.
    pub async fn write(&self, name: &str, text: &str) -> CoreResult<()> {
        let name = name.to_lowercase();
        if name == "root" {
            return Err(CoreError::bad("cannot update \"root\" policy"));
        }
        if !valid_name(&name) {
            return Err(CoreError::bad(format!("invalid policy name {name:?}")));
        }
        if text.trim().is_empty() {
            return Err(CoreError::bad("'policy' parameter not supplied or empty"));
        }
        parse(&name, text).map_err(|e| CoreError::bad(e.to_string()))?;
        self.view()?
            .put_json(
                &name,
                &StoredPolicy {
                    name: name.clone(),
                    policy: text.to_string(),
                },
            )
            .await?;
        self.invalidate();
        Ok(())
    }

    /// Deletes a policy; `root` and `default` cannot be deleted.
    pub async fn delete(&self, name: &str) -> CoreResult<()> {
        let name = name.to_lowercase();
        if name == "root" || name == "default" {
            return Err(CoreError::bad(format!("cannot delete {name:?} policy")));
        }
        self.view()?.delete(&name).await?;
        self.invalidate();
        Ok(())
    }

    async fn policy(&self, name: &str) -> CoreResult<Option<Arc<Policy>>> {
        if let Some(p) = self.parsed.read().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(Some(p));
        }
        if name == "root" {
            let p = Arc::new(Policy {
                name: "root".into(),
                rules: vec![],
            });
            return Ok(Some(p));
        }
        let generation = self.generation();
        let stored: Option<StoredPolicy> = self.view()?.get_json(name).await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let p = Arc::new(
            parse(name, &stored.policy)
                .map_err(|e| CoreError::Internal(format!("stored policy {name}: {e}")))?,
        );
        if let Ok(mut m) = self.parsed.write() {
            if self.generation() == generation {
                m.insert(name.to_string(), p.clone());
            }
        }
        Ok(Some(p))
    }

    /// The compiled ACL for a set of policy names (missing policies grant nothing).
    pub async fn acl(&self, names: &[String]) -> CoreResult<Arc<Acl>> {
        let mut key: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
        key.sort();
        key.dedup();
        if let Some(a) = self.acls.read().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(a);
        }
        let generation = self.generation();
        let mut policies = Vec::new();
        for n in &key {
            if let Some(p) = self.policy(n).await? {
                policies.push((*p).clone());
            }
        }
        let acl = Arc::new(Acl::new(&policies));
        // The generation is bumped under `parsed`'s lock; holding it makes the check and the
        // insert one step with respect to invalidations.
        if let (Ok(_p), Ok(mut m)) = (self.parsed.read(), self.acls.write()) {
            if self.generation() == generation {
                if m.len() > 10_000 {
                    m.clear();
                }
                m.insert(key, acl.clone());
            }
        }
        Ok(acl)
    }
}
