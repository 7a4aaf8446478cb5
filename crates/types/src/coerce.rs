//! Vault's request field coercions, in one tested place.
//!
//! Clients send the same field in many shapes: `ttl` as `"72h"`, `"3600"` or `3600`; `alt_names`
//! as `"a,b"` or `["a","b"]`; booleans as `"true"`. Vault's framework normalises them before a
//! handler sees them; [`coerce`] does the same and returns the normalised JSON value.

use serde_json::{Map, Value};

use crate::duration::parse_duration;

/// The type of a request field, as declared in a path spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// A string; numbers and booleans are converted to their text.
    String,
    /// A string folded to lower case.
    LowerCaseString,
    /// A signed integer; numeric strings accepted.
    Int,
    /// A boolean; `"true"`, `"1"`, `"t"` and friends accepted (Go's `strconv.ParseBool`).
    Bool,
    /// A duration, normalised to whole seconds.
    DurationSecond,
    /// A list of strings; a string is split on commas.
    CommaStringSlice,
    /// A list of strings; a single string becomes a one-element list.
    StringSlice,
    /// A list of integers; a string is split on commas.
    CommaIntSlice,
    /// A JSON object.
    Map,
    /// A map of strings; also accepts a list of `k=v` strings.
    KvPairs,
    /// Any JSON value, passed through.
    Any,
}

impl FieldType {
    /// The name used in OpenAPI and help output.
    pub fn openapi_type(self) -> (&'static str, Option<&'static str>) {
        match self {
            FieldType::String | FieldType::LowerCaseString => ("string", None),
            FieldType::Int => ("integer", None),
            FieldType::Bool => ("boolean", None),
            FieldType::DurationSecond => ("string", Some("duration")),
            FieldType::CommaStringSlice | FieldType::StringSlice => ("array", Some("string")),
            FieldType::CommaIntSlice => ("array", Some("integer")),
            FieldType::Map | FieldType::KvPairs => ("object", None),
            FieldType::Any => ("string", None),
        }
    }

    /// The name Vault's help output uses.
    pub fn help_name(self) -> &'static str {
        match self {
            FieldType::String | FieldType::LowerCaseString | FieldType::Any => "string",
            FieldType::Int => "int",
            FieldType::Bool => "bool",
            FieldType::DurationSecond => "duration (sec)",
            FieldType::CommaStringSlice => "comma-separated strings",
            FieldType::StringSlice => "slice",
            FieldType::CommaIntSlice => "comma-separated integers",
            FieldType::Map => "map",
            FieldType::KvPairs => "keypair",
        }
    }
}

fn scalar_to_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

fn split_comma(s: &str) -> Vec<Value> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| Value::String(p.to_string()))
        .collect()
}

/// Coerces `value` to `ty`, or explains why it cannot be.
pub fn coerce(value: &Value, ty: FieldType) -> Result<Value, String> {
    let bad = || format!("expected type {}, got {}", ty.help_name(), type_name(value));
    match ty {
        FieldType::Any => Ok(value.clone()),
        FieldType::String => match value {
            Value::Null => Ok(Value::String(String::new())),
            v => scalar_to_string(v).map(Value::String).ok_or_else(bad),
        },
        FieldType::LowerCaseString => match value {
            Value::Null => Ok(Value::String(String::new())),
            v => scalar_to_string(v)
                .map(|s| Value::String(s.to_lowercase()))
                .ok_or_else(bad),
        },
        FieldType::Int => match value {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(Value::from(i))
                } else if let Some(f) = n.as_f64() {
                    if f.fract() == 0.0 && f.abs() < 9.0e18 {
                        Ok(Value::from(f as i64))
                    } else {
                        Err(bad())
                    }
                } else {
                    Err(bad())
                }
            }
            Value::String(s) if s.trim().is_empty() => Ok(Value::from(0)),
            Value::String(s) => s.trim().parse::<i64>().map(Value::from).map_err(|_| bad()),
            Value::Bool(b) => Ok(Value::from(i64::from(*b))),
            Value::Null => Ok(Value::from(0)),
            _ => Err(bad()),
        },
        FieldType::Bool => match value {
            Value::Bool(b) => Ok(Value::Bool(*b)),
            Value::String(s) if s.is_empty() => Ok(Value::Bool(false)),
            Value::String(s) => parse_go_bool(s).map(Value::Bool).ok_or_else(bad),
            Value::Number(n) => Ok(Value::Bool(n.as_f64().unwrap_or(0.0) != 0.0)),
            Value::Null => Ok(Value::Bool(false)),
            _ => Err(bad()),
        },
        FieldType::DurationSecond => parse_duration(value).map(Value::from),
        FieldType::CommaStringSlice => match value {
            Value::Null => Ok(Value::Array(vec![])),
            Value::String(s) => Ok(Value::Array(split_comma(s))),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    let s = scalar_to_string(item).ok_or_else(bad)?;
                    out.extend(split_comma(&s));
                }
                Ok(Value::Array(out))
            }
            v => scalar_to_string(v)
                .map(|s| Value::Array(split_comma(&s)))
                .ok_or_else(bad),
        },
        FieldType::StringSlice => match value {
            Value::Null => Ok(Value::Array(vec![])),
            Value::Array(items) => items
                .iter()
                .map(|i| scalar_to_string(i).map(Value::String).ok_or_else(bad))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::String(s) if s.is_empty() => Ok(Value::Array(vec![])),
            v => scalar_to_string(v)
                .map(|s| Value::Array(vec![Value::String(s)]))
                .ok_or_else(bad),
        },
        FieldType::CommaIntSlice => {
            let strings = coerce(value, FieldType::CommaStringSlice)?;
            let mut out = Vec::new();
            for s in strings.as_array().into_iter().flatten() {
                let n = s
                    .as_str()
                    .and_then(|s| s.parse::<i64>().ok())
                    .ok_or_else(bad)?;
                out.push(Value::from(n));
            }
            Ok(Value::Array(out))
        }
        FieldType::Map => match value {
            Value::Object(_) => Ok(value.clone()),
            Value::Null => Ok(Value::Object(Map::new())),
            Value::String(s) if s.is_empty() => Ok(Value::Object(Map::new())),
            Value::String(s) => match serde_json::from_str::<Value>(s) {
                Ok(v @ Value::Object(_)) => Ok(v),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        },
        FieldType::KvPairs => match value {
            Value::Object(m) => {
                let mut out = Map::new();
                for (k, v) in m {
                    out.insert(
                        k.clone(),
                        Value::String(scalar_to_string(v).ok_or_else(bad)?),
                    );
                }
                Ok(Value::Object(out))
            }
            Value::Array(items) => {
                let mut out = Map::new();
                for item in items {
                    let s = item.as_str().ok_or_else(bad)?;
                    let (k, v) = s.split_once('=').ok_or_else(bad)?;
                    out.insert(k.to_string(), Value::String(v.to_string()));
                }
                Ok(Value::Object(out))
            }
            Value::Null => Ok(Value::Object(Map::new())),
            _ => Err(bad()),
        },
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_and_scalars() {
        assert_eq!(coerce(&json!(5), FieldType::String), Ok(json!("5")));
        assert_eq!(coerce(&json!(true), FieldType::String), Ok(json!("true")));
        assert!(coerce(&json!({}), FieldType::String).is_err());
        assert_eq!(
            coerce(&json!("ABC"), FieldType::LowerCaseString),
            Ok(json!("abc"))
        );
    }

    #[test]
    fn ints_and_bools() {
        assert_eq!(coerce(&json!("42"), FieldType::Int), Ok(json!(42)));
        assert_eq!(coerce(&json!(42.0), FieldType::Int), Ok(json!(42)));
        assert!(coerce(&json!("x"), FieldType::Int).is_err());
        assert_eq!(coerce(&json!("true"), FieldType::Bool), Ok(json!(true)));
        assert_eq!(coerce(&json!("0"), FieldType::Bool), Ok(json!(false)));
        assert!(coerce(&json!("yes"), FieldType::Bool).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(
            coerce(&json!("72h"), FieldType::DurationSecond),
            Ok(json!(259200))
        );
        assert_eq!(coerce(&json!(60), FieldType::DurationSecond), Ok(json!(60)));
    }

    #[test]
    fn lists() {
        assert_eq!(
            coerce(&json!("a, b,,c"), FieldType::CommaStringSlice),
            Ok(json!(["a", "b", "c"]))
        );
        assert_eq!(
            coerce(&json!(["a,b", "c"]), FieldType::CommaStringSlice),
            Ok(json!(["a", "b", "c"]))
        );
        assert_eq!(
            coerce(&json!("a,b"), FieldType::StringSlice),
            Ok(json!(["a,b"]))
        );
        assert_eq!(
            coerce(&json!("1,2"), FieldType::CommaIntSlice),
            Ok(json!([1, 2]))
        );
    }

    #[test]
    fn maps() {
        assert_eq!(
            coerce(&json!(["a=b", "c=d=e"]), FieldType::KvPairs),
            Ok(json!({"a": "b", "c": "d=e"}))
        );
        assert_eq!(
            coerce(&json!({"a": 1}), FieldType::KvPairs),
            Ok(json!({"a": "1"}))
        );
        assert!(coerce(&json!(3), FieldType::Map).is_err());
    }
}
