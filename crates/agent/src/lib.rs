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
    /// Log in, write the sinks, render every block once, then exit: what Vault Agent's
    /// `exit_after_auth` does (it renders its templates once before exiting), so the same as
    /// `once`.
    pub exit_after_auth: bool,
}

/// Why a block could not be brought up to date. A `permanent` failure (the CA refused the
/// request, a destination cannot be written, a template fails to execute) stops the agent at
/// start; anything else (the CA unreachable or failing) is retried with backoff.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub permanent: bool,
}

impl Failure {
    /// A failed API call: 4xx answers (but 412 and 429) are permanent.
    pub fn api(context: &str, e: signet_client::ClientError) -> Failure {
        let permanent = match &e {
            signet_client::ClientError::Api { status, .. } => {
                (400..500).contains(status) && *status != 412 && *status != 429
            }
            signet_client::ClientError::Config(_) => true,
            signet_client::ClientError::Transport(_) => false,
        };
        Failure {
            message: format!("{context}{e}"),
            permanent,
        }
    }

    /// A failure worth retrying.
    pub fn transient(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            permanent: false,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// Local problems (a file that cannot be written, a key that cannot be made) are permanent.
impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure {
            message,
            permanent: true,
        }
    }
}

impl From<&str> for Failure {
    fn from(message: &str) -> Failure {
        Failure::from(message.to_string())
    }
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
) -> Result<(i64, i64), Failure> {
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
    initial: Option<(i64, i64)>,
) -> Result<(), String> {
    let mut validity: Option<(i64, i64)> = None;
    let mut force = false;
    let mut attempt = 0u32;
    let mut first = initial.map(Ok);
    loop {
        let outcome = match first.take() {
            Some(v) => v,
            None => refresh(&base, &token, &block, force, &stats).await,
        };
        match outcome {
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
    skip_first: bool,
) -> Result<(), String> {
    if skip_first {
        tokio::time::sleep(Duration::from_secs(t.interval.max(5))).await;
    }
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
) -> Result<bool, Failure> {
    let client = authed(base, token).await;
    let body = client
        .read_raw(&t.path)
        .await
        .map_err(|e| Failure::api("", e))?;
    if !body.contains("-----BEGIN CERTIFICATE-----") {
        return Err(format!("{} did not return PEM certificates", t.path).into());
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
    tc: &config::TemplateConfig,
) -> Result<i64, Failure> {
    let tpl = template::parse(&t.name, &t.text)?;
    let client = authed(base, token).await;
    let mut answers = std::collections::HashMap::new();
    let mut next = now() + tc.static_secret_render_interval as i64;
    for _ in 0..32 {
        match template::render(&tpl, &answers) {
            template::Attempt::Done(text) => {
                // Go's text/template renders a missing key as "<no value>".
                if t.error_on_missing_key && text.contains("<no value>") {
                    return Err(format!(
                        "template {}: the template reads a key the data does not have (error_on_missing_key)",
                        t.name
                    )
                    .into());
                }
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
            template::Attempt::Failed(e) => return Err(format!("template {}: {e}", t.name).into()),
            template::Attempt::Missing(calls) => {
                for call in calls {
                    let (func, path, args) = &call;
                    // pkiCert keeps the certificate already in the destination while it is
                    // valid and not due (Vault Agent's answer to re-issuing on restart).
                    if func == "pkiCert" {
                        if let Some((value, due)) =
                            template::pki_from_file(&t.destination, tc.lease_renewal_threshold)
                        {
                            next = next.min(due);
                            answers.insert(template::answer_key(&call), value);
                            continue;
                        }
                    }
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
                    .map_err(|e| Failure::api(&format!("template {}: {path}: ", t.name), e))?
                    .ok_or_else(|| {
                        Failure::transient(format!("template {}: no secret at {path}", t.name))
                    })?;
                    // Render again at lease_renewal_threshold of a certificate's lifetime or of
                    // a lease.
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
                                    schedule::RenewPoint::Fraction(tc.lease_renewal_threshold),
                                    2.0 * schedule::draw() - 1.0,
                                ));
                            }
                        }
                    } else if let Some(lease) = resp
                        .get("lease_duration")
                        .and_then(|v| v.as_u64())
                        .filter(|l| *l > 0)
                    {
                        next = next.min(
                            now() + ((lease as f64 * tc.lease_renewal_threshold) as i64).max(1),
                        );
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
    )
    .into())
}

/// Keeps a template rendered. Failed renders are retried with backoff (250 ms doubling to a
/// minute, as consul-template); after `num_retries` consecutive failures, with
/// `exit_on_retry_failure`, the agent stops with the error.
async fn keep_template(
    base: Client,
    token: Arc<RwLock<zeroize::Zeroizing<String>>>,
    t: config::TemplateBlock,
    tc: config::TemplateConfig,
    num_retries: u32,
    initial: Option<i64>,
) -> Result<(), String> {
    let mut attempt = 0u32;
    let mut first = initial.map(Ok);
    loop {
        let outcome = match first.take() {
            Some(v) => v,
            None => refresh_template(&base, &token, &t, &tc).await,
        };
        match outcome {
            Ok(next) => {
                attempt = 0;
                tokio::time::sleep(Duration::from_secs((next - now()).max(1) as u64)).await;
            }
            Err(e) => {
                if attempt >= num_retries && tc.exit_on_retry_failure {
                    return Err(format!(
                        "{e} (after {num_retries} retries; exit_on_retry_failure is set)"
                    ));
                }
                let wait = schedule::backoff(attempt, 0.25, 60.0, schedule::draw());
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
) -> Result<(), String> {
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
    let mut first = true;
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
        let ended = run_with(cfg.clone(), opts, auth.clone(), stats.clone(), first).await?;
        first = false;
        match ended {
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
        true,
    )
    .await
}

async fn run_with(
    cfg: AgentConfig,
    opts: RunOptions,
    authenticator: Arc<tokio::sync::Mutex<auth::Authenticator>>,
    stats: Arc<metrics::Metrics>,
    startup: bool,
) -> Result<Ended, String> {
    let base = Client::new(ClientConfig {
        address: cfg.server.address.clone(),
        token: None,
        ca_cert: cfg.server.ca_cert.clone(),
        tls_skip_verify: cfg.server.tls_skip_verify,
        tls_server_name: cfg.server.tls_server_name.clone(),
        client_cert: cfg.server.client_cert.clone(),
        client_key: cfg.server.client_key.clone(),
    })
    .map_err(|e| format!("vault block: {e}"))?;
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
    let login_base = auth::login_client(&cfg.server, &aa)?;
    let session = {
        let mut a = authenticator.lock().await;
        auth::login_with_retry(&mut a, &login_base, &aa, attempts).await?
    };
    auth::write_sinks(&aa, &session)?;
    stats
        .authenticated
        .store(true, std::sync::atomic::Ordering::Relaxed);
    tracing::info!(method = %aa.kind, lease_secs = session.lease, "authenticated");
    let token = Arc::new(RwLock::new(session.token.clone()));
    // One pass over every block before the keepers start. With -once / exit_after_auth it is
    // the whole run, and any failure is the run's error. Otherwise, at start-up, what the CA
    // refuses or what cannot be written stops the agent with exit code 1 and the block named;
    // an unreachable CA does not (the keepers retry, the files on disk stay).
    let once = opts.once || opts.exit_after_auth || cfg.exit_after_auth;
    let mut fatal = Vec::new();
    let mut note = |what: String, e: &Failure| {
        if once || (startup && e.permanent) {
            fatal.push(format!("{what}: {e}"));
        } else {
            tracing::warn!(block = %what, error = %e, "not up to date yet; retrying in the background");
        }
    };
    let mut first_trust = Vec::new();
    for t in &cfg.trusts {
        let r = refresh_trust(&base, &token, t).await;
        if let Err(e) = &r {
            note(format!("trust {:?}", t.name), e);
        }
        first_trust.push(r.is_ok());
    }
    let mut first_template = Vec::new();
    for t in &cfg.templates {
        let r = refresh_template(&base, &token, t, &cfg.template_config).await;
        if let Err(e) = &r {
            note(format!("template {:?}", t.name), e);
        }
        first_template.push(r.ok());
    }
    let mut first_cert = Vec::new();
    for b in &cfg.certificates {
        let r = refresh(&base, &token, b, false, &stats).await;
        if let Err(e) = &r {
            stats.cert_failed(&b.name);
            note(format!("certificate {:?}", b.name), e);
        }
        first_cert.push(r.ok());
    }
    if !fatal.is_empty() {
        return Err(fatal.join("; "));
    }
    if once {
        return Ok(Ended::Stop);
    }
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn(keep_token(
        login_base,
        aa,
        authenticator,
        token.clone(),
        session.lease,
        session.renewable,
        stats.clone(),
    ));
    for (b, v) in cfg.certificates.iter().zip(first_cert) {
        tasks.spawn(keep(
            base.clone(),
            token.clone(),
            b.clone(),
            stats.clone(),
            v,
        ));
    }
    for (t, ok) in cfg.trusts.iter().zip(first_trust) {
        tasks.spawn(keep_trust(base.clone(), token.clone(), t.clone(), ok));
    }
    for (t, next) in cfg.templates.iter().zip(first_template) {
        tasks.spawn(keep_template(
            base.clone(),
            token.clone(),
            t.clone(),
            cfg.template_config.clone(),
            cfg.server.num_retries,
            next,
        ));
    }
    let outcome = tokio::select! {
        ended = wait_for_signal() => Ok(ended),
        e = first_fatal(&mut tasks) => Err(e),
    };
    match &outcome {
        Ok(ended) => tracing::info!(reason = ?ended, "stopping the running tasks"),
        Err(e) => tracing::error!(error = %e, "stopping"),
    }
    tasks.abort_all();
    outcome
}

/// The first error a running task stops with (they otherwise run until aborted).
async fn first_fatal(tasks: &mut tokio::task::JoinSet<Result<(), String>>) -> String {
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return e,
            Err(e) => return format!("a task of the agent failed: {e}"),
        }
    }
    std::future::pending::<String>().await
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
