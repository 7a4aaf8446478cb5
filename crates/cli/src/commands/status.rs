//! `status` and `operator init|unseal|seal|rotate` (`operator migrate` is in [`super::migrate`]).

use base64::Engine as _;
use serde_json::{json, Value};

use super::common::{self, api_error, block_on, table, Format};
use crate::flags::Kind;

/// `status`: exit 0 unsealed, 2 sealed, 1 on error.
pub fn status(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let s = match block_on(cmd.client.request("GET", "sys/seal-status", None, &[])) {
        Ok(Some(s)) => s,
        Ok(None) => return 1,
        Err(e) => {
            eprintln!("Error checking seal status: {e}");
            return 1;
        }
    };
    let sealed = s.get("sealed").and_then(Value::as_bool).unwrap_or(true);
    let leader = if sealed {
        None
    } else {
        block_on(cmd.client.request("GET", "sys/leader", None, &[]))
            .ok()
            .flatten()
    };
    match cmd.format {
        Format::Table => print_seal_status(&s, leader.as_ref()),
        f => {
            let mut v = s.clone();
            if let (Some(o), Some(l)) = (v.as_object_mut(), &leader) {
                o.insert(
                    "ha_enabled".into(),
                    l.get("ha_enabled").cloned().unwrap_or(json!(false)),
                );
            }
            common::print_value(f, &v);
        }
    }
    if sealed {
        2
    } else {
        0
    }
}

fn print_seal_status(s: &Value, leader: Option<&Value>) {
    let g = |k: &str| s.get(k).map(common::cell).unwrap_or_default();
    let mut rows = vec![
        vec!["Seal Type".into(), g("type")],
        vec!["Initialized".into(), g("initialized")],
        vec!["Sealed".into(), g("sealed")],
        vec!["Total Shares".into(), g("n")],
        vec!["Threshold".into(), g("t")],
    ];
    if s.get("sealed").and_then(Value::as_bool) == Some(true) {
        rows.push(vec![
            "Unseal Progress".into(),
            format!("{}/{}", g("progress"), g("t")),
        ]);
        rows.push(vec![
            "Unseal Nonce".into(),
            if g("nonce").is_empty() {
                "n/a".into()
            } else {
                g("nonce")
            },
        ]);
    }
    rows.push(vec!["Version".into(), g("version")]);
    rows.push(vec!["Storage Type".into(), g("storage_type")]);
    if s.get("cluster_name").is_some() {
        rows.push(vec!["Cluster Name".into(), g("cluster_name")]);
        rows.push(vec!["Cluster ID".into(), g("cluster_id")]);
    }
    let ha = leader
        .and_then(|l| l.get("ha_enabled"))
        .map(common::cell)
        .unwrap_or_else(|| "false".into());
    let ha_on = ha == "true";
    rows.push(vec!["HA Enabled".into(), ha]);
    // As the vault CLI: the cluster address, this node's mode, and where the leader is.
    if let (true, Some(l)) = (ha_on, leader) {
        let text = |k: &str| l.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let cluster = text("leader_cluster_address");
        rows.push(vec![
            "HA Cluster".into(),
            if cluster.is_empty() {
                "n/a".into()
            } else {
                cluster
            },
        ]);
        if l.get("is_self").and_then(|v| v.as_bool()) == Some(true) {
            rows.push(vec!["HA Mode".into(), "active".into()]);
            rows.push(vec!["Active Since".into(), text("active_time")]);
        } else {
            rows.push(vec!["HA Mode".into(), "standby".into()]);
            rows.push(vec!["Active Node Address".into(), text("leader_address")]);
        }
    }
    table(&["Key", "Value"], &rows);
}

/// `operator <sub>`.
pub fn operator(args: &[String]) -> u8 {
    let Some(sub) = args.first() else {
        eprintln!("Usage: signet operator <init|unseal|seal|rotate|migrate> [options]");
        return 1;
    };
    let rest = &args[1..];
    match sub.as_str() {
        "init" => init(rest),
        "unseal" => unseal(rest),
        "seal" => seal(rest),
        "rotate" => rotate(rest),
        "migrate" => super::migrate::run(rest),
        other => {
            eprintln!("Unknown operator command: {other}");
            1
        }
    }
}

fn init(args: &[String]) -> u8 {
    let cmd = match common::parse(
        args,
        &[
            ("key-shares", Kind::Value),
            ("key-threshold", Kind::Value),
            ("n", Kind::Value),
            ("t", Kind::Value),
            ("status", Kind::Bool),
            ("recovery-shares", Kind::Value),
            ("recovery-threshold", Kind::Value),
        ],
    ) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if cmd.flags.bool("status") {
        return match block_on(cmd.client.request("GET", "sys/init", None, &[])) {
            Ok(Some(v)) if v.get("initialized").and_then(Value::as_bool) == Some(true) => {
                println!("Vault is initialized");
                0
            }
            Ok(_) => {
                println!("Vault is not initialized");
                2
            }
            Err(e) => api_error("checking init status", &e),
        };
    }
    let num = |a: &str, b: &str, d: u64| -> Result<u64, u8> {
        match cmd.flags.get(a).or(cmd.flags.get(b)) {
            None => Ok(d),
            Some(v) => v.parse().map_err(|_| {
                eprintln!("invalid value {v:?} for -{a}");
                1
            }),
        }
    };
    let (shares, threshold) = match (num("key-shares", "n", 5), num("key-threshold", "t", 3)) {
        (Ok(s), Ok(t)) => (s, t),
        _ => return 1,
    };
    let body = json!({"secret_shares": shares, "secret_threshold": threshold});
    let resp = match block_on(cmd.client.request("PUT", "sys/init", Some(&body), &[])) {
        Ok(Some(r)) => r,
        Ok(None) => return 2,
        Err(e) => return api_error("initializing", &e),
    };
    let hex: Vec<String> = resp
        .get("keys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let b64: Vec<String> = resp
        .get("keys_base64")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let root = resp.get("root_token").and_then(Value::as_str).unwrap_or("");
    match cmd.format {
        Format::Table => {
            for (i, k) in b64.iter().enumerate() {
                println!("Unseal Key {}: {k}", i + 1);
            }
            println!("\nInitial Root Token: {root}\n");
            if b64.is_empty() {
                println!("signet initialized; it unseals itself with its seal key file.");
            } else {
                println!(
                    "signet initialized with {} key shares and a key threshold of {}. Please securely\n\
                     distribute the key shares printed above. When the server is re-sealed,\n\
                     restarted, or stopped, you must supply at least {} of these keys to unseal it\n\
                     before it can start servicing requests.",
                    b64.len(),
                    threshold,
                    threshold
                );
            }
        }
        f => common::print_value(
            f,
            &json!({
                "unseal_keys_b64": b64,
                "unseal_keys_hex": hex,
                "unseal_shares": shares,
                "unseal_threshold": threshold,
                "recovery_keys_b64": [],
                "recovery_keys_hex": [],
                "recovery_keys_shares": 0,
                "recovery_keys_threshold": 0,
                "root_token": root,
            }),
        ),
    }
    0
}

fn unseal(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[("reset", Kind::Bool), ("migrate", Kind::Bool)]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let body = if cmd.flags.bool("reset") {
        json!({"reset": true})
    } else {
        let key = match cmd.flags.args.first() {
            Some(k) => k.clone(),
            None => match common::prompt("Unseal Key (will be hidden): ") {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("Error reading the key: {e}");
                    return 1;
                }
            },
        };
        // Accept shares copied with surrounding whitespace; validate locally for a clear error.
        let key = key.trim().to_string();
        if hex::decode(&key).is_err()
            && base64::engine::general_purpose::STANDARD
                .decode(&key)
                .is_err()
        {
            eprintln!("Error unsealing: the key must be hex or base64");
            return 1;
        }
        json!({"key": key})
    };
    match block_on(cmd.client.request("PUT", "sys/unseal", Some(&body), &[])) {
        Ok(Some(s)) => {
            match cmd.format {
                Format::Table => print_seal_status(&s, None),
                f => common::print_value(f, &s),
            }
            0
        }
        Ok(None) => 0,
        Err(e) => api_error("unsealing", &e),
    }
}

fn seal(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match block_on(cmd.client.request("PUT", "sys/seal", None, &[])) {
        Ok(_) => {
            println!("Success! Vault is sealed.");
            0
        }
        Err(e) => api_error("sealing", &e),
    }
}

fn rotate(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(e) = block_on(cmd.client.request("PUT", "sys/rotate", None, &[])) {
        return api_error("rotating key", &e);
    }
    match block_on(cmd.client.request("GET", "sys/key-status", None, &[])) {
        Ok(Some(s)) => {
            let d = s.get("data").cloned().unwrap_or(Value::Null);
            match cmd.format {
                Format::Table => {
                    println!("Success! Rotated key\n");
                    table(
                        &["Key", "Value"],
                        &[
                            vec![
                                "Key Term".into(),
                                d.get("term").map(common::cell).unwrap_or_default(),
                            ],
                            vec![
                                "Install Time".into(),
                                d.get("install_time").map(common::cell).unwrap_or_default(),
                            ],
                        ],
                    );
                }
                f => common::print_value(f, &d),
            }
            0
        }
        Ok(None) => 0,
        Err(e) => api_error("reading key status", &e),
    }
}
