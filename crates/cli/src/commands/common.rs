//! What every client verb shares: the global flags (`-address`, `-ca-cert`, `-format`,
//! `-field`, ...), the address and token lookup (`SIGNET_*`, then `VAULT_*`, then `BAO_*`, then
//! the `~/.vault-token` helper file), `k=v` argument parsing, and output in the `vault` CLI's
//! table, JSON and YAML shapes. Exit codes: 0 ok, 1 local error, 2 API error.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;

use serde_json::{Map, Value};
use signet_client::{Client, ClientConfig, ClientError};

use crate::flags::{self, Kind, Parsed};

/// Flags every client verb accepts.
pub const GLOBAL_FLAGS: &[(&str, Kind)] = &[
    ("address", Kind::Value),
    ("ca-cert", Kind::Value),
    ("ca-path", Kind::Value),
    ("tls-skip-verify", Kind::Bool),
    ("tls-server-name", Kind::Value),
    ("client-cert", Kind::Value),
    ("client-key", Kind::Value),
    ("format", Kind::Value),
    ("field", Kind::Value),
    ("namespace", Kind::Value),
    ("ns", Kind::Value),
    ("non-interactive", Kind::Bool),
];

/// Output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Yaml,
}

/// A parsed command line with its client.
pub struct Cmd {
    pub flags: Parsed,
    pub client: Client,
    pub format: Format,
    pub field: Option<String>,
}

fn env_first(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}

/// The token: environment, then the token helper file.
pub fn token() -> Option<String> {
    env_first(&["SIGNET_TOKEN", "VAULT_TOKEN", "BAO_TOKEN"]).or_else(|| {
        let home = std::env::var_os("HOME")?;
        std::fs::read_to_string(PathBuf::from(home).join(".vault-token"))
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    })
}

/// Stores a token in the helper file (`~/.vault-token`, mode 0600), as `vault login` does.
pub fn store_token(token: &str) -> Result<(), String> {
    let home = std::env::var_os("HOME").ok_or("HOME is not set")?;
    let path = PathBuf::from(home).join(".vault-token");
    write_private(&path, token.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

#[cfg(unix)]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}

#[cfg(not(unix))]
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Parses `args` with the global flags plus `extra`; on error prints it and returns exit 1.
pub fn parse(args: &[String], extra: &[(&str, Kind)]) -> Result<Cmd, u8> {
    let mut spec: Vec<(&str, Kind)> = GLOBAL_FLAGS.to_vec();
    spec.extend_from_slice(extra);
    let parsed = flags::parse(args, &spec).map_err(|e| {
        eprintln!("{e}");
        1u8
    })?;
    let format = match parsed
        .get("format")
        .map(str::to_string)
        .or_else(|| env_first(&["SIGNET_FORMAT", "VAULT_FORMAT", "BAO_FORMAT"]))
        .as_deref()
    {
        None | Some("table") => Format::Table,
        Some("json") => Format::Json,
        Some("yaml") | Some("yml") => Format::Yaml,
        Some(other) => {
            eprintln!("Invalid output format: {other}");
            return Err(1);
        }
    };
    let address = parsed
        .get("address")
        .map(str::to_string)
        .or_else(|| env_first(&["SIGNET_ADDR", "VAULT_ADDR", "BAO_ADDR"]))
        .unwrap_or_else(|| "https://127.0.0.1:8200".into());
    let ca_cert = parsed
        .get("ca-cert")
        .map(str::to_string)
        .or_else(|| env_first(&["SIGNET_CACERT", "VAULT_CACERT", "BAO_CACERT"]))
        .map(PathBuf::from);
    let skip = parsed.bool("tls-skip-verify")
        || env_first(&["SIGNET_SKIP_VERIFY", "VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY"])
            .is_some_and(|v| v != "false" && v != "0");
    let client = Client::new(ClientConfig {
        address,
        token: token(),
        ca_cert,
        tls_skip_verify: skip,
        tls_server_name: parsed
            .get("tls-server-name")
            .map(str::to_string)
            .or_else(|| {
                env_first(&[
                    "SIGNET_TLS_SERVER_NAME",
                    "VAULT_TLS_SERVER_NAME",
                    "BAO_TLS_SERVER_NAME",
                ])
            }),
        client_cert: parsed
            .get("client-cert")
            .map(str::to_string)
            .or_else(|| env_first(&["SIGNET_CLIENT_CERT", "VAULT_CLIENT_CERT", "BAO_CLIENT_CERT"]))
            .map(PathBuf::from),
        client_key: parsed
            .get("client-key")
            .map(str::to_string)
            .or_else(|| env_first(&["SIGNET_CLIENT_KEY", "VAULT_CLIENT_KEY", "BAO_CLIENT_KEY"]))
            .map(PathBuf::from),
    })
    .map_err(|e| {
        eprintln!("Error initializing client: {e}");
        1u8
    })?;
    let field = parsed.get("field").map(str::to_string);
    Ok(Cmd {
        flags: parsed,
        client,
        format,
        field,
    })
}

/// Runs a future on a fresh single-threaded runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("Error starting the runtime: {e}");
            std::process::exit(1);
        }
    }
}

/// Prints an API or transport error as `vault` does and returns exit 2.
pub fn api_error(action: &str, e: &ClientError) -> u8 {
    match e {
        ClientError::Config(m) => {
            eprintln!("Error {action}: {m}");
            1
        }
        other => {
            eprintln!("Error {action}: {other}");
            2
        }
    }
}

/// Parses `k=v`, `k=@file`, `k=-` (stdin) and a lone `-` (a JSON object on stdin).
pub fn kv_args(args: &[String]) -> Result<Map<String, Value>, String> {
    let mut out = Map::new();
    let mut stdin_used = false;
    for a in args {
        if a == "-" {
            if stdin_used {
                return Err("stdin may only be read once".into());
            }
            stdin_used = true;
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("reading stdin: {e}"))?;
            match serde_json::from_str::<Value>(&s) {
                Ok(Value::Object(m)) => out.extend(m),
                _ => return Err("Failed to parse JSON input: stdin must be a JSON object".into()),
            }
            continue;
        }
        let Some((k, v)) = a.split_once('=') else {
            return Err(format!(
                "Failed to parse K=V data: invalid key/value pair {a:?}"
            ));
        };
        if k.is_empty() {
            return Err(format!(
                "Failed to parse K=V data: invalid key/value pair {a:?}"
            ));
        }
        let value = if let Some(path) = v.strip_prefix('@') {
            std::fs::read_to_string(path)
                .map_err(|e| format!("Failed to parse K=V data: error reading file {path}: {e}"))?
        } else if v == "-" {
            if stdin_used {
                return Err("stdin may only be read once".into());
            }
            stdin_used = true;
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("reading stdin: {e}"))?;
            s
        } else {
            v.to_string()
        };
        // Repeated keys become lists, as in vault.
        match out.get_mut(k) {
            Some(Value::Array(arr)) => arr.push(Value::String(value)),
            Some(existing) => {
                let prev = existing.take();
                *existing = Value::Array(vec![prev, Value::String(value)]);
            }
            None => {
                out.insert(k.to_string(), Value::String(value));
            }
        }
    }
    Ok(out)
}

/// Go-ish rendering of a JSON value in a table cell (`[a b]`, `map[k:v]`, `<nil>`).
pub fn cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "<nil>".into(),
        Value::Array(a) => format!("[{}]", a.iter().map(cell).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", cell(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        other => other.to_string(),
    }
}

/// `768h0m0s` -> `768h`, `1h30m0s` -> `1h30m`, as vault prints durations.
pub fn human_duration(secs: u64) -> String {
    let d = signet_types::format_go_duration(secs);
    let d = d.strip_suffix("m0s").map(|x| format!("{x}m")).unwrap_or(d);
    let d = if d.ends_with("h0m") {
        d.trim_end_matches("0m").to_string()
    } else {
        d
    };
    d
}

/// Prints aligned two-column (or wider) tables.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let cols = header.len();
    let mut width = vec![0usize; cols];
    for (i, h) in header.iter().enumerate() {
        width[i] = h.len();
    }
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cols {
                s.push_str(c);
            } else {
                s.push_str(&format!("{:<w$}    ", c, w = width[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    line(header.iter().map(|h| "-".repeat(h.len())).collect());
    for r in rows {
        line(r.clone());
    }
}

/// The subset of a response `vault` prints as JSON (`api.Secret` with empty fields dropped).
pub fn secret_json(resp: &Value) -> Value {
    let mut m = Map::new();
    for k in [
        "request_id",
        "lease_id",
        "lease_duration",
        "renewable",
        "data",
    ] {
        if let Some(v) = resp.get(k) {
            m.insert(k.into(), v.clone());
        }
    }
    m.insert(
        "warnings".into(),
        resp.get("warnings").cloned().unwrap_or(Value::Null),
    );
    for k in ["auth", "wrap_info", "mount_type"] {
        if let Some(v) = resp.get(k).filter(|v| !v.is_null()) {
            m.insert(k.into(), v.clone());
        }
    }
    Value::Object(m)
}

/// Minimal YAML for JSON values (keys sorted, strings quoted when needed).
pub fn yaml(v: &Value) -> String {
    fn scalar(v: &Value) -> String {
        match v {
            Value::Null => "null".into(),
            Value::String(s) => {
                let plain = !s.is_empty()
                    && !s.contains([
                        ':', '#', '\n', '"', '\'', '{', '}', '[', ']', ',', '&', '*', '!', '|',
                        '>', '%', '@', '`',
                    ])
                    && !s.starts_with([' ', '-', '?'])
                    && !s.ends_with(' ')
                    && !matches!(s.as_str(), "true" | "false" | "null" | "yes" | "no" | "~")
                    && s.parse::<f64>().is_err();
                if plain {
                    s.clone()
                } else {
                    serde_json::to_string(s).unwrap_or_default()
                }
            }
            other => other.to_string(),
        }
    }
    fn go(v: &Value, indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        match v {
            Value::Object(m) if m.is_empty() => out.push_str(" {}\n"),
            Value::Array(a) if a.is_empty() => out.push_str(" []\n"),
            Value::Object(m) => {
                out.push('\n');
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                for k in keys {
                    out.push_str(&format!("{pad}{}:", scalar(&Value::String(k.clone()))));
                    go(&m[k], indent + 2, out);
                }
            }
            Value::Array(a) => {
                out.push('\n');
                for item in a {
                    out.push_str(&format!("{pad}-"));
                    match item {
                        Value::Object(_) | Value::Array(_) => go(item, indent + 2, out),
                        other => out.push_str(&format!(" {}\n", scalar(other))),
                    }
                }
            }
            other => out.push_str(&format!(" {}\n", scalar(other))),
        }
    }
    let mut out = String::new();
    match v {
        Value::Object(_) | Value::Array(_) => {
            go(v, 0, &mut out);
            out.trim_start_matches('\n').to_string()
        }
        other => format!("{}\n", scalar(other)),
    }
}

/// Prints a value in the chosen format (JSON pretty-printed like vault).
pub fn print_value(format: Format, v: &Value) {
    match format {
        Format::Yaml => print!("{}", yaml(v)),
        _ => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
    }
}

/// Prints one field's raw value (`-field`); returns the exit code.
pub fn print_field(resp: &Value, field: &str) -> u8 {
    let found = resp
        .get("data")
        .and_then(|d| d.get(field))
        .or_else(|| {
            auth_rows(resp)
                .into_iter()
                .find(|(k, _)| k == field)
                .map(|_| &Value::Null)
        })
        .cloned();
    let auth_val = auth_rows(resp)
        .into_iter()
        .find(|(k, _)| k == field)
        .map(|(_, v)| v);
    match (found, auth_val) {
        (_, Some(v)) => {
            print!("{v}");
            0
        }
        (Some(Value::String(s)), _) => {
            print!("{s}");
            let _ = std::io::stdout().flush();
            0
        }
        (Some(v), _) if !v.is_null() => {
            print!(
                "{}",
                if v.is_object() || v.is_array() {
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                } else {
                    cell(&v)
                }
            );
            0
        }
        _ => {
            eprintln!("Field \"{field}\" not present in secret");
            1
        }
    }
}

fn auth_rows(resp: &Value) -> Vec<(String, String)> {
    let Some(a) = resp.get("auth").filter(|a| !a.is_null()) else {
        return vec![];
    };
    let s = |k: &str| a.get(k).map(cell).unwrap_or_default();
    let list = |k: &str| {
        serde_json::to_string(a.get(k).unwrap_or(&Value::Array(vec![]))).unwrap_or_default()
    };
    let mut rows = vec![
        ("token".to_string(), s("client_token")),
        ("token_accessor".to_string(), s("accessor")),
        ("token_duration".to_string(), {
            let d = a.get("lease_duration").and_then(Value::as_u64).unwrap_or(0);
            if d == 0 {
                "∞".to_string()
            } else {
                human_duration(d)
            }
        }),
        ("token_renewable".to_string(), s("renewable")),
        ("token_policies".to_string(), list("token_policies")),
        ("identity_policies".to_string(), list("identity_policies")),
        ("policies".to_string(), list("policies")),
    ];
    if let Some(Value::Object(meta)) = a.get("metadata") {
        for (k, v) in meta {
            rows.push((format!("token_meta_{k}"), cell(v)));
        }
    }
    rows
}

/// Prints a response (a "secret") as `vault read`/`write` do; returns the exit code.
pub fn print_secret(cmd: &Cmd, resp: &Value) -> u8 {
    if let Some(f) = &cmd.field {
        return print_field(resp, f);
    }
    match cmd.format {
        Format::Json | Format::Yaml => {
            print_value(cmd.format, &secret_json(resp));
            0
        }
        Format::Table => {
            let mut rows: Vec<Vec<String>> = Vec::new();
            let lease_id = resp.get("lease_id").and_then(Value::as_str).unwrap_or("");
            let lease = resp
                .get("lease_duration")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if !lease_id.is_empty() {
                rows.push(vec!["lease_id".into(), lease_id.into()]);
                rows.push(vec!["lease_duration".into(), human_duration(lease)]);
                rows.push(vec![
                    "lease_renewable".into(),
                    cell(resp.get("renewable").unwrap_or(&Value::Bool(false))),
                ]);
            } else if lease > 0 {
                rows.push(vec!["refresh_interval".into(), human_duration(lease)]);
            }
            for (k, v) in auth_rows(resp) {
                rows.push(vec![k, v]);
            }
            if let Some(Value::Object(data)) = resp.get("data") {
                let mut keys: Vec<&String> = data.keys().collect();
                keys.sort();
                for k in keys {
                    rows.push(vec![k.clone(), cell(&data[k])]);
                }
            }
            if !rows.is_empty() {
                table(&["Key", "Value"], &rows);
            }
            print_warnings(resp);
            0
        }
    }
}

/// Prints the response's warnings the way `vault` does.
pub fn print_warnings(resp: &Value) {
    if let Some(Value::Array(w)) = resp.get("warnings") {
        if !w.is_empty() {
            println!("\nWARNING! The following warnings were returned from signet:\n");
            for x in w {
                println!("  * {}", cell(x));
                println!();
            }
        }
    }
}

/// Reads a secret value from a prompt (hidden echo is not available without a TTY library,
/// so the value is read as a line).
pub fn prompt(label: &str) -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        eprint!("{label}");
        let _ = std::io::stderr().flush();
    }
    let mut s = String::new();
    std::io::stdin()
        .read_line(&mut s)
        .map_err(|e| e.to_string())?;
    Ok(s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kv_parsing() {
        let dir = std::env::temp_dir().join(format!("signet-kv-{}", std::process::id()));
        std::fs::write(&dir, "file-body").unwrap();
        let m = kv_args(&[
            "a=b".into(),
            "c=d=e".into(),
            format!("f=@{}", dir.display()),
            "a=z".into(),
        ])
        .unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"a": ["b", "z"], "c": "d=e", "f": "file-body"})
        );
        assert!(kv_args(&["novalue".into()]).is_err());
        assert!(kv_args(&["=x".into()]).is_err());
        let _ = std::fs::remove_file(dir);
    }

    #[test]
    fn yaml_and_cells() {
        assert_eq!(
            yaml(&json!({"b": 1, "a": {"x": "y: z"}, "l": ["p", 2]})),
            "a:\n  x: \"y: z\"\nb: 1\nl:\n  - p\n  - 2\n"
        );
        assert_eq!(cell(&json!(["a", "b"])), "[a b]");
        assert_eq!(cell(&json!(null)), "<nil>");
        assert_eq!(human_duration(768 * 3600), "768h");
        assert_eq!(human_duration(5400), "1h30m");
        assert_eq!(human_duration(90), "1m30s");
    }
}
