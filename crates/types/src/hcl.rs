//! A small typed view over HCL documents that remembers line numbers, so configuration and
//! policy errors can name the file, the line and the key (hcl-edit parses; this module only
//! walks the tree). Shared by the server config, the agent config and ACL policies.
//!
//! Config files are strict: every reader here calls [`Body::reject_unknown`] so a misspelt key
//! is an error, not a silent default.

use std::fmt;
use std::path::{Path, PathBuf};

use hcl_edit::expr::{Expression, ObjectKey};
use hcl_edit::structure::{BlockLabel, Structure};
use hcl_edit::Span;
use serde_json::{Map, Number, Value};

/// A configuration error with its location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.file.display(), self.line, self.message)
    }
}

impl std::error::Error for ConfError {}

/// An attribute value with the line it starts on.
#[derive(Debug, Clone)]
pub struct Attr {
    pub key: String,
    pub value: Value,
    pub line: usize,
}

/// A block: `ident "label" ... { body }`.
#[derive(Debug, Clone)]
pub struct Block {
    pub ident: String,
    pub labels: Vec<String>,
    pub body: Body,
    pub line: usize,
}

/// A parsed body.
#[derive(Debug, Clone, Default)]
pub struct Body {
    pub attrs: Vec<Attr>,
    pub blocks: Vec<Block>,
    pub file: PathBuf,
}

/// The parsed text and, when it was rewritten for HCL 1 compatibility, the original line of
/// each of its lines.
struct Lines(String, Option<Vec<usize>>);

impl Lines {
    fn line_of(&self, span: Option<std::ops::Range<usize>>) -> usize {
        let Some(r) = span else {
            return 0;
        };
        let end = r.start.min(self.0.len());
        let l = self
            .0
            .get(..end)
            .map(|t| t.matches('\n').count())
            .unwrap_or(0)
            + 1;
        match &self.1 {
            Some(map) => map.get(l - 1).copied().unwrap_or(l),
            None => l,
        }
    }
}

/// Reads and parses an HCL file.
pub fn parse_file(path: &Path) -> Result<Body, ConfError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfError {
        file: path.to_path_buf(),
        line: 0,
        message: format!("cannot read: {e}"),
    })?;
    parse_str(&text, path)
}

/// Parses HCL text; `file` is only used in error messages.
///
/// Vault's own configs are HCL 1, which allows several attributes on one line
/// (`listener "tcp" { address = "..." tls_disable = true }`); HCL 2 does not. When the strict
/// parse fails, the text is retried with a newline inserted between such attributes, and line
/// numbers are mapped back to the original file.
pub fn parse_str(text: &str, file: &Path) -> Result<Body, ConfError> {
    let strict = hcl_edit::parser::parse_body(text);
    let (body, lines) = match strict {
        Ok(b) => (b, Lines(text.to_string(), None)),
        Err(e) => {
            let fixed = hcl1_compat(text);
            match fixed
                .and_then(|(t, map)| hcl_edit::parser::parse_body(&t).ok().map(|b| (b, t, map)))
            {
                Some((b, t, map)) => (b, Lines(t, Some(map))),
                None => {
                    return Err(ConfError {
                        file: file.to_path_buf(),
                        line: e.location().line(),
                        message: format!("syntax error: {}", e.message()),
                    })
                }
            }
        }
    };
    convert_body(&body, &lines, file)
}

/// Inserts a newline before an attribute that follows another attribute's value on the same
/// line, outside strings, comments and heredocs. Returns the new text and, per new line, the
/// original line number; `None` when nothing needed changing.
fn hcl1_compat(text: &str) -> Option<(String, Vec<usize>)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 16);
    let mut map = vec![1usize];
    let mut line = 1usize;
    let mut changed = false;
    let mut depth: i32 = 0;
    let mut in_value = false;
    let mut value_depth = 0;
    let mut value_end = false;
    let mut i = 0;
    let newline = |out: &mut String, map: &mut Vec<usize>, orig: usize| {
        out.push('\n');
        map.push(orig);
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\n' => {
                line += 1;
                newline(&mut out, &mut map, line);
                value_end = false;
                i += 1;
                continue;
            }
            '"' => {
                out.push(c);
                i += 1;
                while i < chars.len() && chars[i] != '"' && chars[i] != '\n' {
                    if chars[i] == '\\' && i + 1 < chars.len() {
                        out.push(chars[i]);
                        i += 1;
                    }
                    out.push(chars[i]);
                    i += 1;
                }
                if i < chars.len() && chars[i] == '"' {
                    out.push('"');
                    i += 1;
                }
                if in_value && depth == value_depth {
                    in_value = false;
                    value_end = true;
                }
                continue;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    out.push(chars[i]);
                    i += 1;
                }
                continue;
            }
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    out.push(chars[i]);
                    i += 1;
                }
                continue;
            }
            '/' if chars.get(i + 1) == Some(&'*') => {
                while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                    if chars[i] == '\n' {
                        line += 1;
                        newline(&mut out, &mut map, line);
                    } else {
                        out.push(chars[i]);
                    }
                    i += 1;
                }
                out.push_str("*/");
                i += 2;
                continue;
            }
            '<' if chars.get(i + 1) == Some(&'<') => {
                // Heredoc: copy through the closing marker untouched.
                let start = i;
                let mut j = i + 2;
                if chars.get(j) == Some(&'-') {
                    j += 1;
                }
                let id_start = j;
                while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                    j += 1;
                }
                let marker: String = chars[id_start..j].iter().collect();
                if marker.is_empty() {
                    out.push(c);
                    i += 1;
                    continue;
                }
                let mut k = j;
                while k < chars.len() {
                    if chars[k] == '\n' {
                        let mut e = k + 1;
                        while e < chars.len() && chars[e] != '\n' {
                            e += 1;
                        }
                        let l: String = chars[k + 1..e].iter().collect();
                        if l.trim() == marker {
                            k = e;
                            break;
                        }
                        k = e;
                    } else {
                        k += 1;
                    }
                }
                for ch in &chars[start..k.min(chars.len())] {
                    if *ch == '\n' {
                        line += 1;
                        newline(&mut out, &mut map, line);
                    } else {
                        out.push(*ch);
                    }
                }
                i = k;
                if in_value && depth == value_depth {
                    in_value = false;
                    value_end = true;
                }
                continue;
            }
            '=' if chars.get(i + 1) != Some(&'=') && chars.get(i.wrapping_sub(1)) != Some(&'!') => {
                if !in_value {
                    in_value = true;
                    value_depth = depth;
                }
                value_end = false;
            }
            '{' => {
                depth += 1;
                out.push(c);
                newline(&mut out, &mut map, line);
                changed = true;
                value_end = false;
                i += 1;
                continue;
            }
            '[' | '(' => depth += 1,
            '}' | ']' | ')' => {
                if c == '}' {
                    newline(&mut out, &mut map, line);
                    changed = true;
                }
                depth -= 1;
                if in_value && depth == value_depth {
                    in_value = false;
                    value_end = true;
                    out.push(c);
                    i += 1;
                    continue;
                }
                value_end = false;
            }
            ',' => value_end = false,
            _ if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '-' | '.' | ':'))
                {
                    i += 1;
                }
                let mut j = i;
                while j < chars.len() && (chars[j] == ' ' || chars[j] == '\t') {
                    j += 1;
                }
                let is_key = chars.get(j) == Some(&'=') && chars.get(j + 1) != Some(&'=');
                if value_end && is_key && (c.is_alphabetic() || c == '_') {
                    newline(&mut out, &mut map, line);
                    changed = true;
                }
                out.extend(&chars[start..i]);
                if in_value && depth == value_depth && !is_key {
                    in_value = false;
                    value_end = true;
                } else {
                    value_end = false;
                }
                continue;
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    changed.then_some((out, map))
}

fn convert_body(
    body: &hcl_edit::structure::Body,
    lines: &Lines,
    file: &Path,
) -> Result<Body, ConfError> {
    let mut out = Body {
        file: file.to_path_buf(),
        ..Default::default()
    };
    for s in body.iter() {
        match s {
            Structure::Attribute(a) => {
                let l = lines.line_of(a.span());
                out.attrs.push(Attr {
                    key: a.key.value().to_string(),
                    value: convert_expr(&a.value, file, l)?,
                    line: l,
                });
            }
            Structure::Block(b) => {
                let l = lines.line_of(b.span());
                let labels = b
                    .labels
                    .iter()
                    .map(|lb| match lb {
                        BlockLabel::Ident(i) => i.value().to_string(),
                        BlockLabel::String(s) => s.value().to_string(),
                    })
                    .collect();
                out.blocks.push(Block {
                    ident: b.ident.value().to_string(),
                    labels,
                    body: convert_body(&b.body, lines, file)?,
                    line: l,
                });
            }
        }
    }
    Ok(out)
}

fn convert_expr(e: &Expression, file: &Path, line: usize) -> Result<Value, ConfError> {
    let err = |m: &str| ConfError {
        file: file.to_path_buf(),
        line,
        message: m.to_string(),
    };
    Ok(match e {
        Expression::Null(_) => Value::Null,
        Expression::Bool(b) => Value::Bool(*b.value()),
        Expression::Number(n) => {
            let n = n.value();
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| err("invalid number"))?
            }
        }
        Expression::String(s) => Value::String(s.value().to_string()),
        Expression::Array(a) => Value::Array(
            a.iter()
                .map(|x| convert_expr(x, file, line))
                .collect::<Result<_, _>>()?,
        ),
        Expression::Object(o) => {
            let mut m = Map::new();
            for (k, v) in o.iter() {
                let key = match k {
                    ObjectKey::Ident(i) => i.value().to_string(),
                    ObjectKey::Expression(Expression::String(s)) => s.value().to_string(),
                    ObjectKey::Expression(_) => {
                        return Err(err("object keys must be names or strings"))
                    }
                };
                m.insert(key, convert_expr(v.expr(), file, line)?);
            }
            Value::Object(m)
        }
        Expression::HeredocTemplate(h) => {
            let t = h.template.to_string();
            if t.contains("${") || t.contains("%{") {
                return Err(err("template interpolation is not supported in this file"));
            }
            Value::String(t)
        }
        Expression::StringTemplate(_) => {
            return Err(err(
                "template interpolation (\"${...}\") is not supported in this file",
            ))
        }
        _ => {
            return Err(err(
                "expressions are not supported here: use a literal value",
            ))
        }
    })
}

impl Body {
    /// An error at `line` of this body's file.
    pub fn error(&self, line: usize, message: impl Into<String>) -> ConfError {
        ConfError {
            file: self.file.clone(),
            line,
            message: message.into(),
        }
    }

    /// Fails on the first attribute or block not in `attrs`/`blocks`; `context` names the
    /// enclosing block in the message.
    pub fn reject_unknown(
        &self,
        attrs: &[&str],
        blocks: &[&str],
        context: &str,
    ) -> Result<(), ConfError> {
        for a in &self.attrs {
            if !attrs.contains(&a.key.as_str()) {
                return Err(self.error(a.line, format!("unknown key {:?}{context}", a.key)));
            }
        }
        for b in &self.blocks {
            if !blocks.contains(&b.ident.as_str()) {
                if attrs.contains(&b.ident.as_str()) {
                    // `config { ... }` where `config = { ... }` is meant: accepted by callers
                    // that look for both; here it is a known name.
                    continue;
                }
                return Err(self.error(b.line, format!("unknown block {:?}{context}", b.ident)));
            }
        }
        Ok(())
    }

    /// Fails if an attribute appears twice.
    pub fn reject_duplicates(&self) -> Result<(), ConfError> {
        let mut seen = std::collections::BTreeSet::new();
        for a in &self.attrs {
            if !seen.insert(a.key.as_str()) {
                return Err(self.error(a.line, format!("duplicate key {:?}", a.key)));
            }
        }
        Ok(())
    }

    pub fn attr(&self, key: &str) -> Option<&Attr> {
        self.attrs.iter().find(|a| a.key == key)
    }

    pub fn blocks<'a>(&'a self, ident: &'a str) -> impl Iterator<Item = &'a Block> + 'a {
        self.blocks.iter().filter(move |b| b.ident == ident)
    }

    /// A string attribute (numbers and booleans are written as text).
    pub fn string(&self, key: &str) -> Result<Option<String>, ConfError> {
        match self.attr(key) {
            None => Ok(None),
            Some(a) => match &a.value {
                Value::String(s) => Ok(Some(s.clone())),
                Value::Number(n) => Ok(Some(n.to_string())),
                Value::Bool(b) => Ok(Some(b.to_string())),
                _ => Err(self.error(a.line, format!("{key:?} must be a string"))),
            },
        }
    }

    /// A boolean attribute; `"true"`, `"1"` and `1` count, as in Vault's configs.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, ConfError> {
        match self.attr(key) {
            None => Ok(None),
            Some(a) => match &a.value {
                Value::Bool(b) => Ok(Some(*b)),
                Value::Number(n) => Ok(Some(n.as_f64().unwrap_or(0.0) != 0.0)),
                Value::String(s) => match s.as_str() {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(Some(true)),
                    "0" | "f" | "F" | "false" | "FALSE" | "False" | "" => Ok(Some(false)),
                    _ => Err(self.error(a.line, format!("{key:?} must be a boolean, got {s:?}"))),
                },
                _ => Err(self.error(a.line, format!("{key:?} must be a boolean"))),
            },
        }
    }

    /// An integer attribute (numbers or numeric strings).
    pub fn i64(&self, key: &str) -> Result<Option<i64>, ConfError> {
        match self.attr(key) {
            None => Ok(None),
            Some(a) => match &a.value {
                Value::Number(n) => n
                    .as_i64()
                    .map(Some)
                    .ok_or_else(|| self.error(a.line, format!("{key:?} must be an integer"))),
                Value::String(s) => s.trim().parse::<i64>().map(Some).map_err(|_| {
                    self.error(a.line, format!("{key:?} must be an integer, got {s:?}"))
                }),
                _ => Err(self.error(a.line, format!("{key:?} must be an integer"))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn lines_and_values() {
        let text = "a = 1\n\nb \"x\" {\n  c = \"d\"\n  e = [1, \"2\"]\n}\n";
        let body = parse_str(text, Path::new("t.hcl")).unwrap();
        assert_eq!(body.attr("a").unwrap().line, 1);
        let b = body.blocks("b").next().unwrap();
        assert_eq!(b.line, 3);
        assert_eq!(b.labels, vec!["x"]);
        assert_eq!(b.body.attr("c").unwrap().line, 4);
        assert_eq!(b.body.string("c").unwrap().as_deref(), Some("d"));
        let err = b.body.reject_unknown(&["c"], &[], " in b").unwrap_err();
        assert_eq!(err.to_string(), "t.hcl:5: unknown key \"e\" in b");
    }

    #[test]
    fn hcl1_one_line_blocks() {
        let text = "# c = 1 d = 2\nlistener \"tcp\" { address = \"127.0.0.1:1\" tls_disable = true }\nx = [1, 2] y = \"a b=c\" z = 1\n";
        let body = parse_str(text, Path::new("v.hcl")).unwrap();
        let l = body.blocks("listener").next().unwrap();
        assert_eq!(
            l.body.string("address").unwrap().as_deref(),
            Some("127.0.0.1:1")
        );
        assert_eq!(l.body.bool("tls_disable").unwrap(), Some(true));
        assert_eq!(l.body.attr("tls_disable").unwrap().line, 2);
        assert_eq!(body.attr("z").unwrap().line, 3);
        assert_eq!(body.string("y").unwrap().as_deref(), Some("a b=c"));
        let err = body
            .reject_unknown(&["x", "y"], &["listener"], "")
            .unwrap_err();
        assert_eq!(err.line, 3);
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = parse_str("a = 1\nb = \n", Path::new("x.hcl")).unwrap_err();
        assert_eq!(err.file, PathBuf::from("x.hcl"));
        assert!(err.line >= 2, "{err}");
    }
}
