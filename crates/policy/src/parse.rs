//! Policy text -> [`Policy`]: HCL (`path "..." { ... }` stanzas) or the equivalent JSON
//! (`{"path": {"...": {...}}}`). Errors name the line of the offending stanza or key.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};
use signet_types::hcl;

use crate::{Caps, PathRule, Policy};

/// A policy that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("failed to parse policy: {message}")]
pub struct PolicyError {
    /// Line of the error (0 when unknown, as for JSON).
    pub line: usize,
    pub message: String,
}

fn err(line: usize, message: impl Into<String>) -> PolicyError {
    let message = message.into();
    PolicyError {
        line,
        message: if line > 0 {
            format!("line {line}: {message}")
        } else {
            message
        },
    }
}

const RULE_KEYS: &[&str] = &[
    "capabilities",
    "policy",
    "required_parameters",
    "allowed_parameters",
    "denied_parameters",
    "min_wrapping_ttl",
    "max_wrapping_ttl",
    "expiration",
    "pagination_limit",
];

/// Parses a policy named `name` from HCL or JSON text.
pub fn parse(name: &str, text: &str) -> Result<Policy, PolicyError> {
    if text.trim_start().starts_with('{') {
        let v: Value = serde_json::from_str(text).map_err(|e| err(e.line(), e.to_string()))?;
        return from_json(name, &v);
    }
    let body =
        hcl::parse_str(text, Path::new("policy")).map_err(|e| err(e.line, strip_file(&e)))?;
    if let Some(a) = body.attrs.iter().find(|a| a.key != "name") {
        return Err(err(a.line, format!("invalid key {:?}", a.key)));
    }
    let mut rules = Vec::new();
    for b in &body.blocks {
        if b.ident != "path" {
            return Err(err(b.line, format!("invalid key {:?}", b.ident)));
        }
        let [pattern] = b.labels.as_slice() else {
            return Err(err(
                b.line,
                "path stanzas need exactly one path, like path \"secret/*\" { ... }",
            ));
        };
        let mut fields = Map::new();
        for a in &b.body.attrs {
            if !RULE_KEYS.contains(&a.key.as_str()) {
                return Err(err(
                    a.line,
                    format!("invalid key {:?} in path {pattern:?}", a.key),
                ));
            }
            fields.insert(a.key.clone(), a.value.clone());
        }
        for inner in &b.body.blocks {
            if !matches!(
                inner.ident.as_str(),
                "allowed_parameters" | "denied_parameters"
            ) {
                return Err(err(
                    inner.line,
                    format!("invalid key {:?} in path {pattern:?}", inner.ident),
                ));
            }
            let mut m = Map::new();
            for a in &inner.body.attrs {
                m.insert(a.key.clone(), a.value.clone());
            }
            fields.insert(inner.ident.clone(), Value::Object(m));
        }
        rules.push(rule(pattern, &fields, b.line)?);
    }
    Ok(Policy {
        name: name.to_string(),
        rules,
    })
}

fn strip_file(e: &hcl::ConfError) -> String {
    e.message.clone()
}

fn from_json(name: &str, v: &Value) -> Result<Policy, PolicyError> {
    let obj = v
        .as_object()
        .ok_or_else(|| err(0, "a JSON policy must be an object"))?;
    let mut rules = Vec::new();
    for (k, val) in obj {
        if k == "name" {
            continue;
        }
        if k != "path" {
            return Err(err(0, format!("invalid key {k:?}")));
        }
        let stanzas: Vec<&Map<String, Value>> = match val {
            Value::Object(m) => vec![m],
            Value::Array(a) => a.iter().filter_map(Value::as_object).collect(),
            _ => return Err(err(0, "\"path\" must be an object of path rules")),
        };
        for m in stanzas {
            for (pattern, fields) in m {
                let fields = fields
                    .as_object()
                    .ok_or_else(|| err(0, format!("path {pattern:?} must be an object")))?;
                if let Some(k) = fields.keys().find(|k| !RULE_KEYS.contains(&k.as_str())) {
                    return Err(err(0, format!("invalid key {k:?} in path {pattern:?}")));
                }
                rules.push(rule(pattern, fields, 0)?);
            }
        }
    }
    Ok(Policy {
        name: name.to_string(),
        rules,
    })
}

fn strings(v: &Value, what: &str, line: usize) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| err(line, format!("{what} must be a list of strings")))
            })
            .collect(),
        Value::String(s) => Ok(s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()),
        _ => Err(err(line, format!("{what} must be a list of strings"))),
    }
}

fn params(v: &Value, what: &str, line: usize) -> Result<BTreeMap<String, Vec<Value>>, PolicyError> {
    let obj = match v {
        Value::Object(m) => m.clone(),
        // HCL 1 writes a map as a list of one-key objects.
        Value::Array(a) => {
            let mut m = Map::new();
            for item in a {
                if let Value::Object(o) = item {
                    m.extend(o.clone());
                }
            }
            m
        }
        _ => {
            return Err(err(
                line,
                format!("{what} must be a map of parameter names to value lists"),
            ))
        }
    };
    let mut out = BTreeMap::new();
    for (k, vals) in obj {
        let list = match vals {
            Value::Array(a) => a,
            Value::Null => Vec::new(),
            other => vec![other],
        };
        out.insert(k, list);
    }
    Ok(out)
}

fn rule(pattern: &str, f: &Map<String, Value>, line: usize) -> Result<PathRule, PolicyError> {
    let mut caps = Caps::default();
    if let Some(v) = f.get("capabilities") {
        for name in strings(v, "capabilities", line)? {
            let c = Caps::from_name(&name.to_lowercase()).ok_or_else(|| {
                err(
                    line,
                    format!("path {pattern:?}: invalid capability {name:?}"),
                )
            })?;
            caps = caps.union(c);
        }
    }
    if let Some(v) = f.get("policy") {
        let legacy = v.as_str().unwrap_or("");
        let c = match legacy {
            "deny" => Caps::DENY,
            "read" => Caps::READ.union(Caps::LIST),
            "write" => Caps::READ
                .union(Caps::LIST)
                .union(Caps::CREATE)
                .union(Caps::UPDATE)
                .union(Caps::DELETE)
                .union(Caps::PATCH),
            "sudo" => Caps::ALL.union(Caps::SUDO),
            other => {
                return Err(err(
                    line,
                    format!("path {pattern:?}: invalid policy {other:?}"),
                ))
            }
        };
        caps = caps.union(c);
    }
    if caps.contains(Caps::DENY) {
        caps = Caps::DENY;
    }
    let duration = |k: &str| -> Result<u64, PolicyError> {
        match f.get(k) {
            None => Ok(0),
            Some(v) => signet_types::parse_duration(v).map_err(|e| err(line, format!("{k}: {e}"))),
        }
    };
    Ok(PathRule {
        pattern: pattern.trim_start_matches('/').to_string(),
        caps,
        required_parameters: match f.get("required_parameters") {
            Some(v) => strings(v, "required_parameters", line)?,
            None => Vec::new(),
        },
        allowed_parameters: f
            .get("allowed_parameters")
            .map(|v| params(v, "allowed_parameters", line))
            .transpose()?,
        denied_parameters: f
            .get("denied_parameters")
            .map(|v| params(v, "denied_parameters", line))
            .transpose()?,
        min_wrapping_ttl: duration("min_wrapping_ttl")?,
        max_wrapping_ttl: duration("max_wrapping_ttl")?,
        line,
    })
}
