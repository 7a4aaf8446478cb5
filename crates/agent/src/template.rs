//! Templates in consul-template's syntax (Go text/template through the `gtmpl` crate), for
//! configurations written for Vault Agent: `secret`, `pkiCert`, `toJSON`, `base64Encode`,
//! `env`, `file`, `plugin`, `writeToFile`.
//!
//! gtmpl's functions are plain `fn` pointers, so they cannot carry the client or await it.
//! Rendering therefore runs as consul-template's dependency loop: a render records every
//! `secret`/`pkiCert` call it cannot answer yet (in a thread-local) and fails; the agent
//! fetches those, then renders again with the answers cached, until a render completes.

use std::cell::RefCell;
use std::collections::HashMap;

use gtmpl::{Context, FuncError, Template, Value};
use serde_json::Value as Json;

thread_local! {
    static STATE: RefCell<RenderState> = RefCell::new(RenderState::default());
}

/// One template call that needs the server: `(function, path, ["k=v", ...])`.
pub type Call = (String, String, Vec<String>);

#[derive(Default)]
struct RenderState {
    answers: HashMap<String, Value>,
    missing: Vec<Call>,
}

fn key(call: &Call) -> String {
    format!("{}\u{0}{}\u{0}{}", call.0, call.1, call.2.join("\u{0}"))
}

fn to_gtmpl(v: &Json) -> Value {
    match v {
        Json::Null => Value::Nil,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => n
            .as_i64()
            .map(Value::from)
            .or_else(|| n.as_f64().map(Value::from))
            .unwrap_or(Value::Nil),
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(a) => Value::Array(a.iter().map(to_gtmpl).collect()),
        Json::Object(m) => Value::Map(m.iter().map(|(k, v)| (k.clone(), to_gtmpl(v))).collect()),
    }
}

fn to_json(v: &Value) -> Json {
    match v {
        Value::Nil | Value::NoValue | Value::Function(_) => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => serde_json::from_str(&n.to_string()).unwrap_or(Json::Null),
        Value::Array(a) => Json::Array(a.iter().map(to_json).collect()),
        Value::Object(m) | Value::Map(m) => {
            Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

fn strings(args: &[Value]) -> Result<Vec<String>, FuncError> {
    args.iter()
        .map(|a| match a {
            Value::String(s) => Ok(s.clone()),
            other => Ok(other.to_string()),
        })
        .collect()
}

fn lookup(func: &str, args: &[Value]) -> Result<Value, FuncError> {
    let mut s = strings(args)?;
    if s.is_empty() {
        return Err(FuncError::AtLeastXArgs(func.into(), 1));
    }
    let path = s.remove(0);
    let call: Call = (func.to_string(), path, s);
    STATE.with(|st| {
        let mut st = st.borrow_mut();
        if let Some(v) = st.answers.get(&key(&call)) {
            return Ok(v.clone());
        }
        st.missing.push(call);
        Err(FuncError::Generic("waiting for the server".into()))
    })
}

fn secret(args: &[Value]) -> Result<Value, FuncError> {
    lookup("secret", args)
}

fn pki_cert(args: &[Value]) -> Result<Value, FuncError> {
    lookup("pkiCert", args)
}

fn to_json_fn(args: &[Value]) -> Result<Value, FuncError> {
    let v = args
        .first()
        .ok_or(FuncError::ExactlyXArgs("toJSON".into(), 1))?;
    Ok(Value::from(to_json(v).to_string()))
}

fn base64_encode(args: &[Value]) -> Result<Value, FuncError> {
    use base64::Engine as _;
    let s = strings(args)?.concat();
    Ok(Value::from(
        base64::engine::general_purpose::STANDARD.encode(s),
    ))
}

fn env(args: &[Value]) -> Result<Value, FuncError> {
    let name = strings(args)?.concat();
    Ok(Value::from(std::env::var(name).unwrap_or_default()))
}

fn file(args: &[Value]) -> Result<Value, FuncError> {
    let path = strings(args)?.concat();
    std::fs::read_to_string(&path)
        .map(Value::from)
        .map_err(|e| FuncError::Generic(format!("file {path}: {e}")))
}

/// `{{ writeToFile "path" "content" "owner" "group" "0644" }}` (consul-template's argument
/// order; owner and group may be empty, `"append"` as a sixth argument appends): writes the
/// file atomically (or appends) and yields nothing.
fn write_to_file(args: &[Value]) -> Result<Value, FuncError> {
    let s = strings(args)?;
    if s.len() < 5 {
        return Err(FuncError::AtLeastXArgs("writeToFile".into(), 5));
    }
    let mode = crate::files::parse_mode(&s[4]).map_err(FuncError::Generic)?;
    let perms = crate::files::Perms {
        mode: Some(mode),
        owner: Some(s[2].clone()).filter(|o| !o.is_empty()),
        group: Some(s[3].clone()).filter(|g| !g.is_empty()),
    };
    let path = std::path::PathBuf::from(&s[0]);
    let mut content = s[1].clone().into_bytes();
    if s.get(5).map(String::as_str) == Some("append") {
        let mut old = std::fs::read(&path).unwrap_or_default();
        old.extend(content);
        content = old;
    }
    crate::files::write_set(&[(path, content)], &perms, true).map_err(FuncError::Generic)?;
    Ok(Value::from(""))
}

/// `{{ value | plugin "cmd" "arg" ... }}`: runs the command with the arguments and, last, the
/// piped value; its standard output is the result (consul-template's plugin contract).
fn plugin(args: &[Value]) -> Result<Value, FuncError> {
    let s = strings(args)?;
    let (cmd, rest) = s
        .split_first()
        .ok_or(FuncError::AtLeastXArgs("plugin".into(), 1))?;
    let out = std::process::Command::new(cmd)
        .args(rest)
        .output()
        .map_err(|e| FuncError::Generic(format!("plugin {cmd}: {e}")))?;
    if !out.status.success() {
        return Err(FuncError::Generic(format!(
            "plugin {cmd} failed: {}",
            out.status
        )));
    }
    Ok(Value::from(
        String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
    ))
}

/// The value a `secret` call yields, in consul-template's shape (`.Data`, `.LeaseDuration`...).
pub fn secret_value(resp: &Json) -> Value {
    let data = resp.get("data").cloned().unwrap_or(Json::Null);
    let mut m = HashMap::new();
    m.insert("Data".to_string(), to_gtmpl(&data));
    m.insert(
        "LeaseDuration".to_string(),
        Value::from(
            resp.get("lease_duration")
                .and_then(Json::as_i64)
                .unwrap_or(0),
        ),
    );
    m.insert(
        "LeaseID".to_string(),
        Value::from(resp.get("lease_id").and_then(Json::as_str).unwrap_or("")),
    );
    m.insert(
        "Renewable".to_string(),
        Value::Bool(
            resp.get("renewable")
                .and_then(Json::as_bool)
                .unwrap_or(false),
        ),
    );
    m.insert(
        "Warnings".to_string(),
        to_gtmpl(resp.get("warnings").unwrap_or(&Json::Null)),
    );
    Value::Object(m)
}

/// The value a `pkiCert` call yields: `.Data.Cert`, `.Data.Key`, `.Data.CA`, `.Data.CAChain`.
pub fn pki_value(resp: &Json) -> Value {
    let d = resp.get("data").cloned().unwrap_or(Json::Null);
    let s = |k: &str| Value::from(d.get(k).and_then(Json::as_str).unwrap_or(""));
    let mut data = HashMap::new();
    data.insert("Cert".to_string(), s("certificate"));
    data.insert("Key".to_string(), s("private_key"));
    data.insert("CA".to_string(), s("issuing_ca"));
    data.insert(
        "CAChain".to_string(),
        to_gtmpl(d.get("ca_chain").unwrap_or(&Json::Null)),
    );
    let mut m = HashMap::new();
    m.insert("Data".to_string(), Value::Map(data));
    Value::Object(m)
}

/// The certificate, key and CA chain already in a pkiCert template's destination, as the
/// `pkiCert` value, with when to fetch a new one; None when there is no usable pair there or
/// it is due (`threshold` of its lifetime has passed).
pub fn pki_from_file(dest: &std::path::Path, threshold: f64) -> Option<(Value, i64)> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(dest).ok()?);
    let (certs, key) = signet_crypto::x509::split_bundle(&text).ok()?;
    let key = zeroize::Zeroizing::new(key?);
    let leaf = certs.first()?;
    if !signet_crypto::x509::key_matches_cert(&key, leaf).ok()? {
        return None;
    }
    let info = signet_crypto::x509::cert_info(leaf).ok()?;
    let due = crate::schedule::renew_time(
        info.not_before,
        info.not_after,
        crate::schedule::RenewPoint::Fraction(threshold),
        0.0,
    );
    if crate::now() >= due {
        return None;
    }
    let pem = |der: &Vec<u8>| signet_crypto::x509::cert_pem(der);
    let mut data = HashMap::new();
    data.insert("Cert".to_string(), Value::from(pem(leaf)));
    data.insert("Key".to_string(), Value::from(key.trim_end().to_string()));
    data.insert(
        "CA".to_string(),
        Value::from(certs.get(1).map(pem).unwrap_or_default()),
    );
    data.insert(
        "CAChain".to_string(),
        Value::Array(certs.iter().skip(1).map(|c| Value::from(pem(c))).collect()),
    );
    let mut m = HashMap::new();
    m.insert("Data".to_string(), Value::Map(data));
    Some((Value::Object(m), due))
}

/// Parses a template (errors name the template).
pub fn parse(name: &str, text: &str) -> Result<Template, String> {
    let mut t = Template::with_name(name);
    t.add_funcs(&[
        ("secret", secret as gtmpl::Func),
        ("pkiCert", pki_cert as gtmpl::Func),
        ("toJSON", to_json_fn as gtmpl::Func),
        ("base64Encode", base64_encode as gtmpl::Func),
        ("env", env as gtmpl::Func),
        ("file", file as gtmpl::Func),
        ("plugin", plugin as gtmpl::Func),
        ("writeToFile", write_to_file as gtmpl::Func),
    ]);
    t.parse(text)
        .map_err(|e| format!("template {name} does not parse: {e}"))?;
    Ok(t)
}

/// One render attempt with the answers known so far: the text, or the calls still missing,
/// or an error that is the template's own.
pub enum Attempt {
    Done(String),
    Missing(Vec<Call>),
    Failed(String),
}

pub fn render(t: &Template, answers: &HashMap<String, Value>) -> Attempt {
    STATE.with(|st| {
        let mut st = st.borrow_mut();
        st.answers = answers.clone();
        st.missing.clear();
    });
    let out = t.render(&Context::empty());
    let missing = STATE.with(|st| std::mem::take(&mut st.borrow_mut().missing));
    match out {
        Ok(text) if missing.is_empty() => Attempt::Done(text),
        _ if !missing.is_empty() => Attempt::Missing(missing),
        Err(e) => Attempt::Failed(e.to_string()),
        Ok(text) => Attempt::Done(text),
    }
}

/// The cache key of a call (for `render`'s answers).
pub fn answer_key(call: &Call) -> String {
    key(call)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn dependency_loop() {
        let t = parse(
            "t",
            r#"{{ with secret "pki/issue/web" "common_name=a.example.com" }}{{ .Data.serial_number }}
{{ .Data.certificate }}{{ end }}{{ env "SIGNET_TEMPLATE_TEST" }}"#,
        )
        .unwrap();
        let mut answers = HashMap::new();
        let calls = match render(&t, &answers) {
            Attempt::Missing(c) => c,
            _ => panic!("the first render needs the secret"),
        };
        assert_eq!(calls[0].1, "pki/issue/web");
        assert_eq!(calls[0].2, vec!["common_name=a.example.com"]);
        let resp = serde_json::json!({"data": {"serial_number": "01:02", "certificate": "CERT"}, "lease_duration": 0});
        answers.insert(answer_key(&calls[0]), secret_value(&resp));
        match render(&t, &answers) {
            Attempt::Done(text) => assert_eq!(text, "01:02\nCERT"),
            _ => panic!("the second render completes"),
        }
        assert!(parse("bad", "{{ with }}").is_err());
    }

    #[test]
    fn write_to_file_writes_and_appends() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("out.txt");
        let text = format!(
            r#"{{{{ writeToFile "{p}" "one" "" "" "0640" }}}}{{{{ writeToFile "{p}" "-two" "" "" "0640" "append" }}}}done"#,
            p = f.display()
        );
        let t = parse("w", &text).unwrap();
        match render(&t, &HashMap::new()) {
            Attempt::Done(out) => assert_eq!(out, "done"),
            _ => panic!("renders"),
        }
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "one-two");
    }
}
