//! The `sys/` backend: seal, health, mounts, remount, internal UI helpers, OpenAPI, rotation.
//!
//! Handlers reach the core through a weak reference (the core owns this backend). Vault's sys
//! responses copy their data to the envelope's top level; [`top`] does that.

mod path_audit;
mod path_mounts;
mod path_policies;
mod path_seal;

use std::sync::{Arc, Weak};

use serde_json::Value;

use crate::error::{CoreError, CoreResult};
use crate::framework::PathBackend;
use crate::request::Response;
use crate::Core;

/// State of the sys backend.
pub struct SysState {
    core: Weak<Core>,
}

impl SysState {
    fn core(&self) -> CoreResult<Arc<Core>> {
        self.core
            .upgrade()
            .ok_or_else(|| CoreError::Internal("core is shutting down".into()))
    }
}

/// Builds the sys backend.
pub fn backend(core: Weak<Core>) -> PathBackend<SysState> {
    let mut specs = path_seal::specs();
    specs.extend(path_audit::specs());
    specs.extend(path_mounts::specs());
    specs.extend(path_policies::specs());
    PathBackend::new(Arc::new(SysState { core }), specs)
}

/// A sys response whose data is also copied to the envelope's top level.
fn top(value: Value) -> Option<Response> {
    let mut r = Response::json(value);
    r.data_at_top_level = true;
    Some(r)
}
