//! AppRole (`approle`): machines log in with a role ID and a secret ID (seed 004: cert-manager
//! and istio-csr).
//!
//! Storage (the mount's view): `role/<name>` (the role, with its role ID), `role_id/<hmac>`
//! (role ID -> role name), `secret_id/<role>/<hmac(secret id)>` (the secret ID's entry, never
//! the secret ID itself) and `accessor/<role>/<hmac(accessor)>` (accessor -> secret ID hash).
//! Consuming a limited-use secret ID is serialised per mount, so a single-use secret ID logs in
//! once even under concurrent replays.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use signet_core::framework::{existence, handler, Backend, Ctx, Field, PathBackend, PathSpec};
use signet_core::token::{cidr_contains, now_secs, rfc3339, valid_cidr};
use signet_core::{CoreError, CoreResult, EngineFactory, Login, Operation, Response, TokenParams};
use signet_storage::{Op, Storage, StorageView};
use signet_types::FieldType;

use crate::salt;

/// The engine state: a lock that serialises secret-ID consumption.
#[derive(Default)]
pub struct AppRole {
    consume: tokio::sync::Mutex<()>,
}

/// The factory the binary registers as auth type `approle`.
pub fn factory() -> EngineFactory {
    Arc::new(|_entry| Ok(Arc::new(backend()) as Arc<dyn Backend>))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Role {
    name: String,
    role_id: String,
    bind_secret_id: bool,
    #[serde(default)]
    secret_id_bound_cidrs: Vec<String>,
    #[serde(default)]
    secret_id_num_uses: i64,
    #[serde(default)]
    secret_id_ttl: u64,
    #[serde(default)]
    local_secret_ids: bool,
    #[serde(default)]
    token: TokenParams,
}

impl Role {
    fn to_json(&self) -> Value {
        let mut m = self.token.to_json();
        m.insert("bind_secret_id".into(), json!(self.bind_secret_id));
        m.insert("local_secret_ids".into(), json!(self.local_secret_ids));
        m.insert(
            "secret_id_bound_cidrs".into(),
            if self.secret_id_bound_cidrs.is_empty() {
                Value::Null
            } else {
                json!(self.secret_id_bound_cidrs)
            },
        );
        m.insert("secret_id_num_uses".into(), json!(self.secret_id_num_uses));
        m.insert("secret_id_ttl".into(), json!(self.secret_id_ttl));
        // Vault also reports the legacy names.
        m.insert("policies".into(), json!(self.token.token_policies));
        m.insert("period".into(), json!(self.token.token_period));
        Value::Object(m)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct SecretIdEntry {
    accessor: String,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
    #[serde(default)]
    cidr_list: Vec<String>,
    #[serde(default)]
    token_bound_cidrs: Vec<String>,
    #[serde(default)]
    num_uses: i64,
    #[serde(default)]
    ttl: u64,
    creation_time: u64,
    #[serde(default)]
    expiration_time: u64,
    #[serde(default)]
    last_updated_time: u64,
}

impl SecretIdEntry {
    fn expired(&self, now: u64) -> bool {
        self.expiration_time > 0 && now >= self.expiration_time
    }

    fn to_json(&self) -> Value {
        json!({
            "cidr_list": self.cidr_list,
            "creation_time": rfc3339(self.creation_time),
            "expiration_time": if self.expiration_time > 0 { rfc3339(self.expiration_time) } else { "0001-01-01T00:00:00Z".to_string() },
            "last_updated_time": rfc3339(self.last_updated_time.max(self.creation_time)),
            "metadata": self.metadata,
            "secret_id_accessor": self.accessor,
            "secret_id_num_uses": self.num_uses,
            "secret_id_ttl": self.ttl,
            "token_bound_cidrs": self.token_bound_cidrs,
        })
    }
}

fn role_spec() -> PathSpec<AppRole> {
    let spec = PathSpec::new("role/:role_name")
        .field(Field::new(
            "role_name",
            FieldType::String,
            "Name of the role.",
        ))
        .field(
            Field::new(
                "bind_secret_id",
                FieldType::Bool,
                "Require a secret ID at login.",
            )
            .default(json!(true)),
        )
        .field(Field::new(
            "secret_id_bound_cidrs",
            FieldType::CommaStringSlice,
            "CIDR blocks secret IDs may log in from.",
        ))
        .field(Field::new(
            "secret_id_num_uses",
            FieldType::Int,
            "Logins per secret ID (0 = unlimited).",
        ))
        .field(Field::new(
            "secret_id_ttl",
            FieldType::DurationSecond,
            "Lifetime of secret IDs (0 = unlimited).",
        ))
        .field(Field::new(
            "local_secret_ids",
            FieldType::Bool,
            "Accepted for compatibility.",
        ))
        .field(Field::new(
            "role_id",
            FieldType::String,
            "Role ID to use (generated when absent).",
        ));
    TokenParams::fields(spec)
        .op(Operation::Read, "Read a role.", handler(read_role))
        .op(Operation::Create, "Create a role.", handler(write_role))
        .op(Operation::Update, "Update a role.", handler(write_role))
        .op(Operation::Delete, "Delete a role.", handler(delete_role))
        .exists(existence(role_exists))
        .help("Create, read, update or delete an AppRole role.", "")
}

fn secret_id_fields(spec: PathSpec<AppRole>) -> PathSpec<AppRole> {
    spec.field(Field::new(
        "role_name",
        FieldType::String,
        "Name of the role.",
    ))
    .field(Field::new(
        "metadata",
        FieldType::String,
        "JSON object of string metadata attached to tokens of this secret ID.",
    ))
    .field(Field::new(
        "cidr_list",
        FieldType::CommaStringSlice,
        "CIDR blocks this secret ID may log in from.",
    ))
    .field(Field::new(
        "token_bound_cidrs",
        FieldType::CommaStringSlice,
        "CIDR blocks tokens of this secret ID may be used from.",
    ))
    .field(Field::new(
        "ttl",
        FieldType::DurationSecond,
        "Lifetime of this secret ID.",
    ))
    .field(Field::new(
        "num_uses",
        FieldType::Int,
        "Logins allowed with this secret ID.",
    ))
}

/// Builds the engine.
pub fn backend() -> PathBackend<AppRole> {
    let specs = vec![
        PathSpec::new("login")
            .field(Field::new("role_id", FieldType::String, "The role ID."))
            .field(Field::new("secret_id", FieldType::String, "The secret ID."))
            .op(
                Operation::Update,
                "Log in with a role ID and secret ID.",
                handler(login),
            )
            .help("Issue a token for a role ID and secret ID.", "")
            .unauthenticated(),
        PathSpec::new("role")
            .op(Operation::List, "List roles.", handler(list_roles))
            .help("List the roles.", ""),
        PathSpec::new("role/:role_name/role-id")
            .field(Field::new(
                "role_name",
                FieldType::String,
                "Name of the role.",
            ))
            .field(Field::new("role_id", FieldType::String, "New role ID."))
            .op(Operation::Read, "Read the role ID.", handler(read_role_id))
            .op(
                Operation::Update,
                "Set the role ID.",
                handler(write_role_id),
            )
            .help("Read or set a role's role ID.", ""),
        secret_id_fields(PathSpec::new("role/:role_name/secret-id"))
            .op(
                Operation::Update,
                "Generate a secret ID.",
                handler(|s, c| new_secret_id(s, c, false)),
            )
            .op(
                Operation::List,
                "List secret ID accessors.",
                handler(list_secret_ids),
            )
            .help(
                "Generate a secret ID for a role, or list their accessors.",
                "",
            ),
        secret_id_fields(PathSpec::new("role/:role_name/custom-secret-id"))
            .field(Field::new(
                "secret_id",
                FieldType::String,
                "The secret ID to register.",
            ))
            .op(
                Operation::Update,
                "Register a chosen secret ID.",
                handler(|s, c| new_secret_id(s, c, true)),
            )
            .help("Register a secret ID of your choosing.", ""),
        PathSpec::new("role/:role_name/secret-id/lookup")
            .field(Field::new(
                "role_name",
                FieldType::String,
                "Name of the role.",
            ))
            .field(Field::new("secret_id", FieldType::String, "The secret ID."))
            .op(
                Operation::Update,
                "Read a secret ID's properties.",
                handler(|s, c| secret_id_op(s, c, By::Secret, Act::Lookup)),
            )
            .help("Read the properties of a secret ID.", ""),
        PathSpec::new("role/:role_name/secret-id/destroy")
            .field(Field::new(
                "role_name",
                FieldType::String,
                "Name of the role.",
            ))
            .field(Field::new("secret_id", FieldType::String, "The secret ID."))
            .op(
                Operation::Update,
                "Destroy a secret ID.",
                handler(|s, c| secret_id_op(s, c, By::Secret, Act::Destroy)),
            )
            .op(
                Operation::Delete,
                "Destroy a secret ID.",
                handler(|s, c| secret_id_op(s, c, By::Secret, Act::Destroy)),
            )
            .help("Destroy a secret ID.", ""),
        PathSpec::new("role/:role_name/secret-id-accessor/lookup")
            .field(Field::new(
                "role_name",
                FieldType::String,
                "Name of the role.",
            ))
            .field(Field::new(
                "secret_id_accessor",
                FieldType::String,
                "The secret ID's accessor.",
            ))
            .op(
                Operation::Update,
                "Read a secret ID's properties by accessor.",
                handler(|s, c| secret_id_op(s, c, By::Accessor, Act::Lookup)),
            )
            .help("Read the properties of a secret ID by its accessor.", ""),
        PathSpec::new("role/:role_name/secret-id-accessor/destroy")
            .field(Field::new(
                "role_name",
                FieldType::String,
                "Name of the role.",
            ))
            .field(Field::new(
                "secret_id_accessor",
                FieldType::String,
                "The secret ID's accessor.",
            ))
            .op(
                Operation::Update,
                "Destroy a secret ID by accessor.",
                handler(|s, c| secret_id_op(s, c, By::Accessor, Act::Destroy)),
            )
            .op(
                Operation::Delete,
                "Destroy a secret ID by accessor.",
                handler(|s, c| secret_id_op(s, c, By::Accessor, Act::Destroy)),
            )
            .help("Destroy a secret ID by its accessor.", ""),
        role_spec(),
        PathSpec::new("tidy/secret-id")
            .op(
                Operation::Update,
                "Remove expired secret IDs.",
                handler(tidy),
            )
            .help("Remove expired secret IDs and dangling accessors.", ""),
    ];
    PathBackend::new(Arc::new(AppRole::default()), specs)
}

fn role_name(c: &Ctx) -> String {
    c.param("role_name").to_lowercase()
}

async fn load_role(view: &StorageView, name: &str) -> CoreResult<Option<Role>> {
    Ok(view.get_json(&format!("role/{name}")).await?)
}

async fn role_exists(_s: Arc<AppRole>, c: Ctx) -> CoreResult<bool> {
    Ok(load_role(&c.storage, &role_name(&c)).await?.is_some())
}

async fn list_roles(_s: Arc<AppRole>, c: Ctx) -> CoreResult<Option<Response>> {
    let keys = c.storage.list("role/").await?;
    Response::list_or_not_found(keys)
}

async fn read_role(_s: Arc<AppRole>, c: Ctx) -> CoreResult<Option<Response>> {
    match load_role(&c.storage, &role_name(&c)).await? {
        Some(r) => Ok(Some(Response::json(r.to_json()))),
        None => Err(CoreError::NotFound),
    }
}

fn check_cidrs(list: &[String], what: &str) -> CoreResult<()> {
    match list.iter().find(|c| !valid_cidr(c)) {
        Some(bad) => Err(CoreError::bad(format!("invalid CIDR {bad:?} in {what}"))),
        None => Ok(()),
    }
}

async fn write_role(_s: Arc<AppRole>, c: Ctx) -> CoreResult<Option<Response>> {
    let name = role_name(&c);
    if name.is_empty() || name.len() > 4096 || name.contains('/') {
        return Err(CoreError::bad("invalid role name"));
    }
    let existing = load_role(&c.storage, &name).await?;
    let creating = existing.is_none();
    let mut role = existing.unwrap_or(Role {
        name: name.clone(),
        bind_secret_id: true,
        ..Default::default()
    });
    let f = &c.fields;
    if f.is_set("bind_secret_id") || creating {
        role.bind_secret_id = f.bool("bind_secret_id");
    }
    if f.is_set("secret_id_bound_cidrs") {
        role.secret_id_bound_cidrs = f.strings("secret_id_bound_cidrs");
        check_cidrs(&role.secret_id_bound_cidrs, "secret_id_bound_cidrs")?;
    }
    if f.is_set("secret_id_num_uses") {
        if f.i64("secret_id_num_uses") < 0 {
            return Err(CoreError::bad("secret_id_num_uses cannot be negative"));
        }
        role.secret_id_num_uses = f.i64("secret_id_num_uses");
    }
    if f.is_set("secret_id_ttl") {
        role.secret_id_ttl = f.u64("secret_id_ttl");
    }
    if f.is_set("local_secret_ids") {
        role.local_secret_ids = f.bool("local_secret_ids");
    }
    role.token.update(f)?;
    if !role.bind_secret_id
        && role.secret_id_bound_cidrs.is_empty()
        && role.token.token_bound_cidrs.is_empty()
    {
        return Err(CoreError::bad(
            "at least one constraint should be enabled on the role",
        ));
    }
    let salt = salt::load(&c.storage).await?;
    let mut ops = Vec::new();
    let new_role_id = if f.is_set("role_id") && !f.str("role_id").is_empty() {
        Some(f.str("role_id"))
    } else if creating {
        Some(uuid::Uuid::new_v4().to_string())
    } else {
        None
    };
    if let Some(rid) = new_role_id {
        let idx = format!("role_id/{}", salt::hash(&salt, &rid));
        if let Some(owner) = c.storage.get(&idx).await? {
            if owner != name.as_bytes() {
                return Err(CoreError::bad("role_id already in use"));
            }
        }
        if !role.role_id.is_empty() && role.role_id != rid {
            ops.push(Op::Delete(format!(
                "role_id/{}",
                salt::hash(&salt, &role.role_id)
            )));
        }
        role.role_id = rid;
        ops.push(Op::Put(idx, name.clone().into_bytes()));
    }
    let bytes = serde_json::to_vec(&role).map_err(|e| CoreError::Internal(e.to_string()))?;
    ops.push(Op::Put(format!("role/{name}"), bytes));
    c.storage.apply(ops).await?;
    Ok(None)
}

async fn delete_role(_s: Arc<AppRole>, c: Ctx) -> CoreResult<Option<Response>> {
    let name = role_name(&c);
    let Some(role) = load_role(&c.storage, &name).await? else {
        return Ok(None);
    };
    let salt = salt::load(&c.storage).await?;
    let mut ops = vec![
        Op::Delete(format!("role/{name}")),
        Op::Delete(format!("role_id/{}", salt::hash(&salt, &role.role_id))),
    ];
    for k in c.storage.list(&format!("secret_id/{name}/")).await? {
        ops.push(Op::Delete(format!("secret_id/{name}/{k}")));
    }
    for k in c.storage.list(&format!("accessor/{name}/")).await? {
        ops.push(Op::Delete(format!("accessor/{name}/{k}")));
    }
    c.storage.apply(ops).await?;
    Ok(None)
}

async fn read_role_id(_s: Arc<AppRole>, c: Ctx) -> CoreResult<Option<Response>> {
    match load_role(&c.storage, &role_name(&c)).await? {
        Some(r) => Ok(Some(Response::json(json!({"role_id": r.role_id})))),
        None => Err(CoreError::NotFound),
    }
}

async fn write_role_id(_s: Arc<AppRole>, c: Ctx) -> CoreResult<Option<Response>> {
    let name = role_name(&c);
    let Some(mut role) = load_role(&c.storage, &name).await? else {
        return Err(CoreError::bad(format!("role {name} does not exist")));
    };
    let rid = c.fields.str("role_id");
    if rid.is_empty() {
        return Err(CoreError::bad("missing role_id"));
    }
    let salt = salt::load(&c.storage).await?;
    let idx = format!("role_id/{}", salt::hash(&salt, &rid));
    if let Some(owner) = c.storage.get(&idx).await? {
        if owner != name.as_bytes() {
            return Err(CoreError::bad("role_id already in use"));
        }
    }
    let old = format!("role_id/{}", salt::hash(&salt, &role.role_id));
    role.role_id = rid;
    let bytes = serde_json::to_vec(&role).map_err(|e| CoreError::Internal(e.to_string()))?;
    c.storage
        .apply(vec![
            Op::Delete(old),
            Op::Put(idx, name.into_bytes()),
            Op::Put(format!("role/{}", role.name), bytes),
        ])
        .await?;
    Ok(None)
}

async fn new_secret_id(_s: Arc<AppRole>, c: Ctx, custom: bool) -> CoreResult<Option<Response>> {
    let name = role_name(&c);
    let Some(role) = load_role(&c.storage, &name).await? else {
        return Err(CoreError::bad(format!("role \"{name}\" does not exist")));
    };
    if !role.bind_secret_id {
        return Err(CoreError::bad("bind_secret_id is not set on the role"));
    }
    let secret_id = if custom {
        let s = c.fields.str("secret_id");
        if s.is_empty() {
            return Err(CoreError::bad("missing secret_id"));
        }
        s
    } else {
        uuid::Uuid::new_v4().to_string()
    };
    let metadata: BTreeMap<String, String> = match c.fields.str("metadata").as_str() {
        "" => BTreeMap::new(),
        text => {
            let v: Map<String, Value> = serde_json::from_str(text)
                .map_err(|e| CoreError::bad(format!("failed to parse metadata: {e}")))?;
            v.into_iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k, s)),
                    _ => Err(CoreError::bad("metadata values must be strings")),
                })
                .collect::<CoreResult<_>>()?
        }
    };
    let cidr_list = c.fields.strings("cidr_list");
    check_cidrs(&cidr_list, "cidr_list")?;
    let token_bound_cidrs = c.fields.strings("token_bound_cidrs");
    check_cidrs(&token_bound_cidrs, "token_bound_cidrs")?;
    let mut num_uses = role.secret_id_num_uses;
    if c.fields.is_set("num_uses") {
        let n = c.fields.i64("num_uses");
        if n < 0 {
            return Err(CoreError::bad("num_uses cannot be negative"));
        }
        if role.secret_id_num_uses > 0 && (n == 0 || n > role.secret_id_num_uses) {
            return Err(CoreError::bad(
                "num_uses cannot be higher than the role's secret_id_num_uses",
            ));
        }
        num_uses = n;
    }
    let mut ttl = role.secret_id_ttl;
    if c.fields.is_set("ttl") {
        let t = c.fields.u64("ttl");
        if role.secret_id_ttl > 0 && (t == 0 || t > role.secret_id_ttl) {
            return Err(CoreError::bad(
                "ttl cannot be longer than the role's secret_id_ttl",
            ));
        }
        ttl = t;
    }
    let now = now_secs();
    let entry = SecretIdEntry {
        accessor: uuid::Uuid::new_v4().to_string(),
        metadata,
        cidr_list,
        token_bound_cidrs,
        num_uses,
        ttl,
        creation_time: now,
        expiration_time: if ttl > 0 { now + ttl } else { 0 },
        last_updated_time: now,
    };
    let salt = salt::load(&c.storage).await?;
    let sid_hash = salt::hash(&salt, &secret_id);
    let key = format!("secret_id/{name}/{sid_hash}");
    if c.storage.get(&key).await?.is_some() {
        return Err(CoreError::bad("secret_id is already registered"));
    }
    let bytes = serde_json::to_vec(&entry).map_err(|e| CoreError::Internal(e.to_string()))?;
    c.storage
        .apply(vec![
            Op::Put(key, bytes),
            Op::Put(
                format!("accessor/{name}/{}", salt::hash(&salt, &entry.accessor)),
                sid_hash.into_bytes(),
            ),
        ])
        .await?;
    Ok(Some(Response::json(json!({
        "secret_id": secret_id,
        "secret_id_accessor": entry.accessor,
        "secret_id_num_uses": entry.num_uses,
        "secret_id_ttl": entry.ttl,
    }))))
}

async fn list_secret_ids(_s: Arc<AppRole>, c: Ctx) -> CoreResult<Option<Response>> {
    let name = role_name(&c);
    if load_role(&c.storage, &name).await?.is_none() {
        return Err(CoreError::bad(format!("role \"{name}\" does not exist")));
    }
    let mut accessors = Vec::new();
    for k in c.storage.list(&format!("secret_id/{name}/")).await? {
        let e: Option<SecretIdEntry> = c.storage.get_json(&format!("secret_id/{name}/{k}")).await?;
        if let Some(e) = e {
            accessors.push(e.accessor);
        }
    }
    if accessors.is_empty() {
        return Err(CoreError::NotFound);
    }
    accessors.sort();
    Ok(Some(Response::list(accessors)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum By {
    Secret,
    Accessor,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    Lookup,
    Destroy,
}

async fn secret_id_op(_s: Arc<AppRole>, c: Ctx, by: By, act: Act) -> CoreResult<Option<Response>> {
    let name = role_name(&c);
    if load_role(&c.storage, &name).await?.is_none() {
        return Err(CoreError::bad(format!("role \"{name}\" does not exist")));
    }
    let salt = salt::load(&c.storage).await?;
    let sid_hash = match by {
        By::Secret => {
            let sid = c.fields.str("secret_id");
            if sid.is_empty() {
                return Err(CoreError::bad("missing secret_id"));
            }
            salt::hash(&salt, &sid)
        }
        By::Accessor => {
            let acc = c.fields.str("secret_id_accessor");
            if acc.is_empty() {
                return Err(CoreError::bad("missing secret_id_accessor"));
            }
            match c
                .storage
                .get(&format!("accessor/{name}/{}", salt::hash(&salt, &acc)))
                .await?
            {
                Some(h) => String::from_utf8(h)
                    .map_err(|_| CoreError::Internal("accessor index corrupt".into()))?,
                None => {
                    return Err(CoreError::bad(format!(
                        "failed to find accessor entry for secret_id_accessor: {acc:?}"
                    )))
                }
            }
        }
    };
    let key = format!("secret_id/{name}/{sid_hash}");
    let entry: Option<SecretIdEntry> = c.storage.get_json(&key).await?;
    match act {
        Act::Lookup => match entry {
            Some(e) if !e.expired(now_secs()) => Ok(Some(Response::json(e.to_json()))),
            // Vault answers a lookup of an unknown secret ID with no data.
            _ => Ok(None),
        },
        Act::Destroy => {
            if let Some(e) = entry {
                c.storage
                    .apply(vec![
                        Op::Delete(key),
                        Op::Delete(format!(
                            "accessor/{name}/{}",
                            salt::hash(&salt, &e.accessor)
                        )),
                    ])
                    .await?;
            }
            Ok(None)
        }
    }
}

fn addr_in(list: &[String], ip: Option<IpAddr>) -> bool {
    list.is_empty() || ip.is_some_and(|ip| list.iter().any(|c| cidr_contains(c, ip)))
}

async fn login(s: Arc<AppRole>, c: Ctx) -> CoreResult<Option<Response>> {
    let role_id = c.fields.str("role_id");
    if role_id.is_empty() {
        return Err(CoreError::bad("missing role_id"));
    }
    let invalid = || CoreError::bad("invalid role or secret ID");
    let salt = salt::load(&c.storage).await?;
    let name = match c
        .storage
        .get(&format!("role_id/{}", salt::hash(&salt, &role_id)))
        .await?
    {
        Some(n) => {
            String::from_utf8(n).map_err(|_| CoreError::Internal("role_id index corrupt".into()))?
        }
        None => return Err(invalid()),
    };
    let role = load_role(&c.storage, &name).await?.ok_or_else(invalid)?;
    let ip = c.meta.remote_addr.map(|a| a.ip());
    let mut metadata = BTreeMap::from([("role_name".to_string(), name.clone())]);
    let mut token_cidrs = role.token.token_bound_cidrs.clone();
    if role.bind_secret_id {
        let sid = c.fields.str("secret_id");
        if sid.is_empty() {
            return Err(CoreError::bad("missing secret_id"));
        }
        let key = format!("secret_id/{name}/{}", salt::hash(&salt, &sid));
        let _guard = s.consume.lock().await;
        let mut entry: SecretIdEntry = c.storage.get_json(&key).await?.ok_or_else(invalid)?;
        // A use-limited secret ID is counted under a cluster-wide lock too (other nodes over
        // the same storage), and re-read under it; unlimited ones need no count.
        let _cluster_guard = if entry.num_uses > 0 {
            let g = c.storage.lock(&format!("secret-id-uses/{name}")).await?;
            entry = c.storage.get_json(&key).await?.ok_or_else(invalid)?;
            Some(g)
        } else {
            None
        };
        let acc_key = format!("accessor/{name}/{}", salt::hash(&salt, &entry.accessor));
        let now = now_secs();
        if entry.expired(now) {
            c.storage
                .apply(vec![Op::Delete(key), Op::Delete(acc_key)])
                .await?;
            return Err(invalid());
        }
        if !addr_in(&role.secret_id_bound_cidrs, ip) || !addr_in(&entry.cidr_list, ip) {
            return Err(CoreError::bad(format!(
                "source address {:?} unauthorized through CIDR restrictions on the secret ID",
                ip.map(|i| i.to_string()).unwrap_or_default()
            )));
        }
        if entry.num_uses > 0 {
            if entry.num_uses == 1 {
                c.storage
                    .apply(vec![Op::Delete(key), Op::Delete(acc_key)])
                    .await?;
            } else {
                let mut e = entry.clone();
                e.num_uses -= 1;
                e.last_updated_time = now;
                c.storage.put_json(&key, &e).await?;
            }
        }
        metadata.extend(entry.metadata.clone());
        token_cidrs.extend(entry.token_bound_cidrs.clone());
    } else if !addr_in(&role.secret_id_bound_cidrs, ip) {
        return Err(CoreError::bad(
            "source address unauthorized through CIDR restrictions on the role",
        ));
    }
    let mut params = role.token.clone();
    params.token_bound_cidrs = token_cidrs;
    Ok(Some(Response::login(Login {
        policies: role.token.token_policies.clone(),
        metadata,
        display_name: String::new(),
        params,
    })))
}

async fn tidy(_s: Arc<AppRole>, c: Ctx) -> CoreResult<Option<Response>> {
    let now = now_secs();
    let salt = salt::load(&c.storage).await?;
    let mut removed = 0;
    for role in c.storage.list("secret_id/").await? {
        let role = role.trim_end_matches('/');
        for k in c.storage.list(&format!("secret_id/{role}/")).await? {
            let key = format!("secret_id/{role}/{k}");
            let e: Option<SecretIdEntry> = c.storage.get_json(&key).await?;
            if let Some(e) = e.filter(|e| e.expired(now)) {
                c.storage
                    .apply(vec![
                        Op::Delete(key),
                        Op::Delete(format!(
                            "accessor/{role}/{}",
                            salt::hash(&salt, &e.accessor)
                        )),
                    ])
                    .await?;
                removed += 1;
            }
        }
    }
    Ok(Some(Response::default().warn(format!(
        "Tidy operation finished: {removed} expired secret IDs removed."
    ))))
}
