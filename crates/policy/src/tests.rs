use serde_json::{json, Map, Value};

use super::*;

fn params(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn acl(texts: &[(&str, &str)]) -> Acl {
    let policies: Vec<Policy> = texts.iter().map(|(n, t)| parse(n, t).unwrap()).collect();
    Acl::new(&policies)
}

#[test]
fn parses_hcl_and_json_alike() {
    let hcl = r#"
path "secret/etcd/*" {
  capabilities = ["read", "list"]
}
path "pki_int/issue/customer" {
  capabilities        = ["create", "update"]
  required_parameters = ["common_name"]
  allowed_parameters  = { "common_name" = ["*.acme.example"], "ttl" = [] }
  denied_parameters   = { "key_type" = ["rsa"] }
}
"#;
    let json = r#"{"path": {"secret/etcd/*": {"capabilities": ["read", "list"]},
        "pki_int/issue/customer": {"capabilities": ["create", "update"], "required_parameters": ["common_name"],
        "allowed_parameters": {"common_name": ["*.acme.example"], "ttl": []}, "denied_parameters": {"key_type": ["rsa"]}}}}"#;
    let a = parse("a", hcl).unwrap();
    let b = parse("b", json).unwrap();
    assert_eq!(a.rules.len(), 2);
    assert_eq!(a.rules[0].line, 2);
    let norm = |p: &Policy| {
        let mut r: Vec<PathRule> = p
            .rules
            .iter()
            .cloned()
            .map(|mut r| {
                r.line = 0;
                r
            })
            .collect();
        r.sort_by(|x, y| x.pattern.cmp(&y.pattern));
        r
    };
    assert_eq!(norm(&a), norm(&b));
}

#[test]
fn errors_name_the_line() {
    let e = parse(
        "p",
        "path \"a\" {\n  capabilities = [\"read\"]\n  capabilites = [\"list\"]\n}\n",
    )
    .unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    let e = parse("p", "path \"a\" {\n  capabilities = [\"reed\"]\n}\n").unwrap_err();
    assert_eq!(e.line, 1, "{e}");
    assert!(e.to_string().contains("reed"));
    let e = parse("p", "path \"a\" {\n  capabilities = [\"read\"\n").unwrap_err();
    assert!(e.line >= 2, "{e}");
    assert!(parse("p", "{\"path\": 3}").is_err());
}

#[test]
fn legacy_policy_field() {
    let a = acl(&[(
        "p",
        "path \"secret/x\" { policy = \"write\" }\npath \"secret/y\" {\n policy = \"read\"\n}\n",
    )]);
    assert!(a.check(Op::Update, "secret/x", &Map::new()).allowed);
    assert!(a.check(Op::List, "secret/y", &Map::new()).allowed);
    assert!(!a.check(Op::Update, "secret/y", &Map::new()).allowed);
}

#[test]
fn deny_by_default_and_exact_beats_glob() {
    let a = acl(&[(
        "p",
        r#"
path "secret/etcd/*" { capabilities = ["read"] }
path "secret/etcd/admin" { capabilities = ["deny"] }
"#,
    )]);
    assert!(a.check(Op::Read, "secret/etcd/member", &Map::new()).allowed);
    assert!(!a.check(Op::Read, "secret/etcd/admin", &Map::new()).allowed);
    assert!(
        !a.check(Op::Update, "secret/etcd/member", &Map::new())
            .allowed
    );
    assert!(!a.check(Op::Read, "secret/other", &Map::new()).allowed);
    assert_eq!(a.capabilities("secret/etcd/x"), vec!["read"]);
    assert_eq!(a.capabilities("nowhere"), vec!["deny"]);
}

#[test]
fn union_across_policies_and_deny_wins() {
    let a = acl(&[
        (
            "a",
            "path \"pki/issue/web\" { capabilities = [\"update\"] }",
        ),
        ("b", "path \"pki/issue/web\" { capabilities = [\"read\"] }"),
    ]);
    assert_eq!(a.capabilities("pki/issue/web"), vec!["read", "update"]);
    let d = acl(&[
        (
            "a",
            "path \"pki/issue/web\" { capabilities = [\"update\"] }",
        ),
        ("b", "path \"pki/issue/web\" { capabilities = [\"deny\"] }"),
    ]);
    assert!(!d.check(Op::Update, "pki/issue/web", &Map::new()).allowed);
}

#[test]
fn plus_segments_and_priority() {
    assert!(pattern_matches(
        "pki_int/+/etcd-peer",
        "pki_int/issue/etcd-peer"
    ));
    assert!(!pattern_matches(
        "pki_int/+/etcd-peer",
        "pki_int/a/b/etcd-peer"
    ));
    assert!(pattern_matches("secret/+/x*", "secret/a/xyz/deep"));
    assert!(pattern_matches("a/*", "a/"));
    assert!(!pattern_matches("a/*", "a"));
    // secret/+/foo beats secret/* (first wildcard later), secret/foo* beats secret/+/ ...
    let a = acl(&[(
        "p",
        r#"
path "secret/*" { capabilities = ["deny"] }
path "secret/+/foo" { capabilities = ["read"] }
path "secret/bar/*" { capabilities = ["list"] }
"#,
    )]);
    assert_eq!(a.capabilities("secret/x/foo"), vec!["read"]);
    assert_eq!(a.capabilities("secret/bar/foo"), vec!["list"]);
    assert_eq!(a.capabilities("secret/x/other"), vec!["deny"]);
    // Longer pattern wins at equal wildcard position; no trailing * beats trailing *.
    assert_eq!(priority("a/+/b", "a/+/b*"), Ordering::Greater);
    assert_eq!(priority("a/+/+", "a/+/c"), Ordering::Less);
    assert_eq!(priority("a/bc*", "a/b*"), Ordering::Greater);
}

#[test]
fn parameter_constraints() {
    let a = acl(&[(
        "p",
        r#"
path "pki/issue/customer" {
  capabilities        = ["create", "update"]
  required_parameters = ["common_name"]
  allowed_parameters  = { "common_name" = ["*.acme.example"], "ttl" = [] }
  denied_parameters   = { "key_type" = ["rsa"] }
}
"#,
    )]);
    let ok = a.check(
        Op::Update,
        "pki/issue/customer",
        &params(json!({"common_name": "a.acme.example", "ttl": "1h"})),
    );
    assert!(ok.allowed, "{ok:?}");
    let missing = a.check(
        Op::Update,
        "pki/issue/customer",
        &params(json!({"ttl": "1h"})),
    );
    assert!(!missing.allowed);
    let bad_value = a.check(
        Op::Update,
        "pki/issue/customer",
        &params(json!({"common_name": "evil.com"})),
    );
    assert!(!bad_value.allowed);
    let unknown = a.check(
        Op::Update,
        "pki/issue/customer",
        &params(json!({"common_name": "a.acme.example", "alt_names": "x"})),
    );
    assert!(!unknown.allowed);
    let denied = acl(&[("p", "path \"x\" {\n capabilities = [\"update\"]\n denied_parameters = { \"key_type\" = [\"rsa\"] }\n}\n")]);
    assert!(
        !denied
            .check(Op::Update, "x", &params(json!({"key_type": "rsa"})))
            .allowed
    );
    assert!(
        denied
            .check(Op::Update, "x", &params(json!({"key_type": "ec"})))
            .allowed
    );
    // Reads are not subject to parameter constraints.
    assert!(!a.check(Op::Read, "pki/issue/customer", &Map::new()).allowed);
}

#[test]
fn value_globs() {
    assert!(value_glob("*", "x"));
    assert!(value_glob("*.acme", "a.acme"));
    assert!(value_glob("web-*", "web-1"));
    assert!(value_glob("*mid*", "amidb"));
    assert!(!value_glob("web-*", "db-1"));
    assert!(value_glob("exact", "exact"));
}

#[test]
fn root_is_everything() {
    let a = Acl::new(&[Policy {
        name: "root".into(),
        rules: vec![],
    }]);
    assert!(a.check(Op::Delete, "sys/mounts/x", &Map::new()).sudo);
    assert_eq!(a.capabilities("anything"), vec!["root"]);
}
