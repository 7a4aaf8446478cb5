//! Revocation and CRLs: `revoke`, `LIST certs/revoked`, `crl`, `crl/pem`, `cert/crl`,
//! `crl/rotate`.
//!
//! Built to scale: revoking writes one `revoked/<serial>` entry (and marks the CRL stale) in a
//! single atomic batch; it never rebuilds or rewrites a shared CRL blob. The CRL is rebuilt on
//! the next fetch after a revocation (or on `crl/rotate`, or when it nears `nextUpdate`), by
//! paging through the revocation index.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::json;
use signet_core::framework::{handler, Ctx, Field, PathSpec};
use signet_core::token::{now_secs, rfc3339};
use signet_core::{CoreError, CoreResult, Operation, RawBody, Response};
use signet_crypto::x509::{self, Revoked};
use signet_storage::{Op, Storage};
use signet_types::FieldType;

use crate::storage::{
    cert_key, CertRecord, CrlState, IssuerEntry, RevokedEntry, CRL_STATE, ISSUER, REVOKED_PREFIX,
};
use crate::Pki;

pub fn specs() -> Vec<PathSpec<Pki>> {
    let crl = |p: &'static str, form: Form| {
        PathSpec::new(p)
            .op(
                Operation::Read,
                "Fetch the current CRL.",
                handler(move |s, c| fetch_crl(s, c, form)),
            )
            .help("Fetch the certificate revocation list.", "")
            .unauthenticated()
    };
    vec![
        PathSpec::new("revoke")
            .field(Field::new(
                "serial_number",
                FieldType::String,
                "Serial number of the certificate to revoke.",
            ))
            .field(Field::new(
                "certificate",
                FieldType::String,
                "The PEM certificate to revoke (works for no_store certificates).",
            ))
            .op(Operation::Update, "Revoke a certificate.", handler(revoke))
            .help("Revoke a certificate by serial number or PEM.", ""),
        PathSpec::new("certs/revoked")
            .op(
                Operation::List,
                "List revoked certificates' serial numbers.",
                handler(list_revoked),
            )
            .help("List revoked serial numbers.", ""),
        crl("crl", Form::Der),
        crl("crl/pem", Form::Pem),
        crl("cert/crl", Form::Json),
        PathSpec::new("crl/rotate")
            .op(Operation::Read, "Rebuild the CRL now.", handler(rotate))
            .help("Force a CRL rebuild.", ""),
    ]
}

#[derive(Clone, Copy)]
enum Form {
    Der,
    Pem,
    Json,
}

async fn revoke(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let issuer: IssuerEntry = c
        .storage
        .get_json(ISSUER)
        .await?
        .ok_or_else(|| CoreError::bad("no default issuer currently configured"))?;
    let serial_in = c.fields.str("serial_number");
    let pem_in = c.fields.str("certificate");
    let (serial, pem) = match (serial_in.is_empty(), pem_in.is_empty()) {
        (false, true) => {
            let bytes =
                x509::serial_bytes(&serial_in).map_err(|e| CoreError::bad(e.to_string()))?;
            (x509::serial_string(&bytes), None)
        }
        (true, false) => {
            let (certs, _) =
                x509::split_bundle(&pem_in).map_err(|e| CoreError::bad(e.to_string()))?;
            let der = certs
                .first()
                .ok_or_else(|| CoreError::bad("no certificate found in 'certificate'"))?;
            let ca_der = crate::pem_der(&issuer.certificate);
            if !x509::issued_by(der, &ca_der) {
                return Err(CoreError::bad(
                    "the certificate was not issued by this mount's CA",
                ));
            }
            let info = x509::cert_info(der).map_err(|e| CoreError::bad(e.to_string()))?;
            (info.serial, Some(x509::cert_pem(der)))
        }
        _ => {
            return Err(CoreError::bad(
                "exactly one of serial_number or certificate must be given",
            ))
        }
    };
    if serial == issuer.serial_number {
        return Err(CoreError::bad(
            "adding the CA's own certificate to its CRL is not allowed",
        ));
    }
    let key = cert_key(&serial);
    let rec: Option<CertRecord> = c.storage.get_json(&key).await?;
    let now = now_secs() as i64;
    let mut ops = Vec::new();
    let revoked_at = match (&rec, &pem) {
        (Some(r), _) if r.revoked_at > 0 => r.revoked_at,
        (Some(r), _) => {
            let mut r = r.clone();
            r.revoked_at = now;
            ops.push(Op::Put(
                key.clone(),
                serde_json::to_vec(&r).map_err(|e| CoreError::Internal(e.to_string()))?,
            ));
            now
        }
        (None, Some(_)) => now,
        (None, None) => {
            return Err(CoreError::bad(format!(
                "certificate with serial {serial} not found"
            )))
        }
    };
    if ops.is_empty() && rec.is_some() {
        // Already revoked: report the original time, change nothing.
    } else {
        let entry = RevokedEntry {
            serial: serial.clone(),
            revoked_at,
        };
        ops.push(Op::Put(
            format!("{REVOKED_PREFIX}{}", serial.replace(':', "-")),
            serde_json::to_vec(&entry).map_err(|e| CoreError::Internal(e.to_string()))?,
        ));
        let mut state: CrlState = c.storage.get_json(CRL_STATE).await?.unwrap_or_default();
        state.dirty = true;
        ops.push(Op::Put(
            CRL_STATE.into(),
            serde_json::to_vec(&state).map_err(|e| CoreError::Internal(e.to_string()))?,
        ));
        c.storage.apply(ops).await?;
    }
    Ok(Some(Response::json(json!({
        "revocation_time": revoked_at,
        "revocation_time_rfc3339": rfc3339(revoked_at as u64),
        "state": "revoked",
    }))))
}

async fn list_revoked(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let keys = c.storage.list(REVOKED_PREFIX).await?;
    if keys.is_empty() {
        return Err(CoreError::NotFound);
    }
    Ok(Some(Response::list(
        keys.into_iter().map(|k| k.replace('-', ":")).collect(),
    )))
}

/// The current CRL, rebuilt when stale.
async fn current_crl(pki: &Pki, c: &Ctx, force: bool) -> CoreResult<Vec<u8>> {
    let issuer: IssuerEntry = c
        .storage
        .get_json(ISSUER)
        .await?
        .ok_or_else(|| CoreError::bad("no default issuer currently configured"))?;
    let state: CrlState = c.storage.get_json(CRL_STATE).await?.unwrap_or_default();
    let cfg = crate::path_config_crl::crl_config(c).await?;
    let expiry = cfg.expiry as i64;
    let now = now_secs() as i64;
    let fresh = !state.der.is_empty() && !state.dirty && now < state.built_at + expiry / 2;
    if fresh && !force {
        return base64::engine::general_purpose::STANDARD
            .decode(&state.der)
            .map_err(|e| CoreError::Internal(format!("stored CRL: {e}")));
    }
    // A disabled CRL is served empty, as Vault does.
    let revoked = if cfg.disable {
        Vec::new()
    } else {
        revoked_entries(c).await?
    };
    let signer = pki.signer(&issuer)?;
    let number = state.number + 1;
    let der = x509::build_crl(&signer, number, now - 30, now + expiry, &revoked)
        .map_err(|e| CoreError::Internal(e.to_string()))?;
    let new_state = CrlState {
        number,
        built_at: now,
        der: base64::engine::general_purpose::STANDARD.encode(&der),
        dirty: false,
    };
    c.storage.put_json(CRL_STATE, &new_state).await?;
    Ok(der)
}

/// Every revoked serial, paged through the index.
async fn revoked_entries(c: &Ctx) -> CoreResult<Vec<Revoked>> {
    let mut revoked = Vec::new();
    let mut after = String::new();
    loop {
        let page = c.storage.list_page(REVOKED_PREFIX, &after, 1000).await?;
        let Some(last) = page.last().cloned() else {
            return Ok(revoked);
        };
        for k in page {
            let e: Option<RevokedEntry> =
                c.storage.get_json(&format!("{REVOKED_PREFIX}{k}")).await?;
            if let Some(e) = e {
                if let Ok(serial) = x509::serial_bytes(&e.serial) {
                    revoked.push(Revoked {
                        serial,
                        revoked_at: e.revoked_at,
                    });
                }
            }
        }
        after = last;
    }
}

async fn fetch_crl(pki: Arc<Pki>, c: Ctx, form: Form) -> CoreResult<Option<Response>> {
    let der = current_crl(&pki, &c, false).await?;
    let pem = x509::pem_block("X509 CRL", &der);
    Ok(Some(match form {
        Form::Der => Response {
            raw: Some(RawBody {
                status: 200,
                content_type: "application/pkix-crl".into(),
                body: der,
            }),
            ..Default::default()
        },
        Form::Pem => Response {
            raw: Some(RawBody {
                status: 200,
                content_type: "application/x-pem-file".into(),
                body: format!("{pem}\n").into_bytes(),
            }),
            ..Default::default()
        },
        Form::Json => Response::json(
            json!({"certificate": pem, "revocation_time": 0, "revocation_time_rfc3339": ""}),
        ),
    }))
}

async fn rotate(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    current_crl(&pki, &c, true).await?;
    Ok(Some(Response::json(json!({"success": true}))))
}
