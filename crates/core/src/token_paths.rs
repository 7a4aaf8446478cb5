//! `auth/token/*`: the paths of the built-in token store. This issue serves what the CLI and
//! agents need to know who they are (`lookup-self`, `lookup`) and to give a token up
//! (`revoke-self`, `revoke`); creation with roles, renewal and the accessor family arrive with
//! the identity issue on the same [`TokenStore`].

use std::sync::Arc;

use serde_json::json;
use signet_types::FieldType;

use crate::error::{CoreError, CoreResult};
use crate::framework::{handler, Ctx, Field, PathBackend, PathSpec};
use crate::request::{Operation, Response};
use crate::token::{now_secs, TokenStore};

pub fn backend(store: Arc<TokenStore>) -> PathBackend<TokenStore> {
    let specs = vec![
        PathSpec::new("lookup-self")
            .op(
                Operation::Read,
                "Look up the calling token.",
                handler(lookup_self),
            )
            .op(
                Operation::Update,
                "Look up the calling token.",
                handler(lookup_self),
            )
            .help("Returns the properties of the calling token.", ""),
        PathSpec::new("lookup")
            .field(Field::new("token", FieldType::String, "Token to look up."))
            .op(Operation::Update, "Look up a token.", handler(lookup))
            .help("Returns the properties of a token.", ""),
        PathSpec::new("revoke-self")
            .op(
                Operation::Update,
                "Revoke the calling token.",
                handler(revoke_self),
            )
            .help("Revokes the calling token.", ""),
        PathSpec::new("revoke")
            .field(Field::new("token", FieldType::String, "Token to revoke."))
            .op(Operation::Update, "Revoke a token.", handler(revoke))
            .help("Revokes a token.", ""),
    ];
    PathBackend::new(store, specs)
}

async fn lookup_self(_s: Arc<TokenStore>, c: Ctx) -> CoreResult<Option<Response>> {
    let entry = c.meta.token.clone().ok_or(CoreError::PermissionDenied)?;
    Ok(Some(Response::data(entry.lookup_json(None, now_secs()))))
}

async fn lookup(s: Arc<TokenStore>, c: Ctx) -> CoreResult<Option<Response>> {
    let token = c.fields.str("token");
    if token.is_empty() {
        return Err(CoreError::bad("missing token to look up"));
    }
    match s.lookup(&token).await? {
        Some(e) => Ok(Some(Response::data(
            e.lookup_json(Some(&token), now_secs()),
        ))),
        None => Err(CoreError::bad("bad token")),
    }
}

async fn revoke_self(s: Arc<TokenStore>, c: Ctx) -> CoreResult<Option<Response>> {
    let hash = c
        .meta
        .token_hash
        .clone()
        .ok_or(CoreError::PermissionDenied)?;
    let entry = c.meta.token.clone().ok_or(CoreError::PermissionDenied)?;
    s.revoke_by_hash(&hash, &entry).await?;
    Ok(None)
}

async fn revoke(s: Arc<TokenStore>, c: Ctx) -> CoreResult<Option<Response>> {
    let token = c.fields.str("token");
    if token.is_empty() {
        return Err(CoreError::bad("missing token to revoke"));
    }
    s.revoke(&token).await?;
    let _ = json!({});
    Ok(None)
}
