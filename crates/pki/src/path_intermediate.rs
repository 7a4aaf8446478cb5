//! Intermediates and imports: `intermediate/generate/:type`, `root/sign-intermediate`,
//! `intermediate/set-signed`, `config/ca`, `issuers/import/bundle|cert`.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use signet_core::framework::{handler, Ctx, Field, PathSpec};
use signet_core::token::now_secs;
use signet_core::{CoreError, CoreResult, Operation, Response};
use signet_crypto::x509::{self, CertSpec, KeyType};
use signet_types::FieldType;

use crate::issuers;
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
        "street_address",
        "postal_code",
        "other_sans",
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
        .field(Field::new(
            "key_ref",
            FieldType::String,
            "The key to use with type existing.",
        ))
        .field(Field::new(
            "not_after",
            FieldType::String,
            "Explicit expiry (RFC 3339), instead of ttl.",
        ))
        .field(Field::new(
            "not_before_duration",
            FieldType::DurationSecond,
            "Backdating of notBefore (30s).",
        ))
        .field(Field::new(
            "serial_number",
            FieldType::String,
            "Accepted for compatibility.",
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
        street_address: f.strings("street_address"),
        postal_code: f.strings("postal_code"),
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

async fn generate_intermediate(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let kind = c.param("type").to_string();
    let cn = c.fields.str("common_name");
    let (kt, key, existing) = match crate::path_root::generation_key(&c, &kind)? {
        Some((kt, k)) => (kt, k, false),
        None => {
            let key = issuers::resolve_key(&pki, &c, &c.fields.str("key_ref")).await?;
            let kt = KeyType::parse(&key.key_type, 0).map_err(|e| CoreError::bad(e.to_string()))?;
            (kt, key, true)
        }
    };
    let (kp, _) =
        x509::load_key(&key.private_key).map_err(|e| CoreError::Internal(e.to_string()))?;
    let csr = x509::csr_pem(&spec_from(&c, cn)?, &kp).map_err(|e| CoreError::bad(e.to_string()))?;
    let key_id = key.key_id.clone();
    let key_pem = key.private_key.clone();
    if !existing {
        // The key is kept from now on (as OpenBao does), so set-signed pairs the certificate
        // with it by public key.
        issuers::add(&pki, &c, &[], vec![key], "", &c.fields.str("key_name")).await?;
    }
    let mut data = Map::new();
    data.insert("csr".into(), json!(csr.trim_end()));
    data.insert("key_id".into(), json!(key_id));
    if kind == "exported" {
        let k = x509::export_private_key(
            &key_pem,
            c.fields.str("private_key_format") == "pkcs8",
            c.fields.str("format") == "der",
        )
        .map_err(|e| CoreError::Internal(e.to_string()))?;
        data.insert("private_key".into(), json!(k));
        data.insert("private_key_type".into(), json!(kt.name()));
    }
    Ok(Some(Response::data(data)))
}

async fn sign_intermediate(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let issuer = issuers::resolve_issuer(&pki, &c, c.param("ref")).await?;
    issuer.require_usage("issuing-certificates")?;
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
    let mut not_after = match f.str("not_after") {
        s if !s.is_empty() => crate::path_root::parse_not_after(&s)?,
        _ => now + ttl as i64,
    };
    if not_after > issuer.not_after {
        warnings.push("The requested TTL reaches past the issuing CA's expiry; the certificate expires with the CA.".to_string());
        not_after = issuer.not_after;
    }
    let urls = crate::path_root::issuer_urls(&pki, &c, &issuer).await?;
    spec.not_before = now
        - if f.is_set("not_before_duration") {
            f.u64("not_before_duration") as i64
        } else {
            30
        };
    spec.not_after = not_after;
    spec.serial = x509::random_serial().map_err(|e| CoreError::Internal(e.to_string()))?;
    spec.is_ca = true;
    spec.max_path_length = f.i64("max_path_length");
    spec.permitted_dns_domains = f.strings("permitted_dns_domains");
    spec.key_usages = vec![
        x509::KeyUsage::KeyCertSign,
        x509::KeyUsage::CrlSign,
        x509::KeyUsage::DigitalSignature,
    ];
    spec.issuing_certificates = urls.issuing_certificates;
    spec.crl_distribution_points = urls.crl_distribution_points;
    spec.ocsp_servers = urls.ocsp_servers;
    let signer = issuers::signer(&pki, &c, &issuer).await?;
    let der = signer
        .sign(&spec, &csr.spki_der)
        .map_err(|e| CoreError::bad(e.to_string()))?;
    let info = x509::cert_info(&der).map_err(|e| CoreError::Internal(e.to_string()))?;
    let pem = x509::cert_pem(&der);
    crate::path_issue_sign::store_ca_cert(&c, &pem, &info, &issuer.issuer_id).await?;
    let chain = issuer.ca_chain();
    let certificate = match f.str("format").as_str() {
        "pem_bundle" => std::iter::once(pem.clone())
            .chain(chain.iter().cloned())
            .collect::<Vec<_>>()
            .join("\n"),
        "der" => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(&der)
        }
        _ => pem.clone(),
    };
    if f.i64("max_path_length") == 0 {
        warnings.push("Max path length of the signed certificate is zero. This certificate cannot be used to issue intermediate CA certificates.".into());
    }
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

fn import_response(out: &issuers::Imported) -> Value {
    let list = |v: &Vec<String>| {
        if v.is_empty() {
            Value::Null
        } else {
            json!(v)
        }
    };
    let mapping: Map<String, Value> = out
        .mapping
        .iter()
        .map(|(i, k)| (i.clone(), json!(k)))
        .collect();
    json!({
        "existing_issuers": list(&out.existing_issuers),
        "existing_keys": list(&out.existing_keys),
        "imported_issuers": list(&out.imported_issuers),
        "imported_keys": list(&out.imported_keys),
        "mapping": mapping,
    })
}

async fn set_signed(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let (certs, _) = x509::split_bundle(&c.fields.str("certificate"))
        .map_err(|e| CoreError::bad(e.to_string()))?;
    let first = certs
        .first()
        .ok_or_else(|| CoreError::bad("no certificate found in the input"))?;
    // The signed certificate must belong to a key this mount holds.
    let spki = x509::cert_spki(first).map_err(|e| CoreError::bad(e.to_string()))?;
    let has_key = issuers::all_keys(&c).await?.iter().any(|k| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .decode(&k.spki)
            .map(|s| s == spki)
            .unwrap_or(false)
    });
    if !has_key {
        return Err(CoreError::bad(
            "the certificate does not match any key of this mount: run intermediate/generate first",
        ));
    }
    let out = issuers::add(&pki, &c, &certs, vec![], "", "").await?;
    Ok(Some(Response::json(import_response(&out))))
}

async fn import_bundle(pki: Arc<Pki>, c: Ctx, with_key: bool) -> CoreResult<Option<Response>> {
    let bundle = c.fields.str("pem_bundle");
    if bundle.trim().len() < 10 {
        return Err(CoreError::bad("provided data for import was too short; perhaps a path was passed to the API rather than the contents of a PEM file"));
    }
    let (certs, key) = x509::split_bundle(&bundle).map_err(|e| CoreError::bad(e.to_string()))?;
    let mut keys = Vec::new();
    if let Some(pem) = key {
        if !with_key {
            return Err(CoreError::bad(
                "private keys found in the PEM bundle but not allowed by this endpoint",
            ));
        }
        let k = issuers::key_from_pem(&pem, String::new())?;
        keys.push(k);
    }
    if certs.is_empty() && keys.is_empty() {
        return Err(CoreError::bad("no data found in PEM bundle"));
    }
    if let (Some(k), Some(first)) = (keys.first(), certs.first()) {
        if !x509::key_matches_cert(&k.private_key, first)
            .map_err(|e| CoreError::bad(e.to_string()))?
            && certs
                .iter()
                .all(|d| !x509::key_matches_cert(&k.private_key, d).unwrap_or(false))
        {
            return Err(CoreError::bad(
                "the private key does not match any certificate in the bundle",
            ));
        }
    }
    let out = issuers::add(&pki, &c, &certs, keys, "", "").await?;
    Ok(Some(Response::json(import_response(&out))))
}
