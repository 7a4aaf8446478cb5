//! `secrets enable|disable|list|tune|move` and `auth enable|disable|list|tune`, plus the old
//! verbs seed 002 types (`mount`, `mount-tune`, `unmount`, `mounts`, `remount`).

use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use super::common::{self, api_error, block_on, table, Format};
use crate::flags::Kind;

/// Which table a command manages.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Which {
    Secrets,
    Auth,
}

impl Which {
    fn sys(self) -> &'static str {
        match self {
            Which::Secrets => "sys/mounts",
            Which::Auth => "sys/auth",
        }
    }
    fn noun(self) -> &'static str {
        match self {
            Which::Secrets => "secrets engine",
            Which::Auth => "auth method",
        }
    }
}

const TUNE_FLAGS: &[(&str, Kind)] = &[
    ("default-lease-ttl", Kind::Value),
    ("max-lease-ttl", Kind::Value),
    ("description", Kind::Value),
    ("audit-non-hmac-request-keys", Kind::Multi),
    ("audit-non-hmac-response-keys", Kind::Multi),
    ("passthrough-request-headers", Kind::Multi),
    ("allowed-response-headers", Kind::Multi),
    ("listing-visibility", Kind::Value),
    ("options", Kind::Multi),
    ("version", Kind::Value),
    ("token-type", Kind::Value),
    ("plugin-version", Kind::Value),
];

fn config_from(flags: &crate::flags::Parsed) -> Map<String, Value> {
    let mut c = Map::new();
    for (flag, key) in [
        ("default-lease-ttl", "default_lease_ttl"),
        ("max-lease-ttl", "max_lease_ttl"),
        ("listing-visibility", "listing_visibility"),
        ("token-type", "token_type"),
    ] {
        if let Some(v) = flags.get(flag) {
            c.insert(key.into(), json!(v));
        }
    }
    for (flag, key) in [
        ("audit-non-hmac-request-keys", "audit_non_hmac_request_keys"),
        (
            "audit-non-hmac-response-keys",
            "audit_non_hmac_response_keys",
        ),
        ("passthrough-request-headers", "passthrough_request_headers"),
        ("allowed-response-headers", "allowed_response_headers"),
    ] {
        let vals = flags.all(flag);
        if !vals.is_empty() {
            c.insert(key.into(), json!(vals));
        }
    }
    c
}

fn options_from(flags: &crate::flags::Parsed) -> Result<Map<String, Value>, u8> {
    let mut o = Map::new();
    for kv in flags.all("options") {
        let Some((k, v)) = kv.split_once('=') else {
            eprintln!("invalid -options value {kv:?}: use key=value");
            return Err(1);
        };
        o.insert(k.into(), json!(v));
    }
    if let Some(v) = flags.get("version") {
        o.insert("version".into(), json!(v));
    }
    Ok(o)
}

/// `secrets|auth enable [-path=P] ... TYPE`.
pub fn enable(args: &[String], which: Which) -> u8 {
    let mut spec = TUNE_FLAGS.to_vec();
    spec.extend_from_slice(&[
        ("path", Kind::Value),
        ("local", Kind::Bool),
        ("seal-wrap", Kind::Bool),
        ("external-entropy-access", Kind::Bool),
        ("plugin-name", Kind::Value),
    ]);
    let cmd = match common::parse(args, &spec) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(kind) = cmd.flags.args.first().cloned() else {
        eprintln!("Not enough arguments (expected 1, got 0)");
        return 1;
    };
    let path = cmd
        .flags
        .get("path")
        .map(str::to_string)
        .unwrap_or_else(|| kind.clone());
    let path = format!("{}/", path.trim_matches('/'));
    let options = match options_from(&cmd.flags) {
        Ok(o) => o,
        Err(c) => return c,
    };
    let mut body = json!({
        "type": kind,
        "description": cmd.flags.get("description").unwrap_or(""),
        "config": config_from(&cmd.flags),
        "local": cmd.flags.bool("local"),
        "seal_wrap": cmd.flags.bool("seal-wrap"),
    });
    if !options.is_empty() {
        body["options"] = Value::Object(options);
    }
    match block_on(cmd.client.request(
        "POST",
        &format!("{}/{}", which.sys(), path),
        Some(&body),
        &[],
    )) {
        Ok(_) => {
            println!("Success! Enabled the {kind} {} at: {path}", which.noun());
            0
        }
        Err(e) => api_error("enabling", &e),
    }
}

/// `secrets|auth disable PATH`.
pub fn disable(args: &[String], which: Which) -> u8 {
    let cmd = match common::parse(args, &[]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(path) = cmd.flags.args.first() else {
        eprintln!("Not enough arguments (expected 1, got 0)");
        return 1;
    };
    let path = format!("{}/", path.trim_matches('/'));
    match block_on(
        cmd.client
            .request("DELETE", &format!("{}/{}", which.sys(), path), None, &[]),
    ) {
        Ok(_) => {
            println!(
                "Success! Disabled the {} (if it existed) at: {path}",
                which.noun()
            );
            0
        }
        Err(e) => api_error(&format!("disabling {} at {path}", which.noun()), &e),
    }
}

/// `secrets|auth list [-detailed]`.
pub fn list(args: &[String], which: Which) -> u8 {
    let cmd = match common::parse(args, &[("detailed", Kind::Bool)]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let resp = match block_on(cmd.client.request("GET", which.sys(), None, &[])) {
        Ok(Some(r)) => r,
        Ok(None) => return 2,
        Err(e) => return api_error(&format!("listing {}s", which.noun()), &e),
    };
    let data = resp.get("data").cloned().unwrap_or(Value::Null);
    if cmd.format != Format::Table {
        common::print_value(cmd.format, &data);
        return 0;
    }
    let mut rows = Vec::new();
    if let Some(m) = data.as_object() {
        let mut keys: Vec<&String> = m.keys().collect();
        keys.sort();
        for k in keys {
            let e = &m[k];
            let g = |f: &str| e.get(f).map(common::cell).unwrap_or_default();
            let desc = if g("description").is_empty() {
                "n/a".into()
            } else {
                g("description")
            };
            if cmd.flags.bool("detailed") {
                let ttl = |f: &str| match e.pointer(&format!("/config/{f}")).and_then(Value::as_u64)
                {
                    Some(0) | None => "system".to_string(),
                    Some(s) => common::human_duration(s),
                };
                rows.push(vec![
                    k.clone(),
                    g("type"),
                    g("accessor"),
                    ttl("default_lease_ttl"),
                    ttl("max_lease_ttl"),
                    g("local"),
                    g("seal_wrap"),
                    e.get("options").map(common::cell).unwrap_or_default(),
                    desc,
                    g("uuid"),
                ]);
            } else {
                rows.push(vec![k.clone(), g("type"), g("accessor"), desc]);
            }
        }
    }
    if cmd.flags.bool("detailed") {
        table(
            &[
                "Path",
                "Type",
                "Accessor",
                "Default TTL",
                "Max TTL",
                "Local",
                "Seal Wrap",
                "Options",
                "Description",
                "UUID",
            ],
            &rows,
        );
    } else {
        table(&["Path", "Type", "Accessor", "Description"], &rows);
    }
    0
}

/// `secrets|auth tune [flags] PATH`.
pub fn tune(args: &[String], which: Which) -> u8 {
    let cmd = match common::parse(args, TUNE_FLAGS) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(path) = cmd.flags.args.first() else {
        eprintln!("Not enough arguments (expected 1, got 0)");
        return 1;
    };
    let path = format!("{}/", path.trim_matches('/'));
    let mut body = config_from(&cmd.flags);
    if let Some(d) = cmd.flags.get("description") {
        body.insert("description".into(), json!(d));
    }
    match options_from(&cmd.flags) {
        Ok(o) if !o.is_empty() => {
            body.insert("options".into(), Value::Object(o));
        }
        Ok(_) => {}
        Err(c) => return c,
    }
    match block_on(cmd.client.request(
        "POST",
        &format!("{}/{}tune", which.sys(), path),
        Some(&Value::Object(body)),
        &[],
    )) {
        Ok(_) => {
            println!("Success! Tuned the {} at: {path}", which.noun());
            0
        }
        Err(e) => api_error(&format!("tuning {} {path}", which.noun()), &e),
    }
}

/// `secrets move SRC DST`.
pub fn move_mount(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let [src, dst] = cmd.flags.args.as_slice() else {
        eprintln!(
            "Not enough arguments (expected 2, got {})",
            cmd.flags.args.len()
        );
        return 1;
    };
    let (src, dst) = (
        format!("{}/", src.trim_matches('/')),
        format!("{}/", dst.trim_matches('/')),
    );
    let resp = match block_on(cmd.client.request(
        "POST",
        "sys/remount",
        Some(&json!({"from": src, "to": dst})),
        &[],
    )) {
        Ok(r) => r.unwrap_or(Value::Null),
        Err(e) => return api_error(&format!("moving secrets engine {src} to {dst}"), &e),
    };
    let id = resp
        .pointer("/data/migration_id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    println!("Started moving secrets engine {src} to {dst}, with migration ID {id}");
    let deadline = Instant::now() + Duration::from_secs(300);
    while Instant::now() < deadline {
        match block_on(
            cmd.client
                .request("GET", &format!("sys/remount/status/{id}"), None, &[]),
        ) {
            Ok(Some(s)) => match s
                .pointer("/data/migration_info/status")
                .and_then(Value::as_str)
            {
                Some("success") => {
                    println!("Success! Finished moving secrets engine {src} to {dst}, with migration ID {id}");
                    return 0;
                }
                Some("failure") => {
                    eprintln!("Error moving secrets engine {src} to {dst}, with migration ID {id}");
                    return 2;
                }
                _ => {}
            },
            Ok(None) => {}
            Err(e) => return api_error("checking migration status", &e),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    eprintln!("Timed out waiting for the move of {src} to {dst}");
    2
}
