//! `signet operator migrate`: copies a whole installation from one storage backend to another,
//! SQLite into PostgreSQL when an embedded CA grows to several nodes, or back.
//!
//! The copy is raw: every physical key/value pair, byte for byte. Values are barrier
//! ciphertext and keys are plaintext paths, so nothing is decrypted: the command needs no
//! unseal key and no token, and whatever unsealed the source (its unseal keys, or its
//! `seal "file"` key) unseals the destination. Going through the [`Storage`] trait rather than
//! the databases' own dump tools keeps the keys in the order and form each backend expects
//! (PostgreSQL `bytea`, SQLite `BLOB`), whichever way the copy goes.
//!
//! Steps: refuse an empty source (a wrong path or table, most likely) and a destination that
//! already holds keys unless `-force`; walk the source depth-first (`list_page`, paging with
//! `after`) and write in atomic batches of `-batch` keys; then walk the source again and
//! compare every value with the destination's, byte for byte, and the key counts.
//!
//! The servers must be stopped first. The command opens the storage itself and a copy taken
//! while a server writes is not a snapshot; it does not try to detect a running server. What
//! it does catch: a listed key that is gone when read, and any difference the verification
//! finds (exit 2). Exit codes: 0 copied and verified, 1 local error (flags, a missing file, a
//! database that cannot be reached, a non-empty destination), 2 the verification failed.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signet_storage::backends::postgres::{PostgresOptions, PostgresStorage};
use signet_storage::backends::sqlite::SqliteStorage;
use signet_storage::{Op, Storage, StorageError};

use super::common::block_on;
use crate::flags::{self, Kind};

/// `signet operator migrate -h`.
pub const USAGE: &str = "Usage: signet operator migrate -from=LOCATION -to=LOCATION [options]

  Copies every key of a signet installation's storage into another backend, byte for byte.
  Values stay encrypted: no unseal key is needed, and the source's unseal keys (or its
  seal \"file\" key) unseal the destination. The copy is checked afterwards: every key is read
  back from both sides and compared (exit code 2 on any difference).

  Stop every server using the source first: the command opens the storage itself, and a copy
  taken while a server writes is not a consistent snapshot. It does not detect a running
  server.

  Locations:
    sqlite:PATH       a SQLite file (as a source it must exist)
    postgresql:URL    a PostgreSQL database, URL as in storage \"postgresql\", e.g.
                      postgresql:postgres://signet@db:5432/signet?sslmode=require

  Options:
    -from=LOCATION    the source (required)
    -to=LOCATION      the destination (required)
    -table=NAME       the PostgreSQL table, on either side (default signet_kv)
    -batch=N          keys written per atomic batch (default 1000)
    -force            copy into a destination that already holds keys: the source's keys
                      overwrite theirs, the others are kept (refused by default)
";

const FLAGS: &[(&str, Kind)] = &[
    ("from", Kind::Value),
    ("to", Kind::Value),
    ("table", Kind::Value),
    ("batch", Kind::Value),
    ("force", Kind::Bool),
];

/// Children asked for per `list_page` call.
const LIST_PAGE: usize = 1000;
/// Keys read per `get_many`.
const READ_AHEAD: usize = 500;
/// Keys compared per step of the verification.
const VERIFY_CHUNK: usize = 256;
/// Without a terminal, one progress line per this many keys.
const LINE_EVERY: u64 = 10_000;
/// With a terminal, the progress line is redrawn at most this often.
const REDRAW: Duration = Duration::from_millis(200);

/// Entry point of `signet operator migrate`.
pub fn run(args: &[String]) -> u8 {
    let usage_error = |msg: &str| {
        eprintln!("{msg}\n");
        eprint!("{USAGE}");
        1
    };
    let parsed = match flags::parse(args, FLAGS) {
        Ok(p) => p,
        Err(e) => return usage_error(&e),
    };
    if let Some(extra) = parsed.args.first() {
        return usage_error(&format!("Unexpected argument: {extra:?}"));
    }
    let (Some(from), Some(to)) = (parsed.get("from"), parsed.get("to")) else {
        return usage_error("Both -from and -to are required.");
    };
    let table = parsed.get("table").unwrap_or("signet_kv");
    let batch = match parsed.get("batch").map(str::parse::<usize>) {
        None => 1000,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => return usage_error("-batch must be a whole number of at least 1."),
    };
    let (from, to) = match (
        Endpoint::parse("-from", from, table),
        Endpoint::parse("-to", to, table),
    ) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("Error migrating: {e}");
            return 1;
        }
    };
    block_on(migrate(from, to, batch, parsed.bool("force")))
}

/// One side of the migration.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Endpoint {
    Sqlite(PathBuf),
    Postgres { url: String, table: String },
}

impl Endpoint {
    /// `sqlite:PATH` or `postgresql:URL` (everything after the first `postgresql:` is the URL).
    /// Error texts never repeat the value: a URL can carry a password.
    fn parse(flag: &str, spec: &str, table: &str) -> Result<Self, String> {
        let Some((scheme, rest)) = spec.split_once(':') else {
            return Err(format!(
                "{flag} needs a location as sqlite:PATH or postgresql:URL"
            ));
        };
        match scheme {
            "sqlite" if rest.is_empty() => Err(format!(
                "{flag}: sqlite: needs a path, as in sqlite:/var/lib/signet/signet.db"
            )),
            "sqlite" => Ok(Endpoint::Sqlite(PathBuf::from(rest))),
            "postgresql" if rest.is_empty() => Err(format!(
                "{flag}: postgresql: needs a connection URL, as in postgresql:postgres://user@host:5432/db"
            )),
            "postgresql" => Ok(Endpoint::Postgres {
                url: rest.to_string(),
                table: table.to_string(),
            }),
            "postgres" => Err(format!(
                "{flag}: unknown scheme \"postgres\": write postgresql: before the URL, as in postgresql:postgres://user@host:5432/db"
            )),
            other => Err(format!(
                "{flag}: unknown scheme {other:?}: signet migrates between sqlite:PATH and postgresql:URL"
            )),
        }
    }

    /// Whether both name the same storage (the same file, or the same URL and table).
    fn same_as(&self, other: &Endpoint) -> bool {
        match (self, other) {
            (Endpoint::Sqlite(a), Endpoint::Sqlite(b)) => {
                let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
                canon(a) == canon(b)
            }
            (a, b) => a == b,
        }
    }

    /// Opens the storage. A SQLite source must exist (opening would create it); a SQLite
    /// destination is created, with its directory, as the server does.
    fn open(&self, source: bool) -> Result<Arc<dyn Storage>, String> {
        match self {
            Endpoint::Sqlite(path) => {
                if source && !path.exists() {
                    return Err(format!("the source {self} does not exist"));
                }
                if path.is_dir() {
                    return Err(format!("{self} is a directory, not a SQLite file"));
                }
                if !source {
                    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        std::fs::create_dir_all(dir)
                            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                    }
                }
                let s =
                    SqliteStorage::open(path).map_err(|e| format!("cannot open {self}: {e}"))?;
                Ok(Arc::new(s))
            }
            Endpoint::Postgres { url, table } => {
                // One node (no change feed, no election); a few connections for the read-ahead.
                let s = PostgresStorage::new(PostgresOptions {
                    connection_url: url.clone(),
                    table: table.clone(),
                    ha_enabled: false,
                    max_parallel: READ_AHEAD,
                    ..Default::default()
                })
                .map_err(|e| format!("cannot open {self}: {e}"))?;
                Ok(Arc::new(s))
            }
        }
    }

    /// What went wrong reaching or using this side, for the operator.
    fn error(&self, e: &StorageError) -> String {
        match e {
            StorageError::Unavailable(m) => format!("cannot reach {self}: {m}"),
            other => format!("{self}: {other}"),
        }
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            Endpoint::Postgres { url, table } => {
                write!(f, "postgresql:{} (table {table})", redact(url))
            }
        }
    }
}

/// The connection URL with any password replaced by `***` (URL or libpq `key=value` form).
fn redact(url: &str) -> String {
    let params = |q: &str, sep: char| -> String {
        q.split(sep)
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k.trim() == "password" => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect::<Vec<_>>()
            .join(&sep.to_string())
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return params(url, ' ');
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, query)) => format!("{path}?{}", params(query, '&')),
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Why a copy or a verification stopped.
#[derive(Debug)]
enum Failure {
    Source(StorageError),
    Destination(StorageError),
    /// A listed key was gone when read: something is writing to the source.
    Vanished(String),
    /// The verification found a difference (exit 2).
    Differs(String),
}

async fn migrate(from: Endpoint, to: Endpoint, batch: usize, force: bool) -> u8 {
    let fail = |msg: String| {
        eprintln!("Error migrating: {msg}");
        1
    };
    if from.same_as(&to) {
        return fail(format!(
            "the source and the destination are the same: {from}"
        ));
    }
    let src = match from.open(true) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    match src.list_page("", "", 1).await {
        Ok(first) if first.is_empty() => {
            return fail(format!(
                "the source {from} holds no keys: nothing to migrate (is the path or table right?)"
            ))
        }
        Ok(_) => {}
        Err(e) => return fail(from.error(&e)),
    }
    let dst = match to.open(false) {
        Ok(s) => s,
        Err(e) => return fail(e),
    };
    let existing = match count(&dst).await {
        Ok(n) => n,
        Err(e) => return fail(to.error(&e)),
    };
    if existing > 0 {
        if !force {
            return fail(format!(
                "the destination {to} is not empty: it holds {existing} keys. Refusing to copy \
                 over them; -force copies anyway (the source's keys overwrite theirs, the \
                 others are kept)"
            ));
        }
        eprintln!(
            "Warning: the destination {to} already holds {existing} keys; -force: the source's keys overwrite theirs"
        );
    }
    let partial = "the destination holds a partial copy: once fixed, run again with -force";
    let started = Instant::now();
    let copied = match copy(&src, &dst, batch, &mut Progress::new("copied")).await {
        Ok(s) => s,
        Err(Failure::Source(e)) => return fail(format!("{}; {partial}", from.error(&e))),
        Err(Failure::Destination(e)) => return fail(format!("{}; {partial}", to.error(&e))),
        Err(Failure::Vanished(k)) => {
            return fail(format!(
                "key {k} was listed but is gone from {from}: is a server still using it? Stop \
                 every server first; {partial}"
            ))
        }
        Err(Failure::Differs(m)) => return fail(m),
    };
    println!(
        "Success! Copied {} keys ({} bytes) from {from} to {to} in {:.2} s",
        copied.keys,
        copied.bytes,
        started.elapsed().as_secs_f64()
    );
    let differs = |m: String| {
        eprintln!("Error verifying: {m}");
        2
    };
    let verified = match verify(&src, &dst, &mut Progress::new("verified")).await {
        Ok(n) => n,
        Err(Failure::Source(e)) => return fail(from.error(&e)),
        Err(Failure::Destination(e)) => return fail(to.error(&e)),
        Err(Failure::Vanished(k)) => {
            return differs(format!(
                "key {k} is gone from the source {from} since it was copied: is a server still using it?"
            ))
        }
        Err(Failure::Differs(m)) => return differs(m),
    };
    if verified != copied.keys {
        return differs(format!(
            "the source now holds {verified} keys, {} were copied: is a server still using it?",
            copied.keys
        ));
    }
    let in_destination = match count(&dst).await {
        Ok(n) => n,
        Err(e) => return fail(to.error(&e)),
    };
    if in_destination != verified {
        if existing == 0 || in_destination < verified {
            return differs(format!(
                "the destination holds {in_destination} keys, the source {verified}"
            ));
        }
        eprintln!(
            "Note: the destination also holds {} keys the source does not (kept from before the copy)",
            in_destination - verified
        );
    }
    println!("verified {verified} keys");
    0
}

/// Counts, bytes copied.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Copied {
    keys: u64,
    bytes: u64,
}

/// Copies every key of `src` into `dst`, `batch` keys per atomic write.
async fn copy(
    src: &Arc<dyn Storage>,
    dst: &Arc<dyn Storage>,
    batch: usize,
    progress: &mut Progress,
) -> Result<Copied, Failure> {
    let mut walk = Walker::new(src.clone(), LIST_PAGE);
    let mut done = Copied::default();
    let mut keys = Vec::with_capacity(batch.min(LIST_PAGE * 10));
    loop {
        keys.clear();
        while keys.len() < batch {
            match walk.next().await.map_err(Failure::Source)? {
                Some(k) => keys.push(k),
                None => break,
            }
        }
        if keys.is_empty() {
            break;
        }
        let values = fetch(src, &keys).await.map_err(Failure::Source)?;
        let mut ops = Vec::with_capacity(keys.len());
        let mut bytes = 0u64;
        for (k, v) in keys.drain(..).zip(values) {
            let v = v.ok_or_else(|| Failure::Vanished(k.clone()))?;
            bytes += (k.len() + v.len()) as u64;
            ops.push(Op::Put(k, v));
        }
        let n = ops.len() as u64;
        dst.apply(ops).await.map_err(Failure::Destination)?;
        done.keys += n;
        done.bytes += bytes;
        progress.update(done.keys);
    }
    progress.finish(done.keys);
    Ok(done)
}

/// Walks `src` again and compares every value with `dst`'s; the number of keys compared.
async fn verify(
    src: &Arc<dyn Storage>,
    dst: &Arc<dyn Storage>,
    progress: &mut Progress,
) -> Result<u64, Failure> {
    let mut walk = Walker::new(src.clone(), LIST_PAGE);
    let mut n = 0u64;
    let mut keys = Vec::with_capacity(VERIFY_CHUNK);
    loop {
        keys.clear();
        while keys.len() < VERIFY_CHUNK {
            match walk.next().await.map_err(Failure::Source)? {
                Some(k) => keys.push(k),
                None => break,
            }
        }
        if keys.is_empty() {
            break;
        }
        let a = fetch(src, &keys).await.map_err(Failure::Source)?;
        let b = fetch(dst, &keys).await.map_err(Failure::Destination)?;
        for ((k, a), b) in keys.iter().zip(a).zip(b) {
            match (a, b) {
                (None, _) => return Err(Failure::Vanished(k.clone())),
                (Some(_), None) => {
                    return Err(Failure::Differs(format!(
                        "key {k} is missing from the destination"
                    )))
                }
                (Some(a), Some(b)) if a != b => {
                    return Err(Failure::Differs(format!(
                        "key {k} differs (source {} bytes, destination {} bytes)",
                        a.len(),
                        b.len()
                    )))
                }
                _ => n += 1,
            }
        }
        progress.update(n);
    }
    progress.finish(n);
    Ok(n)
}

/// Every key of `store`.
async fn count(store: &Arc<dyn Storage>) -> Result<u64, StorageError> {
    let mut walk = Walker::new(store.clone(), LIST_PAGE);
    let mut n = 0u64;
    while walk.next().await?.is_some() {
        n += 1;
    }
    Ok(n)
}

/// Reads `keys`, [`READ_AHEAD`] per `get_many` (one round trip each on PostgreSQL); the values
/// in the keys' order.
async fn fetch(
    store: &Arc<dyn Storage>,
    keys: &[String],
) -> Result<Vec<Option<Vec<u8>>>, StorageError> {
    let mut out = Vec::with_capacity(keys.len());
    for chunk in keys.chunks(READ_AHEAD) {
        out.extend(store.get_many(chunk).await?);
    }
    Ok(out)
}

/// One folder being listed: its path, the children fetched and not yet visited, and where
/// the next page starts.
struct Frame {
    prefix: String,
    pending: VecDeque<String>,
    after: String,
    exhausted: bool,
}

impl Frame {
    fn new(prefix: String) -> Self {
        Self {
            prefix,
            pending: VecDeque::new(),
            after: String::new(),
            exhausted: false,
        }
    }
}

/// Every leaf key of a store, depth-first, in byte order: `list_page` of each folder, a page
/// at a time, descending into each sub-folder (`name/`) as it comes. Holds one page per level.
struct Walker {
    store: Arc<dyn Storage>,
    page: usize,
    stack: Vec<Frame>,
}

impl Walker {
    fn new(store: Arc<dyn Storage>, page: usize) -> Self {
        Self {
            store,
            page: page.max(1),
            stack: vec![Frame::new(String::new())],
        }
    }

    /// The next key, or `None` when every key has been returned.
    async fn next(&mut self) -> Result<Option<String>, StorageError> {
        loop {
            let Some(top) = self.stack.last_mut() else {
                return Ok(None);
            };
            let Some(child) = top.pending.pop_front() else {
                if top.exhausted {
                    self.stack.pop();
                    continue;
                }
                let page = self
                    .store
                    .list_page(&top.prefix, &top.after, self.page)
                    .await?;
                top.exhausted = page.len() < self.page;
                if let Some(last) = page.last() {
                    top.after = last.clone();
                }
                top.pending.extend(page);
                continue;
            };
            let full = format!("{}{child}", top.prefix);
            if child.ends_with('/') {
                self.stack.push(Frame::new(full));
            } else {
                return Ok(Some(full));
            }
        }
    }
}

/// Progress on stderr: one line redrawn in place on a terminal, a plain line every
/// [`LINE_EVERY`] keys otherwise. Counts only, never keys or values.
struct Progress {
    verb: &'static str,
    tty: bool,
    started: Instant,
    last_draw: Option<Instant>,
    lines: u64,
}

impl Progress {
    fn new(verb: &'static str) -> Self {
        Self {
            verb,
            tty: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last_draw: None,
            lines: 0,
        }
    }

    fn line(&self, n: u64) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        format!("{} {n} keys ({:.0} keys/s)", self.verb, n as f64 / secs)
    }

    fn update(&mut self, n: u64) {
        if self.tty {
            if self.last_draw.is_none_or(|t| t.elapsed() >= REDRAW) {
                eprint!("\r{}   ", self.line(n));
                self.last_draw = Some(Instant::now());
            }
        } else if n / LINE_EVERY > self.lines {
            self.lines = n / LINE_EVERY;
            eprintln!("{}", self.line(n));
        }
    }

    fn finish(&mut self, n: u64) {
        if self.tty && self.last_draw.is_some() {
            eprintln!("\r{}   ", self.line(n));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use signet_storage::backends::inmem::InmemStorage;

    use super::*;

    async fn store(keys: &[&str]) -> Arc<dyn Storage> {
        let s: Arc<dyn Storage> = Arc::new(InmemStorage::new());
        let ops = keys
            .iter()
            .map(|k| Op::Put(k.to_string(), format!("v:{k}").into_bytes()))
            .collect();
        s.apply(ops).await.unwrap();
        s
    }

    const KEYS: &[&str] = &[
        "a",
        "a-b",
        "a/b",
        "a/c/d",
        "a/c/e",
        "a0",
        "core/keyring",
        "core/mounts",
        "logical/0/certs/01",
        "logical/0/certs/02",
        "logical/0/certs/03",
        "logical/0/config",
        "sys/policy/p",
        "z",
    ];

    #[tokio::test]
    async fn walker_returns_every_key_in_order_across_pages() {
        let s = store(KEYS).await;
        for page in [1, 2, 3, 1000] {
            let mut w = Walker::new(s.clone(), page);
            let mut got = Vec::new();
            while let Some(k) = w.next().await.unwrap() {
                got.push(k);
            }
            assert_eq!(got, KEYS, "page size {page}");
        }
        assert_eq!(count(&s).await.unwrap(), KEYS.len() as u64);
        let empty: Arc<dyn Storage> = Arc::new(InmemStorage::new());
        assert_eq!(count(&empty).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn copy_then_verify_finds_changed_and_missing_values() {
        let src = store(KEYS).await;
        let dst: Arc<dyn Storage> = Arc::new(InmemStorage::new());
        let done = copy(&src, &dst, 4, &mut Progress::new("copied"))
            .await
            .unwrap();
        assert_eq!(done.keys, KEYS.len() as u64);
        let bytes: usize = KEYS.iter().map(|k| k.len() * 2 + 2).sum();
        assert_eq!(done.bytes, bytes as u64);
        let n = verify(&src, &dst, &mut Progress::new("verified"))
            .await
            .unwrap();
        assert_eq!(n, KEYS.len() as u64);
        dst.put("a/c/d", b"tampered".to_vec()).await.unwrap();
        match verify(&src, &dst, &mut Progress::new("verified")).await {
            Err(Failure::Differs(m)) => assert!(m.contains("a/c/d differs"), "{m}"),
            other => panic!("{other:?}"),
        }
        dst.delete("a/c/d").await.unwrap();
        match verify(&src, &dst, &mut Progress::new("verified")).await {
            Err(Failure::Differs(m)) => assert!(m.contains("a/c/d is missing"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn locations_and_redaction() {
        assert_eq!(
            Endpoint::parse("-from", "sqlite:/d/s.db", "t").unwrap(),
            Endpoint::Sqlite("/d/s.db".into())
        );
        assert_eq!(
            Endpoint::parse("-to", "postgresql:postgres://u@h:5/db?sslmode=disable", "t").unwrap(),
            Endpoint::Postgres {
                url: "postgres://u@h:5/db?sslmode=disable".into(),
                table: "t".into()
            }
        );
        for bad in [
            "inmem:",
            "postgres://u:pw@h/db",
            "mysql://u:pw@h/db",
            "nocolon",
            "sqlite:",
        ] {
            let e = Endpoint::parse("-to", bad, "t").unwrap_err();
            assert!(!e.contains("pw"), "{e}");
        }
        assert_eq!(
            redact("postgres://u:s3cret@h:5432/db?sslmode=require&password=x"),
            "postgres://u:***@h:5432/db?sslmode=require&password=***"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("host=h user=u password=s3cret"),
            "host=h user=u password=***"
        );
    }
}
