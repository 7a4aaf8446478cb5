//! The PostgreSQL backend against a real PostgreSQL: the battery, the barrier over it, several
//! nodes on one table (change feed, leader election, named locks, concurrent schema creation)
//! and an unreachable database.
//!
//! The database: `SIGNET_TEST_PG_URL` when set (scripts/test.sh sets it), otherwise
//! `scripts/pg.sh ensure` starts a private cluster on loopback. Each test uses its own table.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use signet_storage::backends::postgres::{PostgresOptions, PostgresStorage};
use signet_storage::testkit::{pg_script, pg_url};
use signet_storage::{testkit, Barrier, Change, Coordination, NodeInfo, Storage, StorageError};

fn table(name: &str) -> String {
    let r = uuid::Uuid::new_v4().simple().to_string();
    format!("t_{name}_{}", &r[..8])
}

fn open(table: &str) -> Arc<PostgresStorage> {
    Arc::new(
        PostgresStorage::new(PostgresOptions {
            connection_url: pg_url(),
            table: table.to_string(),
            max_parallel: 16,
            ..Default::default()
        })
        .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_passes_battery() {
    testkit::battery(open(&table("battery"))).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn barrier_over_postgres_passes_battery() {
    testkit::barrier_battery(open(&table("barrier"))).await;
}

/// Nodes starting together on a new table all come up: the schema is created once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_starts_create_the_schema_once() {
    let t = table("race");
    let nodes: Vec<_> = (0..6).map(|_| open(&t)).collect();
    let mut tasks = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        let n = n.clone();
        tasks.push(tokio::spawn(async move {
            n.put(&format!("k{i}"), vec![i as u8]).await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(nodes[0].list("").await.unwrap().len(), 6);
}

/// What one node writes reaches the others' change feed (not its own); a node sharing a
/// rotated keyring reads entries written under the new term.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_reach_other_nodes_change_feed() {
    let t = table("feed");
    let a = open(&t);
    let b = open(&t);
    let mut feed_b = b.clone().coordination().unwrap().subscribe();
    let mut feed_a = a.clone().coordination().unwrap().subscribe();
    // Let both LISTEN sessions start; each begins with "everything changed" (what happened
    // before it listened is unknown).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(feed_b.try_recv().unwrap(), Change::All);
    assert_eq!(feed_a.try_recv().unwrap(), Change::All);
    a.apply(vec![
        signet_storage::Op::Put("sys/policy/p".into(), b"x".to_vec()),
        signet_storage::Op::Delete("sys/token/id/abc".into()),
    ])
    .await
    .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), feed_b.recv())
        .await
        .expect("notification within 5 s")
        .unwrap();
    assert_eq!(
        got,
        Change::Keys(vec!["sys/policy/p".into(), "sys/token/id/abc".into()])
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), feed_a.recv())
            .await
            .is_err(),
        "a node is not told about its own writes"
    );
    // A write no cache can hold yet (a new token) reaches nobody.
    a.apply_unannounced(vec![signet_storage::Op::Put(
        "sys/token/id/new".into(),
        b"x".to_vec(),
    )])
    .await
    .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), feed_b.recv())
            .await
            .is_err(),
        "an unannounced write was announced"
    );
    // A batch too large to list becomes "everything changed".
    let ops = (0..2000)
        .map(|i| signet_storage::Op::Put(format!("bulk/{i:05}-with-a-longish-name"), vec![1]))
        .collect();
    a.apply(ops).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(5), feed_b.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, Change::All);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyring_rotation_on_one_node_is_read_by_another() {
    let t = table("rotate");
    let a = Arc::new(Barrier::new(open(&t)));
    let b = Arc::new(Barrier::new(open(&t)));
    let key = a.generate_key().unwrap();
    a.initialize(&key).await.unwrap();
    a.unseal(&key).await.unwrap();
    b.unseal(&key).await.unwrap();
    a.rotate().await.unwrap();
    a.put("logical/x/after-rotate", b"new term".to_vec())
        .await
        .unwrap();
    // b has never heard of the new term: it reloads the keyring on demand.
    assert_eq!(
        b.get("logical/x/after-rotate").await.unwrap(),
        Some(b"new term".to_vec())
    );
}

/// Exactly one node leads; when it steps down (or dies: its session ends), another takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leader_at_a_time() {
    let t = table("lead");
    let nodes: Vec<Arc<dyn Coordination>> =
        (0..3).map(|_| open(&t).coordination().unwrap()).collect();
    let info = |n: &Arc<dyn Coordination>, i: usize| NodeInfo {
        node_id: n.node_id().to_string(),
        api_addr: format!("http://127.0.0.1:{}", 8200 + i),
        ..Default::default()
    };
    let mut leaders = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        if n.try_lead(&info(n, i)).await.unwrap() {
            leaders.push(i);
        }
    }
    assert_eq!(leaders, vec![0]);
    // The leader confirms; the others still cannot.
    assert!(nodes[0].try_lead(&info(&nodes[0], 0)).await.unwrap());
    assert!(!nodes[1].try_lead(&info(&nodes[1], 1)).await.unwrap());
    for (i, n) in nodes.iter().enumerate().skip(1) {
        n.heartbeat(&info(n, i)).await.unwrap();
    }
    let seen = nodes[2].nodes().await.unwrap();
    assert_eq!(seen.len(), 3);
    let leader: Vec<_> = seen.iter().filter(|n| n.leader_since.is_some()).collect();
    assert_eq!(leader.len(), 1);
    assert_eq!(leader[0].node_id, nodes[0].node_id());

    nodes[0].step_down().await;
    // PostgreSQL releases the lock when the session ends.
    let mut took = None;
    for _ in 0..50 {
        if nodes[1].try_lead(&info(&nodes[1], 1)).await.unwrap() {
            took = Some(1);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(took, Some(1));
    let seen = nodes[0].nodes().await.unwrap();
    let leader: Vec<_> = seen.iter().filter(|n| n.leader_since.is_some()).collect();
    assert_eq!(leader.len(), 1);
    assert_eq!(leader[0].node_id, nodes[1].node_id());
}

/// A named lock excludes holders on other nodes until the guard drops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_locks_exclude_across_nodes() {
    let t = table("lock");
    let a = open(&t);
    let b = open(&t);
    let guard = a.lock("crl/issuer-1").await.unwrap();
    let b2 = b.clone();
    let waiter = tokio::spawn(async move {
        let _g = b2.lock("crl/issuer-1").await.unwrap();
        std::time::Instant::now()
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!waiter.is_finished(), "the second node waits for the lock");
    // Another name is independent.
    let _other = b.lock("crl/issuer-2").await.unwrap();
    let released = std::time::Instant::now();
    drop(guard);
    let acquired = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert!(acquired >= released);
}

/// A lock held too long by another node fails the wait after `lock_timeout` as
/// "unavailable" (a 503 upstream), rather than hanging the request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_too_long_fails_the_wait() {
    let t = table("locktimeout");
    let a = open(&t);
    let b = PostgresStorage::new(PostgresOptions {
        connection_url: pg_url(),
        table: t.clone(),
        lock_timeout: Duration::from_millis(700),
        ..Default::default()
    })
    .unwrap();
    let _held = a.lock("busy").await.unwrap();
    let e = b.lock("busy").await.err().expect("the wait must fail");
    assert!(matches!(e, StorageError::Unavailable(_)), "{e:?}");
}

/// An unreachable database is "unavailable" (a 503 upstream), promptly, not a hang or a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_database_is_unavailable() {
    let s = PostgresStorage::new(PostgresOptions {
        connection_url: "postgres://signet@127.0.0.1:1/postgres?sslmode=disable".into(),
        ..Default::default()
    })
    .unwrap();
    let started = std::time::Instant::now();
    let e = s.get("a").await.unwrap_err();
    assert!(matches!(e, StorageError::Unavailable(_)), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(12));
    let e = s.put("a", vec![1]).await.unwrap_err();
    assert!(matches!(e, StorageError::Unavailable(_)), "{e:?}");
}

/// A folder next to a large sibling lists in one walk, and paging through the large one is
/// exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_skips_large_folders() {
    let s = open(&table("big"));
    for chunk in 0..20 {
        let ops = (0..1000)
            .map(|i| signet_storage::Op::Put(format!("certs/{:06}", chunk * 1000 + i), vec![0]))
            .collect();
        s.apply(ops).await.unwrap();
    }
    s.put("config/urls", vec![1]).await.unwrap();
    s.put("crl/epoch", vec![1]).await.unwrap();
    s.put("certs-by-name/a/1", vec![1]).await.unwrap();
    assert_eq!(
        s.list("").await.unwrap(),
        vec!["certs-by-name/", "certs/", "config/", "crl/"]
    );
    let page = s.list_page("certs/", "019990", 100).await.unwrap();
    assert_eq!(page.len(), 9);
    assert_eq!(page[0], "019991");
    assert_eq!(s.list("certs/").await.unwrap().len(), 20_000);
}

fn pg_ca() -> String {
    if let Ok(ca) = std::env::var("SIGNET_TEST_PG_CA") {
        return ca;
    }
    let out = std::process::Command::new("bash")
        .args([pg_script(), "ca"])
        .output()
        .expect("run scripts/pg.sh ca");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The URL of the `signet_tls` role, which scripts/pg.sh's pg_hba admits over TLS only.
fn tls_url(query: &str) -> String {
    let base = pg_url();
    let (head, _) = base.split_once('?').unwrap_or((&base, ""));
    format!(
        "{}?{query}",
        head.replacen("://signet@", "://signet_tls@", 1)
    )
}

async fn roundtrip(url: String, ca: Option<std::path::PathBuf>) -> Result<(), StorageError> {
    let s = PostgresStorage::new(PostgresOptions {
        connection_url: url,
        table: table("tls"),
        tls_ca_file: ca,
        ..Default::default()
    })?;
    s.put("tls/k", b"over tls".to_vec()).await?;
    assert_eq!(s.get("tls/k").await?, Some(b"over tls".to_vec()));
    Ok(())
}

/// TLS to the database: verified against the CA (in the URL or in `tls_ca_file`), encrypted
/// without verification (`sslmode=require`, libpq's meaning), refused with the wrong CA; the
/// role used is admitted over TLS only, so a success proves the connection was encrypted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_to_the_database() {
    let ca = pg_ca();
    assert!(
        std::path::Path::new(&ca).exists(),
        "no CA file at {ca}: scripts/pg.sh makes one (or set SIGNET_TEST_PG_CA)"
    );
    roundtrip(
        tls_url(&format!("sslmode=verify-full&sslrootcert={ca}")),
        None,
    )
    .await
    .unwrap();
    roundtrip(tls_url("sslmode=require"), Some(ca.clone().into()))
        .await
        .unwrap();
    roundtrip(tls_url("sslmode=require"), None).await.unwrap();
    // Without TLS the role is refused by the server.
    assert!(roundtrip(tls_url("sslmode=disable"), None).await.is_err());
    // A CA that did not sign the server's certificate: the handshake fails.
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-days",
            "1",
            "-subj",
            "/CN=not the database's CA",
            "-keyout",
        ])
        .arg(dir.path().join("k.pem"))
        .arg("-out")
        .arg(&other)
        .output()
        .unwrap();
    assert!(made.status.success());
    let e = roundtrip(
        tls_url(&format!(
            "sslmode=verify-full&sslrootcert={}",
            other.display()
        )),
        None,
    )
    .await
    .unwrap_err();
    assert!(matches!(e, StorageError::Unavailable(_)), "{e:?}");
    // verify-full without any CA is a configuration error, caught before connecting.
    assert!(PostgresStorage::new(PostgresOptions {
        connection_url: tls_url("sslmode=verify-full"),
        ..Default::default()
    })
    .is_err());
}

/// A table left at an older schema version by an older signet is brought forward on first use,
/// keeping its data; a table newer than this binary is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_schema_is_migrated_and_newer_is_refused() {
    let t = table("mig");
    let s = open(&t);
    s.put("kept", b"v".to_vec()).await.unwrap();
    let (db, conn) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    // Back to version 2: the hostname column did not exist.
    db.batch_execute(&format!(
        "ALTER TABLE {t}_nodes DROP COLUMN hostname;
         UPDATE signet_schema SET version = 2 WHERE table_name = '{t}'"
    ))
    .await
    .unwrap();
    let again = open(&t);
    assert_eq!(again.get("kept").await.unwrap(), Some(b"v".to_vec()));
    let version: i32 = db
        .query_one(
            "SELECT version FROM signet_schema WHERE table_name = $1",
            &[&t],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(version, 3);
    let coord = again.clone().coordination().unwrap();
    let me = NodeInfo {
        node_id: coord.node_id().to_string(),
        hostname: "host-a".into(),
        ..Default::default()
    };
    coord.heartbeat(&me).await.unwrap();
    assert_eq!(coord.nodes().await.unwrap()[0].hostname, "host-a");
    // From a newer signet: refused, with the reason.
    db.execute(
        "UPDATE signet_schema SET version = 99 WHERE table_name = $1",
        &[&t],
    )
    .await
    .unwrap();
    let e = open(&t).get("kept").await.unwrap_err();
    assert!(e.to_string().contains("newer than this signet"), "{e}");
}
