//! `sys/audit` (list), `sys/audit/:path` (enable/disable: refused, devices are declared in
//! the server configuration, as OpenBao does by default), `sys/audit-hash/:path`.

use std::sync::Arc;

use serde_json::{json, Value};
use signet_types::FieldType;

use super::SysState;
use crate::error::{CoreError, CoreResult};
use crate::framework::{handler, Ctx, Field, PathSpec};
use crate::request::{Operation, Response};

pub fn specs() -> Vec<PathSpec<SysState>> {
    vec![
        PathSpec::new("audit")
            .op(
                Operation::Read,
                "List the enabled audit devices.",
                handler(list),
            )
            .help("List the enabled audit devices.", "")
            .sudo(),
        PathSpec::new("audit-hash/*path")
            .field(Field::new("path", FieldType::String, "The audit device."))
            .field(Field::new("input", FieldType::String, "The value to hash."))
            .op(
                Operation::Update,
                "Hash a value with an audit device's salt.",
                handler(hash),
            )
            .help("Compute the HMAC an audit device writes for a value.", ""),
        PathSpec::new("audit/*path")
            .field(Field::new("path", FieldType::String, "The audit device."))
            .field(Field::new("type", FieldType::String, "Device type."))
            .field(Field::new("description", FieldType::String, "Description."))
            .field(Field::new("options", FieldType::Map, "Device options."))
            .field(Field::new("local", FieldType::Bool, "Accepted."))
            .op(
                Operation::Update,
                "Enable an audit device (only with unsafe_allow_api_audit_creation).",
                handler(enable),
            )
            .op(
                Operation::Delete,
                "Disable an audit device (only with unsafe_allow_api_audit_creation).",
                handler(disable),
            )
            .help(
                "Audit devices are declared in the server configuration; the API may enable \
                 them only when the configuration sets unsafe_allow_api_audit_creation.",
                "",
            )
            .sudo(),
    ]
}

async fn list(s: Arc<SysState>, _c: Ctx) -> CoreResult<Option<Response>> {
    let devices = s.core()?.audit().list();
    let mut r = Response::json(Value::Object(devices));
    r.data_at_top_level = true;
    Ok(Some(r))
}

async fn hash(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let h = s
        .core()?
        .audit()
        .hash(c.param("path"), &c.fields.str("input"))?;
    let mut r = Response::json(json!({"hash": h}));
    r.data_at_top_level = true;
    Ok(Some(r))
}

async fn enable(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let kind = c.fields.str("type");
    if kind.is_empty() {
        return Err(CoreError::bad("type is required"));
    }
    // Options arrive as strings from the CLI (`file_path=...`); keep them as given.
    let options = c.fields.map("options");
    s.core()?
        .audit()
        .enable(
            c.param("path"),
            &kind,
            &c.fields.str("description"),
            options,
            c.fields.bool("local"),
        )
        .await?;
    Ok(None)
}

async fn disable(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    s.core()?.audit().disable(c.param("path")).await?;
    Ok(None)
}
