//! `roles/:name` and `LIST roles`: what a role lets a caller put into a certificate.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use signet_core::framework::{handler, Ctx, Field, PathSpec};
use signet_core::{CoreError, CoreResult, Operation, Response};
use signet_storage::Storage;
use signet_types::FieldType;

use crate::storage::ROLE_PREFIX;
use crate::Pki;

/// A role, with Vault's defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Role {
    pub ttl: u64,
    pub max_ttl: u64,
    pub allow_localhost: bool,
    pub allowed_domains: Vec<String>,
    pub allow_bare_domains: bool,
    pub allow_subdomains: bool,
    pub allow_glob_domains: bool,
    pub allow_wildcard_certificates: bool,
    pub allow_any_name: bool,
    pub enforce_hostnames: bool,
    pub allow_ip_sans: bool,
    pub allowed_uri_sans: Vec<String>,
    pub server_flag: bool,
    pub client_flag: bool,
    pub code_signing_flag: bool,
    pub email_protection_flag: bool,
    pub key_type: String,
    pub key_bits: u64,
    pub key_usage: Vec<String>,
    pub use_csr_common_name: bool,
    pub use_csr_sans: bool,
    pub require_cn: bool,
    pub no_store: bool,
    pub not_before_duration: u64,
    pub organization: Vec<String>,
    pub ou: Vec<String>,
    pub country: Vec<String>,
    pub locality: Vec<String>,
    pub province: Vec<String>,
}

impl Default for Role {
    fn default() -> Self {
        Role {
            ttl: 0,
            max_ttl: 0,
            allow_localhost: true,
            allowed_domains: vec![],
            allow_bare_domains: false,
            allow_subdomains: false,
            allow_glob_domains: false,
            allow_wildcard_certificates: true,
            allow_any_name: false,
            enforce_hostnames: true,
            allow_ip_sans: true,
            allowed_uri_sans: vec![],
            server_flag: true,
            client_flag: true,
            code_signing_flag: false,
            email_protection_flag: false,
            key_type: "rsa".into(),
            key_bits: 2048,
            key_usage: vec![
                "DigitalSignature".into(),
                "KeyAgreement".into(),
                "KeyEncipherment".into(),
            ],
            use_csr_common_name: true,
            use_csr_sans: true,
            require_cn: true,
            no_store: false,
            not_before_duration: 30,
            organization: vec![],
            ou: vec![],
            country: vec![],
            locality: vec![],
            province: vec![],
        }
    }
}

const BOOLS: &[&str] = &[
    "allow_localhost",
    "allow_bare_domains",
    "allow_subdomains",
    "allow_glob_domains",
    "allow_wildcard_certificates",
    "allow_any_name",
    "enforce_hostnames",
    "allow_ip_sans",
    "server_flag",
    "client_flag",
    "code_signing_flag",
    "email_protection_flag",
    "use_csr_common_name",
    "use_csr_sans",
    "require_cn",
    "no_store",
];
const LISTS: &[&str] = &[
    "allowed_domains",
    "allowed_uri_sans",
    "key_usage",
    "organization",
    "ou",
    "country",
    "locality",
    "province",
];

pub fn specs() -> Vec<PathSpec<Pki>> {
    let mut role = PathSpec::new("roles/:name")
        .field(Field::new("name", FieldType::String, "Name of the role."))
        .field(Field::new(
            "ttl",
            FieldType::DurationSecond,
            "Default TTL of issued certificates.",
        ))
        .field(Field::new(
            "max_ttl",
            FieldType::DurationSecond,
            "Maximum TTL; longer requests are clamped with a warning.",
        ))
        .field(Field::new(
            "key_type",
            FieldType::String,
            "rsa, ec, ed25519 or any.",
        ))
        .field(Field::new(
            "key_bits",
            FieldType::Int,
            "Key size (0 = the type's default).",
        ))
        .field(Field::new(
            "not_before_duration",
            FieldType::DurationSecond,
            "Backdating of NotBefore (30s).",
        ));
    for b in BOOLS {
        role = role.field(Field::new(
            b,
            FieldType::Bool,
            "See the role parameters of the PKI API.",
        ));
    }
    for l in LISTS {
        role = role.field(Field::new(
            l,
            FieldType::CommaStringSlice,
            "See the role parameters of the PKI API.",
        ));
    }
    vec![
        PathSpec::new("roles")
            .op(Operation::List, "List the roles.", handler(list_roles))
            .help("List the roles.", ""),
        role.op(Operation::Read, "Read a role.", handler(read_role))
            .write_op("Create or update a role.", handler(write_role))
            .op(Operation::Patch, "Patch a role.", handler(write_role))
            .op(Operation::Delete, "Delete a role.", handler(delete_role))
            .help("Manage the roles that issue certificates.", ""),
    ]
}

pub async fn load(pki: &Pki, c: &Ctx, name: &str) -> CoreResult<Option<Role>> {
    pki.get(c, &format!("{ROLE_PREFIX}{name}")).await
}

async fn list_roles(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let keys = c.storage.list(ROLE_PREFIX).await?;
    Response::list_or_not_found(keys)
}

async fn read_role(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let Some(r) = load(&pki, &c, c.param("name")).await? else {
        return Err(CoreError::NotFound);
    };
    role_response(&r)
}

async fn write_role(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let name = c.param("name").to_string();
    let mut r = load(&pki, &c, &name).await?.unwrap_or_default();
    let f = &c.fields;
    let mut v = serde_json::to_value(&r).map_err(|e| CoreError::Internal(e.to_string()))?;
    if let Value::Object(m) = &mut v {
        for b in BOOLS {
            if f.is_set(b) {
                m.insert(b.to_string(), json!(f.bool(b)));
            }
        }
        for l in LISTS {
            if f.is_set(l) {
                m.insert(l.to_string(), json!(f.strings(l)));
            }
        }
        for d in ["ttl", "max_ttl", "not_before_duration"] {
            if f.is_set(d) {
                m.insert(d.to_string(), json!(f.u64(d)));
            }
        }
        if f.is_set("key_type") {
            m.insert("key_type".into(), json!(f.str("key_type")));
        }
        if f.is_set("key_bits") {
            m.insert("key_bits".into(), json!(f.i64("key_bits").max(0)));
        }
    }
    r = serde_json::from_value(v).map_err(|e| CoreError::bad(e.to_string()))?;
    match r.key_type.as_str() {
        "any" => {}
        "rsa" | "ec" | "ed25519" => {
            if !f.is_set("key_bits") && f.is_set("key_type") {
                r.key_bits = 0;
            }
            let kt = signet_crypto::x509::KeyType::parse(&r.key_type, r.key_bits)
                .map_err(|e| CoreError::bad(e.to_string()))?;
            r.key_bits = u64::from(kt.bits());
        }
        other => return Err(CoreError::bad(format!("unknown key type {other}"))),
    }
    if r.max_ttl > 0 && r.ttl > r.max_ttl {
        return Err(CoreError::bad("ttl cannot be larger than max_ttl"));
    }
    pki.put(&c, &format!("{ROLE_PREFIX}{name}"), &r).await?;
    // OpenBao answers a role write with the role, as a read would.
    role_response(&r)
}

fn role_response(r: &Role) -> CoreResult<Option<Response>> {
    let mut v = serde_json::to_value(r).map_err(|e| CoreError::Internal(e.to_string()))?;
    if let Value::Object(m) = &mut v {
        m.insert("issuer_ref".into(), json!("default"));
        m.insert("generate_lease".into(), json!(false));
    }
    Ok(Some(Response::json(v)))
}

async fn delete_role(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    pki.delete(&c, &format!("{ROLE_PREFIX}{}", c.param("name")))
        .await?;
    Ok(None)
}
