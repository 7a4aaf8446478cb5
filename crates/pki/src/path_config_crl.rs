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

use crate::storage::{CertRecord, CERTS_PREFIX, REVOKED_PREFIX};
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
                "Rebuild stale CRLs in the background (signet also rebuilds lazily on fetch).",
            ))
            .field(Field::new(
                "auto_rebuild_grace_period",
                FieldType::DurationSecond,
                "Accepted.",
            ))
            .field(Field::new(
                "enable_delta",
                FieldType::Bool,
                "Build delta CRLs in the background (crl/delta is always served).",
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
        auto_tidy_spec(),
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
#[serde(default)]
struct TidyStatus {
    state: String,
    time_started: String,
    time_finished: String,
    cert_store_deleted_count: u64,
    revoked_cert_deleted_count: u64,
    tidy_cert_store: bool,
    tidy_revoked_certs: bool,
    safety_buffer: u64,
    /// When the last automatic run finished ("" = never).
    last_auto_tidy_finished: String,
}

/// OpenBao answers a tidy request with 202 Accepted and an envelope with an empty request id.
fn accepted(warning: &str) -> Response {
    let body = json!({
        "request_id": "",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": null,
        "wrap_info": null,
        "warnings": [warning],
        "auth": null,
    });
    Response {
        raw: Some(signet_core::RawBody {
            status: 202,
            content_type: "application/json".into(),
            body: body.to_string().into_bytes(),
        }),
        ..Default::default()
    }
}

async fn tidy(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let f = &c.fields;
    let (certs, revoked) = (f.bool("tidy_cert_store"), f.bool("tidy_revoked_certs"));
    if !certs && !revoked {
        return Ok(Some(accepted("Manual tidy requested but no tidy operations were set. Enable at least one tidy operation to be run (tidy_cert_store / tidy_revoked_certs / tidy_invalid_certs / tidy_revoked_cert_issuer_associations / tidy_expired_issuers / tidy_move_legacy_ca_bundle / tidy_acme).")));
    }
    // Runs to completion before answering: tidy pages through the store and never holds it
    // in memory, so there is no background job to cancel.
    run_tidy(&c, certs, revoked, f.u64("safety_buffer"), false).await?;
    Ok(Some(accepted("Tidy operation successfully started. Any information from the operation will be printed to signet's server logs.")))
}

/// Removes certificates expired for longer than `buffer` seconds, page by page.
pub(crate) async fn run_tidy(
    c: &Ctx,
    certs: bool,
    revoked: bool,
    buffer: u64,
    auto: bool,
) -> CoreResult<()> {
    let previous: TidyStatus = c.storage.get_json(TIDY_STATUS).await?.unwrap_or_default();
    let started = now_secs();
    let cutoff = started as i64 - buffer as i64;
    let mut status = TidyStatus {
        state: "Running".into(),
        time_started: rfc3339(started),
        tidy_cert_store: certs,
        tidy_revoked_certs: revoked,
        safety_buffer: buffer,
        last_auto_tidy_finished: previous.last_auto_tidy_finished,
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
                rec.issued_at,
            )
            .into_iter()
            .map(Op::Delete)
            .collect();
            if rec.revoked_at > 0 {
                if revoked {
                    ops.extend(index);
                    let entry: Option<crate::storage::RevokedEntry> =
                        c.storage.get_json(&revoked_key).await?;
                    if let Some(e) = entry {
                        ops.push(Op::Delete(crate::storage::ridx_key(
                            &e.issuer_id,
                            &e.serial,
                            e.revoked_at,
                        )));
                    }
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
        mark_crls_stale(c).await?;
    }
    status.state = "Finished".into();
    status.time_finished = rfc3339(now_secs());
    if auto {
        status.last_auto_tidy_finished = status.time_finished.clone();
    }
    c.storage.put_json(TIDY_STATUS, &status).await?;
    Ok(())
}

pub const CONFIG_AUTO_TIDY: &str = "config/auto_tidy";
const AUTO_TIDY_LAST: &str = "tidy/last_auto";

/// `config/auto-tidy`, with OpenBao's defaults. signet acts on `enabled`,
/// `interval_duration`, `tidy_cert_store`, `tidy_revoked_certs` and `safety_buffer`; the
/// other fields are stored and reported.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AutoTidy {
    pub enabled: bool,
    pub interval_duration: u64,
    pub safety_buffer: u64,
    pub revoked_safety_buffer: u64,
    pub issuer_safety_buffer: u64,
    pub acme_account_safety_buffer: u64,
    pub tidy_cert_store: bool,
    pub tidy_revoked_certs: bool,
    pub tidy_revoked_cert_issuer_associations: bool,
    pub tidy_expired_issuers: bool,
    pub tidy_invalid_certs: bool,
    pub tidy_move_legacy_ca_bundle: bool,
    pub tidy_acme: bool,
    pub maintain_stored_certificate_counts: bool,
    pub publish_stored_certificate_count_metrics: bool,
    pub page_size: u64,
    pub pause_duration: String,
}

impl Default for AutoTidy {
    fn default() -> Self {
        AutoTidy {
            enabled: false,
            interval_duration: 12 * 3600,
            safety_buffer: 72 * 3600,
            revoked_safety_buffer: 72 * 3600,
            issuer_safety_buffer: 365 * 24 * 3600,
            acme_account_safety_buffer: 30 * 24 * 3600,
            tidy_cert_store: false,
            tidy_revoked_certs: false,
            tidy_revoked_cert_issuer_associations: false,
            tidy_expired_issuers: false,
            tidy_invalid_certs: false,
            tidy_move_legacy_ca_bundle: false,
            tidy_acme: false,
            maintain_stored_certificate_counts: false,
            publish_stored_certificate_count_metrics: false,
            page_size: 1000,
            pause_duration: "0s".into(),
        }
    }
}

const AUTO_TIDY_BOOLS: &[&str] = &[
    "enabled",
    "tidy_cert_store",
    "tidy_revoked_certs",
    "tidy_revoked_cert_issuer_associations",
    "tidy_expired_issuers",
    "tidy_invalid_certs",
    "tidy_move_legacy_ca_bundle",
    "tidy_acme",
    "maintain_stored_certificate_counts",
    "publish_stored_certificate_count_metrics",
];
const AUTO_TIDY_DURATIONS: &[&str] = &[
    "interval_duration",
    "safety_buffer",
    "revoked_safety_buffer",
    "issuer_safety_buffer",
    "acme_account_safety_buffer",
];

fn auto_tidy_spec() -> PathSpec<Pki> {
    let mut p = PathSpec::new("config/auto-tidy");
    for b in AUTO_TIDY_BOOLS {
        p = p.field(Field::new(
            b,
            FieldType::Bool,
            "See OpenBao's auto-tidy parameters.",
        ));
    }
    for d in AUTO_TIDY_DURATIONS {
        p = p.field(Field::new(
            d,
            FieldType::DurationSecond,
            "See OpenBao's auto-tidy parameters.",
        ));
    }
    p.field(Field::new("page_size", FieldType::Int, "Accepted."))
        .field(Field::new("pause_duration", FieldType::String, "Accepted."))
        .op(
            Operation::Read,
            "Read the automatic tidy configuration.",
            handler(read_auto_tidy),
        )
        .write_op("Configure automatic tidying.", handler(write_auto_tidy))
        .help("Automatic tidy of the certificate store.", "")
}

async fn auto_tidy(c: &Ctx) -> CoreResult<AutoTidy> {
    Ok(c.storage
        .get_json(CONFIG_AUTO_TIDY)
        .await?
        .unwrap_or_default())
}

async fn read_auto_tidy(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let cfg = auto_tidy(&c).await?;
    Ok(Some(Response::json(
        serde_json::to_value(&cfg).map_err(|e| CoreError::Internal(e.to_string()))?,
    )))
}

async fn write_auto_tidy(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let mut cfg = auto_tidy(&c).await?;
    let f = &c.fields;
    let mut v = serde_json::to_value(&cfg).map_err(|e| CoreError::Internal(e.to_string()))?;
    if let serde_json::Value::Object(m) = &mut v {
        for b in AUTO_TIDY_BOOLS {
            if f.is_set(b) {
                m.insert(b.to_string(), json!(f.bool(b)));
            }
        }
        for d in AUTO_TIDY_DURATIONS {
            if f.is_set(d) {
                m.insert(d.to_string(), json!(f.u64(d)));
            }
        }
        if f.is_set("page_size") {
            m.insert("page_size".into(), json!(f.i64("page_size").max(1)));
        }
        if f.is_set("pause_duration") {
            m.insert("pause_duration".into(), json!(f.str("pause_duration")));
        }
    }
    cfg = serde_json::from_value(v).map_err(|e| CoreError::bad(e.to_string()))?;
    if cfg.enabled && !(cfg.tidy_cert_store || cfg.tidy_revoked_certs) {
        return Err(CoreError::bad("Auto-tidy enabled but no tidy operations were requested. Enable at least one tidy operation to be run (tidy_cert_store / tidy_revoked_certs / ...)."));
    }
    if cfg.interval_duration == 0 {
        return Err(CoreError::bad(
            "interval_duration must be greater than zero",
        ));
    }
    c.storage.put_json(CONFIG_AUTO_TIDY, &cfg).await?;
    Ok(Some(Response::json(
        serde_json::to_value(&cfg).map_err(|e| CoreError::Internal(e.to_string()))?,
    )))
}

/// The engine's background work: prebuild stale CRLs (and deltas when enabled) so fetches
/// stay fast, and run auto-tidy when it is due.
pub(crate) async fn periodic(pki: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let cfg = crl_config(&c).await?;
    if cfg.auto_rebuild || cfg.enable_delta {
        for issuer in crate::issuers::all_issuers(&pki, &c).await? {
            if issuer.key_id.is_empty() || !issuer.has_usage("crl-signing") {
                continue;
            }
            crate::path_revoke::current_crl(&pki, &c, &issuer, false, false).await?;
            if cfg.enable_delta {
                crate::path_revoke::current_crl(&pki, &c, &issuer, false, true).await?;
            }
        }
    }
    let tidy_cfg = auto_tidy(&c).await?;
    if tidy_cfg.enabled {
        let now = now_secs() as i64;
        let last: i64 = c.storage.get_json(AUTO_TIDY_LAST).await?.unwrap_or(0);
        if now >= last + tidy_cfg.interval_duration as i64 {
            c.storage.put_json(AUTO_TIDY_LAST, &now).await?;
            run_tidy(
                &c,
                tidy_cfg.tidy_cert_store,
                tidy_cfg.tidy_revoked_certs,
                tidy_cfg.safety_buffer,
                true,
            )
            .await?;
        }
    }
    Ok(None)
}

async fn tidy_status(_s: Arc<Pki>, c: Ctx) -> CoreResult<Option<Response>> {
    let st: Option<TidyStatus> = c.storage.get_json(TIDY_STATUS).await?;
    let mut out = serde_json::Map::new();
    for k in [
        "acme_account_deleted_count",
        "acme_account_revoked_count",
        "acme_account_safety_buffer",
        "acme_orders_deleted_count",
        "cert_store_deleted_count",
        "current_cert_store_count",
        "current_revoked_cert_count",
        "error",
        "issuer_safety_buffer",
        "message",
        "missing_issuer_cert_count",
        "page_size",
        "pause_duration",
        "revoked_cert_deleted_count",
        "revoked_safety_buffer",
        "safety_buffer",
        "tidy_acme",
        "tidy_cert_store",
        "tidy_expired_issuers",
        "tidy_invalid_certs",
        "tidy_move_legacy_ca_bundle",
        "tidy_revoked_cert_issuer_associations",
        "tidy_revoked_certs",
        "time_finished",
        "time_started",
        "total_acme_account_count",
    ] {
        out.insert(k.into(), serde_json::Value::Null);
    }
    out.insert("internal_backend_uuid".into(), json!(c.mount.uuid));
    out.insert("state".into(), json!("Inactive"));
    if let Some(st) = st {
        let defaults = AutoTidy::default();
        for (k, v) in [
            ("state", json!(st.state)),
            ("time_started", json!(st.time_started)),
            ("time_finished", json!(st.time_finished)),
            (
                "cert_store_deleted_count",
                json!(st.cert_store_deleted_count),
            ),
            (
                "revoked_cert_deleted_count",
                json!(st.revoked_cert_deleted_count),
            ),
            ("tidy_cert_store", json!(st.tidy_cert_store)),
            ("tidy_revoked_certs", json!(st.tidy_revoked_certs)),
            ("safety_buffer", json!(st.safety_buffer)),
            ("acme_account_deleted_count", json!(0)),
            ("acme_account_revoked_count", json!(0)),
            ("acme_orders_deleted_count", json!(0)),
            ("missing_issuer_cert_count", json!(0)),
            ("total_acme_account_count", json!(0)),
            (
                "acme_account_safety_buffer",
                json!(defaults.acme_account_safety_buffer),
            ),
            ("issuer_safety_buffer", json!(defaults.issuer_safety_buffer)),
            ("revoked_safety_buffer", json!(st.safety_buffer)),
            ("page_size", json!(defaults.page_size)),
            ("pause_duration", json!(defaults.pause_duration)),
            ("tidy_acme", json!(false)),
            ("tidy_expired_issuers", json!(false)),
            ("tidy_invalid_certs", json!(false)),
            ("tidy_move_legacy_ca_bundle", json!(false)),
            ("tidy_revoked_cert_issuer_associations", json!(false)),
        ] {
            out.insert(k.into(), v);
        }
        if !st.last_auto_tidy_finished.is_empty() {
            out.insert(
                "last_auto_tidy_finished".into(),
                json!(st.last_auto_tidy_finished),
            );
        }
    }
    Ok(Some(Response::data(out)))
}

async fn tidy_cancel(_s: Arc<Pki>, _c: Ctx) -> CoreResult<Option<Response>> {
    let mut r = Response::default();
    r.warnings
        .push("Tidy operation cannot be cancelled as none is currently running.".into());
    Ok(Some(r))
}

/// Makes every issuer's CRL rebuild on its next fetch.
pub(crate) async fn mark_crls_stale(c: &Ctx) -> CoreResult<()> {
    c.storage
        .apply(vec![crate::storage::crl_epoch_bump()])
        .await?;
    Ok(())
}
