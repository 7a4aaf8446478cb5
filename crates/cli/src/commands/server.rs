//! `signet server`: loads the configuration, opens storage, builds the core with its engines,
//! unseals (dev mode, or a `seal "file"` key), starts the listeners and shuts down cleanly on
//! SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use signet_core::{Core, CoreOptions, Registry, SealKind};
use signet_http::{HttpOptions, DEFAULT_MAX_REQUEST_SIZE};
use signet_storage::backends::{inmem::InmemStorage, sqlite::SqliteStorage};
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
    let physical: Arc<dyn Storage> = if dev {
        let addr = parsed
            .get("dev-listen-address")
            .unwrap_or("127.0.0.1:8200")
            .to_string();
        listeners.insert(
            0,
            ListenerConfig {
                address: addr,
                tls_disable: true,
                tls_cert_file: None,
                tls_key_file: None,
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
        println!(
            "==> signet server started in dev mode\n\n\
WARNING! dev mode is enabled! In this mode, signet runs entirely in-memory\n\
and starts unsealed with a single unseal key. The root token is already\n\
authenticated to the CLI, so you can immediately begin using signet.\n\n\
You may need to set the following environment variables:\n\n    \
$ export VAULT_ADDR='http://{addr}'\n\n\
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
            Ok(false) => {}
            Err(e) => bail!("auto-unseal failed: {e}"),
        }
    }

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
