//! Issuer and key management: `LIST issuers`, `issuer/:ref` (read, update, patch, delete),
//! `issuer/:ref/{json,pem,der}`, `config/issuers`, `LIST keys`, `key/:ref` (read, update,
//! delete), `keys/generate/:type`, `keys/import`, `config/keys`. The model is in `issuers.rs`.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use signet_core::framework::{handler, Ctx, Field, PathSpec};
use signet_core::{CoreError, CoreResult, Operation, RawBody, Response};
use signet_crypto::x509::{self, KeyType};
use signet_types::FieldType;

use crate::issuers::{self, IssuerEntry, ALL_USAGES, CONFIG_ISSUERS, CONFIG_KEYS, KEY_PREFIX};
use crate::Pki;

fn issuer_fields(spec: PathSpec<Pki>) -> PathSpec<Pki> {
    spec.field(Field::new(
        "ref",
        FieldType::String,
        "Issuer id, name or default.",
    ))
    .field(Field::new(
        "issuer_name",
        FieldType::String,
        "Name of the issuer.",
    ))
    .field(
        Field::new(
            "leaf_not_after_behavior",
            FieldType::String,
            "err, truncate or permit: what to do with a leaf outliving the issuer.",
        )
        .default(json!("err")),
    )
    .field(
        Field::new(
            "usage",
            FieldType::CommaStringSlice,
            "read-only, issuing-certificates, crl-signing, ocsp-signing.",
        )
        .default(json!(ALL_USAGES.join(","))),
    )
    .field(Field::new(
        "manual_chain",
        FieldType::CommaStringSlice,
        "Issuer references forming this issuer's chain (first is self).",
    ))
    .field(Field::new(
        "revocation_signature_algorithm",
        FieldType::String,
        "Accepted for compatibility.",
    ))
    .field(Field::new(
        "issuing_certificates",
        FieldType::CommaStringSlice,
        "AIA URLs of this issuer.",
    ))
    .field(Field::new(
        "crl_distribution_points",
        FieldType::CommaStringSlice,
        "CRL URLs of this issuer.",
    ))
    .field(Field::new(
        "delta_crl_distribution_points",
        FieldType::CommaStringSlice,
        "Accepted for compatibility.",
    ))
    .field(Field::new(
        "ocsp_servers",
        FieldType::CommaStringSlice,
        "OCSP URLs of this issuer.",
    ))
    .field(Field::new(
        "enable_aia_url_templating",
        FieldType::Bool,
        "Accepted; templates are not expanded.",
    ))
}

pub fn specs() -> Vec<PathSpec<Pki>> {
    let fetch = |p: &'static str, form: &'static str| {
        PathSpec::new(p)
            .field(Field::new(
                "ref",
                FieldType::String,
                "Issuer id, name or default.",
            ))
            .op(
                Operation::Read,
                "Fetch an issuer's certificate.",
                handler(move |s, c| fetch(s, c, form)),
            )
            .help("Fetch an issuer's certificate.", "")
            .unauthenticated()
    };
    let key_gen = |p: &'static str| {
        PathSpec::new(p)
            .field(Field::new(
                "type",
                FieldType::String,
                "internal or exported.",
            ))
            .field(Field::new(
                "key_name",
                FieldType::String,
                "Name of the key.",
            ))
            .field(
                Field::new("key_type", FieldType::String, "rsa, ec or ed25519.")
                    .default(json!("rsa")),
            )
            .field(Field::new("key_bits", FieldType::Int, "Key size."))
            .field(Field::new(
                "managed_key_name",
                FieldType::String,
                "Not supported.",
            ))
            .field(Field::new(
                "managed_key_id",
                FieldType::String,
                "Not supported.",
            ))
            .op(Operation::Update, "Generate a key.", handler(generate_key))
            .help("Generate a key for future issuers.", "")
    };
    vec![
        PathSpec::new("issuers")
            .field(Field::new(
                "after",
                FieldType::String,
                "List after this id.",
            ))
            .field(Field::new("limit", FieldType::Int, "Most ids to return."))
            .op(Operation::List, "List issuers.", handler(list_issuers))
            .help("List the issuers of this mount.", ""),
        fetch("issuer/:ref/json", "json"),
        fetch("issuer/:ref/pem", "pem"),
        fetch("issuer/:ref/der", "der"),
        issuer_fields(PathSpec::new("issuer/:ref"))
            .op(Operation::Read, "Read an issuer.", handler(read_issuer))
            .write_op(
                "Update an issuer (absent fields take their defaults).",
                handler(|s, c| update_issuer(s, c, false)),
            )
            .op(
                Operation::Patch,
                "Change the given fields of an issuer.",
                handler(|s, c| update_issuer(s, c, true)),
            )
            .op(
                Operation::Delete,
                "Delete an issuer (its key stays).",
                handler(delete_issuer),
            )
            .help("Manage an issuer.", ""),
        PathSpec::new("config/issuers")
            .field(Field::new(
                "default",
                FieldType::String,
                "Reference to the default issuer.",
            ))
            .field(Field::new(
                "default_follows_latest_issuer",
                FieldType::Bool,
                "Make every new issuer the default.",
            ))
            .op(
                Operation::Read,
                "Read the default issuer.",
                handler(read_config_issuers),
            )
            .write_op("Set the default issuer.", handler(write_config_issuers))
            .help("The default issuer.", ""),
        PathSpec::new("root/replace")
            .field(Field::new(
                "default",
                FieldType::String,
                "Reference to the new default issuer.",
            ))
            .write_op("Set the default issuer.", handler(write_config_issuers))
            .help("Replace the default issuer.", ""),
        PathSpec::new("keys")
            .field(Field::new(
                "after",
                FieldType::String,
                "List after this id.",
            ))
            .field(Field::new("limit", FieldType::Int, "Most ids to return."))
            .op(Operation::List, "List keys.", handler(list_keys))
            .help("List the keys of this mount.", ""),
        PathSpec::new("key/:ref")
            .field(Field::new(
                "ref",
                FieldType::String,
                "Key id, name or default.",
            ))
            .field(Field::new("key_name", FieldType::String, "New name."))
            .op(
                Operation::Read,
                "Read a key's metadata (never the key).",
                handler(read_key),
            )
            .write_op("Rename a key.", handler(update_key))
            .op(
                Operation::Delete,
                "Delete an unused key.",
                handler(delete_key),
            )
            .help("Manage a key.", ""),
        key_gen("keys/generate/:type"),
        PathSpec::new("keys/import")
            .field(Field::new(
                "pem_bundle",
                FieldType::String,
                "PEM of one private key.",
            ))
            .field(Field::new(
                "key_name",
                FieldType::String,
                "Name of the key.",
            ))
            .op(Operation::Update, "Import a key.", handler(import_key))
            .help("Import a private key.", ""),
        PathSpec::new("config/keys")
            .field(Field::new(
                "default",
                FieldType::String,
                "Reference to the default key.",
            ))
            .op(
                Operation::Read,
                "Read the default key.",
                handler(read_config_keys),
            )
            .write_op("Set the default key.", handler(write_config_keys))
            .help("The default key.", ""),
    ]
}

fn page(ids: Vec<String>, c: &Ctx) -> Vec<String> {
    let after = c.fields.str("after");
    let limit = match c.fields.i64("limit") {
        n if n > 0 => n as usize,
        _ => usize::MAX,
    };
    ids.into_iter()
        .filter(|id| after.is_empty() || id.as_str() > after.as_str())
        .take(limit)
        .collect()
}

async fn list_issuers(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let cfg = issuers::issuers_config(&pki, &c).await?;
    let ids = page(issuers::issuer_ids(&c).await?, &c);
    if ids.is_empty() {
        return Err(CoreError::NotFound);
    }
    let mut info = Map::new();
    for id in &ids {
        if let Some(i) = issuers::find_issuer(&pki, &c, id).await? {
            info.insert(
                id.clone(),
                json!({
                    "issuer_name": i.issuer_name,
                    "is_default": cfg.default == *id,
                    "serial_number": i.serial_number,
                }),
            );
        }
    }
    Ok(Some(Response::json(json!({"keys": ids, "key_info": info}))))
}

pub(crate) fn issuer_json(i: &IssuerEntry) -> Value {
    let mut m = json!({
        "issuer_id": i.issuer_id,
        "issuer_name": i.issuer_name,
        "key_id": i.key_id,
        "certificate": i.certificate,
        "ca_chain": i.ca_chain(),
        "manual_chain": if i.manual_chain.is_empty() { Value::Null } else { json!(i.manual_chain) },
        "leaf_not_after_behavior": i.leaf_not_after_behavior,
        "usage": ALL_USAGES.iter().filter(|u| i.has_usage(u)).copied().collect::<Vec<_>>().join(","),
        "revocation_signature_algorithm": i.revocation_signature_algorithm,
        "revoked": i.revoked,
        "issuing_certificates": i.issuing_certificates,
        "crl_distribution_points": i.crl_distribution_points,
        "delta_crl_distribution_points": [],
        "ocsp_servers": i.ocsp_servers,
    });
    if let Value::Object(m) = &mut m {
        if i.revoked {
            m.insert("revocation_time".into(), json!(i.revocation_time));
            m.insert(
                "revocation_time_rfc3339".into(),
                json!(signet_core::token::rfc3339(i.revocation_time.max(0) as u64)),
            );
        }
        if i.has_own_urls() {
            m.insert(
                "enable_aia_url_templating".into(),
                json!(i.enable_aia_url_templating),
            );
        }
    }
    m
}

async fn read_issuer(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let i = issuers::resolve_issuer(&pki, &c, c.param("ref")).await?;
    Ok(Some(Response::json(issuer_json(&i))))
}

fn check_urls(list: &[String], field: &str) -> CoreResult<()> {
    if let Some(bad) = list.iter().find(|u| {
        !(u.starts_with("http://") || u.starts_with("https://") || u.starts_with("ldap://"))
    }) {
        return Err(CoreError::bad(format!(
            "invalid URL found in Authority Information Access (AIA) parameter {field}: {bad}"
        )));
    }
    Ok(())
}

async fn update_issuer(pki: Arc<Pki>, c: Ctx, patch: bool) -> CoreResult<Option<Response>> {
    let reference = c.param("ref").to_string();
    let mut i = issuers::resolve_issuer(&pki, &c, &reference).await?;
    let f = &c.fields;
    let given = |k: &str| !patch || f.is_set(k);
    let old_name = i.issuer_name.clone();
    if given("issuer_name") {
        let name = f.str("issuer_name");
        issuers::check_name(&name, "issuer")?;
        if !name.is_empty() && name != i.issuer_name {
            let taken = issuers::all_issuers(&pki, &c)
                .await?
                .iter()
                .any(|o| o.issuer_name == name && o.issuer_id != i.issuer_id);
            if taken {
                return Err(CoreError::bad("issuer name already in use"));
            }
        }
        i.issuer_name = name;
    }
    if given("leaf_not_after_behavior") {
        let b = f.str("leaf_not_after_behavior");
        let b = if b.is_empty() { "err".to_string() } else { b };
        if !matches!(b.as_str(), "err" | "truncate" | "permit") {
            return Err(CoreError::bad("Unknown value for field `leaf_not_after_behavior`. Possible values are `err`, `truncate`, and `permit`."));
        }
        i.leaf_not_after_behavior = b;
    }
    if given("usage") {
        let mut usage = f.strings("usage");
        if !f.is_set("usage") {
            usage = ALL_USAGES.iter().map(|s| s.to_string()).collect();
        }
        let usage: Vec<String> = usage
            .iter()
            .map(|u| u.trim().to_lowercase())
            .filter(|u| !u.is_empty())
            .collect();
        if let Some(bad) = usage.iter().find(|u| !ALL_USAGES.contains(&u.as_str())) {
            return Err(CoreError::bad(format!(
                "Unable to parse specified usages: [{bad}] - valid values are {}",
                ALL_USAGES.join(",")
            )));
        }
        if i.revoked && usage.iter().any(|u| u == "issuing-certificates") {
            return Err(CoreError::bad("This issuer was revoked; unable to modify its usage to include certificate signing again. Reissue this certificate (preferably with a new key) and modify that entry instead."));
        }
        i.usage = usage;
    }
    if given("revocation_signature_algorithm") {
        i.revocation_signature_algorithm = f.str("revocation_signature_algorithm");
    }
    for (k, slot) in [
        ("issuing_certificates", &mut i.issuing_certificates),
        ("crl_distribution_points", &mut i.crl_distribution_points),
        ("ocsp_servers", &mut i.ocsp_servers),
    ] {
        if given(k) {
            let v = f.strings(k);
            if !f.bool("enable_aia_url_templating") {
                check_urls(&v, k)?;
            }
            *slot = v;
        }
    }
    if given("enable_aia_url_templating") {
        i.enable_aia_url_templating = f.bool("enable_aia_url_templating");
    }
    if given("manual_chain") {
        let mut chain = Vec::new();
        for (n, r) in f.strings("manual_chain").iter().enumerate() {
            let r = if n == 0 && r == "self" {
                i.issuer_id.clone()
            } else {
                r.clone()
            };
            let id = issuers::resolve_issuer(&pki, &c, &r).await?.issuer_id;
            if n == 0 && id != i.issuer_id {
                return Err(CoreError::bad(format!(
                    "expected first cert in chain to be a self-reference, but was: {r}/{id}"
                )));
            }
            chain.push(id);
        }
        i.manual_chain = chain;
    }
    let saved = issuers::save_issuer(&pki, &c, i).await?;
    let mut r = Response::json(issuer_json(&saved));
    if !old_name.is_empty() && old_name != saved.issuer_name {
        r.warnings.push(format!(
            "issuer name {old_name} is no longer in use; references to it will fail"
        ));
    }
    Ok(Some(r))
}

async fn delete_issuer(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let reference = c.param("ref").to_string();
    // Deleting what does not exist succeeds, as in OpenBao.
    let Some(i) = issuers::find_issuer(&pki, &c, &reference).await? else {
        return Ok(None);
    };
    let was_default = issuers::delete_issuer(&pki, &c, &i.issuer_id).await?;
    if was_default {
        let mut r = Response::default();
        r.warnings.push(format!("Deleted issuer {} (via issuer_ref {reference}); this was configured as the default issuer. Operations without an explicit issuer will not work until a new default is configured.", i.issuer_id));
        return Ok(Some(r));
    }
    Ok(None)
}

async fn fetch(pki: Arc<Pki>, c: Ctx, form: &'static str) -> CoreResult<Option<Response>> {
    let i = issuers::resolve_issuer(&pki, &c, c.param("ref")).await?;
    let raw = |ct: &str, body: Vec<u8>| Response {
        raw: Some(RawBody {
            status: 200,
            content_type: ct.into(),
            body,
        }),
        ..Default::default()
    };
    Ok(Some(match form {
        "der" => raw("application/pkix-cert", i.der()),
        "pem" => raw(
            "application/pem-certificate-chain",
            format!("{}\n", i.certificate).into_bytes(),
        ),
        _ => Response::json(json!({
            "certificate": i.certificate,
            "ca_chain": i.ca_chain(),
            "issuer_id": i.issuer_id,
            "issuer_name": i.issuer_name,
        })),
    }))
}

async fn read_config_issuers(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let cfg = issuers::issuers_config(&pki, &c).await?;
    Ok(Some(Response::json(json!({
        "default": cfg.default,
        "default_follows_latest_issuer": cfg.default_follows_latest_issuer,
    }))))
}

async fn write_config_issuers(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let _guard = pki.lock_issuers(&c).await?;
    let mut cfg = issuers::issuers_config(&pki, &c).await?;
    let f = &c.fields;
    if f.is_set("default") {
        let r = f.str("default");
        if r.is_empty() || r == "default" {
            return Err(CoreError::bad(
                "Invalid issuer specification; must be non-empty and can't be 'default'.",
            ));
        }
        cfg.default = issuers::resolve_issuer(&pki, &c, &r).await?.issuer_id;
    }
    if f.is_set("default_follows_latest_issuer") {
        cfg.default_follows_latest_issuer = f.bool("default_follows_latest_issuer");
    }
    pki.put(&c, CONFIG_ISSUERS, &cfg).await?;
    Ok(Some(Response::json(json!({
        "default": cfg.default,
        "default_follows_latest_issuer": cfg.default_follows_latest_issuer,
    }))))
}

async fn list_keys(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let cfg = issuers::keys_config(&pki, &c).await?;
    let keys = issuers::all_keys(&c).await?;
    let ids = page(keys.iter().map(|k| k.key_id.clone()).collect(), &c);
    if ids.is_empty() {
        return Err(CoreError::NotFound);
    }
    let mut info = Map::new();
    for k in keys.iter().filter(|k| ids.contains(&k.key_id)) {
        info.insert(
            k.key_id.clone(),
            json!({"key_name": k.key_name, "is_default": cfg.default == k.key_id}),
        );
    }
    Ok(Some(Response::json(json!({"keys": ids, "key_info": info}))))
}

fn key_json(k: &issuers::KeyEntry) -> Value {
    use base64::Engine as _;
    let skid = base64::engine::general_purpose::STANDARD
        .decode(&k.spki)
        .ok()
        .and_then(|spki| x509::subject_key_id(&spki).ok())
        .unwrap_or_default();
    json!({
        "key_id": k.key_id,
        "key_name": k.key_name,
        "key_type": k.key_type,
        "subject_key_id": skid,
    })
}

async fn read_key(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let k = issuers::resolve_key(&pki, &c, c.param("ref")).await?;
    Ok(Some(Response::json(key_json(&k))))
}

async fn update_key(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let _guard = pki.lock_issuers(&c).await?;
    let mut k = issuers::resolve_key(&pki, &c, c.param("ref")).await?;
    let name = c.fields.str("key_name");
    issuers::check_name(&name, "key")?;
    if !name.is_empty()
        && issuers::all_keys(&c)
            .await?
            .iter()
            .any(|o| o.key_name == name && o.key_id != k.key_id)
    {
        return Err(CoreError::bad("key name already in use"));
    }
    let old = std::mem::replace(&mut k.key_name, name);
    c.storage
        .put_json(&format!("{KEY_PREFIX}{}", k.key_id), &k)
        .await?;
    let mut r = Response::json(json!({
        "key_id": k.key_id,
        "key_name": k.key_name,
        "key_type": k.key_type,
    }));
    if k.key_name.is_empty() && !old.is_empty() {
        r.warnings.push(format!(
            "Name successfully deleted, you will now need to reference this key by it's Id: {}",
            k.key_id
        ));
    }
    Ok(Some(r))
}

async fn delete_key(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let _guard = pki.lock_issuers(&c).await?;
    let reference = c.param("ref").to_string();
    let Some(k) = issuers::find_key(&pki, &c, &reference).await? else {
        return Ok(None);
    };
    if let Some(user) = issuers::all_issuers(&pki, &c)
        .await?
        .iter()
        .find(|i| i.key_id == k.key_id)
    {
        return Err(CoreError::bad(format!(
            "Failed to Delete Key.  Key in Use by Issuer: {}",
            user.issuer_id
        )));
    }
    let mut cfg = issuers::keys_config(&pki, &c).await?;
    let mut ops = vec![signet_storage::Op::Delete(format!(
        "{KEY_PREFIX}{}",
        k.key_id
    ))];
    let was_default = cfg.default == k.key_id;
    if was_default {
        cfg.default.clear();
        ops.push(signet_storage::Op::Put(
            CONFIG_KEYS.into(),
            serde_json::to_vec(&cfg).map_err(|e| CoreError::Internal(e.to_string()))?,
        ));
    }
    pki.apply(&c, ops).await?;
    if was_default {
        let mut r = Response::default();
        r.warnings.push(format!("Deleted key {} (via key_ref {reference}); this was configured as the default key. Operations without an explicit key will not work until a new default is configured.", k.key_id));
        return Ok(Some(r));
    }
    Ok(None)
}

async fn generate_key(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let kind = c.param("type").to_string();
    if !matches!(kind.as_str(), "internal" | "exported") {
        return Err(CoreError::bad(if kind == "kms" {
            "managed (kms) keys are not supported by signet".to_string()
        } else {
            "Unknown type of key to generate".to_string()
        }));
    }
    let f = &c.fields;
    let kt = KeyType::parse(&f.str("key_type"), f.u64("key_bits"))
        .map_err(|e| CoreError::bad(format!("Validation for key_type, key_bits failed: {e}")))?;
    let key = issuers::new_key(kt, String::new())?;
    let (id, pem) = (key.key_id.clone(), key.private_key.clone());
    let name = f.str("key_name");
    issuers::add(&pki, &c, &[], vec![key], "", &name).await?;
    let mut data = Map::new();
    data.insert("key_id".into(), json!(id));
    data.insert("key_name".into(), json!(name));
    data.insert("key_type".into(), json!(kt.name()));
    if kind == "exported" {
        let k = x509::export_private_key(&pem, false, false)
            .map_err(|e| CoreError::Internal(e.to_string()))?;
        data.insert("private_key".into(), json!(k));
    }
    Ok(Some(Response::data(data)))
}

async fn import_key(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let bundle = c.fields.str("pem_bundle");
    if bundle.trim().len() < 10 {
        return Err(CoreError::bad("provided data for import was too short; perhaps a path was passed to the API rather than the contents of a PEM file"));
    }
    let (certs, key) = x509::split_bundle(&bundle).map_err(|e| CoreError::bad(e.to_string()))?;
    if !certs.is_empty() {
        return Err(CoreError::bad(
            "only private keys can be imported here; use issuers/import/bundle for certificates",
        ));
    }
    let Some(pem) = key else {
        return Err(CoreError::bad("no private key found in pem_bundle"));
    };
    let key = issuers::key_from_pem(&pem, String::new())?;
    let name = c.fields.str("key_name");
    let out = issuers::add(&pki, &c, &[], vec![key], "", &name).await?;
    let id = out
        .imported_keys
        .first()
        .or(out.existing_keys.first())
        .cloned()
        .unwrap_or_default();
    let k = issuers::resolve_key(&pki, &c, &id).await?;
    let mut r = Response::json(json!({
        "key_id": k.key_id,
        "key_name": k.key_name,
        "key_type": k.key_type,
    }));
    if out.imported_keys.is_empty() {
        r.warnings
            .push("Key already imported, use key/ endpoint to update name.".into());
    }
    Ok(Some(r))
}

async fn read_config_keys(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let cfg = issuers::keys_config(&pki, &c).await?;
    Ok(Some(Response::json(json!({"default": cfg.default}))))
}

async fn write_config_keys(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let _guard = pki.lock_issuers(&c).await?;
    let mut cfg = issuers::keys_config(&pki, &c).await?;
    if c.fields.is_set("default") {
        let r = c.fields.str("default");
        if r.is_empty() || r == "default" {
            return Err(CoreError::bad(
                "Invalid key specification; must be non-empty and can't be 'default'.",
            ));
        }
        cfg.default = issuers::resolve_key(&pki, &c, &r).await?.key_id.clone();
    }
    pki.put(&c, CONFIG_KEYS, &cfg).await?;
    Ok(Some(Response::json(json!({"default": cfg.default}))))
}
