//! signet's storage layer.
//!
//! * [`Storage`]: the one trait every backend implements — get (one or many), put, delete,
//!   list by prefix, paginated list, and an atomic batch of writes.
//! * Backends: [`backends::inmem`] (tests and dev mode) and [`backends::sqlite`] (the embedded
//!   default: WAL, synchronous commits, group commit of concurrent writers).
//! * [`barrier::Barrier`]: the encryption layer every engine writes through (AES-256-GCM, the
//!   storage key as associated data, a rotating keyring).
//! * [`view::StorageView`]: a prefix-confined view, one per mount, so an engine cannot reach
//!   another's keys.
//! * [`testkit`]: the battery of behaviours every backend must pass.
//!
//! Keys are `/`-separated UTF-8 paths. Listing returns the immediate children of a prefix, with
//! a trailing `/` on "folders", sorted bytewise — Vault's semantics. This layer never logs
//! values.

pub mod backends;
pub mod barrier;
mod listing;
pub mod testkit;
pub mod view;

use std::sync::Arc;

use async_trait::async_trait;

pub use barrier::{Barrier, BarrierError};
pub use view::StorageView;

/// What went wrong in storage. Never carries a stored value.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The barrier is sealed: nothing can be read or written.
    #[error("Vault is sealed")]
    Sealed,
    /// The backend failed (I/O, database error). The text is for operators' logs.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The backend cannot be reached right now (database down, restarting, connection lost):
    /// the request may succeed if retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decrypted or decoded.
    #[error("stored entry is corrupt: {0}")]
    Corrupt(String),
    /// The key is not a valid storage key.
    #[error("invalid storage key: {0}")]
    InvalidKey(String),
}

/// One write of an atomic batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put(String, Vec<u8>),
    Delete(String),
}

impl Op {
    /// The key this operation writes.
    pub fn key(&self) -> &str {
        match self {
            Op::Put(k, _) | Op::Delete(k) => k,
        }
    }
}

/// A key/value store with Vault's listing semantics. Every method is durable when it returns
/// `Ok` (for durable backends).
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// Reads one entry.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError>;

    /// Reads several entries, in the order asked (one round trip on a networked backend).
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(k).await?);
        }
        Ok(out)
    }

    /// Writes one entry.
    async fn put(&self, key: &str, value: Vec<u8>) -> Result<(), StorageError> {
        self.apply(vec![Op::Put(key.to_string(), value)]).await
    }

    /// Deletes one entry; deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.apply(vec![Op::Delete(key.to_string())]).await
    }

    /// Applies every operation or none.
    async fn apply(&self, ops: Vec<Op>) -> Result<(), StorageError>;

    /// Like [`Storage::apply`], without telling other nodes: for writes no node can have
    /// cached yet (a brand-new token). Single-node backends have no one to tell.
    async fn apply_unannounced(&self, ops: Vec<Op>) -> Result<(), StorageError> {
        self.apply(ops).await
    }

    /// Immediate children of `prefix`, folders with a trailing `/`, sorted.
    async fn list(&self, prefix: &str) -> Result<Vec<String>, StorageError> {
        self.list_page(prefix, "", usize::MAX).await
    }

    /// Like [`Storage::list`], starting strictly after the child `after` and returning at most
    /// `limit` children.
    async fn list_page(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StorageError>;

    /// The backend's name as `sys/seal-status` reports it (`inmem`, `sqlite`, `postgresql`).
    fn kind(&self) -> &'static str;

    /// Takes the lock `name`, shared by every node of the cluster, until the guard drops. A
    /// single-process backend has nothing to coordinate and returns at once: callers hold
    /// their own in-process lock as well.
    async fn lock(&self, _name: &str) -> Result<LockGuard, StorageError> {
        Ok(LockGuard::new(()))
    }

    /// The cluster services of a backend shared by several nodes (`None`: one node).
    fn coordination(self: Arc<Self>) -> Option<Arc<dyn Coordination>> {
        None
    }
}

/// Holds a cluster-wide lock from [`Storage::lock`]; dropping it releases the lock.
pub struct LockGuard(#[allow(dead_code)] Box<dyn Send + Sync>);

impl LockGuard {
    /// Wraps whatever keeps the lock held.
    pub fn new<T: Send + Sync + 'static>(holder: T) -> Self {
        Self(Box::new(holder))
    }
}

/// What other nodes wrote, from [`Coordination::subscribe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// These physical keys changed.
    Keys(Vec<String>),
    /// Unknown changes (notifications were lost, or too many to list): drop every cache.
    All,
}

/// One node of a cluster, as `sys/ha-status` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeInfo {
    pub node_id: String,
    pub api_addr: String,
    pub cluster_addr: String,
    pub version: String,
    /// Unix seconds of the last heartbeat.
    pub last_seen: i64,
    /// Unix seconds since which it has been the leader, if it is.
    pub leader_since: Option<i64>,
    /// The machine's host name.
    pub hostname: String,
}

/// The services several nodes over one shared backend need: a feed of other nodes' writes,
/// leader election and a registry of live nodes.
#[async_trait]
pub trait Coordination: Send + Sync + 'static {
    /// This process's id in the cluster.
    fn node_id(&self) -> &str;

    /// Other nodes' writes, from now on (starts the feed on first call).
    fn subscribe(self: Arc<Self>) -> tokio::sync::broadcast::Receiver<Change>;

    /// Becomes or stays the leader if no other node is; `Ok(true)` while this node leads.
    async fn try_lead(&self, me: &NodeInfo) -> Result<bool, StorageError>;

    /// Gives up the leadership (sealing, shutting down).
    async fn step_down(&self);

    /// Records that this node is alive and not leading ([`Coordination::try_lead`] records
    /// the nodes that call it, leading or not).
    async fn heartbeat(&self, me: &NodeInfo) -> Result<(), StorageError>;

    /// The nodes seen recently, oldest first.
    async fn nodes(&self) -> Result<Vec<NodeInfo>, StorageError>;

    /// Tells the change feed which keys no node caches (`quiet(key)` is true): writes of only
    /// such keys notify nobody. Certificate inventories are most of the writes and no cache
    /// depends on them.
    fn set_quiet(&self, quiet: QuietKeys);
}

/// See [`Coordination::set_quiet`].
pub type QuietKeys = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Rejects keys Vault would not store: empty segments from `..` games are allowed as bytes,
/// but NUL bytes are not.
pub(crate) fn check_key(key: &str) -> Result<(), StorageError> {
    if key.contains('\0') {
        return Err(StorageError::InvalidKey("key contains a NUL byte".into()));
    }
    Ok(())
}
