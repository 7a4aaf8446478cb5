//! Several signet nodes over one shared storage (PostgreSQL), every node active.
//!
//! Every node serves reads and writes; what they must agree on lives in the database. Two
//! things here make the in-memory parts agree too:
//!
//! * **Invalidation**: the storage's change feed ([`signet_storage::Coordination::subscribe`])
//!   carries the physical keys other nodes wrote. [`Core::apply_change`] maps each to the copy
//!   that depends on it: the barrier keyring (`core/keyring`), the mount tables (`core/mounts`,
//!   `core/auth`), the token cache (`sys/token/id/<hash>`), the policy cache (`sys/policy/`),
//!   the audit table (`sys/audit/`), and an engine's own caches (`logical/<uuid>/...`,
//!   `auth/<uuid>/...` through [`crate::Backend::invalidate`]). [`Change::All`] (the feed
//!   reconnected after missing notifications) drops everything.
//! * **Leadership**: background work that must run once per cluster (token expiry sweeps,
//!   periodic CRL rebuilds, auto-tidy) runs only on the node holding the storage's leader lock.
//!   Every node tries every [`ELECTION_INTERVAL`]; a dead leader's lock is released by the
//!   database when its session ends, so another node takes over within that interval.
//!
//! Over a single-node backend (SQLite, inmem) there is no coordination: the node is its own
//! leader and nothing here runs.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use signet_storage::{Change, NodeInfo, StorageView};

use crate::mounts::{MountEntry, MountTable, Mounted, Table};
use crate::token::{now_secs, rfc3339};
use crate::{Core, CoreResult, VERSION};

/// How often every node tries to become (or confirms it still is) the leader.
pub const ELECTION_INTERVAL: Duration = Duration::from_secs(2);
/// How long a node that stepped down stays out of the election.
pub const STEP_DOWN_HOLD: Duration = Duration::from_secs(10);

impl Core {
    /// Whether this node runs the cluster's background work: always over a single-node
    /// backend; over a shared one, while it holds the leader lock.
    pub fn is_leader(&self) -> bool {
        self.coord.is_none() || self.leader.load(Ordering::SeqCst)
    }

    /// The addresses this node advertises to the others (`api_addr`, `cluster_addr`).
    pub fn set_advertise(&self, api_addr: &str, cluster_addr: &str) {
        if let Ok(mut n) = self.node.write() {
            n.api_addr = api_addr.to_string();
            n.cluster_addr = cluster_addr.to_string();
        }
    }

    fn me(&self) -> NodeInfo {
        self.node.read().map(|n| n.clone()).unwrap_or_default()
    }

    /// Starts the change-feed and election tasks when the storage is shared (no-op otherwise).
    /// Both hold weak references and end with the core.
    pub fn start_cluster(self: &Arc<Self>) {
        let Some(coord) = self.coord.clone() else {
            return;
        };
        // Keys no cache depends on are not announced: an engine's `uncached` prefixes and the
        // token store's indexes (only `sys/token/id/` is cached).
        let weak_quiet = Arc::downgrade(self);
        coord.set_quiet(Arc::new(move |key: &str| {
            let Some(core) = weak_quiet.upgrade() else {
                return false;
            };
            core.is_uncached(key)
        }));
        let mut feed = coord.clone().subscribe();
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let change = match feed.recv().await {
                    Ok(c) => c,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "change feed lagged; resynchronising");
                        Change::All
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                };
                let Some(core) = weak.upgrade() else { return };
                core.apply_change(change).await;
            }
        });
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                let Some(core) = weak.upgrade() else { return };
                core.election_round().await;
                drop(core);
                tokio::time::sleep(ELECTION_INTERVAL).await;
            }
        });
    }

    /// `sys/step-down`: gives up the leadership and stays out of the election for
    /// [`STEP_DOWN_HOLD`], so another node takes over. Nothing to do on a single node.
    pub async fn step_down(&self) {
        let Some(coord) = &self.coord else { return };
        self.hold_until
            .store(now_secs() + STEP_DOWN_HOLD.as_secs(), Ordering::SeqCst);
        if self.leader.swap(false, Ordering::SeqCst) {
            coord.step_down().await;
            tracing::info!("stepped down (sys/step-down)");
        }
    }

    /// Whether the caller may step this node down: root, or `sudo` + update on the path.
    pub(crate) async fn authorize_step_down(&self, meta: &crate::RequestMeta) -> CoreResult<()> {
        self.check_access(
            meta,
            "sys/step-down",
            crate::Operation::Update,
            true,
            &serde_json::Map::new(),
        )
        .await
    }

    async fn election_round(&self) {
        let Some(coord) = &self.coord else { return };
        if now_secs() < self.hold_until.load(Ordering::SeqCst) {
            return;
        }
        let was = self.leader.load(Ordering::SeqCst);
        if self.is_sealed() {
            if was {
                coord.step_down().await;
                self.leader.store(false, Ordering::SeqCst);
                tracing::info!("sealed: gave up the leadership");
            }
            return;
        }
        let me = self.me();
        let now = match coord.try_lead(&me).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "leader election failed; not leading");
                false
            }
        };
        if now && !was {
            self.leader_since.store(now_secs(), Ordering::SeqCst);
            tracing::info!(node = %me.node_id, "became the leader: running the cluster's background work");
        } else if was && !now {
            tracing::warn!(node = %me.node_id, "lost the leadership");
        }
        self.leader.store(now, Ordering::SeqCst);
    }

    fn is_uncached(&self, key: &str) -> bool {
        if key.starts_with("sys/token/parent/") || key.starts_with("sys/token/accessor/") {
            return true;
        }
        let table = self.mount_table();
        mount_of(&table, key).is_some_and(|(m, rel)| m.backend.uncached(rel))
    }

    /// Applies what another node wrote to this node's in-memory state.
    pub async fn apply_change(&self, change: Change) {
        if self.is_sealed() {
            return;
        }
        let keys = match change {
            // Notifications were lost: drop every cache and re-read the shared tables.
            Change::All => {
                self.tokens.invalidate_cache();
                self.policies.invalidate();
                self.reload_shared(true, true, true).await;
                for m in &self.mount_table().mounts {
                    m.backend.invalidate(None);
                }
                return;
            }
            Change::Keys(k) => k,
        };
        let mut mounts = false;
        let mut audit = false;
        let mut keyring = false;
        let table = self.mount_table();
        for key in &keys {
            if key == signet_storage::barrier::KEYRING_PATH {
                keyring = true;
            } else if key == Table::Secrets.storage_key() || key == Table::Auth.storage_key() {
                mounts = true;
            } else if let Some(h) = key.strip_prefix("sys/token/id/") {
                self.tokens.forget(h);
            } else if key.starts_with("sys/policy/") {
                self.policies.invalidate();
            } else if key.starts_with("sys/audit/") {
                audit = true;
            } else if let Some((m, rel)) = mount_of(&table, key) {
                m.backend.invalidate(Some(rel));
            }
        }
        self.reload_shared(keyring, mounts, audit).await;
    }

    /// Re-reads the shared records asked for: the keyring, the mount tables, the audit
    /// devices. Failures are logged (the next change or resync tries again).
    async fn reload_shared(&self, keyring: bool, mounts: bool, audit: bool) {
        if keyring {
            if let Err(e) = self.barrier.reload_keyring().await {
                tracing::warn!(error = %e, "reloading the keyring failed");
            }
        }
        if mounts {
            if let Err(e) = self.reload_mounts().await {
                tracing::warn!(error = %e, "reloading the mount tables failed");
            }
        }
        if audit {
            if let Err(e) = self
                .audit
                .setup(StorageView::new(self.barrier.clone(), "sys/audit/"))
                .await
            {
                tracing::warn!(error = %e, "reloading the audit devices failed");
            }
        }
    }

    /// The mount table to change, with the state lock already held: over a shared storage,
    /// under the cluster-wide `core/mounts` lock and re-read from storage (another node may
    /// have changed it a moment ago, its notification still in flight), so two nodes enabling
    /// mounts at once both keep theirs.
    pub(crate) async fn table_for_change(
        &self,
    ) -> CoreResult<(Arc<MountTable>, Option<signet_storage::LockGuard>)> {
        if self.coord.is_none() {
            return Ok((self.mount_table(), None));
        }
        let guard = signet_storage::Storage::lock(self.barrier.as_ref(), "core/mounts").await?;
        self.reload_mounts_locked().await?;
        Ok((self.mount_table(), Some(guard)))
    }

    /// Re-reads both mount tables, keeping the running engine of every mount whose identity
    /// (uuid, type, options) is unchanged, so its caches survive a tune elsewhere.
    pub(crate) async fn reload_mounts(&self) -> CoreResult<()> {
        let _guard = self.state_lock.lock().await;
        self.reload_mounts_locked().await
    }

    /// [`Core::reload_mounts`] with the state lock held by the caller.
    async fn reload_mounts_locked(&self) -> CoreResult<()> {
        if self.is_sealed() {
            return Ok(());
        }
        let current = self.mount_table();
        let view = StorageView::new(self.barrier.clone(), "");
        let mut next = MountTable::default();
        for t in [Table::Secrets, Table::Auth] {
            let entries: Vec<MountEntry> =
                view.get_json(t.storage_key()).await?.unwrap_or_default();
            for entry in entries {
                let same = current.mounts.iter().find(|m| {
                    m.table == t
                        && m.entry.uuid == entry.uuid
                        && m.entry.kind == entry.kind
                        && m.entry.options == entry.options
                });
                let backend = match same {
                    Some(m) => m.backend.clone(),
                    None => match self.instantiate(t, &entry) {
                        Ok(b) => b,
                        Err(e) => {
                            tracing::error!(path = %entry.path, kind = %entry.kind, error = %e,
                                "cannot start mount; it stays in the table but is not served");
                            continue;
                        }
                    },
                };
                next.mounts.push(Mounted {
                    table: t,
                    entry,
                    backend,
                });
            }
        }
        self.set_table(next);
        Ok(())
    }

    /// `sys/leader`, in Vault's shape.
    pub async fn leader_status(&self) -> Value {
        let Some(coord) = &self.coord else {
            return json!({"ha_enabled": false});
        };
        let nodes = coord.nodes().await.unwrap_or_default();
        let leader = nodes.iter().find(|n| n.leader_since.is_some());
        let is_self = self.is_leader();
        let since = if is_self {
            Some(self.leader_since.load(Ordering::SeqCst))
        } else {
            leader.and_then(|l| l.leader_since).map(|s| s.max(0) as u64)
        };
        json!({
            "ha_enabled": true,
            "is_self": is_self,
            "active_time": since.map(rfc3339).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
            "leader_address": leader.map(|l| l.api_addr.clone()).unwrap_or_default(),
            "leader_cluster_address": leader.map(|l| l.cluster_addr.clone()).unwrap_or_default(),
            "performance_standby": false,
            "performance_standby_last_remote_wal": 0,
        })
    }

    /// `sys/ha-status`: the nodes seen recently, the leader marked `active_node`.
    pub async fn ha_status(&self) -> CoreResult<Value> {
        let nodes = match &self.coord {
            Some(coord) => coord.nodes().await?,
            None => {
                let mut me = self.me();
                me.leader_since = Some(0);
                vec![me]
            }
        };
        let list: Vec<Value> = nodes
            .iter()
            .map(|n| {
                json!({
                    "hostname": n.hostname,
                    "node_id": n.node_id,
                    "api_address": n.api_addr,
                    "cluster_address": n.cluster_addr,
                    "active_node": n.leader_since.is_some(),
                    "last_echo": if n.last_seen > 0 { Value::from(rfc3339(n.last_seen as u64)) } else { Value::Null },
                    "version": if n.version.is_empty() { VERSION.to_string() } else { n.version.clone() },
                })
            })
            .collect();
        Ok(json!({ "nodes": list }))
    }
}

/// The mount whose data a physical key belongs to (`logical/<uuid>/...`, `auth/<uuid>/...`),
/// and the key relative to the mount's storage.
fn mount_of<'a, 'k>(table: &'a MountTable, key: &'k str) -> Option<(&'a Mounted, &'k str)> {
    let (t, rest) = key
        .strip_prefix("logical/")
        .map(|r| (Table::Secrets, r))
        .or_else(|| key.strip_prefix("auth/").map(|r| (Table::Auth, r)))?;
    let (uuid, rel) = rest.split_once('/')?;
    table
        .mounts
        .iter()
        .find(|m| m.table == t && m.entry.uuid == uuid)
        .map(|m| (m, rel))
}
