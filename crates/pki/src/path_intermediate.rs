//! Intermediates and imports: `intermediate/generate/:type`, `root/sign-intermediate`,
//! `intermediate/set-signed`, `config/ca`, `issuers/import/bundle|cert`.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use signet_core::framework::{handler, Ctx, Field, PathSpec};
use signet_core::token::now_secs;
use signet_core::{CoreError, CoreResult, Operation, Response};
use signet_crypto::x509::{self, CertSpec, KeyType};
use signet_storage::Storage;
use signet_types::FieldType;

use crate::storage::{cert_key, CertRecord, IssuerEntry, PendingKey, ISSUER, PENDING_KEY};
use crate::Pki;

fn subject_fields(mut s: PathSpec<Pki>) -> PathSpec<Pki> {
    for f in [
        "organization",
        "ou",
        "country",
        "locality",
        "province",
        "alt_names",
        "ip_sans",
        "uri_sans",
        "permitted_dns_domains",
    ] {
        s = s.field(Field::new(
            f,
            FieldType::CommaStringSlice,
            "Subject fields and SANs.",
        ));
    }
    s.field(Field::new("common_name", FieldType::String, "Common name."))
        .field(Field::new("ttl", FieldType::DurationSecond, "Lifetime."))
        .field(Field::new(
            "format",
            FieldType::String,
            "pem (default), der or pem_bundle.",
        ))
        .field(Field::new(
            "private_key_format",
            FieldType::String,
            "Keys are PKCS#8.",
        ))
        .field(Field::new(
            "key_name",
            FieldType::String,
            "Name of the key.",
        ))
        .field(Field::new(
            "issuer_name",
            FieldType::String,
            "Name of the issuer.",
        ))
        .field(Field::new(
            "exclude_cn_from_sans",
            FieldType::Bool,
            "Do not copy the CN into the SANs.",
        ))
}

pub fn specs() -> Vec<PathSpec<Pki>> {
    let generate = |p: &'static str| {
        subject_fields(PathSpec::new(p))
            .field(Field::new(
                "type",
                FieldType::String,
                "internal or exported.",
            ))
            .field(
                Field::new("key_type", FieldType::String, "rsa, ec or ed25519.")
                    .default(json!("rsa")),
            )
            .field(Field::new("key_bits", FieldType::Int, "Key size."))
            .field(Field::new(
                "add_basic_constraints",
                FieldType::Bool,
                "Accepted for compatibility.",
            ))
            .op(
                Operation::Update,
                "Generate a key and a CSR for an intermediate CA.",
                handler(generate_intermediate),
            )
            .help("Generate an intermediate CA key and CSR.", "")
    };
    let sign = |p: &'static str| {
        subject_fields(PathSpec::new(p))
            .field(Field::new(
                "ref",
                FieldType::String,
                "Issuer reference (default).",
            ))
            .field(Field::new(
                "csr",
                FieldType::String,
                "PEM CSR of the intermediate.",
            ))
            .field(Field::new(
                "use_csr_values",
                FieldType::Bool,
                "Take the subject and SANs from the CSR.",
            ))
            .field(
                Field::new(
                    "max_path_length",
                    FieldType::Int,
                    "Path length constraint (-1 = none).",
                )
                .default(json!(-1)),
            )
            .field(Field::new(
                "signature_bits",
                FieldType::Int,
                "Accepted for compatibility.",
            ))
            .field(Field::new(
                "skid",
                FieldType::String,
                "Accepted for compatibility.",
            ))
            .op(
                Operation::Update,
                "Sign an intermediate CA's CSR.",
                handler(sign_intermediate),
            )
            .help("Issue an intermediate CA certificate from a CSR.", "")
            .sudo()
    };
    let import = |p: &'static str, with_key: bool| {
        PathSpec::new(p)
            .field(Field::new(
                "pem_bundle",
                FieldType::String,
                "PEM certificate(s), and the private key where allowed.",
            ))
            .op(
                Operation::Update,
                "Import CA certificates and key.",
                handler(move |s, c| import_bundle(s, c, with_key)),
            )
            .help("Import a CA certificate (and key).", "")
    };
    vec![
        generate("intermediate/generate/:type"),
        generate("issuers/generate/intermediate/:type"),
        sign("root/sign-intermediate"),
        sign("issuer/:ref/sign-intermediate"),
        PathSpec::new("intermediate/set-signed")
            .field(Field::new(
                "certificate",
                FieldType::String,
                "The signed intermediate certificate, optionally followed by its chain.",
            ))
            .op(
                Operation::Update,
                "Install the signed intermediate certificate.",
                handler(set_signed),
            )
            .help("Provide the signed intermediate CA certificate.", ""),
        import("config/ca", true),
        import("issuers/import/bundle", true),
        import("issuers/import/cert", false),
    ]
}

fn spec_from(c: &Ctx, cn: String) -> CoreResult<CertSpec> {
    let f = &c.fields;
    let mut dns = f.strings("alt_names");
    if !f.bool("exclude_cn_from_sans") && !cn.is_empty() && !cn.contains(' ') && !dns.contains(&cn)
    {
        dns.insert(0, cn.clone());
    }
    Ok(CertSpec {
        common_name: cn,
        organization: f.strings("organization"),
        ou: f.strings("ou"),
        country: f.strings("country"),
        locality: f.strings("locality"),
        province: f.strings("province"),
        dns,
        ips: f
            .strings("ip_sans")
            .iter()
            .map(|s| {
                s.parse().map_err(|_| {
                    CoreError::bad(format!("the value {s:?} is not a valid IP address"))
                })
            })
            .collect::<CoreResult<_>>()?,
        uris: f.strings("uri_sans"),
        ..Default::default()
    })
}

async fn generate_intermediate(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let kind = c.param("type").to_string();
    if !matches!(kind.as_str(), "internal" | "exported") {
        return Err(CoreError::bad(format!(
            "invalid type {kind:?}: use internal or exported"
        )));
    }
    let cn = c.fields.str("common_name");
    if cn.is_empty() {
        return Err(CoreError::bad("the common_name field is required"));
    }
    let kt = KeyType::parse(&c.fields.str("key_type"), c.fields.u64("key_bits"))
        .map_err(|e| CoreError::bad(e.to_string()))?;
    let key = x509::generate_key(kt).map_err(|e| CoreError::Internal(e.to_string()))?;
    let csr =
        x509::csr_pem(&spec_from(&c, cn)?, &key).map_err(|e| CoreError::bad(e.to_string()))?;
    let pending = PendingKey {
        key_id: uuid::Uuid::new_v4().to_string(),
        key_name: c.fields.str("key_name"),
        private_key: key.serialize_pem(),
    };
    c.storage.put_json(PENDING_KEY, &pending).await?;
    let mut data = Map::new();
    data.insert("csr".into(), json!(csr.trim_end()));
    data.insert("key_id".into(), json!(pending.key_id));
    if kind == "exported" {
        data.insert("private_key".into(), json!(pending.private_key.trim_end()));
        data.insert("private_key_type".into(), json!(kt.name()));
    }
    Ok(Some(Response::data(data)))
}

async fn sign_intermediate(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let issuer: IssuerEntry = pki
        .get(&c, ISSUER)
        .await?
        .ok_or_else(|| CoreError::bad("no default issuer currently configured"))?;
    let csr = x509::parse_csr(&c.fields.str("csr")).map_err(|e| CoreError::bad(e.to_string()))?;
    let f = &c.fields;
    let use_csr = f.bool("use_csr_values");
    let cn = if use_csr || f.str("common_name").is_empty() {
        csr.common_name.clone()
    } else {
        f.str("common_name")
    };
    let mut spec = if use_csr {
        CertSpec {
            common_name: cn.clone(),
            dns: csr.dns.clone(),
            emails: csr.emails.clone(),
            ips: csr.ips.clone(),
            uris: csr.uris.clone(),
            ..Default::default()
        }
    } else {
        spec_from(&c, cn.clone())?
    };
    let mut warnings = Vec::new();
    let mut ttl = if f.u64("ttl") > 0 {
        f.u64("ttl")
    } else {
        c.mount.max_lease_ttl
    };
    if ttl > c.mount.max_lease_ttl {
        ttl = c.mount.max_lease_ttl;
    }
    let now = now_secs() as i64;
    let mut not_after = now + ttl as i64;
    if not_after > issuer.not_after {
        warnings.push("The requested TTL reaches past the issuing CA's expiry; the certificate expires with the CA.".to_string());
        not_after = issuer.not_after;
    }
    let urls = crate::path_root::urls(&pki, &c).await?;
    spec.not_before = now - 30;
    spec.not_after = not_after;
    spec.serial = x509::random_serial().map_err(|e| CoreError::Internal(e.to_string()))?;
    spec.is_ca = true;
    spec.max_path_length = f.i64("max_path_length");
    spec.key_usages = vec![x509::KeyUsage::KeyCertSign, x509::KeyUsage::CrlSign];
    spec.issuing_certificates = urls.issuing_certificates;
    spec.crl_distribution_points = urls.crl_distribution_points;
    spec.ocsp_servers = urls.ocsp_servers;
    let signer = pki.signer(&issuer)?;
    let der = signer
        .sign(&spec, &csr.spki_der)
        .map_err(|e| CoreError::bad(e.to_string()))?;
    let info = x509::cert_info(&der).map_err(|e| CoreError::Internal(e.to_string()))?;
    let pem = x509::cert_pem(&der);
    c.storage
        .put_json(
            &cert_key(&info.serial),
            &CertRecord {
                certificate: pem.clone(),
                role: String::new(),
                requester: c
                    .meta
                    .token
                    .as_ref()
                    .map(|t| t.accessor.clone())
                    .unwrap_or_default(),
                issued_at: now,
                common_name: cn,
                not_after: info.not_after,
                revoked_at: 0,
                names: vec![],
            },
        )
        .await?;
    let mut chain = vec![issuer.certificate.clone()];
    chain.extend(issuer.chain.iter().cloned());
    let certificate = if f.str("format") == "pem_bundle" {
        std::iter::once(pem.clone())
            .chain(chain.iter().cloned())
            .collect::<Vec<_>>()
            .join("\n")
    } else {
        pem.clone()
    };
    let mut r = Response::json(json!({
        "certificate": certificate,
        "issuing_ca": issuer.certificate,
        "ca_chain": chain,
        "serial_number": info.serial,
        "expiration": info.not_after,
    }));
    r.warnings = warnings;
    Ok(Some(r))
}

fn import_response(imported: &[String], mapping: Map<String, Value>, key: Option<String>) -> Value {
    json!({
        "existing_issuers": Value::Null,
        "existing_keys": Value::Null,
        "imported_issuers": imported,
        "imported_keys": key.map(|k| json!([k])).unwrap_or(Value::Null),
        "mapping": mapping,
    })
}

async fn install(
    pki: &Pki,
    c: &Ctx,
    certs: Vec<Vec<u8>>,
    key_pem: String,
    key_id: String,
    key_name: String,
) -> CoreResult<Value> {
    if c.storage.get(ISSUER).await?.is_some() {
        return Err(CoreError::bad(
            "this mount already has a CA; several issuers per mount are not supported yet (DELETE root first)",
        ));
    }
    let first = certs
        .first()
        .ok_or_else(|| CoreError::bad("no certificate found in the input"))?;
    let info = x509::cert_info(first).map_err(|e| CoreError::bad(e.to_string()))?;
    if !info.is_ca {
        return Err(CoreError::bad("the certificate is not a CA certificate"));
    }
    let entry = IssuerEntry {
        issuer_id: uuid::Uuid::new_v4().to_string(),
        issuer_name: String::new(),
        key_id: key_id.clone(),
        key_name,
        certificate: x509::cert_pem(first),
        private_key: key_pem,
        chain: certs[1..].iter().map(|d| x509::cert_pem(d)).collect(),
        serial_number: info.serial,
        not_after: info.not_after,
    };
    pki.put(c, ISSUER, &entry).await?;
    let mut imported = vec![entry.issuer_id.clone()];
    let mut mapping = Map::new();
    mapping.insert(entry.issuer_id.clone(), json!(key_id));
    for _ in &certs[1..] {
        let id = uuid::Uuid::new_v4().to_string();
        mapping.insert(id.clone(), json!(""));
        imported.push(id);
    }
    Ok(import_response(&imported, mapping, None))
}

async fn set_signed(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let (certs, _) = x509::split_bundle(&c.fields.str("certificate"))
        .map_err(|e| CoreError::bad(e.to_string()))?;
    let first = certs
        .first()
        .ok_or_else(|| CoreError::bad("no certificate found in the input"))?;
    let pending: PendingKey = c.storage.get_json(PENDING_KEY).await?.ok_or_else(|| {
        CoreError::bad("no pending intermediate key: run intermediate/generate first")
    })?;
    if !x509::key_matches_cert(&pending.private_key, first)
        .map_err(|e| CoreError::Internal(e.to_string()))?
    {
        return Err(CoreError::bad(
            "the certificate does not match the pending intermediate key",
        ));
    }
    let out = install(
        &pki,
        &c,
        certs,
        pending.private_key.clone(),
        pending.key_id.clone(),
        pending.key_name.clone(),
    )
    .await?;
    c.storage.delete(PENDING_KEY).await?;
    Ok(Some(Response::json(out)))
}

async fn import_bundle(pki: Arc<Pki>, c: Ctx, with_key: bool) -> CoreResult<Option<Response>> {
    let (certs, key) = x509::split_bundle(&c.fields.str("pem_bundle"))
        .map_err(|e| CoreError::bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(CoreError::bad("no certificate found in the pem_bundle"));
    }
    let Some(key) = key else {
        return Err(CoreError::bad(if with_key {
            "the pem_bundle must contain the CA's private key (signet keeps one issuer with its key per mount)"
        } else {
            "importing a certificate without its key is not supported yet; use issuers/import/bundle with the key"
        }));
    };
    if !with_key {
        return Err(CoreError::bad(
            "issuers/import/cert does not accept private keys; use issuers/import/bundle",
        ));
    }
    match x509::key_matches_cert(&key, &certs[0]) {
        Ok(true) => {}
        Ok(false) => {
            return Err(CoreError::bad(
                "the private key does not match the certificate",
            ))
        }
        Err(e) => return Err(CoreError::bad(e.to_string())),
    }
    let out = install(
        &pki,
        &c,
        certs,
        key,
        uuid::Uuid::new_v4().to_string(),
        String::new(),
    )
    .await?;
    Ok(Some(Response::json(out)))
}
