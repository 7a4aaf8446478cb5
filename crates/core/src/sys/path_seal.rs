//! `sys/init`, `sys/seal-status`, `sys/unseal`, `sys/seal`, `sys/health`, `sys/leader`,
//! `sys/rotate`, `sys/key-status`, `sys/internal/specs/openapi`.

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Value};
use signet_types::FieldType;

use super::SysState;
use crate::error::CoreResult;
use crate::framework::{handler, Ctx, Field, PathSpec};
use crate::request::{Operation, Response};
use crate::token::rfc3339;

pub fn specs() -> Vec<PathSpec<SysState>> {
    vec![
        PathSpec::new("init")
            .field(Field::new(
                "secret_shares",
                FieldType::Int,
                "Number of key shares to split the unseal key into.",
            ))
            .field(Field::new(
                "secret_threshold",
                FieldType::Int,
                "Number of key shares required to reconstruct the unseal key.",
            ))
            .field(Field::new(
                "pgp_keys",
                FieldType::CommaStringSlice,
                "Not supported by signet.",
            ))
            .field(Field::new(
                "root_token_pgp_key",
                FieldType::String,
                "Not supported by signet.",
            ))
            .field(Field::new(
                "recovery_shares",
                FieldType::Int,
                "Ignored: the file seal has no recovery keys.",
            ))
            .field(Field::new(
                "recovery_threshold",
                FieldType::Int,
                "Ignored: the file seal has no recovery keys.",
            ))
            .field(Field::new(
                "recovery_pgp_keys",
                FieldType::CommaStringSlice,
                "Not supported by signet.",
            ))
            .field(Field::new("stored_shares", FieldType::Int, "Ignored."))
            .op(
                Operation::Read,
                "Returns the initialization status.",
                handler(read_init),
            )
            .op(
                Operation::Update,
                "Initializes a new server.",
                handler(write_init),
            )
            .help("Initializes or returns the initialization status.", "")
            .unauthenticated()
            .sealed_ok(),
        PathSpec::new("seal-status")
            .op(
                Operation::Read,
                "Check the seal status.",
                handler(seal_status),
            )
            .help("Returns the seal status.", "")
            .unauthenticated()
            .sealed_ok(),
        PathSpec::new("unseal")
            .field(Field::new(
                "key",
                FieldType::String,
                "Specifies a single unseal key share.",
            ))
            .field(Field::new(
                "reset",
                FieldType::Bool,
                "Discard the unseal keys entered so far.",
            ))
            .field(Field::new(
                "migrate",
                FieldType::Bool,
                "Not supported by signet.",
            ))
            .op(Operation::Update, "Unseal the server.", handler(unseal))
            .help("Enters one unseal key share.", "")
            .unauthenticated()
            .sealed_ok(),
        PathSpec::new("health")
            .field(Field::new(
                "standbyok",
                FieldType::Bool,
                "Return 200 on a standby.",
            ))
            .field(Field::new(
                "perfstandbyok",
                FieldType::Bool,
                "Return 200 on a performance standby.",
            ))
            .field(Field::new(
                "activecode",
                FieldType::String,
                "Status code for an active node.",
            ))
            .field(Field::new(
                "standbycode",
                FieldType::String,
                "Status code for a standby node.",
            ))
            .field(Field::new(
                "drsecondarycode",
                FieldType::String,
                "Status code for a DR secondary.",
            ))
            .field(Field::new(
                "performancestandbycode",
                FieldType::String,
                "Status code for a performance standby.",
            ))
            .field(Field::new(
                "sealedcode",
                FieldType::String,
                "Status code for a sealed node.",
            ))
            .field(Field::new(
                "uninitcode",
                FieldType::String,
                "Status code for an uninitialized node.",
            ))
            .field(Field::new(
                "removedcode",
                FieldType::String,
                "Status code for a removed node.",
            ))
            .op(
                Operation::Read,
                "Returns the health status.",
                handler(health),
            )
            .help("Checks the health of the server.", "")
            .unauthenticated()
            .sealed_ok(),
        PathSpec::new("step-down")
            .op(
                Operation::Update,
                "Makes this node give up the leadership (another node takes it).",
                handler(step_down),
            )
            .help(
                "Steps this node down from the leadership of the cluster's background work.",
                "",
            )
            .unauthenticated(),
        PathSpec::new("seal")
            .op(Operation::Update, "Seal the server.", handler(seal))
            .help("Seals the server.", "")
            .sudo(),
        PathSpec::new("leader")
            .op(
                Operation::Read,
                "Returns the high availability status and current leader.",
                handler(leader),
            )
            .help("Returns the high availability status.", "")
            .unauthenticated(),
        PathSpec::new("ha-status")
            .op(
                Operation::Read,
                "Returns the nodes of the cluster and which one leads.",
                handler(ha_status),
            )
            .help(
                "Returns the high availability status of the cluster's nodes.",
                "",
            ),
        PathSpec::new("rotate/keyring")
            .op(
                Operation::Update,
                "Rotates the backend encryption key.",
                handler(rotate),
            )
            .help("Rotates the barrier encryption key.", "")
            .sudo(),
        PathSpec::new("rotate")
            .op(
                Operation::Update,
                "Rotates the backend encryption key.",
                handler(rotate),
            )
            .help("Rotates the barrier encryption key.", "")
            .sudo(),
        PathSpec::new("key-status")
            .op(
                Operation::Read,
                "Provides information about the backend encryption key.",
                handler(key_status),
            )
            .help("Returns the barrier key's term and install time.", ""),
        PathSpec::new("rotate/keyring/key-status")
            .op(
                Operation::Read,
                "Provides information about the backend encryption key.",
                handler(key_status),
            )
            .help("Returns the barrier key's term and install time.", ""),
        PathSpec::new("internal/specs/openapi")
            .op(
                Operation::Read,
                "Generate an OpenAPI 3 document of all mounted paths.",
                handler(openapi),
            )
            .help("Generates an OpenAPI document of every mounted path.", "")
            .unauthenticated(),
    ]
}

async fn read_init(s: Arc<SysState>, _c: Ctx) -> CoreResult<Option<Response>> {
    let core = s.core()?;
    let init = core.is_initialized().await?;
    Ok(Some(Response::raw_json(200, &json!({"initialized": init}))))
}

async fn write_init(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let core = s.core()?;
    if c.fields.is_set("pgp_keys") && !c.fields.strings("pgp_keys").is_empty() {
        return Err(crate::CoreError::bad(
            "pgp_keys are not supported by signet",
        ));
    }
    let shares = c.fields.i64("secret_shares").max(0) as u32;
    let threshold = c.fields.i64("secret_threshold").max(0) as u32;
    let result = core.init(shares, threshold).await?;
    let hex_keys: Vec<String> = result
        .keys
        .iter()
        .map(|k| hex::encode(k.expose_secret()))
        .collect();
    let b64_keys: Vec<String> = result
        .keys
        .iter()
        .map(|k| base64::engine::general_purpose::STANDARD.encode(k.expose_secret()))
        .collect();
    let body = json!({
        "keys": hex_keys,
        "keys_base64": b64_keys,
        "root_token": result.root_token.expose_secret(),
    });
    Ok(Some(Response::raw_json(200, &body)))
}

async fn seal_status(s: Arc<SysState>, _c: Ctx) -> CoreResult<Option<Response>> {
    let status = s.core()?.seal_status().await?;
    Ok(Some(Response::raw_json(200, &status)))
}

async fn unseal(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let core = s.core()?;
    let key = c.fields.is_set("key").then(|| c.fields.str("key"));
    let status = core
        .unseal_share(
            key.as_deref().filter(|k| !k.is_empty()),
            c.fields.bool("reset"),
        )
        .await?;
    Ok(Some(Response::raw_json(200, &status)))
}

async fn health(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let core = s.core()?;
    let (code, body) = core.health(c.fields.raw()).await?;
    Ok(Some(Response::raw_json(code, &body)))
}

/// As OpenBao: always 204 (its step-down is checked and run in the background, and a refusal
/// is only logged); the node steps down only for a token with `sudo` on `sys/step-down`.
async fn step_down(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let core = s.core()?;
    match core.authorize_step_down(&c.meta).await {
        Ok(()) => core.step_down().await,
        Err(_) => tracing::warn!("sys/step-down refused: the token lacks sudo on sys/step-down"),
    }
    Ok(None)
}

async fn seal(s: Arc<SysState>, _c: Ctx) -> CoreResult<Option<Response>> {
    s.core()?.seal().await?;
    Ok(None)
}

async fn leader(s: Arc<SysState>, _c: Ctx) -> CoreResult<Option<Response>> {
    let body = s.core()?.leader_status().await;
    Ok(Some(Response::raw_json(200, &body)))
}

async fn ha_status(s: Arc<SysState>, _c: Ctx) -> CoreResult<Option<Response>> {
    super::top(s.core()?.ha_status().await?).map(Ok).transpose()
}

async fn rotate(s: Arc<SysState>, _c: Ctx) -> CoreResult<Option<Response>> {
    s.core()?.rotate().await?;
    Ok(None)
}

async fn key_status(s: Arc<SysState>, _c: Ctx) -> CoreResult<Option<Response>> {
    let st = s.core()?.barrier().key_status()?;
    super::top(json!({
        "term": st.term,
        "install_time": rfc3339(st.install_time),
        "encryptions": st.encryptions,
    }))
    .map(Ok)
    .transpose()
}

async fn openapi(s: Arc<SysState>, _c: Ctx) -> CoreResult<Option<Response>> {
    let doc: Value = s.core()?.openapi();
    Ok(Some(Response::raw_json(200, &doc)))
}
