//! `read`, `write`, `list`, `delete`, `patch`: the generic verbs over any path.

use serde_json::Value;

use super::common::{self, api_error, block_on, kv_args, print_secret, Format};
use crate::flags::Kind;

/// `read PATH [k=v...]` (the pairs become query parameters).
pub fn read(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(path) = cmd.flags.args.first().cloned() else {
        eprintln!("Not enough arguments (expected 1, got 0)");
        return 1;
    };
    let query: Vec<(String, String)> = match kv_args(&cmd.flags.args[1..]) {
        Ok(m) => m.into_iter().map(|(k, v)| (k, common::cell(&v))).collect(),
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    match block_on(cmd.client.request("GET", &path, None, &query)) {
        Ok(Some(resp)) => print_secret(&cmd, &resp),
        Ok(None) => {
            eprintln!("No value found at {path}");
            2
        }
        Err(e) if e.status() == Some(404) => {
            eprintln!("No value found at {path}");
            2
        }
        Err(e) => api_error(&format!("reading {path}"), &e),
    }
}

/// `write [-force] PATH k=v...`.
pub fn write(args: &[String]) -> u8 {
    write_like(args, "PUT", "writing", "Data written to")
}

/// `patch PATH k=v...` (JSON merge patch).
pub fn patch(args: &[String]) -> u8 {
    write_like(args, "PATCH", "patching", "Data patched at")
}

fn write_like(args: &[String], method: &str, verb: &str, done: &str) -> u8 {
    let cmd = match common::parse(args, &[("force", Kind::Bool), ("f", Kind::Bool)]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(path) = cmd.flags.args.first().cloned() else {
        eprintln!("Not enough arguments (expected 1, got 0)");
        return 1;
    };
    let data = match kv_args(&cmd.flags.args[1..]) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    let force = cmd.flags.bool("force") || cmd.flags.bool("f");
    if data.is_empty() && !force && method == "PUT" {
        eprintln!("Must supply data or use -force");
        return 1;
    }
    let body = Value::Object(data);
    match block_on(cmd.client.request(method, &path, Some(&body), &[])) {
        Ok(None) => {
            if cmd.format == Format::Table && cmd.field.is_none() {
                println!("Success! {done}: {path}");
            }
            0
        }
        Ok(Some(resp)) => print_secret(&cmd, &resp),
        Err(e) => api_error(&format!("{verb} {path}"), &e),
    }
}

/// `list PATH`.
pub fn list(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(path) = cmd.flags.args.first().cloned() else {
        eprintln!("Not enough arguments (expected 1, got 0)");
        return 1;
    };
    let resp = match block_on(cmd.client.list(&path)) {
        Ok(Some(r)) => r,
        Ok(None) => {
            eprintln!("No value found at {path}");
            return 2;
        }
        Err(e) if e.status() == Some(404) => {
            eprintln!("No value found at {path}");
            return 2;
        }
        Err(e) => return api_error(&format!("listing {path}"), &e),
    };
    let keys = resp
        .pointer("/data/keys")
        .cloned()
        .unwrap_or(Value::Array(vec![]));
    match cmd.format {
        Format::Table => {
            println!("Keys\n----");
            for k in keys.as_array().into_iter().flatten() {
                println!("{}", common::cell(k));
            }
            common::print_warnings(&resp);
        }
        f => common::print_value(f, &keys),
    }
    0
}

/// `delete PATH [k=v...]`.
pub fn delete(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(path) = cmd.flags.args.first().cloned() else {
        eprintln!("Not enough arguments (expected 1, got 0)");
        return 1;
    };
    let query: Vec<(String, String)> = match kv_args(&cmd.flags.args[1..]) {
        Ok(m) => m
            .into_iter()
            .map(|(k, v)| (k, common::cell(&v)))
            .collect::<Vec<_>>(),
        Err(e) => {
            eprintln!("{e}");
            return 1;
        }
    };
    match block_on(cmd.client.request("DELETE", &path, None, &query)) {
        Ok(_) => {
            println!("Success! Data deleted (if it existed) at: {path}");
            0
        }
        Err(e) => api_error(&format!("deleting {path}"), &e),
    }
}

/// `path-help PATH`.
pub fn path_help(args: &[String]) -> u8 {
    let cmd = match common::parse(args, &[]) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let Some(path) = cmd.flags.args.first().cloned() else {
        eprintln!("Not enough arguments (expected 1, got 0)");
        return 1;
    };
    match block_on(
        cmd.client
            .request("GET", &path, None, &[("help".into(), "1".into())]),
    ) {
        Ok(Some(resp)) => {
            match cmd.format {
                Format::Table => {
                    println!("{}", resp.get("help").and_then(Value::as_str).unwrap_or(""))
                }
                f => common::print_value(f, &resp),
            }
            0
        }
        Ok(None) => 0,
        Err(e) => api_error(&format!("retrieving help for {path}"), &e),
    }
}
