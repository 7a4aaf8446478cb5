//! `auth/token/*`: the built-in token store's API.
//!
//! Creation (`create`, `create-orphan`, `create/:role`) follows Vault's rules: a child's
//! policies must be a subset of its parent's (unless the parent is root, or a role allows
//! them), `default` is added unless `no_default_policy`, the lease is the requested `ttl`, the
//! role's or requested `period` (periodic tokens live as long as they are renewed within it),
//! or the mount default, capped by `explicit_max_ttl` and, for non-periodic tokens, the mount
//! maximum. Revoking a token revokes the tokens it created unless they are orphans.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use signet_policy::value_glob;
use signet_storage::Storage;
use signet_types::{format_go_duration, FieldType};

use crate::error::{CoreError, CoreResult};
use crate::framework::{handler, Ctx, Field, PathBackend, PathSpec};
use crate::request::{Operation, Response};
use crate::token::{now_secs, valid_cidr, TokenEntry, TokenStore};

/// A token role (`auth/token/roles/:name`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TokenRole {
    pub name: String,
    #[serde(default)]
    pub allowed_policies: Vec<String>,
    #[serde(default)]
    pub disallowed_policies: Vec<String>,
    #[serde(default)]
    pub allowed_policies_glob: Vec<String>,
    #[serde(default)]
    pub disallowed_policies_glob: Vec<String>,
    #[serde(default)]
    pub orphan: bool,
    #[serde(default)]
    pub renewable: bool,
    #[serde(default)]
    pub path_suffix: String,
    #[serde(default)]
    pub token_period: u64,
    #[serde(default)]
    pub token_explicit_max_ttl: u64,
    #[serde(default)]
    pub token_bound_cidrs: Vec<String>,
    #[serde(default)]
    pub token_no_default_policy: bool,
    #[serde(default)]
    pub token_num_uses: i64,
    #[serde(default)]
    pub allowed_entity_aliases: Vec<String>,
}

impl TokenRole {
    fn to_json(&self) -> Value {
        json!({
            "allowed_entity_aliases": self.allowed_entity_aliases,
            "allowed_policies": self.allowed_policies,
            "allowed_policies_glob": self.allowed_policies_glob,
            "disallowed_policies": self.disallowed_policies,
            "disallowed_policies_glob": self.disallowed_policies_glob,
            "explicit_max_ttl": self.token_explicit_max_ttl,
            "name": self.name,
            "orphan": self.orphan,
            "path_suffix": self.path_suffix,
            "period": self.token_period,
            "renewable": self.renewable,
            "token_bound_cidrs": self.token_bound_cidrs,
            "token_explicit_max_ttl": self.token_explicit_max_ttl,
            "token_no_default_policy": self.token_no_default_policy,
            "token_num_uses": self.token_num_uses,
            "token_period": self.token_period,
            "token_type": "default-service",
        })
    }

    fn permits(&self, policy: &str) -> bool {
        let denied = self.disallowed_policies.iter().any(|p| p == policy)
            || self
                .disallowed_policies_glob
                .iter()
                .any(|g| value_glob(g, policy));
        if denied {
            return false;
        }
        if self.allowed_policies.is_empty() && self.allowed_policies_glob.is_empty() {
            return true;
        }
        self.allowed_policies.iter().any(|p| p == policy)
            || self
                .allowed_policies_glob
                .iter()
                .any(|g| value_glob(g, policy))
    }
}

fn create_fields(spec: PathSpec<TokenStore>) -> PathSpec<TokenStore> {
    spec.field(Field::new(
        "id",
        FieldType::String,
        "Value for the token (root only).",
    ))
    .field(Field::new(
        "policies",
        FieldType::CommaStringSlice,
        "List of policies for the token.",
    ))
    .field(Field::new(
        "meta",
        FieldType::KvPairs,
        "Arbitrary key=value metadata for the token.",
    ))
    .field(Field::new(
        "no_parent",
        FieldType::Bool,
        "Create the token with no parent (root only).",
    ))
    .field(Field::new(
        "no_default_policy",
        FieldType::Bool,
        "Do not include the default policy.",
    ))
    .field(
        Field::new(
            "renewable",
            FieldType::Bool,
            "Allow the token to be renewed.",
        )
        .default(json!(true)),
    )
    .field(Field::new(
        "ttl",
        FieldType::DurationSecond,
        "Time to live for the token.",
    ))
    .field(Field::new(
        "lease",
        FieldType::DurationSecond,
        "Deprecated alias of ttl.",
    ))
    .field(Field::new(
        "explicit_max_ttl",
        FieldType::DurationSecond,
        "Explicit maximum lifetime for the token.",
    ))
    .field(Field::new(
        "period",
        FieldType::DurationSecond,
        "Renew period for a periodic token.",
    ))
    .field(Field::new(
        "display_name",
        FieldType::String,
        "Name to associate with this token.",
    ))
    .field(Field::new(
        "num_uses",
        FieldType::Int,
        "Maximum number of uses for this token (0 = unlimited).",
    ))
    .field(Field::new(
        "type",
        FieldType::String,
        "Token type; only \"service\" is supported.",
    ))
    .field(Field::new(
        "entity_alias",
        FieldType::String,
        "Not supported by signet.",
    ))
    .field(Field::new(
        "role_name",
        FieldType::String,
        "Name of the role.",
    ))
}

fn role_fields(spec: PathSpec<TokenStore>) -> PathSpec<TokenStore> {
    spec.field(Field::new(
        "role_name",
        FieldType::String,
        "Name of the role.",
    ))
    .field(Field::new(
        "allowed_policies",
        FieldType::CommaStringSlice,
        "Policies tokens of this role may have.",
    ))
    .field(Field::new(
        "disallowed_policies",
        FieldType::CommaStringSlice,
        "Policies tokens of this role may not have.",
    ))
    .field(Field::new(
        "allowed_policies_glob",
        FieldType::CommaStringSlice,
        "Glob patterns of allowed policies.",
    ))
    .field(Field::new(
        "disallowed_policies_glob",
        FieldType::CommaStringSlice,
        "Glob patterns of disallowed policies.",
    ))
    .field(Field::new(
        "orphan",
        FieldType::Bool,
        "Tokens of this role are orphans.",
    ))
    .field(
        Field::new(
            "renewable",
            FieldType::Bool,
            "Tokens of this role can be renewed.",
        )
        .default(json!(true)),
    )
    .field(Field::new(
        "path_suffix",
        FieldType::String,
        "Suffix added to the token's path.",
    ))
    .field(Field::new(
        "period",
        FieldType::DurationSecond,
        "Deprecated alias of token_period.",
    ))
    .field(Field::new(
        "token_period",
        FieldType::DurationSecond,
        "Period of tokens of this role.",
    ))
    .field(Field::new(
        "explicit_max_ttl",
        FieldType::DurationSecond,
        "Deprecated alias of token_explicit_max_ttl.",
    ))
    .field(Field::new(
        "token_explicit_max_ttl",
        FieldType::DurationSecond,
        "Explicit max TTL of tokens of this role.",
    ))
    .field(Field::new(
        "bound_cidrs",
        FieldType::CommaStringSlice,
        "Deprecated alias of token_bound_cidrs.",
    ))
    .field(Field::new(
        "token_bound_cidrs",
        FieldType::CommaStringSlice,
        "CIDR blocks tokens of this role may be used from.",
    ))
    .field(Field::new(
        "token_no_default_policy",
        FieldType::Bool,
        "Do not add the default policy.",
    ))
    .field(Field::new(
        "token_num_uses",
        FieldType::Int,
        "Uses per token.",
    ))
    .field(Field::new(
        "token_type",
        FieldType::String,
        "Token type; only service tokens are supported.",
    ))
    .field(Field::new(
        "allowed_entity_aliases",
        FieldType::CommaStringSlice,
        "Accepted for compatibility.",
    ))
}

pub fn backend(store: Arc<TokenStore>) -> PathBackend<TokenStore> {
    let specs = vec![
        create_fields(PathSpec::new("create-orphan"))
            .op(
                Operation::Update,
                "Create an orphan token.",
                handler(|s, c| create(s, c, Mode::Orphan)),
            )
            .help("Create a token with no parent.", ""),
        create_fields(PathSpec::new("create/:role_name"))
            .op(
                Operation::Update,
                "Create a token from a role.",
                handler(|s, c| create(s, c, Mode::Role)),
            )
            .help("Create a token from a token role.", ""),
        create_fields(PathSpec::new("create"))
            .op(
                Operation::Update,
                "Create a token.",
                handler(|s, c| create(s, c, Mode::Child)),
            )
            .help("Create a child token of the calling token.", ""),
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
        PathSpec::new("lookup-accessor")
            .field(Field::new(
                "accessor",
                FieldType::String,
                "Accessor of the token to look up.",
            ))
            .op(
                Operation::Update,
                "Look up a token by accessor.",
                handler(lookup_accessor),
            )
            .help(
                "Returns the properties of the token behind an accessor (without its id).",
                "",
            ),
        PathSpec::new("lookup")
            .field(Field::new("token", FieldType::String, "Token to look up."))
            .op(Operation::Read, "Look up a token.", handler(lookup))
            .op(Operation::Update, "Look up a token.", handler(lookup))
            .help("Returns the properties of a token.", ""),
        PathSpec::new("renew-self")
            .field(Field::new(
                "increment",
                FieldType::DurationSecond,
                "Requested lease extension.",
            ))
            .op(
                Operation::Update,
                "Renew the calling token.",
                handler(|s, c| renew(s, c, Target::Caller)),
            )
            .help("Renews the calling token.", ""),
        PathSpec::new("renew-accessor")
            .field(Field::new(
                "accessor",
                FieldType::String,
                "Accessor of the token to renew.",
            ))
            .field(Field::new(
                "increment",
                FieldType::DurationSecond,
                "Requested lease extension.",
            ))
            .op(
                Operation::Update,
                "Renew a token by accessor.",
                handler(|s, c| renew(s, c, Target::Accessor)),
            )
            .help("Renews the token behind an accessor.", ""),
        PathSpec::new("renew")
            .field(Field::new("token", FieldType::String, "Token to renew."))
            .field(Field::new(
                "increment",
                FieldType::DurationSecond,
                "Requested lease extension.",
            ))
            .op(
                Operation::Update,
                "Renew a token.",
                handler(|s, c| renew(s, c, Target::Token)),
            )
            .help("Renews a token.", ""),
        PathSpec::new("revoke-self")
            .op(
                Operation::Update,
                "Revoke the calling token and its children.",
                handler(|s, c| revoke(s, c, Target::Caller, false)),
            )
            .help("Revokes the calling token and its children.", ""),
        PathSpec::new("revoke-accessor")
            .field(Field::new(
                "accessor",
                FieldType::String,
                "Accessor of the token to revoke.",
            ))
            .op(
                Operation::Update,
                "Revoke a token by accessor.",
                handler(|s, c| revoke(s, c, Target::Accessor, false)),
            )
            .help("Revokes the token behind an accessor and its children.", ""),
        PathSpec::new("revoke-orphan")
            .field(Field::new("token", FieldType::String, "Token to revoke."))
            .op(
                Operation::Update,
                "Revoke a token, leaving its children as orphans.",
                handler(|s, c| revoke(s, c, Target::Token, true)),
            )
            .help("Revokes a token; its children become orphans.", "")
            .sudo(),
        PathSpec::new("revoke")
            .field(Field::new("token", FieldType::String, "Token to revoke."))
            .op(
                Operation::Update,
                "Revoke a token and its children.",
                handler(|s, c| revoke(s, c, Target::Token, false)),
            )
            .help("Revokes a token and its children.", ""),
        PathSpec::new("accessors")
            .op(
                Operation::List,
                "List token accessors.",
                handler(list_accessors),
            )
            .help("Lists the accessors of every live token.", "")
            .sudo(),
        PathSpec::new("tidy")
            .op(
                Operation::Update,
                "Clean up expired tokens and dangling index entries.",
                handler(tidy),
            )
            .help(
                "Removes expired tokens and dangling entries from the token store.",
                "",
            ),
        PathSpec::new("roles")
            .op(Operation::List, "List token roles.", handler(list_roles))
            .help("Lists the token roles.", ""),
        role_fields(PathSpec::new("roles/:role_name"))
            .op(Operation::Read, "Read a token role.", handler(read_role))
            .write_op("Create or update a token role.", handler(write_role))
            .op(
                Operation::Delete,
                "Delete a token role.",
                handler(delete_role),
            )
            .help("Create, read, update or delete a token role.", ""),
    ];
    PathBackend::new(store, specs)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Child,
    Orphan,
    Role,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Caller,
    Token,
    Accessor,
}

fn normalize_policies(mut p: Vec<String>) -> Vec<String> {
    for x in p.iter_mut() {
        *x = x.trim().to_lowercase();
    }
    p.retain(|x| !x.is_empty());
    p.sort();
    p.dedup();
    p
}

async fn load_role(s: &TokenStore, name: &str) -> CoreResult<Option<TokenRole>> {
    Ok(s.roles_view()?.get_json(&name.to_lowercase()).await?)
}

async fn create(s: Arc<TokenStore>, c: Ctx, mode: Mode) -> CoreResult<Option<Response>> {
    let parent = c.meta.token.clone().ok_or(CoreError::PermissionDenied)?;
    let parent_hash = c.meta.token_hash.clone().unwrap_or_default();
    let parent_root = parent.is_root();
    let role = if mode == Mode::Role {
        let name = c.param("role_name");
        Some(
            load_role(&s, name)
                .await?
                .ok_or_else(|| CoreError::bad(format!("unknown role {name}")))?,
        )
    } else {
        None
    };
    if c.fields.str("type") == "batch" {
        return Err(CoreError::bad("batch tokens are not supported by signet"));
    }
    let id = c.fields.str("id");
    if !id.is_empty() && !parent_root {
        return Err(CoreError::bad(
            "root or sudo privileges required to specify token id",
        ));
    }
    let requested = normalize_policies(c.fields.strings("policies"));
    let mut no_default = c.fields.bool("no_default_policy");
    let mut policies = match &role {
        Some(r) => {
            if r.token_no_default_policy {
                no_default = true;
            }
            if requested.is_empty() {
                let mut p = if r.allowed_policies.is_empty() {
                    parent.policies.clone()
                } else {
                    r.allowed_policies.clone()
                };
                p.retain(|x| r.permits(x) || x == "default");
                normalize_policies(p)
            } else {
                for p in &requested {
                    if p != "default" && !r.permits(p) {
                        return Err(CoreError::bad(format!(
                            "token policies ({}) must be subset of the role's allowed policies",
                            requested.join(", ")
                        )));
                    }
                }
                requested
            }
        }
        None => {
            if requested.is_empty() {
                parent.policies.clone()
            } else {
                if !parent_root {
                    let missing: Vec<&String> = requested
                        .iter()
                        .filter(|p| *p != "default" && !parent.policies.contains(p))
                        .collect();
                    if !missing.is_empty() {
                        return Err(CoreError::bad(format!(
                            "child policies must be subset of parent; not in parent: {}",
                            missing
                                .iter()
                                .map(|s| s.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        )));
                    }
                }
                requested
            }
        }
    };
    if policies.iter().any(|p| p == "root") && !parent_root {
        return Err(CoreError::bad(
            "root tokens may not be created from non-root tokens",
        ));
    }
    if no_default {
        policies.retain(|p| p != "default");
    } else if !policies.iter().any(|p| p == "root" || p == "default") {
        policies.push("default".into());
    }
    let policies = normalize_policies(policies);
    if policies.is_empty() {
        return Err(CoreError::bad("token must have at least one policy"));
    }

    let no_parent = c.fields.bool("no_parent");
    if no_parent && !parent_root && mode != Mode::Orphan {
        return Err(CoreError::bad(
            "root or sudo privileges required to create orphan token",
        ));
    }
    let orphan = mode == Mode::Orphan || no_parent || role.as_ref().is_some_and(|r| r.orphan);

    let mut period = c.fields.u64("period");
    if period > 0 && !parent_root && role.is_none() {
        return Err(CoreError::bad(
            "root or sudo privileges required to create periodic token",
        ));
    }
    let mut explicit_max = c.fields.u64("explicit_max_ttl");
    let mut renewable = c.fields.bool("renewable");
    let mut num_uses = c.fields.i64("num_uses");
    let mut bound_cidrs = Vec::new();
    let mut period_from_role = false;
    if let Some(r) = &role {
        if r.token_period > 0 {
            period = r.token_period;
            period_from_role = true;
        }
        if r.token_explicit_max_ttl > 0
            && (explicit_max == 0 || r.token_explicit_max_ttl < explicit_max)
        {
            explicit_max = r.token_explicit_max_ttl;
        }
        if !r.renewable {
            renewable = false;
        }
        if num_uses == 0 {
            num_uses = r.token_num_uses;
        }
        bound_cidrs = r.token_bound_cidrs.clone();
    }
    if num_uses < 0 {
        return Err(CoreError::bad("number of uses cannot be negative"));
    }
    let mut ttl = c.fields.u64("ttl");
    if ttl == 0 {
        ttl = c.fields.u64("lease");
    }
    let is_root_token = policies.iter().any(|p| p == "root");
    let mut warnings = Vec::new();
    let mut lease = if period > 0 {
        period
    } else if ttl > 0 {
        ttl
    } else if is_root_token && explicit_max == 0 {
        0
    } else {
        c.mount.default_lease_ttl
    };
    if period == 0 && lease > c.mount.max_lease_ttl && !(is_root_token && lease == 0) {
        warnings.push(format!(
            "TTL of \"{}\" exceeded the effective max_ttl of \"{}\"; TTL value is capped accordingly",
            format_go_duration(lease),
            format_go_duration(c.mount.max_lease_ttl)
        ));
        lease = c.mount.max_lease_ttl;
    }
    if explicit_max > 0 && (lease == 0 || lease > explicit_max) {
        lease = explicit_max;
    }
    let now = now_secs();
    let mut display = c.fields.str("display_name");
    display = display
        .chars()
        .filter(|ch| ch.is_alphanumeric() || *ch == '-' || *ch == '_' || *ch == '.')
        .collect();
    let display_name = if display.is_empty() {
        "token".to_string()
    } else {
        format!("token-{display}")
    };
    let path = match (&role, mode) {
        (Some(r), _) => {
            let mut p = format!("auth/token/create/{}", r.name);
            if !r.path_suffix.is_empty() {
                p.push('/');
                p.push_str(&r.path_suffix);
            }
            p
        }
        (None, Mode::Orphan) => "auth/token/create-orphan".into(),
        _ => "auth/token/create".into(),
    };
    let meta: BTreeMap<String, String> = c
        .fields
        .map("meta")
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("").to_string()))
        .collect();
    let entry = TokenEntry {
        accessor: String::new(),
        policies,
        parent: if orphan { String::new() } else { parent_hash },
        path,
        display_name,
        meta: if meta.is_empty() { None } else { Some(meta) },
        creation_time: now,
        ttl: lease,
        expire_time: if lease > 0 { now + lease } else { 0 },
        last_renewal: 0,
        max_ttl: 0,
        explicit_max_ttl: explicit_max,
        period,
        period_from_role,
        num_uses,
        orphan,
        renewable: renewable && lease > 0,
        entity_id: String::new(),
        role: role.map(|r| r.name).unwrap_or_default(),
        bound_cidrs,
    };
    let (token, entry) = s.create((!id.is_empty()).then_some(id), entry).await?;
    let mut r = Response {
        auth: Some(entry.auth_json(token.expose_secret(), now)),
        ..Default::default()
    };
    r.warnings = warnings;
    Ok(Some(r))
}

async fn lookup_self(_s: Arc<TokenStore>, c: Ctx) -> CoreResult<Option<Response>> {
    let entry = c.meta.token.clone().ok_or(CoreError::PermissionDenied)?;
    let id = c.meta.token_id.as_ref().map(|t| t.expose_secret().as_str());
    Ok(Some(Response::data(entry.lookup_json(id, now_secs()))))
}

async fn lookup(s: Arc<TokenStore>, c: Ctx) -> CoreResult<Option<Response>> {
    let token = c.fields.str("token");
    if token.is_empty() {
        // Vault: an empty token looks up the caller.
        return lookup_self(s, c).await;
    }
    match s.lookup(&token).await? {
        Some(e) => Ok(Some(Response::data(
            e.lookup_json(Some(&token), now_secs()),
        ))),
        None => Err(CoreError::bad("bad token")),
    }
}

async fn lookup_accessor(s: Arc<TokenStore>, c: Ctx) -> CoreResult<Option<Response>> {
    let accessor = c.fields.str("accessor");
    if accessor.is_empty() {
        return Err(CoreError::bad("missing accessor"));
    }
    match s.lookup_accessor(&accessor).await? {
        Some((_, e)) => Ok(Some(Response::data(e.lookup_json(None, now_secs())))),
        None => Err(CoreError::bad("invalid accessor")),
    }
}

async fn target(
    s: &TokenStore,
    c: &Ctx,
    t: Target,
) -> CoreResult<(String, TokenEntry, Option<String>)> {
    match t {
        Target::Caller => Ok((
            c.meta
                .token_hash
                .clone()
                .ok_or(CoreError::PermissionDenied)?,
            c.meta.token.clone().ok_or(CoreError::PermissionDenied)?,
            None,
        )),
        Target::Token => {
            let token = c.fields.str("token");
            if token.is_empty() {
                return Err(CoreError::bad("token to act on is missing"));
            }
            let hash = s.hash(&token)?;
            let e = s
                .lookup_hash(&hash)
                .await?
                .ok_or_else(|| CoreError::bad("invalid token"))?;
            Ok((hash, e, Some(token)))
        }
        Target::Accessor => {
            let acc = c.fields.str("accessor");
            let (hash, e) = s
                .lookup_accessor(&acc)
                .await?
                .ok_or_else(|| CoreError::bad("invalid accessor"))?;
            Ok((hash, e, None))
        }
    }
}

async fn renew(s: Arc<TokenStore>, c: Ctx, t: Target) -> CoreResult<Option<Response>> {
    let (hash, mut e, token) = target(&s, &c, t).await?;
    if !e.renewable || e.expire_time == 0 {
        return Err(CoreError::bad("lease is not renewable"));
    }
    let now = now_secs();
    let increment = c.fields.u64("increment");
    let mut warnings = Vec::new();
    let mut lease = if e.period > 0 {
        e.period
    } else if increment > 0 {
        increment
    } else {
        e.ttl
    };
    let mut limit: Option<u64> = None;
    if e.explicit_max_ttl > 0 {
        limit = Some(e.creation_time + e.explicit_max_ttl);
    }
    if e.period == 0 {
        let cap = if e.max_ttl > 0 {
            e.max_ttl
        } else {
            c.mount.max_lease_ttl
        };
        let mount_max = e.creation_time + cap;
        limit = Some(limit.map_or(mount_max, |l| l.min(mount_max)));
    }
    if let Some(l) = limit {
        let left = l.saturating_sub(now);
        if lease > left {
            warnings.push(format!(
                "TTL of \"{}\" exceeded the effective max_ttl of \"{}\"; TTL value is capped accordingly",
                format_go_duration(lease),
                format_go_duration(left)
            ));
            lease = left;
        }
    }
    e.expire_time = now + lease;
    e.last_renewal = now;
    s.update(&hash, &e).await?;
    let mut auth = e.auth_json(token.as_deref().unwrap_or(""), now);
    if t != Target::Token {
        if let Value::Object(m) = &mut auth {
            m.insert("client_token".into(), json!(""));
        }
    }
    Ok(Some(Response {
        auth: Some(auth),
        warnings,
        ..Default::default()
    }))
}

async fn revoke(
    s: Arc<TokenStore>,
    c: Ctx,
    t: Target,
    orphan: bool,
) -> CoreResult<Option<Response>> {
    let found = match target(&s, &c, t).await {
        Ok(x) => Some(x),
        // Revoking a token that is already gone succeeds, as in Vault.
        Err(CoreError::BadRequest(_)) if t == Target::Token => None,
        Err(e) => return Err(e),
    };
    if let Some((hash, _, _)) = found {
        if orphan {
            s.revoke_orphan(&hash).await?;
        } else {
            s.revoke_tree(&hash).await?;
        }
    }
    Ok(None)
}

async fn list_accessors(s: Arc<TokenStore>, _c: Ctx) -> CoreResult<Option<Response>> {
    Ok(Some(Response::list(s.list_accessors().await?)))
}

async fn tidy(s: Arc<TokenStore>, _c: Ctx) -> CoreResult<Option<Response>> {
    let n = s.tidy().await?;
    Ok(Some(Response::default().warn(format!(
        "Tidy operation finished: {n} expired or spent tokens removed."
    ))))
}

async fn list_roles(s: Arc<TokenStore>, _c: Ctx) -> CoreResult<Option<Response>> {
    let keys = s.roles_view()?.list("").await?;
    Response::list_or_not_found(keys)
}

async fn read_role(s: Arc<TokenStore>, c: Ctx) -> CoreResult<Option<Response>> {
    match load_role(&s, c.param("role_name")).await? {
        Some(r) => Ok(Some(Response::json(r.to_json()))),
        None => Err(CoreError::NotFound),
    }
}

async fn write_role(s: Arc<TokenStore>, c: Ctx) -> CoreResult<Option<Response>> {
    let name = c.param("role_name").to_lowercase();
    let mut role = load_role(&s, &name).await?.unwrap_or(TokenRole {
        name: name.clone(),
        renewable: true,
        ..Default::default()
    });
    let f = &c.fields;
    if f.is_set("allowed_policies") {
        role.allowed_policies = normalize_policies(f.strings("allowed_policies"));
    }
    if f.is_set("disallowed_policies") {
        role.disallowed_policies = normalize_policies(f.strings("disallowed_policies"));
    }
    if f.is_set("allowed_policies_glob") {
        role.allowed_policies_glob = f.strings("allowed_policies_glob");
    }
    if f.is_set("disallowed_policies_glob") {
        role.disallowed_policies_glob = f.strings("disallowed_policies_glob");
    }
    if f.is_set("orphan") {
        role.orphan = f.bool("orphan");
    }
    if f.is_set("renewable") {
        role.renewable = f.bool("renewable");
    }
    if f.is_set("path_suffix") {
        let suffix = f.str("path_suffix");
        if suffix.contains("..") {
            return Err(CoreError::bad("path_suffix cannot contain '..'"));
        }
        role.path_suffix = suffix.trim_matches('/').to_string();
    }
    for (k, legacy) in [("token_period", "period")] {
        if f.is_set(k) {
            role.token_period = f.u64(k);
        } else if f.is_set(legacy) {
            role.token_period = f.u64(legacy);
        }
    }
    if f.is_set("token_explicit_max_ttl") {
        role.token_explicit_max_ttl = f.u64("token_explicit_max_ttl");
    } else if f.is_set("explicit_max_ttl") {
        role.token_explicit_max_ttl = f.u64("explicit_max_ttl");
    }
    let cidrs = if f.is_set("token_bound_cidrs") {
        Some(f.strings("token_bound_cidrs"))
    } else if f.is_set("bound_cidrs") {
        Some(f.strings("bound_cidrs"))
    } else {
        None
    };
    if let Some(cidrs) = cidrs {
        if let Some(bad) = cidrs.iter().find(|c| !valid_cidr(c)) {
            return Err(CoreError::bad(format!("invalid CIDR {bad:?}")));
        }
        role.token_bound_cidrs = cidrs;
    }
    if f.is_set("token_no_default_policy") {
        role.token_no_default_policy = f.bool("token_no_default_policy");
    }
    if f.is_set("token_num_uses") {
        if f.i64("token_num_uses") < 0 {
            return Err(CoreError::bad("token_num_uses cannot be negative"));
        }
        role.token_num_uses = f.i64("token_num_uses");
    }
    if f.is_set("token_type")
        && !matches!(
            f.str("token_type").as_str(),
            "" | "service" | "default-service" | "default"
        )
    {
        return Err(CoreError::bad(
            "only service tokens are supported by signet",
        ));
    }
    if f.is_set("allowed_entity_aliases") {
        role.allowed_entity_aliases = f.strings("allowed_entity_aliases");
    }
    s.roles_view()?.put_json(&name, &role).await?;
    Ok(None)
}

async fn delete_role(s: Arc<TokenStore>, c: Ctx) -> CoreResult<Option<Response>> {
    s.roles_view()?
        .delete(&c.param("role_name").to_lowercase())
        .await?;
    Ok(None)
}
