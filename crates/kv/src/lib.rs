//! The KV version 1 secrets engine (`secret/` in dev mode; seed 002 keeps a service-account
//! key there).
//!
//! One path spec, `*path`, accepting arbitrary fields: a write stores the request body as a
//! JSON object at the path, a read returns it with the mount's default lease TTL (or the
//! entry's own `ttl` field) as `lease_duration`, a list returns the children of a folder.
//! Values go through the barrier like everything else; this engine never sees ciphertext.

use std::sync::Arc;

use serde_json::{Map, Value};
use signet_core::framework::{existence, handler, Backend, Ctx, PathBackend, PathSpec};
use signet_core::{CoreError, CoreResult, EngineFactory, Lease, Operation, Response};
use signet_storage::Storage;

/// The engine's (empty) state: everything lives in the mount's storage view.
pub struct Kv;

/// The factory the binary registers as type `kv`.
pub fn factory() -> EngineFactory {
    Arc::new(|_entry| Ok(Arc::new(backend()) as Arc<dyn Backend>))
}

/// Builds the engine.
pub fn backend() -> PathBackend<Kv> {
    PathBackend::new(
        Arc::new(Kv),
        vec![PathSpec::new("*path")
            .op(Operation::Read, "Retrieve the secret at the specified location.", handler(read))
            .write_op("Store a secret at the specified location.", handler(write))
            .op(Operation::Delete, "Delete the secret at the specified location.", handler(delete))
            .op(Operation::List, "List secret entries at the specified location.", handler(list))
            .exists(existence(exists))
            .any_fields()
            .help(
                "Pass-through secret storage to the storage backend, allowing you to\nread/write arbitrary data into secret storage.",
                "The pass-through backend reads and writes arbitrary data into secret storage,\nencrypting it along the way.\n\nA TTL can be specified when writing with the \"ttl\" field. If given, the\nduration of leases returned by this backend will be set to this value. This\ncan be used as a hint from the writer of a secret to the consumer of a secret\nthat the consumer should re-read the value before the TTL has expired.\nHowever, any revocation must be handled by the user of this backend; the lease\nduration does not affect the provided data in any way.",
            )],
    )
}

fn key(c: &Ctx) -> CoreResult<String> {
    let p = c.param("path");
    if p.is_empty() || p.ends_with('/') {
        return Err(CoreError::bad("missing path: a secret needs a name"));
    }
    Ok(p.to_string())
}

async fn exists(_s: Arc<Kv>, c: Ctx) -> CoreResult<bool> {
    let k = c.param("path");
    if k.is_empty() {
        return Ok(false);
    }
    Ok(c.storage.get(k).await?.is_some())
}

async fn read(_s: Arc<Kv>, c: Ctx) -> CoreResult<Option<Response>> {
    let k = key(&c)?;
    let Some(bytes) = c.storage.get(&k).await? else {
        return Err(CoreError::NotFound);
    };
    let data: Map<String, Value> = serde_json::from_slice(&bytes)
        .map_err(|e| CoreError::Internal(format!("kv entry {k}: {e}")))?;
    let mut duration = c.mount.default_lease_ttl;
    if let Some(ttl) = data.get("ttl").or_else(|| data.get("lease")) {
        if let Ok(secs) = signet_types::parse_duration(ttl) {
            duration = secs;
        }
    }
    let mut r = Response::data(data);
    r.lease = Some(Lease {
        lease_id: String::new(),
        duration,
        renewable: false,
    });
    Ok(Some(r))
}

async fn write(_s: Arc<Kv>, c: Ctx) -> CoreResult<Option<Response>> {
    let k = key(&c)?;
    let data = c.fields.raw();
    if data.is_empty() {
        return Err(CoreError::bad("missing data fields"));
    }
    if let Some(ttl) = data.get("ttl") {
        signet_types::parse_duration(ttl)
            .map_err(|e| CoreError::bad(format!("failed to parse ttl: {e}")))?;
    }
    let bytes = serde_json::to_vec(data).map_err(|e| CoreError::Internal(e.to_string()))?;
    c.storage.put(&k, bytes).await?;
    Ok(None)
}

async fn delete(_s: Arc<Kv>, c: Ctx) -> CoreResult<Option<Response>> {
    let k = key(&c)?;
    c.storage.delete(&k).await?;
    Ok(None)
}

async fn list(_s: Arc<Kv>, c: Ctx) -> CoreResult<Option<Response>> {
    let mut prefix = c.param("path").to_string();
    if !prefix.is_empty() && !prefix.ends_with('/') {
        prefix.push('/');
    }
    let after = c
        .fields
        .raw()
        .get("after")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let limit = c
        .fields
        .raw()
        .get("limit")
        .and_then(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .filter(|l| *l > 0)
        .unwrap_or(u64::MAX) as usize;
    let keys = c.storage.list_page(&prefix, &after, limit).await?;
    Response::list_or_not_found(keys)
}
