//! The battery every backend must pass. Call [`battery`] with a fresh, empty store.
//!
//! It panics (via `assert!`) on the first behaviour that differs from the contract in
//! [`crate::Storage`]; it is used from tests only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use crate::{Op, Storage};

/// The PostgreSQL the tests use: `SIGNET_TEST_PG_URL` when set (scripts/test.sh sets it),
/// otherwise the private cluster `scripts/pg.sh ensure` starts on loopback.
pub fn pg_url() -> String {
    if let Ok(u) = std::env::var("SIGNET_TEST_PG_URL") {
        return u;
    }
    let out = std::process::Command::new("bash")
        .args([pg_script(), "ensure"])
        .output()
        .expect("run scripts/pg.sh");
    assert!(
        out.status.success(),
        "scripts/pg.sh could not start PostgreSQL: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `scripts/pg.sh` of this repository.
pub fn pg_script() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/pg.sh")
}

/// Runs the battery through a barrier over `physical` (initialised and unsealed here), in a
/// view away from the keyring entry.
pub async fn barrier_battery(physical: Arc<dyn Storage>) {
    let barrier = Arc::new(crate::Barrier::new(physical));
    let key = barrier.generate_key().unwrap();
    barrier.initialize(&key).await.unwrap();
    barrier.unseal(&key).await.unwrap();
    battery(Arc::new(crate::StorageView::new(barrier, "logical/test/"))).await;
}

/// Runs every check against `s`, which must start empty.
pub async fn battery(s: Arc<dyn Storage>) {
    basic_crud(s.as_ref()).await;
    listing(s.as_ref()).await;
    pagination(s.as_ref()).await;
    atomic_batches(s.as_ref()).await;
    odd_keys_and_values(s.as_ref()).await;
    concurrent_writers(s.clone()).await;
}

async fn basic_crud(s: &dyn Storage) {
    assert_eq!(s.get("crud/missing").await.unwrap(), None);
    s.put("crud/a", b"one".to_vec()).await.unwrap();
    assert_eq!(s.get("crud/a").await.unwrap(), Some(b"one".to_vec()));
    s.put("crud/a", b"two".to_vec()).await.unwrap();
    assert_eq!(s.get("crud/a").await.unwrap(), Some(b"two".to_vec()));
    s.delete("crud/a").await.unwrap();
    assert_eq!(s.get("crud/a").await.unwrap(), None);
    s.delete("crud/a").await.unwrap();
    s.delete("crud/never-existed").await.unwrap();
    s.put("crud/m1", b"1".to_vec()).await.unwrap();
    s.put("crud/m2", b"2".to_vec()).await.unwrap();
    let many = s
        .get_many(&[
            "crud/m2".into(),
            "crud/none".into(),
            "crud/m1".into(),
            "crud/m2".into(),
        ])
        .await
        .unwrap();
    assert_eq!(
        many,
        vec![
            Some(b"2".to_vec()),
            None,
            Some(b"1".to_vec()),
            Some(b"2".to_vec())
        ]
    );
    assert!(s.get_many(&[]).await.unwrap().is_empty());
}

async fn listing(s: &dyn Storage) {
    for k in [
        "ls/b",
        "ls/a",
        "ls/dir/x",
        "ls/dir/y/z",
        "ls/dir0",
        "ls/c/",
        "lsx/other",
    ] {
        s.put(k, b"v".to_vec()).await.unwrap();
    }
    assert_eq!(
        s.list("ls/").await.unwrap(),
        vec!["a", "b", "c/", "dir/", "dir0"]
    );
    assert_eq!(s.list("ls/dir/").await.unwrap(), vec!["x", "y/"]);
    assert_eq!(s.list("ls/nothing/").await.unwrap(), Vec::<String>::new());
    let root = s.list("").await.unwrap();
    assert!(root.contains(&"ls/".to_string()));
    assert!(root.contains(&"lsx/".to_string()));
    // A folder disappears when its last entry does.
    s.delete("ls/dir/y/z").await.unwrap();
    assert_eq!(s.list("ls/dir/").await.unwrap(), vec!["x"]);
}

async fn pagination(s: &dyn Storage) {
    let ops: Vec<Op> = (0..1000)
        .map(|i| Op::Put(format!("page/k{i:04}"), vec![1]))
        .chain((0..5).map(|i| Op::Put(format!("page/sub{i}/leaf"), vec![1])))
        .collect();
    s.apply(ops).await.unwrap();
    let all = s.list("page/").await.unwrap();
    assert_eq!(all.len(), 1005);
    let first = s.list_page("page/", "", 10).await.unwrap();
    assert_eq!(first, all[..10].to_vec());
    let next = s.list_page("page/", "k0009", 3).await.unwrap();
    assert_eq!(next, vec!["k0010", "k0011", "k0012"]);
    let after_folder = s.list_page("page/", "sub1/", 10).await.unwrap();
    assert_eq!(after_folder, vec!["sub2/", "sub3/", "sub4/"]);
    let mut walked = Vec::new();
    let mut after = String::new();
    loop {
        let page = s.list_page("page/", &after, 97).await.unwrap();
        if page.is_empty() {
            break;
        }
        after = page.last().unwrap().clone();
        walked.extend(page);
    }
    assert_eq!(walked, all);
}

async fn atomic_batches(s: &dyn Storage) {
    s.put("tx/keep", b"1".to_vec()).await.unwrap();
    s.apply(vec![
        Op::Put("tx/a".into(), b"a".to_vec()),
        Op::Put("tx/b".into(), b"b".to_vec()),
        Op::Delete("tx/keep".into()),
    ])
    .await
    .unwrap();
    assert_eq!(s.get("tx/a").await.unwrap(), Some(b"a".to_vec()));
    assert_eq!(s.get("tx/b").await.unwrap(), Some(b"b".to_vec()));
    assert_eq!(s.get("tx/keep").await.unwrap(), None);
    // A batch with an invalid key writes nothing.
    let bad = s
        .apply(vec![
            Op::Put("tx/c".into(), b"c".to_vec()),
            Op::Put("tx/\0bad".into(), b"x".to_vec()),
        ])
        .await;
    assert!(bad.is_err());
    assert_eq!(s.get("tx/c").await.unwrap(), None);
}

async fn odd_keys_and_values(s: &dyn Storage) {
    let keys = [
        "odd/with space",
        "odd/colon:ab:cd",
        "odd/ünïcödé",
        "odd/%41",
        "odd/..",
    ];
    for k in keys {
        s.put(k, k.as_bytes().to_vec()).await.unwrap();
        assert_eq!(s.get(k).await.unwrap(), Some(k.as_bytes().to_vec()));
    }
    s.put("odd/empty", Vec::new()).await.unwrap();
    assert_eq!(s.get("odd/empty").await.unwrap(), Some(Vec::new()));
    let big: Vec<u8> = (0..(1 << 20)).map(|i| (i % 251) as u8).collect();
    s.put("odd/big", big.clone()).await.unwrap();
    assert_eq!(s.get("odd/big").await.unwrap(), Some(big));
    assert!(s.get("odd/\0").await.is_err());
}

async fn concurrent_writers(s: Arc<dyn Storage>) {
    let mut tasks = Vec::new();
    for i in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..10 {
                s.put(&format!("conc/{i}-{j}"), vec![i as u8, j as u8])
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.list("conc/").await.unwrap().len(), 640);
    assert_eq!(s.get("conc/63-9").await.unwrap(), Some(vec![63, 9]));
}
