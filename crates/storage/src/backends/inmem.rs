//! In-memory backend for dev mode and tests: a sorted map behind a lock. Not durable.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::RwLock;

use async_trait::async_trait;

use crate::listing::{list_children, prefix_upper_bound};
use crate::{check_key, Op, Storage, StorageError};

/// A `BTreeMap` behind a `RwLock`.
#[derive(Default)]
pub struct InmemStorage {
    map: RwLock<BTreeMap<String, Vec<u8>>>,
}

impl InmemStorage {
    pub fn new() -> Self {
        Self::default()
    }
}

fn poisoned() -> StorageError {
    StorageError::Backend("in-memory storage lock poisoned".into())
}

#[async_trait]
impl Storage for InmemStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        check_key(key)?;
        Ok(self.map.read().map_err(|_| poisoned())?.get(key).cloned())
    }

    async fn apply(&self, ops: Vec<Op>) -> Result<(), StorageError> {
        for op in &ops {
            check_key(op.key())?;
        }
        let mut map = self.map.write().map_err(|_| poisoned())?;
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    map.insert(k, v);
                }
                Op::Delete(k) => {
                    map.remove(&k);
                }
            }
        }
        Ok(())
    }

    async fn list_page(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        check_key(prefix)?;
        let map = self.map.read().map_err(|_| poisoned())?;
        let upper =
            prefix_upper_bound(prefix.as_bytes()).map(|u| String::from_utf8_lossy(&u).into_owned());
        list_children(prefix, after, limit, |start, inclusive, batch| {
            let lo = if inclusive {
                Bound::Included(start.to_string())
            } else {
                Bound::Excluded(start.to_string())
            };
            let hi = match &upper {
                Some(u) => Bound::Excluded(u.clone()),
                None => Bound::Unbounded,
            };
            Ok(map
                .range((lo, hi))
                .filter(|(k, _)| k.starts_with(prefix))
                .take(batch)
                .map(|(k, _)| k.clone())
                .collect())
        })
    }

    fn kind(&self) -> &'static str {
        "inmem"
    }
}
