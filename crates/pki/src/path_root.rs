//! `root/generate/:type` (and `issuers/generate/root/:type`), `DELETE root`, `config/urls`.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{json, Map};
use signet_core::framework::{handler, Ctx, Field, PathSpec};
use signet_core::token::now_secs;
use signet_core::{CoreError, CoreResult, Operation, Response};
use signet_crypto::x509::{self, CertSpec, KeyType};
use signet_types::FieldType;

use crate::issuers;
use crate::storage::{UrlsConfig, CONFIG_URLS};
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
        ))
        .field(Field::new(
            "key_ref",
            FieldType::String,
            "The key to use with type existing (id, name or default).",
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
            "Accepted for compatibility (subject serialNumber is not set).",
        ))
        .field(Field::new(
            "signature_bits",
            FieldType::Int,
            "Accepted for compatibility.",
        ))
        .field(Field::new(
            "use_pss",
            FieldType::Bool,
            "Accepted for compatibility.",
        ));
    for f in [
        "organization",
        "ou",
        "country",
        "locality",
        "province",
        "street_address",
        "postal_code",
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

/// `root/sign-self-issued` and `issuer/:ref/sign-self-issued`.
fn self_issued(spec: PathSpec<Pki>) -> PathSpec<Pki> {
    spec.field(Field::new(
        "certificate",
        FieldType::String,
        "PEM of the self-issued CA certificate to re-sign.",
    ))
    .field(Field::new(
        "require_matching_certificate_algorithms",
        FieldType::Bool,
        "Refuse when the key algorithms differ.",
    ))
    .op(
        Operation::Update,
        "Re-sign a self-issued CA certificate with this mount's issuer.",
        handler(sign_self_issued),
    )
    .help("Sign a self-issued certificate.", "")
    .sudo()
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
        ca_fields(PathSpec::new("root/rotate/:type"))
            .op(
                Operation::Update,
                "Generate a new root CA (not made the default).",
                handler(generate_root),
            )
            .help("Generate a root CA beside the current one.", ""),
        self_issued(PathSpec::new("root/sign-self-issued")),
        self_issued(
            PathSpec::new("issuer/:ref/sign-self-issued").field(Field::new(
                "ref",
                FieldType::String,
                "Issuer reference.",
            )),
        ),
        PathSpec::new("root")
            .op(
                Operation::Delete,
                "Delete the CA certificate and key of this mount.",
                handler(delete_root),
            )
            .help("Delete the mount's CA.", "")
            .sudo(),
        PathSpec::new("config/cluster")
            .field(Field::new(
                "path",
                FieldType::String,
                "This mount's URL on this cluster (for AIA templating).",
            ))
            .field(Field::new(
                "aia_path",
                FieldType::String,
                "This mount's URL for AIA (for AIA templating).",
            ))
            .op(
                Operation::Read,
                "Read the cluster-local URLs.",
                handler(read_cluster),
            )
            .write_op("Set the cluster-local URLs.", handler(write_cluster))
            .help("Cluster-local URLs of this mount.", ""),
        PathSpec::new("config/acme")
            .field(Field::new(
                "enabled",
                FieldType::Bool,
                "ACME is not supported by signet; only false is accepted.",
            ))
            .field(Field::new(
                "allowed_issuers",
                FieldType::CommaStringSlice,
                "Accepted.",
            ))
            .field(Field::new(
                "allowed_roles",
                FieldType::CommaStringSlice,
                "Accepted.",
            ))
            .field(Field::new(
                "allow_role_ext_key_usage",
                FieldType::Bool,
                "Accepted.",
            ))
            .field(Field::new(
                "default_directory_policy",
                FieldType::String,
                "Accepted.",
            ))
            .field(Field::new("dns_resolver", FieldType::String, "Accepted."))
            .field(Field::new("eab_policy", FieldType::String, "Accepted."))
            .op(
                Operation::Read,
                "Read the ACME configuration (ACME is off).",
                handler(read_acme),
            )
            .write_op("Configure ACME (only disabled).", handler(write_acme))
            .help("ACME configuration; signet does not serve ACME.", ""),
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

/// The AIA URLs of certificates an issuer signs: its own when it has any, else the mount's.
pub async fn issuer_urls(
    pki: &Pki,
    c: &Ctx,
    issuer: &issuers::IssuerEntry,
) -> CoreResult<UrlsConfig> {
    if issuer.has_own_urls() {
        return Ok(UrlsConfig {
            issuing_certificates: issuer.issuing_certificates.clone(),
            crl_distribution_points: issuer.crl_distribution_points.clone(),
            ocsp_servers: issuer.ocsp_servers.clone(),
        });
    }
    urls(pki, c).await
}

/// The key a CA generation uses: new (`internal`, `exported`) or the mount's (`existing`).
pub(crate) fn generation_key(
    c: &Ctx,
    kind: &str,
) -> CoreResult<Option<(KeyType, issuers::KeyEntry)>> {
    match kind {
        "internal" | "exported" | "kms" if kind != "kms" => {
            let f = &c.fields;
            let kt = KeyType::parse(&f.str("key_type"), f.u64("key_bits"))
                .map_err(|e| CoreError::bad(e.to_string()))?;
            Ok(Some((kt, issuers::new_key(kt, f.str("key_name"))?)))
        }
        "existing" => Ok(None),
        _ => Err(CoreError::bad(format!(
            "invalid type {kind:?}: use internal, exported or existing"
        ))),
    }
}

async fn generate_root(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let kind = c.param("type").to_string();
    let f = &c.fields;
    crate::path_issue_sign::check_formats(f)?;
    let cn = f.str("common_name");
    issuers::check_name(&f.str("issuer_name"), "issuer")?;
    let (kt, key) = match generation_key(&c, &kind)? {
        Some(k) => k,
        None => {
            let key = issuers::resolve_key(&pki, &c, &f.str("key_ref")).await?;
            let kt = KeyType::parse(&key.key_type, 0).map_err(|e| CoreError::bad(e.to_string()))?;
            (kt, key)
        }
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
    let mut dns = f.strings("alt_names");
    if !f.bool("exclude_cn_from_sans")
        && !cn.is_empty()
        && !cn.contains(' ')
        && !dns.contains(&cn)
        && !cn.contains('@')
    {
        dns.insert(0, cn.clone());
    }
    let urls = urls(&pki, &c).await?;
    let not_after = match f.str("not_after") {
        s if s.is_empty() => now + ttl as i64,
        s => parse_not_after(&s)?,
    };
    let spec = CertSpec {
        common_name: cn.clone(),
        organization: f.strings("organization"),
        ou: f.strings("ou"),
        country: f.strings("country"),
        locality: f.strings("locality"),
        province: f.strings("province"),
        street_address: f.strings("street_address"),
        postal_code: f.strings("postal_code"),
        dns,
        ips: parse_ips(&f.strings("ip_sans"))?,
        uris: f.strings("uri_sans"),
        not_before: now
            - if f.is_set("not_before_duration") {
                f.u64("not_before_duration") as i64
            } else {
                30
            },
        not_after,
        serial: x509::random_serial().map_err(|e| CoreError::Internal(e.to_string()))?,
        is_ca: true,
        max_path_length: f.i64("max_path_length"),
        permitted_dns_domains: f.strings("permitted_dns_domains"),
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
    let (kp, _) =
        x509::load_key(&key.private_key).map_err(|e| CoreError::Internal(e.to_string()))?;
    let der = x509::self_signed(&spec, &kp).map_err(|e| CoreError::bad(e.to_string()))?;
    let info = x509::cert_info(&der).map_err(|e| CoreError::Internal(e.to_string()))?;
    let pem = x509::cert_pem(&der);
    let key_pem = key.private_key.clone();
    let key_id = key.key_id.clone();
    let key_name = key.key_name.clone();
    let imported = issuers::add(
        &pki,
        &c,
        std::slice::from_ref(&der),
        vec![key],
        &f.str("issuer_name"),
        &f.str("key_name"),
    )
    .await?;
    let issuer_id = imported
        .imported_issuers
        .first()
        .cloned()
        .ok_or_else(|| CoreError::Internal("the new issuer was not recorded".into()))?;
    crate::path_issue_sign::store_ca_cert(&c, &pem, &info, &issuer_id).await?;
    if urls.issuing_certificates.is_empty()
        && urls.crl_distribution_points.is_empty()
        && urls.ocsp_servers.is_empty()
    {
        warnings.push("This mount hasn't configured any authority information access (AIA) fields; this may make it harder for systems to find missing certificates in the chain or to validate revocation status of certificates. Consider updating /config/urls or the newly generated issuer with this information.".into());
    }
    if f.i64("max_path_length") == 0 {
        warnings.push("Max path length of the generated certificate is zero. This certificate cannot be used to issue intermediate CA certificates.".into());
    }
    let mut data = Map::new();
    let certificate = match f.str("format").as_str() {
        "der" => {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(&der)
        }
        _ => pem.clone(),
    };
    data.insert("certificate".into(), json!(certificate));
    data.insert("expiration".into(), json!(info.not_after));
    data.insert("issuer_id".into(), json!(issuer_id));
    data.insert("issuer_name".into(), json!(f.str("issuer_name")));
    data.insert("issuing_ca".into(), json!(certificate));
    data.insert("key_id".into(), json!(key_id));
    data.insert("key_name".into(), json!(key_name));
    data.insert("serial_number".into(), json!(info.serial));
    if kind == "exported" {
        let k = x509::export_private_key(
            &key_pem,
            f.str("private_key_format") == "pkcs8",
            f.str("format") == "der",
        )
        .map_err(|e| CoreError::Internal(e.to_string()))?;
        data.insert("private_key".into(), json!(k));
        data.insert("private_key_type".into(), json!(kt.name()));
    }
    let mut r = Response::data(data);
    r.warnings = warnings;
    Ok(Some(r))
}

/// `not_after` (RFC 3339) to epoch seconds.
pub(crate) fn parse_not_after(s: &str) -> CoreResult<i64> {
    x509::parse_time(s).ok_or_else(|| {
        CoreError::bad(format!(
            "parsing time {s:?} as \"2006-01-02T15:04:05Z07:00\": cannot parse"
        ))
    })
}

async fn sign_self_issued(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let issuer = issuers::resolve_issuer(&pki, &c, c.param("ref")).await?;
    issuer.require_usage("issuing-certificates")?;
    let (certs, _) = x509::split_bundle(&c.fields.str("certificate"))
        .map_err(|_| CoreError::bad("certificate could not be PEM-decoded"))?;
    if certs.len() != 1 {
        return Err(CoreError::bad(format!(
            "{} certificates found in PEM file, expected 1",
            certs.len()
        )));
    }
    let info = x509::cert_info(&certs[0])
        .map_err(|e| CoreError::bad(format!("error parsing certificate: {e}")))?;
    if !info.is_ca {
        return Err(CoreError::bad("given certificate is not a CA certificate"));
    }
    if !info.self_signed {
        return Err(CoreError::bad("given certificate is not self-issued"));
    }
    let signer = issuers::signer(&pki, &c, &issuer).await?;
    if c.fields.bool("require_matching_certificate_algorithms") {
        let theirs = x509::cert_spki(&certs[0])
            .and_then(|s| x509::key_type_of_spki(&s))
            .map_err(|e| CoreError::bad(e.to_string()))?;
        if theirs.name() != signer.key_type.name() {
            return Err(CoreError::bad(
                "cannot sign a self-issued certificate with a key of a different type when require_matching_certificate_algorithms is set",
            ));
        }
    }
    let der = x509::resign(&signer, &certs[0]).map_err(|e| CoreError::bad(e.to_string()))?;
    let pem = x509::cert_pem(&der);
    Ok(Some(Response::json(json!({
        "certificate": pem,
        "issuing_ca": issuer.certificate,
    }))))
}

async fn delete_root(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    issuers::delete_all(&pki, &c).await?;
    let mut r = Response::default();
    r.warnings.push("DELETE /root deletes all keys and issuers; prefer the new DELETE /key/:key_ref and DELETE /issuer/:issuer_ref for finer granularity, unless removal of all keys and issuers is desired.".into());
    Ok(Some(r))
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

const CONFIG_CLUSTER: &str = "config/cluster";

async fn read_cluster(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let v: Option<serde_json::Value> = pki.get(&c, CONFIG_CLUSTER).await?;
    let v = v.unwrap_or_else(|| json!({}));
    Ok(Some(Response::json(json!({
        "path": v.get("path").cloned().unwrap_or(json!("")),
        "aia_path": v.get("aia_path").cloned().unwrap_or(json!("")),
    }))))
}

async fn write_cluster(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let f = &c.fields;
    for k in ["path", "aia_path"] {
        let v = f.str(k);
        if !(v.is_empty() || v.starts_with("http://") || v.starts_with("https://")) {
            return Err(CoreError::bad(format!("invalid URL for {k}: {v}")));
        }
    }
    let v = json!({"path": f.str("path"), "aia_path": f.str("aia_path")});
    pki.put(&c, CONFIG_CLUSTER, &v).await?;
    Ok(Some(Response::json(v)))
}

const CONFIG_ACME: &str = "config/acme";

async fn read_acme(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let stored: Option<serde_json::Value> = pki.get(&c, CONFIG_ACME).await?;
    let mut v = json!({
        "allow_role_ext_key_usage": false,
        "allowed_issuers": ["*"],
        "allowed_roles": ["*"],
        "default_directory_policy": "sign-verbatim",
        "dns_resolver": "",
        "eab_policy": "not-required",
        "enabled": false,
    });
    if let (Some(serde_json::Value::Object(s)), serde_json::Value::Object(m)) = (stored, &mut v) {
        for (k, val) in s {
            m.insert(k, val);
        }
    }
    Ok(Some(Response::json(v)))
}

/// signet does not serve ACME (its users run an agent or cert-manager's Vault issuer); the
/// configuration can be written with ACME disabled so tools that manage it keep working.
async fn write_acme(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let f = &c.fields;
    if f.bool("enabled") {
        return Err(CoreError::bad(
            "ACME is not supported by signet; use the issue/sign API, the signet agent or cert-manager's Vault issuer",
        ));
    }
    let mut m = serde_json::Map::new();
    for k in ["allowed_issuers", "allowed_roles"] {
        if f.is_set(k) {
            m.insert(k.into(), json!(f.strings(k)));
        }
    }
    for k in ["default_directory_policy", "dns_resolver", "eab_policy"] {
        if f.is_set(k) {
            m.insert(k.into(), json!(f.str(k)));
        }
    }
    if f.is_set("allow_role_ext_key_usage") {
        m.insert(
            "allow_role_ext_key_usage".into(),
            json!(f.bool("allow_role_ext_key_usage")),
        );
    }
    pki.put(&c, CONFIG_ACME, &serde_json::Value::Object(m))
        .await?;
    read_acme(pki, c).await
}
