//! The workloads: what each prepares before the clock starts (CSRs, a pool of certificates to
//! revoke, OCSP requests, KV keys, an AppRole secret ID) and what one operation sends.
//!
//! Preparation does its own work through the same API (issuing through `pki/issue`, writing KV
//! through the KV mount), so it works against any Vault-API server; it is never timed. An
//! operation never parses a response unless it needs a value from it (`mixed`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use bytes::Bytes;
use hyper::Method;
use serde_json::{json, Value};

use crate::args::Workload;
use crate::http::{api_path, error_text, Conn, Reply, Target};
use crate::ocsp;

const JSON: Option<&str> = Some("application/json");
const KV_VALUE: &str = r#"{"value":"0123456789abcdef0123456789abcdef"}"#;

/// What every operation of a run shares.
pub struct Ctx {
    pub target: Arc<Target>,
    /// Every server of a `--addr A,B,C` run (the first is `target`): client N talks to
    /// `targets[N % len]`, so the load spreads evenly over the nodes of a cluster.
    pub targets: Vec<Arc<Target>>,
    pub timeout: Duration,
    pub token: String,
    pub mount: String,
    pub kv_mount: String,
    pub approle_mount: String,
    pub approle_role: String,
    pub role: String,
    /// The TTL as a JSON string literal (quoted and escaped once).
    pub ttl_json: String,
    /// Makes this run's names and keys unique (hex of the start time).
    pub nonce: String,
}

impl Ctx {
    pub fn conn(&self) -> Conn {
        Conn::new(self.target.clone(), self.timeout)
    }

    /// The connection of client `id` (see [`Ctx::targets`]).
    pub fn conn_for(&self, id: usize) -> Conn {
        match self.targets.get(id % self.targets.len().max(1)) {
            Some(t) => Conn::new(t.clone(), self.timeout),
            None => self.conn(),
        }
    }

    fn pki(&self, rest: &str) -> String {
        api_path(&format!("{}/{rest}", self.mount.trim_matches('/')))
    }

    fn approle(&self, rest: &str) -> String {
        api_path(&format!(
            "auth/{}/{rest}",
            self.approle_mount.trim_matches('/')
        ))
    }
}

/// One virtual client: its connection and its operation counter.
pub struct Client {
    pub conn: Conn,
    pub id: usize,
    pub seq: u64,
}

/// One operation's result.
#[derive(Debug, Default)]
pub struct Outcome {
    pub requests: u32,
    /// The error key (`500`, `issue 403`, `connection`) and a description, if it failed.
    pub error: Option<(String, String)>,
    /// Nothing was sent: the prepared pool is used up (the run stops).
    pub exhausted: bool,
}

enum Data {
    Issue {
        path: String,
    },
    Sign {
        path: String,
        /// PEM CSRs as JSON string literals.
        csrs: Vec<String>,
    },
    Revoke {
        path: String,
        serials: Vec<String>,
        next: AtomicUsize,
    },
    Crl {
        path: String,
    },
    Ocsp {
        path: String,
        requests: Vec<Bytes>,
    },
    Search {
        path: String,
        bodies: Vec<Bytes>,
    },
    Login {
        path: String,
        body: Bytes,
    },
    KvWrite {
        prefix: String,
    },
    KvRead {
        paths: Vec<String>,
    },
    Mixed {
        login: String,
        login_body: Bytes,
        issue: String,
        renew: String,
        revoke: String,
    },
}

/// A workload ready to run.
pub struct Prepared {
    data: Data,
    /// What preparation made (for the report), and how long it took.
    pub what: String,
    pub seconds: f64,
}

/// Preparation's answer.
pub enum Prep {
    Ready(Prepared),
    /// The server has no such endpoint (`search` on OpenBao); nothing is measured.
    Unsupported(String),
}

/// How many certificates the revoke workload prepares.
#[derive(Debug, Clone, Copy)]
pub enum PoolSize {
    Count(usize),
    /// As many as can be issued in this time.
    Time(Duration),
}

/// What `prepare` needs from the command line.
pub struct PrepArgs {
    pub concurrency: u32,
    pub csrs: u32,
    pub pool: PoolSize,
}

/// Upper bound of a time-boxed pool.
const MAX_POOL: usize = 2_000_000;

/// A request that must succeed during preparation.
async fn must(
    conn: &mut Conn,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> anyhow::Result<Reply> {
    let r = conn
        .json(method.clone(), path, token, body)
        .await
        .map_err(|e| anyhow!("{method} {path}: {e}"))?;
    if !r.ok() {
        bail!("{method} {path}: {}", error_text(&r));
    }
    Ok(r)
}

fn str_at<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr).and_then(Value::as_str)
}

/// A certificate issued during preparation.
struct Issued {
    serial: String,
    name: String,
    issuing_ca: String,
}

/// Issues certificates named `<label><i>.<nonce>.bench.example.com` through `pki/issue/ROLE`
/// with `parallel` connections, until `size` is reached.
async fn pre_issue(
    ctx: &Arc<Ctx>,
    label: &str,
    size: PoolSize,
    parallel: usize,
) -> anyhow::Result<Vec<Issued>> {
    let (count, until) = match size {
        PoolSize::Count(n) => (n, None),
        PoolSize::Time(d) => (MAX_POOL, Some(Instant::now() + d)),
    };
    let counter = Arc::new(AtomicUsize::new(0));
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel.max(1) {
        let ctx = ctx.clone();
        let counter = counter.clone();
        let out = out.clone();
        let label = label.to_string();
        tasks.spawn(async move {
            let mut conn = ctx.conn();
            let path = ctx.pki(&format!("issue/{}", ctx.role));
            loop {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                if i >= count || until.is_some_and(|t| Instant::now() >= t) {
                    return Ok::<(), anyhow::Error>(());
                }
                let name = format!("{label}{i}.{}.bench.example.com", ctx.nonce);
                let body = json!({"common_name": name, "ttl": "72h"});
                let r = must(
                    &mut conn,
                    Method::POST,
                    &path,
                    Some(&ctx.token),
                    Some(&body),
                )
                .await
                .context("issuing certificates before the run")?;
                let v = r.json().unwrap_or(Value::Null);
                let serial = str_at(&v, "/data/serial_number")
                    .ok_or_else(|| anyhow!("{path}: no serial_number in the response"))?
                    .to_string();
                let issuing_ca = str_at(&v, "/data/issuing_ca").unwrap_or("").to_string();
                if let Ok(mut o) = out.lock() {
                    o.push(Issued {
                        serial,
                        name,
                        issuing_ca,
                    });
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r.map_err(|e| anyhow!("preparation task failed: {e}"))? {
            tasks.abort_all();
            return Err(e);
        }
    }
    let issued = std::mem::take(&mut *out.lock().map_err(|_| anyhow!("poisoned"))?);
    Ok(issued)
}

/// `count` EC P-256 CSRs as JSON string literals, each for its own name.
fn make_csrs(count: u32, nonce: &str) -> anyhow::Result<Vec<String>> {
    (0..count)
        .map(|i| {
            let name = format!("csr{i}.{nonce}.bench.example.com");
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            let mut params = rcgen::CertificateParams::new(vec![name.clone()])?;
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
            let pem = params.serialize_request(&key)?.pem()?;
            Ok(serde_json::to_string(&pem)?)
        })
        .collect()
}

/// The AppRole login body for a fresh secret ID of the configured role (root token).
async fn approle_login_body(ctx: &Ctx, conn: &mut Conn) -> anyhow::Result<Bytes> {
    let role = &ctx.approle_role;
    let r = must(
        conn,
        Method::GET,
        &ctx.approle(&format!("role/{role}/role-id")),
        Some(&ctx.token),
        None,
    )
    .await
    .context("reading the AppRole role ID (did `signet-bench setup` run?)")?;
    let role_id = r
        .json()
        .as_ref()
        .and_then(|v| str_at(v, "/data/role_id").map(str::to_string))
        .ok_or_else(|| anyhow!("no role_id in the response"))?;
    let r = must(
        conn,
        Method::POST,
        &ctx.approle(&format!("role/{role}/secret-id")),
        Some(&ctx.token),
        Some(&json!({})),
    )
    .await
    .context("creating an AppRole secret ID")?;
    let secret_id = r
        .json()
        .as_ref()
        .and_then(|v| str_at(v, "/data/secret_id").map(str::to_string))
        .ok_or_else(|| anyhow!("no secret_id in the response"))?;
    Ok(Bytes::from(
        json!({"role_id": role_id, "secret_id": secret_id}).to_string(),
    ))
}

/// Prepares `workload`; nothing here is timed.
pub async fn prepare(ctx: &Arc<Ctx>, workload: Workload, a: &PrepArgs) -> anyhow::Result<Prep> {
    let started = Instant::now();
    let parallel = (a.concurrency as usize).clamp(8, 64);
    let mut conn = ctx.conn();
    let (data, what) = match workload {
        Workload::Issue => (
            Data::Issue {
                path: ctx.pki(&format!("issue/{}", ctx.role)),
            },
            "nothing".to_string(),
        ),
        Workload::Sign => {
            let csrs = make_csrs(a.csrs, &ctx.nonce)?;
            let n = csrs.len();
            (
                Data::Sign {
                    path: ctx.pki(&format!("sign/{}", ctx.role)),
                    csrs,
                },
                format!("{n} EC P-256 CSRs"),
            )
        }
        Workload::Revoke => {
            let issued = pre_issue(ctx, "r", a.pool, parallel).await?;
            let n = issued.len();
            if n == 0 {
                bail!("no certificate could be issued for the revoke pool");
            }
            (
                Data::Revoke {
                    path: ctx.pki("revoke"),
                    serials: issued.into_iter().map(|i| i.serial).collect(),
                    next: AtomicUsize::new(0),
                },
                format!("{n} certificates issued (role {})", ctx.role),
            )
        }
        Workload::CrlFetch => {
            let path = ctx.pki("crl");
            let r = must(&mut conn, Method::GET, &path, None, None).await?;
            if r.body.first() != Some(&0x30) {
                bail!("GET {path}: the answer is not a DER CRL");
            }
            (Data::Crl { path }, "nothing".to_string())
        }
        Workload::Ocsp => {
            let issued = pre_issue(ctx, "o", PoolSize::Count(8), 8).await?;
            let mut requests = Vec::new();
            for (i, c) in issued.iter().enumerate() {
                if i % 2 == 1 {
                    must(
                        &mut conn,
                        Method::POST,
                        &ctx.pki("revoke"),
                        Some(&ctx.token),
                        Some(&json!({"serial_number": c.serial})),
                    )
                    .await?;
                }
                let issuer = ocsp::pem_to_der(&c.issuing_ca).context("issuing_ca")?;
                requests.push(Bytes::from(ocsp::request(
                    &issuer,
                    &ocsp::serial_bytes(&c.serial)?,
                )?));
            }
            let path = ctx.pki("ocsp");
            let r = conn
                .send(
                    Method::POST,
                    &path,
                    None,
                    Some("application/ocsp-request"),
                    requests[0].clone(),
                )
                .await
                .map_err(|e| anyhow!("POST {path}: {e}"))?;
            if !r.ok() {
                bail!("POST {path}: {}", error_text(&r));
            }
            match ocsp::response_status(&r.body) {
                Some(0) => {}
                s => bail!("POST {path}: not a successful OCSP response (responseStatus {s:?})"),
            }
            (
                Data::Ocsp { path, requests },
                "8 certificates issued, 4 of them revoked".to_string(),
            )
        }
        Workload::Search => {
            let path = ctx.pki("certs/search");
            let probe = json!({"name": format!("probe.{}.bench.example.com", ctx.nonce)});
            let r = conn
                .json(Method::POST, &path, Some(&ctx.token), Some(&probe))
                .await
                .map_err(|e| anyhow!("POST {path}: {e}"))?;
            if r.status == 404 || r.status == 405 {
                return Ok(Prep::Unsupported(format!(
                    "POST {path}: {}",
                    error_text(&r)
                )));
            }
            if !r.ok() {
                bail!("POST {path}: {}", error_text(&r));
            }
            let issued = pre_issue(ctx, "s", PoolSize::Count(64), parallel).await?;
            let first = json!({"name": issued.first().map(|i| i.name.as_str()).unwrap_or("")});
            let r = must(
                &mut conn,
                Method::POST,
                &path,
                Some(&ctx.token),
                Some(&first),
            )
            .await?;
            let found = r
                .json()
                .and_then(|v| {
                    v.pointer("/data/keys")
                        .and_then(Value::as_array)
                        .map(Vec::len)
                })
                .unwrap_or(0);
            if found == 0 {
                bail!("{path} found nothing for {first} just issued under a stored role (is role {:?} no_store?)", ctx.role);
            }
            let bodies = issued
                .iter()
                .map(|i| Bytes::from(json!({"name": i.name}).to_string()))
                .collect();
            (
                Data::Search { path, bodies },
                "64 certificates issued".to_string(),
            )
        }
        Workload::ApproleLogin => {
            let body = approle_login_body(ctx, &mut conn).await?;
            (
                Data::Login {
                    path: ctx.approle("login"),
                    body,
                },
                "one AppRole secret ID".to_string(),
            )
        }
        Workload::KvWrite => (
            Data::KvWrite {
                prefix: format!(
                    "{}/{}-",
                    api_path(&format!("{}/bench", ctx.kv_mount.trim_matches('/'))),
                    ctx.nonce
                ),
            },
            "nothing".to_string(),
        ),
        Workload::KvRead => {
            let base = api_path(&format!(
                "{}/bench-read/{}",
                ctx.kv_mount.trim_matches('/'),
                ctx.nonce
            ));
            let paths: Vec<String> = (0..256).map(|i| format!("{base}/{i}")).collect();
            let value: Value = serde_json::from_str(KV_VALUE)?;
            for chunk in paths.chunks(16) {
                let mut tasks = tokio::task::JoinSet::new();
                for p in chunk {
                    let ctx = ctx.clone();
                    let p = p.clone();
                    let value = value.clone();
                    tasks.spawn(async move {
                        let mut c = ctx.conn();
                        must(&mut c, Method::POST, &p, Some(&ctx.token), Some(&value))
                            .await
                            .map(|_| ())
                    });
                }
                while let Some(r) = tasks.join_next().await {
                    r.map_err(|e| anyhow!("{e}"))??;
                }
            }
            (Data::KvRead { paths }, "256 KV keys written".to_string())
        }
        Workload::Mixed => {
            let login_body = approle_login_body(ctx, &mut conn).await?;
            (
                Data::Mixed {
                    login: ctx.approle("login"),
                    login_body,
                    issue: ctx.pki(&format!("issue/{}", ctx.role)),
                    renew: api_path("auth/token/renew-self"),
                    revoke: ctx.pki("revoke"),
                },
                "one AppRole secret ID".to_string(),
            )
        }
    };
    Ok(Prep::Ready(Prepared {
        data,
        what,
        seconds: started.elapsed().as_secs_f64(),
    }))
}

/// Sends one request; a non-2xx status or a transport failure is an error keyed by the
/// status (prefixed with `step` when given).
async fn step(
    c: &mut Client,
    label: Option<&str>,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&'static str>,
    body: Bytes,
) -> Result<Reply, (String, String)> {
    let key = |k: &str| match label {
        Some(l) => format!("{l} {k}"),
        None => k.to_string(),
    };
    match c.conn.send(method, path, token, content_type, body).await {
        Ok(r) if r.ok() => Ok(r),
        Ok(r) => Err((key(&r.status.to_string()), error_text(&r))),
        Err(f) => Err((key(f.key()), f.to_string())),
    }
}

fn single(r: Result<Reply, (String, String)>) -> Outcome {
    Outcome {
        requests: 1,
        error: r.err(),
        exhausted: false,
    }
}

impl Prepared {
    /// One operation.
    pub async fn op(&self, ctx: &Ctx, c: &mut Client) -> Outcome {
        c.seq += 1;
        let token = Some(ctx.token.as_str());
        let unique = || format!("{}-{}-{}.bench.example.com", ctx.nonce, c.id, c.seq);
        match &self.data {
            Data::Issue { path } => {
                let body = format!(r#"{{"common_name":"{}","ttl":{}}}"#, unique(), ctx.ttl_json);
                single(step(c, None, Method::POST, path, token, JSON, body.into()).await)
            }
            Data::Sign { path, csrs } => {
                let csr = &csrs[(c.seq as usize + c.id) % csrs.len()];
                let body = format!(
                    r#"{{"csr":{csr},"common_name":"{}","ttl":{}}}"#,
                    unique(),
                    ctx.ttl_json
                );
                single(step(c, None, Method::POST, path, token, JSON, body.into()).await)
            }
            Data::Revoke {
                path,
                serials,
                next,
            } => {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(serial) = serials.get(i) else {
                    return Outcome {
                        exhausted: true,
                        ..Outcome::default()
                    };
                };
                let body = format!(r#"{{"serial_number":"{serial}"}}"#);
                single(step(c, None, Method::POST, path, token, JSON, body.into()).await)
            }
            Data::Crl { path } => {
                single(step(c, None, Method::GET, path, None, None, Bytes::new()).await)
            }
            Data::Ocsp { path, requests } => {
                let req = requests[(c.seq as usize + c.id) % requests.len()].clone();
                single(
                    step(
                        c,
                        None,
                        Method::POST,
                        path,
                        None,
                        Some("application/ocsp-request"),
                        req,
                    )
                    .await,
                )
            }
            Data::Search { path, bodies } => {
                let body = bodies[(c.seq as usize + c.id) % bodies.len()].clone();
                single(step(c, None, Method::POST, path, token, JSON, body).await)
            }
            Data::Login { path, body } => {
                single(step(c, None, Method::POST, path, None, JSON, body.clone()).await)
            }
            Data::KvWrite { prefix } => {
                let path = format!("{prefix}{}-{}", c.id, c.seq);
                single(
                    step(
                        c,
                        None,
                        Method::POST,
                        &path,
                        token,
                        JSON,
                        Bytes::from_static(KV_VALUE.as_bytes()),
                    )
                    .await,
                )
            }
            Data::KvRead { paths } => {
                let path = &paths[(c.seq as usize + c.id) % paths.len()];
                single(step(c, None, Method::GET, path, token, None, Bytes::new()).await)
            }
            Data::Mixed {
                login,
                login_body,
                issue,
                renew,
                revoke,
            } => {
                let name = unique();
                mixed(
                    c,
                    ctx,
                    [
                        login.as_str(),
                        issue.as_str(),
                        renew.as_str(),
                        revoke.as_str(),
                    ],
                    login_body.clone(),
                    name,
                )
                .await
            }
        }
    }
}

/// An agent's life in four requests: log in, get a certificate, renew the token, revoke.
async fn mixed(
    c: &mut Client,
    ctx: &Ctx,
    [login, issue, renew, revoke]: [&str; 4],
    login_body: Bytes,
    name: String,
) -> Outcome {
    let mut out = Outcome::default();
    out.requests += 1;
    let r = match step(
        c,
        Some("login"),
        Method::POST,
        login,
        None,
        JSON,
        login_body,
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return fail(out, e),
    };
    let Some(token) = r
        .json()
        .and_then(|v| str_at(&v, "/auth/client_token").map(str::to_string))
    else {
        return fail(
            out,
            ("login no-token".into(), "no auth.client_token".into()),
        );
    };
    out.requests += 1;
    let body = format!(r#"{{"common_name":"{name}","ttl":{}}}"#, ctx.ttl_json);
    let r = match step(
        c,
        Some("issue"),
        Method::POST,
        issue,
        Some(&token),
        JSON,
        body.into(),
    )
    .await
    {
        Ok(r) => r,
        Err(e) => return fail(out, e),
    };
    let Some(serial) = r
        .json()
        .and_then(|v| str_at(&v, "/data/serial_number").map(str::to_string))
    else {
        return fail(
            out,
            ("issue no-serial".into(), "no data.serial_number".into()),
        );
    };
    out.requests += 1;
    if let Err(e) = step(
        c,
        Some("renew-self"),
        Method::POST,
        renew,
        Some(&token),
        JSON,
        Bytes::from_static(b"{}"),
    )
    .await
    {
        return fail(out, e);
    }
    out.requests += 1;
    let body = format!(r#"{{"serial_number":"{serial}"}}"#);
    if let Err(e) = step(
        c,
        Some("revoke"),
        Method::POST,
        revoke,
        Some(&token),
        JSON,
        body.into(),
    )
    .await
    {
        return fail(out, e);
    }
    out
}

fn fail(mut out: Outcome, e: (String, String)) -> Outcome {
    out.error = Some(e);
    out
}
