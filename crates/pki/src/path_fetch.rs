//! Unauthenticated fetching: `ca`, `ca/pem`, `ca_chain`, `cert/ca`, `cert/ca_chain`,
//! `cert/:serial` (+ `/raw`, `/raw/pem`), and the authenticated `LIST certs`.

use std::sync::Arc;

use serde_json::json;
use signet_core::framework::{handler, Ctx, Field, PathSpec};
use signet_core::{CoreError, CoreResult, Operation, RawBody, Response};
use signet_storage::Storage;
use signet_types::FieldType;

use crate::issuers;
use crate::storage::{cert_key, CertRecord, RevokedEntry, CERTS_PREFIX, REVOKED_PREFIX};
use crate::Pki;

#[derive(Clone, Copy)]
enum Form {
    Der,
    Pem,
    Json,
}

pub fn specs() -> Vec<PathSpec<Pki>> {
    let fetch = |pattern: &'static str, what: &'static str, form: Form, chain: bool| {
        PathSpec::new(pattern)
            .op(
                Operation::Read,
                what,
                handler(move |s, c| fetch_ca(s, c, form, chain)),
            )
            .help(what, "")
            .unauthenticated()
    };
    vec![
        fetch("ca", "Fetch the CA certificate (DER).", Form::Der, false),
        fetch(
            "ca/pem",
            "Fetch the CA certificate (PEM).",
            Form::Pem,
            false,
        ),
        fetch("ca_chain", "Fetch the CA chain (PEM).", Form::Pem, true),
        fetch("cert/ca_chain", "Fetch the CA chain.", Form::Json, true),
        fetch("cert/ca", "Fetch the CA certificate.", Form::Json, false),
        PathSpec::new("cert/:serial/raw/pem")
            .field(Field::new(
                "serial",
                FieldType::String,
                "Serial number (hex, colon- or hyphen-separated).",
            ))
            .op(
                Operation::Read,
                "Fetch a certificate (PEM).",
                handler(|s, c| fetch_cert(s, c, Form::Pem)),
            )
            .help("Fetch a certificate by serial number.", "")
            .unauthenticated(),
        PathSpec::new("cert/:serial/raw")
            .field(Field::new("serial", FieldType::String, "Serial number."))
            .op(
                Operation::Read,
                "Fetch a certificate (DER).",
                handler(|s, c| fetch_cert(s, c, Form::Der)),
            )
            .help("Fetch a certificate by serial number.", "")
            .unauthenticated(),
        PathSpec::new("cert/:serial")
            .field(Field::new("serial", FieldType::String, "Serial number."))
            .op(
                Operation::Read,
                "Fetch a certificate.",
                handler(|s, c| fetch_cert(s, c, Form::Json)),
            )
            .help("Fetch a certificate by serial number.", "")
            .unauthenticated(),
        PathSpec::new("certs/detailed")
            .field(Field::new(
                "after",
                FieldType::String,
                "List serials after this one.",
            ))
            .field(Field::new(
                "limit",
                FieldType::Int,
                "Most serials to return.",
            ))
            .op(
                Operation::List,
                "List stored certificates with their details.",
                handler(list_detailed),
            )
            .help(
                "List stored certificates with common name, role, requester and validity.",
                "",
            ),
        PathSpec::new("certs")
            .field(Field::new(
                "after",
                FieldType::String,
                "List serials after this one.",
            ))
            .field(Field::new(
                "limit",
                FieldType::Int,
                "Most serials to return.",
            ))
            .op(
                Operation::List,
                "List stored certificates' serial numbers.",
                handler(list_certs),
            )
            .help("List the serial numbers of stored certificates.", ""),
    ]
}

fn raw(content_type: &str, body: Vec<u8>) -> Option<Response> {
    Some(Response {
        raw: Some(RawBody {
            status: 200,
            content_type: content_type.into(),
            body,
        }),
        ..Default::default()
    })
}

async fn fetch_ca(pki: Arc<Pki>, c: Ctx, form: Form, chain: bool) -> CoreResult<Option<Response>> {
    let issuer = issuers::find_issuer(&pki, &c, "default").await?;
    let Some(issuer) = issuer else {
        return match form {
            Form::Json => Err(CoreError::bad("no default issuer currently configured")),
            _ => Ok(raw("application/pkix-cert", vec![])),
        };
    };
    let pems = if chain {
        issuer.ca_chain()
    } else {
        vec![issuer.certificate.clone()]
    };
    Ok(match form {
        Form::Der => raw("application/pkix-cert", crate::pem_der(&issuer.certificate)),
        Form::Pem => raw(
            "application/pem-certificate-chain",
            format!("{}\n", pems.join("\n")).into_bytes(),
        ),
        Form::Json => Some(Response::json(json!({
            "certificate": pems.join("\n"),
            "revocation_time": 0,
            "revocation_time_rfc3339": "",
            "issuer_id": issuer.issuer_id,
            "ca_chain": pems,
        }))),
    })
}

async fn fetch_cert(s: Arc<Pki>, c: Ctx, form: Form) -> CoreResult<Option<Response>> {
    let serial = c.param("serial").to_string();
    if serial == "ca" || serial == "ca_chain" {
        return fetch_ca(s, c, form, serial == "ca_chain").await;
    }
    let rec: Option<CertRecord> = c.storage.get_json(&cert_key(&serial)).await?;
    let Some(rec) = rec else {
        return Err(CoreError::NotFound);
    };
    Ok(match form {
        Form::Der => raw("application/pkix-cert", crate::pem_der(&rec.certificate)),
        Form::Pem => raw(
            "application/pem-certificate-chain",
            format!("{}\n", rec.certificate).into_bytes(),
        ),
        Form::Json => {
            let revoked: Option<RevokedEntry> = c
                .storage
                .get_json(&format!(
                    "{REVOKED_PREFIX}{}",
                    serial.to_lowercase().replace(':', "-")
                ))
                .await?;
            let (at, at_text) = match revoked {
                Some(r) if r.revoked_at > 0 => (
                    r.revoked_at,
                    signet_core::token::rfc3339(r.revoked_at as u64),
                ),
                _ => (0, String::new()),
            };
            Some(Response::json(json!({
                "certificate": rec.certificate,
                "revocation_time": at,
                "revocation_time_rfc3339": at_text,
            })))
        }
    })
}

async fn list_detailed(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let after = c.fields.str("after").to_lowercase().replace(':', "-");
    let limit = match c.fields.i64("limit") {
        n if n > 0 => n as usize,
        _ => usize::MAX,
    };
    let keys = c.storage.list_page(CERTS_PREFIX, &after, limit).await?;
    if keys.is_empty() {
        return Err(CoreError::NotFound);
    }
    let mut info = serde_json::Map::new();
    let mut serials = Vec::with_capacity(keys.len());
    for k in keys {
        let serial = k.replace('-', ":");
        let rec: Option<CertRecord> = c.storage.get_json(&format!("{CERTS_PREFIX}{k}")).await?;
        if let Some(r) = rec {
            info.insert(
                serial.clone(),
                json!({
                    "common_name": r.common_name,
                    "role": r.role,
                    "requester_accessor": r.requester,
                    "issued_at": r.issued_at,
                    "not_after": r.not_after,
                    "revoked": r.revoked_at > 0,
                }),
            );
        }
        serials.push(serial);
    }
    Ok(Some(Response::json(
        json!({"keys": serials, "key_info": info}),
    )))
}

async fn list_certs(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let after = c.fields.str("after").to_lowercase().replace(':', "-");
    let limit = match c.fields.i64("limit") {
        n if n > 0 => n as usize,
        _ => usize::MAX,
    };
    let keys = c.storage.list_page(CERTS_PREFIX, &after, limit).await?;
    if keys.is_empty() {
        return Err(CoreError::NotFound);
    }
    Ok(Some(Response::list(
        keys.into_iter().map(|k| k.replace('-', ":")).collect(),
    )))
}
