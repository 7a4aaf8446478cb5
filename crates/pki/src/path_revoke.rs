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

use crate::issuers::{self, IssuerEntry};
use crate::storage::{
    cert_key, ridx_key, CertRecord, CrlState, RevokedEntry, CRL_STATE, REVOKED_PREFIX, RIDX_PREFIX,
};
use crate::Pki;

pub fn specs() -> Vec<PathSpec<Pki>> {
    let crl = |p: &'static str, form: Form| crl_spec(p, form, false);
    let delta = |p: &'static str, form: Form| crl_spec(p, form, true);
    fn crl_spec(p: &'static str, form: Form, delta: bool) -> PathSpec<Pki> {
        PathSpec::new(p)
            .field(Field::new("ref", FieldType::String, "Issuer reference."))
            .op(
                Operation::Read,
                "Fetch the current CRL.",
                handler(move |s, c| fetch_crl(s, c, form, delta)),
            )
            .help("Fetch the certificate revocation list.", "")
            .unauthenticated()
    }
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
        crl("issuer/:ref/crl", Form::IssuerJson),
        crl("issuer/:ref/crl/der", Form::Der),
        crl("issuer/:ref/crl/pem", Form::Pem),
        delta("crl/delta", Form::Der),
        delta("crl/delta/pem", Form::Pem),
        delta("cert/delta-crl", Form::Json),
        delta("issuer/:ref/crl/delta", Form::IssuerJson),
        delta("issuer/:ref/crl/delta/der", Form::Der),
        delta("issuer/:ref/crl/delta/pem", Form::Pem),
        PathSpec::new("crl/rotate-delta")
            .op(
                Operation::Read,
                "Rebuild the delta CRL now.",
                handler(rotate_delta),
            )
            .help("Force a delta CRL rebuild.", ""),
        PathSpec::new("revoke-with-key")
            .field(Field::new(
                "serial_number",
                FieldType::String,
                "Serial number of the certificate to revoke.",
            ))
            .field(Field::new(
                "certificate",
                FieldType::String,
                "The PEM certificate to revoke.",
            ))
            .field(Field::new(
                "private_key",
                FieldType::String,
                "The certificate's private key, proving possession.",
            ))
            .op(
                Operation::Update,
                "Revoke a certificate, proving possession of its key.",
                handler(revoke_with_key),
            )
            .help("Revoke a certificate with its private key.", ""),
        PathSpec::new("issuer/:ref/revoke")
            .field(Field::new("ref", FieldType::String, "Issuer reference."))
            .op(
                Operation::Update,
                "Revoke an issuer.",
                handler(revoke_issuer),
            )
            .help("Revoke an issuer.", "")
            .sudo(),
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
    IssuerJson,
}

/// Marks every CRL stale: one small write, in the same batch as the revocation.
fn crl_stale_op() -> Op {
    crate::storage::crl_epoch_bump()
}

/// The current CRL epoch: every epoch key's value, joined (one `get_many`).
pub(crate) async fn crl_epoch(c: &Ctx) -> CoreResult<String> {
    let values = c
        .storage
        .get_many(&crate::storage::crl_epoch_keys())
        .await?;
    Ok(values
        .into_iter()
        .map(|v| {
            v.map(|v| String::from_utf8_lossy(&v).to_string())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(","))
}

async fn revoke(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    revoke_inner(pki, c, false).await
}

async fn revoke_with_key(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    revoke_inner(pki, c, true).await
}

async fn revoke_inner(pki: Arc<Pki>, c: Ctx, with_key: bool) -> CoreResult<Option<Response>> {
    let serial_in = c.fields.str("serial_number");
    let pem_in = c.fields.str("certificate");
    let (serial, der) = match (serial_in.is_empty(), pem_in.is_empty()) {
        (false, true) => {
            let bytes =
                x509::serial_bytes(&serial_in).map_err(|e| CoreError::bad(e.to_string()))?;
            (x509::serial_string(&bytes), None)
        }
        (true, false) => {
            let (certs, _) =
                x509::split_bundle(&pem_in).map_err(|e| CoreError::bad(e.to_string()))?;
            let der = certs
                .into_iter()
                .next()
                .ok_or_else(|| CoreError::bad("no certificate found in 'certificate'"))?;
            let info = x509::cert_info(&der).map_err(|e| CoreError::bad(e.to_string()))?;
            (info.serial, Some(der))
        }
        (false, false) => {
            return Err(CoreError::bad(
                "must provide either the certificate or the serial to revoke; not both",
            ))
        }
        (true, true) => {
            return Err(CoreError::bad(
                "must provide either the certificate or the serial to revoke",
            ))
        }
    };
    let key = cert_key(&serial);
    let rec: Option<CertRecord> = c.storage.get_json(&key).await?;
    // The certificate itself: from the request, or from the inventory.
    let cert_der = match (&der, &rec) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(r)) => Some(crate::pem_der(&r.certificate)),
        (None, None) => None,
    };
    if with_key {
        let key_pem = c.fields.str("private_key");
        if key_pem.trim().is_empty() {
            return Err(CoreError::bad(
                "must provide private key to revoke-with-key",
            ));
        }
        let Some(d) = &cert_der else {
            return Err(CoreError::bad(format!(
                "certificate with serial {serial} not found"
            )));
        };
        match x509::key_matches_cert(&key_pem, d) {
            Ok(true) => {}
            Ok(false) => {
                return Err(CoreError::bad(
                    "failed to validate private key match: public keys do not match",
                ))
            }
            Err(e) => return Err(CoreError::bad(format!("failed to parse private key: {e}"))),
        }
    }
    // One listing of the mount's issuers serves both checks below.
    let all = issuers::all_issuers(&pki, &c).await?;
    let issuer = match (&rec, &cert_der) {
        (Some(r), _) if !r.issuer_id.is_empty() => {
            all.iter().find(|i| i.issuer_id == r.issuer_id).cloned()
        }
        (_, Some(d)) => all.iter().find(|i| x509::issued_by(d, &i.der())).cloned(),
        _ => None,
    };
    if der.is_some() && issuer.is_none() {
        return Err(CoreError::bad(
            "unable to revoke certificate: it was not issued by any issuer of this mount",
        ));
    }
    if all.iter().any(|i| i.serial_number == serial) {
        return Err(CoreError::bad(format!(
            "adding issuer (serial {serial}) to its own CRL is not allowed; use issuer/:ref/revoke"
        )));
    }
    let now = now_secs() as i64;
    let revoked_at = match (&rec, &der) {
        (Some(r), _) if r.revoked_at > 0 => {
            // Already revoked: report the original time, change nothing.
            return Ok(Some(revoked_response(r.revoked_at)));
        }
        (Some(_), _) | (None, Some(_)) => now,
        (None, None) => {
            return Err(CoreError::bad(format!(
                "certificate with serial {serial} not found"
            )))
        }
    };
    if rec.is_none() {
        // A no_store certificate revoked by PEM: revoked twice reports the first time.
        let existing: Option<RevokedEntry> = c
            .storage
            .get_json(&format!("{REVOKED_PREFIX}{}", serial.replace(':', "-")))
            .await?;
        if let Some(e) = existing {
            return Ok(Some(revoked_response(e.revoked_at)));
        }
    }
    let mut ops = Vec::new();
    if let Some(r) = &rec {
        let mut r = r.clone();
        r.revoked_at = now;
        ops.push(Op::Put(
            key.clone(),
            serde_json::to_vec(&r).map_err(|e| CoreError::Internal(e.to_string()))?,
        ));
    }
    let entry = RevokedEntry {
        serial: serial.clone(),
        revoked_at,
        issuer_id: issuer.map(|i| i.issuer_id).unwrap_or_default(),
    };
    ops.push(Op::Put(
        format!("{REVOKED_PREFIX}{}", serial.replace(':', "-")),
        serde_json::to_vec(&entry).map_err(|e| CoreError::Internal(e.to_string()))?,
    ));
    ops.push(Op::Put(
        ridx_key(&entry.issuer_id, &serial, revoked_at),
        Vec::new(),
    ));
    ops.push(crl_stale_op());
    c.storage.apply(ops).await?;
    Ok(Some(revoked_response(revoked_at)))
}

fn revoked_response(at: i64) -> Response {
    Response::json(json!({
        "revocation_time": at,
        "revocation_time_rfc3339": rfc3339(at.max(0) as u64),
        "state": "revoked",
    }))
}

/// `issuer/:ref/revoke`: the issuer stops issuing, and its serial goes onto the CRL of the
/// issuer above it when that issuer is in this mount.
async fn revoke_issuer(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let mut i = issuers::resolve_issuer(&pki, &c, c.param("ref")).await?;
    if i.revoked {
        return Ok(Some(Response::json(crate::path_issuers::issuer_json(&i))));
    }
    let der = i.der();
    let parent = issuers::all_issuers(&pki, &c)
        .await?
        .into_iter()
        .find(|p| p.issuer_id != i.issuer_id && x509::issued_by(&der, &p.der()));
    let self_signed = x509::cert_info(&der)
        .map(|x| x.self_signed)
        .unwrap_or(false);
    let now = now_secs() as i64;
    i.revoked = true;
    i.revocation_time = now;
    i.usage.retain(|u| u != "issuing-certificates");
    let mut ops = vec![crl_stale_op()];
    // The serial goes on the CRL of the issuer above it, when that issuer is in this mount.
    if let Some(parent) = parent.filter(|_| !self_signed) {
        let entry = RevokedEntry {
            serial: i.serial_number.clone(),
            revoked_at: now,
            issuer_id: parent.issuer_id,
        };
        ops.push(Op::Put(
            format!("{REVOKED_PREFIX}{}", i.serial_number.replace(':', "-")),
            serde_json::to_vec(&entry).map_err(|e| CoreError::Internal(e.to_string()))?,
        ));
        ops.push(Op::Put(
            ridx_key(&entry.issuer_id, &entry.serial, now),
            Vec::new(),
        ));
    }
    let key = cert_key(&i.serial_number);
    if let Some(mut r) = c.storage.get_json::<CertRecord>(&key).await? {
        r.revoked_at = now;
        ops.push(Op::Put(
            key,
            serde_json::to_vec(&r).map_err(|e| CoreError::Internal(e.to_string()))?,
        ));
    }
    let saved = issuers::save_issuer(&pki, &c, i).await?;
    c.storage.apply(ops).await?;
    Ok(Some(Response::json(crate::path_issuers::issuer_json(
        &saved,
    ))))
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

/// The current CRL (or delta CRL) of an issuer, rebuilt when stale.
///
/// Both live in one record per issuer, `crl/state/<issuer>`, which also holds the last CRL
/// number used, so complete and delta CRLs share one increasing sequence (RFC 5280 5.2.3).
/// A delta lists what was revoked since its complete CRL was built.
pub(crate) async fn current_crl(
    pki: &Pki,
    c: &Ctx,
    issuer: &IssuerEntry,
    force: bool,
    delta: bool,
) -> CoreResult<Arc<Vec<u8>>> {
    let epoch = crl_epoch(c).await?;
    let cfg = crate::path_config_crl::crl_config(c).await?;
    let expiry = cfg.expiry as i64;
    let cache_key = (issuer.issuer_id.clone(), delta);
    let cached = |now: i64| {
        let m = pki.crl_cache.lock().ok()?;
        let hit = m.get(&cache_key)?;
        (hit.epoch == epoch && now < hit.built_at + expiry / 2).then(|| hit.der.clone())
    };
    if !force {
        if let Some(der) = cached(now_secs() as i64) {
            return Ok(der);
        }
    }
    // One builder at a time, in this process and (through the storage's cluster-wide lock)
    // across the nodes sharing the database; whoever waited finds the CRL the first one built.
    let _guard = pki.crl_lock.lock().await;
    let _cluster_guard = c
        .storage
        .lock(&format!("crl-build/{}", issuer.issuer_id))
        .await?;
    let now = now_secs() as i64;
    if !force {
        if let Some(der) = cached(now) {
            return Ok(der);
        }
    }
    let remember = |der: Vec<u8>, built_at: i64, base_rebuilt: bool| {
        let der = Arc::new(der);
        if let Ok(mut m) = pki.crl_cache.lock() {
            if base_rebuilt {
                m.remove(&(issuer.issuer_id.clone(), true));
            }
            m.insert(
                cache_key.clone(),
                crate::CachedCrl {
                    epoch: epoch.clone(),
                    built_at,
                    der: der.clone(),
                },
            );
        }
        der
    };
    let state_key = format!("{CRL_STATE}/{}", issuer.issuer_id);
    let mut state: CrlState = c.storage.get_json(&state_key).await?.unwrap_or_default();
    let decode = |der: &str| {
        base64::engine::general_purpose::STANDARD
            .decode(der)
            .map_err(|e| CoreError::Internal(format!("stored CRL: {e}")))
    };
    let base_fresh =
        !state.der.is_empty() && state.epoch == epoch && now < state.built_at + expiry / 2;
    if !delta && base_fresh && !force {
        return Ok(remember(decode(&state.der)?, state.built_at, false));
    }
    let delta_fresh = !state.delta_der.is_empty()
        && state.delta_epoch == epoch
        && state.delta_base == state.base_number
        && now < state.delta_built_at + expiry / 2;
    if delta && delta_fresh && !force && !state.der.is_empty() {
        return Ok(remember(
            decode(&state.delta_der)?,
            state.delta_built_at,
            false,
        ));
    }
    let default_id = issuers::issuers_config(pki, c).await?.default;
    // A disabled CRL is served empty, as Vault does.
    let revoked = if cfg.disable {
        Vec::new()
    } else {
        revoked_entries(c, &issuer.issuer_id, issuer.issuer_id == default_id).await?
    };
    let signer = issuers::signer(pki, c, issuer).await?;
    let mut base_rebuilt = false;
    if !delta || state.der.is_empty() {
        let number = state.number + 1;
        let der = x509::build_crl(
            &signer,
            number,
            now - 30,
            now + expiry,
            &revoked.iter().map(|(r, _)| r.clone()).collect::<Vec<_>>(),
        )
        .map_err(|e| CoreError::Internal(e.to_string()))?;
        state.number = number;
        state.base_number = number;
        state.built_at = now;
        state.der = base64::engine::general_purpose::STANDARD.encode(&der);
        state.epoch = epoch.clone();
        base_rebuilt = true;
        if !delta {
            c.storage.put_json(&state_key, &state).await?;
            return Ok(remember(der, now, true));
        }
    }
    let since: Vec<Revoked> = revoked
        .into_iter()
        .filter(|(_, at)| *at >= state.built_at)
        .map(|(r, _)| r)
        .collect();
    let number = state.number + 1;
    let der = x509::build_delta_crl(
        &signer,
        number,
        state.base_number,
        now - 30,
        now + expiry,
        &since,
    )
    .map_err(|e| CoreError::Internal(e.to_string()))?;
    state.number = number;
    state.delta_base = state.base_number;
    state.delta_built_at = now;
    state.delta_der = base64::engine::general_purpose::STANDARD.encode(&der);
    state.delta_epoch = epoch.clone();
    c.storage.put_json(&state_key, &state).await?;
    if base_rebuilt {
        // The base built along the way is current too.
        if let (Ok(base), Ok(mut m)) = (decode(&state.der), pki.crl_cache.lock()) {
            m.insert(
                (issuer.issuer_id.clone(), false),
                crate::CachedCrl {
                    epoch: epoch.clone(),
                    built_at: now,
                    der: Arc::new(base),
                },
            );
        }
    }
    Ok(remember(der, now, false))
}

/// Every serial revoked under `issuer_id` (and, for the default issuer, those recorded
/// without an issuer), read from the key names of the revocation index alone: pages of ten
/// thousand revocations (a few range scans on PostgreSQL), and no entry is read.
async fn revoked_entries(
    c: &Ctx,
    issuer_id: &str,
    is_default: bool,
) -> CoreResult<Vec<(Revoked, i64)>> {
    let mut revoked = Vec::new();
    let mut prefixes = vec![format!("{RIDX_PREFIX}{issuer_id}/")];
    if is_default {
        prefixes.push(format!("{RIDX_PREFIX}-/"));
    }
    for prefix in prefixes {
        let mut after = String::new();
        loop {
            let page = c.storage.list_page(&prefix, &after, 10_000).await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            for k in page {
                let Some((serial, at)) = k.rsplit_once('_') else {
                    continue;
                };
                let (Ok(serial), Ok(at)) = (x509::serial_bytes(serial), at.parse::<i64>()) else {
                    continue;
                };
                revoked.push((
                    Revoked {
                        serial,
                        revoked_at: at,
                    },
                    at,
                ));
            }
            after = last;
        }
    }
    Ok(revoked)
}

async fn fetch_crl(pki: Arc<Pki>, c: Ctx, form: Form, delta: bool) -> CoreResult<Option<Response>> {
    let reference = c.param("ref").to_string();
    let issuer = match issuers::find_issuer(&pki, &c, &reference).await? {
        Some(i) => i,
        // The mount's default CRL before any CA exists: empty, as OpenBao answers.
        None if reference.is_empty() => return Ok(None),
        None => {
            return Err(CoreError::bad(format!(
                "unable to find PKI issuer for reference: {reference}"
            )))
        }
    };
    if issuer.key_id.is_empty() {
        // OpenBao's wording; `bao pki health-check` skips issuers answering "unable to find".
        return Err(CoreError::bad(format!(
            "unable to find CRL for issuer: id:{}/ref:{reference}",
            issuer.issuer_id
        )));
    }
    let der = current_crl(&pki, &c, &issuer, false, delta).await?;
    // PEM only for the forms that serve it.
    let pem = || x509::pem_block("X509 CRL", &der);
    Ok(Some(match form {
        Form::Der => Response {
            raw: Some(RawBody {
                status: 200,
                content_type: "application/pkix-crl".into(),
                body: der.as_ref().clone(),
            }),
            ..Default::default()
        },
        Form::Pem => Response {
            raw: Some(RawBody {
                status: 200,
                content_type: "application/x-pem-file".into(),
                body: format!("{}\n", pem()).into_bytes(),
            }),
            ..Default::default()
        },
        Form::Json => Response::json(
            json!({"certificate": pem(), "revocation_time": 0, "revocation_time_rfc3339": ""}),
        ),
        Form::IssuerJson => Response::json(json!({"crl": pem()})),
    }))
}

async fn rotate(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    for issuer in issuers::all_issuers(&pki, &c).await? {
        if issuer.key_id.is_empty() || !issuer.has_usage("crl-signing") {
            continue;
        }
        current_crl(&pki, &c, &issuer, true, false).await?;
    }
    Ok(Some(Response::json(json!({"success": true}))))
}

async fn rotate_delta(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let cfg = crate::path_config_crl::crl_config(&c).await?;
    let mut r = Response::json(json!({"success": true}));
    if !cfg.enable_delta {
        r.warnings.push(
            "requested rebuild of delta CRL when delta CRL is not enabled; this is a no-op".into(),
        );
        return Ok(Some(r));
    }
    for issuer in issuers::all_issuers(&pki, &c).await? {
        if issuer.key_id.is_empty() || !issuer.has_usage("crl-signing") {
            continue;
        }
        current_crl(&pki, &c, &issuer, true, true).await?;
    }
    Ok(Some(r))
}
