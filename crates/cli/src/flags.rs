//! Go-style flag parsing, as the `vault`/`bao` CLI does it: `-flag`, `--flag`, `-flag=value`,
//! `-flag value`, booleans as `-force` or `-force=false`, flags before positional arguments,
//! parsing stops at the first positional argument, at `--`, or at a lone `-` (stdin).
//!
//! Written by hand because clap's single-dash long options and its interleaving rules differ
//! from Go's `flag` package, and scripts written for `vault` must run unchanged.

use std::collections::BTreeMap;

/// Whether a flag takes a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Value,
    /// May be repeated; every value is kept.
    Multi,
}

/// Parsed flags and the remaining positional arguments.
#[derive(Debug, Default)]
pub struct Parsed {
    values: BTreeMap<String, Vec<String>>,
    pub args: Vec<String>,
}

impl Parsed {
    /// The last value of a flag.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value of a repeatable flag.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// A boolean flag.
    pub fn bool(&self, name: &str) -> bool {
        matches!(
            self.get(name),
            Some("true" | "1" | "t" | "T" | "TRUE" | "True")
        )
    }
}

/// Parses `args` against `spec`; unknown flags are errors, as in Go.
pub fn parse(args: &[String], spec: &[(&str, Kind)]) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            out.args.extend(args[i + 1..].iter().cloned());
            return Ok(out);
        }
        if a == "-" || !a.starts_with('-') {
            out.args.extend(args[i..].iter().cloned());
            return Ok(out);
        }
        let body = a.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let kind = spec
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
            .ok_or_else(|| format!("flag provided but not defined: -{name}"))?;
        let value = match (kind, inline) {
            (Kind::Bool, Some(v)) => match v.as_str() {
                "1" | "t" | "T" | "true" | "TRUE" | "True" => "true".to_string(),
                "0" | "f" | "F" | "false" | "FALSE" | "False" => "false".to_string(),
                _ => return Err(format!("invalid boolean value {v:?} for -{name}")),
            },
            (Kind::Bool, None) => "true".to_string(),
            (_, Some(v)) => v,
            (_, None) => {
                i += 1;
                args.get(i)
                    .cloned()
                    .ok_or_else(|| format!("flag needs an argument: -{name}"))?
            }
        };
        out.values.entry(name.to_string()).or_default().push(value);
        i += 1;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn go_semantics() {
        let spec = [
            ("force", Kind::Bool),
            ("format", Kind::Value),
            ("policy", Kind::Multi),
        ];
        let p = parse(
            &s(&[
                "-force",
                "--format=json",
                "-policy",
                "a",
                "-policy=b",
                "path",
                "-x",
            ]),
            &spec,
        )
        .unwrap();
        assert!(p.bool("force"));
        assert_eq!(p.get("format"), Some("json"));
        assert_eq!(p.all("policy"), vec!["a", "b"]);
        assert_eq!(p.args, s(&["path", "-x"]));
        let p = parse(&s(&["-force=false", "-"]), &spec).unwrap();
        assert!(!p.bool("force"));
        assert_eq!(p.args, s(&["-"]));
        assert!(parse(&s(&["-nope"]), &spec).is_err());
        assert!(parse(&s(&["-format"]), &spec).is_err());
    }
}
