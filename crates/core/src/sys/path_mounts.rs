//! `sys/mounts`, `sys/mounts/:path`, `sys/mounts/:path/tune`, `sys/auth` (same shapes for auth
//! methods), `sys/remount`, `sys/internal/ui/mounts`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Map, Value};
use signet_types::{coerce, FieldType};

use super::{top, SysState};
use crate::error::{CoreError, CoreResult};
use crate::framework::{handler, Ctx, Field, PathSpec};
use crate::mounts::{normalize_mount_path, MountConfig, MountEntry, Table};
use crate::request::{Operation, Response};

fn mount_fields(spec: PathSpec<SysState>) -> PathSpec<SysState> {
    spec.field(Field::new(
        "path",
        FieldType::String,
        "The path to mount to.",
    ))
    .field(Field::new(
        "type",
        FieldType::String,
        "The type of the backend, such as \"kv\" or \"pki\".",
    ))
    .field(Field::new(
        "description",
        FieldType::String,
        "User-friendly description for this mount.",
    ))
    .field(Field::new(
        "config",
        FieldType::Map,
        "Configuration for this mount, such as default_lease_ttl and max_lease_ttl.",
    ))
    .field(Field::new(
        "options",
        FieldType::KvPairs,
        "The options to pass into the backend, such as version=1 for KV.",
    ))
    .field(Field::new(
        "local",
        FieldType::Bool,
        "Mark the mount as local (not replicated).",
    ))
    .field(Field::new(
        "seal_wrap",
        FieldType::Bool,
        "Accepted for compatibility; every entry is already encrypted.",
    ))
    .field(Field::new(
        "external_entropy_access",
        FieldType::Bool,
        "Accepted for compatibility.",
    ))
    .field(Field::new(
        "plugin_name",
        FieldType::String,
        "Name of the plugin (alias of type).",
    ))
    .field(Field::new(
        "plugin_version",
        FieldType::String,
        "Accepted for compatibility; signet engines are built in.",
    ))
}

fn tune_fields(spec: PathSpec<SysState>) -> PathSpec<SysState> {
    spec.field(Field::new(
        "path",
        FieldType::String,
        "The path of the mount to tune.",
    ))
    .field(Field::new(
        "default_lease_ttl",
        FieldType::String,
        "The default lease TTL for this mount.",
    ))
    .field(Field::new(
        "max_lease_ttl",
        FieldType::String,
        "The max lease TTL for this mount.",
    ))
    .field(Field::new(
        "description",
        FieldType::String,
        "User-friendly description for this mount.",
    ))
    .field(Field::new(
        "allowed_response_headers",
        FieldType::CommaStringSlice,
        "Response headers the mount may set.",
    ))
    .field(Field::new(
        "passthrough_request_headers",
        FieldType::CommaStringSlice,
        "Request headers passed to the engine.",
    ))
    .field(Field::new(
        "audit_non_hmac_request_keys",
        FieldType::CommaStringSlice,
        "Request keys not HMAC'd by audit devices.",
    ))
    .field(Field::new(
        "audit_non_hmac_response_keys",
        FieldType::CommaStringSlice,
        "Response keys not HMAC'd by audit devices.",
    ))
    .field(Field::new(
        "listing_visibility",
        FieldType::String,
        "\"unauth\" to list the mount in the unauthenticated UI listing.",
    ))
    .field(Field::new(
        "options",
        FieldType::KvPairs,
        "Backend options.",
    ))
    .field(Field::new(
        "token_type",
        FieldType::String,
        "Auth mounts: the type of tokens to issue.",
    ))
    .field(Field::new(
        "force_no_cache",
        FieldType::Bool,
        "Accepted for compatibility.",
    ))
    .field(Field::new(
        "plugin_version",
        FieldType::String,
        "Accepted for compatibility.",
    ))
}

pub fn specs() -> Vec<PathSpec<SysState>> {
    let mut v = Vec::new();
    for (prefix, table) in [("mounts", Table::Secrets), ("auth", Table::Auth)] {
        let t1 = table;
        let t2 = table;
        let t3 = table;
        let t4 = table;
        let t5 = table;
        let t6 = table;
        v.push(
            PathSpec::new(match table {
                Table::Secrets => "mounts",
                Table::Auth => "auth",
            })
            .op(
                Operation::Read,
                "Lists all the mounted engines.",
                handler(move |s, c| list_mounts(s, c, t1)),
            )
            .help(
                match table {
                    Table::Secrets => "List the currently mounted secrets engines.",
                    Table::Auth => "List the currently enabled auth methods.",
                },
                "",
            ),
        );
        v.push(tune_fields(
            PathSpec::new(match table {
                Table::Secrets => "mounts/*path/tune",
                Table::Auth => "auth/*path/tune",
            })
            .op(
                Operation::Read,
                "Reads the tuning of a mount.",
                handler(move |s, c| read_tune(s, c, t2)),
            )
            .op(
                Operation::Update,
                "Tunes a mount.",
                handler(move |s, c| write_tune(s, c, t3)),
            )
            .help("Tune the configuration parameters of a mount.", "")
            .sudo_if(table == Table::Auth),
        ));
        v.push(mount_fields(
            PathSpec::new(match table {
                Table::Secrets => "mounts/*path",
                Table::Auth => "auth/*path",
            })
            .op(
                Operation::Read,
                "Reads the configuration of a mount.",
                handler(move |s, c| read_mount(s, c, t4)),
            )
            .op(
                Operation::Update,
                "Enables a new mount.",
                handler(move |s, c| enable(s, c, t5)),
            )
            .op(
                Operation::Delete,
                "Disables a mount.",
                handler(move |s, c| disable(s, c, t6)),
            )
            .help(
                match table {
                    Table::Secrets => "Mount a new secrets engine.",
                    Table::Auth => "Enable a new auth method.",
                },
                "",
            )
            .sudo_if(table == Table::Auth),
        ));
        let _ = prefix;
    }
    v.push(
        PathSpec::new("remount")
            .field(Field::new("from", FieldType::String, "The previous mount point.").required())
            .field(Field::new("to", FieldType::String, "The new mount point.").required())
            .op(
                Operation::Update,
                "Moves a mount to a new path.",
                handler(remount),
            )
            .help("Move the mount point of an already-mounted backend.", "")
            .sudo(),
    );
    v.push(
        PathSpec::new("remount/status/:migration_id")
            .field(Field::new(
                "migration_id",
                FieldType::String,
                "The ID of the migration.",
            ))
            .op(
                Operation::Read,
                "Reads the status of a mount move.",
                handler(remount_status),
            )
            .help("Check the status of a mount move.", ""),
    );
    v.push(
        PathSpec::new("internal/ui/mounts")
            .op(
                Operation::Read,
                "Lists the mounts the caller may see.",
                handler(ui_mounts),
            )
            .help("Information about mounts, for UIs and agents.", "")
            .unauthenticated(),
    );
    v.push(
        PathSpec::new("internal/ui/mounts/*path")
            .field(Field::new("path", FieldType::String, "The path of the mount."))
            .op(Operation::Read, "Reads the mount serving a path.", handler(ui_mount))
            .help("Information about the mount serving a path (agents call it before reading a secret).", "")
            .no_acl(),
    );
    v
}

fn entry_map(entries: Vec<&crate::mounts::Mounted>) -> Map<String, Value> {
    entries
        .into_iter()
        .map(|m| (m.entry.path.clone(), m.entry.to_json()))
        .collect()
}

async fn list_mounts(s: Arc<SysState>, _c: Ctx, table: Table) -> CoreResult<Option<Response>> {
    let core = s.core()?;
    let t = core.mount_table();
    Ok(top(Value::Object(entry_map(t.entries(table)))))
}

fn mount_path(c: &Ctx) -> CoreResult<String> {
    let p = c.param("path").trim_matches('/');
    if p.is_empty() {
        return Err(CoreError::bad("path cannot be blank"));
    }
    Ok(normalize_mount_path(p))
}

async fn read_mount(s: Arc<SysState>, c: Ctx, table: Table) -> CoreResult<Option<Response>> {
    let core = s.core()?;
    let path = mount_path(&c)?;
    let t = core.mount_table();
    let m = t.get(table, &path).ok_or_else(|| match table {
        Table::Secrets => CoreError::bad(format!("No secret engine mount at {path}")),
        Table::Auth => CoreError::bad(format!("No auth engine at {path}")),
    })?;
    Ok(top(m.entry.to_json()))
}

fn parse_ttl(v: &Value, name: &str) -> CoreResult<u64> {
    if let Value::String(s) = v {
        if s == "system" || s.is_empty() {
            return Ok(0);
        }
    }
    signet_types::parse_duration(v)
        .map_err(|e| CoreError::bad(format!("unable to parse {name}: {e}")))
}

fn apply_config(config: &mut MountConfig, m: &Map<String, Value>) -> CoreResult<()> {
    for (k, v) in m {
        match k.as_str() {
            "default_lease_ttl" => config.default_lease_ttl = parse_ttl(v, k)?,
            "max_lease_ttl" => config.max_lease_ttl = parse_ttl(v, k)?,
            "force_no_cache" => {
                config.force_no_cache = coerce(v, FieldType::Bool)
                    .map_err(CoreError::bad)?
                    .as_bool()
                    .unwrap_or(false)
            }
            "allowed_response_headers" => config.allowed_response_headers = strings(v)?,
            "passthrough_request_headers" => config.passthrough_request_headers = strings(v)?,
            "audit_non_hmac_request_keys" => config.audit_non_hmac_request_keys = strings(v)?,
            "audit_non_hmac_response_keys" => config.audit_non_hmac_response_keys = strings(v)?,
            "listing_visibility" => config.listing_visibility = listing_visibility(v)?,
            "token_type" => config.token_type = v.as_str().unwrap_or("").to_string(),
            _ => {}
        }
    }
    Ok(())
}

/// The tune check, with OpenBao's wording (`check_ttls` is the enable-time one).
fn check_tuned_ttls(effective_default: u64, effective_max: u64) -> CoreResult<()> {
    if effective_max < effective_default {
        return Err(CoreError::bad(format!(
            "backend max lease TTL of {effective_max} would be less than backend default lease TTL of {effective_default}"
        )));
    }
    Ok(())
}

fn check_ttls(config: &MountConfig) -> CoreResult<()> {
    if config.max_lease_ttl != 0 && config.default_lease_ttl > config.max_lease_ttl {
        return Err(CoreError::bad(
            "given default lease TTL greater than given max lease TTL",
        ));
    }
    Ok(())
}

fn strings(v: &Value) -> CoreResult<Vec<String>> {
    Ok(coerce(v, FieldType::CommaStringSlice)
        .map_err(CoreError::bad)?
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

fn listing_visibility(v: &Value) -> CoreResult<String> {
    match v.as_str().unwrap_or("") {
        "" | "hidden" => Ok(String::new()),
        "unauth" => Ok("unauth".into()),
        other => Err(CoreError::bad(format!(
            "invalid listing_visibility {other:?}: must be \"unauth\" or \"hidden\""
        ))),
    }
}

async fn enable(s: Arc<SysState>, c: Ctx, table: Table) -> CoreResult<Option<Response>> {
    let core = s.core()?;
    let path = mount_path(&c)?;
    let mut kind = c.fields.str("type");
    if kind.is_empty() {
        kind = c.fields.str("plugin_name");
    }
    if kind.is_empty() {
        return Err(CoreError::bad("backend type must be specified as a string"));
    }
    let mut options: BTreeMap<String, String> = c
        .fields
        .map("options")
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or("").to_string()))
        .collect();
    match kind.as_str() {
        "kv-v1" | "generic" => {
            kind = "kv".into();
            options.insert("version".into(), "1".into());
        }
        "kv-v2" => {
            return Err(CoreError::bad(
                "KV version 2 is not supported by signet; mount KV version 1 (type=kv, options version=1)",
            ))
        }
        _ => {}
    }
    if kind == "kv" {
        // No version means version 1 here; the options stay as given (OpenBao lists `{}`).
        match options.get("version").map(String::as_str) {
            None | Some("") | Some("1") => {}
            Some(other) => {
                return Err(CoreError::bad(format!(
                    "KV version {other} is not supported by signet; only version 1 is"
                )))
            }
        }
    }
    let mut config = MountConfig::default();
    apply_config(&mut config, &c.fields.map("config"))?;
    check_ttls(&config)?;
    let entry_kind_is_not_kv = kind != "kv";
    let entry = MountEntry {
        path,
        kind,
        description: c.fields.str("description"),
        uuid: String::new(),
        accessor: String::new(),
        config,
        options: if options.is_empty() && entry_kind_is_not_kv {
            None
        } else {
            Some(options)
        },
        local: c.fields.bool("local"),
        seal_wrap: c.fields.bool("seal_wrap"),
        external_entropy_access: c.fields.bool("external_entropy_access"),
    };
    core.enable_mount(table, entry).await?;
    Ok(None)
}

async fn disable(s: Arc<SysState>, c: Ctx, table: Table) -> CoreResult<Option<Response>> {
    let core = s.core()?;
    let path = mount_path(&c)?;
    core.disable_mount(table, &path).await?;
    Ok(None)
}

async fn read_tune(s: Arc<SysState>, c: Ctx, table: Table) -> CoreResult<Option<Response>> {
    let core = s.core()?;
    let path = mount_path(&c)?;
    let t = core.mount_table();
    let m = t.get(table, &path).ok_or_else(|| {
        CoreError::bad(format!(
            "cannot fetch tune configuration of {path}: no mount"
        ))
    })?;
    let (default, max) = m.entry.effective_ttls();
    let mut out = Map::new();
    out.insert("default_lease_ttl".into(), json!(default));
    out.insert("description".into(), json!(m.entry.description));
    out.insert(
        "force_no_cache".into(),
        json!(m.entry.config.force_no_cache),
    );
    out.insert("max_lease_ttl".into(), json!(max));
    if let Some(o) = m.entry.options.as_ref().filter(|o| !o.is_empty()) {
        out.insert("options".into(), json!(o));
    }
    let cfg = &m.entry.config;
    if !cfg.allowed_response_headers.is_empty() {
        out.insert(
            "allowed_response_headers".into(),
            json!(cfg.allowed_response_headers),
        );
    }
    if !cfg.passthrough_request_headers.is_empty() {
        out.insert(
            "passthrough_request_headers".into(),
            json!(cfg.passthrough_request_headers),
        );
    }
    if !cfg.audit_non_hmac_request_keys.is_empty() {
        out.insert(
            "audit_non_hmac_request_keys".into(),
            json!(cfg.audit_non_hmac_request_keys),
        );
    }
    if !cfg.audit_non_hmac_response_keys.is_empty() {
        out.insert(
            "audit_non_hmac_response_keys".into(),
            json!(cfg.audit_non_hmac_response_keys),
        );
    }
    if !cfg.listing_visibility.is_empty() {
        out.insert("listing_visibility".into(), json!(cfg.listing_visibility));
    }
    if table == Table::Auth {
        let tt = if cfg.token_type.is_empty() {
            "default-service"
        } else {
            cfg.token_type.as_str()
        };
        out.insert("token_type".into(), json!(tt));
    }
    Ok(top(Value::Object(out)))
}

async fn write_tune(s: Arc<SysState>, c: Ctx, table: Table) -> CoreResult<Option<Response>> {
    let core = s.core()?;
    let path = mount_path(&c)?;
    let mut changes = Map::new();
    for k in [
        "default_lease_ttl",
        "max_lease_ttl",
        "allowed_response_headers",
        "passthrough_request_headers",
        "audit_non_hmac_request_keys",
        "audit_non_hmac_response_keys",
        "listing_visibility",
        "token_type",
        "force_no_cache",
    ] {
        if let Some(v) = c.fields.raw().get(k) {
            changes.insert(k.to_string(), v.clone());
        }
    }
    let description = c
        .fields
        .is_set("description")
        .then(|| c.fields.str("description"));
    let options = c.fields.is_set("options").then(|| c.fields.map("options"));
    core.update_mount(table, &path, move |entry| {
        let mut cfg = entry.config.clone();
        apply_config(&mut cfg, &changes)?;
        let before = std::mem::replace(&mut entry.config, cfg);
        let (default, max) = entry.effective_ttls();
        if let Err(e) = check_tuned_ttls(default, max) {
            entry.config = before;
            return Err(e);
        }
        if let Some(d) = description {
            entry.description = d;
        }
        if let Some(o) = options {
            let mut opts = entry.options.clone().unwrap_or_default();
            for (k, v) in o {
                let v = v.as_str().unwrap_or("").to_string();
                if entry.kind == "kv" && k == "version" && v != "1" {
                    return Err(CoreError::bad(
                        "KV version 2 is not supported by signet; the mount stays at version 1",
                    ));
                }
                opts.insert(k, v);
            }
            entry.options = Some(opts);
        }
        Ok(())
    })
    .await?;
    Ok(None)
}

async fn remount(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let core = s.core()?;
    let from = c.fields.str("from");
    let to = c.fields.str("to");
    if from.trim_matches('/').is_empty() || to.trim_matches('/').is_empty() {
        return Err(CoreError::bad(
            "both 'from' and 'to' path must be specified as a string",
        ));
    }
    core.remount(&from, &to).await?;
    let id = uuid::Uuid::new_v4().to_string();
    let status = json!({"source_mount": normalize_mount_path(&from), "target_mount": normalize_mount_path(&to), "status": "success"});
    c.storage
        .put_json(&format!("remount-status/{id}"), &status)
        .await?;
    let mut r = top(json!({"migration_id": id})).unwrap_or_default();
    r.warnings.push(
        "Mount move has been queued. Progress will be reported in signet's server log, tagged with the returned migration_id".into(),
    );
    Ok(Some(r))
}

async fn remount_status(_s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let id = c.param("migration_id").to_string();
    let status: Option<Value> = c.storage.get_json(&format!("remount-status/{id}")).await?;
    match status {
        None => Err(CoreError::NotFound),
        Some(info) => top(json!({"migration_id": id, "migration_info": info}))
            .map(Ok)
            .transpose(),
    }
}

async fn ui_mounts(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let core = s.core()?;
    let t = core.mount_table();
    let authed = c.meta.token.is_some();
    let visible =
        |m: &&crate::mounts::Mounted| authed || m.entry.config.listing_visibility == "unauth";
    let secret: Map<String, Value> = entry_map(
        t.entries(Table::Secrets)
            .into_iter()
            .filter(visible)
            .collect(),
    );
    let auth: Map<String, Value> =
        entry_map(t.entries(Table::Auth).into_iter().filter(visible).collect());
    Ok(Some(Response::json(
        json!({"auth": auth, "secret": secret}),
    )))
}

async fn ui_mount(s: Arc<SysState>, c: Ctx) -> CoreResult<Option<Response>> {
    let core = s.core()?;
    let path = c.param("path").trim_start_matches('/').to_string();
    let probe = if path.ends_with('/') {
        path.clone()
    } else {
        format!("{path}/")
    };
    let denied = || {
        CoreError::Status(
            403,
            vec![format!(
                "preflight capability check returned 403, please ensure client's policies grant access to path \"{probe}\""
            )],
        )
    };
    let t = core.mount_table();
    let Some((m, _)) = t.route(&probe) else {
        return Err(denied());
    };
    let entry = c.meta.token.clone().ok_or(CoreError::PermissionDenied)?;
    let acl = core.policies().acl(&entry.policies).await?;
    if !acl.is_root() && !acl.any_capability_under(&m.full_path()) {
        return Err(denied());
    }
    let mut v = m.entry.to_json();
    if let Value::Object(o) = &mut v {
        o.insert("path".into(), json!(m.full_path()));
    }
    Ok(Some(Response::json(v)))
}
