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
#[serde(default)]
pub struct Role {
    pub issuer_ref: String,
    /// RFC 3339 expiry for every certificate of the role ("" = use the TTLs).
    pub not_after: String,
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
    pub street_address: Vec<String>,
    pub postal_code: Vec<String>,
    /// CIDRs IP SANs must fall in (empty = any, when allow_ip_sans).
    pub allowed_ip_sans_cidr: Vec<String>,
    /// `<oid>;UTF8:<value>` globs, or `*`.
    pub allowed_other_sans: Vec<String>,
    /// Globs for the subject serialNumber attribute.
    pub allowed_serial_numbers: Vec<String>,
    pub allowed_user_ids: Vec<String>,
    /// email, hostname (OR), or disabled.
    pub cn_validations: Vec<String>,
    /// Extended key usage names (Go's x509 names without the prefix: ServerAuth, ...).
    pub ext_key_usage: Vec<String>,
    pub ext_key_usage_oids: Vec<String>,
    pub policy_identifiers: Vec<String>,
    pub basic_constraints_valid_for_non_ca: bool,
    pub signature_bits: u64,
    pub use_pss: bool,
    /// Accepted and reported; signet issues no leases for certificates.
    pub generate_lease: bool,
    pub allow_token_displayname: bool,
    pub allowed_domains_template: bool,
    pub allowed_uri_sans_template: bool,
    pub allow_globs_in_identity_templates: bool,
    pub not_before: String,
    pub not_before_bound: String,
    pub not_after_bound: String,
}

impl Default for Role {
    fn default() -> Self {
        Role {
            issuer_ref: "default".into(),
            not_after: String::new(),
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
            street_address: vec![],
            postal_code: vec![],
            allowed_ip_sans_cidr: vec![],
            allowed_other_sans: vec![],
            allowed_serial_numbers: vec![],
            allowed_user_ids: vec![],
            cn_validations: vec!["email".into(), "hostname".into()],
            ext_key_usage: vec![],
            ext_key_usage_oids: vec![],
            policy_identifiers: vec![],
            basic_constraints_valid_for_non_ca: false,
            signature_bits: 0,
            use_pss: false,
            generate_lease: false,
            allow_token_displayname: false,
            allowed_domains_template: false,
            allowed_uri_sans_template: false,
            allow_globs_in_identity_templates: false,
            not_before: String::new(),
            not_before_bound: "permit".into(),
            not_after_bound: "permit".into(),
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
    "basic_constraints_valid_for_non_ca",
    "use_pss",
    "generate_lease",
    "allow_token_displayname",
    "allowed_domains_template",
    "allowed_uri_sans_template",
    "allow_globs_in_identity_templates",
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
    "street_address",
    "postal_code",
    "allowed_ip_sans_cidr",
    "allowed_other_sans",
    "allowed_serial_numbers",
    "allowed_user_ids",
    "cn_validations",
    "ext_key_usage",
    "ext_key_usage_oids",
    "policy_identifiers",
];
const STRINGS: &[&str] = &[
    "issuer_ref",
    "not_after",
    "not_before",
    "not_before_bound",
    "not_after_bound",
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
        ))
        .field(Field::new(
            "signature_bits",
            FieldType::Int,
            "Accepted and reported; signatures use the issuer key's default hash.",
        ));
    for st in STRINGS {
        role = role.field(Field::new(
            st,
            FieldType::String,
            "See the role parameters of the PKI API.",
        ));
    }
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
    // A write replaces the role (absent fields take their defaults), as in OpenBao; PATCH
    // changes only the fields given.
    let existing = load(&pki, &c, &name).await?;
    if c.op == Operation::Patch && existing.is_none() {
        return Err(CoreError::bad("Unable to fetch role entry to patch"));
    }
    let mut r = if c.op == Operation::Patch {
        existing.unwrap_or_default()
    } else {
        Role::default()
    };
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
        if f.is_set("signature_bits") {
            m.insert(
                "signature_bits".into(),
                json!(f.i64("signature_bits").max(0)),
            );
        }
        for st in STRINGS {
            if f.is_set(st) {
                m.insert(st.to_string(), json!(f.str(st)));
            }
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
    validate(&mut r)?;
    pki.put(&c, &format!("{ROLE_PREFIX}{name}"), &r).await?;
    // OpenBao answers a role write with the role, as a read would.
    role_response(&r)
}

/// Checks and normalises what a role write set, with OpenBao's messages.
fn validate(r: &mut Role) -> CoreResult<()> {
    for cidr in &r.allowed_ip_sans_cidr {
        if !signet_core::token::valid_cidr(cidr) {
            return Err(CoreError::bad(format!(
                "error parsing allowed_ip_sans_cidr: invalid CIDR address: {cidr}"
            )));
        }
    }
    for oid in r
        .ext_key_usage_oids
        .iter()
        .chain(r.policy_identifiers.iter())
    {
        if !signet_crypto::x509::is_oid(oid) {
            return Err(CoreError::bad(format!("{oid:?} is not a valid OID")));
        }
    }
    for eku in &r.ext_key_usage {
        if signet_crypto::x509::ext_key_usage_oid(eku).is_none() {
            return Err(CoreError::bad(format!(
                "unknown extended key usage {eku:?}"
            )));
        }
    }
    if r.use_pss && matches!(r.key_type.as_str(), "rsa" | "any") {
        return Err(CoreError::bad(
            "use_pss is not supported by signet: certificates are signed with RSA PKCS#1 v1.5",
        ));
    }
    let mut cnv: Vec<String> = Vec::new();
    for v in &r.cn_validations {
        let v = v.trim().to_lowercase();
        match v.as_str() {
            "email" | "hostname" | "disabled" => {
                if !cnv.contains(&v) {
                    cnv.push(v)
                }
            }
            other => {
                return Err(CoreError::bad(format!(
                    "unknown value for cn_validations: {other}"
                )))
            }
        }
    }
    if cnv.contains(&"disabled".to_string()) && cnv.len() > 1 {
        return Err(CoreError::bad(
            "cannot specify both disabled and other cn_validations",
        ));
    }
    if cnv.is_empty() {
        cnv = vec!["email".into(), "hostname".into()];
    }
    r.cn_validations = cnv;
    for o in &r.allowed_other_sans {
        if o != "*" && !o.contains(';') {
            return Err(CoreError::bad(format!(
                "allowed_other_sans must be \"*\" or <oid>;UTF8:<value>, got {o:?}"
            )));
        }
    }
    Ok(())
}

fn role_response(r: &Role) -> CoreResult<Option<Response>> {
    let v = serde_json::to_value(r).map_err(|e| CoreError::Internal(e.to_string()))?;
    Ok(Some(Response::json(v)))
}

async fn delete_role(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    pki.delete(&c, &format!("{ROLE_PREFIX}{}", c.param("name")))
        .await?;
    Ok(None)
}
