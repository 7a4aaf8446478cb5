//! A storage view confined to one prefix: each mount gets `logical/<uuid>/` and cannot name a
//! key outside it.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{Op, Storage, StorageError};

/// A prefix-confined view over another storage.
#[derive(Clone)]
pub struct StorageView {
    inner: Arc<dyn Storage>,
    prefix: String,
}

impl StorageView {
    /// A view of `inner` under `prefix` (which should end with `/`).
    pub fn new(inner: Arc<dyn Storage>, prefix: impl Into<String>) -> Self {
        StorageView {
            inner,
            prefix: prefix.into(),
        }
    }

    /// A view nested inside this one.
    pub fn sub(&self, prefix: &str) -> StorageView {
        StorageView {
            inner: self.inner.clone(),
            prefix: format!("{}{}", self.prefix, prefix),
        }
    }

    /// The absolute prefix of this view.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn full_ops(&self, ops: Vec<Op>) -> Vec<Op> {
        ops.into_iter()
            .map(|op| match op {
                Op::Put(k, v) => Op::Put(self.full(&k), v),
                Op::Delete(k) => Op::Delete(self.full(&k)),
            })
            .collect()
    }

    fn full(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    /// Reads and JSON-decodes an entry.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StorageError> {
        match self.get(key).await? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StorageError::Corrupt(format!("{key}: {e}"))),
        }
    }

    /// JSON-encodes and writes an entry.
    pub async fn put_json<T: serde::Serialize>(
        &self,
        key: &str,
        value: &T,
    ) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(value).map_err(|e| StorageError::Corrupt(e.to_string()))?;
        self.put(key, bytes).await
    }

    /// Deletes every key under this view (used when a mount is disabled).
    pub async fn clear(&self) -> Result<(), StorageError> {
        let mut stack = vec![String::new()];
        while let Some(dir) = stack.pop() {
            let mut after = String::new();
            loop {
                let page = self.list_page(&dir, &after, 1000).await?;
                if page.is_empty() {
                    break;
                }
                let mut ops = Vec::new();
                for child in &page {
                    if child.ends_with('/') {
                        stack.push(format!("{dir}{child}"));
                    } else {
                        ops.push(Op::Delete(format!("{dir}{child}")));
                    }
                }
                if let Some(last) = page.last() {
                    after = last.clone();
                }
                if !ops.is_empty() {
                    self.apply(ops).await?;
                }
            }
        }
        Ok(())
    }

    /// Every leaf key under this view, for copying a mount's data.
    pub async fn walk(&self) -> Result<Vec<String>, StorageError> {
        let mut out = Vec::new();
        let mut stack = vec![String::new()];
        while let Some(dir) = stack.pop() {
            for child in self.list(&dir).await? {
                if child.ends_with('/') {
                    stack.push(format!("{dir}{child}"));
                } else {
                    out.push(format!("{dir}{child}"));
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl Storage for StorageView {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        self.inner.get(&self.full(key)).await
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        let full: Vec<String> = keys.iter().map(|k| self.full(k)).collect();
        self.inner.get_many(&full).await
    }

    async fn apply(&self, ops: Vec<Op>) -> Result<(), StorageError> {
        self.inner.apply(self.full_ops(ops)).await
    }

    async fn apply_unannounced(&self, ops: Vec<Op>) -> Result<(), StorageError> {
        self.inner.apply_unannounced(self.full_ops(ops)).await
    }

    async fn list_page(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        self.inner.list_page(&self.full(prefix), after, limit).await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }

    async fn lock(&self, name: &str) -> Result<crate::LockGuard, StorageError> {
        self.inner.lock(&self.full(name)).await
    }
}
