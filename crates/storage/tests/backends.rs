//! The storage battery against every backend, plus durability and barrier properties.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use signet_storage::backends::{inmem::InmemStorage, sqlite::SqliteStorage};
use signet_storage::{testkit, Barrier, Storage, StorageError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inmem_passes_battery() {
    testkit::battery(Arc::new(InmemStorage::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_passes_battery() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStorage::open(dir.path().join("s.db")).unwrap();
    testkit::battery(Arc::new(s)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_over_sqlite_passes_battery() {
    let dir = tempfile::tempdir().unwrap();
    testkit::barrier_battery(Arc::new(
        SqliteStorage::open(dir.path().join("b.db")).unwrap(),
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_is_durable_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    {
        let s = SqliteStorage::open(&path).unwrap();
        s.put("a/b", b"persisted".to_vec()).await.unwrap();
    }
    let s = SqliteStorage::open(&path).unwrap();
    assert_eq!(s.get("a/b").await.unwrap(), Some(b"persisted".to_vec()));
}

/// A file made by schema 1 (a WITHOUT ROWID table) is migrated in place on open: every entry
/// is kept, listings still work, and the table is a rowid table afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_schema_1_file_is_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v1.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE kv (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;",
        )
        .unwrap();
        for i in 0..50 {
            c.execute(
                "INSERT INTO kv (key, value) VALUES (?1, ?2)",
                rusqlite::params![format!("certs/{i:03}").into_bytes(), vec![i as u8; 3000]],
            )
            .unwrap();
        }
    }
    let s = SqliteStorage::open(&path).unwrap();
    assert_eq!(s.get("certs/007").await.unwrap(), Some(vec![7u8; 3000]));
    assert_eq!(s.list("certs/").await.unwrap().len(), 50);
    s.put("certs/new", b"x".to_vec()).await.unwrap();
    drop(s);
    let c = rusqlite::Connection::open(&path).unwrap();
    let sql: String = c
        .query_row("SELECT sql FROM sqlite_master WHERE name = 'kv'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert!(!sql.to_uppercase().contains("WITHOUT ROWID"), "{sql}");
    let n: i64 = c
        .query_row("SELECT count(*) FROM kv", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 51);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_encrypts_binds_keys_and_rotates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.db");
    let phys: Arc<dyn Storage> = Arc::new(SqliteStorage::open(&path).unwrap());
    let barrier = Barrier::new(phys.clone());
    let key = barrier.generate_key().unwrap();
    barrier.initialize(&key).await.unwrap();

    // Sealed: nothing passes.
    assert!(matches!(barrier.get("x").await, Err(StorageError::Sealed)));
    assert!(matches!(
        barrier.put("x", b"y".to_vec()).await,
        Err(StorageError::Sealed)
    ));

    // A wrong key does not unseal.
    let wrong = barrier.generate_key().unwrap();
    assert!(barrier.unseal(&wrong).await.is_err());
    assert!(barrier.is_sealed());

    barrier.unseal(&key).await.unwrap();
    let secret = b"TOP-SECRET-VALUE-0123456789".to_vec();
    barrier.put("logical/m/one", secret.clone()).await.unwrap();
    let raw = phys.get("logical/m/one").await.unwrap().unwrap();
    assert!(!raw.windows(secret.len()).any(|w| w == secret.as_slice()));

    // A ciphertext moved to another key does not decrypt (the key is associated data).
    phys.put("logical/m/two", raw.clone()).await.unwrap();
    assert!(matches!(
        barrier.get("logical/m/two").await,
        Err(StorageError::Corrupt(_))
    ));

    // Rotation: new writes use term 2, old entries still read.
    let status = barrier.rotate().await.unwrap();
    assert_eq!(status.term, 2);
    barrier
        .put("logical/m/three", b"after".to_vec())
        .await
        .unwrap();
    let raw3 = phys.get("logical/m/three").await.unwrap().unwrap();
    assert_eq!(&raw3[1..5], &2u32.to_be_bytes());
    assert_eq!(
        barrier.get("logical/m/one").await.unwrap(),
        Some(secret.clone())
    );

    // After sealing and unsealing again, both terms still work.
    barrier.seal();
    barrier.unseal(&key).await.unwrap();
    assert_eq!(
        barrier.get("logical/m/one").await.unwrap(),
        Some(secret.clone())
    );
    assert_eq!(
        barrier.get("logical/m/three").await.unwrap(),
        Some(b"after".to_vec())
    );

    // Nothing on disk carries the plaintext.
    drop(barrier);
    drop(phys);
    for name in ["e.db", "e.db-wal"] {
        if let Ok(bytes) = std::fs::read(dir.path().join(name)) {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_slice()),
                "{name} holds the plaintext"
            );
        }
    }
}
