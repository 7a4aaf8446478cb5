//! Seal and unseal.
//!
//! `sys/init` creates a 32-byte unseal key, lets the barrier build its root key and keyring
//! with it, and either splits it into Shamir shares (`secret_shares`/`secret_threshold`; with a
//! single share the share is the key, as in Vault) or, with `seal "file"`, relies on a key file
//! for automatic unsealing. The seal configuration is the one entry stored in clear, at
//! `core/seal-config`. Shares handed to `sys/unseal` are kept only until the threshold is
//! reached and are zeroized with the combined key right after use.

use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use signet_crypto::shamir;
use signet_storage::barrier::SEAL_CONFIG_PATH;
use signet_storage::BarrierError;
use signet_types::Secret;
use zeroize::Zeroizing;

use crate::error::{CoreError, CoreResult};
use crate::mounts::{MountConfig, MountEntry, Table};
use crate::token::now_secs;
use crate::{Core, VERSION};

/// How the unseal key is obtained.
pub enum SealKind {
    /// Shares typed in by operators.
    Shamir,
    /// A key file read at startup (Kubernetes Secret, systemd credential): 32 bytes, raw,
    /// base64 or hex.
    File(Secret<Vec<u8>>),
}

impl SealKind {
    fn type_name(&self) -> &'static str {
        match self {
            SealKind::Shamir => "shamir",
            SealKind::File(_) => "file",
        }
    }
}

/// Unseal progress between `sys/unseal` calls.
#[derive(Default)]
pub struct Progress {
    nonce: String,
    parts: Vec<Zeroizing<Vec<u8>>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SealConfig {
    #[serde(rename = "type")]
    kind: String,
    secret_shares: u32,
    secret_threshold: u32,
}

/// What `sys/init` returns.
pub struct InitResult {
    pub keys: Vec<Secret<Vec<u8>>>,
    pub root_token: Secret<String>,
}

fn decode_key_file(raw: &[u8]) -> CoreResult<Zeroizing<Vec<u8>>> {
    if raw.len() == 32 {
        return Ok(Zeroizing::new(raw.to_vec()));
    }
    let text = Zeroizing::new(String::from_utf8_lossy(raw).trim().to_string());
    if let Ok(k) = hex::decode(text.as_str()) {
        if k.len() == 32 {
            return Ok(Zeroizing::new(k));
        }
    }
    if let Ok(k) = base64::engine::general_purpose::STANDARD.decode(text.as_str()) {
        if k.len() == 32 {
            return Ok(Zeroizing::new(k));
        }
    }
    Err(CoreError::bad(
        "seal key file must hold 32 bytes: raw, hex or base64 (e.g. `openssl rand -base64 32`)",
    ))
}

/// Decodes an unseal share given as hex or base64.
pub fn decode_share(key: &str) -> CoreResult<Zeroizing<Vec<u8>>> {
    let bytes = hex::decode(key)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(key))
        .map_err(|_| CoreError::bad("'key' must be a valid hex or base64 string"))?;
    let bytes = Zeroizing::new(bytes);
    if bytes.len() > 33 {
        return Err(CoreError::bad(
            "invalid key: key is longer than maximum 33 bytes",
        ));
    }
    if bytes.len() < 16 {
        return Err(CoreError::bad(
            "invalid key: key is shorter than minimum 16 bytes",
        ));
    }
    Ok(bytes)
}

impl Core {
    async fn seal_config(&self) -> CoreResult<Option<SealConfig>> {
        match self.barrier.physical().get(SEAL_CONFIG_PATH).await? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| CoreError::Internal(format!("seal config: {e}"))),
        }
    }

    /// Whether `sys/init` has run.
    pub async fn is_initialized(&self) -> CoreResult<bool> {
        Ok(self.barrier.is_initialized().await?)
    }

    /// `sys/init`.
    pub async fn init(&self, shares: u32, threshold: u32) -> CoreResult<InitResult> {
        let _guard = self.state_lock.lock().await;
        if self.barrier.is_initialized().await? {
            return Err(CoreError::bad("Vault is already initialized"));
        }
        let file_key = match &self.seal_kind {
            SealKind::File(k) => Some(decode_key_file(k.expose_secret())?),
            SealKind::Shamir => None,
        };
        let (shares, threshold) = if file_key.is_some() {
            (0, 0)
        } else {
            if shares == 0 {
                return Err(CoreError::bad(
                    "invalid seal configuration: number of shares must be at least one",
                ));
            }
            if threshold == 0 {
                return Err(CoreError::bad(
                    "invalid seal configuration: threshold must be at least one",
                ));
            }
            if shares > 1 && threshold == 1 {
                return Err(CoreError::bad("invalid seal configuration: threshold must be greater than one for multiple shares"));
            }
            if shares > 255 {
                return Err(CoreError::bad(
                    "invalid seal configuration: shares must be less than 256",
                ));
            }
            if threshold > shares {
                return Err(CoreError::bad(
                    "invalid seal configuration: threshold cannot be larger than shares",
                ));
            }
            (shares, threshold)
        };
        let unseal_key = match &file_key {
            Some(k) => k.clone(),
            None => self.barrier.generate_key()?,
        };
        let keys: Vec<Secret<Vec<u8>>> = if file_key.is_some() {
            Vec::new()
        } else if shares == 1 {
            vec![Secret::new(unseal_key.to_vec())]
        } else {
            shamir::split(&unseal_key, shares as usize, threshold as usize)
                .map_err(|e| CoreError::bad(format!("failed to generate barrier shares: {e}")))?
                .into_iter()
                .map(Secret::new)
                .collect()
        };
        let cfg = SealConfig {
            kind: self.seal_kind.type_name().into(),
            secret_shares: shares,
            secret_threshold: threshold,
        };
        let cfg_bytes = serde_json::to_vec(&cfg).map_err(|e| CoreError::Internal(e.to_string()))?;
        self.barrier
            .physical()
            .put(SEAL_CONFIG_PATH, cfg_bytes)
            .await?;
        self.barrier
            .initialize(&unseal_key)
            .await
            .map_err(barrier_err)?;
        self.barrier
            .unseal(&unseal_key)
            .await
            .map_err(barrier_err)?;
        self.post_unseal().await?;
        let root_token = self.tokens.create_root(None).await?;
        if file_key.is_none() {
            self.seal_now();
        }
        Ok(InitResult { keys, root_token })
    }

    fn seal_now(&self) {
        self.barrier.seal();
        self.tokens.teardown();
        self.policies.teardown();
        self.audit.teardown();
        self.set_table(crate::MountTable::default());
        if let Ok(mut p) = self.progress.lock() {
            *p = Progress::default();
        }
    }

    /// `sys/seal`.
    pub async fn seal(&self) -> CoreResult<()> {
        let _guard = self.state_lock.lock().await;
        self.seal_now();
        Ok(())
    }

    /// Unseals with the configured key file, if any (at startup).
    pub async fn auto_unseal(&self) -> CoreResult<bool> {
        let SealKind::File(raw) = &self.seal_kind else {
            return Ok(false);
        };
        if !self.barrier.is_initialized().await? {
            return Ok(false);
        }
        let key = decode_key_file(raw.expose_secret())?;
        let _guard = self.state_lock.lock().await;
        self.barrier.unseal(&key).await.map_err(|e| match e {
            BarrierError::InvalidKey => {
                CoreError::bad("the seal key file does not open this storage (wrong key file?)")
            }
            other => barrier_err(other),
        })?;
        self.post_unseal().await?;
        Ok(true)
    }

    /// Unseals directly with the unseal key (dev mode, tests).
    pub async fn unseal_with_key(&self, key: &[u8]) -> CoreResult<()> {
        let _guard = self.state_lock.lock().await;
        self.barrier.unseal(key).await.map_err(barrier_err)?;
        self.post_unseal().await
    }

    /// `sys/unseal`: adds one share, or resets progress.
    pub async fn unseal_share(&self, key: Option<&str>, reset: bool) -> CoreResult<Value> {
        let _guard = self.state_lock.lock().await;
        if reset {
            if let Ok(mut p) = self.progress.lock() {
                *p = Progress::default();
            }
            drop(_guard);
            return self.seal_status().await;
        }
        let Some(key) = key else {
            return Err(CoreError::bad(
                "'key' must be specified in request body as JSON, or 'reset' set to true",
            ));
        };
        // OpenBao checks initialisation before it looks at the key.
        let cfg = self
            .seal_config()
            .await?
            .ok_or_else(|| CoreError::bad("Vault is not initialized"))?;
        let share = decode_share(key)?;
        if !self.barrier.is_sealed() {
            drop(_guard);
            return self.seal_status().await;
        }
        if matches!(self.seal_kind, SealKind::File(_)) {
            return Err(CoreError::bad(
                "this server unseals with its seal key file; unseal shares are not used",
            ));
        }
        let ready: Option<Vec<Zeroizing<Vec<u8>>>> = {
            let mut p = self
                .progress
                .lock()
                .map_err(|_| CoreError::Internal("unseal progress lock poisoned".into()))?;
            if p.parts.is_empty() {
                p.nonce = uuid::Uuid::new_v4().to_string();
            }
            if !p.parts.iter().any(|x| x.as_slice() == share.as_slice()) {
                p.parts.push(share);
            }
            if (p.parts.len() as u32) < cfg.secret_threshold.max(1) {
                None
            } else {
                let parts = std::mem::take(&mut p.parts);
                *p = Progress::default();
                Some(parts)
            }
        };
        if let Some(parts) = ready {
            let key = if cfg.secret_threshold <= 1 {
                parts
                    .into_iter()
                    .next()
                    .ok_or_else(|| CoreError::Internal("no unseal key".into()))?
            } else {
                let raw: Vec<Vec<u8>> = parts.iter().map(|p| p.to_vec()).collect();
                let combined = shamir::combine(&raw).map_err(|e| {
                    CoreError::bad(format!("invalid key: failed to compute combined key: {e}"))
                });
                for mut r in raw {
                    zeroize::Zeroize::zeroize(&mut r);
                }
                combined?
            };
            match self.barrier.unseal(&key).await {
                Ok(()) => self.post_unseal().await?,
                Err(BarrierError::InvalidKey) => {
                    return Err(CoreError::bad(
                        "failed to unseal: the unseal key is wrong (cipher: message authentication failed)",
                    ))
                }
                Err(e) => return Err(barrier_err(e)),
            }
        }
        drop(_guard);
        self.seal_status().await
    }

    /// `sys/seal-status`.
    pub async fn seal_status(&self) -> CoreResult<Value> {
        let cfg = self.seal_config().await?;
        let initialized = self.barrier.is_initialized().await?;
        let sealed = self.barrier.is_sealed();
        let (progress, nonce) = self
            .progress
            .lock()
            .map(|p| (p.parts.len(), p.nonce.clone()))
            .unwrap_or((0, String::new()));
        let mut m = Map::new();
        m.insert("type".into(), json!(self.seal_kind.type_name()));
        m.insert("initialized".into(), json!(initialized));
        m.insert("sealed".into(), json!(sealed));
        m.insert(
            "t".into(),
            json!(cfg.as_ref().map(|c| c.secret_threshold).unwrap_or(0)),
        );
        m.insert(
            "n".into(),
            json!(cfg.as_ref().map(|c| c.secret_shares).unwrap_or(0)),
        );
        m.insert("progress".into(), json!(if sealed { progress } else { 0 }));
        m.insert(
            "nonce".into(),
            json!(if sealed { nonce } else { String::new() }),
        );
        m.insert(
            "recovery_seal".into(),
            json!(matches!(self.seal_kind, SealKind::File(_))),
        );
        m.insert("version".into(), json!(VERSION));
        m.insert("commit_date".into(), json!(""));
        m.insert("migration".into(), json!(false));
        if !sealed {
            if let Some((name, id)) = self.cluster() {
                m.insert("cluster_name".into(), json!(name));
                m.insert("cluster_id".into(), json!(id));
            }
        }
        m.insert("storage_type".into(), json!(self.barrier.kind_name()));
        Ok(Value::Object(m))
    }

    /// `sys/health`: the status code and body.
    pub async fn health(&self, query: &Map<String, Value>) -> CoreResult<(u16, Value)> {
        let initialized = self.barrier.is_initialized().await?;
        let sealed = self.barrier.is_sealed();
        let code = |name: &str, default: u16| -> CoreResult<u16> {
            match query.get(name) {
                None => Ok(default),
                Some(v) => {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    // OpenBao answers an unparsable code with a bare 400.
                    s.parse::<u16>()
                        .ok()
                        .filter(|c| (100..=599).contains(c) || *c == 0)
                        .ok_or(CoreError::Status(400, vec![]))
                }
            }
        };
        let status = if !initialized {
            code("uninitcode", 501)?
        } else if sealed {
            code("sealedcode", 503)?
        } else {
            code("activecode", 200)?
        };
        // Validate the other overrides even when they do not apply, as Vault does.
        for name in [
            "standbycode",
            "drsecondarycode",
            "performancestandbycode",
            "removedcode",
        ] {
            code(name, 200)?;
        }
        let mut m = Map::new();
        m.insert("initialized".into(), json!(initialized));
        m.insert("sealed".into(), json!(sealed));
        m.insert("standby".into(), json!(sealed));
        let repl = if sealed { "unknown" } else { "disabled" };
        m.insert("replication_performance_mode".into(), json!(repl));
        m.insert("replication_dr_mode".into(), json!(repl));
        m.insert("server_time_utc".into(), json!(now_secs()));
        m.insert("version".into(), json!(VERSION));
        if !sealed {
            if let Some((name, id)) = self.cluster() {
                m.insert("cluster_name".into(), json!(name));
                m.insert("cluster_id".into(), json!(id));
            }
        }
        Ok((status, Value::Object(m)))
    }

    /// `sys/rotate`: a new barrier key term.
    pub async fn rotate(&self) -> CoreResult<signet_storage::barrier::KeyStatus> {
        let _guard = self.state_lock.lock().await;
        self.barrier.rotate().await.map_err(barrier_err)
    }

    /// Dev mode: initialise with one share, unseal, mount `secret/` as KV v1 and make a root
    /// token with the requested id. Returns the unseal key and root token.
    pub async fn dev_bootstrap(
        self: &Arc<Self>,
        root_token_id: Option<String>,
    ) -> CoreResult<(Secret<Vec<u8>>, Secret<String>)> {
        let init = self.init(1, 1).await?;
        let key = init
            .keys
            .into_iter()
            .next()
            .ok_or_else(|| CoreError::Internal("dev init returned no key".into()))?;
        if self.is_sealed() {
            self.unseal_with_key(key.expose_secret()).await?;
        }
        let root = match root_token_id {
            Some(id) if !id.is_empty() => {
                self.tokens.revoke(init.root_token.expose_secret()).await?;
                self.tokens.create_root(Some(id)).await?
            }
            _ => init.root_token,
        };
        self.enable_mount(
            Table::Secrets,
            MountEntry {
                path: "secret/".into(),
                kind: "kv".into(),
                description: "key/value secret storage".into(),
                uuid: String::new(),
                accessor: String::new(),
                config: MountConfig::default(),
                options: Some([("version".to_string(), "1".to_string())].into()),
                local: false,
                seal_wrap: false,
                external_entropy_access: false,
            },
        )
        .await?;
        Ok((key, root))
    }
}

fn barrier_err(e: BarrierError) -> CoreError {
    match e {
        BarrierError::AlreadyInitialized => CoreError::bad("Vault is already initialized"),
        BarrierError::NotInitialized => CoreError::bad("Vault is not initialized"),
        BarrierError::InvalidKey => CoreError::bad("cipher: message authentication failed"),
        BarrierError::Storage(s) => s.into(),
    }
}
