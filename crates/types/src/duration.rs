//! Vault's duration syntax.
//!
//! Vault accepts a duration as an integer number of seconds (JSON number or numeric string) or
//! as a Go duration string (`"72h"`, `"1h30m"`, `"90s"`, `"1.5h"`), and prints durations the way
//! Go's `time.Duration.String()` does (`"72h0m0s"`) in warnings. Written by hand because the
//! Rust duration crates use other syntaxes (`humantime` prints `3days`, rejects `1.5h`).

use serde_json::Value;

/// Parses a Vault duration into whole seconds. Fractions of a second are truncated.
pub fn parse_duration(value: &Value) -> Result<u64, String> {
    match value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Ok(u)
            } else if let Some(f) = n.as_f64() {
                if f >= 0.0 && f.is_finite() {
                    Ok(f as u64)
                } else {
                    Err(format!("invalid duration {n}"))
                }
            } else {
                Err(format!("invalid duration {n}"))
            }
        }
        Value::String(s) => parse_duration_str(s),
        Value::Null => Ok(0),
        other => Err(format!("invalid duration {other}")),
    }
}

/// Parses a duration string: seconds (`"300"`) or Go syntax (`"5m"`, `"1h30m"`).
pub fn parse_duration_str(input: &str) -> Result<u64, String> {
    let s = input.trim();
    if s.is_empty() {
        return Ok(0);
    }
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(secs);
    }
    let err = || format!("time: invalid duration \"{input}\"");
    let mut rest = s;
    let mut total_nanos: f64 = 0.0;
    if rest.starts_with('-') {
        return Err(err());
    }
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    if rest == "0" {
        return Ok(0);
    }
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        if num_len == 0 {
            return Err(err());
        }
        let number: f64 = rest[..num_len].parse().map_err(|_| err())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let factor: f64 = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60.0 * 1e9,
            "h" => 3600.0 * 1e9,
            // Vault (parseutil) also accepts days.
            "d" => 86400.0 * 1e9,
            _ => return Err(err()),
        };
        total_nanos += number * factor;
    }
    if !total_nanos.is_finite() || total_nanos > (u64::MAX as f64) {
        return Err(err());
    }
    Ok((total_nanos / 1e9) as u64)
}

/// Formats whole seconds as Go's `time.Duration.String()` does: `"72h0m0s"`, `"5m0s"`, `"0s"`.
pub fn format_go_duration(secs: u64) -> String {
    if secs == 0 {
        return "0s".to_string();
    }
    let h = secs / 3600;
    let m = (secs % 3600) / 60;
    let s = secs % 60;
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_vault_durations() {
        assert_eq!(parse_duration(&json!(300)), Ok(300));
        assert_eq!(parse_duration(&json!("300")), Ok(300));
        assert_eq!(parse_duration(&json!("72h")), Ok(72 * 3600));
        assert_eq!(parse_duration(&json!("1h30m")), Ok(5400));
        assert_eq!(parse_duration(&json!("1.5h")), Ok(5400));
        assert_eq!(parse_duration(&json!("87600h")), Ok(87600 * 3600));
        assert_eq!(parse_duration(&json!("10m")), Ok(600));
        assert_eq!(parse_duration(&json!("2d")), Ok(172800));
        assert_eq!(parse_duration(&json!("")), Ok(0));
        assert!(parse_duration(&json!("abc")).is_err());
        assert!(parse_duration(&json!("10x")).is_err());
        assert!(parse_duration(&json!("-5s")).is_err());
        assert!(parse_duration(&json!(true)).is_err());
    }

    #[test]
    fn formats_like_go() {
        assert_eq!(format_go_duration(72 * 3600), "72h0m0s");
        assert_eq!(format_go_duration(100 * 3600), "100h0m0s");
        assert_eq!(format_go_duration(300), "5m0s");
        assert_eq!(format_go_duration(61), "1m1s");
        assert_eq!(format_go_duration(0), "0s");
    }
}
