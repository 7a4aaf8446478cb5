//! The embedded default backend: one SQLite file in WAL mode.
//!
//! Durability: `synchronous=FULL`, so a commit returns only after the WAL is fsynced. Group
//! commit: one writer thread owns the write connection; every write request is queued, and the
//! thread drains the queue into one transaction (a savepoint per request, so one failing request
//! does not fail its neighbours), commits once, then answers every request in the batch. Under
//! 64 concurrent writers that is one fsync per batch instead of one per request. Reads use a
//! small pool of read-only connections (point reads on the calling worker, listings on the
//! blocking thread pool); WAL lets them run beside the writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use tokio::sync::{mpsc, oneshot};

use crate::listing::{list_children, prefix_upper_bound};
use crate::{check_key, Op, Storage, StorageError};

/// Most requests folded into one transaction.
const MAX_BATCH: usize = 512;
/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;

struct WriteJob {
    ops: Vec<Op>,
    reply: oneshot::Sender<Result<(), StorageError>>,
}

/// SQLite storage. Cheap to clone through `Arc`.
pub struct SqliteStorage {
    path: PathBuf,
    writer: mpsc::UnboundedSender<WriteJob>,
    readers: Arc<Mutex<Vec<Connection>>>,
}

fn db_err(e: rusqlite::Error) -> StorageError {
    StorageError::Backend(format!("sqlite: {e}"))
}

fn open_conn(path: &Path, read_only: bool) -> Result<Connection, StorageError> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags).map_err(db_err)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(db_err)?;
    // Measured under 64-client issuance (bench/RESULTS.md): since the store is a rowid table
    // (see `migrate`), a 4 MB writer cache issues as fast as 16 MB did, and the peak RSS
    // under load drops by a third; checkpointing every 4000 WAL pages rather than 1000 halves
    // the checkpoint work in the writer's path without long checkpoint stalls (16000 doubled
    // p99). Readers keep 1 MB each: there can be several, and memory-mapping the file would
    // count the whole store in the process's RSS.
    conn.execute_batch(if read_only {
        "PRAGMA cache_size=-1024;"
    } else {
        "PRAGMA cache_size=-4096; PRAGMA temp_store=MEMORY; PRAGMA wal_autocheckpoint=4000;"
    })
    .map_err(db_err)?;
    Ok(conn)
}

/// Brings an older file to the current schema, in one transaction (a crash leaves the old
/// schema, and the next start migrates again).
///
/// Schema 1 kept `kv` as a WITHOUT ROWID table. That stores every value inside the key's
/// B-tree, and certificate records (kilobytes each) spill onto overflow pages there, so each
/// key comparison during an insert read the whole record back (`sqlite3BtreeIndexMoveto`,
/// `accessPayload`: most of the writer thread's time in the profile of bench/RESULTS.md).
/// Schema 2 is a rowid table: the key index holds only keys, values are appended in rowid
/// order.
fn migrate(conn: &Connection) -> Result<(), StorageError> {
    let sql: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'kv'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(db_err)?;
    if sql.is_some_and(|s| s.to_ascii_uppercase().contains("WITHOUT ROWID")) {
        tracing::info!("migrating the SQLite store to schema 2 (rowid table)");
        conn.execute_batch(
            "BEGIN IMMEDIATE;
             CREATE TABLE kv_v2 (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL);
             INSERT INTO kv_v2 (key, value) SELECT key, value FROM kv ORDER BY key;
             DROP TABLE kv;
             ALTER TABLE kv_v2 RENAME TO kv;
             PRAGMA user_version = 2;
             COMMIT;",
        )
        .map_err(db_err)?;
    } else {
        conn.execute_batch("PRAGMA user_version = 2;")
            .map_err(db_err)?;
    }
    Ok(())
}

impl SqliteStorage {
    /// Opens (creating if needed, with mode 0600) the database at `path` and starts the writer
    /// thread.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StorageError> {
        let path = path.as_ref().to_path_buf();
        if !path.exists() {
            create_private_file(&path)?;
        }
        let conn = open_conn(&path, false)?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             CREATE TABLE IF NOT EXISTS kv (key BLOB PRIMARY KEY NOT NULL, value BLOB NOT NULL);",
        )
        .map_err(db_err)?;
        migrate(&conn)?;
        let (tx, rx) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("signet-sqlite-writer".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StorageError::Backend(format!("cannot start sqlite writer: {e}")))?;
        Ok(SqliteStorage {
            path,
            writer: tx,
            readers: Arc::new(Mutex::new(Vec::new())),
        })
    }

    /// Runs `f` on a pooled read connection on the blocking pool.
    async fn read<T, F>(&self, f: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StorageError> + Send + 'static,
    {
        let pool = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let conn = match pool.lock().ok().and_then(|mut p| p.pop()) {
                Some(c) => c,
                None => open_conn(&path, true)?,
            };
            let result = f(&conn);
            if let Ok(mut p) = pool.lock() {
                if p.len() < MAX_IDLE_READERS {
                    p.push(conn);
                }
            }
            result
        })
        .await
        .map_err(|e| StorageError::Backend(format!("sqlite reader task failed: {e}")))?
    }
}

#[cfg(unix)]
fn create_private_file(path: &Path) -> Result<(), StorageError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(|_| ())
        .map_err(|e| StorageError::Backend(format!("cannot create {}: {e}", path.display())))
}

#[cfg(not(unix))]
fn create_private_file(path: &Path) -> Result<(), StorageError> {
    std::fs::File::create(path)
        .map(|_| ())
        .map_err(|e| StorageError::Backend(format!("cannot create {}: {e}", path.display())))
}

fn apply_ops(conn: &Connection, ops: &[Op]) -> rusqlite::Result<()> {
    let mut put = conn.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")?;
    let mut del = conn.prepare_cached("DELETE FROM kv WHERE key = ?1")?;
    for op in ops {
        match op {
            Op::Put(k, v) => {
                put.execute(params![k.as_bytes(), v])?;
            }
            Op::Delete(k) => {
                del.execute(params![k.as_bytes()])?;
            }
        }
    }
    Ok(())
}

fn writer_loop(conn: Connection, mut rx: mpsc::UnboundedReceiver<WriteJob>) {
    while let Some(first) = rx.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let msg = format!("sqlite: {e}");
            for job in jobs {
                let _ = job.reply.send(Err(StorageError::Backend(msg.clone())));
            }
            continue;
        }
        let mut results: Vec<Result<(), StorageError>> = Vec::with_capacity(jobs.len());
        for job in &jobs {
            let r = conn
                .execute_batch("SAVEPOINT job")
                .and_then(|_| apply_ops(&conn, &job.ops))
                .and_then(|_| conn.execute_batch("RELEASE job"));
            match r {
                Ok(()) => results.push(Ok(())),
                Err(e) => {
                    let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
                    results.push(Err(db_err(e)));
                }
            }
        }
        if let Err(e) = conn.execute_batch("COMMIT") {
            let _ = conn.execute_batch("ROLLBACK");
            let msg = format!("sqlite commit: {e}");
            tracing::error!(error = %msg, "storage commit failed");
            for r in results.iter_mut() {
                *r = Err(StorageError::Backend(msg.clone()));
            }
        }
        for (job, r) in jobs.into_iter().zip(results) {
            let _ = job.reply.send(r);
        }
    }
}

#[async_trait]
impl Storage for SqliteStorage {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        check_key(key)?;
        // A point read is one index probe and one row read, microseconds on a warm cache:
        // it runs right here on the async worker. Handing it to the blocking pool cost two
        // thread switches per read, which dominated the profile of OCSP (bench/RESULTS.md).
        // Listings, which can read many rows, still go to the blocking pool.
        let conn = match self.readers.lock().ok().and_then(|mut p| p.pop()) {
            Some(c) => c,
            None => open_conn(&self.path, true)?,
        };
        let result = conn
            .prepare_cached("SELECT value FROM kv WHERE key = ?1")
            .and_then(|mut st| {
                st.query_row(params![key.as_bytes()], |r| r.get(0))
                    .optional()
            })
            .map_err(db_err);
        if let Ok(mut p) = self.readers.lock() {
            if p.len() < MAX_IDLE_READERS {
                p.push(conn);
            }
        }
        result
    }

    async fn apply(&self, ops: Vec<Op>) -> Result<(), StorageError> {
        for op in &ops {
            check_key(op.key())?;
        }
        let (reply, rx) = oneshot::channel();
        self.writer
            .send(WriteJob { ops, reply })
            .map_err(|_| StorageError::Backend("sqlite writer has stopped".into()))?;
        rx.await
            .map_err(|_| StorageError::Backend("sqlite writer dropped the request".into()))?
    }

    async fn list_page(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        check_key(prefix)?;
        let prefix = prefix.to_string();
        let after = after.to_string();
        self.read(move |conn| {
            let upper = prefix_upper_bound(prefix.as_bytes());
            list_children(&prefix, &after, limit, |start, inclusive, batch| {
                // Two literal bounds, never `(?2 IS NULL OR key < ?2)`: with the OR, SQLite
                // cannot end the index range at the prefix's upper bound and reads every key
                // after the prefix (measured: a two-key listing scanned the whole inventory).
                let sql = match (inclusive, upper.is_some()) {
                    (true, true) => {
                        "SELECT key FROM kv WHERE key >= ?1 AND key < ?2 ORDER BY key LIMIT ?3"
                    }
                    (false, true) => {
                        "SELECT key FROM kv WHERE key > ?1 AND key < ?2 ORDER BY key LIMIT ?3"
                    }
                    (true, false) => {
                        "SELECT key FROM kv WHERE key >= ?1 AND ?2 IS NULL ORDER BY key LIMIT ?3"
                    }
                    (false, false) => {
                        "SELECT key FROM kv WHERE key > ?1 AND ?2 IS NULL ORDER BY key LIMIT ?3"
                    }
                };
                let mut st = conn.prepare_cached(sql).map_err(db_err)?;
                let rows = st
                    .query_map(params![start.as_bytes(), upper, batch as i64], |r| {
                        r.get::<_, Vec<u8>>(0)
                    })
                    .map_err(db_err)?;
                let mut keys = Vec::new();
                for row in rows {
                    let bytes = row.map_err(db_err)?;
                    keys.push(
                        String::from_utf8(bytes)
                            .map_err(|_| StorageError::Corrupt("stored key is not UTF-8".into()))?,
                    );
                }
                Ok(keys)
            })
        })
        .await
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}
