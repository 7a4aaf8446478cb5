//! `sys/policies/acl/:name`, the legacy `sys/policy/:name`, and `sys/capabilities`,
//! `sys/capabilities-self`, `sys/capabilities-accessor`.

use std::sync::Arc;

use serde_json::{json, Map, Value};
use signet_types::FieldType;

use super::{top, SysState};
use crate::error::{CoreError, CoreResult};
use crate::framework::{handler, Ctx, Field, PathSpec};
use crate::request::{Operation, Response};

pub fn specs() -> Vec<PathSpec<SysState>> {
    vec![
        PathSpec::new("policies/acl")
            .op(
                Operation::List,
                "List the configured access control policies.",
                handler(list_acl),
            )
            .help("List the configured access control policies.", ""),
        PathSpec::new("policies/acl/*name")
            .field(Field::new(
                "name",
                FieldType::String,
                "The name of the policy.",
            ))
            .field(Field::new(
                "policy",
                FieldType::String,
                "The rules of the policy, in HCL or JSON.",
            ))
            .op(
                Operation::Read,
                "Retrieve information about the named ACL policy.",
                handler(read_acl),
            )
            .write_op(
                "Add a new or update an existing ACL policy.",
                handler(write_policy),
            )
            .op(
                Operation::Delete,
                "Delete the ACL policy with the given name.",
                handler(delete_policy),
            )
            .help("Read, write or delete an ACL policy.", ""),
        PathSpec::new("policy")
            .op(
                Operation::Read,
                "List the configured access control policies.",
                handler(list_legacy),
            )
            .op(
                Operation::List,
                "List the configured access control policies.",
                handler(list_legacy),
            )
            .help("List the configured access control policies.", ""),
        PathSpec::new("policy/*name")
            .field(Field::new(
                "name",
                FieldType::String,
                "The name of the policy.",
            ))
            .field(Field::new(
                "policy",
                FieldType::String,
                "The rules of the policy, in HCL or JSON.",
            ))
            .field(Field::new(
                "rules",
                FieldType::String,
                "Deprecated alias of policy.",
            ))
            .op(
                Operation::Read,
                "Retrieve the policy body for the named policy.",
                handler(read_legacy),
            )
            .write_op(
                "Add a new or update an existing policy.",
                handler(write_policy),
            )
            .op(
                Operation::Delete,
                "Delete the policy with the given name.",
                handler(delete_policy),
            )
            .help("Read, write or delete a policy (legacy path).", ""),
        PathSpec::new("capabilities")
            .field(Field::new(
                "token",
                FieldType::String,
                "Token whose capabilities to check.",
            ))
            .field(Field::new(
                "paths",
                FieldType::CommaStringSlice,
                "Paths to check.",
            ))
            .field(Field::new(
                "path",
                FieldType::CommaStringSlice,
                "Deprecated alias of paths.",
            ))
            .op(
                Operation::Update,
                "Fetches the capabilities of the given token on the given paths.",
                handler(capabilities),
            )
            .help("Fetches the capabilities of a token on paths.", ""),
        PathSpec::new("capabilities-self")
            .field(Field::new(
                "paths",
                FieldType::CommaStringSlice,
                "Paths to check.",
            ))
            .field(Field::new(
                "path",
                FieldType::CommaStringSlice,
                "Deprecated alias of paths.",
            ))
            .op(
                Operation::Update,
                "Fetches the capabilities of the calling token on the given paths.",
                handler(capabilities_self),
            )
            .help(
                "Fetches the capabilities of the calling token on paths.",
                "",
            ),
        PathSpec::new("capabilities-accessor")
            .field(Field::new(
                "accessor",
                FieldType::String,
                "Accessor of the token.",
            ))
            .field(Field::new(
                "paths",
                FieldType::CommaStringSlice,
                "Paths to check.",
            ))
            .field(Field::new(
                "path",
                FieldType::CommaStringSlice,
                "Deprecated alias of paths.",
            ))
            .op(
                Operation::Update,
                "Fetches the capabilities of the token behind an accessor.",
                handler(capabilities_accessor),
            )
            .help(
                "Fetches the capabilities of the token behind an accessor on paths.",
                "",
            ),
    ]
}

async fn list_acl(s: Arc<SysState>, _c: Ctx) -> CoreResult<Option<Response>> {
    let names = s.core()?.policies().list().await?;
    Ok(Some(Response::json(json!({"keys": names}))))
}

async fn list_legacy(s: Arc<SysState>, _c: Ctx) -> CoreResult<Option<Response>> {
    let names = s.core()?.policies().list().await?;
    top(json!({"keys": names, "policies": names}))
        .map(Ok)
        .transpose()
}

async fn read_acl(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let name = c.param("name").to_lowercase();
    match s.core()?.policies().read(&name).await? {
        Some(text) => top(json!({"name": name, "policy": text}))
            .map(Ok)
            .transpose(),
        None => Err(CoreError::NotFound),
    }
}

async fn read_legacy(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let name = c.param("name").to_lowercase();
    match s.core()?.policies().read(&name).await? {
        Some(text) => top(json!({"name": name, "rules": text}))
            .map(Ok)
            .transpose(),
        None => Err(CoreError::NotFound),
    }
}

async fn write_policy(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let mut text = c.fields.str("policy");
    if text.is_empty() {
        text = c.fields.str("rules");
    }
    s.core()?.policies().write(c.param("name"), &text).await?;
    Ok(None)
}

async fn delete_policy(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    s.core()?.policies().delete(c.param("name")).await?;
    Ok(None)
}

fn paths(c: &Ctx) -> CoreResult<Vec<String>> {
    let mut p = c.fields.strings("paths");
    p.extend(c.fields.strings("path"));
    if p.is_empty() {
        return Err(CoreError::bad("paths must be supplied"));
    }
    Ok(p)
}

async fn report(
    s: &SysState,
    policies: &[String],
    paths: Vec<String>,
) -> CoreResult<Option<Response>> {
    let acl = s.core()?.policies().acl(policies).await?;
    let mut out = Map::new();
    for p in &paths {
        let caps = acl.capabilities(p.trim_start_matches('/'));
        out.insert(p.clone(), json!(caps));
    }
    if paths.len() == 1 {
        if let Some(v) = out.get(&paths[0]).cloned() {
            out.insert("capabilities".into(), v);
        }
    }
    top(Value::Object(out)).map(Ok).transpose()
}

async fn capabilities(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let token = c.fields.str("token");
    let paths = paths(&c)?;
    let core = s.core()?;
    let entry = core
        .tokens()
        .lookup(&token)
        .await?
        .ok_or_else(|| CoreError::bad("invalid token"))?;
    report(&s, &entry.policies, paths).await
}

async fn capabilities_self(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let entry = c.meta.token.clone().ok_or(CoreError::PermissionDenied)?;
    report(&s, &entry.policies, paths(&c)?).await
}

async fn capabilities_accessor(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let accessor = c.fields.str("accessor");
    let paths = paths(&c)?;
    let core = s.core()?;
    let entry = core
        .tokens()
        .lookup_accessor(&accessor)
        .await?
        .ok_or_else(|| CoreError::bad("invalid accessor"))?;
    report(&s, &entry.1.policies, paths).await
}
