//! TLS certificates (`cert`): a workload logs in with the client certificate it already holds,
//! so it can renew with the certificate it has (mTLS renewal).
//!
//! The listener requests (never requires) a client certificate and proves the client holds its
//! key; this method decides trust. Each `certs/:name` entry names a trusted CA (or pins one
//! exact certificate) and optional constraints on the client certificate's names. Chains are
//! verified with webpki for client authentication at the current time.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, UnixTime};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use signet_core::framework::{handler, Backend, Ctx, Field, PathBackend, PathSpec};
use signet_core::{CoreError, CoreResult, EngineFactory, Login, Operation, Response, TokenParams};
use signet_storage::Storage;
use signet_types::FieldType;
use x509_parser::prelude::*;

/// Engine state (none beyond storage).
#[derive(Default)]
pub struct CertAuth;

/// The factory the binary registers as auth type `cert`.
pub fn factory() -> EngineFactory {
    Arc::new(|_entry| Ok(Arc::new(backend()) as Arc<dyn Backend>))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Trusted {
    certificate: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    allowed_common_names: Vec<String>,
    #[serde(default)]
    allowed_dns_sans: Vec<String>,
    #[serde(default)]
    allowed_email_sans: Vec<String>,
    #[serde(default)]
    allowed_uri_sans: Vec<String>,
    #[serde(default)]
    allowed_organizational_units: Vec<String>,
    #[serde(default)]
    token: TokenParams,
}

const NAME_FIELDS: [&str; 5] = [
    "allowed_common_names",
    "allowed_dns_sans",
    "allowed_email_sans",
    "allowed_uri_sans",
    "allowed_organizational_units",
];

/// Builds the engine.
pub fn backend() -> PathBackend<CertAuth> {
    let mut certs = PathSpec::new("certs/:name")
        .field(Field::new(
            "name",
            FieldType::String,
            "Name of the trusted certificate entry.",
        ))
        .field(Field::new(
            "certificate",
            FieldType::String,
            "PEM CA certificate (or the exact client certificate) to trust.",
        ))
        .field(Field::new(
            "display_name",
            FieldType::String,
            "Display name of tokens issued through this entry.",
        ));
    for f in NAME_FIELDS {
        certs = certs.field(Field::new(
            f,
            FieldType::CommaStringSlice,
            "Names the client certificate may carry (globs allowed).",
        ));
    }
    let specs = vec![
        PathSpec::new("login")
            .field(Field::new("name", FieldType::String, "Only try this trusted certificate entry."))
            .op(Operation::Update, "Log in with the TLS client certificate.", handler(login))
            .help("Authenticates the TLS client certificate of the connection.", "")
            .unauthenticated(),
        PathSpec::new("certs")
            .op(Operation::List, "List trusted certificate entries.", handler(list_certs))
            .help("List the trusted certificate entries.", ""),
        TokenParams::fields(certs)
            .op(Operation::Read, "Read a trusted certificate entry.", handler(read_cert))
            .write_op("Create or update a trusted certificate entry.", handler(write_cert))
            .op(Operation::Delete, "Delete a trusted certificate entry.", handler(delete_cert))
            .help("Manage the certificates trusted for login.", ""),
        PathSpec::new("config")
            .field(Field::new("disable_binding", FieldType::Bool, "Accepted for compatibility."))
            .field(Field::new("enable_identity_alias_metadata", FieldType::Bool, "Accepted for compatibility."))
            .op(Operation::Read, "Read the configuration.", handler(|_s, c: Ctx| async move {
                let v: Option<Value> = c.storage.get_json("config").await?;
                Ok(Some(Response::json(v.unwrap_or(json!({"disable_binding": false, "enable_identity_alias_metadata": false})))))
            }))
            .write_op("Write the configuration.", handler(|_s, c: Ctx| async move {
                c.storage.put_json("config", &json!({
                    "disable_binding": c.fields.bool("disable_binding"),
                    "enable_identity_alias_metadata": c.fields.bool("enable_identity_alias_metadata"),
                })).await?;
                Ok(None)
            }))
            .help("Method-wide settings.", ""),
    ];
    PathBackend::new(Arc::new(CertAuth), specs)
}

fn parse_pem_certs(pem: &str) -> CoreResult<Vec<CertificateDer<'static>>> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| CoreError::bad(format!("failed to parse certificate: {e}")))?;
    if certs.is_empty() {
        return Err(CoreError::bad(
            "failed to parse certificate: no PEM certificate found",
        ));
    }
    for c in &certs {
        X509Certificate::from_der(c.as_ref())
            .map_err(|e| CoreError::bad(format!("failed to parse certificate: {e}")))?;
    }
    Ok(certs)
}

async fn list_certs(_s: Arc<CertAuth>, c: Ctx) -> CoreResult<Option<Response>> {
    let keys = c.storage.list("cert/").await?;
    Response::list_or_not_found(keys)
}

async fn read_cert(_s: Arc<CertAuth>, c: Ctx) -> CoreResult<Option<Response>> {
    let t: Option<Trusted> = c
        .storage
        .get_json(&format!("cert/{}", c.param("name").to_lowercase()))
        .await?;
    let Some(t) = t else {
        return Err(CoreError::NotFound);
    };
    let mut m = t.token.to_json();
    m.insert("certificate".into(), json!(t.certificate));
    m.insert("display_name".into(), json!(t.display_name));
    m.insert("allowed_common_names".into(), json!(t.allowed_common_names));
    m.insert("allowed_dns_sans".into(), json!(t.allowed_dns_sans));
    m.insert("allowed_email_sans".into(), json!(t.allowed_email_sans));
    m.insert("allowed_uri_sans".into(), json!(t.allowed_uri_sans));
    m.insert(
        "allowed_organizational_units".into(),
        json!(t.allowed_organizational_units),
    );
    m.insert("policies".into(), json!(t.token.token_policies));
    Ok(Some(Response::data(m)))
}

async fn write_cert(_s: Arc<CertAuth>, c: Ctx) -> CoreResult<Option<Response>> {
    let name = c.param("name").to_lowercase();
    let key = format!("cert/{name}");
    let mut t: Trusted = c.storage.get_json(&key).await?.unwrap_or_default();
    let f = &c.fields;
    if f.is_set("certificate") {
        t.certificate = f.str("certificate");
    }
    if t.certificate.is_empty() {
        return Err(CoreError::bad("must specify certificate"));
    }
    parse_pem_certs(&t.certificate)?;
    if f.is_set("display_name") {
        t.display_name = f.str("display_name");
    }
    for (field, slot) in [
        ("allowed_common_names", &mut t.allowed_common_names),
        ("allowed_dns_sans", &mut t.allowed_dns_sans),
        ("allowed_email_sans", &mut t.allowed_email_sans),
        ("allowed_uri_sans", &mut t.allowed_uri_sans),
        (
            "allowed_organizational_units",
            &mut t.allowed_organizational_units,
        ),
    ] {
        if f.is_set(field) {
            *slot = f.strings(field);
        }
    }
    t.token.update(f)?;
    c.storage.put_json(&key, &t).await?;
    Ok(None)
}

async fn delete_cert(_s: Arc<CertAuth>, c: Ctx) -> CoreResult<Option<Response>> {
    c.storage
        .delete(&format!("cert/{}", c.param("name").to_lowercase()))
        .await?;
    Ok(None)
}

fn glob(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern.eq_ignore_ascii_case(value),
        Some((pre, post)) => {
            let v = value.to_lowercase();
            v.len() >= pre.len() + post.len()
                && v.starts_with(&pre.to_lowercase())
                && v.ends_with(&post.to_lowercase())
        }
    }
}

fn any_matches(allowed: &[String], values: &[String]) -> bool {
    allowed.is_empty() || values.iter().any(|v| allowed.iter().any(|a| glob(a, v)))
}

/// The names a client certificate carries.
struct Names {
    cn: Vec<String>,
    dns: Vec<String>,
    email: Vec<String>,
    uri: Vec<String>,
    ou: Vec<String>,
    serial: String,
    ski: String,
    aki: String,
}

fn names_of(der: &[u8]) -> CoreResult<Names> {
    let (_, cert) =
        X509Certificate::from_der(der).map_err(|_| CoreError::bad("invalid client certificate"))?;
    let attr = |oid| -> Vec<String> {
        cert.subject()
            .iter_by_oid(oid)
            .filter_map(|a| a.as_str().ok().map(str::to_string))
            .collect()
    };
    let mut names = Names {
        cn: attr(&oid_registry::OID_X509_COMMON_NAME),
        ou: attr(&oid_registry::OID_X509_ORGANIZATIONAL_UNIT),
        dns: vec![],
        email: vec![],
        uri: vec![],
        serial: cert
            .raw_serial()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
        ski: String::new(),
        aki: String::new(),
    };
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectAlternativeName(san) => {
                for n in &san.general_names {
                    match n {
                        GeneralName::DNSName(d) => names.dns.push(d.to_string()),
                        GeneralName::RFC822Name(e) => names.email.push(e.to_string()),
                        GeneralName::URI(u) => names.uri.push(u.to_string()),
                        _ => {}
                    }
                }
            }
            ParsedExtension::SubjectKeyIdentifier(k) => names.ski = hex_colon(k.0),
            ParsedExtension::AuthorityKeyIdentifier(a) => {
                if let Some(k) = &a.key_identifier {
                    names.aki = hex_colon(k.0);
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

fn hex_colon(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether `chain` (end entity first) leads to `trusted` for client authentication now.
fn chain_trusted(chain: &[Vec<u8>], trusted: &[CertificateDer<'static>]) -> bool {
    let Some(leaf) = chain.first() else {
        return false;
    };
    // Pinning the exact certificate is allowed, as in Vault.
    if trusted.iter().any(|t| t.as_ref() == leaf.as_slice()) {
        return true;
    }
    let leaf_der = CertificateDer::from(leaf.clone());
    let Ok(ee) = webpki::EndEntityCert::try_from(&leaf_der) else {
        return false;
    };
    let anchors: Vec<_> = trusted
        .iter()
        .filter_map(|t| {
            webpki::anchor_from_trusted_cert(t)
                .ok()
                .map(|a| a.to_owned())
        })
        .collect();
    let intermediates: Vec<CertificateDer<'static>> = chain[1..]
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let algs = rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
    ee.verify_for_usage(
        algs.all,
        &anchors,
        &intermediates,
        UnixTime::now(),
        webpki::KeyUsage::client_auth(),
        None,
        None,
    )
    .is_ok()
}

async fn login(_s: Arc<CertAuth>, c: Ctx) -> CoreResult<Option<Response>> {
    let chain = c
        .meta
        .peer_certs
        .clone()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| CoreError::bad("client certificate must be supplied"))?;
    let names = names_of(&chain[0])?;
    let only = c.fields.str("name").to_lowercase();
    let entries: Vec<String> = if only.is_empty() {
        c.storage.list("cert/").await?
    } else {
        vec![only]
    };
    for name in entries {
        let t: Option<Trusted> = c.storage.get_json(&format!("cert/{name}")).await?;
        let Some(t) = t else { continue };
        let Ok(trusted) = parse_pem_certs(&t.certificate) else {
            continue;
        };
        if !chain_trusted(&chain, &trusted) {
            continue;
        }
        let ok = any_matches(&t.allowed_common_names, &names.cn)
            && any_matches(&t.allowed_dns_sans, &names.dns)
            && any_matches(&t.allowed_email_sans, &names.email)
            && any_matches(&t.allowed_uri_sans, &names.uri)
            && any_matches(&t.allowed_organizational_units, &names.ou);
        if !ok {
            continue;
        }
        let metadata = BTreeMap::from([
            ("cert_name".to_string(), name.clone()),
            (
                "common_name".to_string(),
                names.cn.first().cloned().unwrap_or_default(),
            ),
            ("serial_number".to_string(), names.serial.clone()),
            ("subject_key_id".to_string(), names.ski.clone()),
            ("authority_key_id".to_string(), names.aki.clone()),
        ]);
        return Ok(Some(Response::login(Login {
            policies: t.token.token_policies.clone(),
            metadata,
            display_name: if t.display_name.is_empty() {
                name
            } else {
                t.display_name.clone()
            },
            params: t.token.clone(),
        })));
    }
    Err(CoreError::bad(
        "invalid certificate or no client certificate supplied",
    ))
}
