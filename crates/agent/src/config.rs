//! `agent.hcl`, in the Vault/OpenBao Agent shape so existing configurations run unchanged, plus
//! signet's `certificate` and `trust` blocks. Unknown keys are errors naming the line.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use signet_types::hcl::{self, Block, Body, ConfError};

use crate::files::{parse_mode, Perms};
use crate::schedule::{parse_renew_at, RenewPoint};

/// Where the server is.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    pub address: String,
    pub ca_cert: Option<PathBuf>,
    pub tls_skip_verify: bool,
    pub tls_server_name: Option<String>,
    /// A client certificate presented to the server (TLS client authentication).
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// `retry { num_retries }`: how many times a failed template render is retried before
    /// `exit_on_retry_failure` applies (Vault's default 12; -1 disables retries).
    pub num_retries: u32,
}

/// `template_config { ... }`.
#[derive(Debug, Clone)]
pub struct TemplateConfig {
    /// Exit (code 1) when a template still fails after the retries.
    pub exit_on_retry_failure: bool,
    /// How often templates whose secrets have no lease are rendered again (default 5m).
    pub static_secret_render_interval: u64,
    /// Fraction of a certificate's lifetime (or a lease) after which a template is rendered
    /// again (default 0.9, as Vault Agent).
    pub lease_renewal_threshold: f64,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        TemplateConfig {
            exit_on_retry_failure: false,
            static_secret_render_interval: 300,
            lease_renewal_threshold: 0.9,
        }
    }
}

/// `auto_auth { method "TYPE" { ... } sink "file" { ... } }`.
#[derive(Debug, Clone)]
pub struct AutoAuth {
    pub kind: String,
    pub mount_path: String,
    pub config: Map<String, Value>,
    pub sinks: Vec<(PathBuf, Perms)>,
    /// Exit when a login fails instead of retrying (Vault Agent's `exit_on_err`).
    pub exit_on_err: bool,
    pub min_backoff: f64,
    pub max_backoff: f64,
}

/// A `certificate "NAME" { ... }` block.
#[derive(Debug, Clone)]
pub struct CertBlock {
    pub name: String,
    /// `<mount>/issue/<role>` or `<mount>/sign/<role>` (with `csr = true`).
    pub path: String,
    pub csr: bool,
    pub key_type: String,
    pub key_bits: u64,
    pub common_name: String,
    pub alt_names: Vec<String>,
    pub ip_sans: Vec<String>,
    pub uri_sans: Vec<String>,
    pub ttl: Option<String>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub chain_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub bundle_file: Option<PathBuf>,
    pub perms: Perms,
    pub create_dest_dirs: bool,
    pub renew: RenewPoint,
    pub on_change: Vec<String>,
    pub reload_signal: Option<String>,
    pub signal_pid_file: Option<PathBuf>,
    pub line: usize,
}

/// A `trust "NAME" { path, destination, on_change }` block: a CA bundle kept up to date.
#[derive(Debug, Clone)]
pub struct TrustBlock {
    pub name: String,
    pub path: String,
    pub destination: PathBuf,
    pub perms: Perms,
    pub on_change: Vec<String>,
    pub interval: u64,
}

/// A `template { ... }` block (consul-template syntax).
#[derive(Debug, Clone)]
pub struct TemplateBlock {
    /// The source path, or `contents #N`.
    pub name: String,
    pub text: String,
    pub destination: PathBuf,
    pub perms: Perms,
    pub create_dest_dirs: bool,
    /// Fail the render when the template reads a key the data lacks (Go renders
    /// `<no value>` otherwise).
    pub error_on_missing_key: bool,
    /// argv; a `command` string runs through `sh -c`, as consul-template does.
    pub command: Vec<String>,
    pub command_timeout: u64,
}

/// The whole agent configuration.
#[derive(Debug, Clone, Default)]
pub struct AgentConfig {
    /// `listener "tcp" { address }`: serves `/health` and `/metrics`.
    pub listener: Option<String>,
    pub templates: Vec<TemplateBlock>,
    pub server: ServerConfig,
    pub auto_auth: Option<AutoAuth>,
    pub certificates: Vec<CertBlock>,
    pub trusts: Vec<TrustBlock>,
    pub exit_after_auth: bool,
    pub pid_file: Option<PathBuf>,
    pub template_config: TemplateConfig,
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() {
        p
    } else {
        base.parent().unwrap_or_else(|| Path::new(".")).join(p)
    }
}

fn strings(body: &Body, key: &str) -> Result<Vec<String>, ConfError> {
    match body.attr(key) {
        None => Ok(vec![]),
        Some(a) => match &a.value {
            Value::String(s) => Ok(s
                .split(',')
                .map(|x| x.trim().to_string())
                .filter(|x| !x.is_empty())
                .collect()),
            Value::Array(v) => v
                .iter()
                .map(|x| {
                    x.as_str().map(String::from).ok_or_else(|| {
                        body.error(a.line, format!("{key:?} must be a list of strings"))
                    })
                })
                .collect(),
            _ => Err(body.error(a.line, format!("{key:?} must be a list of strings"))),
        },
    }
}

fn duration(body: &Body, key: &str) -> Result<Option<u64>, ConfError> {
    match body.attr(key) {
        None => Ok(None),
        Some(a) => {
            let v = match &a.value {
                Value::Number(n) => return Ok(n.as_u64()),
                Value::String(s) => s.clone(),
                _ => return Err(body.error(a.line, format!("{key:?} must be a duration"))),
            };
            signet_types::duration::parse_duration_str(&v)
                .map(Some)
                .map_err(|e| body.error(a.line, format!("invalid {key} {v:?}: {e}")))
        }
    }
}

/// `config { ... }` or `config = { ... }` (Vault's documentation uses both).
fn config_map(b: &Block) -> Map<String, Value> {
    if let Some(c) = b.body.blocks("config").next() {
        return c
            .body
            .attrs
            .iter()
            .map(|a| (a.key.clone(), a.value.clone()))
            .collect();
    }
    match b.body.attr("config").map(|a| &a.value) {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    }
}

fn perms(body: &Body) -> Result<Perms, ConfError> {
    let mode = match body.string("mode")?.or(body.string("perms")?) {
        None => None,
        Some(m) => Some(parse_mode(&m).map_err(|e| {
            let line = body
                .attr("mode")
                .or(body.attr("perms"))
                .map(|a| a.line)
                .unwrap_or(0);
            body.error(line, e)
        })?),
    };
    Ok(Perms {
        mode,
        owner: body.string("owner")?,
        group: body.string("group")?,
    })
}

const METHODS: &[&str] = &[
    "approle",
    "token_file",
    "kubernetes",
    "jwt",
    "cert",
    "azure",
];

impl AgentConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfError> {
        let body = hcl::parse_file(path)?;
        Self::from_body(&body, path)
    }

    fn from_body(body: &Body, path: &Path) -> Result<AgentConfig, ConfError> {
        body.reject_unknown(
            &["exit_after_auth", "pid_file"],
            &[
                "vault",
                "signet",
                "auto_auth",
                "certificate",
                "trust",
                "template",
                "template_config",
                "listener",
                "cache",
            ],
            "",
        )?;
        let mut cfg = AgentConfig {
            exit_after_auth: body.bool("exit_after_auth")?.unwrap_or(false),
            pid_file: body.string("pid_file")?.map(|p| resolve(path, &p)),
            ..Default::default()
        };
        cfg.server.num_retries = 12;
        for (n, t) in body.blocks("template").enumerate() {
            t.body.reject_unknown(
                &[
                    "source",
                    "contents",
                    "destination",
                    "perms",
                    "create_dest_dirs",
                    "error_on_missing_key",
                    "command",
                    "command_timeout",
                    "backup",
                    "wait",
                ],
                &["exec", "wait"],
                " in template",
            )?;
            let (name, text) = match (t.body.string("source")?, t.body.string("contents")?) {
                (Some(src), None) => {
                    let p = resolve(path, &src);
                    let text = std::fs::read_to_string(&p).map_err(|e| {
                        t.body.error(
                            t.line,
                            format!("cannot read template source {}: {e}", p.display()),
                        )
                    })?;
                    (p.display().to_string(), text)
                }
                (None, Some(c)) => (format!("contents #{}", n + 1), c),
                _ => {
                    return Err(t
                        .body
                        .error(t.line, "template needs exactly one of source or contents"))
                }
            };
            // A template that does not parse fails the start, naming the block.
            crate::template::parse(&name, &text).map_err(|e| t.body.error(t.line, e))?;
            let destination = t
                .body
                .string("destination")?
                .map(|p| resolve(path, &p))
                .ok_or_else(|| t.body.error(t.line, "template needs a destination"))?;
            let mut command = match t.body.attr("command").map(|a| &a.value) {
                Some(Value::String(c)) if !c.is_empty() => {
                    vec!["sh".into(), "-c".into(), c.clone()]
                }
                Some(Value::Array(_)) => strings(&t.body, "command")?,
                _ => vec![],
            };
            let mut timeout = duration(&t.body, "command_timeout")?.unwrap_or(30);
            if let Some(e) = t.body.blocks("exec").next() {
                e.body
                    .reject_unknown(&["command", "timeout", "env"], &[], " in exec")?;
                command = match e.body.attr("command").map(|a| &a.value) {
                    Some(Value::String(c)) => vec!["sh".into(), "-c".into(), c.clone()],
                    _ => strings(&e.body, "command")?,
                };
                timeout = duration(&e.body, "timeout")?.unwrap_or(30);
            }
            cfg.templates.push(TemplateBlock {
                name,
                text,
                destination,
                perms: {
                    let mut p = perms(&t.body)?;
                    if p.mode.is_none() {
                        p.mode = Some(0o644);
                    }
                    p
                },
                create_dest_dirs: t.body.bool("create_dest_dirs")?.unwrap_or(true),
                error_on_missing_key: t.body.bool("error_on_missing_key")?.unwrap_or(false),
                command,
                command_timeout: timeout,
            });
        }
        for tc in body.blocks("template_config") {
            // max_connections_per_host is accepted and has no effect: the agent keeps one
            // keep-alive connection pool per server.
            tc.body.reject_unknown(
                &[
                    "exit_on_retry_failure",
                    "static_secret_render_interval",
                    "max_connections_per_host",
                    "lease_renewal_threshold",
                ],
                &[],
                " in template_config",
            )?;
            let d = TemplateConfig::default();
            let threshold = match tc.body.attr("lease_renewal_threshold") {
                None => d.lease_renewal_threshold,
                Some(a) => a
                    .value
                    .as_f64()
                    .or_else(|| a.value.as_str().and_then(|s| s.parse().ok()))
                    .filter(|f| *f > 0.0 && *f < 1.0)
                    .ok_or_else(|| {
                        tc.body.error(
                            a.line,
                            "lease_renewal_threshold must be a fraction between 0 and 1",
                        )
                    })?,
            };
            cfg.template_config = TemplateConfig {
                exit_on_retry_failure: tc
                    .body
                    .bool("exit_on_retry_failure")?
                    .unwrap_or(d.exit_on_retry_failure),
                static_secret_render_interval: duration(&tc.body, "static_secret_render_interval")?
                    .unwrap_or(d.static_secret_render_interval)
                    .max(1),
                lease_renewal_threshold: threshold,
            };
        }
        for l in body.blocks("listener") {
            l.body
                .reject_unknown(&["address", "tls_disable", "type"], &[], " in listener")?;
            if !l.body.bool("tls_disable")?.unwrap_or(false) {
                return Err(l.body.error(
                    l.line,
                    "the agent's listener serves /health and /metrics over plain HTTP: set tls_disable = true",
                ));
            }
            cfg.listener = Some(
                l.body
                    .string("address")?
                    .ok_or_else(|| l.body.error(l.line, "listener needs an address"))?,
            );
        }
        for b in body.blocks("vault").chain(body.blocks("signet")) {
            b.body.reject_unknown(
                &[
                    "address",
                    "ca_cert",
                    "ca_path",
                    "tls_skip_verify",
                    "tls_server_name",
                    "client_cert",
                    "client_key",
                ],
                &["retry"],
                " in vault",
            )?;
            let mut num_retries = 12;
            for r in b.body.blocks("retry") {
                r.body
                    .reject_unknown(&["num_retries"], &[], " in vault retry")?;
                num_retries = match r.body.i64("num_retries")? {
                    None | Some(0) => 12,
                    Some(n) if n < 0 => 0,
                    Some(n) => n.min(1_000_000) as u32,
                };
            }
            let client_cert = b.body.string("client_cert")?.map(|p| resolve(path, &p));
            let client_key = b.body.string("client_key")?.map(|p| resolve(path, &p));
            if client_cert.is_some() != client_key.is_some() {
                return Err(b
                    .body
                    .error(b.line, "client_cert and client_key go together"));
            }
            cfg.server = ServerConfig {
                address: b.body.string("address")?.unwrap_or_default(),
                ca_cert: b.body.string("ca_cert")?.map(|p| resolve(path, &p)),
                tls_skip_verify: b.body.bool("tls_skip_verify")?.unwrap_or(false),
                tls_server_name: b.body.string("tls_server_name")?,
                client_cert,
                client_key,
                num_retries,
            };
        }
        if cfg.server.address.is_empty() {
            cfg.server.address = std::env::var("VAULT_ADDR")
                .or_else(|_| std::env::var("BAO_ADDR"))
                .unwrap_or_default();
        }
        if cfg.server.address.is_empty() {
            return Err(body.error(
                0,
                "no server address: set vault { address = \"https://...\" } or VAULT_ADDR",
            ));
        }
        for b in body.blocks("auto_auth") {
            b.body
                .reject_unknown(&[], &["method", "sink"], " in auto_auth")?;
            let m = b
                .body
                .blocks("method")
                .next()
                .ok_or_else(|| b.body.error(b.line, "auto_auth needs a method block"))?;
            let kind = m
                .labels
                .first()
                .cloned()
                .or(m.body.string("type")?)
                .ok_or_else(|| {
                    m.body
                        .error(m.line, "method needs a type: method \"approle\" { ... }")
                })?;
            if !METHODS.contains(&kind.as_str()) {
                return Err(m
                    .body
                    .error(m.line, format!("unknown auto_auth method {kind:?}")));
            }
            m.body.reject_unknown(
                &[
                    "type",
                    "mount_path",
                    "namespace",
                    "config",
                    "min_backoff",
                    "max_backoff",
                    "exit_on_err",
                ],
                &["config"],
                &format!(" in method {kind:?}"),
            )?;
            let mut config = config_map(m);
            for (k, v) in config.iter_mut() {
                if k.ends_with("_path")
                    || matches!(k.as_str(), "ca_cert" | "client_cert" | "client_key")
                {
                    if let Value::String(s) = v {
                        *s = resolve(path, s).display().to_string();
                    }
                }
            }
            let known: &[&str] = match kind.as_str() {
                "approle" => &[
                    "role_id_file_path",
                    "secret_id_file_path",
                    "remove_secret_id_file_after_reading",
                    "secret_id_response_wrapping_path",
                ],
                "kubernetes" => &["role", "token_path"],
                "jwt" => &[
                    "role",
                    "path",
                    "remove_jwt_after_reading",
                    "remove_jwt_follows_symlinks",
                ],
                "azure" => &[
                    "role",
                    "resource",
                    "object_id",
                    "client_id",
                    "metadata_address",
                ],
                "cert" => &["name", "ca_cert", "client_cert", "client_key", "reload"],
                _ => &["token_file_path"],
            };
            if let Some(bad) = config.keys().find(|k| !known.contains(&k.as_str())) {
                return Err(m.body.error(
                    m.line,
                    format!("unknown key {bad:?} in the config of method {kind:?}"),
                ));
            }
            if kind == "cert" {
                let has = |k: &str| config.get(k).and_then(Value::as_str).is_some();
                if has("client_cert") != has("client_key") {
                    return Err(m.body.error(
                        m.line,
                        "method \"cert\": client_cert and client_key go together",
                    ));
                }
                if !has("client_cert") && cfg.server.client_cert.is_none() {
                    return Err(m.body.error(
                        m.line,
                        "method \"cert\" needs client_cert and client_key, in its config or in the vault block",
                    ));
                }
            }
            let mut sinks = Vec::new();
            for s in b.body.blocks("sink") {
                s.body.reject_unknown(
                    &[
                        "type",
                        "config",
                        "wrap_ttl",
                        "dh_type",
                        "dh_path",
                        "aad",
                        "aad_env_var",
                    ],
                    &["config"],
                    " in sink",
                )?;
                let sc = config_map(s);
                let p = sc
                    .get("path")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| s.body.error(s.line, "sink needs config { path = \"...\" }"))?;
                let mode = match sc.get("mode") {
                    None => Some(0o640),
                    Some(Value::Number(n)) => n.as_u64().map(|m| m as u32),
                    Some(Value::String(m)) => {
                        Some(parse_mode(m).map_err(|e| s.body.error(s.line, e))?)
                    }
                    _ => return Err(s.body.error(s.line, "invalid sink mode")),
                };
                sinks.push((
                    resolve(path, p),
                    Perms {
                        mode,
                        owner: None,
                        group: None,
                    },
                ));
            }
            cfg.auto_auth = Some(AutoAuth {
                mount_path: m.body.string("mount_path")?.unwrap_or_else(|| {
                    format!(
                        "auth/{}",
                        if kind == "token_file" { "token" } else { &kind }
                    )
                }),
                kind,
                config,
                sinks,
                exit_on_err: m.body.bool("exit_on_err")?.unwrap_or(false),
                min_backoff: duration(&m.body, "min_backoff")?.unwrap_or(1) as f64,
                max_backoff: duration(&m.body, "max_backoff")?.unwrap_or(300) as f64,
            });
        }
        for b in body.blocks("certificate") {
            let name = b.labels.first().cloned().unwrap_or_default();
            let ctx = format!(" in certificate {name:?}");
            b.body.reject_unknown(
                &[
                    "path",
                    "csr",
                    "key_type",
                    "key_bits",
                    "common_name",
                    "alt_names",
                    "ip_sans",
                    "uri_sans",
                    "ttl",
                    "cert_file",
                    "key_file",
                    "chain_file",
                    "ca_file",
                    "bundle_file",
                    "owner",
                    "group",
                    "mode",
                    "create_dest_dirs",
                    "renew_at",
                    "renew_before",
                    "on_change",
                    "reload_signal",
                    "pid_file",
                ],
                &[],
                &ctx,
            )?;
            let get = |k: &str| b.body.string(k);
            let path_attr = get("path")?.ok_or_else(|| {
                b.body.error(
                    b.line,
                    format!("certificate {name:?} needs a path like \"pki/issue/web\""),
                )
            })?;
            let csr = b.body.bool("csr")?.unwrap_or(false);
            let renew = match (get("renew_at")?, duration(&b.body, "renew_before")?) {
                (Some(_), Some(_)) => {
                    return Err(b.body.error(
                        b.line,
                        format!("certificate {name:?}: set renew_at or renew_before, not both"),
                    ))
                }
                (Some(r), None) => parse_renew_at(&r).map_err(|e| {
                    b.body
                        .error(b.body.attr("renew_at").map(|a| a.line).unwrap_or(b.line), e)
                })?,
                (None, Some(s)) => RenewPoint::Before(s as i64),
                (None, None) => RenewPoint::default(),
            };
            let file = |k: &str| -> Result<Option<PathBuf>, ConfError> {
                Ok(get(k)?.map(|p| resolve(path, &p)))
            };
            let block = CertBlock {
                name: name.clone(),
                path: path_attr.trim_matches('/').to_string(),
                csr,
                key_type: get("key_type")?.unwrap_or_else(|| "ec".into()),
                key_bits: b.body.i64("key_bits")?.unwrap_or(0).max(0) as u64,
                common_name: get("common_name")?.unwrap_or_default(),
                alt_names: strings(&b.body, "alt_names")?,
                ip_sans: strings(&b.body, "ip_sans")?,
                uri_sans: strings(&b.body, "uri_sans")?,
                ttl: get("ttl")?,
                cert_file: file("cert_file")?,
                key_file: file("key_file")?,
                chain_file: file("chain_file")?,
                ca_file: file("ca_file")?,
                bundle_file: file("bundle_file")?,
                perms: perms(&b.body)?,
                create_dest_dirs: b.body.bool("create_dest_dirs")?.unwrap_or(true),
                renew,
                on_change: strings(&b.body, "on_change")?,
                reload_signal: get("reload_signal")?,
                signal_pid_file: file("pid_file")?,
                line: b.line,
            };
            if block.cert_file.is_none() && block.bundle_file.is_none() {
                return Err(b.body.error(
                    b.line,
                    format!("certificate {name:?} needs cert_file or bundle_file"),
                ));
            }
            if block.key_file.is_none() && block.bundle_file.is_none() {
                return Err(b.body.error(
                    b.line,
                    format!("certificate {name:?} needs key_file or bundle_file"),
                ));
            }
            if block.reload_signal.is_some() != block.signal_pid_file.is_some() {
                return Err(b.body.error(b.line, format!("certificate {name:?}: reload_signal needs pid_file (and the other way round)")));
            }
            if let Err(e) = crate::files::resolve_owner(&block.perms) {
                return Err(b.body.error(b.line, format!("certificate {name:?}: {e}")));
            }
            cfg.certificates.push(block);
        }
        for b in body.blocks("trust") {
            let name = b.labels.first().cloned().unwrap_or_default();
            b.body.reject_unknown(
                &[
                    "path",
                    "destination",
                    "owner",
                    "group",
                    "mode",
                    "on_change",
                    "interval",
                ],
                &[],
                &format!(" in trust {name:?}"),
            )?;
            cfg.trusts.push(TrustBlock {
                path: b.body.string("path")?.ok_or_else(|| {
                    b.body.error(
                        b.line,
                        format!("trust {name:?} needs a path like \"pki/ca_chain\""),
                    )
                })?,
                destination: b
                    .body
                    .string("destination")?
                    .map(|p| resolve(path, &p))
                    .ok_or_else(|| {
                        b.body
                            .error(b.line, format!("trust {name:?} needs a destination"))
                    })?,
                perms: perms(&b.body)?,
                on_change: strings(&b.body, "on_change")?,
                interval: duration(&b.body, "interval")?.unwrap_or(300),
                name,
            });
        }
        if cfg.auto_auth.is_none() && (!cfg.certificates.is_empty() || !cfg.templates.is_empty()) {
            return Err(body.error(
                0,
                "certificate and template blocks need an auto_auth block to log in",
            ));
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn parse(text: &str) -> Result<AgentConfig, ConfError> {
        let p = Path::new("/etc/signet/agent.hcl");
        let body = hcl::parse_str(text, p)?;
        AgentConfig::from_body(&body, p)
    }

    #[test]
    fn vault_agent_shape_and_certificate_blocks() {
        let c = parse(
            r#"
vault { address = "https://ca.example:8200" }
auto_auth {
  method "approle" {
    mount_path = "auth/approle"
    config = {
      role_id_file_path = "role-id"
      secret_id_file_path = "/run/secret-id"
    }
  }
  sink "file" { config { path = "/run/token" } }
}
certificate "envoy" {
  path        = "pki_int/issue/customer"
  common_name = "p12345.customers.example"
  alt_names   = ["a.example", "b.example"]
  ttl         = "10m"
  cert_file   = "/etc/envoy/tls.crt"
  key_file    = "/etc/envoy/tls.key"
  mode        = "0600"
  renew_at    = "66%"
  on_change   = ["systemctl", "reload", "envoy"]
}
trust "internal-ca" { path = "pki/ca_chain" destination = "/usr/local/share/ca-certificates/internal.crt" }
"#,
        )
        .unwrap();
        assert_eq!(c.server.address, "https://ca.example:8200");
        let a = c.auto_auth.unwrap();
        assert_eq!(a.kind, "approle");
        assert_eq!(a.config["role_id_file_path"], "/etc/signet/role-id");
        assert_eq!(a.sinks[0].0, PathBuf::from("/run/token"));
        let e = &c.certificates[0];
        assert_eq!(e.alt_names, vec!["a.example", "b.example"]);
        assert_eq!(e.renew, RenewPoint::Fraction(0.66));
        assert_eq!(e.perms.mode, Some(0o600));
        assert_eq!(c.trusts[0].path, "pki/ca_chain");
    }

    #[test]
    fn errors_name_the_line() {
        let e = parse("vault { address = \"http://x\" }\nauto_auth {\n  method \"approle\" {\n    config { role_id_file_pat = \"x\" }\n  }\n}\n").unwrap_err();
        assert!(e.message.contains("role_id_file_pat"), "{e}");
        let e = parse("vault { address = \"http://x\" }\nbogus = 1\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = parse("vault { address = \"http://x\" }\nauto_auth {\n method \"token_file\" { config { token_file_path = \"t\" } }\n}\ncertificate \"c\" {\n  path = \"pki/issue/r\"\n  cert_file = \"c\"\n  key_file = \"k\"\n  renew_at = \"150%\"\n}\n").unwrap_err();
        assert_eq!(e.line, 9, "{e}");
    }
}
