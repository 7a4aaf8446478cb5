//! `LIST issuers`, `issuer/:ref` (read), `issuer/:ref/{json,pem,der}`, `config/issuers`,
//! `LIST keys`, `key/:ref`. One issuer per mount today, so `:ref` is its id, its name or
//! `default`.

use std::sync::Arc;

use serde_json::json;
use signet_core::framework::{handler, Ctx, Field, PathSpec};
use signet_core::{CoreError, CoreResult, Operation, RawBody, Response};
use signet_types::FieldType;

use crate::storage::{IssuerEntry, ISSUER};
use crate::Pki;

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
    vec![
        PathSpec::new("issuers")
            .op(Operation::List, "List issuers.", handler(list_issuers))
            .help("List the issuers of this mount.", ""),
        fetch("issuer/:ref/json", "json"),
        fetch("issuer/:ref/pem", "pem"),
        fetch("issuer/:ref/der", "der"),
        PathSpec::new("issuer/:ref")
            .field(Field::new(
                "ref",
                FieldType::String,
                "Issuer id, name or default.",
            ))
            .op(Operation::Read, "Read an issuer.", handler(read_issuer))
            .help("Read an issuer's configuration.", ""),
        PathSpec::new("config/issuers")
            .op(
                Operation::Read,
                "Read the default issuer.",
                handler(config_issuers),
            )
            .help("The default issuer.", ""),
        PathSpec::new("keys")
            .op(Operation::List, "List keys.", handler(list_keys))
            .help("List the keys of this mount.", ""),
        PathSpec::new("key/:ref")
            .field(Field::new(
                "ref",
                FieldType::String,
                "Key id, name or default.",
            ))
            .op(
                Operation::Read,
                "Read a key's metadata (never the key).",
                handler(read_key),
            )
            .help("Read a key's metadata.", ""),
    ]
}

async fn resolve(c: &Ctx) -> CoreResult<IssuerEntry> {
    let issuer: Option<IssuerEntry> = c.storage.get_json(ISSUER).await?;
    let r = c.param("ref");
    match issuer {
        Some(i)
            if r.is_empty()
                || r == "default"
                || r == i.issuer_id
                || (!i.issuer_name.is_empty() && r == i.issuer_name) =>
        {
            Ok(i)
        }
        Some(_) => Err(CoreError::bad(format!(
            "unable to find PKI issuer for reference: {r}"
        ))),
        None => Err(CoreError::bad("no default issuer currently configured")),
    }
}

async fn list_issuers(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let issuer: Option<IssuerEntry> = c.storage.get_json(ISSUER).await?;
    let Some(i) = issuer else {
        return Err(CoreError::NotFound);
    };
    Ok(Some(Response::json(json!({
        "keys": [i.issuer_id],
        "key_info": {i.issuer_id.clone(): {"issuer_name": i.issuer_name, "is_default": true, "serial_number": i.serial_number}},
    }))))
}

fn issuer_json(i: &IssuerEntry) -> serde_json::Value {
    let mut chain = vec![i.certificate.clone()];
    chain.extend(i.chain.iter().cloned());
    json!({
        "issuer_id": i.issuer_id,
        "issuer_name": i.issuer_name,
        "key_id": i.key_id,
        "certificate": i.certificate,
        "ca_chain": chain,
        "serial_number": i.serial_number,
        "leaf_not_after_behavior": "err",
        "usage": "crl-signing,issuing-certificates,ocsp-signing,read-only",
        "manual_chain": null,
        "revoked": false,
    })
}

async fn read_issuer(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let i = resolve(&c).await?;
    Ok(Some(Response::json(issuer_json(&i))))
}

async fn fetch(_s: Arc<Pki>, c: Ctx, form: &'static str) -> CoreResult<Option<Response>> {
    let i = resolve(&c).await?;
    let raw = |ct: &str, body: Vec<u8>| Response {
        raw: Some(RawBody {
            status: 200,
            content_type: ct.into(),
            body,
        }),
        ..Default::default()
    };
    Ok(Some(match form {
        "der" => raw("application/pkix-cert", crate::pem_der(&i.certificate)),
        "pem" => raw(
            "application/pem-certificate-chain",
            format!("{}\n", i.certificate).into_bytes(),
        ),
        _ => {
            let mut chain = vec![i.certificate.clone()];
            chain.extend(i.chain.iter().cloned());
            Response::json(
                json!({"certificate": i.certificate, "ca_chain": chain, "issuer_id": i.issuer_id, "issuer_name": i.issuer_name}),
            )
        }
    }))
}

async fn config_issuers(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let issuer: Option<IssuerEntry> = c.storage.get_json(ISSUER).await?;
    Ok(Some(Response::json(json!({
        "default": issuer.map(|i| i.issuer_id.clone()).unwrap_or_default(),
        "default_follows_latest_issuer": false,
    }))))
}

async fn list_keys(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let issuer: Option<IssuerEntry> = c.storage.get_json(ISSUER).await?;
    let Some(i) = issuer else {
        return Err(CoreError::NotFound);
    };
    Ok(Some(Response::json(
        json!({"keys": [i.key_id], "key_info": {i.key_id.clone(): {"key_name": i.key_name}}}),
    )))
}

async fn read_key(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let issuer: Option<IssuerEntry> = c.storage.get_json(ISSUER).await?;
    let r = c.param("ref");
    match issuer {
        Some(i)
            if r == "default" || r == i.key_id || (!i.key_name.is_empty() && r == i.key_name) =>
        {
            let kt = signet_crypto::x509::load_key(&i.private_key)
                .map(|(_, kt)| kt)
                .map_err(|e| CoreError::Internal(e.to_string()))?;
            Ok(Some(Response::json(
                json!({"key_id": i.key_id, "key_name": i.key_name, "key_type": kt.name()}),
            )))
        }
        _ => Err(CoreError::bad(format!(
            "unable to find PKI key for reference: {r}"
        ))),
    }
}
