//! The PostgreSQL backend: several signet nodes over one database, every node active.
//!
//! * **Table**: `key bytea PRIMARY KEY, value bytea` (name from `table`, default `signet_kv`).
//!   Keys are compared as bytes, which is the order Vault's listing needs; the primary-key
//!   B-tree serves point reads, prefix ranges and the skip-scan below. Values are barrier
//!   ciphertext and do not compress, so the column is `STORAGE EXTERNAL` (no futile TOAST
//!   compression attempts).
//! * **Writes**: one statement per batch — a `DELETE` and an `INSERT .. ON CONFLICT` as
//!   data-modifying CTEs plus a `pg_notify` — so a batch is atomic without an explicit
//!   transaction and costs one round trip. PostgreSQL's own group commit covers concurrent
//!   writers.
//! * **Listing**: a flat folder (the inventory, the indexes) is read with plain range scans,
//!   1,000 keys in the first round trip and up to 16,000 in later ones; when a scan shows sub-folders, a recursive CTE walks the
//!   children inside the server instead, jumping past each sub-folder with one index seek, so
//!   `LIST` of a folder beside a million-entry sibling is one round trip and a few seeks.
//! * **Change feed**: every batch notifies `<table>_changes` with the writing node's id and the
//!   keys written (or `*` when the list would not fit PostgreSQL's 8000-byte payload). A
//!   dedicated connection `LISTEN`s and publishes the keys of other nodes' writes on
//!   [`PostgresStorage::subscribe`]; after that connection drops and comes back it publishes
//!   [`Change::All`], because notifications sent meanwhile are lost (also after the first
//!   LISTEN: the node may have loaded its state before it).
//! * **Coordination** ([`crate::Coordination`]): the leader holds a session advisory lock on
//!   its own connection (released by PostgreSQL when the node dies or the connection drops);
//!   nodes advertise themselves in `<table>_nodes`; [`Storage::lock`] takes a session advisory
//!   lock on a fresh connection, dropped (so released) with the guard.
//! * **Schema**: created and migrated on first use, under a transaction-level advisory lock, so
//!   nodes starting together neither race nor fail; versions are in `signet_schema`.
//! * **Faults**: connection failures, timeouts and "the database is starting or shutting down"
//!   are [`StorageError::Unavailable`] (the HTTP layer answers 503); a node whose database is
//!   unreachable at start keeps retrying from the first request on.
//!
//! Written here rather than taken from a crate: the pool (`deadpool-postgres`), the driver
//! (`tokio-postgres`) and TLS (`tokio-postgres-rustls`) are crates; the schema, the listing
//! walk and the notification protocol are signet's own.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::sync::{broadcast, Mutex, OnceCell};
use tokio_postgres::{AsyncMessage, Client};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{check_key, Change, Coordination, LockGuard, NodeInfo, Op, Storage, StorageError};

/// Longest notification payload PostgreSQL accepts is 8000 bytes; stay under it.
const MAX_PAYLOAD: usize = 7900;
/// How long a request waits for a connection, or for one to be made.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);
/// Keys in the first plain range scan of a folder, and the most in any later one (see
/// `list_page`).
const PLAIN_SCAN_FIRST: i64 = 1000;
const PLAIN_SCAN_MAX: i64 = 16_000;
/// A node not seen for this long is left out of `sys/ha-status`.
const NODE_STALE_SECS: i32 = 30;

/// The `storage "postgresql"` stanza.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    /// `postgres://user:password@host:port/db?sslmode=...`; also libpq's `key=value` form.
    /// `sslmode=verify-ca|verify-full` and `sslrootcert=FILE` are understood here.
    pub connection_url: String,
    /// Table name (`[A-Za-z_][A-Za-z0-9_]*`, optionally `schema.`-qualified).
    pub table: String,
    /// Most connections in the pool (Vault's `max_parallel`, default 128).
    pub max_parallel: usize,
    /// CA bundle that verifies the database's certificate (also `sslrootcert` in the URL).
    pub tls_ca_file: Option<PathBuf>,
    /// Several nodes share the table (default): change feed and leader election on. `false`
    /// declares this the only node.
    pub ha_enabled: bool,
    /// Longest wait for a [`Storage::lock`] held by another node (default 30 s).
    pub lock_timeout: Duration,
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL can carry a password: never printed.
        f.debug_struct("PostgresOptions")
            .field("table", &self.table)
            .field("max_parallel", &self.max_parallel)
            .finish_non_exhaustive()
    }
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self {
            connection_url: String::new(),
            table: "signet_kv".into(),
            max_parallel: 128,
            tls_ca_file: None,
            ha_enabled: true,
            lock_timeout: Duration::from_secs(30),
        }
    }
}

/// The statements, with the table name spliced in once (it is validated as an identifier).
struct Sql {
    get: String,
    get_many: String,
    /// Keys in `[$1, $2)`, at most `$3`.
    range: String,
    apply: String,
    /// `apply` without the notification, when no key of the batch is cached anywhere.
    apply_quiet: String,
    list: String,
    channel: String,
    lock_key_leader: String,
}

/// A connected session: the client and the connection task that drives it.
type Session = (
    Client,
    tokio_postgres::Connection<
        tokio_postgres::Socket,
        <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream,
    >,
);

/// PostgreSQL storage. Cheap to share through `Arc`.
pub struct PostgresStorage {
    pool: Pool,
    pg_config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    table: String,
    sql: Sql,
    schema_ready: OnceCell<()>,
    node_id: String,
    changes: broadcast::Sender<Change>,
    listener_started: AtomicBool,
    leader_conn: Mutex<Option<(Client, bool)>>,
    ha_enabled: bool,
    lock_timeout: Duration,
    quiet: std::sync::RwLock<Option<crate::QuietKeys>>,
}

fn valid_table(t: &str) -> bool {
    let ident = |s: &str| {
        let mut c = s.chars();
        matches!(c.next(), Some(ch) if ch.is_ascii_alphabetic() || ch == '_')
            && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
            && s.len() <= 50
    };
    match t.split_once('.') {
        Some((schema, table)) => ident(schema) && ident(table),
        None => ident(t),
    }
}

/// Classifies a driver error: the database gone, starting or stopping is "unavailable" (retry
/// later, 503); anything else is a backend fault.
fn pg_err(e: tokio_postgres::Error) -> StorageError {
    let unavailable = e.is_closed()
        || match e.code() {
            None => true,
            Some(code) => {
                let c = code.code();
                // 08: connection, 57P: shutdown/starting, 53300: too many connections,
                // 55P03: a lock wait timed out (another node holds it too long).
                c.starts_with("08") || c.starts_with("57P") || c == "53300" || c == "55P03"
            }
        };
    let msg = match e.as_db_error() {
        Some(db) => format!("postgresql: {} ({})", db.message(), db.code().code()),
        None => format!("postgresql: {e}"),
    };
    if unavailable {
        StorageError::Unavailable(msg)
    } else {
        StorageError::Backend(msg)
    }
}

fn pool_err(e: deadpool_postgres::PoolError) -> StorageError {
    match e {
        deadpool_postgres::PoolError::Backend(e) => pg_err(e),
        other => StorageError::Unavailable(format!("postgresql: {other}")),
    }
}

/// Splits signet's own URL parameters out of the connection string: `sslrootcert` (a CA file)
/// and the verifying `sslmode`s, which `tokio-postgres` does not know.
fn parse_url(url: &str) -> Result<(tokio_postgres::Config, Option<PathBuf>, bool), StorageError> {
    let mut ca = None;
    let mut verify = false;
    let rewritten = if let Some((base, query)) = url.split_once('?') {
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match (k, v) {
                ("sslrootcert", file) => ca = Some(PathBuf::from(file)),
                ("sslmode", "verify-ca" | "verify-full") => {
                    verify = true;
                    kept.push("sslmode=require".to_string());
                }
                _ => kept.push(pair.to_string()),
            }
        }
        if kept.is_empty() {
            base.to_string()
        } else {
            format!("{base}?{}", kept.join("&"))
        }
    } else {
        url.to_string()
    };
    let cfg: tokio_postgres::Config = rewritten.parse().map_err(|e: tokio_postgres::Error| {
        StorageError::Backend(format!("invalid connection_url: {e}"))
    })?;
    Ok((cfg, ca, verify))
}

/// Accepts any server certificate but still checks the handshake signatures: libpq's
/// `sslmode=require` (encrypted, not authenticated). Used only without a CA file.
#[derive(Debug)]
struct NoServerAuth(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for NoServerAuth {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_connector(ca: Option<&PathBuf>) -> Result<MakeRustlsConnect, StorageError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StorageError::Backend(format!("tls: {e}")))?;
    let config = match ca {
        Some(path) => {
            let pem = std::fs::read(path).map_err(|e| {
                StorageError::Backend(format!("cannot read {}: {e}", path.display()))
            })?;
            let mut roots = rustls::RootCertStore::empty();
            for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(&pem) {
                let cert: CertificateDer<'static> =
                    cert.map_err(|e| StorageError::Backend(format!("{}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| StorageError::Backend(format!("{}: {e}", path.display())))?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoServerAuth(provider)))
            .with_no_client_auth(),
    };
    Ok(MakeRustlsConnect::new(config))
}

/// Every schema version, applied in order, each in the same transaction as its version bump.
/// A new version is appended, never edited: tables at any older version are brought forward.
fn migrations(t: &str) -> Vec<String> {
    vec![
        // 1: the key/value table.
        format!(
            "CREATE TABLE IF NOT EXISTS {t} (key bytea PRIMARY KEY, value bytea NOT NULL);
             ALTER TABLE {t} ALTER COLUMN value SET STORAGE EXTERNAL;"
        ),
        // 2: the nodes of the cluster.
        format!(
            "CREATE TABLE IF NOT EXISTS {t}_nodes (
                node_id text PRIMARY KEY,
                api_addr text NOT NULL DEFAULT '',
                cluster_addr text NOT NULL DEFAULT '',
                version text NOT NULL DEFAULT '',
                started_at timestamptz NOT NULL DEFAULT now(),
                last_seen timestamptz NOT NULL DEFAULT now(),
                leader_since timestamptz
             );"
        ),
        // 3: the node's host name for sys/ha-status.
        format!(
            "ALTER TABLE {t}_nodes ADD COLUMN IF NOT EXISTS hostname text NOT NULL DEFAULT '';"
        ),
    ]
}

impl PostgresStorage {
    /// Builds the pool; connects lazily, so an unreachable database is not an error here.
    pub fn new(opts: PostgresOptions) -> Result<Self, StorageError> {
        if !valid_table(&opts.table) {
            return Err(StorageError::Backend(format!(
                "invalid table name {:?}: use letters, digits and _ (optionally schema.table)",
                opts.table
            )));
        }
        let (mut pg_config, url_ca, verify) = parse_url(&opts.connection_url)?;
        if verify && opts.tls_ca_file.is_none() && url_ca.is_none() {
            return Err(StorageError::Backend(
                "sslmode=verify-full needs the CA: add sslrootcert=FILE to connection_url or tls_ca_file".into(),
            ));
        }
        if pg_config.get_connect_timeout().is_none() {
            pg_config.connect_timeout(POOL_TIMEOUT);
        }
        if pg_config.get_application_name().is_none() {
            pg_config.application_name("signet");
        }
        pg_config.keepalives_idle(Duration::from_secs(30));
        let ca = opts.tls_ca_file.clone().or(url_ca);
        let tls = tls_connector(ca.as_ref())?;
        let manager = Manager::from_config(
            pg_config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(opts.max_parallel.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()
            .map_err(|e| StorageError::Backend(format!("postgresql pool: {e}")))?;
        let t = &opts.table;
        let channel = format!("{}_changes", t.replace('.', "_"));
        let sql = Sql {
            get: format!("SELECT value FROM {t} WHERE key = $1"),
            get_many: format!("SELECT key, value FROM {t} WHERE key = ANY($1::bytea[])"),
            range: format!(
                "SELECT key FROM {t} WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3"
            ),
            apply: format!(
                "WITH del AS (DELETE FROM {t} WHERE key = ANY($1::bytea[])),
                      ins AS (INSERT INTO {t} (key, value)
                              SELECT * FROM unnest($2::bytea[], $3::bytea[])
                              ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value)
                 SELECT pg_notify($4, $5)"
            ),
            apply_quiet: format!(
                "WITH del AS (DELETE FROM {t} WHERE key = ANY($1::bytea[]))
                 INSERT INTO {t} (key, value)
                 SELECT * FROM unnest($2::bytea[], $3::bytea[])
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value"
            ),
            // $1: first key to consider (inclusive), $2: exclusive upper bound of the prefix,
            // $3: length of the prefix + 1, $4: most children.
            list: format!(
                "WITH RECURSIVE walk(k) AS (
                   (SELECT key FROM {t} WHERE key >= $1 AND key < $2 ORDER BY key LIMIT 1)
                   UNION ALL
                   SELECT (SELECT key FROM {t}
                           WHERE key > CASE
                               WHEN position('\\x2f'::bytea IN substring(w.k FROM $3)) > 0
                               THEN substring(w.k FROM 1 FOR $3 - 1
                                    + position('\\x2f'::bytea IN substring(w.k FROM $3)))
                                    || '\\xff'::bytea
                               ELSE w.k END
                             AND key < $2
                           ORDER BY key LIMIT 1)
                   FROM walk w WHERE w.k IS NOT NULL
                 )
                 SELECT k FROM walk WHERE k IS NOT NULL LIMIT $4"
            ),
            lock_key_leader: format!("signet-leader:{t}"),
            channel,
        };
        let (changes, _) = broadcast::channel(4096);
        Ok(Self {
            pool,
            pg_config,
            tls,
            table: opts.table,
            sql,
            schema_ready: OnceCell::new(),
            node_id: uuid::Uuid::new_v4().to_string(),
            changes,
            listener_started: AtomicBool::new(false),
            leader_conn: Mutex::new(None),
            ha_enabled: opts.ha_enabled,
            lock_timeout: opts.lock_timeout,
            quiet: std::sync::RwLock::new(None),
        })
    }

    /// A connection of its own, outside the pool (LISTEN, the leader lock, named locks).
    /// A new session (client and the connection to drive), within the pool's timeout.
    async fn connect(&self) -> Result<Session, StorageError> {
        tokio::time::timeout(POOL_TIMEOUT, self.pg_config.connect(self.tls.clone()))
            .await
            .map_err(|_| StorageError::Unavailable("postgresql: connect timed out".into()))?
            .map_err(pg_err)
    }

    async fn dedicated(&self) -> Result<Client, StorageError> {
        let (client, conn) = self.connect().await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(client)
    }

    /// Creates or migrates the schema once per process (retried on the next call if it fails).
    async fn ready(&self) -> Result<(), StorageError> {
        self.schema_ready
            .get_or_try_init(|| async {
                let mut client = self.pool.get().await.map_err(pool_err)?;
                let tx = client.transaction().await.map_err(pg_err)?;
                // One node migrates at a time; the others wait here and then find nothing to do.
                tx.execute("SELECT pg_advisory_xact_lock(hashtextextended('signet-schema', 0))", &[])
                    .await
                    .map_err(pg_err)?;
                tx.batch_execute(
                    "CREATE TABLE IF NOT EXISTS signet_schema (
                        table_name text PRIMARY KEY,
                        version integer NOT NULL,
                        updated_at timestamptz NOT NULL DEFAULT now())",
                )
                .await
                .map_err(pg_err)?;
                let row = tx
                    .query_opt(
                        "SELECT version FROM signet_schema WHERE table_name = $1",
                        &[&self.table],
                    )
                    .await
                    .map_err(pg_err)?;
                let current: i32 = row.map(|r| r.get(0)).unwrap_or(0);
                let all = migrations(&self.table);
                if current as usize > all.len() {
                    return Err(StorageError::Backend(format!(
                        "table {} has schema version {current}, newer than this signet knows ({}): upgrade signet",
                        self.table,
                        all.len()
                    )));
                }
                for (i, m) in all.iter().enumerate().skip(current as usize) {
                    tracing::info!(table = %self.table, version = i + 1, "migrating the PostgreSQL schema");
                    tx.batch_execute(m).await.map_err(pg_err)?;
                }
                let version = all.len() as i32;
                tx.execute(
                    "INSERT INTO signet_schema (table_name, version) VALUES ($1, $2)
                     ON CONFLICT (table_name) DO UPDATE SET version = EXCLUDED.version, updated_at = now()",
                    &[&self.table, &version],
                )
                .await
                .map_err(pg_err)?;
                tx.commit().await.map_err(pg_err)?;
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Starts the task that LISTENs for other nodes' writes (once; later calls do nothing).
    fn start_listener(self: &Arc<Self>) {
        if self.listener_started.swap(true, Ordering::SeqCst) {
            return;
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(200);
            let mut connected_before = false;
            loop {
                let Some(me) = weak.upgrade() else { return };
                match me.listen_once(&mut connected_before).await {
                    Ok(()) => backoff = Duration::from_millis(200),
                    Err(e) => {
                        tracing::warn!(error = %e, "PostgreSQL change feed interrupted; reconnecting")
                    }
                }
                drop(me);
                tokio::time::sleep(backoff).await;
                // At most a second between attempts: until the feed is back, this node may
                // serve what other nodes changed meanwhile from its caches.
                backoff = (backoff * 2).min(Duration::from_secs(1));
            }
        });
    }

    /// One LISTEN session: returns when the connection ends.
    async fn listen_once(&self, connected_before: &mut bool) -> Result<(), StorageError> {
        let (client, mut conn) = self.connect().await?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            let mut stream = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
            use futures::StreamExt;
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(AsyncMessage::Notification(n)) => {
                        if tx.send(n.payload().to_string()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        let listen = format!("LISTEN {}", self.sql.channel);
        if let Err(e) = client.batch_execute(&listen).await {
            driver.abort();
            return Err(pg_err(e));
        }
        // Notifications sent before this LISTEN took effect are lost (while reconnecting, or
        // between this node loading its state and the first LISTEN): every cache starts over.
        if *connected_before {
            tracing::info!("PostgreSQL change feed reconnected; resynchronising caches");
        }
        let _ = self.changes.send(Change::All);
        *connected_before = true;
        while let Some(payload) = rx.recv().await {
            let mut lines = payload.split('\n');
            if lines.next() == Some(self.node_id.as_str()) {
                continue;
            }
            let keys: Vec<String> = lines.map(str::to_string).collect();
            let change = if keys.iter().any(|k| k == "*") {
                Change::All
            } else {
                Change::Keys(keys)
            };
            let _ = self.changes.send(change);
        }
        drop(client);
        let _ = driver.await;
        Err(StorageError::Unavailable(
            "postgresql: change feed connection closed".into(),
        ))
    }

    fn payload(&self, keys: &[&str]) -> String {
        let mut p = self.node_id.clone();
        for k in keys {
            if p.len() + k.len() + 1 > MAX_PAYLOAD {
                p.truncate(self.node_id.len());
                p.push_str("\n*");
                return p;
            }
            p.push('\n');
            p.push_str(k);
        }
        p
    }
}

/// The exclusive upper bound of every key that starts with `prefix`: no UTF-8 key contains
/// the byte 0xff.
fn upper(prefix: &str) -> Vec<u8> {
    let mut v = prefix.as_bytes().to_vec();
    v.push(0xff);
    v
}

#[async_trait]
impl Storage for PostgresStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        check_key(key)?;
        self.ready().await?;
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client.prepare_cached(&self.sql.get).await.map_err(pg_err)?;
        let row = client
            .query_opt(&stmt, &[&key.as_bytes()])
            .await
            .map_err(pg_err)?;
        Ok(row.map(|r| r.get::<_, Vec<u8>>(0)))
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
        for k in keys {
            check_key(k)?;
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.ready().await?;
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client
            .prepare_cached(&self.sql.get_many)
            .await
            .map_err(pg_err)?;
        let wanted: Vec<&[u8]> = keys.iter().map(|k| k.as_bytes()).collect();
        let rows = client.query(&stmt, &[&wanted]).await.map_err(pg_err)?;
        let found: std::collections::HashMap<Vec<u8>, Vec<u8>> = rows
            .into_iter()
            .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, Vec<u8>>(1)))
            .collect();
        Ok(keys
            .iter()
            .map(|k| found.get(k.as_bytes()).cloned())
            .collect())
    }

    async fn apply(&self, ops: Vec<Op>) -> Result<(), StorageError> {
        self.write(ops, true).await
    }

    async fn apply_unannounced(&self, ops: Vec<Op>) -> Result<(), StorageError> {
        self.write(ops, false).await
    }

    async fn list_page(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        check_key(prefix)?;
        check_key(after)?;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut start = prefix.as_bytes().to_vec();
        if !after.is_empty() {
            start.extend_from_slice(after.as_bytes());
            // Past a folder's whole subtree, or just past a leaf.
            start.push(if after.ends_with('/') { 0xff } else { 0x00 });
        }
        let hi = upper(prefix);
        let from = (prefix.len() + 1) as i32;
        let limit = limit.min(i64::MAX as usize) as i64;
        self.ready().await?;
        let client = self.pool.get().await.map_err(pool_err)?;
        // A flat folder (an index, the inventory, the revocation index) is read with plain
        // range scans, PLAIN_SCAN_MAX keys per round trip; the recursive walk is needed only
        // when sub-folders must be folded, which a scan shows by returning a key with a '/'
        // past the prefix (then the walk starts over from `start`: one page wasted at most).
        {
            let stmt = client
                .prepare_cached(&self.sql.range)
                .await
                .map_err(pg_err)?;
            let mut from_key = start.clone();
            let mut flat: Vec<String> = Vec::new();
            let mut folded = false;
            // Pages grow while the folder stays flat: a folder with sub-folders costs one
            // small page at most, a long flat one (a CRL's revocation index) few round trips.
            let mut page = PLAIN_SCAN_FIRST;
            loop {
                let want = (limit - flat.len() as i64).min(page);
                page = (page * 4).min(PLAIN_SCAN_MAX);
                let rows = client
                    .query(&stmt, &[&from_key, &hi, &want])
                    .await
                    .map_err(pg_err)?;
                let n = rows.len() as i64;
                let mut last = None;
                for r in rows {
                    let k: Vec<u8> = r.get(0);
                    if k[prefix.len()..].contains(&b'/') {
                        folded = true;
                        break;
                    }
                    flat.push(
                        String::from_utf8(k[prefix.len()..].to_vec())
                            .map_err(|_| StorageError::Corrupt("stored key is not UTF-8".into()))?,
                    );
                    last = Some(k);
                }
                if folded || n < want || flat.len() as i64 >= limit {
                    break;
                }
                // Just past the last key: nothing sorts between k and k || 0x00.
                let Some(mut k) = last else { break };
                k.push(0x00);
                from_key = k;
            }
            if !folded {
                return Ok(flat);
            }
        }
        let stmt = client
            .prepare_cached(&self.sql.list)
            .await
            .map_err(pg_err)?;
        let rows = client
            .query(&stmt, &[&start, &hi, &from, &limit])
            .await
            .map_err(pg_err)?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let k: Vec<u8> = r.get(0);
            let rest = &k[prefix.len()..];
            let child = match rest.iter().position(|b| *b == b'/') {
                Some(i) => &rest[..=i],
                None => rest,
            };
            out.push(
                String::from_utf8(child.to_vec())
                    .map_err(|_| StorageError::Corrupt("stored key is not UTF-8".into()))?,
            );
        }
        Ok(out)
    }

    fn kind(&self) -> &'static str {
        "postgresql"
    }

    async fn lock(&self, name: &str) -> Result<LockGuard, StorageError> {
        self.ready().await?;
        let client = self.dedicated().await?;
        // A holder that hangs (alive, not progressing) must not hang every waiter: past
        // `lock_timeout` the wait fails with 55P03, answered as "unavailable" (503).
        client
            .batch_execute(&format!(
                "SET lock_timeout = {}",
                self.lock_timeout.as_millis().max(1)
            ))
            .await
            .map_err(pg_err)?;
        client
            .execute(
                "SELECT pg_advisory_lock(hashtextextended($1, 0))",
                &[&format!("{}:{name}", self.table)],
            )
            .await
            .map_err(pg_err)?;
        // Dropping the client closes the session, which releases the lock.
        Ok(LockGuard::new(client))
    }

    fn coordination(self: Arc<Self>) -> Option<Arc<dyn Coordination>> {
        if self.ha_enabled {
            Some(self)
        } else {
            None
        }
    }
}

#[async_trait]
impl Coordination for PostgresStorage {
    fn node_id(&self) -> &str {
        &self.node_id
    }

    fn subscribe(self: Arc<Self>) -> broadcast::Receiver<Change> {
        let rx = self.changes.subscribe();
        self.start_listener();
        rx
    }

    async fn try_lead(&self, me: &NodeInfo) -> Result<bool, StorageError> {
        self.ready().await?;
        let mut slot = self.leader_conn.lock().await;
        // One session per node for the election, kept between attempts: the lock belongs to
        // it, so losing the session is losing the leadership.
        let usable = match slot.as_ref() {
            Some((c, _)) => !c.is_closed() && c.simple_query("SELECT 1").await.is_ok(),
            None => false,
        };
        if !usable {
            *slot = None;
            *slot = Some((self.dedicated().await?, false));
        }
        let Some((c, holding)) = slot.as_mut() else {
            return Ok(false);
        };
        if !*holding {
            let got: bool = match c
                .query_one(
                    "SELECT pg_try_advisory_lock(hashtextextended($1, 0))",
                    &[&self.sql.lock_key_leader],
                )
                .await
            {
                Ok(row) => row.get(0),
                Err(e) => {
                    *slot = None;
                    return Err(pg_err(e));
                }
            };
            if got {
                let t = &self.table;
                // The new leader clears the old one's mark and forgets nodes gone for a day
                // (every start is a new node id).
                c.batch_execute(&format!(
                    "DELETE FROM {t}_nodes WHERE last_seen < now() - interval '1 day'"
                ))
                .await
                .map_err(pg_err)?;
                c.execute(
                    &format!("UPDATE {t}_nodes SET leader_since = NULL WHERE node_id <> $1"),
                    &[&me.node_id],
                )
                .await
                .map_err(pg_err)?;
                *holding = true;
            }
        }
        let leading = *holding;
        if let Err(e) = self.heartbeat_on(c, me, leading).await {
            *slot = None;
            return Err(e);
        }
        Ok(leading)
    }

    fn set_quiet(&self, quiet: crate::QuietKeys) {
        if let Ok(mut q) = self.quiet.write() {
            *q = Some(quiet);
        }
    }

    async fn step_down(&self) {
        *self.leader_conn.lock().await = None;
    }

    async fn heartbeat(&self, me: &NodeInfo) -> Result<(), StorageError> {
        self.ready().await?;
        let client = self.pool.get().await.map_err(pool_err)?;
        self.heartbeat_on(&client, me, false).await
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, StorageError> {
        self.ready().await?;
        let client = self.pool.get().await.map_err(pool_err)?;
        let t = &self.table;
        let rows = client
            .query(
                &format!(
                    "SELECT node_id, api_addr, cluster_addr, version,
                            extract(epoch FROM last_seen)::bigint,
                            extract(epoch FROM leader_since)::bigint, hostname
                     FROM {t}_nodes
                     WHERE last_seen > now() - make_interval(secs => $1)
                     ORDER BY started_at, node_id"
                ),
                &[&(NODE_STALE_SECS as f64)],
            )
            .await
            .map_err(pg_err)?;
        Ok(rows
            .into_iter()
            .map(|r| NodeInfo {
                node_id: r.get(0),
                api_addr: r.get(1),
                cluster_addr: r.get(2),
                version: r.get(3),
                last_seen: r.get::<_, i64>(4),
                leader_since: r.get::<_, Option<i64>>(5),
                hostname: r.get(6),
            })
            .collect())
    }
}

impl PostgresStorage {
    /// One atomic batch; `announce`: notify the other nodes of the keys some cache depends on.
    async fn write(&self, ops: Vec<Op>, announce: bool) -> Result<(), StorageError> {
        for op in &ops {
            check_key(op.key())?;
        }
        if ops.is_empty() {
            return Ok(());
        }
        // Last write per key wins: one statement cannot touch a row twice.
        let mut last: std::collections::BTreeMap<&str, Option<&[u8]>> = Default::default();
        for op in &ops {
            match op {
                Op::Put(k, v) => last.insert(k.as_str(), Some(v.as_slice())),
                Op::Delete(k) => last.insert(k.as_str(), None),
            };
        }
        let mut del: Vec<&[u8]> = Vec::new();
        let mut put_k: Vec<&[u8]> = Vec::new();
        let mut put_v: Vec<&[u8]> = Vec::new();
        for (k, v) in &last {
            match v {
                Some(v) => {
                    put_k.push(k.as_bytes());
                    put_v.push(v);
                }
                None => del.push(k.as_bytes()),
            }
        }
        // Only keys some node may cache are announced; none at all without other nodes.
        let keys: Vec<&str> = if self.ha_enabled && announce {
            let quiet = self.quiet.read().ok().and_then(|q| q.clone());
            last.keys()
                .copied()
                .filter(|k| !quiet.as_ref().is_some_and(|q| q(k)))
                .collect()
        } else {
            Vec::new()
        };
        self.ready().await?;
        let client = self.pool.get().await.map_err(pool_err)?;
        if keys.is_empty() {
            let stmt = client
                .prepare_cached(&self.sql.apply_quiet)
                .await
                .map_err(pg_err)?;
            client
                .execute(&stmt, &[&del, &put_k, &put_v])
                .await
                .map_err(pg_err)?;
        } else {
            let payload = self.payload(&keys);
            let stmt = client
                .prepare_cached(&self.sql.apply)
                .await
                .map_err(pg_err)?;
            client
                .execute(&stmt, &[&del, &put_k, &put_v, &self.sql.channel, &payload])
                .await
                .map_err(pg_err)?;
        }
        Ok(())
    }

    async fn heartbeat_on(
        &self,
        c: &Client,
        me: &NodeInfo,
        leader: bool,
    ) -> Result<(), StorageError> {
        let t = &self.table;
        let sql = if leader {
            format!(
                "INSERT INTO {t}_nodes (node_id, api_addr, cluster_addr, version, hostname, leader_since)
                 VALUES ($1, $2, $3, $4, $5, now())
                 ON CONFLICT (node_id) DO UPDATE SET api_addr = EXCLUDED.api_addr,
                   cluster_addr = EXCLUDED.cluster_addr, version = EXCLUDED.version,
                   hostname = EXCLUDED.hostname, last_seen = now(),
                   leader_since = COALESCE({t}_nodes.leader_since, now())"
            )
        } else {
            format!(
                "INSERT INTO {t}_nodes (node_id, api_addr, cluster_addr, version, hostname)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (node_id) DO UPDATE SET api_addr = EXCLUDED.api_addr,
                   cluster_addr = EXCLUDED.cluster_addr, version = EXCLUDED.version,
                   hostname = EXCLUDED.hostname, last_seen = now(), leader_since = NULL"
            )
        };
        c.execute(
            &sql,
            &[
                &me.node_id,
                &me.api_addr,
                &me.cluster_addr,
                &me.version,
                &me.hostname,
            ],
        )
        .await
        .map_err(pg_err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        assert!(valid_table("signet_kv"));
        assert!(valid_table("ops.signet_kv"));
        assert!(!valid_table("kv; DROP TABLE x"));
        assert!(!valid_table("1kv"));
        assert!(!valid_table(""));
    }

    #[test]
    fn url_parameters() {
        let (cfg, ca, verify) =
            parse_url("postgres://u:p@127.0.0.1:5432/db?sslmode=verify-full&sslrootcert=/x/ca.pem")
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ca, Some(PathBuf::from("/x/ca.pem")));
        assert!(verify);
        assert_eq!(cfg.get_ssl_mode(), tokio_postgres::config::SslMode::Require);
        assert!(parse_url("postgres://u@h/db?sslmode=disable").is_ok());
        assert!(parse_url("not a url ://").is_err());
    }
}
