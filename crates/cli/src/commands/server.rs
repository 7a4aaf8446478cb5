//! `signet server`: loads the configuration, opens storage, builds the core with its engines,
//! unseals (dev mode, or a `seal "file"` key), starts the listeners and shuts down cleanly on
//! SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use signet_core::{Core, CoreError, CoreOptions, Registry, SealKind};
use signet_http::{HttpOptions, DEFAULT_MAX_REQUEST_SIZE};
use signet_storage::backends::{
    inmem::InmemStorage, postgres::PostgresStorage, sqlite::SqliteStorage,
};
use signet_storage::Storage;
use signet_types::Secret;
use tokio::sync::watch;

use crate::config::{ListenerConfig, SealConfig, ServerConfig, StorageConfig};
use crate::flags::{self, Kind};

const FLAGS: &[(&str, Kind)] = &[
    ("config", Kind::Multi),
    ("dev", Kind::Bool),
    ("dev-root-token-id", Kind::Value),
    ("dev-listen-address", Kind::Value),
    ("dev-no-store-token", Kind::Bool),
    ("dev-tls", Kind::Bool),
    ("dev-tls-cert-dir", Kind::Value),
    ("log-level", Kind::Value),
    ("log-format", Kind::Value),
];

/// Entry point of `signet server`.
pub fn run(args: &[String]) -> u8 {
    let parsed = match flags::parse(args, FLAGS) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let started = Instant::now();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error starting the runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(serve(parsed, started)) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("Error: {e:#}");
            1
        }
    }
}

/// The `registry` of engines this binary serves.
pub fn registry() -> Registry {
    Registry::new()
        .secrets("kv", signet_kv::factory())
        .secrets("pki", signet_pki::factory())
        .auth("approle", signet_auth::approle::factory())
        .auth("kubernetes", signet_auth::kubernetes::factory())
        .auth("jwt", signet_auth::jwt_auth::factory())
        .auth("azure", signet_auth::azure::factory())
        .auth("cert", signet_auth::cert::factory())
}

pub(crate) fn init_logging(level: &str, format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "{},hyper=warn,rustls=warn",
        match level {
            "warning" => "warn",
            "err" => "error",
            l => l,
        }
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

fn read_seal_key(path: &PathBuf) -> anyhow::Result<Secret<Vec<u8>>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot read seal key file {}", path.display()))?;
    Ok(Secret::new(bytes))
}

/// `-dev-tls`: a throw-away CA and a server certificate for the dev listener (localhost,
/// 127.0.0.1, ::1 and the listen host), written as `vault-ca.pem`, `vault-cert.pem` and
/// `vault-key.pem` (0600) into `dir`, the names OpenBao's `-dev-tls` uses. Like OpenBao's
/// listener, signet's asks for (and does not require) a client certificate, so the `cert`
/// auth method works against a dev server.
fn dev_tls(dir: &std::path::Path, listen: &str) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    use signet_crypto::x509::{self, CertSpec, KeyType};
    let e = |e: x509::X509Error| anyhow!("cannot make the dev TLS certificates: {e}");
    let kt = KeyType::parse("ec", 256).map_err(e)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let ca_key = x509::generate_key(kt).map_err(e)?;
    let ca_spec = CertSpec {
        common_name: "signet dev CA".into(),
        is_ca: true,
        max_path_length: -1,
        key_usages: x509::filter_key_usages(kt, &["CertSign".into(), "CRLSign".into()]).0,
        not_before: now - 30,
        not_after: now + 365 * 86400,
        serial: x509::random_serial().map_err(e)?,
        ..Default::default()
    };
    let ca_pem = x509::cert_pem(&x509::self_signed(&ca_spec, &ca_key).map_err(e)?);
    let signer = x509::Signer::load(&ca_pem, &ca_key.serialize_pem()).map_err(e)?;
    let host = listen
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']))
        .unwrap_or(listen);
    let mut ips: Vec<std::net::IpAddr> = vec![
        std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::Ipv6Addr::LOCALHOST.into(),
    ];
    let mut dns = vec!["localhost".to_string()];
    match host.parse::<std::net::IpAddr>() {
        Ok(ip) if !ip.is_unspecified() && !ips.contains(&ip) => ips.push(ip),
        Ok(_) => {}
        Err(_) if !host.is_empty() && host != "localhost" => dns.push(host.to_string()),
        Err(_) => {}
    }
    let leaf_key = x509::generate_key(kt).map_err(e)?;
    let leaf = CertSpec {
        common_name: "localhost".into(),
        dns,
        ips,
        server_auth: true,
        key_usages: x509::filter_key_usages(kt, &["DigitalSignature".into()]).0,
        not_before: now - 30,
        not_after: now + 365 * 86400,
        serial: x509::random_serial().map_err(e)?,
        ..Default::default()
    };
    let leaf_der = signer.sign(&leaf, &x509::spki_of(&leaf_key)).map_err(e)?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let (ca, cert, key) = (
        dir.join("vault-ca.pem"),
        dir.join("vault-cert.pem"),
        dir.join("vault-key.pem"),
    );
    let write = |p: &PathBuf, text: &str, mode: u32| -> anyhow::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(p)
            .with_context(|| format!("cannot write {}", p.display()))?;
        f.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", p.display()))
    };
    write(&ca, &format!("{ca_pem}\n"), 0o644)?;
    write(
        &cert,
        &format!("{}\n{ca_pem}\n", x509::cert_pem(&leaf_der)),
        0o644,
    )?;
    write(
        &key,
        &zeroize::Zeroizing::new(format!("{}\n", leaf_key.serialize_pem().trim_end())),
        0o600,
    )?;
    Ok((ca, cert, key))
}

async fn serve(parsed: flags::Parsed, started: Instant) -> anyhow::Result<()> {
    let dev = parsed.bool("dev");
    let mut cfg = ServerConfig::default();
    for file in parsed.all("config") {
        let c = ServerConfig::load(std::path::Path::new(&file)).map_err(|e| anyhow!("{e}"))?;
        cfg.merge(c);
    }
    if cfg.listeners.is_empty() && parsed.all("config").is_empty() && !dev {
        bail!("no configuration given: use -config=FILE, or -dev for a development server");
    }
    let level = parsed
        .get("log-level")
        .map(str::to_string)
        .or(cfg.log_level.clone())
        .unwrap_or_else(|| "info".into());
    let format = parsed
        .get("log-format")
        .map(str::to_string)
        .or(cfg.log_format.clone())
        .unwrap_or_else(|| "text".into());
    init_logging(&level, &format);

    let mut listeners: Vec<ListenerConfig> = cfg.listeners.clone();
    let mut dev_ca: Option<PathBuf> = None;
    let physical: Arc<dyn Storage> = if dev {
        let addr = parsed
            .get("dev-listen-address")
            .unwrap_or("127.0.0.1:8200")
            .to_string();
        let (tls_cert_file, tls_key_file) = if parsed.bool("dev-tls") {
            let dir = match parsed.get("dev-tls-cert-dir") {
                Some(d) => PathBuf::from(d),
                None => std::env::temp_dir().join(format!(
                    "signet-tls{}",
                    hex::encode(signet_crypto::x509::random_serial().map_err(|e| anyhow!("{e}"))?)
                        .get(..10)
                        .unwrap_or("0")
                )),
            };
            let (ca, cert, key) = dev_tls(&dir, &addr)?;
            dev_ca = Some(ca);
            (Some(cert), Some(key))
        } else {
            (None, None)
        };
        listeners.insert(
            0,
            ListenerConfig {
                address: addr,
                tls_disable: tls_cert_file.is_none(),
                tls_cert_file,
                tls_key_file,
                max_request_size: None,
            },
        );
        Arc::new(InmemStorage::new())
    } else {
        match &cfg.storage {
            None => bail!("no storage configured: add storage \"sqlite\" {{ path = \"...\" }} to the configuration"),
            Some(StorageConfig::Inmem) => Arc::new(InmemStorage::new()),
            Some(StorageConfig::Sqlite { path }) => {
                if let Some(dir) = path.parent() {
                    if !dir.as_os_str().is_empty() {
                        std::fs::create_dir_all(dir)
                            .with_context(|| format!("cannot create {}", dir.display()))?;
                    }
                }
                Arc::new(SqliteStorage::open(path).map_err(|e| anyhow!("{e}"))?)
            }
            Some(StorageConfig::Postgres(o)) => {
                // Connects lazily: a database that is down at start is retried, not fatal.
                Arc::new(PostgresStorage::new(o.clone()).map_err(|e| anyhow!("{e}"))?)
            }
        }
    };
    if listeners.is_empty() {
        bail!("no listener configured: add listener \"tcp\" {{ address = \"127.0.0.1:8200\" tls_disable = true }}");
    }
    let seal = match (&cfg.seal, dev) {
        (Some(SealConfig::File { path }), false) => SealKind::File(read_seal_key(path)?),
        _ => SealKind::Shamir,
    };
    let mut devices: Vec<Arc<dyn signet_core::audit::AuditDevice>> = Vec::new();
    for a in &cfg.audit {
        let dev = signet_audit::build(&a.kind, &a.name, &a.description, &a.options)
            .map_err(|e| anyhow::anyhow!("cannot open audit device {:?}: {e}", a.name))?;
        devices.push(dev);
    }
    let core = Core::new(
        physical,
        CoreOptions {
            registry: registry(),
            seal,
            audit: devices,
            audit_factory: Some(signet_audit::factory()),
            allow_api_audit: cfg.unsafe_allow_api_audit_creation,
        },
    );
    spawn_reopen_on_hup(core.clone());

    // Bind every listener before announcing anything.
    let mut bound = Vec::new();
    for l in &listeners {
        let tls = if l.tls_disable {
            None
        } else {
            let (Some(cert), Some(key)) = (&l.tls_cert_file, &l.tls_key_file) else {
                bail!(
                    "listener {} needs tls_cert_file and tls_key_file",
                    l.address
                );
            };
            Some(signet_http::tls_config(cert, key)?)
        };
        let listener = tokio::net::TcpListener::bind(&l.address)
            .await
            .with_context(|| format!("cannot listen on {}", l.address))?;
        let opts = HttpOptions {
            max_request_size: l.max_request_size.unwrap_or(DEFAULT_MAX_REQUEST_SIZE),
        };
        bound.push((listener, tls, opts));
    }

    if dev {
        let token_id = parsed.get("dev-root-token-id").map(str::to_string);
        let (key, root) = core
            .dev_bootstrap(token_id)
            .await
            .map_err(|e| anyhow!("dev bootstrap failed: {e}"))?;
        let addr: SocketAddr = bound[0].0.local_addr()?;
        if !parsed.bool("dev-no-store-token") {
            if let Some(home) = std::env::var_os("HOME") {
                let _ = std::fs::write(
                    PathBuf::from(home).join(".vault-token"),
                    root.expose_secret(),
                );
            }
        }
        let (scheme, ca_line) = match &dev_ca {
            Some(ca) => (
                "https",
                format!("    $ export VAULT_CACERT='{}'\n", ca.display()),
            ),
            None => ("http", String::new()),
        };
        println!(
            "==> signet server started in dev mode\n\n\
WARNING! dev mode is enabled! In this mode, signet runs entirely in-memory\n\
and starts unsealed with a single unseal key. The root token is already\n\
authenticated to the CLI, so you can immediately begin using signet.\n\n\
You may need to set the following environment variables:\n\n    \
$ export VAULT_ADDR='{scheme}://{addr}'\n{ca_line}\n\
The unseal key and root token are displayed below in case you want to\n\
seal/unseal the server or re-authenticate.\n\n\
Unseal Key: {}\n\
Root Token: {}\n\n\
Development mode should NOT be used in production installations!\n",
            base64::engine::general_purpose::STANDARD.encode(key.expose_secret()),
            root.expose_secret()
        );
    } else {
        match core.auto_unseal().await {
            Ok(true) => tracing::info!("unsealed with the seal key file"),
            Ok(false) => spawn_auto_unseal_retry(core.clone()),
            Err(CoreError::Status(503, _)) => {
                tracing::warn!("storage unavailable at start; the node stays sealed and retries");
                spawn_auto_unseal_retry(core.clone());
            }
            Err(e) => bail!("auto-unseal failed: {e}"),
        }
    }

    let first = bound[0].0.local_addr()?;
    let scheme = if bound[0].1.is_some() {
        "https"
    } else {
        "http"
    };
    let api_addr = cfg
        .api_addr
        .clone()
        .unwrap_or_else(|| format!("{scheme}://{first}"));
    core.set_advertise(&api_addr, cfg.cluster_addr.as_deref().unwrap_or(""));
    core.start_cluster();
    core.start_maintenance(std::time::Duration::from_secs(60));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = Vec::new();
    for (listener, tls, opts) in bound {
        let addr = listener.local_addr()?;
        tracing::info!(%addr, tls = tls.is_some(), "listening");
        let app = signet_http::router(core.clone(), opts);
        let mut rx = stop_rx.clone();
        tasks.push(tokio::spawn(signet_http::serve(
            listener,
            tls,
            app,
            async move {
                let _ = rx.wait_for(|s| *s).await;
            },
        )));
    }
    tracing::info!(
        millis = started.elapsed().as_millis() as u64,
        sealed = core.is_sealed(),
        version = signet_core::VERSION,
        "signet server started"
    );

    wait_for_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    for t in tasks {
        let _ = t.await;
    }
    core.seal().await.ok();
    Ok(())
}

/// With a seal key file, keeps trying to unseal while sealed: the storage was unreachable at
/// start, or another node of the cluster has not initialised it yet. Backs off to 5 s; stops
/// once unsealed (a later `sys/seal` is the operator's decision and stays).
fn spawn_auto_unseal_retry(core: Arc<Core>) {
    if !matches!(core.seal_kind(), SealKind::File(_)) {
        return;
    }
    tokio::spawn(async move {
        let mut wait = std::time::Duration::from_millis(500);
        loop {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(std::time::Duration::from_secs(5));
            if !core.is_sealed() {
                return;
            }
            match core.auto_unseal().await {
                Ok(true) => {
                    tracing::info!("unsealed with the seal key file");
                    return;
                }
                Ok(false) => {}
                Err(CoreError::Status(503, _)) => {}
                Err(e) => tracing::error!(error = %e, "auto-unseal failed"),
            }
        }
    });
}

/// Reopens the audit devices on SIGHUP (logrotate moved the file away).
#[cfg(unix)]
fn spawn_reopen_on_hup(core: Arc<Core>) {
    tokio::spawn(async move {
        let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            return;
        };
        while hup.recv().await.is_some() {
            for (device, e) in core.audit().reopen_all() {
                tracing::error!(device = %device, error = %e, "reopening an audit device failed");
            }
            tracing::info!("audit devices reopened (SIGHUP)");
        }
    });
}

#[cfg(not(unix))]
fn spawn_reopen_on_hup(_core: Arc<Core>) {}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut t), Ok(mut i)) => {
            tokio::select! {
                _ = t.recv() => {}
                _ = i.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
