//! `root/generate/:type` (and `issuers/generate/root/:type`), `DELETE root`, `config/urls`.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{json, Map};
use signet_core::framework::{handler, Ctx, Field, PathSpec};
use signet_core::token::now_secs;
use signet_core::{CoreError, CoreResult, Operation, Response};
use signet_crypto::x509::{self, CertSpec, KeyType};
use signet_storage::Storage;
use signet_types::FieldType;

use crate::storage::{IssuerEntry, UrlsConfig, CONFIG_URLS, ISSUER};
use crate::Pki;

fn ca_fields(spec: PathSpec<Pki>) -> PathSpec<Pki> {
    let mut s = spec
        .field(Field::new(
            "type",
            FieldType::String,
            "internal (key kept) or exported (key returned once).",
        ))
        .field(Field::new(
            "common_name",
            FieldType::String,
            "Common name of the CA.",
        ))
        .field(Field::new(
            "alt_names",
            FieldType::CommaStringSlice,
            "DNS SANs.",
        ))
        .field(Field::new(
            "ip_sans",
            FieldType::CommaStringSlice,
            "IP SANs.",
        ))
        .field(Field::new(
            "uri_sans",
            FieldType::CommaStringSlice,
            "URI SANs.",
        ))
        .field(Field::new(
            "ttl",
            FieldType::DurationSecond,
            "Lifetime (capped by the mount's max_lease_ttl).",
        ))
        .field(
            Field::new("key_type", FieldType::String, "rsa, ec or ed25519.").default(json!("rsa")),
        )
        .field(Field::new(
            "key_bits",
            FieldType::Int,
            "Key size (0 = the type's default).",
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
            "issuer_name",
            FieldType::String,
            "Name of the issuer.",
        ))
        .field(Field::new(
            "key_name",
            FieldType::String,
            "Name of the key.",
        ))
        .field(Field::new(
            "exclude_cn_from_sans",
            FieldType::Bool,
            "Do not copy the CN into the SANs.",
        ))
        .field(Field::new(
            "format",
            FieldType::String,
            "pem (default), der or pem_bundle.",
        ))
        .field(Field::new(
            "private_key_format",
            FieldType::String,
            "Accepted; keys are PKCS#8.",
        ));
    for f in [
        "organization",
        "ou",
        "country",
        "locality",
        "province",
        "permitted_dns_domains",
    ] {
        s = s.field(Field::new(
            f,
            FieldType::CommaStringSlice,
            "Subject fields.",
        ));
    }
    s
}

pub fn specs() -> Vec<PathSpec<Pki>> {
    vec![
        ca_fields(PathSpec::new("root/generate/:type"))
            .op(
                Operation::Update,
                "Generate a new self-signed CA certificate and key.",
                handler(generate_root),
            )
            .help("Generate a root CA.", ""),
        ca_fields(PathSpec::new("issuers/generate/root/:type"))
            .op(
                Operation::Update,
                "Generate a new self-signed CA certificate and key.",
                handler(generate_root),
            )
            .help("Generate a root CA.", ""),
        PathSpec::new("root")
            .op(
                Operation::Delete,
                "Delete the CA certificate and key of this mount.",
                handler(delete_root),
            )
            .help("Delete the mount's CA.", "")
            .sudo(),
        PathSpec::new("config/urls")
            .field(Field::new(
                "issuing_certificates",
                FieldType::CommaStringSlice,
                "URLs of the issuing CA certificate (AIA).",
            ))
            .field(Field::new(
                "crl_distribution_points",
                FieldType::CommaStringSlice,
                "URLs of the CRL.",
            ))
            .field(Field::new(
                "ocsp_servers",
                FieldType::CommaStringSlice,
                "URLs of the OCSP responder.",
            ))
            .field(Field::new(
                "enable_templating",
                FieldType::Bool,
                "Accepted; templates are not expanded yet.",
            ))
            .op(
                Operation::Read,
                "Read the URLs put into issued certificates.",
                handler(read_urls),
            )
            .write_op(
                "Set the URLs put into issued certificates.",
                handler(write_urls),
            )
            .help(
                "Authority information access and CRL distribution URLs.",
                "",
            ),
    ]
}

fn parse_ips(list: &[String]) -> CoreResult<Vec<IpAddr>> {
    list.iter()
        .map(|s| {
            s.trim()
                .parse::<IpAddr>()
                .map_err(|_| CoreError::bad(format!("the value {s:?} is not a valid IP address")))
        })
        .collect()
}

pub async fn urls(pki: &Pki, c: &Ctx) -> CoreResult<UrlsConfig> {
    Ok(pki.get(c, CONFIG_URLS).await?.unwrap_or_default())
}

async fn generate_root(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let kind = c.param("type").to_string();
    if !matches!(kind.as_str(), "internal" | "exported") {
        return Err(CoreError::bad(format!(
            "invalid type {kind:?}: use internal or exported"
        )));
    }
    let f = &c.fields;
    let cn = f.str("common_name");
    if cn.is_empty() {
        return Err(CoreError::bad("the common_name field is required"));
    }
    if c.storage.get(ISSUER).await?.is_some() {
        return Err(CoreError::bad(
            "this mount already has a CA; several issuers per mount are not supported yet (DELETE root first, or mount another pki engine)",
        ));
    }
    let kt = KeyType::parse(&f.str("key_type"), f.u64("key_bits"))
        .map_err(|e| CoreError::bad(e.to_string()))?;
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
    let mut dns = f.strings("alt_names");
    if !f.bool("exclude_cn_from_sans")
        && !cn.contains(' ')
        && !dns.contains(&cn)
        && !cn.contains('@')
    {
        dns.insert(0, cn.clone());
    }
    let urls = urls(&pki, &c).await?;
    let spec = CertSpec {
        common_name: cn.clone(),
        organization: f.strings("organization"),
        ou: f.strings("ou"),
        country: f.strings("country"),
        locality: f.strings("locality"),
        province: f.strings("province"),
        dns,
        ips: parse_ips(&f.strings("ip_sans"))?,
        uris: f.strings("uri_sans"),
        not_before: now - 30,
        not_after: now + ttl as i64,
        serial: x509::random_serial().map_err(|e| CoreError::Internal(e.to_string()))?,
        is_ca: true,
        max_path_length: f.i64("max_path_length"),
        key_usages: vec![
            x509::KeyUsage::KeyCertSign,
            x509::KeyUsage::CrlSign,
            x509::KeyUsage::DigitalSignature,
        ],
        issuing_certificates: urls.issuing_certificates.clone(),
        crl_distribution_points: urls.crl_distribution_points.clone(),
        ocsp_servers: urls.ocsp_servers.clone(),
        ..Default::default()
    };
    let key = x509::generate_key(kt).map_err(|e| CoreError::Internal(e.to_string()))?;
    let der = x509::self_signed(&spec, &key).map_err(|e| CoreError::bad(e.to_string()))?;
    let info = x509::cert_info(&der).map_err(|e| CoreError::Internal(e.to_string()))?;
    let pem = x509::cert_pem(&der);
    let key_pem = key.serialize_pem();
    let entry = IssuerEntry {
        issuer_id: uuid::Uuid::new_v4().to_string(),
        issuer_name: f.str("issuer_name"),
        key_id: uuid::Uuid::new_v4().to_string(),
        key_name: f.str("key_name"),
        certificate: pem.clone(),
        private_key: key_pem.clone(),
        chain: vec![],
        serial_number: info.serial.clone(),
        not_after: info.not_after,
    };
    pki.put(&c, ISSUER, &entry).await?;
    if urls.issuing_certificates.is_empty()
        && urls.crl_distribution_points.is_empty()
        && urls.ocsp_servers.is_empty()
    {
        warnings.push("This mount hasn't configured any authority information access (AIA) fields; this may make it harder for systems to find missing certificates in the chain or to validate revocation status of certificates. Consider updating /config/urls or the newly generated issuer with this information.".into());
    }
    let mut data = Map::new();
    data.insert("certificate".into(), json!(pem));
    data.insert("expiration".into(), json!(info.not_after));
    data.insert("issuer_id".into(), json!(entry.issuer_id));
    data.insert("issuer_name".into(), json!(entry.issuer_name));
    data.insert("issuing_ca".into(), json!(pem));
    data.insert("key_id".into(), json!(entry.key_id));
    data.insert("key_name".into(), json!(entry.key_name));
    data.insert("serial_number".into(), json!(info.serial));
    if kind == "exported" {
        data.insert("private_key".into(), json!(key_pem));
        data.insert("private_key_type".into(), json!(kt.name()));
    }
    let mut r = Response::data(data);
    r.warnings = warnings;
    Ok(Some(r))
}

async fn delete_root(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    pki.delete(&c, ISSUER).await?;
    Ok(None)
}

async fn read_urls(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let u = urls(&pki, &c).await?;
    Ok(Some(Response::json(json!({
        "issuing_certificates": u.issuing_certificates,
        "crl_distribution_points": u.crl_distribution_points,
        "ocsp_servers": u.ocsp_servers,
        "enable_templating": false,
    }))))
}

async fn write_urls(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let mut u = urls(&pki, &c).await?;
    let f = &c.fields;
    for (k, slot) in [
        ("issuing_certificates", &mut u.issuing_certificates),
        ("crl_distribution_points", &mut u.crl_distribution_points),
        ("ocsp_servers", &mut u.ocsp_servers),
    ] {
        if f.is_set(k) {
            let v = f.strings(k);
            if let Some(bad) = v.iter().find(|x| {
                !(x.starts_with("http://") || x.starts_with("https://") || x.starts_with("ldap://"))
            }) {
                return Err(CoreError::bad(format!("invalid URL {bad:?} in {k}")));
            }
            *slot = v;
        }
    }
    pki.put(&c, CONFIG_URLS, &u).await?;
    Ok(None)
}
