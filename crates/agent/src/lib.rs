//! The signet agent: logs in (auto-auth), keeps its token renewed, and keeps each
//! `certificate` block's files current — issued once, written atomically as a set, renewed at
//! a configured point of the lifetime with jitter, kept on disk across restarts while still
//! valid, and kept in place (with retries backing off) while the CA is unreachable.
//!
//! It speaks only the public Vault API, so it works against signet, OpenBao and Vault.
//! Modules: `config` (agent.hcl), `auth` (auto-auth and token renewal), `certs` (issuance and
//! the files of a block), `files` (atomic sets of files), `schedule` (pure timing functions).

pub mod auth;
pub mod certs;
pub mod config;
pub mod files;
pub mod metrics;
pub mod schedule;
pub mod template;

use std::sync::Arc;
use std::time::Duration;

use signet_client::{Client, ClientConfig};
use tokio::sync::RwLock;

use crate::config::{AgentConfig, CertBlock};

/// How to run.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunOptions {
    /// Render every block once, then exit (init containers).
    pub once: bool,
    /// Log in, write the sinks, then exit.
    pub exit_after_auth: bool,
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A client carrying the current token.
async fn authed(base: &Client, token: &RwLock<zeroize::Zeroizing<String>>) -> Client {
    let mut c = base.clone();
    c.set_token(Some(token.read().await.to_string()));
    c
}

/// Brings one block up to date: keeps a valid certificate already on disk unless it is due,
/// otherwise issues and writes. Returns the validity of what is in place.
async fn refresh(
    base: &Client,
    token: &RwLock<zeroize::Zeroizing<String>>,
    block: &CertBlock,
    force: bool,
    stats: &metrics::Metrics,
) -> Result<(i64, i64), String> {
    if !force {
        if let Some((nb, na, serial)) = certs::existing(block) {
            let due = schedule::renew_time(nb, na, block.renew, 0.0);
            if now() < due {
                stats.cert_current(&block.name, na);
                tracing::info!(certificate = %block.name, serial = %serial, not_after = na, "keeping the valid certificate on disk");
                return Ok((nb, na));
            }
        }
    }
    let client = authed(base, token).await;
    let asked_at = now();
    let issued = certs::issue(&client, block).await?;
    files::write_set(
        &certs::contents(block, &issued),
        &block.perms,
        block.create_dest_dirs,
    )?;
    stats.cert_written(&block.name, issued.not_after);
    tracing::info!(certificate = %block.name, serial = %issued.serial, not_after = issued.not_after, "certificate written");
    certs::notify(block).await;
    // CAs backdate notBefore (OpenBao and signet by 30 s): the renewal point is a fraction of
    // the lifetime from when the certificate was obtained, not from the backdated start, or a
    // short certificate would be renewed at once, again and again.
    Ok((issued.not_before.max(asked_at), issued.not_after))
}

/// Keeps one block current forever.
async fn keep(
    base: Client,
    token: Arc<RwLock<zeroize::Zeroizing<String>>>,
    block: CertBlock,
    stats: Arc<metrics::Metrics>,
) {
    let mut validity: Option<(i64, i64)> = None;
    let mut force = false;
    let mut attempt = 0u32;
    loop {
        match refresh(&base, &token, &block, force, &stats).await {
            Ok(v) => {
                validity = Some(v);
                attempt = 0;
                let at = schedule::renew_time(v.0, v.1, block.renew, 2.0 * schedule::draw() - 1.0);
                let wait = (at - now()).max(1) as u64;
                tracing::debug!(certificate = %block.name, renew_in_secs = wait, "next renewal");
                tokio::time::sleep(Duration::from_secs(wait)).await;
                force = true;
            }
            Err(e) => {
                stats.cert_failed(&block.name);
                let wait = schedule::backoff(attempt, 1.0, 300.0, schedule::draw());
                attempt += 1;
                match validity {
                    Some((_, na)) if now() >= na => tracing::error!(
                        certificate = %block.name, error = %e, retry_in_secs = wait,
                        "CERTIFICATE EXPIRED and could not be renewed; the old files are still in place"
                    ),
                    _ => tracing::warn!(
                        certificate = %block.name, error = %e, retry_in_secs = wait,
                        "renewal failed; the current files stay in place"
                    ),
                }
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            }
        }
    }
}

/// Keeps a `trust` block's CA bundle current: fetched every `interval`, written (atomically)
/// and announced only when it changed.
async fn keep_trust(
    base: Client,
    token: Arc<RwLock<zeroize::Zeroizing<String>>>,
    t: config::TrustBlock,
) {
    loop {
        match refresh_trust(&base, &token, &t).await {
            Ok(true) => tracing::info!(trust = %t.name, "CA bundle updated"),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(trust = %t.name, error = %e, "could not refresh the CA bundle; the current file stays")
            }
        }
        tokio::time::sleep(Duration::from_secs(t.interval.max(5))).await;
    }
}

/// Fetches a trust block's bundle; writes it when it differs from the file. Returns whether
/// it changed.
async fn refresh_trust(
    base: &Client,
    token: &RwLock<zeroize::Zeroizing<String>>,
    t: &config::TrustBlock,
) -> Result<bool, String> {
    let client = authed(base, token).await;
    let body = client.read_raw(&t.path).await.map_err(|e| e.to_string())?;
    if !body.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!("{} did not return PEM certificates", t.path));
    }
    let body = format!("{}\n", body.trim_end());
    if std::fs::read_to_string(&t.destination).ok().as_deref() == Some(body.as_str()) {
        return Ok(false);
    }
    files::write_set(
        &[(t.destination.clone(), body.into_bytes())],
        &t.perms,
        true,
    )?;
    if let Some((prog, args)) = t.on_change.split_first() {
        match tokio::process::Command::new(prog).args(args).status().await {
            Ok(st) if st.success() => {}
            Ok(st) => tracing::error!(trust = %t.name, status = %st, "on_change failed"),
            Err(e) => tracing::error!(trust = %t.name, error = %e, "on_change could not start"),
        }
    }
    Ok(true)
}

/// Renders a template (fetching what it asks for, consul-template's dependency loop) and
/// writes it when it changed; returns when to render again (epoch seconds).
async fn refresh_template(
    base: &Client,
    token: &RwLock<zeroize::Zeroizing<String>>,
    t: &config::TemplateBlock,
) -> Result<i64, String> {
    let tpl = template::parse(&t.name, &t.text)?;
    let client = authed(base, token).await;
    let mut answers = std::collections::HashMap::new();
    let mut next = now() + 300;
    for _ in 0..32 {
        match template::render(&tpl, &answers) {
            template::Attempt::Done(text) => {
                let changed =
                    std::fs::read(&t.destination).ok().as_deref() != Some(text.as_bytes());
                if changed {
                    files::write_set(
                        &[(t.destination.clone(), text.into_bytes())],
                        &t.perms,
                        t.create_dest_dirs,
                    )?;
                    tracing::info!(template = %t.name, destination = %t.destination.display(), "template rendered");
                    if let Some((prog, args)) = t.command.split_first() {
                        let run = tokio::process::Command::new(prog)
                            .args(args)
                            .kill_on_drop(true)
                            .status();
                        match tokio::time::timeout(
                            Duration::from_secs(t.command_timeout.max(1)),
                            run,
                        )
                        .await
                        {
                            Ok(Ok(st)) if st.success() => {}
                            Ok(Ok(st)) => {
                                tracing::error!(template = %t.name, status = %st, "command failed")
                            }
                            Ok(Err(e)) => {
                                tracing::error!(template = %t.name, error = %e, "command could not start")
                            }
                            Err(_) => tracing::error!(template = %t.name, "command timed out"),
                        }
                    }
                }
                return Ok(next);
            }
            template::Attempt::Failed(e) => return Err(format!("template {}: {e}", t.name)),
            template::Attempt::Missing(calls) => {
                for call in calls {
                    let (func, path, args) = &call;
                    let body: serde_json::Map<String, serde_json::Value> = args
                        .iter()
                        .filter_map(|a| a.split_once('='))
                        .map(|(k, v)| (k.to_string(), serde_json::Value::String(v.to_string())))
                        .collect();
                    let resp = if func == "pkiCert" || !body.is_empty() {
                        client.write(path, &serde_json::Value::Object(body)).await
                    } else {
                        client.read(path).await
                    }
                    .map_err(|e| format!("template {}: {path}: {e}", t.name))?
                    .ok_or_else(|| format!("template {}: no secret at {path}", t.name))?;
                    // Re-render before a certificate in the answer is due, or at 2/3 of a lease.
                    let d = resp.get("data").cloned().unwrap_or_default();
                    if let Some(pem) = d.get("certificate").and_then(|v| v.as_str()) {
                        if let Ok((certs, _)) = signet_crypto::x509::split_bundle(pem) {
                            if let Some(info) = certs
                                .first()
                                .and_then(|c| signet_crypto::x509::cert_info(c).ok())
                            {
                                next = next.min(schedule::renew_time(
                                    info.not_before,
                                    info.not_after,
                                    schedule::RenewPoint::default(),
                                    2.0 * schedule::draw() - 1.0,
                                ));
                            }
                        }
                    } else if let Some(lease) = resp
                        .get("lease_duration")
                        .and_then(|v| v.as_u64())
                        .filter(|l| *l > 0)
                    {
                        next = next.min(now() + schedule::token_renew_in(lease) as i64);
                    }
                    let value = if func == "pkiCert" {
                        template::pki_value(&resp)
                    } else {
                        template::secret_value(&resp)
                    };
                    answers.insert(template::answer_key(&call), value);
                }
            }
        }
    }
    Err(format!(
        "template {}: too many secrets (more than 32 rounds)",
        t.name
    ))
}

/// Keeps a template rendered.
async fn keep_template(
    base: Client,
    token: Arc<RwLock<zeroize::Zeroizing<String>>>,
    t: config::TemplateBlock,
) {
    let mut attempt = 0u32;
    loop {
        match refresh_template(&base, &token, &t).await {
            Ok(next) => {
                attempt = 0;
                tokio::time::sleep(Duration::from_secs((next - now()).max(1) as u64)).await;
            }
            Err(e) => {
                let wait = schedule::backoff(attempt, 1.0, 300.0, schedule::draw());
                attempt += 1;
                tracing::warn!(template = %t.name, error = %e, retry_in_secs = wait, "rendering failed; the destination stays as it was");
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            }
        }
    }
}

/// Keeps the token alive: renews at two thirds of the lease, logs in again when renewal fails.
async fn keep_token(
    base: Client,
    cfg: config::AutoAuth,
    auth: Arc<tokio::sync::Mutex<auth::Authenticator>>,
    token: Arc<RwLock<zeroize::Zeroizing<String>>>,
    mut lease: u64,
    mut renewable: bool,
    stats: Arc<metrics::Metrics>,
) {
    loop {
        if lease == 0 {
            // A token without expiry needs no renewal.
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(Duration::from_secs(schedule::token_renew_in(lease))).await;
        let current = auth::Session {
            token: token.read().await.clone(),
            lease,
            renewable,
        };
        let renewed = if renewable {
            auth::renew(&base, &current)
                .await
                .ok()
                .filter(|s| s.lease > 0)
        } else {
            None
        };
        let next = match renewed {
            Some(s) => Ok(s),
            None => {
                let mut a = auth.lock().await;
                auth::login_with_retry(&mut a, &base, &cfg, 0).await
            }
        };
        match next {
            Ok(s) => {
                if let Err(e) = auth::write_sinks(&cfg, &s) {
                    tracing::error!(error = %e, "writing the token sink failed");
                }
                lease = s.lease;
                renewable = s.renewable;
                *token.write().await = s.token;
                stats
                    .token_renewals
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(lease_secs = lease, "token renewed");
            }
            Err(e) => {
                stats
                    .auth_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(error = %e, "could not renew or obtain a token")
            }
        }
    }
}

/// Why a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// SIGTERM/SIGINT, or the work of `-once` / `exit_after_auth` is done.
    Stop,
    /// SIGHUP: reload the configuration and start again.
    Reload,
}

/// Runs the agent from a configuration file until SIGTERM/SIGINT, reloading it on SIGHUP (a
/// configuration that no longer loads is reported and the running one is kept).
pub async fn serve(path: std::path::PathBuf, opts: RunOptions) -> Result<(), String> {
    let mut cfg = AgentConfig::load(&path).map_err(|e| e.to_string())?;
    // Kept across reloads: a secret ID removed from disk after its first read stays usable,
    // the counters keep counting, and the listener stays up unless its address changed.
    let auth = Arc::new(tokio::sync::Mutex::new(auth::Authenticator::default()));
    let stats = Arc::new(metrics::Metrics::default());
    let mut listener: Option<(String, tokio::task::JoinHandle<()>)> = None;
    loop {
        if listener.as_ref().map(|l| &l.0) != cfg.listener.as_ref() {
            if let Some((_, h)) = listener.take() {
                h.abort();
                let _ = h.await;
            }
            if let Some(addr) = cfg.listener.clone() {
                let tcp = tokio::net::TcpListener::bind(&addr)
                    .await
                    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
                let s = stats.clone();
                let h = tokio::spawn(async move {
                    if let Err(e) = metrics::serve(tcp, s).await {
                        tracing::error!(error = %e, "agent listener failed");
                    }
                });
                listener = Some((addr, h));
            }
        }
        match run_with(cfg.clone(), opts, auth.clone(), stats.clone()).await? {
            Ended::Stop => return Ok(()),
            Ended::Reload => match AgentConfig::load(&path) {
                Ok(c) => {
                    tracing::info!(config = %path.display(), "configuration reloaded");
                    cfg = c;
                }
                Err(e) => {
                    tracing::error!(error = %e, "reloading the configuration failed; keeping the running one")
                }
            },
        }
    }
}

/// Runs the agent until a signal (or, with `once` / `exit_after_auth`, until done).
pub async fn run(cfg: AgentConfig, opts: RunOptions) -> Result<Ended, String> {
    run_with(
        cfg,
        opts,
        Arc::new(tokio::sync::Mutex::new(auth::Authenticator::default())),
        Arc::new(metrics::Metrics::default()),
    )
    .await
}

async fn run_with(
    cfg: AgentConfig,
    opts: RunOptions,
    authenticator: Arc<tokio::sync::Mutex<auth::Authenticator>>,
    stats: Arc<metrics::Metrics>,
) -> Result<Ended, String> {
    let base = Client::new(ClientConfig {
        address: cfg.server.address.clone(),
        token: None,
        ca_cert: cfg.server.ca_cert.clone(),
        tls_skip_verify: cfg.server.tls_skip_verify,
        tls_server_name: cfg.server.tls_server_name.clone(),
    })
    .map_err(|e| e.to_string())?;
    if let Some(p) = &cfg.pid_file {
        files::write_set(
            &[(p.clone(), format!("{}\n", std::process::id()).into_bytes())],
            &files::Perms {
                mode: Some(0o644),
                ..Default::default()
            },
            true,
        )?;
    }
    let Some(aa) = cfg.auto_auth.clone() else {
        return Err("no auto_auth block: nothing to do".into());
    };
    let attempts = if opts.once || opts.exit_after_auth || cfg.exit_after_auth {
        5
    } else {
        0
    };
    let session = {
        let mut a = authenticator.lock().await;
        auth::login_with_retry(&mut a, &base, &aa, attempts).await?
    };
    auth::write_sinks(&aa, &session)?;
    stats
        .authenticated
        .store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(method = %aa.kind, lease_secs = session.lease, "authenticated");
    if opts.exit_after_auth || cfg.exit_after_auth {
        return Ok(Ended::Stop);
    }
    let token = Arc::new(RwLock::new(session.token.clone()));
    if opts.once {
        let mut failed = Vec::new();
        for t in &cfg.trusts {
            if let Err(e) = refresh_trust(&base, &token, t).await {
                failed.push(format!("trust {:?}: {e}", t.name));
            }
        }
        for t in &cfg.templates {
            if let Err(e) = refresh_template(&base, &token, t).await {
                failed.push(e);
            }
        }
        for b in &cfg.certificates {
            if let Err(e) = refresh(&base, &token, b, false, &stats).await {
                tracing::error!(certificate = %b.name, error = %e, "could not write the certificate");
                failed.push(format!("certificate {:?}: {e}", b.name));
            }
        }
        return if failed.is_empty() {
            Ok(Ended::Stop)
        } else {
            Err(failed.join("; "))
        };
    }
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(keep_token(
        base.clone(),
        aa,
        authenticator,
        token.clone(),
        session.lease,
        session.renewable,
        stats.clone(),
    ));
    for b in cfg.certificates.clone() {
        tasks.spawn(keep(base.clone(), token.clone(), b, stats.clone()));
    }
    for t in cfg.trusts.clone() {
        tasks.spawn(keep_trust(base.clone(), token.clone(), t));
    }
    for t in cfg.templates.clone() {
        tasks.spawn(keep_template(base.clone(), token.clone(), t));
    }
    let ended = wait_for_signal().await;
    tracing::info!(reason = ?ended, "stopping the running tasks");
    tasks.abort_all();
    Ok(ended)
}

#[cfg(unix)]
async fn wait_for_signal() -> Ended {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(mut t), Ok(mut i), Ok(mut h)) => {
            tokio::select! {
                _ = t.recv() => Ended::Stop,
                _ = i.recv() => Ended::Stop,
                _ = h.recv() => Ended::Reload,
            }
        }
        _ => std::future::pending::<Ended>().await,
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Ended {
    let _ = tokio::signal::ctrl_c().await;
    Ended::Stop
}
