//! `config/crl` (CRL and OCSP validity, disabling them) and `tidy`, `tidy-status`,
//! `tidy-cancel`: removing expired certificates from the inventory and the revocation index,
//! page by page, never holding the whole store in memory.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use signet_core::framework::{handler, Ctx, Field, PathSpec};
use signet_core::token::{now_secs, rfc3339};
use signet_core::{CoreError, CoreResult, Operation, Response};
use signet_storage::{Op, Storage};
use signet_types::FieldType;

use crate::storage::{CertRecord, CERTS_PREFIX, CRL_EPOCH, REVOKED_PREFIX};
use crate::Pki;

pub const CONFIG_CRL: &str = "config/crl";
const TIDY_STATUS: &str = "tidy/status";

/// `config/crl`, with Vault's defaults.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CrlConfig {
    pub expiry: u64,
    pub disable: bool,
    pub ocsp_disable: bool,
    pub ocsp_expiry: u64,
    pub auto_rebuild: bool,
    pub auto_rebuild_grace_period: u64,
    pub enable_delta: bool,
    pub delta_rebuild_interval: u64,
}

impl Default for CrlConfig {
    fn default() -> Self {
        CrlConfig {
            expiry: 72 * 3600,
            disable: false,
            ocsp_disable: false,
            ocsp_expiry: 12 * 3600,
            auto_rebuild: false,
            auto_rebuild_grace_period: 12 * 3600,
            enable_delta: false,
            delta_rebuild_interval: 15 * 60,
        }
    }
}

pub async fn crl_config(c: &Ctx) -> CoreResult<CrlConfig> {
    Ok(c.storage.get_json(CONFIG_CRL).await?.unwrap_or_default())
}

pub fn specs() -> Vec<PathSpec<Pki>> {
    vec![
        PathSpec::new("config/crl")
            .field(Field::new(
                "expiry",
                FieldType::DurationSecond,
                "CRL validity (72h).",
            ))
            .field(Field::new(
                "disable",
                FieldType::Bool,
                "Serve an empty CRL.",
            ))
            .field(Field::new(
                "ocsp_disable",
                FieldType::Bool,
                "Turn the OCSP responder off.",
            ))
            .field(Field::new(
                "ocsp_expiry",
                FieldType::DurationSecond,
                "OCSP answer validity (12h).",
            ))
            .field(Field::new(
                "auto_rebuild",
                FieldType::Bool,
                "Accepted: signet always rebuilds lazily after a revocation.",
            ))
            .field(Field::new(
                "auto_rebuild_grace_period",
                FieldType::DurationSecond,
                "Accepted.",
            ))
            .field(Field::new(
                "enable_delta",
                FieldType::Bool,
                "Accepted; delta CRLs are not served yet.",
            ))
            .field(Field::new(
                "delta_rebuild_interval",
                FieldType::DurationSecond,
                "Accepted.",
            ))
            .op(
                Operation::Read,
                "Read the CRL configuration.",
                handler(read_crl_config),
            )
            .write_op(
                "Configure CRL and OCSP validity.",
                handler(write_crl_config),
            )
            .help("CRL and OCSP configuration.", ""),
        PathSpec::new("tidy")
            .field(Field::new(
                "tidy_cert_store",
                FieldType::Bool,
                "Remove expired certificates from the inventory.",
            ))
            .field(Field::new(
                "tidy_revoked_certs",
                FieldType::Bool,
                "Remove expired certificates from the revocation index.",
            ))
            .field(Field::new(
                "tidy_revoked_cert_issuer_associations",
                FieldType::Bool,
                "Accepted.",
            ))
            .field(
                Field::new(
                    "safety_buffer",
                    FieldType::DurationSecond,
                    "Keep certificates this long past expiry (72h).",
                )
                .default(json!(259200)),
            )
            .field(Field::new("pause_duration", FieldType::String, "Accepted."))
            .op(
                Operation::Update,
                "Tidy the certificate store and revocation index.",
                handler(tidy),
            )
            .help("Remove expired certificates.", ""),
        PathSpec::new("tidy-status")
            .op(
                Operation::Read,
                "Status of the last tidy.",
                handler(tidy_status),
            )
            .help("Status of the last tidy operation.", ""),
        PathSpec::new("tidy-cancel")
            .op(
                Operation::Update,
                "Cancel a running tidy.",
                handler(tidy_cancel),
            )
            .help(
                "Cancel a running tidy (tidy runs to completion within the request here).",
                "",
            ),
    ]
}

async fn read_crl_config(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let cfg = crl_config(&c).await?;
    Ok(Some(Response::json(
        serde_json::to_value(&cfg).map_err(|e| CoreError::Internal(e.to_string()))?,
    )))
}

async fn write_crl_config(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let mut cfg = crl_config(&c).await?;
    let f = &c.fields;
    for (k, slot) in [
        ("disable", &mut cfg.disable),
        ("ocsp_disable", &mut cfg.ocsp_disable),
        ("auto_rebuild", &mut cfg.auto_rebuild),
        ("enable_delta", &mut cfg.enable_delta),
    ] {
        if f.is_set(k) {
            *slot = f.bool(k);
        }
    }
    for (k, slot) in [
        ("expiry", &mut cfg.expiry),
        ("ocsp_expiry", &mut cfg.ocsp_expiry),
        (
            "auto_rebuild_grace_period",
            &mut cfg.auto_rebuild_grace_period,
        ),
        ("delta_rebuild_interval", &mut cfg.delta_rebuild_interval),
    ] {
        if f.is_set(k) {
            *slot = f.u64(k);
        }
    }
    if cfg.expiry == 0 {
        return Err(CoreError::bad("expiry must be greater than zero"));
    }
    c.storage.put_json(CONFIG_CRL, &cfg).await?;
    // The next fetch rebuilds with the new settings.
    mark_crls_stale(&c).await?;
    Ok(None)
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct TidyStatus {
    state: String,
    time_started: String,
    time_finished: String,
    cert_store_deleted_count: u64,
    revoked_cert_deleted_count: u64,
    tidy_cert_store: bool,
    tidy_revoked_certs: bool,
    safety_buffer: u64,
}

async fn tidy(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let f = &c.fields;
    let (certs, revoked) = (f.bool("tidy_cert_store"), f.bool("tidy_revoked_certs"));
    if !certs && !revoked {
        return Err(CoreError::bad(
            "at least one of tidy_cert_store or tidy_revoked_certs must be set",
        ));
    }
    let buffer = f.u64("safety_buffer") as i64;
    let started = now_secs();
    let cutoff = started as i64 - buffer;
    let mut status = TidyStatus {
        state: "Running".into(),
        time_started: rfc3339(started),
        tidy_cert_store: certs,
        tidy_revoked_certs: revoked,
        safety_buffer: buffer as u64,
        ..Default::default()
    };
    let mut after = String::new();
    loop {
        let page = c.storage.list_page(CERTS_PREFIX, &after, 500).await?;
        let Some(last) = page.last().cloned() else {
            break;
        };
        let mut ops = Vec::new();
        for k in &page {
            let key = format!("{CERTS_PREFIX}{k}");
            let rec: Option<CertRecord> = c.storage.get_json(&key).await?;
            let Some(rec) = rec else { continue };
            if rec.not_after >= cutoff {
                continue;
            }
            let revoked_key = format!("{REVOKED_PREFIX}{k}");
            let index: Vec<Op> = crate::storage::index_keys(
                &k.replace('-', ":"),
                &rec.names,
                &rec.role,
                rec.not_after,
            )
            .into_iter()
            .map(Op::Delete)
            .collect();
            if rec.revoked_at > 0 {
                if revoked {
                    ops.extend(index);
                    ops.push(Op::Delete(revoked_key));
                    ops.push(Op::Delete(key));
                    status.revoked_cert_deleted_count += 1;
                    status.cert_store_deleted_count += 1;
                }
            } else if certs {
                ops.extend(index);
                ops.push(Op::Delete(key));
                status.cert_store_deleted_count += 1;
            }
        }
        if !ops.is_empty() {
            c.storage.apply(ops).await?;
        }
        after = last;
    }
    if revoked && status.revoked_cert_deleted_count > 0 {
        mark_crls_stale(&c).await?;
    }
    status.state = "Finished".into();
    status.time_finished = rfc3339(now_secs());
    c.storage.put_json(TIDY_STATUS, &status).await?;
    let mut r = Response::default();
    r.warnings.push("Tidy operation successfully started. Any information from the operation will be printed to signet's server logs.".into());
    Ok(Some(r))
}

async fn tidy_status(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let st: TidyStatus = c
        .storage
        .get_json(TIDY_STATUS)
        .await?
        .unwrap_or(TidyStatus {
            state: "Inactive".into(),
            ..Default::default()
        });
    Ok(Some(Response::json(
        serde_json::to_value(&st).map_err(|e| CoreError::Internal(e.to_string()))?,
    )))
}

async fn tidy_cancel(_s: Arc<Pki>, _c: Ctx) -> CoreResult<Option<Response>> {
    Ok(Some(Response::json(json!({"state": "Inactive"}))))
}

/// Makes every issuer's CRL rebuild on its next fetch.
pub(crate) async fn mark_crls_stale(c: &Ctx) -> CoreResult<()> {
    c.storage
        .put(CRL_EPOCH, uuid::Uuid::new_v4().to_string().into_bytes())
        .await?;
    Ok(())
}
