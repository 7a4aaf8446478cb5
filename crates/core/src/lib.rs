//! signet's core: everything between the HTTP layer and the engines.
//!
//! A request goes: sealed? -> route (longest-prefix mount match) -> token lookup -> access
//! check -> existence check (POST/PUT becomes create or update) -> the engine's path spec ->
//! handler, with the engine confined to its mount's [`StorageView`]. The core owns the seal
//! (init, unseal with Shamir shares or a key file, seal, key rotation), the mount tables, the
//! token store and the `sys/*` paths. It never depends on an engine crate: the binary
//! registers engine factories by type name in a [`Registry`].
//!
//! Nothing here knows HTTP; [`CoreError`] is mapped to status codes by the `http` crate.

pub mod audit;
mod cluster;
pub mod error;
pub mod framework;
pub mod mounts;
pub mod policy_store;
pub mod request;
mod seal;
mod sys;
pub mod token;
pub mod token_params;
mod token_paths;

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock, Weak};

use serde_json::{json, Map, Value};
use signet_storage::{Barrier, Storage, StorageView};

pub use error::{CoreError, CoreResult};
pub use framework::{Backend, Ctx, Env, Field, MountInfo, PathBackend, PathSpec};
pub use mounts::{MountConfig, MountEntry, MountTable, Mounted, Table};
pub use request::{Lease, Method, Operation, RawBody, Request, Response};
pub use seal::{InitResult, SealKind};
pub use token::{TokenEntry, TokenStore};
pub use token_params::{Login, TokenParams};

/// signet's version, reported by `sys/health`, `sys/seal-status` and the OpenAPI document.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the core knows about the request beyond its fields.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub id: String,
    pub remote_addr: Option<SocketAddr>,
    /// The caller's token entry, when the path needed one.
    pub token: Option<TokenEntry>,
    /// The keyed hash of the caller's token.
    pub token_hash: Option<String>,
    /// The caller's token itself, for the few answers that echo it (`lookup-self`'s `id`).
    pub token_id: Option<signet_types::Secret<String>>,
    pub headers: BTreeMap<String, String>,
    /// DER client certificates from the TLS handshake (end entity first).
    pub peer_certs: Option<Arc<Vec<Vec<u8>>>>,
    /// The raw request body of binary protocols (OCSP).
    pub raw_body: Option<Arc<Vec<u8>>>,
}

/// Builds an engine instance for a mount entry.
pub type EngineFactory =
    Arc<dyn Fn(&MountEntry) -> CoreResult<Arc<dyn Backend>> + Send + Sync + 'static>;

/// The engine types the binary makes available, by table.
#[derive(Clone, Default)]
pub struct Registry {
    secrets: BTreeMap<String, EngineFactory>,
    auth: BTreeMap<String, EngineFactory>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a secrets engine type (`kv`, `pki`).
    pub fn secrets(mut self, kind: &str, f: EngineFactory) -> Self {
        self.secrets.insert(kind.to_string(), f);
        self
    }

    /// Registers an auth method type (`approle`, `kubernetes`).
    pub fn auth(mut self, kind: &str, f: EngineFactory) -> Self {
        self.auth.insert(kind.to_string(), f);
        self
    }

    fn get(&self, table: Table, kind: &str) -> Option<&EngineFactory> {
        match table {
            Table::Secrets => self.secrets.get(kind),
            Table::Auth => self.auth.get(kind),
        }
    }
}

/// Options fixed at startup.
pub struct CoreOptions {
    pub registry: Registry,
    pub seal: SealKind,
    /// Audit devices declared in the configuration.
    pub audit: Vec<Arc<dyn audit::AuditDevice>>,
    /// Builds devices enabled through `sys/audit/:path`.
    pub audit_factory: Option<audit::AuditFactory>,
    /// `unsafe_allow_api_audit_creation`: whether the API may enable and disable devices.
    pub allow_api_audit: bool,
}

/// The `sys/` paths OpenBao's HTTP layer answers itself rather than through its router.
const RAW_SYS_PATHS: &[&str] = &[
    "sys/init",
    "sys/seal-status",
    "sys/seal",
    "sys/step-down",
    "sys/unseal",
    "sys/leader",
    "sys/health",
];

/// The core. Cheap to share as `Arc<Core>`.
pub struct Core {
    barrier: Arc<Barrier>,
    registry: Registry,
    seal_kind: SealKind,
    table: RwLock<Arc<MountTable>>,
    progress: Mutex<seal::Progress>,
    tokens: Arc<TokenStore>,
    policies: Arc<policy_store::PolicyStore>,
    sys: Arc<dyn Backend>,
    token_backend: Arc<dyn Backend>,
    cluster: RwLock<Option<(String, String)>>,
    audit: audit::AuditBroker,
    /// Serialises seal transitions and mount-table changes.
    state_lock: tokio::sync::Mutex<()>,
    /// The cluster services of a shared storage (`None`: a single node). See `cluster.rs`.
    coord: Option<Arc<dyn signet_storage::Coordination>>,
    /// Whether this node holds the leader lock (meaningful only with `coord`).
    leader: std::sync::atomic::AtomicBool,
    leader_since: std::sync::atomic::AtomicU64,
    /// Unix seconds until which this node stays out of the election (`sys/step-down`).
    hold_until: std::sync::atomic::AtomicU64,
    /// What this node advertises to the others.
    node: RwLock<signet_storage::NodeInfo>,
}

impl Core {
    /// Builds a sealed core over a physical backend.
    pub fn new(physical: Arc<dyn Storage>, options: CoreOptions) -> Arc<Core> {
        let tokens = Arc::new(TokenStore::new());
        let coord = physical.clone().coordination();
        let node = signet_storage::NodeInfo {
            node_id: coord
                .as_ref()
                .map(|c| c.node_id().to_string())
                .unwrap_or_default(),
            version: VERSION.to_string(),
            // Linux's host name (the kernel's view); empty elsewhere.
            hostname: std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
            ..Default::default()
        };
        Arc::new_cyclic(|weak: &Weak<Core>| Core {
            barrier: Arc::new(Barrier::new(physical)),
            registry: options.registry,
            seal_kind: options.seal,
            table: RwLock::new(Arc::new(MountTable::default())),
            progress: Mutex::new(seal::Progress::default()),
            tokens: tokens.clone(),
            policies: Arc::new(policy_store::PolicyStore::new()),
            sys: Arc::new(sys::backend(weak.clone())),
            token_backend: Arc::new(token_paths::backend(tokens)),
            cluster: RwLock::new(None),
            audit: audit::AuditBroker::new(options.audit)
                .with_api(options.audit_factory, options.allow_api_audit),
            state_lock: tokio::sync::Mutex::new(()),
            coord,
            leader: std::sync::atomic::AtomicBool::new(false),
            leader_since: std::sync::atomic::AtomicU64::new(0),
            hold_until: std::sync::atomic::AtomicU64::new(0),
            node: RwLock::new(node),
        })
    }

    /// The barrier (for tests and the storage-facing tools).
    pub fn barrier(&self) -> &Arc<Barrier> {
        &self.barrier
    }

    /// How this node unseals.
    pub fn seal_kind(&self) -> &SealKind {
        &self.seal_kind
    }

    /// The token store.
    pub fn tokens(&self) -> &Arc<TokenStore> {
        &self.tokens
    }

    /// The audit broker.
    pub fn audit(&self) -> &audit::AuditBroker {
        &self.audit
    }

    /// The policy store.
    pub fn policies(&self) -> &Arc<policy_store::PolicyStore> {
        &self.policies
    }

    /// The current routing table.
    pub fn mount_table(&self) -> Arc<MountTable> {
        self.table
            .read()
            .map(|t| t.clone())
            .unwrap_or_else(|p| p.into_inner().clone())
    }

    fn set_table(&self, t: MountTable) {
        let mut guard = self.table.write().unwrap_or_else(|p| p.into_inner());
        *guard = Arc::new(t);
    }

    /// Whether the barrier is sealed.
    pub fn is_sealed(&self) -> bool {
        self.barrier.is_sealed()
    }

    fn sys_env(&self, meta: Arc<RequestMeta>) -> Env {
        Env {
            storage: StorageView::new(self.barrier.clone(), "sys/"),
            mount: MountInfo {
                path: "sys/".into(),
                kind: "system".into(),
                ..Default::default()
            },
            meta,
        }
    }

    /// Runs one request end to end. `Ok(None)` means "204 No Content".
    pub async fn handle(&self, req: Request) -> CoreResult<Option<Response>> {
        let mut path = req.path.trim_start_matches('/').to_string();
        if req.method == Method::List && !path.ends_with('/') && !path.is_empty() {
            path.push('/');
        }
        let mut meta = RequestMeta {
            id: req.id.clone(),
            remote_addr: req.remote_addr,
            token: None,
            token_hash: None,
            token_id: None,
            headers: req.headers.clone(),
            peer_certs: req.peer_certs.clone(),
            raw_body: req.raw_body.clone(),
        };

        // The seal endpoints answer whatever the seal state.
        if let Some(rel) = sys_relative(&path) {
            if let Some(info) = self.sys.route(rel) {
                if info.sealed_ok && info.unauthenticated {
                    let op = simple_op(req.method);
                    let env = self.sys_env(Arc::new(meta));
                    if op == Operation::Help {
                        return Ok(self
                            .sys
                            .help("sys/", rel)
                            .map(|v| Response::raw_json(200, &v)));
                    }
                    // OpenBao serves these outside its router: a wrong method gets a 405 with
                    // an empty error list.
                    return self
                        .sys
                        .handle(op, rel, req.data, env)
                        .await
                        .map_err(|e| match e {
                            CoreError::UnsupportedOperation => CoreError::Status(405, vec![]),
                            other => other,
                        });
                }
            }
        }
        if self.is_sealed() {
            return Err(CoreError::Sealed);
        }

        let table = self.mount_table();
        let routed = table
            .route(&path)
            .and_then(|(m, rel)| m.backend.route(rel).map(|info| (m, rel, info)));
        let Some((mounted, rel, info)) = routed else {
            // As in OpenBao, the token is checked before routing: without a valid token an
            // unknown path is "permission denied", not a map of what exists.
            if !self.token_is_valid(&req).await? {
                return Err(CoreError::PermissionDenied);
            }
            return Err(CoreError::NoRoute(path));
        };

        let mut last_use: Option<String> = None;
        if !info.unauthenticated || req.token.is_some() {
            let token = req.token.as_ref().map(|t| t.expose_secret().as_str());
            let found = match token {
                Some(t) if !t.is_empty() && t.len() <= 512 => {
                    let hash = self.tokens.hash(t)?;
                    self.tokens.lookup_hash(&hash).await?.map(|e| (hash, e))
                }
                _ => None,
            };
            match (found, info.unauthenticated) {
                (Some((hash, e)), _) => {
                    if !e.allows_addr(req.remote_addr.map(|a| a.ip())) {
                        return Err(CoreError::PermissionDenied);
                    }
                    if self.tokens.use_once(&hash, &e).await? {
                        last_use = Some(hash.clone());
                    }
                    meta.token_hash = Some(hash);
                    meta.token = Some(e);
                    meta.token_id = req.token.clone();
                }
                // The OpenAPI document and the UI mount listing answer anonymously, but a token
                // that is sent must be valid (OpenBao's rule; other unauthenticated paths
                // ignore a bad token).
                (None, true)
                    if req.token.is_some()
                        && (path == "sys/internal/specs/openapi"
                            || path.starts_with("sys/internal/ui/mounts")) =>
                {
                    return Err(CoreError::PermissionDenied)
                }
                (None, true) => {}
                (None, false) => return Err(CoreError::PermissionDenied),
            }
        }

        let env = Env {
            storage: StorageView::new(
                self.barrier.clone(),
                mounted.table.data_prefix(&mounted.entry.uuid),
            ),
            mount: mounted.info(),
            meta: Arc::new(meta),
        };

        let is_root = env.meta.token.as_ref().is_some_and(TokenEntry::is_root);
        let op = match req.method {
            // With one handler for both and a root caller, create-vs-update changes nothing:
            // skip the existence check's storage read.
            Method::Write if info.same_create_update && is_root => Operation::Update,
            Method::Write => match mounted.backend.exists(rel, &req.data, env.clone()).await? {
                Some(false) => Operation::Create,
                _ => Operation::Update,
            },
            other => simple_op(other),
        };

        // Help needs a valid token but no policy (OpenBao's rule): it describes a path, it
        // does not touch its data.
        if !info.unauthenticated && !info.no_acl && op != Operation::Help {
            self.check_access(&env.meta, &path, op, info.sudo, &req.data)
                .await?;
        }

        // Fail closed: a request no audit device could record never reaches the engine.
        let audited = self
            .audit
            .active()
            .then(|| (env.meta.clone(), req.data.clone()));
        if let Some((meta, data)) = &audited {
            self.audit
                .log_request(meta, op, &path, &mounted.entry.kind, data)?;
        }
        let result = if op == Operation::Help {
            Ok(mounted
                .backend
                .help(&mounted.full_path(), rel)
                .map(|v| Response::raw_json(200, &v)))
        } else {
            let login_env = env.mount.clone();
            match mounted.backend.handle(op, rel, req.data, env).await {
                Ok(Some(mut resp)) => {
                    if let Some(login) = resp.login.take() {
                        resp.auth = Some(self.mint_login(&login_env, login).await?);
                    }
                    Ok(Some(resp))
                }
                // Paths OpenBao serves outside its router answer a wrong method with an
                // empty error list; its unauthenticated paths without the multi-error wrapping.
                Err(CoreError::UnsupportedOperation) if RAW_SYS_PATHS.contains(&path.as_str()) => {
                    Err(CoreError::Status(405, vec![]))
                }
                Err(CoreError::UnsupportedOperation) if info.unauthenticated => {
                    Err(CoreError::Status(405, vec!["unsupported operation".into()]))
                }
                other => other,
            }
        };
        if let Some(hash) = last_use {
            self.tokens.revoke_tree(&hash).await?;
        }
        if let Some((meta, data)) = &audited {
            self.audit
                .log_response(meta, op, &path, &mounted.entry.kind, data, &result)?;
        }
        result
    }

    /// Whether the request carries a token that exists (no use is counted).
    async fn token_is_valid(&self, req: &Request) -> CoreResult<bool> {
        let Some(t) = req.token.as_ref().map(|t| t.expose_secret().as_str()) else {
            return Ok(false);
        };
        if t.is_empty() || t.len() > 512 {
            return Ok(false);
        }
        let hash = self.tokens.hash(t)?;
        Ok(self.tokens.lookup_hash(&hash).await?.is_some())
    }

    /// The access check: the token's policies, compiled to an ACL, must grant the operation on
    /// the path (and `sudo` on root-protected paths); parameter constraints apply to writes.
    async fn check_access(
        &self,
        meta: &RequestMeta,
        path: &str,
        op: Operation,
        sudo: bool,
        data: &Map<String, Value>,
    ) -> CoreResult<()> {
        let Some(token) = &meta.token else {
            return Err(CoreError::PermissionDenied);
        };
        if token.is_root() {
            return Ok(());
        }
        let acl = self.policies.acl(&token.policies).await?;
        let pop = match op {
            Operation::Read | Operation::Help => signet_policy::Op::Read,
            Operation::Create => signet_policy::Op::Create,
            Operation::Update => signet_policy::Op::Update,
            Operation::Patch => signet_policy::Op::Patch,
            Operation::Delete => signet_policy::Op::Delete,
            Operation::List => signet_policy::Op::List,
        };
        let decision = acl.check(pop, path, data);
        if !decision.allowed || (sudo && !decision.sudo) {
            if let Some(reason) = &decision.reason {
                tracing::debug!(path, reason = %reason, "request refused by policy");
            }
            return Err(CoreError::AclDenied);
        }
        Ok(())
    }

    /// Turns a successful login into a token: an orphan whose lease is the role's period, or
    /// its TTL, or the mount default, capped by the role's max TTL (or the mount maximum) and
    /// explicit max TTL.
    async fn mint_login(&self, mount: &MountInfo, login: Login) -> CoreResult<Value> {
        let p = &login.params;
        let now = token::now_secs();
        let max = if p.token_max_ttl > 0 {
            p.token_max_ttl.min(mount.max_lease_ttl)
        } else {
            mount.max_lease_ttl
        };
        let mut lease = if p.token_period > 0 {
            p.token_period
        } else if p.token_ttl > 0 {
            p.token_ttl
        } else {
            mount.default_lease_ttl
        };
        if p.token_period == 0 && lease > max {
            lease = max;
        }
        if p.token_explicit_max_ttl > 0 && lease > p.token_explicit_max_ttl {
            lease = p.token_explicit_max_ttl;
        }
        let mut policies: Vec<String> = login.policies.iter().map(|x| x.to_lowercase()).collect();
        if !p.token_no_default_policy && !policies.iter().any(|x| x == "default") {
            policies.push("default".into());
        }
        policies.sort();
        policies.dedup();
        let display = if login.display_name.is_empty() {
            mount.kind.clone()
        } else {
            format!("{}-{}", mount.kind, login.display_name)
        };
        let entry = TokenEntry {
            policies,
            path: format!("{}login", mount.path),
            display_name: display,
            meta: if login.metadata.is_empty() {
                None
            } else {
                Some(login.metadata.clone())
            },
            creation_time: now,
            ttl: lease,
            expire_time: if lease > 0 { now + lease } else { 0 },
            max_ttl: if p.token_period > 0 { 0 } else { max },
            explicit_max_ttl: p.token_explicit_max_ttl,
            period: p.token_period,
            num_uses: p.token_num_uses,
            orphan: true,
            renewable: lease > 0,
            bound_cidrs: p.token_bound_cidrs.clone(),
            ..Default::default()
        };
        let (token, entry) = self.tokens.create(None, entry).await?;
        Ok(entry.auth_json(token.expose_secret(), now))
    }

    /// Starts the periodic housekeeping (expired-token sweep, each mount's background work) on
    /// the current runtime; over a shared storage it runs on the leader only. The task holds a
    /// weak reference and ends when the core is dropped.
    pub fn start_maintenance(self: &Arc<Self>, every: std::time::Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(core) = weak.upgrade() else { break };
                // Over a shared storage, only the leader sweeps and rebuilds.
                if core.is_sealed() || !core.is_leader() {
                    continue;
                }
                match core.tokens.tidy().await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(revoked = n, "swept expired tokens"),
                    Err(e) => tracing::warn!(error = %e, "token sweep failed"),
                }
                core.run_periodic().await;
            }
        });
    }

    /// Runs every mount's background work once (CRL rebuilds, auto-tidy); errors are logged,
    /// one mount's failure does not stop the others.
    pub async fn run_periodic(&self) {
        if self.is_sealed() {
            return;
        }
        let table = self.mount_table();
        for m in &table.mounts {
            let env = Env {
                storage: StorageView::new(self.barrier.clone(), m.table.data_prefix(&m.entry.uuid)),
                mount: m.info(),
                meta: Arc::new(RequestMeta::default()),
            };
            if let Err(e) = m.backend.periodic(env).await {
                tracing::warn!(mount = %m.full_path(), error = %e, "periodic work failed");
            }
        }
    }

    /// `(cluster_name, cluster_id)` once unsealed.
    pub fn cluster(&self) -> Option<(String, String)> {
        self.cluster.read().ok().and_then(|c| c.clone())
    }

    /// Called after the barrier opens: loads the cluster identity, token store and mounts.
    async fn post_unseal(&self) -> CoreResult<()> {
        let sys_view = StorageView::new(self.barrier.clone(), "");
        let cluster: Option<(String, String)> = sys_view.get_json("core/cluster").await?;
        let cluster = match cluster {
            Some(c) => c,
            None => {
                let id = uuid::Uuid::new_v4().to_string();
                let name = format!("signet-cluster-{}", &id[..8]);
                let c = (name, id);
                sys_view.put_json("core/cluster", &c).await?;
                c
            }
        };
        if let Ok(mut slot) = self.cluster.write() {
            *slot = Some(cluster);
        }
        self.tokens
            .setup(StorageView::new(self.barrier.clone(), "sys/token/"))
            .await?;
        self.policies
            .setup(StorageView::new(self.barrier.clone(), "sys/policy/"))
            .await?;
        self.audit
            .setup(StorageView::new(self.barrier.clone(), "sys/audit/"))
            .await?;
        let mut table = MountTable::default();
        for t in [Table::Secrets, Table::Auth] {
            let entries: Option<Vec<MountEntry>> = sys_view.get_json(t.storage_key()).await?;
            let entries = match entries {
                Some(e) => e,
                None => {
                    let defaults = self.default_mounts(t)?;
                    sys_view.put_json(t.storage_key(), &defaults).await?;
                    defaults
                }
            };
            for entry in entries {
                match self.instantiate(t, &entry) {
                    Ok(backend) => table.mounts.push(Mounted {
                        table: t,
                        entry,
                        backend,
                    }),
                    Err(e) => tracing::error!(
                        path = %entry.path, kind = %entry.kind, error = %e,
                        "cannot start mount; it stays in the table but is not served"
                    ),
                }
            }
        }
        self.set_table(table);
        Ok(())
    }

    fn default_mounts(&self, table: Table) -> CoreResult<Vec<MountEntry>> {
        let mk = |path: &str, kind: &str, desc: &str| -> CoreResult<MountEntry> {
            Ok(MountEntry {
                path: path.into(),
                kind: kind.into(),
                description: desc.into(),
                uuid: uuid::Uuid::new_v4().to_string(),
                accessor: self.new_accessor(kind)?,
                config: MountConfig::default(),
                options: None,
                local: false,
                seal_wrap: false,
                external_entropy_access: false,
            })
        };
        Ok(match table {
            Table::Secrets => vec![mk(
                "sys/",
                "system",
                "system endpoints used for control, policy and debugging",
            )?],
            Table::Auth => vec![mk("token/", "token", "token based credentials")?],
        })
    }

    fn new_accessor(&self, kind: &str) -> CoreResult<String> {
        let id = self.tokens.random_id(8)?.to_lowercase();
        let prefix = match kind {
            "system" => "system".to_string(),
            "token" => "auth_token".to_string(),
            k => k.replace('-', "_"),
        };
        Ok(format!("{prefix}_{id}"))
    }

    fn instantiate(&self, table: Table, entry: &MountEntry) -> CoreResult<Arc<dyn Backend>> {
        match (table, entry.kind.as_str()) {
            (Table::Secrets, "system") => Ok(self.sys.clone()),
            (Table::Auth, "token") => Ok(self.token_backend.clone()),
            _ => {
                let factory = self.registry.get(table, &entry.kind).ok_or_else(|| {
                    CoreError::bad(format!("plugin not found in the catalog: {}", entry.kind))
                })?;
                factory(entry)
            }
        }
    }

    async fn persist_table(&self, table: &MountTable, which: Table) -> CoreResult<()> {
        let entries: Vec<&MountEntry> = table
            .mounts
            .iter()
            .filter(|m| m.table == which)
            .map(|m| &m.entry)
            .collect();
        StorageView::new(self.barrier.clone(), "")
            .put_json(which.storage_key(), &entries)
            .await?;
        Ok(())
    }

    /// Enables a mount (`sys/mounts/:path`, `sys/auth/:path`).
    pub async fn enable_mount(&self, table: Table, mut entry: MountEntry) -> CoreResult<()> {
        let _guard = self.state_lock.lock().await;
        entry.path = mounts::normalize_mount_path(&entry.path);
        if entry.path == "/" {
            return Err(CoreError::bad("path cannot be empty"));
        }
        match table {
            Table::Secrets
                if ["sys/", "auth/", "cubbyhole/", "identity/"]
                    .iter()
                    .any(|r| entry.path.starts_with(r)) =>
            {
                return Err(CoreError::bad(format!("cannot mount {:?}", entry.path)));
            }
            Table::Auth if entry.path.starts_with("token/") => {
                return Err(CoreError::bad("path is already in use at token/"));
            }
            _ => {}
        }
        let (current, _cluster) = self.table_for_change().await?;
        if let Some(existing) = current.conflict(table, &entry.path) {
            return Err(CoreError::bad(format!(
                "path is already in use at {}",
                existing.full_path()
            )));
        }
        entry.uuid = uuid::Uuid::new_v4().to_string();
        entry.accessor = self.new_accessor(&entry.kind)?;
        let backend = self.instantiate(table, &entry)?;
        let mut next = (*current).clone();
        next.mounts.push(Mounted {
            table,
            entry,
            backend,
        });
        self.persist_table(&next, table).await?;
        self.set_table(next);
        Ok(())
    }

    /// Disables a mount and deletes its data. A missing mount is not an error (Vault's
    /// behaviour).
    pub async fn disable_mount(&self, table: Table, path: &str) -> CoreResult<()> {
        let _guard = self.state_lock.lock().await;
        let path = mounts::normalize_mount_path(path);
        let (current, _cluster) = self.table_for_change().await?;
        let Some(m) = current.get(table, &path).cloned() else {
            return Ok(());
        };
        if matches!(m.entry.kind.as_str(), "system" | "token") {
            return Err(CoreError::bad(format!(
                "cannot unmount {:?}",
                m.full_path()
            )));
        }
        let mut next = (*current).clone();
        next.mounts
            .retain(|x| !(x.table == table && x.entry.path == path));
        self.persist_table(&next, table).await?;
        self.set_table(next);
        let view = StorageView::new(self.barrier.clone(), table.data_prefix(&m.entry.uuid));
        let env = Env {
            storage: view.clone(),
            mount: m.info(),
            meta: Arc::new(RequestMeta::default()),
        };
        m.backend.cleanup(env).await?;
        view.clear().await?;
        Ok(())
    }

    /// Applies a change to one mount's entry (tune).
    pub async fn update_mount<F>(&self, table: Table, path: &str, change: F) -> CoreResult<()>
    where
        F: FnOnce(&mut MountEntry) -> CoreResult<()>,
    {
        let _guard = self.state_lock.lock().await;
        let path = mounts::normalize_mount_path(path);
        let (current, _cluster) = self.table_for_change().await?;
        let mut next = (*current).clone();
        let m = next
            .mounts
            .iter_mut()
            .find(|m| m.table == table && m.entry.path == path)
            .ok_or_else(|| {
                CoreError::bad(format!(
                    "tune of path \"{}{}\" failed: no mount entry found",
                    table.route_prefix(),
                    path
                ))
            })?;
        change(&mut m.entry)?;
        self.persist_table(&next, table).await?;
        self.set_table(next);
        Ok(())
    }

    /// Moves a mount to a new path; its data stays where it is (storage is keyed by UUID).
    pub async fn remount(&self, from: &str, to: &str) -> CoreResult<()> {
        let _guard = self.state_lock.lock().await;
        let (from_table, from_path) = split_table(from);
        let (to_table, to_path) = split_table(to);
        if from_table != to_table {
            return Err(CoreError::bad(
                "cannot remount between secret engines and auth methods",
            ));
        }
        let (current, _cluster) = self.table_for_change().await?;
        let src = current.get(from_table, &from_path).ok_or_else(|| {
            CoreError::bad(format!(
                "no matching mount at \"{}/\"",
                from.trim_end_matches('/')
            ))
        })?;
        if matches!(src.entry.kind.as_str(), "system" | "token") {
            return Err(CoreError::bad(format!("cannot remount {:?}", from)));
        }
        let reserved: &[&str] = match to_table {
            Table::Secrets => &["sys/", "auth/", "cubbyhole/", "identity/"],
            Table::Auth => &["token/"],
        };
        if to_path == "/" || reserved.iter().any(|r| to_path.starts_with(r)) {
            return Err(CoreError::bad(format!("cannot remount to {:?}", to)));
        }
        if let Some(existing) = current.conflict(to_table, &to_path) {
            return Err(CoreError::bad(format!(
                "path already in use at {:?}",
                existing.full_path()
            )));
        }
        let mut next = (*current).clone();
        if let Some(m) = next
            .mounts
            .iter_mut()
            .find(|m| m.table == from_table && m.entry.path == from_path)
        {
            m.entry.path = to_path;
        }
        self.persist_table(&next, from_table).await?;
        self.set_table(next);
        Ok(())
    }

    /// The OpenAPI document for every mounted path.
    pub fn openapi(&self) -> Value {
        let mut paths = Map::new();
        let table = self.mount_table();
        let mut seen = BTreeSet::new();
        for m in &table.mounts {
            let full = m.full_path();
            if !seen.insert(full.clone()) {
                continue;
            }
            for (k, v) in m.backend.openapi(&full) {
                paths.entry(k).or_insert(v);
            }
        }
        openapi_document(paths)
    }
}

/// Wraps OpenAPI path items into a full OpenAPI 3 document.
pub fn openapi_document(paths: Map<String, Value>) -> Value {
    json!({
        "openapi": "3.0.2",
        "info": {
            "title": "signet API",
            "description": "HTTP API compatible with HashiCorp Vault and OpenBao. All API routes are prefixed with `/v1/`.",
            "version": VERSION,
            "license": {"name": "Mozilla Public License 2.0", "url": "https://www.mozilla.org/en-US/MPL/2.0"}
        },
        "paths": paths,
        "components": {"schemas": {}}
    })
}

fn sys_relative(path: &str) -> Option<&str> {
    if path == "sys" {
        Some("")
    } else {
        path.strip_prefix("sys/")
    }
}

fn simple_op(m: Method) -> Operation {
    match m {
        Method::Get => Operation::Read,
        Method::Write => Operation::Update,
        Method::Patch => Operation::Patch,
        Method::Delete => Operation::Delete,
        Method::List => Operation::List,
        Method::Help => Operation::Help,
    }
}

/// Splits `auth/x` into (Auth, "x/") and `x` into (Secrets, "x/").
fn split_table(path: &str) -> (Table, String) {
    let p = path.trim_matches('/');
    match p.strip_prefix("auth/") {
        Some(rest) => (Table::Auth, mounts::normalize_mount_path(rest)),
        None => (Table::Secrets, mounts::normalize_mount_path(p)),
    }
}
