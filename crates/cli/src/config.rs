//! The server configuration file, in Vault's HCL shape.
//!
//! ```hcl
//! storage "sqlite" { path = "/var/lib/signet/signet.db" }   # or storage "inmem" {}
//! # or, several nodes over one database (see ARCHITECTURE.md, "Several nodes"):
//! # storage "postgresql" { connection_url = "postgres://signet:pw@db:5432/signet?sslmode=require"
//! #                        table = "signet_kv"  max_parallel = 128  ha_enabled = true }
//! listener "tcp" {
//!   address = "0.0.0.0:8200"
//!   tls_cert_file = "/etc/signet/tls.crt"
//!   tls_key_file  = "/etc/signet/tls.key"
//!   # tls_disable = true
//!   max_request_size = 33554432
//! }
//! seal "file" { path = "/run/secrets/signet-unseal-key" }
//! api_addr   = "https://signet.example:8200"
//! log_level  = "info"     # trace | debug | info | warn | error
//! log_format = "text"     # text | json
//! ```
//!
//! Unknown keys and bad values are errors naming the file and line. Several `-config` files
//! merge: later files add listeners and override scalars.

use std::path::{Path, PathBuf};

use signet_types::hcl::{self as hclconf, Body, ConfError};

/// Where state lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageConfig {
    Inmem,
    Sqlite { path: PathBuf },
    Postgres(signet_storage::backends::postgres::PostgresOptions),
}

/// One `listener "tcp"` stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    pub address: String,
    pub tls_disable: bool,
    pub tls_cert_file: Option<PathBuf>,
    pub tls_key_file: Option<PathBuf>,
    /// Bytes; `None` is the 32 MiB default, a negative value in the file disables the limit.
    pub max_request_size: Option<usize>,
}

/// The `seal` stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealConfig {
    File { path: PathBuf },
}

/// One `audit "TYPE" "NAME" { ... }` stanza (OpenBao 2.x's declarative devices).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditConfig {
    pub kind: String,
    pub name: String,
    pub description: String,
    /// Vault's option names and string values (`file_path` already resolved against the
    /// configuration file's directory); `signet_audit::build` interprets them.
    pub options: serde_json::Map<String, serde_json::Value>,
}

/// Checks the values of a device's options without opening anything.
fn check_audit_options(
    kind: &str,
    opts: &serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    let get = |k: &str| opts.get(k).and_then(|v| v.as_str()).unwrap_or("");
    for k in ["log_raw", "hmac_accessor"] {
        if !matches!(get(k), "" | "true" | "false" | "1" | "0") {
            return Err(format!("invalid {k} {:?}: use true or false", get(k)));
        }
    }
    if !matches!(get("format"), "" | "json") {
        return Err(format!(
            "audit format {:?} is not supported: use json",
            get("format")
        ));
    }
    match kind {
        "file"
            if !get("mode").is_empty()
                && u32::from_str_radix(get("mode").trim_start_matches("0o"), 8).is_err() =>
        {
            Err(format!(
                "invalid mode {:?}: use an octal like \"0600\"",
                get("mode")
            ))
        }
        "socket" if get("address").is_empty() => Err("needs options { address = \"...\" }".into()),
        "socket" if !matches!(get("socket_type"), "" | "tcp" | "udp" | "unix") => Err(format!(
            "invalid socket_type {:?}: use tcp, udp or unix",
            get("socket_type")
        )),
        _ => Ok(()),
    }
}

/// A whole server configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerConfig {
    pub audit: Vec<AuditConfig>,
    pub unsafe_allow_api_audit_creation: bool,
    pub storage: Option<StorageConfig>,
    pub listeners: Vec<ListenerConfig>,
    pub seal: Option<SealConfig>,
    pub api_addr: Option<String>,
    pub cluster_addr: Option<String>,
    pub cluster_name: Option<String>,
    pub log_level: Option<String>,
    pub log_format: Option<String>,
}

const TOP_ATTRS: &[&str] = &[
    "api_addr",
    "cluster_addr",
    "cluster_name",
    "log_level",
    "log_format",
    "disable_mlock",
    "ui",
    "disable_cache",
    "pid_file",
    "unsafe_allow_api_audit_creation",
];
const TOP_BLOCKS: &[&str] = &["storage", "listener", "seal", "audit"];

fn one_label(body: &Body, b: &hclconf::Block) -> Result<String, ConfError> {
    match b.labels.as_slice() {
        [l] => Ok(l.clone()),
        _ => Err(body.error(
            b.line,
            format!(
                "{} needs exactly one label, like {} \"NAME\" {{ ... }}",
                b.ident, b.ident
            ),
        )),
    }
}

fn resolve(base: &Path, p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() {
        p
    } else {
        base.parent().map(|d| d.join(&p)).unwrap_or(p)
    }
}

impl ServerConfig {
    /// Reads and validates one file.
    pub fn load(path: &Path) -> Result<ServerConfig, ConfError> {
        let body = hclconf::parse_file(path)?;
        Self::from_body(&body, path)
    }

    /// Validates a parsed body.
    pub fn from_body(body: &Body, path: &Path) -> Result<ServerConfig, ConfError> {
        body.reject_unknown(TOP_ATTRS, TOP_BLOCKS, "")?;
        body.reject_duplicates()?;
        let mut cfg = ServerConfig {
            api_addr: body.string("api_addr")?,
            cluster_addr: body.string("cluster_addr")?,
            cluster_name: body.string("cluster_name")?,
            ..Default::default()
        };
        body.bool("disable_mlock")?;
        body.bool("ui")?;
        body.bool("disable_cache")?;
        if let Some(level) = body.string("log_level")? {
            let l = level.to_ascii_lowercase();
            if ![
                "trace", "debug", "info", "warn", "warning", "error", "err", "off",
            ]
            .contains(&l.as_str())
            {
                let line = body.attr("log_level").map(|a| a.line).unwrap_or(0);
                return Err(body.error(
                    line,
                    format!("invalid log_level {level:?}: use trace, debug, info, warn or error"),
                ));
            }
            cfg.log_level = Some(l);
        }
        if let Some(fmt) = body.string("log_format")? {
            if !["text", "json", "standard"].contains(&fmt.as_str()) {
                let line = body.attr("log_format").map(|a| a.line).unwrap_or(0);
                return Err(body.error(
                    line,
                    format!("invalid log_format {fmt:?}: use text or json"),
                ));
            }
            cfg.log_format = Some(if fmt == "standard" {
                "text".into()
            } else {
                fmt
            });
        }
        let mut storages = body.blocks("storage");
        if let Some(b) = storages.next() {
            let kind = one_label(body, b)?;
            let ctx = format!(" in storage {kind:?}");
            cfg.storage = Some(match kind.as_str() {
                "inmem" => {
                    b.body.reject_unknown(&[], &[], &ctx)?;
                    StorageConfig::Inmem
                }
                "sqlite" => {
                    b.body.reject_unknown(&["path"], &[], &ctx)?;
                    let p = b
                        .body
                        .string("path")?
                        .filter(|p| !p.is_empty())
                        .ok_or_else(|| {
                            body.error(
                                b.line,
                                "storage \"sqlite\" needs path = \"/var/lib/signet/signet.db\"",
                            )
                        })?;
                    StorageConfig::Sqlite {
                        path: resolve(path, &p),
                    }
                }
                "postgresql" | "postgres" => {
                    b.body.reject_unknown(
                        &[
                            "connection_url",
                            "table",
                            "max_parallel",
                            "ha_enabled",
                            "tls_ca_file",
                            "max_idle_connections",
                            "ha_table",
                            "skip_create_table",
                            "max_connect_retries",
                        ],
                        &[],
                        &ctx,
                    )?;
                    // Vault reads the URL from the environment when the file leaves it out.
                    let mut o = signet_storage::backends::postgres::PostgresOptions {
                        connection_url: match b.body.string("connection_url")? {
                            Some(u) if !u.is_empty() => u,
                            _ => std::env::var("VAULT_PG_CONNECTION_URL").unwrap_or_default(),
                        },
                        ..Default::default()
                    };
                    if o.connection_url.is_empty() {
                        return Err(body.error(
                            b.line,
                            "storage \"postgresql\" needs connection_url = \"postgres://user:password@host:5432/db\" (or VAULT_PG_CONNECTION_URL)",
                        ));
                    }
                    if let Some(t) = b.body.string("table")?.filter(|t| !t.is_empty()) {
                        o.table = t;
                    }
                    if let Some(n) = b.body.i64("max_parallel")? {
                        if n < 1 {
                            return Err(body.error(b.line, "max_parallel must be at least 1"));
                        }
                        o.max_parallel = n as usize;
                    }
                    if let Some(h) = b.body.bool("ha_enabled")? {
                        o.ha_enabled = h;
                    }
                    if let Some(f) = b.body.string("tls_ca_file")?.filter(|f| !f.is_empty()) {
                        o.tls_ca_file = Some(resolve(path, &f));
                    }
                    StorageConfig::Postgres(o)
                }
                other => {
                    return Err(body.error(
                        b.line,
                        format!(
                        "unknown storage type {other:?}: signet supports \"sqlite\", \"postgresql\" and \"inmem\""
                    ),
                    ))
                }
            });
            if let Some(extra) = storages.next() {
                return Err(body.error(extra.line, "only one storage stanza is allowed"));
            }
        }
        for b in body.blocks("listener") {
            let kind = one_label(body, b)?;
            if kind != "tcp" {
                return Err(body.error(
                    b.line,
                    format!("unknown listener type {kind:?}: signet supports \"tcp\""),
                ));
            }
            let ctx = " in listener \"tcp\"";
            b.body.reject_unknown(
                &[
                    "address",
                    "tls_disable",
                    "tls_cert_file",
                    "tls_key_file",
                    "max_request_size",
                    "tls_min_version",
                    "cluster_address",
                ],
                &[],
                ctx,
            )?;
            b.body.reject_duplicates()?;
            let address = b
                .body
                .string("address")?
                .unwrap_or_else(|| "127.0.0.1:8200".into());
            if address.parse::<std::net::SocketAddr>().is_err() && !address.contains(':') {
                let line = b.body.attr("address").map(|a| a.line).unwrap_or(b.line);
                return Err(body.error(line, format!("invalid address {address:?}: use HOST:PORT")));
            }
            let tls_disable = b.body.bool("tls_disable")?.unwrap_or(false);
            let cert = b.body.string("tls_cert_file")?.map(|p| resolve(path, &p));
            let key = b.body.string("tls_key_file")?.map(|p| resolve(path, &p));
            if !tls_disable && (cert.is_none() || key.is_none()) {
                return Err(body.error(
                    b.line,
                    "listener \"tcp\" needs tls_cert_file and tls_key_file, or tls_disable = true",
                ));
            }
            if let Some(v) = b.body.string("tls_min_version")? {
                if !["tls12", "tls13"].contains(&v.as_str()) {
                    let line = b
                        .body
                        .attr("tls_min_version")
                        .map(|a| a.line)
                        .unwrap_or(b.line);
                    return Err(body.error(
                        line,
                        format!("invalid tls_min_version {v:?}: use tls12 or tls13"),
                    ));
                }
            }
            let max_request_size = match b.body.i64("max_request_size")? {
                None | Some(0) => None,
                Some(n) if n < 0 => Some(usize::MAX),
                Some(n) => Some(n as usize),
            };
            cfg.listeners.push(ListenerConfig {
                address,
                tls_disable,
                tls_cert_file: cert,
                tls_key_file: key,
                max_request_size,
            });
        }
        cfg.unsafe_allow_api_audit_creation = body
            .bool("unsafe_allow_api_audit_creation")?
            .unwrap_or(false);
        for b in body.blocks("audit") {
            let [kind, name] = b.labels.as_slice() else {
                return Err(body.error(
                    b.line,
                    "audit needs a type and a name, like audit \"file\" \"main\" { ... }",
                ));
            };
            let Some(known) = signet_audit::known_options(kind) else {
                return Err(body.error(
                    b.line,
                    format!(
                        "unknown audit device type {kind:?}: signet supports \"file\", \"socket\" and \"syslog\""
                    ),
                ));
            };
            let ctx = format!(" in audit {kind:?} {name:?}");
            b.body
                .reject_unknown(&["description", "local", "options"], &["options"], &ctx)?;
            let mut opts = serde_json::Map::new();
            if let Some(o) = b.body.blocks("options").next() {
                o.body
                    .reject_unknown(known, &[], &format!(" in the options of audit {name:?}"))?;
                for a in &o.body.attrs {
                    opts.insert(a.key.clone(), a.value.clone());
                }
            } else if let Some(a) = b.body.attr("options") {
                if let serde_json::Value::Object(m) = &a.value {
                    opts = m.clone();
                }
            }
            // Every value as the string the API would carry.
            for v in opts.values_mut() {
                if !v.is_string() {
                    *v = serde_json::Value::String(v.to_string());
                }
            }
            if kind == "file" {
                let file_path = opts
                    .get("file_path")
                    .or_else(|| opts.get("path"))
                    .and_then(|v| v.as_str())
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .ok_or_else(|| {
                        body.error(
                            b.line,
                            format!("audit {name:?} needs options {{ file_path = \"...\" }}"),
                        )
                    })?;
                opts.remove("path");
                let resolved = if file_path == "stdout" {
                    file_path
                } else {
                    resolve(path, &file_path).display().to_string()
                };
                opts.insert("file_path".into(), serde_json::Value::String(resolved));
            }
            // Values are checked now, so a typo is reported with its line, not at start-up.
            check_audit_options(kind, &opts)
                .map_err(|e| body.error(b.line, format!("audit {name:?}: {e}")))?;
            cfg.audit.push(AuditConfig {
                kind: kind.clone(),
                name: name.clone(),
                description: b.body.string("description")?.unwrap_or_default(),
                options: opts,
            });
        }
        for b in body.blocks("seal") {
            let kind = one_label(body, b)?;
            if kind != "file" {
                return Err(body.error(b.line, format!("unknown seal type {kind:?}: signet supports \"file\" (and Shamir shares when no seal stanza is given)")));
            }
            b.body.reject_unknown(&["path"], &[], " in seal \"file\"")?;
            let p = b
                .body
                .string("path")?
                .filter(|p| !p.is_empty())
                .ok_or_else(|| body.error(b.line, "seal \"file\" needs path = \"/path/to/key\""))?;
            cfg.seal = Some(SealConfig::File {
                path: resolve(path, &p),
            });
        }
        Ok(cfg)
    }

    /// Merges `other` into `self`: listeners add up, the rest overrides.
    pub fn merge(&mut self, other: ServerConfig) {
        if other.storage.is_some() {
            self.storage = other.storage;
        }
        self.listeners.extend(other.listeners);
        self.audit.extend(other.audit);
        self.unsafe_allow_api_audit_creation |= other.unsafe_allow_api_audit_creation;
        if other.seal.is_some() {
            self.seal = other.seal;
        }
        macro_rules! take {
            ($f:ident) => {
                if other.$f.is_some() {
                    self.$f = other.$f;
                }
            };
        }
        take!(api_addr);
        take!(cluster_addr);
        take!(cluster_name);
        take!(log_level);
        take!(log_format);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn parse(text: &str) -> Result<ServerConfig, ConfError> {
        let body = hclconf::parse_str(text, Path::new("/etc/signet/s.hcl"))?;
        ServerConfig::from_body(&body, Path::new("/etc/signet/s.hcl"))
    }

    #[test]
    fn full_config() {
        let c = parse(
            r#"
storage "sqlite" { path = "data/signet.db" }
listener "tcp" {
  address = "127.0.0.1:8200"
  tls_disable = "true"
  max_request_size = 1024
}
seal "file" { path = "/run/key" }
api_addr = "http://127.0.0.1:8200"
log_level = "DEBUG"
log_format = "json"
disable_mlock = true
"#,
        )
        .unwrap();
        assert_eq!(
            c.storage,
            Some(StorageConfig::Sqlite {
                path: "/etc/signet/data/signet.db".into()
            })
        );
        assert_eq!(c.listeners.len(), 1);
        assert!(c.listeners[0].tls_disable);
        assert_eq!(c.listeners[0].max_request_size, Some(1024));
        assert_eq!(
            c.seal,
            Some(SealConfig::File {
                path: "/run/key".into()
            })
        );
        assert_eq!(c.log_level.as_deref(), Some("debug"));
    }

    #[test]
    fn audit_stanzas() {
        let c = parse(
            "audit \"file\" \"main\" {\n  description = \"all requests\"\n  options {\n    file_path = \"/var/log/signet/audit.log\"\n    mode = \"0640\"\n    hmac_accessor = \"false\"\n  }\n}\nunsafe_allow_api_audit_creation = false\n",
        )
        .unwrap();
        assert_eq!(c.audit.len(), 1);
        assert_eq!(c.audit[0].name, "main");
        assert_eq!(c.audit[0].options["mode"], "0640");
        assert_eq!(c.audit[0].options["hmac_accessor"], "false");
        let e = parse("audit \"file\" \"main\" {\n  options {\n    file_pth = \"x\"\n  }\n}\n")
            .unwrap_err();
        assert_eq!(e.line, 3, "{e}");
        let e = parse("audit \"socket\" \"s\" {}\n").unwrap_err();
        assert!(e.message.contains("address"), "{e}");
        let c = parse("audit \"socket\" \"s\" {\n  options {\n    address = \"127.0.0.1:9090\"\n    socket_type = \"udp\"\n  }\n}\n").unwrap();
        assert_eq!(c.audit[0].options["socket_type"], "udp");
        let e = parse("audit \"syslog\" \"l\" {\n  options {\n    facility = \"AUTH\"\n    colour = \"x\"\n  }\n}\n").unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        let e = parse("audit \"kafka\" \"k\" {}\n").unwrap_err();
        assert!(e.message.contains("kafka"), "{e}");
    }

    #[test]
    fn unknown_keys_name_file_and_line() {
        let e = parse("storage \"inmem\" {}\nlistener \"tcp\" {\n  address = \"127.0.0.1:1\"\n  tls_disable = true\n  tls_disabel = true\n}\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/signet/s.hcl:5: unknown key \"tls_disabel\" in listener \"tcp\""
        );
        let e = parse("\nfoo = 1\n").unwrap_err();
        assert_eq!(e.to_string(), "/etc/signet/s.hcl:2: unknown key \"foo\"");
        let e = parse("storage \"file\" { path = \"x\" }\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("listener \"tcp\" {\n address = \"x:1\"\n}\n").unwrap_err();
        assert!(e.message.contains("tls_cert_file"), "{e}");
        let e = parse("log_level = \"loud\"\n").unwrap_err();
        assert!(e.message.contains("log_level"), "{e}");
        let e = parse("listener \"tcp\" {\n tls_disable = true\n max_request_size = \"big\"\n}\n")
            .unwrap_err();
        assert_eq!(e.line, 3);
    }
}
