//! The mount table: which engine serves which path prefix, with what configuration.
//!
//! Two tables, persisted through the barrier: secret engines at `core/mounts` and auth methods
//! at `core/auth` (served under `auth/`). Each mount's storage is `logical/<uuid>/` (or
//! `auth/<uuid>/`), so moving a mount (`sys/remount`) only changes its path. Routing is
//! longest-prefix over both tables.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::framework::{Backend, MountInfo};

/// Vault's system-wide default and maximum lease TTL: 768h.
pub const SYSTEM_DEFAULT_TTL: u64 = 768 * 3600;
/// Vault's system-wide maximum lease TTL: 768h.
pub const SYSTEM_MAX_TTL: u64 = 768 * 3600;

/// A mount's tunable configuration, as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MountConfig {
    #[serde(default)]
    pub default_lease_ttl: u64,
    #[serde(default)]
    pub max_lease_ttl: u64,
    #[serde(default)]
    pub force_no_cache: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_response_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub passthrough_request_headers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_non_hmac_request_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_non_hmac_response_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub listing_visibility: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub token_type: String,
}

/// One mount, as stored.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MountEntry {
    /// Path with trailing slash, relative to its table (`secret/`, or `approle/` under `auth/`).
    pub path: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub description: String,
    pub uuid: String,
    pub accessor: String,
    #[serde(default)]
    pub config: MountConfig,
    #[serde(default)]
    pub options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub local: bool,
    #[serde(default)]
    pub seal_wrap: bool,
    #[serde(default)]
    pub external_entropy_access: bool,
}

impl MountEntry {
    /// The Vault JSON shape of this entry in `sys/mounts` and friends.
    pub fn to_json(&self) -> Value {
        let mut config = Map::new();
        config.insert(
            "default_lease_ttl".into(),
            json!(self.config.default_lease_ttl),
        );
        config.insert("force_no_cache".into(), json!(self.config.force_no_cache));
        config.insert("max_lease_ttl".into(), json!(self.config.max_lease_ttl));
        if !self.config.allowed_response_headers.is_empty() {
            config.insert(
                "allowed_response_headers".into(),
                json!(self.config.allowed_response_headers),
            );
        }
        if !self.config.passthrough_request_headers.is_empty() {
            config.insert(
                "passthrough_request_headers".into(),
                json!(self.config.passthrough_request_headers),
            );
        }
        if !self.config.audit_non_hmac_request_keys.is_empty() {
            config.insert(
                "audit_non_hmac_request_keys".into(),
                json!(self.config.audit_non_hmac_request_keys),
            );
        }
        if !self.config.audit_non_hmac_response_keys.is_empty() {
            config.insert(
                "audit_non_hmac_response_keys".into(),
                json!(self.config.audit_non_hmac_response_keys),
            );
        }
        if !self.config.listing_visibility.is_empty() {
            config.insert(
                "listing_visibility".into(),
                json!(self.config.listing_visibility),
            );
        }
        if !self.config.token_type.is_empty() {
            config.insert("token_type".into(), json!(self.config.token_type));
        }
        let mut m = Map::new();
        m.insert("accessor".into(), json!(self.accessor));
        m.insert("config".into(), Value::Object(config));
        if self.kind == "kv" {
            m.insert("deprecation_status".into(), json!("supported"));
        }
        m.insert("description".into(), json!(self.description));
        m.insert(
            "external_entropy_access".into(),
            json!(self.external_entropy_access),
        );
        m.insert("local".into(), json!(self.local));
        m.insert(
            "options".into(),
            match &self.options {
                Some(o) => json!(o),
                None => Value::Null,
            },
        );
        m.insert("plugin_version".into(), json!(""));
        m.insert(
            "running_plugin_version".into(),
            json!(format!("v{}+builtin.signet", crate::VERSION)),
        );
        m.insert("running_sha256".into(), json!(""));
        m.insert("seal_wrap".into(), json!(self.seal_wrap));
        m.insert("type".into(), json!(self.kind));
        m.insert("uuid".into(), json!(self.uuid));
        Value::Object(m)
    }

    /// The effective TTLs: the mount's own, or the system defaults.
    pub fn effective_ttls(&self) -> (u64, u64) {
        let max = if self.config.max_lease_ttl == 0 {
            SYSTEM_MAX_TTL
        } else {
            self.config.max_lease_ttl
        };
        let default = if self.config.default_lease_ttl == 0 {
            SYSTEM_DEFAULT_TTL.min(max)
        } else {
            self.config.default_lease_ttl
        };
        (default, max)
    }
}

/// Which table a mount belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    Secrets,
    Auth,
}

impl Table {
    /// Where the table is persisted.
    pub fn storage_key(self) -> &'static str {
        match self {
            Table::Secrets => "core/mounts",
            Table::Auth => "core/auth",
        }
    }

    /// The storage prefix of a mount's data.
    pub fn data_prefix(self, uuid: &str) -> String {
        match self {
            Table::Secrets => format!("logical/{uuid}/"),
            Table::Auth => format!("auth/{uuid}/"),
        }
    }

    /// The request-path prefix of a mount path in this table.
    pub fn route_prefix(self) -> &'static str {
        match self {
            Table::Secrets => "",
            Table::Auth => "auth/",
        }
    }
}

/// A live mount: its entry and the engine instance serving it.
#[derive(Clone)]
pub struct Mounted {
    pub table: Table,
    pub entry: MountEntry,
    pub backend: Arc<dyn Backend>,
}

impl Mounted {
    /// The full request-path prefix (`auth/approle/`, `pki/`).
    pub fn full_path(&self) -> String {
        format!("{}{}", self.table.route_prefix(), self.entry.path)
    }

    /// What the engine is told about its mount.
    pub fn info(&self) -> MountInfo {
        let (default_lease_ttl, max_lease_ttl) = self.entry.effective_ttls();
        MountInfo {
            path: self.full_path(),
            kind: self.entry.kind.clone(),
            uuid: self.entry.uuid.clone(),
            accessor: self.entry.accessor.clone(),
            default_lease_ttl,
            max_lease_ttl,
            options: self
                .entry
                .options
                .as_ref()
                .map(|o| o.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
                .unwrap_or_default(),
        }
    }
}

/// The live routing table (copy-on-write behind the core's lock).
#[derive(Clone, Default)]
pub struct MountTable {
    pub mounts: Vec<Mounted>,
}

impl MountTable {
    /// Longest-prefix match of a request path; returns the mount and the path relative to it.
    pub fn route<'a>(&'a self, path: &'a str) -> Option<(&'a Mounted, &'a str)> {
        let mut best: Option<(&Mounted, &str, usize)> = None;
        for m in &self.mounts {
            let full = m.full_path();
            let rel = if let Some(rel) = path.strip_prefix(full.as_str()) {
                Some(rel)
            } else if path == full.trim_end_matches('/') {
                Some("")
            } else {
                None
            };
            if let Some(rel) = rel {
                if best.is_none_or(|(_, _, len)| full.len() > len) {
                    best = Some((m, rel, full.len()));
                }
            }
        }
        best.map(|(m, rel, _)| (m, rel))
    }

    /// Entries of one table, by path.
    pub fn entries(&self, table: Table) -> Vec<&Mounted> {
        let mut v: Vec<&Mounted> = self.mounts.iter().filter(|m| m.table == table).collect();
        v.sort_by(|a, b| a.entry.path.cmp(&b.entry.path));
        v
    }

    /// The mount at exactly `path` (with trailing slash) in `table`.
    pub fn get(&self, table: Table, path: &str) -> Option<&Mounted> {
        self.mounts
            .iter()
            .find(|m| m.table == table && m.entry.path == path)
    }

    /// A mount in `table` whose path overlaps `path` (one is a prefix of the other).
    pub fn conflict(&self, table: Table, path: &str) -> Option<&Mounted> {
        let full = format!("{}{}", table.route_prefix(), path);
        self.mounts.iter().find(|m| {
            let other = m.full_path();
            other.starts_with(&full) || full.starts_with(&other)
        })
    }
}

/// Normalises a user-supplied mount path: trims slashes, adds one trailing slash.
pub fn normalize_mount_path(path: &str) -> String {
    let p = path.trim_matches('/');
    format!("{p}/")
}
