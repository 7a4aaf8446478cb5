//! The path framework every engine and `sys/*` use.
//!
//! An engine declares its API as a list of [`PathSpec`]s: a pattern with named segments, typed
//! fields with descriptions and defaults, the operations it serves with their handlers, an
//! optional existence check (which turns a POST/PUT into create or update), and help text.
//! Routing, field coercion, unknown-field warnings, 405s, OpenAPI and `path-help` are all
//! derived from those declarations by [`PathBackend`], so they cannot drift apart.
//!
//! Patterns: literal segments, `:name` (one non-empty segment), and `*name` (the rest of the
//! path, possibly containing `/`; it may be followed by literal segments, as in
//! `mounts/*path/tune`). Specs are tried in order; the first match wins.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{json, Map, Value};
use signet_storage::StorageView;
use signet_types::{coerce, FieldType};

use crate::error::{CoreError, CoreResult};
use crate::request::{Operation, Response};
use crate::RequestMeta;

/// What a mount looks like to the engine serving it.
#[derive(Debug, Clone, Default)]
pub struct MountInfo {
    /// The mount path with its trailing slash (`pki/`, `auth/approle/`).
    pub path: String,
    pub kind: String,
    pub uuid: String,
    pub accessor: String,
    /// Effective default lease TTL in seconds (mount value or the system default).
    pub default_lease_ttl: u64,
    /// Effective max lease TTL in seconds.
    pub max_lease_ttl: u64,
    pub options: Map<String, Value>,
}

/// Everything a handler gets besides the engine state.
pub struct Ctx {
    pub op: Operation,
    /// The path relative to the mount.
    pub path: String,
    /// Named segments captured by the pattern.
    pub params: BTreeMap<String, String>,
    pub fields: FieldData,
    /// The engine's own storage.
    pub storage: StorageView,
    pub mount: MountInfo,
    pub meta: Arc<RequestMeta>,
}

impl Ctx {
    /// A captured path segment (empty when absent).
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map(String::as_str).unwrap_or("")
    }
}

/// Coerced request fields.
#[derive(Debug, Clone, Default)]
pub struct FieldData {
    values: Map<String, Value>,
    provided: BTreeSet<String>,
    raw: Map<String, Value>,
}

impl FieldData {
    /// Whether the client sent this field.
    pub fn is_set(&self, name: &str) -> bool {
        self.provided.contains(name)
    }

    /// The coerced value or the declared default.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.values.get(name)
    }

    pub fn str(&self, name: &str) -> String {
        match self.values.get(name) {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        }
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(Value::Bool(true)))
    }

    pub fn i64(&self, name: &str) -> i64 {
        self.values.get(name).and_then(Value::as_i64).unwrap_or(0)
    }

    pub fn u64(&self, name: &str) -> u64 {
        self.values.get(name).and_then(Value::as_u64).unwrap_or(0)
    }

    pub fn strings(&self, name: &str) -> Vec<String> {
        match self.values.get(name) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn map(&self, name: &str) -> Map<String, Value> {
        match self.values.get(name) {
            Some(Value::Object(m)) => m.clone(),
            _ => Map::new(),
        }
    }

    /// Every field as sent, uncoerced (for engines that store arbitrary data, like KV).
    pub fn raw(&self) -> &Map<String, Value> {
        &self.raw
    }
}

/// A declared request field.
#[derive(Debug, Clone)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    pub description: &'static str,
    pub default: Option<Value>,
    pub required: bool,
}

impl Field {
    pub fn new(name: &'static str, ty: FieldType, description: &'static str) -> Self {
        Field {
            name,
            ty,
            description,
            default: None,
            required: false,
        }
    }

    pub fn default(mut self, v: Value) -> Self {
        self.default = Some(v);
        self
    }

    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

/// A handler's future.
pub type HandlerFuture = Pin<Box<dyn Future<Output = CoreResult<Option<Response>>> + Send>>;
/// An operation handler over engine state `S`.
pub type Handler<S> = Arc<dyn Fn(Arc<S>, Ctx) -> HandlerFuture + Send + Sync>;
/// An existence check's future.
pub type ExistenceFuture = Pin<Box<dyn Future<Output = CoreResult<bool>> + Send>>;
/// An existence check over engine state `S`.
pub type Existence<S> = Arc<dyn Fn(Arc<S>, Ctx) -> ExistenceFuture + Send + Sync>;

/// Wraps an `async fn(Arc<S>, Ctx) -> CoreResult<Option<Response>>` as a [`Handler`].
pub fn handler<S, F, Fut>(f: F) -> Handler<S>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CoreResult<Option<Response>>> + Send + 'static,
{
    Arc::new(move |s, c| Box::pin(f(s, c)))
}

/// Wraps an `async fn(Arc<S>, Ctx) -> CoreResult<bool>` as an [`Existence`] check.
pub fn existence<S, F, Fut>(f: F) -> Existence<S>
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Ctx) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = CoreResult<bool>> + Send + 'static,
{
    Arc::new(move |s, c| Box::pin(f(s, c)))
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Seg {
    Lit(String),
    Param(String),
    Rest(String),
}

fn parse_pattern(pattern: &str) -> Vec<Seg> {
    if pattern.is_empty() {
        return Vec::new();
    }
    pattern
        .split('/')
        .map(|s| {
            if let Some(n) = s.strip_prefix(':') {
                Seg::Param(n.to_string())
            } else if let Some(n) = s.strip_prefix('*') {
                Seg::Rest(n.to_string())
            } else {
                Seg::Lit(s.to_string())
            }
        })
        .collect()
}

fn match_segments(segs: &[Seg], path: &str) -> Option<BTreeMap<String, String>> {
    let mut params = BTreeMap::new();
    let rest_pos = segs.iter().position(|s| matches!(s, Seg::Rest(_)));
    match rest_pos {
        None => {
            let p = path.strip_suffix('/').unwrap_or(path);
            let parts: Vec<&str> = if p.is_empty() {
                Vec::new()
            } else {
                p.split('/').collect()
            };
            if parts.len() != segs.len() {
                return None;
            }
            for (seg, part) in segs.iter().zip(parts) {
                match seg {
                    Seg::Lit(l) if l == part => {}
                    Seg::Param(n) if !part.is_empty() => {
                        params.insert(n.clone(), part.to_string());
                    }
                    _ => return None,
                }
            }
            Some(params)
        }
        Some(pos) => {
            let mut rest = path;
            for seg in &segs[..pos] {
                let (head, tail) = match rest.split_once('/') {
                    Some((h, t)) => (h, t),
                    None => (rest, ""),
                };
                match seg {
                    Seg::Lit(l) if l == head => {}
                    Seg::Param(n) if !head.is_empty() => {
                        params.insert(n.clone(), head.to_string());
                    }
                    _ => return None,
                }
                rest = tail;
            }
            for seg in segs[pos + 1..].iter().rev() {
                let trimmed = rest.strip_suffix('/').unwrap_or(rest);
                let (head, tail) = match trimmed.rsplit_once('/') {
                    Some((h, t)) => (h, t),
                    None => return None,
                };
                match seg {
                    Seg::Lit(l) if l == tail => {}
                    Seg::Param(n) if !tail.is_empty() => {
                        params.insert(n.clone(), tail.to_string());
                    }
                    _ => return None,
                }
                rest = head;
            }
            if let Seg::Rest(n) = &segs[pos] {
                params.insert(n.clone(), rest.to_string());
            }
            Some(params)
        }
    }
}

/// One operation of a path.
pub struct OpSpec<S> {
    pub op: Operation,
    pub summary: &'static str,
    pub handler: Handler<S>,
}

/// A declared API path.
pub struct PathSpec<S> {
    pub pattern: &'static str,
    segs: Vec<Seg>,
    pub fields: Vec<Field>,
    pub ops: Vec<OpSpec<S>>,
    pub existence: Option<Existence<S>>,
    pub synopsis: &'static str,
    pub description: &'static str,
    /// Served without a token.
    pub unauthenticated: bool,
    /// Served while sealed (seal-status, unseal, health...). Only meaningful for `sys/`.
    pub sealed_ok: bool,
    /// Needs `sudo` on top of the operation's capability.
    pub sudo: bool,
    /// Accepts arbitrary fields (KV) instead of warning about unknown ones.
    pub any_fields: bool,
    /// Needs a token but no ACL grant: the handler makes its own access decision.
    pub no_acl: bool,
}

impl<S> PathSpec<S> {
    pub fn new(pattern: &'static str) -> Self {
        PathSpec {
            pattern,
            segs: parse_pattern(pattern),
            fields: Vec::new(),
            ops: Vec::new(),
            existence: None,
            synopsis: "",
            description: "",
            unauthenticated: false,
            sealed_ok: false,
            sudo: false,
            any_fields: false,
            no_acl: false,
        }
    }

    pub fn field(mut self, f: Field) -> Self {
        self.fields.push(f);
        self
    }

    pub fn op(mut self, op: Operation, summary: &'static str, handler: Handler<S>) -> Self {
        self.ops.push(OpSpec {
            op,
            summary,
            handler,
        });
        self
    }

    /// Registers one handler for both create and update: the core may then skip the existence
    /// check when the access decision does not depend on it (root tokens).
    pub fn write_op(mut self, summary: &'static str, handler: Handler<S>) -> Self {
        self.ops.push(OpSpec {
            op: Operation::Create,
            summary,
            handler: handler.clone(),
        });
        self.ops.push(OpSpec {
            op: Operation::Update,
            summary,
            handler,
        });
        self
    }

    pub fn exists(mut self, e: Existence<S>) -> Self {
        self.existence = Some(e);
        self
    }

    pub fn help(mut self, synopsis: &'static str, description: &'static str) -> Self {
        self.synopsis = synopsis;
        self.description = description;
        self
    }

    pub fn unauthenticated(mut self) -> Self {
        self.unauthenticated = true;
        self
    }

    pub fn sealed_ok(mut self) -> Self {
        self.sealed_ok = true;
        self
    }

    pub fn sudo(mut self) -> Self {
        self.sudo = true;
        self
    }

    pub fn sudo_if(mut self, on: bool) -> Self {
        self.sudo = on;
        self
    }

    pub fn no_acl(mut self) -> Self {
        self.no_acl = true;
        self
    }

    pub fn any_fields(mut self) -> Self {
        self.any_fields = true;
        self
    }

    fn handler_for(&self, op: Operation) -> Option<&Handler<S>> {
        self.ops.iter().find(|o| o.op == op).map(|o| &o.handler)
    }
}

/// What the core needs to know about a matched path before running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteInfo {
    pub unauthenticated: bool,
    pub sealed_ok: bool,
    pub sudo: bool,
    pub has_existence_check: bool,
    /// Create and update run the same handler: the existence check only matters for access.
    pub same_create_update: bool,
    /// Token required, ACL skipped (the handler decides).
    pub no_acl: bool,
}

/// Per-request environment the core hands an engine.
#[derive(Clone)]
pub struct Env {
    pub storage: StorageView,
    pub mount: MountInfo,
    pub meta: Arc<RequestMeta>,
}

/// An engine as the core sees it. Implemented by [`PathBackend`]; the core never names an
/// engine type.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Matches a mount-relative path.
    fn route(&self, path: &str) -> Option<RouteInfo>;

    /// Runs the existence check for a write; `None` when the path has none.
    async fn exists(
        &self,
        path: &str,
        data: &Map<String, Value>,
        env: Env,
    ) -> CoreResult<Option<bool>>;

    /// Runs an operation.
    async fn handle(
        &self,
        op: Operation,
        path: &str,
        data: Map<String, Value>,
        env: Env,
    ) -> CoreResult<Option<Response>>;

    /// OpenAPI path items, keyed by `/<mount><path>`.
    fn openapi(&self, mount: &str) -> Map<String, Value>;

    /// Help for a path: Vault's help text and the matching OpenAPI fragment.
    fn help(&self, mount: &str, path: &str) -> Option<Value>;

    /// Called once when the mount is removed, before its storage is cleared.
    async fn cleanup(&self, _env: Env) -> CoreResult<()> {
        Ok(())
    }

    /// Background work (CRL rebuilds, auto-tidy), called about once a minute on an unsealed
    /// node by the core's maintenance task.
    async fn periodic(&self, _env: Env) -> CoreResult<()> {
        Ok(())
    }

    /// Another node wrote `key` (relative to the mount's storage), or `None`: anything may
    /// have changed. Drop whatever in-memory copy depends on it.
    fn invalidate(&self, _key: Option<&str>) {}

    /// Whether no in-memory copy anywhere depends on `key` (relative to the mount's storage):
    /// writes of such keys are not announced to other nodes (see `Coordination::set_quiet`).
    fn uncached(&self, _key: &str) -> bool {
        false
    }
}

/// An engine's cache invalidation hook (see [`Backend::invalidate`]).
pub type Invalidator<S> = Arc<dyn Fn(&S, Option<&str>) + Send + Sync>;

/// A [`Backend`] made of path specs over engine state `S`.
pub struct PathBackend<S> {
    state: Arc<S>,
    specs: Vec<PathSpec<S>>,
    periodic: Option<Handler<S>>,
    invalidator: Option<Invalidator<S>>,
    uncached: &'static [&'static str],
}

impl<S: Send + Sync + 'static> PathBackend<S> {
    pub fn new(state: Arc<S>, specs: Vec<PathSpec<S>>) -> Self {
        PathBackend {
            state,
            specs,
            periodic: None,
            invalidator: None,
            uncached: &[],
        }
    }

    /// Storage prefixes no cache of the engine depends on (see [`Backend::uncached`]).
    pub fn with_uncached(mut self, prefixes: &'static [&'static str]) -> Self {
        self.uncached = prefixes;
        self
    }

    /// Sets the engine's cache invalidation (see [`Backend::invalidate`]).
    pub fn with_invalidate(mut self, f: Invalidator<S>) -> Self {
        self.invalidator = Some(f);
        self
    }

    /// Sets the engine's background work (see [`Backend::periodic`]); the handler gets a
    /// context with no path and no fields.
    pub fn with_periodic(mut self, h: Handler<S>) -> Self {
        self.periodic = Some(h);
        self
    }

    fn find(&self, path: &str) -> Option<(&PathSpec<S>, BTreeMap<String, String>)> {
        self.specs
            .iter()
            .find_map(|s| match_segments(&s.segs, path).map(|p| (s, p)))
    }

    fn build_ctx(
        spec: &PathSpec<S>,
        op: Operation,
        path: &str,
        params: BTreeMap<String, String>,
        data: Map<String, Value>,
        env: Env,
    ) -> CoreResult<(Ctx, Vec<String>)> {
        let mut values = Map::new();
        let mut provided = BTreeSet::new();
        let mut unknown = Vec::new();
        for (k, v) in &data {
            if params.contains_key(k) {
                continue;
            }
            match spec.fields.iter().find(|f| f.name == k) {
                Some(f) => {
                    let c = coerce(v, f.ty).map_err(|e| {
                        CoreError::bad(format!(
                            "error converting input {} for field \"{}\": {}",
                            short(v),
                            k,
                            e
                        ))
                    })?;
                    values.insert(k.clone(), c);
                    provided.insert(k.clone());
                }
                None if spec.any_fields => {}
                None => unknown.push(k.clone()),
            }
        }
        for f in &spec.fields {
            if !values.contains_key(f.name) {
                if let Some(d) = &f.default {
                    let c = coerce(d, f.ty).unwrap_or_else(|_| d.clone());
                    values.insert(f.name.to_string(), c);
                }
            }
        }
        let mut warnings = Vec::new();
        if !unknown.is_empty() && op != Operation::Read && op != Operation::List {
            unknown.sort();
            warnings.push(format!(
                "Endpoint ignored these unrecognized parameters: [{}]",
                unknown.join(" ")
            ));
        }
        Ok((
            Ctx {
                op,
                path: path.to_string(),
                params,
                fields: FieldData {
                    values,
                    provided,
                    raw: data,
                },
                storage: env.storage,
                mount: env.mount,
                meta: env.meta,
            },
            warnings,
        ))
    }

    fn openapi_item(&self, mount: &str, spec: &PathSpec<S>) -> (String, Value) {
        let mut path = format!("/{mount}");
        let mut params = Vec::new();
        for (i, seg) in spec.segs.iter().enumerate() {
            if i > 0 {
                path.push('/');
            }
            match seg {
                Seg::Lit(l) => path.push_str(l),
                Seg::Param(n) | Seg::Rest(n) => {
                    path.push_str(&format!("{{{n}}}"));
                    let desc = spec
                        .fields
                        .iter()
                        .find(|f| f.name == n)
                        .map(|f| f.description)
                        .unwrap_or("");
                    params.push(json!({
                        "name": n, "description": desc, "in": "path",
                        "schema": {"type": "string"}, "required": true
                    }));
                }
            }
        }
        let mut item = Map::new();
        item.insert(
            "description".into(),
            Value::String(spec.synopsis.to_string()),
        );
        if !params.is_empty() {
            item.insert("parameters".into(), Value::Array(params));
        }
        let path_params: BTreeSet<&str> = spec
            .segs
            .iter()
            .filter_map(|s| match s {
                Seg::Param(n) | Seg::Rest(n) => Some(n.as_str()),
                Seg::Lit(_) => None,
            })
            .collect();
        let mut properties = Map::new();
        let mut required = Vec::new();
        for f in spec.fields.iter().filter(|f| !path_params.contains(f.name)) {
            let (ty, fmt) = f.ty.openapi_type();
            let mut p = Map::new();
            p.insert("type".into(), json!(ty));
            if ty == "array" {
                p.insert("items".into(), json!({"type": fmt.unwrap_or("string")}));
            } else if let Some(fmt) = fmt {
                p.insert("format".into(), json!(fmt));
            }
            p.insert("description".into(), json!(f.description));
            if let Some(d) = &f.default {
                p.insert("default".into(), d.clone());
            }
            properties.insert(f.name.to_string(), Value::Object(p));
            if f.required {
                required.push(json!(f.name));
            }
        }
        for o in &spec.ops {
            let (method, body) = match o.op {
                Operation::Read => ("get", false),
                Operation::List => ("get", false),
                Operation::Create | Operation::Update => ("post", true),
                Operation::Patch => ("patch", true),
                Operation::Delete => ("delete", false),
                Operation::Help => continue,
            };
            if item.contains_key(method) {
                continue;
            }
            let mut op = Map::new();
            op.insert("summary".into(), json!(o.summary));
            op.insert(
                "operationId".into(),
                json!(format!(
                    "{}-{}",
                    o.op.as_str(),
                    path.trim_matches('/').replace(['/', '{', '}'], "-")
                )),
            );
            if o.op == Operation::List {
                op.insert(
                    "parameters".into(),
                    json!([{"name": "list", "description": "Must be set to `true`",
                            "in": "query", "schema": {"type": "string", "enum": ["true"]},
                            "required": true}]),
                );
            }
            if body && !properties.is_empty() {
                let mut schema = Map::new();
                schema.insert("type".into(), json!("object"));
                schema.insert("properties".into(), Value::Object(properties.clone()));
                if !required.is_empty() {
                    schema.insert("required".into(), Value::Array(required.clone()));
                }
                op.insert(
                    "requestBody".into(),
                    json!({"required": true, "content": {"application/json": {"schema": schema}}}),
                );
            }
            op.insert("responses".into(), json!({"200": {"description": "OK"}}));
            item.insert(method.into(), Value::Object(op));
        }
        (path, Value::Object(item))
    }
}

fn short(v: &Value) -> String {
    let s = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.len() > 64 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(61).map(|(i, _)| i).unwrap_or(s.len())]
        )
    } else {
        s
    }
}

#[async_trait]
impl<S: Send + Sync + 'static> Backend for PathBackend<S> {
    async fn periodic(&self, env: Env) -> CoreResult<()> {
        let Some(h) = &self.periodic else {
            return Ok(());
        };
        let ctx = Ctx {
            op: Operation::Update,
            path: String::new(),
            params: BTreeMap::new(),
            fields: FieldData::default(),
            storage: env.storage,
            mount: env.mount,
            meta: env.meta,
        };
        h(self.state.clone(), ctx).await.map(|_| ())
    }

    fn invalidate(&self, key: Option<&str>) {
        if let Some(f) = &self.invalidator {
            f(&self.state, key);
        }
    }

    fn uncached(&self, key: &str) -> bool {
        self.uncached.iter().any(|p| key.starts_with(p))
    }

    fn route(&self, path: &str) -> Option<RouteInfo> {
        self.find(path).map(|(s, _)| RouteInfo {
            unauthenticated: s.unauthenticated,
            sealed_ok: s.sealed_ok,
            sudo: s.sudo,
            no_acl: s.no_acl,
            has_existence_check: s.existence.is_some(),
            same_create_update: match (
                s.handler_for(Operation::Create),
                s.handler_for(Operation::Update),
            ) {
                (Some(c), Some(u)) => Arc::ptr_eq(c, u),
                _ => false,
            },
        })
    }

    async fn exists(
        &self,
        path: &str,
        data: &Map<String, Value>,
        env: Env,
    ) -> CoreResult<Option<bool>> {
        let Some((spec, params)) = self.find(path) else {
            return Ok(None);
        };
        let Some(check) = &spec.existence else {
            return Ok(None);
        };
        let (ctx, _) = Self::build_ctx(spec, Operation::Read, path, params, data.clone(), env)?;
        check(self.state.clone(), ctx).await.map(Some)
    }

    async fn handle(
        &self,
        op: Operation,
        path: &str,
        data: Map<String, Value>,
        env: Env,
    ) -> CoreResult<Option<Response>> {
        let Some((spec, params)) = self.find(path) else {
            return Err(CoreError::NoRoute(format!("{}{}", env.mount.path, path)));
        };
        let handler = match spec.handler_for(op) {
            Some(h) => h.clone(),
            // A path without a create handler treats create as update, as Vault does.
            None if op == Operation::Create => spec
                .handler_for(Operation::Update)
                .cloned()
                .ok_or(CoreError::UnsupportedOperation)?,
            None => return Err(CoreError::UnsupportedOperation),
        };
        let (ctx, warnings) = Self::build_ctx(spec, op, path, params, data, env)?;
        let resp = handler(self.state.clone(), ctx).await?;
        if warnings.is_empty() {
            return Ok(resp);
        }
        let mut resp = resp.unwrap_or_default();
        resp.warnings.extend(warnings);
        Ok(Some(resp))
    }

    fn openapi(&self, mount: &str) -> Map<String, Value> {
        let mut out = Map::new();
        for spec in &self.specs {
            let (path, item) = self.openapi_item(mount, spec);
            out.entry(path).or_insert(item);
        }
        out
    }

    fn help(&self, mount: &str, path: &str) -> Option<Value> {
        let (spec, _) = self.find(path)?;
        let mut text = format!(
            "Request:        {path}\nMatching Route: {}\n\n{}\n",
            spec.pattern, spec.synopsis
        );
        if !spec.fields.is_empty() {
            text.push_str("\n## PARAMETERS\n");
            for f in &spec.fields {
                text.push_str(&format!(
                    "\n    {} ({})\n\n        {}\n",
                    f.name,
                    f.ty.help_name(),
                    f.description
                ));
            }
        }
        if !spec.description.is_empty() {
            text.push_str(&format!("\n## DESCRIPTION\n\n{}", spec.description));
        }
        let (p, item) = self.openapi_item(mount, spec);
        let mut paths = Map::new();
        paths.insert(p, item);
        Some(json!({"help": text, "openapi": crate::openapi_document(paths)}))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn m(p: &str, path: &str) -> Option<Vec<(String, String)>> {
        match_segments(&parse_pattern(p), path).map(|m| m.into_iter().collect())
    }

    #[test]
    fn literal_and_params() {
        assert_eq!(m("roles", "roles"), Some(vec![]));
        assert_eq!(m("roles", "roles/"), Some(vec![]));
        assert_eq!(
            m("roles/:name", "roles/web"),
            Some(vec![("name".into(), "web".into())])
        );
        assert_eq!(m("roles/:name", "roles/"), None);
        assert_eq!(m("roles/:name", "roles/a/b"), None);
        assert_eq!(m("", ""), Some(vec![]));
    }

    #[test]
    fn rest_captures() {
        assert_eq!(m("*path", ""), Some(vec![("path".into(), "".into())]));
        assert_eq!(
            m("*path", "a/b/"),
            Some(vec![("path".into(), "a/b/".into())])
        );
        assert_eq!(
            m("mounts/*path/tune", "mounts/a/b/tune"),
            Some(vec![("path".into(), "a/b".into())])
        );
        assert_eq!(m("mounts/*path/tune", "mounts/a/b"), None);
        assert_eq!(
            m("mounts/*path", "mounts/a/b"),
            Some(vec![("path".into(), "a/b".into())])
        );
        assert_eq!(m("mounts/*path", "other/a"), None);
    }
}
