//! The OCSP responder (RFC 6960): `GET ocsp/:request` (base64, URL-encoded) and `POST ocsp`
//! (`application/ocsp-request`), no token needed. Answers come from the inventory and the
//! revocation index, signed by the issuer, valid for `config/crl`'s `ocsp_expiry` (12h by default), with the request's
//! nonce echoed. Requests about another issuer's certificates are answered "unknown".

use std::sync::Arc;

use base64::Engine as _;
use signet_core::framework::{handler, Ctx, Field, PathSpec};
use signet_core::token::now_secs;
use signet_core::{CoreResult, Operation, RawBody, Response};
use signet_crypto::ocsp::{self, Status};
use signet_crypto::x509;
use signet_types::FieldType;

use crate::issuers;
use crate::storage::{cert_key, CertRecord, RevokedEntry, REVOKED_PREFIX};
use crate::Pki;

pub fn specs() -> Vec<PathSpec<Pki>> {
    vec![
        PathSpec::new("ocsp")
            .op(
                Operation::Update,
                "Answer an OCSP request (application/ocsp-request body).",
                handler(post),
            )
            .help("The OCSP responder.", "")
            .unauthenticated(),
        PathSpec::new("ocsp/*req")
            .field(Field::new(
                "req",
                FieldType::String,
                "Base64 of the DER OCSP request.",
            ))
            .op(
                Operation::Read,
                "Answer an OCSP request given in the URL.",
                handler(get),
            )
            .help("The OCSP responder.", "")
            .unauthenticated(),
    ]
}

fn reply(body: Vec<u8>) -> Option<Response> {
    Some(Response {
        raw: Some(RawBody {
            status: 200,
            content_type: "application/ocsp-response".into(),
            body,
        }),
        ..Default::default()
    })
}

async fn post(s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let body = c
        .meta
        .raw_body
        .clone()
        .map(|b| b.to_vec())
        .unwrap_or_default();
    answer(s, &c, &body).await
}

async fn get(s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let b64 = c.param("req").to_string();
    match base64::engine::general_purpose::STANDARD.decode(b64.trim()) {
        Ok(der) => answer(s, &c, &der).await,
        Err(_) => Ok(reply(ocsp::error_response(1))),
    }
}

async fn answer(pki: Arc<Pki>, c: &Ctx, der: &[u8]) -> CoreResult<Option<Response>> {
    let cfg = crate::path_config_crl::crl_config(c).await?;
    if cfg.ocsp_disable {
        return Ok(reply(ocsp::error_response(6)));
    }
    let Ok(req) = ocsp::parse_request(der) else {
        return Ok(reply(ocsp::error_response(1)));
    };
    // The responder is the issuer the (first) query names; queries for other issuers are
    // answered unknown.
    let all: Vec<_> = issuers::all_issuers(&pki, c)
        .await?
        .into_iter()
        .filter(|i| !i.key_id.is_empty() && i.has_usage("ocsp-signing"))
        .collect();
    let Some(issuer) = req
        .queries
        .first()
        .and_then(|q| all.iter().find(|i| ocsp::query_is_for(q, &i.der())))
        .or_else(|| all.first())
        .cloned()
    else {
        return Ok(reply(ocsp::error_response(6)));
    };
    let ca_der = issuer.der();
    let Ok(signer) = issuers::signer(&pki, c, &issuer).await else {
        return Ok(reply(ocsp::error_response(2)));
    };
    let mut answers = Vec::new();
    for q in req.queries {
        let status = if !ocsp::query_is_for(&q, &ca_der) {
            Status::Unknown
        } else {
            let serial = x509::serial_string(&q.serial);
            let revoked: Option<RevokedEntry> = c
                .storage
                .get_json(&format!("{REVOKED_PREFIX}{}", serial.replace(':', "-")))
                .await?;
            match revoked {
                Some(r) => Status::Revoked(r.revoked_at),
                None => {
                    let rec: Option<CertRecord> = c.storage.get_json(&cert_key(&serial)).await?;
                    if rec.is_some() {
                        Status::Good
                    } else {
                        Status::Unknown
                    }
                }
            }
        };
        answers.push((q, status));
    }
    let now = now_secs() as i64;
    match ocsp::build_response(
        &signer,
        &answers,
        now,
        now + cfg.ocsp_expiry as i64,
        req.nonce.as_deref(),
    ) {
        Ok(body) => Ok(reply(body)),
        Err(_) => Ok(reply(ocsp::error_response(2))),
    }
}
