//! `login`, `token create|lookup|renew|revoke|capabilities`, `policy
//! write|read|list|delete|fmt`, and the old verbs `policy-write` and `token-create`.

use serde_json::{json, Map, Value};

use super::common::{self, api_error, block_on, kv_args, print_secret, Format};
use crate::flags::Kind;

/// `login [-method=M] [-path=P] [-no-store] [k=v...] [TOKEN]`.
pub fn login(args: &[String]) -> u8 {
    let cmd = match common::parse(
        args,
        &[
            ("method", Kind::Value),
            ("path", Kind::Value),
            ("no-store", Kind::Bool),
            ("no-print", Kind::Bool),
            ("token-only", Kind::Bool),
        ],
    ) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let method = cmd.flags.get("method").unwrap_or("token").to_string();
    let resp = if method == "token" {
        let token = match cmd.flags.args.first() {
            Some(t) if t != "-" => t.clone(),
            _ => match common::prompt("Token (will be hidden): ") {
                Ok(t) => t,
                Err(e) => {
                    eprintln!("Error reading token: {e}");
                    return 1;
                }
            },
        };
        let mut c = cmd.client.clone();
        c.set_token(Some(token.clone()));
        match block_on(c.request("GET", "auth/token/lookup-self", None, &[])) {
            Ok(Some(r)) => {
                let d = r.get("data").cloned().unwrap_or(Value::Null);
                json!({"auth": {
                    "client_token": token, "accessor": d.get("accessor"), "policies": d.get("policies"),
                    "token_policies": d.get("policies"), "metadata": d.get("meta"),
                    "lease_duration": d.get("ttl"), "renewable": d.get("renewable"),
                }})
            }
            Ok(None) => return 2,
            Err(e) => return api_error("authenticating", &e),
        }
    } else {
        let mut data = match kv_args(&cmd.flags.args) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("{e}");
                return 1;
            }
        };
        let mount = cmd
            .flags
            .get("path")
            .unwrap_or(&method)
            .trim_matches('/')
            .to_string();
        if method == "kubernetes" && !data.contains_key("jwt") {
            if let Ok(t) =
                std::fs::read_to_string("/var/run/secrets/kubernetes.io/serviceaccount/token")
            {
                data.insert("jwt".into(), json!(t.trim()));
            }
        }
        let mut c = cmd.client.clone();
        c.set_token(None);
        match block_on(c.request(
            "PUT",
            &format!("auth/{mount}/login"),
            Some(&Value::Object(data)),
            &[],
        )) {
            Ok(Some(r)) => r,
            Ok(None) => return 2,
            Err(e) => return api_error("authenticating", &e),
        }
    };
    let token = resp
        .pointer("/auth/client_token")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !cmd.flags.bool("no-store") {
        if let Err(e) = common::store_token(&token) {
            eprintln!("Error storing token: {e}");
            return 2;
        }
    }
    if cmd.flags.bool("token-only") {
        print!("{token}");
        return 0;
    }
    if cmd.flags.bool("no-print") {
        return 0;
    }
    if cmd.format == Format::Table && cmd.field.is_none() {
        println!("Success! You are now authenticated. The token information displayed below\nis already stored in the token helper. You do NOT need to run \"signet login\"\nagain. Future requests will automatically use this token.\n");
    }
    print_secret(&cmd, &resp)
}

const CREATE_FLAGS: &[(&str, Kind)] = &[
    ("policy", Kind::Multi),
    ("ttl", Kind::Value),
    ("explicit-max-ttl", Kind::Value),
    ("period", Kind::Value),
    ("renewable", Kind::Value),
    ("orphan", Kind::Bool),
    ("no-default-policy", Kind::Bool),
    ("display-name", Kind::Value),
    ("use-limit", Kind::Value),
    ("role", Kind::Value),
    ("metadata", Kind::Multi),
    ("id", Kind::Value),
    ("type", Kind::Value),
    ("entity-alias", Kind::Value),
];

/// `token <sub>`.
pub fn token(args: &[String]) -> u8 {
    let Some(sub) = args.first() else {
        eprintln!("Usage: signet token <create|lookup|renew|revoke|capabilities> [options]");
        return 1;
    };
    let rest = &args[1..];
    match sub.as_str() {
        "create" => token_create(rest),
        "lookup" => token_lookup(rest),
        "renew" => token_renew(rest),
        "revoke" => token_revoke(rest),
        "capabilities" => capabilities(rest),
        other => {
            eprintln!("Unknown token command: {other}");
            1
        }
    }
}

/// `token create` (and the old `token-create`).
pub fn token_create(args: &[String]) -> u8 {
    let cmd = match common::parse(args, CREATE_FLAGS) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let f = &cmd.flags;
    let mut body = Map::new();
    let policies: Vec<String> = f
        .all("policy")
        .iter()
        .flat_map(|p| p.split(',').map(str::to_string))
        .collect();
    if !policies.is_empty() {
        body.insert("policies".into(), json!(policies));
    }
    for (flag, key) in [
        ("ttl", "ttl"),
        ("explicit-max-ttl", "explicit_max_ttl"),
        ("period", "period"),
        ("display-name", "display_name"),
        ("id", "id"),
        ("type", "type"),
    ] {
        if let Some(v) = f.get(flag) {
            body.insert(key.into(), json!(v));
        }
    }
    if let Some(v) = f.get("renewable") {
        body.insert("renewable".into(), json!(v != "false"));
    }
    if let Some(v) = f.get("use-limit") {
        body.insert("num_uses".into(), json!(v));
    }
    if f.bool("no-default-policy") {
        body.insert("no_default_policy".into(), json!(true));
    }
    let meta = f.all("metadata");
    if !meta.is_empty() {
        let mut m = Map::new();
        for kv in meta {
            if let Some((k, v)) = kv.split_once('=') {
                m.insert(k.into(), json!(v));
            }
        }
        body.insert("meta".into(), Value::Object(m));
    }
    let path = match (f.get("role"), f.bool("orphan")) {
        (Some(role), _) => format!("auth/token/create/{role}"),
        (None, true) => "auth/token/create-orphan".into(),
        _ => "auth/token/create".into(),
    };
    match block_on(
        cmd.client
            .request("POST", &path, Some(&Value::Object(body)), &[]),
    ) {
        Ok(Some(r)) => print_secret(&cmd, &r),
        Ok(None) => 2,
        Err(e) => api_error("creating token", &e),
    }
}

fn token_lookup(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[("accessor", Kind::Bool)]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let r = match (cmd.flags.args.first(), cmd.flags.bool("accessor")) {
        (None, _) => block_on(
            cmd.client
                .request("GET", "auth/token/lookup-self", None, &[]),
        ),
        (Some(a), true) => block_on(cmd.client.request(
            "POST",
            "auth/token/lookup-accessor",
            Some(&json!({"accessor": a})),
            &[],
        )),
        (Some(t), false) => block_on(cmd.client.request(
            "POST",
            "auth/token/lookup",
            Some(&json!({"token": t})),
            &[],
        )),
    };
    match r {
        Ok(Some(r)) => print_secret(&cmd, &r),
        Ok(None) => 2,
        Err(e) => api_error("looking up token", &e),
    }
}

fn token_renew(args: &[String]) -> u8 {
    let cmd = match common::parse(
        args,
        &[
            ("increment", Kind::Value),
            ("i", Kind::Value),
            ("accessor", Kind::Bool),
        ],
    ) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let mut body = Map::new();
    if let Some(i) = cmd.flags.get("increment").or(cmd.flags.get("i")) {
        body.insert("increment".into(), json!(i));
    }
    let path = match (cmd.flags.args.first(), cmd.flags.bool("accessor")) {
        (None, _) => "auth/token/renew-self",
        (Some(a), true) => {
            body.insert("accessor".into(), json!(a));
            "auth/token/renew-accessor"
        }
        (Some(t), false) => {
            body.insert("token".into(), json!(t));
            "auth/token/renew"
        }
    };
    match block_on(
        cmd.client
            .request("POST", path, Some(&Value::Object(body)), &[]),
    ) {
        Ok(Some(r)) => print_secret(&cmd, &r),
        Ok(None) => 0,
        Err(e) => api_error("renewing token", &e),
    }
}

fn token_revoke(args: &[String]) -> u8 {
    let cmd = match common::parse(
        args,
        &[
            ("self", Kind::Bool),
            ("accessor", Kind::Bool),
            ("mode", Kind::Value),
        ],
    ) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let orphan = cmd.flags.get("mode") == Some("orphan");
    let (path, body) = match (
        cmd.flags.args.first(),
        cmd.flags.bool("self"),
        cmd.flags.bool("accessor"),
    ) {
        (_, true, _) => ("auth/token/revoke-self", json!({})),
        (Some(a), _, true) => ("auth/token/revoke-accessor", json!({"accessor": a})),
        (Some(t), _, false) => (
            if orphan {
                "auth/token/revoke-orphan"
            } else {
                "auth/token/revoke"
            },
            json!({"token": t}),
        ),
        (None, false, _) => {
            eprintln!("Not enough arguments (expected 1, got 0)");
            return 1;
        }
    };
    match block_on(cmd.client.request("POST", path, Some(&body), &[])) {
        Ok(_) => {
            println!("Success! Revoked token (if it existed)");
            0
        }
        Err(e) => api_error("revoking token", &e),
    }
}

fn capabilities(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[("accessor", Kind::Bool)]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let a = &cmd.flags.args;
    let (path, body) = match a.as_slice() {
        [p] => ("sys/capabilities-self", json!({"paths": [p]})),
        [t, p] if cmd.flags.bool("accessor") => (
            "sys/capabilities-accessor",
            json!({"accessor": t, "paths": [p]}),
        ),
        [t, p] => ("sys/capabilities", json!({"token": t, "paths": [p]})),
        _ => {
            eprintln!("Not enough arguments (expected 1-2, got {})", a.len());
            return 1;
        }
    };
    match block_on(cmd.client.request("POST", path, Some(&body), &[])) {
        Ok(Some(r)) => {
            let caps = r
                .pointer("/data/capabilities")
                .cloned()
                .unwrap_or(json!([]));
            match cmd.format {
                Format::Table => {
                    let list: Vec<String> = caps
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(common::cell)
                        .collect();
                    println!("{}", list.join(", "));
                }
                f => common::print_value(f, &caps),
            }
            0
        }
        Ok(None) => 2,
        Err(e) => api_error("listing capabilities", &e),
    }
}

/// `policy <sub>`.
pub fn policy(args: &[String]) -> u8 {
    let Some(sub) = args.first() else {
        eprintln!("Usage: signet policy <write|read|list|delete|fmt> [options]");
        return 1;
    };
    let rest = &args[1..];
    match sub.as_str() {
        "write" => policy_write(rest),
        "read" => policy_read(rest),
        "list" => policy_list(rest),
        "delete" => policy_delete(rest),
        "fmt" => policy_fmt(rest),
        other => {
            eprintln!("Unknown policy command: {other}");
            1
        }
    }
}

fn read_source(src: &str) -> Result<String, String> {
    if src == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
            .map_err(|e| format!("reading stdin: {e}"))?;
        Ok(s)
    } else {
        std::fs::read_to_string(src).map_err(|e| format!("reading {src}: {e}"))
    }
}

/// `policy write NAME FILE|-` (and the old `policy-write`).
pub fn policy_write(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let [name, src] = cmd.flags.args.as_slice() else {
        eprintln!(
            "Not enough arguments (expected 2, got {})",
            cmd.flags.args.len()
        );
        return 1;
    };
    let text = match read_source(src) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Error opening policy file: {e}");
            return 1;
        }
    };
    match block_on(cmd.client.request(
        "PUT",
        &format!("sys/policies/acl/{name}"),
        Some(&json!({"policy": text})),
        &[],
    )) {
        Ok(_) => {
            println!("Success! Uploaded policy: {name}");
            0
        }
        Err(e) => api_error("uploading policy", &e),
    }
}

fn policy_read(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(name) = cmd.flags.args.first() else {
        eprintln!("Not enough arguments (expected 1, got 0)");
        return 1;
    };
    match block_on(
        cmd.client
            .request("GET", &format!("sys/policies/acl/{name}"), None, &[]),
    ) {
        Ok(Some(r)) => {
            match cmd.format {
                Format::Table => println!(
                    "{}",
                    r.pointer("/data/policy")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                ),
                f => common::print_value(f, &r.get("data").cloned().unwrap_or(Value::Null)),
            }
            0
        }
        Ok(None) => 2,
        Err(e) if e.status() == Some(404) => {
            eprintln!("No policy named: {name}");
            2
        }
        Err(e) => api_error(&format!("reading policy named {name}"), &e),
    }
}

fn policy_list(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match block_on(cmd.client.request("LIST", "sys/policies/acl", None, &[])) {
        Ok(Some(r)) => {
            let keys = r.pointer("/data/keys").cloned().unwrap_or(json!([]));
            match cmd.format {
                Format::Table => {
                    for k in keys.as_array().into_iter().flatten() {
                        println!("{}", common::cell(k));
                    }
                }
                f => common::print_value(f, &keys),
            }
            0
        }
        Ok(None) => 2,
        Err(e) => api_error("listing policies", &e),
    }
}

fn policy_delete(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(name) = cmd.flags.args.first() else {
        eprintln!("Not enough arguments (expected 1, got 0)");
        return 1;
    };
    match block_on(
        cmd.client
            .request("DELETE", &format!("sys/policies/acl/{name}"), None, &[]),
    ) {
        Ok(_) => {
            println!("Success! Deleted policy: {name}");
            0
        }
        Err(e) => api_error(&format!("deleting {name}"), &e),
    }
}

/// `policy fmt FILE`: checks the policy parses (rewriting is left to the user's formatter).
fn policy_fmt(args: &[String]) -> u8 {
    let Some(file) = args.first() else {
        eprintln!("Not enough arguments (expected 1, got 0)");
        return 1;
    };
    let text = match read_source(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Error opening policy file: {e}");
            return 1;
        }
    };
    match signet_types::hcl::parse_str(&text, std::path::Path::new(file)) {
        Ok(_) => {
            println!("Success! Formatted policy: {file}");
            0
        }
        Err(e) => {
            eprintln!("Error parsing policy: {e}");
            1
        }
    }
}
