//! A read that started before an invalidation must not put what it read into the cache: the
//! token another node revoked would otherwise stay valid here until the next change.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use signet_core::{TokenEntry, TokenStore};
use signet_storage::backends::inmem::InmemStorage;
use signet_storage::{Op, Storage, StorageError, StorageView};

/// In-memory storage whose reads of token entries can be held at a gate.
struct Gated {
    inner: InmemStorage,
    hold: AtomicBool,
    arrived: tokio::sync::Notify,
    release: tokio::sync::Notify,
    reads: AtomicUsize,
}

#[async_trait]
impl Storage for Gated {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        if key.contains("/id/") {
            self.reads.fetch_add(1, Ordering::SeqCst);
            let value = self.inner.get(key).await;
            if self.hold.swap(false, Ordering::SeqCst) {
                self.arrived.notify_one();
                self.release.notified().await;
            }
            return value;
        }
        self.inner.get(key).await
    }
    async fn apply(&self, ops: Vec<Op>) -> Result<(), StorageError> {
        self.inner.apply(ops).await
    }
    async fn list_page(&self, p: &str, a: &str, l: usize) -> Result<Vec<String>, StorageError> {
        self.inner.list_page(p, a, l).await
    }
    fn kind(&self) -> &'static str {
        "gated"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalidation_during_a_read_keeps_the_read_out_of_the_cache() {
    let storage = Arc::new(Gated {
        inner: InmemStorage::new(),
        hold: AtomicBool::new(false),
        arrived: tokio::sync::Notify::new(),
        release: tokio::sync::Notify::new(),
        reads: AtomicUsize::new(0),
    });
    let store = Arc::new(TokenStore::new());
    store
        .setup(StorageView::new(storage.clone(), "sys/token/"))
        .await
        .unwrap();
    let entry = TokenEntry {
        policies: vec!["default".into()],
        ..Default::default()
    };
    let (token, _) = store.create(None, entry).await.unwrap();
    let hash = store.hash(token.expose_secret()).unwrap();
    store.invalidate_cache();

    // A lookup reads the entry and is held before it can cache it; meanwhile "another node"
    // revokes the token (here: the entry is deleted behind the store's back, and the change
    // feed's invalidation arrives).
    storage.hold.store(true, Ordering::SeqCst);
    let s2 = store.clone();
    let h2 = hash.clone();
    let lookup = tokio::spawn(async move { s2.lookup_hash(&h2).await });
    storage.arrived.notified().await;
    storage
        .inner
        .delete(&format!("sys/token/id/{hash}"))
        .await
        .unwrap();
    store.forget(&hash);
    storage.release.notify_one();
    // The held lookup answers with what it read (it started before the revocation)...
    assert!(lookup.await.unwrap().unwrap().is_some());
    // ...but did not cache it: the next lookup reads storage and finds the token gone.
    let before = storage.reads.load(Ordering::SeqCst);
    assert!(store.lookup_hash(&hash).await.unwrap().is_none());
    assert_eq!(storage.reads.load(Ordering::SeqCst), before + 1);
}
