//! `issue/:role` (the server generates the key) and `sign/:role` (the caller's CSR): the
//! role's name policy, TTL clamping with OpenBao's warning, 30 s backdating, key usages valid
//! for the key type, and the inventory record.

use std::net::IpAddr;
use std::sync::Arc;

use serde_json::{json, Map};
use signet_core::framework::{handler, Ctx, Field, PathSpec};
use signet_core::token::now_secs;
use signet_core::{CoreError, CoreResult, Operation, Response};
use signet_crypto::x509::{self, CertSpec, KeyType};
use signet_types::{format_go_duration, FieldType};

use crate::issuers::{self, IssuerEntry};
use crate::path_roles::{self, Role};
use crate::storage::{cert_key, index_keys, CertRecord};
use crate::Pki;
use signet_storage::{Op, Storage};

fn common(spec: PathSpec<Pki>) -> PathSpec<Pki> {
    spec.field(Field::new(
        "role",
        FieldType::String,
        "The role to issue against.",
    ))
    .field(Field::new(
        "common_name",
        FieldType::String,
        "Common name of the certificate.",
    ))
    .field(Field::new(
        "alt_names",
        FieldType::CommaStringSlice,
        "DNS and email SANs.",
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
        "other_sans",
        FieldType::CommaStringSlice,
        "otherName SANs: <oid>;UTF8:<value> (allowed_other_sans).",
    ))
    .field(Field::new(
        "ttl",
        FieldType::DurationSecond,
        "Requested lifetime.",
    ))
    .field(Field::new(
        "format",
        FieldType::String,
        "pem (default), der or pem_bundle.",
    ))
    .field(Field::new(
        "private_key_format",
        FieldType::String,
        "Keys are returned as PKCS#8.",
    ))
    .field(Field::new(
        "exclude_cn_from_sans",
        FieldType::Bool,
        "Do not copy the CN into the SANs.",
    ))
    .field(Field::new(
        "remove_roots_from_chain",
        FieldType::Bool,
        "Leave self-signed CAs out of ca_chain.",
    ))
    .field(Field::new(
        "key_type",
        FieldType::String,
        "Key type when the role allows any.",
    ))
    .field(Field::new(
        "key_bits",
        FieldType::Int,
        "Key size when the role allows any.",
    ))
    .field(Field::new(
        "issuer_ref",
        FieldType::String,
        "Accepted for compatibility; the role's issuer_ref or the path's issuer applies.",
    ))
    .field(Field::new(
        "not_after",
        FieldType::String,
        "Explicit expiry (RFC 3339), instead of ttl.",
    ))
    .field(Field::new("ref", FieldType::String, "Issuer reference."))
    .field(Field::new(
        "serial_number",
        FieldType::String,
        "The subject's serialNumber attribute (allowed_serial_numbers).",
    ))
    .field(Field::new(
        "user_ids",
        FieldType::CommaStringSlice,
        "Accepted for compatibility.",
    ))
}

pub fn specs() -> Vec<PathSpec<Pki>> {
    let verbatim = |p: &'static str| {
        common(PathSpec::new(p))
            .field(Field::new(
                "csr",
                FieldType::String,
                "PEM certificate signing request.",
            ))
            .field(Field::new(
                "key_usage",
                FieldType::CommaStringSlice,
                "Key usages to put in the certificate.",
            ))
            .field(Field::new(
                "ext_key_usage",
                FieldType::CommaStringSlice,
                "Extended key usages (ServerAuth, ClientAuth, ...).",
            ))
            .op(
                Operation::Update,
                "Sign a CSR as it is.",
                handler(sign_verbatim),
            )
            .help("Sign a CSR with its own subject and SANs.", "")
    };
    vec![
        verbatim("sign-verbatim/:role"),
        verbatim("sign-verbatim"),
        verbatim("issuer/:ref/sign-verbatim/:role"),
        verbatim("issuer/:ref/sign-verbatim"),
        common(PathSpec::new("issuer/:ref/issue/:role"))
            .op(
                Operation::Update,
                "Issue a certificate and private key with this issuer.",
                handler(|s, c| issue_or_sign(s, c, false)),
            )
            .help(
                "Issue a certificate and key under a role, with a chosen issuer.",
                "",
            ),
        common(PathSpec::new("issuer/:ref/sign/:role"))
            .field(Field::new(
                "csr",
                FieldType::String,
                "PEM certificate signing request.",
            ))
            .op(
                Operation::Update,
                "Sign a certificate signing request with this issuer.",
                handler(|s, c| issue_or_sign(s, c, true)),
            )
            .help("Sign a CSR under a role, with a chosen issuer.", ""),
        common(PathSpec::new("issue/:role"))
            .op(
                Operation::Update,
                "Issue a certificate and private key.",
                handler(|s, c| issue_or_sign(s, c, false)),
            )
            .help("Issue a certificate and key under a role.", ""),
        common(PathSpec::new("sign/:role"))
            .field(Field::new(
                "csr",
                FieldType::String,
                "PEM certificate signing request.",
            ))
            .op(
                Operation::Update,
                "Sign a certificate signing request.",
                handler(|s, c| issue_or_sign(s, c, true)),
            )
            .help("Sign a CSR under a role.", ""),
    ]
}

fn is_hostname(name: &str) -> bool {
    let n = name
        .strip_prefix("*.")
        .unwrap_or(name)
        .trim_end_matches('.');
    !n.is_empty()
        && n.len() <= 253
        && n.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

/// `other_sans` entries: `<oid>;UTF8:<value>` (OpenBao accepts only UTF8 values too).
fn parse_other_sans(list: &[String]) -> CoreResult<Vec<(String, String)>> {
    list.iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            let (oid, rest) = s.split_once(';').ok_or_else(|| {
                CoreError::bad(format!(
                    "error parsing other_sans: expected <oid>;UTF8:<value>, got {s:?}"
                ))
            })?;
            let value = rest
                .strip_prefix("UTF8:")
                .or_else(|| rest.strip_prefix("UTF-8:"))
                .or_else(|| rest.strip_prefix("utf8:"))
                .ok_or_else(|| {
                    CoreError::bad(format!(
                        "error parsing other_sans: only UTF8 values are supported, got {s:?}"
                    ))
                })?;
            if !x509::is_oid(oid) {
                return Err(CoreError::bad(format!(
                    "error parsing other_sans: {oid:?} is not a valid OID"
                )));
            }
            Ok((oid.trim().to_string(), value.to_string()))
        })
        .collect()
}

fn glob(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((pre, post)) => {
            value.len() >= pre.len() + post.len() && value.starts_with(pre) && value.ends_with(post)
        }
    }
}

/// Whether `name` (a CN or DNS SAN) is allowed by the role; the reason when not.
fn name_allowed(role: &Role, name: &str) -> bool {
    if role.allow_any_name {
        return !role.enforce_hostnames || is_hostname(name) || name.contains('@');
    }
    if role.enforce_hostnames && !name.contains('@') && !is_hostname(name) {
        return false;
    }
    if role.allow_localhost
        && (name == "localhost" || name == "localdomain" || name.ends_with(".localhost"))
    {
        return true;
    }
    let (wild, base) = match name.strip_prefix("*.") {
        Some(b) => (true, b),
        None => (false, name),
    };
    if wild && !role.allow_wildcard_certificates {
        return false;
    }
    let base = base.rsplit_once('@').map(|(_, d)| d).unwrap_or(base);
    role.allowed_domains.iter().any(|d| {
        let d = d.trim_start_matches("*.").trim_start_matches('.');
        (role.allow_bare_domains && !wild && base == d)
            || (role.allow_subdomains && (base.ends_with(&format!(".{d}")) || (wild && base == d)))
            || (role.allow_glob_domains && d.contains('*') && glob(d, base))
    })
}

/// `sign-verbatim[/:role]`: the CSR's subject and SANs as they are; the role (when named)
/// only bounds the lifetime. The requested key usages replace the role's.
async fn sign_verbatim(s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let base = match c.param("role") {
        "" => Role::default(),
        name => path_roles::load(&s, &c, name)
            .await?
            .ok_or_else(|| CoreError::bad(format!("unknown role: {name}")))?,
    };
    let mut role = Role {
        ttl: base.ttl,
        max_ttl: base.max_ttl,
        not_before_duration: base.not_before_duration,
        allow_any_name: true,
        enforce_hostnames: false,
        allow_ip_sans: true,
        allowed_uri_sans: vec!["*".into()],
        key_type: "any".into(),
        require_cn: false,
        use_csr_common_name: true,
        use_csr_sans: true,
        no_store: base.no_store,
        ..Role::default()
    };
    if c.fields.is_set("key_usage") {
        role.key_usage = c.fields.strings("key_usage");
    }
    if c.fields.is_set("ext_key_usage") {
        let eku: Vec<String> = c
            .fields
            .strings("ext_key_usage")
            .iter()
            .map(|e| e.to_lowercase())
            .collect();
        role.server_flag = eku.iter().any(|e| e == "serverauth");
        role.client_flag = eku.iter().any(|e| e == "clientauth");
        role.code_signing_flag = eku.iter().any(|e| e == "codesigning");
        role.email_protection_flag = eku.iter().any(|e| e == "emailprotection");
    }
    issue_with(s, c, true, role, String::new()).await
}

async fn issue_or_sign(s: Arc<Pki>, c: Ctx, sign: bool) -> CoreResult<Option<Response>> {
    let role_name = c.param("role").to_string();
    let role = path_roles::load(&s, &c, &role_name)
        .await?
        .ok_or_else(|| CoreError::bad(format!("unknown role: {role_name}")))?;
    issue_with(s, c, sign, role, role_name).await
}

async fn issue_with(
    pki: Arc<Pki>,
    c: Ctx,
    sign: bool,
    role: Role,
    role_name: String,
) -> CoreResult<Option<Response>> {
    let issuer_ref = match c.param("ref") {
        "" => role.issuer_ref.clone(),
        r => r.to_string(),
    };
    let issuer = issuers::resolve_issuer(&pki, &c, &issuer_ref).await?;
    issuer.require_usage("issuing-certificates")?;
    let f = &c.fields;
    let mut warnings = Vec::new();
    check_formats(f)?;
    let other_sans = parse_other_sans(&f.strings("other_sans"))?;
    for (oid, value) in &other_sans {
        let full = format!("{oid};UTF8:{value}");
        if !role
            .allowed_other_sans
            .iter()
            .any(|p| p == "*" || glob(p, &full))
        {
            return Err(CoreError::bad(format!(
                "requested other SAN does not match any allowed other SAN: {full}"
            )));
        }
    }
    let subject_serial = f.str("serial_number");
    if !subject_serial.is_empty()
        && !role
            .allowed_serial_numbers
            .iter()
            .any(|p| p == "*" || glob(p, &subject_serial))
    {
        return Err(CoreError::bad(format!(
            "serial_number {subject_serial} not allowed by this role"
        )));
    }

    // Names: from the request, or (sign) from the CSR as the role decides.
    let mut cn = f.str("common_name");
    let mut dns: Vec<String> = Vec::new();
    let mut emails: Vec<String> = Vec::new();
    for n in f.strings("alt_names") {
        if n.contains('@') {
            emails.push(n);
        } else {
            dns.push(n);
        }
    }
    let mut ips: Vec<IpAddr> = f
        .strings("ip_sans")
        .iter()
        .map(|s| {
            s.trim()
                .parse()
                .map_err(|_| CoreError::bad(format!("the value {s:?} is not a valid IP address")))
        })
        .collect::<CoreResult<_>>()?;
    let mut uris = f.strings("uri_sans");
    let (spki, kt, private_key) = if sign {
        let csr = x509::parse_csr(&f.str("csr")).map_err(|e| CoreError::bad(e.to_string()))?;
        if role.use_csr_common_name {
            if !cn.is_empty() && cn != csr.common_name {
                warnings.push("the common_name given in the request was ignored: the role uses the CSR's common name".to_string());
            }
            cn = csr.common_name.clone();
        }
        if role.use_csr_sans {
            dns = csr.dns.clone();
            emails = csr.emails.clone();
            ips = csr.ips.clone();
            uris = csr.uris.clone();
        }
        if role.key_type != "any" && role.key_type != csr.key_type.name() {
            return Err(CoreError::bad(format!(
                "role requires keys of type {}, but the CSR has a key of type {}",
                role.key_type,
                csr.key_type.name()
            )));
        }
        (csr.spki_der, csr.key_type, None)
    } else {
        let (kind, bits) = if role.key_type == "any" {
            if !f.is_set("key_type") || f.str("key_type") == "any" {
                return Err(CoreError::bad(
                    "role key type \"any\" not allowed for issuing certificates, only signing",
                ));
            }
            (f.str("key_type"), f.u64("key_bits"))
        } else {
            (role.key_type.clone(), role.key_bits)
        };
        let kt = KeyType::parse(&kind, bits).map_err(|e| CoreError::bad(e.to_string()))?;
        // RSA keys come from the background-filled pool; when it is empty the key is made on
        // a blocking thread, never on the request's async worker.
        let key = match signet_crypto::keypool::global().try_take(kt) {
            Some(k) => k,
            None if matches!(kt, KeyType::Rsa(_)) => {
                tokio::task::spawn_blocking(move || x509::generate_key(kt))
                    .await
                    .map_err(|e| CoreError::Internal(e.to_string()))?
            }
            None => x509::generate_key(kt),
        }
        .map_err(|e| CoreError::Internal(e.to_string()))?;
        let spki = signet_crypto::x509::spki_of(&key);
        (spki, kt, Some(key.serialize_pem()))
    };
    if cn.is_empty() && role.require_cn {
        return Err(CoreError::bad("the common_name field is required, or must be provided in a CSR with \"use_csr_common_name\" set to true, unless \"require_cn\" is set to false"));
    }
    let cn_checked = !role.cn_validations.iter().any(|v| v == "disabled");
    if cn_checked && !cn.is_empty() {
        let as_email = role.cn_validations.iter().any(|v| v == "email") && cn.contains('@');
        let as_host = role.cn_validations.iter().any(|v| v == "hostname") && !cn.contains('@');
        if !(as_email || as_host) || !name_allowed(&role, &cn) {
            return Err(CoreError::bad(format!(
                "common name {cn} not allowed by this role"
            )));
        }
    }
    for d in dns.iter().chain(emails.iter()) {
        if !name_allowed(&role, d) {
            return Err(CoreError::bad(format!(
                "subject alternate name {d} not allowed by this role"
            )));
        }
    }
    if !ips.is_empty() && !role.allow_ip_sans {
        return Err(CoreError::bad(format!(
            "IP Subject Alternative Names are not allowed in this role, but was provided {}",
            ips.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if !role.allowed_ip_sans_cidr.is_empty() {
        if let Some(bad) = ips.iter().find(|ip| {
            !role
                .allowed_ip_sans_cidr
                .iter()
                .any(|c| signet_core::token::cidr_contains(c, **ip))
        }) {
            return Err(CoreError::bad(format!(
                "IP Subject Alternative Name {bad} is not within the allowed CIDRs of this role"
            )));
        }
    }
    if !uris.is_empty()
        && !uris
            .iter()
            .all(|u| role.allowed_uri_sans.iter().any(|p| glob(p, u)))
    {
        return Err(CoreError::bad("URI Subject Alternative Names were provided via the API which are not valid for this role"));
    }
    let exclude_cn = f.bool("exclude_cn_from_sans") || !cn_checked && !is_hostname(&cn);
    if !cn.is_empty() && !exclude_cn {
        if cn.contains('@') {
            if !emails.contains(&cn) {
                emails.insert(0, cn.clone());
            }
        } else if !dns.contains(&cn) {
            dns.insert(0, cn.clone());
        }
    }

    // Lifetime.
    let max_ttl = if role.max_ttl > 0 {
        role.max_ttl
    } else {
        c.mount.max_lease_ttl
    };
    let mut ttl = if f.u64("ttl") > 0 {
        f.u64("ttl")
    } else if role.ttl > 0 {
        role.ttl
    } else {
        c.mount.default_lease_ttl
    };
    if ttl > max_ttl {
        warnings.push(format!(
            "TTL \"{}\" is longer than permitted maxTTL \"{}\", so maxTTL is being used",
            format_go_duration(ttl),
            format_go_duration(max_ttl)
        ));
        ttl = max_ttl;
    }
    let now = now_secs() as i64;
    let not_after = match f.str("not_after") {
        s if !s.is_empty() => crate::path_root::parse_not_after(&s)?,
        _ if !role.not_after.is_empty() => crate::path_root::parse_not_after(&role.not_after)?,
        _ => now + ttl as i64,
    };
    let not_after = leaf_not_after(&issuer, not_after, now)?;
    let (usages, dropped) = x509::filter_key_usages(kt, &role.key_usage);
    if !dropped.is_empty() {
        warnings.push(format!(
            "key usages {} are not valid for a {} key and were left out of the certificate",
            dropped.join(", "),
            kt.name()
        ));
    }
    let urls = crate::path_root::issuer_urls(&pki, &c, &issuer).await?;
    let serial = x509::random_serial().map_err(|e| CoreError::Internal(e.to_string()))?;
    let spec = CertSpec {
        common_name: cn.clone(),
        organization: role.organization.clone(),
        ou: role.ou.clone(),
        country: role.country.clone(),
        locality: role.locality.clone(),
        province: role.province.clone(),
        dns,
        emails,
        ips,
        uris,
        not_before: now - role.not_before_duration as i64,
        not_after,
        serial,
        is_ca: false,
        max_path_length: -1,
        key_usages: usages,
        server_auth: role.server_flag,
        client_auth: role.client_flag,
        code_signing: role.code_signing_flag,
        email_protection: role.email_protection_flag,
        issuing_certificates: urls.issuing_certificates,
        crl_distribution_points: urls.crl_distribution_points,
        ocsp_servers: urls.ocsp_servers,
        permitted_dns_domains: vec![],
        extra_ekus: role
            .ext_key_usage
            .iter()
            .filter_map(|n| x509::ext_key_usage_oid(n).map(String::from))
            .chain(role.ext_key_usage_oids.iter().cloned())
            .collect(),
        policy_identifiers: role.policy_identifiers.clone(),
        other_sans,
        street_address: role.street_address.clone(),
        postal_code: role.postal_code.clone(),
        subject_serial_number: subject_serial,
        leaf_basic_constraints: role.basic_constraints_valid_for_non_ca,
    };
    let signer = issuers::signer(&pki, &c, &issuer).await?;
    let der = signer
        .sign_with_bits(&spec, &spki, role.signature_bits as u32)
        .map_err(|e| CoreError::bad(e.to_string()))?;
    let info = x509::cert_info(&der).map_err(|e| CoreError::Internal(e.to_string()))?;
    let pem = x509::cert_pem(&der);
    if !role.no_store {
        let mut names = info.dns.clone();
        if !cn.is_empty() && !names.contains(&cn) {
            names.insert(0, cn.clone());
        }
        let rec = CertRecord {
            certificate: pem.clone(),
            role: role_name.clone(),
            requester: c
                .meta
                .token
                .as_ref()
                .map(|t| t.accessor.clone())
                .unwrap_or_default(),
            issued_at: now,
            common_name: cn.clone(),
            not_after: info.not_after,
            revoked_at: 0,
            names,
            issuer_id: issuer.issuer_id.clone(),
        };
        store_record(&c, &info.serial, &rec).await?;
    }
    let mut chain = issuer.ca_chain();
    if f.bool("remove_roots_from_chain") {
        chain.retain(|p| {
            x509::cert_info(&crate::pem_der(p))
                .map(|i| !i.self_signed)
                .unwrap_or(true)
        });
    }
    let mut data = Map::new();
    let format = f.str("format");
    let der = format == "der";
    let pkcs8 = f.str("private_key_format") == "pkcs8";
    let private_key = match &private_key {
        Some(k) => Some(
            x509::export_private_key(k, pkcs8, der)
                .map_err(|e| CoreError::Internal(e.to_string()))?,
        ),
        None => None,
    };
    let b64 = |p: &str| {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(crate::pem_der(p))
    };
    let certificate = match format.as_str() {
        // OpenBao's bundle: the key, the certificate, then the chain.
        "pem_bundle" => private_key
            .iter()
            .cloned()
            .chain(std::iter::once(pem.clone()))
            .chain(chain.iter().cloned())
            .collect::<Vec<_>>()
            .join("\n"),
        "der" => b64(&pem),
        _ => pem.clone(),
    };
    let (issuing_ca, chain) = if der {
        (
            b64(&issuer.certificate),
            chain.iter().map(|p| b64(p)).collect(),
        )
    } else {
        (issuer.certificate.clone(), chain)
    };
    data.insert("certificate".into(), json!(certificate));
    data.insert("issuing_ca".into(), json!(issuing_ca));
    data.insert("ca_chain".into(), json!(chain));
    data.insert("serial_number".into(), json!(info.serial));
    data.insert("expiration".into(), json!(info.not_after));
    data.insert("not_before".into(), json!(info.not_before));
    if let Some(k) = private_key {
        data.insert("private_key".into(), json!(k));
        data.insert("private_key_type".into(), json!(kt.name()));
    }
    let mut r = Response::data(data);
    r.warnings = warnings;
    Ok(Some(r))
}

/// Applies the issuer's `leaf_not_after_behavior` to a leaf's notAfter.
pub(crate) fn leaf_not_after(issuer: &IssuerEntry, not_after: i64, now: i64) -> CoreResult<i64> {
    if not_after <= issuer.not_after {
        return Ok(not_after);
    }
    match issuer.leaf_not_after_behavior.as_str() {
        "permit" => Ok(not_after),
        "truncate" if issuer.not_after > now => Ok(issuer.not_after),
        "truncate" => Err(CoreError::bad(format!(
            "cannot satisfy request, as NotAfter date {} is in the past",
            signet_core::token::rfc3339(issuer.not_after.max(0) as u64)
        ))),
        _ => Err(CoreError::bad(format!(
            "cannot satisfy request, as TTL would result in notAfter of {} that is beyond the expiration of the CA certificate at {}",
            signet_core::token::rfc3339(not_after.max(0) as u64),
            signet_core::token::rfc3339(issuer.not_after.max(0) as u64)
        ))),
    }
}

/// Records a CA certificate this mount generated or signed in the inventory (so it can be
/// listed, fetched by serial and revoked), as OpenBao does.
pub(crate) async fn store_ca_cert(
    c: &Ctx,
    pem: &str,
    info: &x509::CertInfo,
    issuer_id: &str,
) -> CoreResult<()> {
    let rec = CertRecord {
        certificate: pem.to_string(),
        role: String::new(),
        requester: c
            .meta
            .token
            .as_ref()
            .map(|t| t.accessor.clone())
            .unwrap_or_default(),
        issued_at: now_secs() as i64,
        common_name: info.common_name.clone(),
        not_after: info.not_after,
        revoked_at: 0,
        names: vec![],
        issuer_id: issuer_id.to_string(),
    };
    store_record(c, &info.serial, &rec).await
}

/// Writes an inventory record and its index entries in one batch.
async fn store_record(c: &Ctx, serial: &str, rec: &CertRecord) -> CoreResult<()> {
    let mut ops = vec![Op::Put(
        cert_key(serial),
        serde_json::to_vec(rec).map_err(|e| CoreError::Internal(e.to_string()))?,
    )];
    for k in index_keys(serial, &rec.names, &rec.role, rec.not_after, rec.issued_at) {
        ops.push(Op::Put(k, Vec::new()));
    }
    c.storage.apply(ops).await?;
    Ok(())
}

/// `format` and `private_key_format` as OpenBao accepts them.
pub(crate) fn check_formats(f: &signet_core::framework::FieldData) -> CoreResult<()> {
    if !matches!(f.str("format").as_str(), "" | "pem" | "der" | "pem_bundle") {
        return Err(CoreError::bad(format!(
            "unknown format for GET request: {}",
            f.str("format")
        )));
    }
    if !matches!(
        f.str("private_key_format").as_str(),
        "" | "der" | "pem" | "pkcs8"
    ) {
        return Err(CoreError::bad(format!(
            "unknown private key format: {}",
            f.str("private_key_format")
        )));
    }
    Ok(())
}
