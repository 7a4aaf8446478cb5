//! signet's storage layer.
//!
//! * [`Storage`]: the one trait every backend implements — get, put, delete, list by prefix,
//!   paginated list, and an atomic batch of writes.
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

    /// The backend's name as `sys/seal-status` reports it (`inmem`, `sqlite`).
    fn kind(&self) -> &'static str;
}

/// Rejects keys Vault would not store: empty segments from `..` games are allowed as bytes,
/// but NUL bytes are not.
pub(crate) fn check_key(key: &str) -> Result<(), StorageError> {
    if key.contains('\0') {
        return Err(StorageError::InvalidKey("key contains a NUL byte".into()));
    }
    Ok(())
}
