//! `audit list [-detailed]`, `audit enable [-path=P] [-description=D] TYPE key=value...`,
//! `audit disable PATH`, with the vault CLI's output and exit codes.

use serde_json::{json, Map, Value};

use super::common::{self, api_error, block_on, table, Format};
use crate::flags::Kind;

/// `audit list [-detailed]`.
pub fn list(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[("detailed", Kind::Bool)]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let resp = match block_on(cmd.client.request("GET", "sys/audit", None, &[])) {
        Ok(Some(r)) => r,
        Ok(None) => Value::Null,
        Err(e) => return api_error("listing audit devices", &e),
    };
    let data = resp.get("data").cloned().unwrap_or(Value::Null);
    if cmd.format != Format::Table {
        common::print_value(cmd.format, &data);
        return 0;
    }
    let Some(m) = data.as_object().filter(|m| !m.is_empty()) else {
        println!("No audit devices are enabled.");
        return 2;
    };
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort();
    let mut rows = Vec::new();
    for k in keys {
        let e = &m[k];
        let g = |f: &str| e.get(f).map(common::cell).unwrap_or_default();
        let desc = if g("description").is_empty() {
            "n/a".into()
        } else {
            g("description")
        };
        if cmd.flags.bool("detailed") {
            let replication = if e.get("local").and_then(Value::as_bool) == Some(true) {
                "local"
            } else {
                "replicated"
            };
            rows.push(vec![
                k.clone(),
                g("type"),
                desc,
                replication.into(),
                e.get("options").map(common::cell).unwrap_or_default(),
            ]);
        } else {
            rows.push(vec![k.clone(), g("type"), desc]);
        }
    }
    if cmd.flags.bool("detailed") {
        table(
            &["Path", "Type", "Description", "Replication", "Options"],
            &rows,
        );
    } else {
        table(&["Path", "Type", "Description"], &rows);
    }
    0
}

/// `audit enable [-path=P] [-description=D] [-local] TYPE [key=value ...]`.
pub fn enable(args: &[String]) -> u8 {
    let cmd = match common::parse(
        args,
        &[
            ("path", Kind::Value),
            ("description", Kind::Value),
            ("local", Kind::Bool),
        ],
    ) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(kind) = cmd.flags.args.first().cloned() else {
        eprintln!("Not enough arguments (expected 1, got 0)");
        return 1;
    };
    let mut options = Map::new();
    for kv in &cmd.flags.args[1..] {
        let Some((k, v)) = kv.split_once('=') else {
            eprintln!("invalid option {kv:?}: use key=value");
            return 1;
        };
        options.insert(k.to_string(), json!(v));
    }
    let path = cmd
        .flags
        .get("path")
        .map(str::to_string)
        .unwrap_or_else(|| kind.clone());
    let path = format!("{}/", path.trim_matches('/'));
    let body = json!({
        "type": kind,
        "description": cmd.flags.get("description").unwrap_or(""),
        "options": options,
        "local": cmd.flags.bool("local"),
    });
    match block_on(
        cmd.client
            .request("PUT", &format!("sys/audit/{path}"), Some(&body), &[]),
    ) {
        Ok(_) => {
            println!("Success! Enabled the {kind} audit device at: {path}");
            0
        }
        Err(e) => api_error("enabling audit device", &e),
    }
}

/// `audit disable PATH`.
pub fn disable(args: &[String]) -> u8 {
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
            .request("DELETE", &format!("sys/audit/{path}"), None, &[]),
    ) {
        Ok(_) => {
            println!("Success! Disabled audit device (if it was enabled) at: {path}");
            0
        }
        Err(e) => api_error("disabling audit device", &e),
    }
}
