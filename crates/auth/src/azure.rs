//! Azure (`azure`): VMs and scale sets log in with their managed-identity token from the
//! instance metadata service (seed 000).
//!
//! The token is verified against the tenant's published keys (OpenID discovery of
//! `https://login.microsoftonline.com/<tenant_id>`, or `oidc_discovery_url` when set, as tests
//! do), must be issued for the configured `resource` and tenant, and its `xms_mirid` (the
//! identity's Azure resource ID) must agree with the subscription, resource group and VM or
//! scale set the login names. The role then binds subscriptions, resource groups, scale sets,
//! service principals (`oid`) and groups (`groups` claim).
//!
//! Deviation: Vault's plugin asks the Azure compute API for a VM's location and for the VMs
//! behind a user-assigned identity; signet makes no calls to Azure's management API, so a role
//! with `bound_locations` is refused at login with an explanation, and a user-assigned identity
//! is accepted only in the subscription and resource group the login names.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use signet_core::framework::{handler, Backend, Ctx, Field, PathBackend, PathSpec};
use signet_core::{CoreError, CoreResult, EngineFactory, Login, Operation, Response, TokenParams};
use signet_storage::Storage;
use signet_types::FieldType;

use crate::jwt::{self, JwksCache, Leeway};
use crate::jwt_auth;

/// Engine state: the key-set cache.
#[derive(Default)]
pub struct Azure {
    jwks: JwksCache,
}

/// The factory the binary registers as auth type `azure`.
pub fn factory() -> EngineFactory {
    Arc::new(|_entry| Ok(Arc::new(backend()) as Arc<dyn Backend>))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Config {
    tenant_id: String,
    resource: String,
    #[serde(default)]
    environment: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    oidc_discovery_url: String,
    #[serde(default)]
    oidc_discovery_ca_pem: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Role {
    #[serde(default)]
    bound_service_principal_ids: Vec<String>,
    #[serde(default)]
    bound_group_ids: Vec<String>,
    #[serde(default)]
    bound_locations: Vec<String>,
    #[serde(default)]
    bound_subscription_ids: Vec<String>,
    #[serde(default)]
    bound_resource_groups: Vec<String>,
    #[serde(default)]
    bound_scale_sets: Vec<String>,
    #[serde(default)]
    token: TokenParams,
}

const BOUNDS: [&str; 6] = [
    "bound_service_principal_ids",
    "bound_group_ids",
    "bound_locations",
    "bound_subscription_ids",
    "bound_resource_groups",
    "bound_scale_sets",
];

/// Builds the engine.
pub fn backend() -> PathBackend<Azure> {
    let mut role = PathSpec::new("role/:name").field(Field::new(
        "name",
        FieldType::String,
        "Name of the role.",
    ));
    for b in BOUNDS {
        role = role.field(Field::new(
            b,
            FieldType::CommaStringSlice,
            "Values the login must match (any of).",
        ));
    }
    let specs = vec![
        PathSpec::new("login")
            .field(Field::new(
                "role",
                FieldType::String,
                "Role to log in against.",
            ))
            .field(Field::new(
                "jwt",
                FieldType::String,
                "Managed-identity access token from the instance metadata service.",
            ))
            .field(Field::new(
                "subscription_id",
                FieldType::String,
                "Subscription of the VM.",
            ))
            .field(Field::new(
                "resource_group_name",
                FieldType::String,
                "Resource group of the VM.",
            ))
            .field(Field::new("vm_name", FieldType::String, "Name of the VM."))
            .field(Field::new(
                "vmss_name",
                FieldType::String,
                "Name of the virtual machine scale set.",
            ))
            .field(Field::new(
                "resource_id",
                FieldType::String,
                "Full resource ID of the VM or scale set.",
            ))
            .op(
                Operation::Update,
                "Log in with an Azure managed-identity token.",
                handler(login),
            )
            .help(
                "Authenticates an Azure VM or scale set by its managed identity.",
                "",
            )
            .unauthenticated(),
        PathSpec::new("config")
            .field(Field::new(
                "tenant_id",
                FieldType::String,
                "The Azure AD tenant.",
            ))
            .field(Field::new(
                "resource",
                FieldType::String,
                "The audience tokens are issued for (e.g. https://management.azure.com/).",
            ))
            .field(Field::new(
                "environment",
                FieldType::String,
                "Azure cloud (AzurePublicCloud).",
            ))
            .field(Field::new(
                "client_id",
                FieldType::String,
                "Accepted for compatibility (management API not used).",
            ))
            .field(Field::new(
                "client_secret",
                FieldType::String,
                "Accepted for compatibility, never stored.",
            ))
            .field(Field::new(
                "oidc_discovery_url",
                FieldType::String,
                "Overrides the tenant's OpenID discovery URL (tests, sovereign clouds).",
            ))
            .field(Field::new(
                "oidc_discovery_ca_pem",
                FieldType::String,
                "CA certificate for the discovery URL.",
            ))
            .op(
                Operation::Read,
                "Read the configuration.",
                handler(read_config),
            )
            .write_op("Configure the tenant and resource.", handler(write_config))
            .help("Configures the Azure tenant whose tokens are trusted.", ""),
        PathSpec::new("role")
            .op(Operation::List, "List roles.", handler(list_roles))
            .help("List the roles.", ""),
        TokenParams::fields(role)
            .op(Operation::Read, "Read a role.", handler(read_role))
            .write_op("Create or update a role.", handler(write_role))
            .op(Operation::Delete, "Delete a role.", handler(delete_role))
            .help("Create, read, update or delete an Azure role.", ""),
    ];
    PathBackend::new(Arc::new(Azure::default()), specs)
}

async fn read_config(_s: Arc<Azure>, c: Ctx) -> CoreResult<Option<Response>> {
    let cfg: Option<Config> = c.storage.get_json("config").await?;
    let Some(cfg) = cfg else {
        return Err(CoreError::NotFound);
    };
    Ok(Some(Response::json(json!({
        "tenant_id": cfg.tenant_id, "resource": cfg.resource, "environment": cfg.environment,
        "client_id": cfg.client_id, "oidc_discovery_url": cfg.oidc_discovery_url,
    }))))
}

async fn write_config(s: Arc<Azure>, c: Ctx) -> CoreResult<Option<Response>> {
    let f = &c.fields;
    let cfg = Config {
        tenant_id: f.str("tenant_id"),
        resource: f.str("resource"),
        environment: f.str("environment"),
        client_id: f.str("client_id"),
        oidc_discovery_url: f
            .str("oidc_discovery_url")
            .trim_end_matches('/')
            .to_string(),
        oidc_discovery_ca_pem: f.str("oidc_discovery_ca_pem"),
    };
    if cfg.tenant_id.is_empty() {
        return Err(CoreError::bad("tenant_id is required"));
    }
    if cfg.resource.is_empty() {
        return Err(CoreError::bad("resource is required"));
    }
    if !matches!(cfg.environment.as_str(), "" | "AzurePublicCloud")
        && cfg.oidc_discovery_url.is_empty()
    {
        return Err(CoreError::bad(
            "for clouds other than AzurePublicCloud, set oidc_discovery_url",
        ));
    }
    crate::outbound::check_ca(&cfg.oidc_discovery_ca_pem)?;
    c.storage.put_json("config", &cfg).await?;
    s.jwks.clear();
    Ok(None)
}

async fn list_roles(_s: Arc<Azure>, c: Ctx) -> CoreResult<Option<Response>> {
    let keys = c.storage.list("role/").await?;
    Response::list_or_not_found(keys)
}

async fn read_role(_s: Arc<Azure>, c: Ctx) -> CoreResult<Option<Response>> {
    let role: Option<Role> = c
        .storage
        .get_json(&format!("role/{}", c.param("name").to_lowercase()))
        .await?;
    let Some(r) = role else {
        return Err(CoreError::NotFound);
    };
    let mut m = r.token.to_json();
    m.insert(
        "bound_service_principal_ids".into(),
        json!(r.bound_service_principal_ids),
    );
    m.insert("bound_group_ids".into(), json!(r.bound_group_ids));
    m.insert("bound_locations".into(), json!(r.bound_locations));
    m.insert(
        "bound_subscription_ids".into(),
        json!(r.bound_subscription_ids),
    );
    m.insert(
        "bound_resource_groups".into(),
        json!(r.bound_resource_groups),
    );
    m.insert("bound_scale_sets".into(), json!(r.bound_scale_sets));
    m.insert("policies".into(), json!(r.token.token_policies));
    Ok(Some(Response::data(m)))
}

async fn write_role(_s: Arc<Azure>, c: Ctx) -> CoreResult<Option<Response>> {
    let name = c.param("name").to_lowercase();
    let key = format!("role/{name}");
    let mut r: Role = c.storage.get_json(&key).await?.unwrap_or_default();
    let f = &c.fields;
    let lower = |v: Vec<String>| v.into_iter().map(|x| x.to_lowercase()).collect::<Vec<_>>();
    if f.is_set("bound_service_principal_ids") {
        r.bound_service_principal_ids = lower(f.strings("bound_service_principal_ids"));
    }
    if f.is_set("bound_group_ids") {
        r.bound_group_ids = lower(f.strings("bound_group_ids"));
    }
    if f.is_set("bound_locations") {
        r.bound_locations = lower(f.strings("bound_locations"));
    }
    if f.is_set("bound_subscription_ids") {
        r.bound_subscription_ids = lower(f.strings("bound_subscription_ids"));
    }
    if f.is_set("bound_resource_groups") {
        r.bound_resource_groups = lower(f.strings("bound_resource_groups"));
    }
    if f.is_set("bound_scale_sets") {
        r.bound_scale_sets = lower(f.strings("bound_scale_sets"));
    }
    r.token.update(f)?;
    let any = !(r.bound_service_principal_ids.is_empty()
        && r.bound_group_ids.is_empty()
        && r.bound_locations.is_empty()
        && r.bound_subscription_ids.is_empty()
        && r.bound_resource_groups.is_empty()
        && r.bound_scale_sets.is_empty());
    if !any {
        return Err(CoreError::bad(
            "must have at least one bound constraint when creating/updating a role",
        ));
    }
    c.storage.put_json(&key, &r).await?;
    Ok(None)
}

async fn delete_role(_s: Arc<Azure>, c: Ctx) -> CoreResult<Option<Response>> {
    c.storage
        .delete(&format!("role/{}", c.param("name").to_lowercase()))
        .await?;
    Ok(None)
}

/// The parts of an Azure resource ID: `/subscriptions/S/resourceGroups/G/providers/P/T/N`.
#[derive(Debug, Default, PartialEq, Eq)]
struct ResourceId {
    subscription: String,
    group: String,
    provider_type: String,
    name: String,
}

fn parse_resource_id(id: &str) -> Option<ResourceId> {
    let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
    if parts.len() < 8
        || !parts[0].eq_ignore_ascii_case("subscriptions")
        || !parts[2].eq_ignore_ascii_case("resourcegroups")
        || !parts[4].eq_ignore_ascii_case("providers")
    {
        return None;
    }
    Some(ResourceId {
        subscription: parts[1].to_lowercase(),
        group: parts[3].to_lowercase(),
        provider_type: format!("{}/{}", parts[5], parts[6]).to_lowercase(),
        name: parts[7].to_lowercase(),
    })
}

fn refuse(msg: impl Into<String>) -> CoreError {
    CoreError::bad(msg.into())
}

async fn login(s: Arc<Azure>, c: Ctx) -> CoreResult<Option<Response>> {
    let f = &c.fields;
    let role_name = f.str("role").to_lowercase();
    if role_name.is_empty() {
        return Err(refuse("role is required"));
    }
    let token = f.str("jwt");
    if token.is_empty() {
        return Err(refuse("jwt is required"));
    }
    let cfg: Config = c
        .storage
        .get_json("config")
        .await?
        .ok_or_else(|| refuse("unable to retrieve backend configuration"))?;
    let role: Role = c
        .storage
        .get_json(&format!("role/{role_name}"))
        .await?
        .ok_or_else(|| refuse(format!("invalid role name \"{role_name}\"")))?;
    let discovery = if cfg.oidc_discovery_url.is_empty() {
        format!("https://login.microsoftonline.com/{}", cfg.tenant_id)
    } else {
        cfg.oidc_discovery_url.clone()
    };
    let jcfg = jwt_auth::Config {
        oidc_discovery_url: discovery,
        oidc_discovery_ca_pem: cfg.oidc_discovery_ca_pem.clone(),
        ..Default::default()
    };
    let (keys, issuer) = jwt_auth::keys_for(&s.jwks, &jcfg, &token).await?;
    let claims = jwt::verify(&token, &keys, &[], Leeway::default())
        .map_err(|e| refuse(format!("unable to verify token: {e}")))?;
    let expected_iss =
        issuer.unwrap_or_else(|| format!("https://sts.windows.net/{}/", cfg.tenant_id));
    if claims.get("iss").and_then(Value::as_str) != Some(expected_iss.as_str()) {
        return Err(refuse("token issuer is not the configured tenant"));
    }
    if claims
        .get("tid")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.eq_ignore_ascii_case(&cfg.tenant_id))
    {
        return Err(refuse(
            "token tenant does not match the configured tenant_id",
        ));
    }
    let auds: Vec<String> = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    };
    let want_aud = cfg.resource.trim_end_matches('/');
    if !auds.iter().any(|a| a.trim_end_matches('/') == want_aud) {
        return Err(refuse(
            "token audience does not match the configured resource",
        ));
    }
    let mut subscription = f.str("subscription_id").to_lowercase();
    let mut group = f.str("resource_group_name").to_lowercase();
    let mut vm = f.str("vm_name").to_lowercase();
    let mut vmss = f.str("vmss_name").to_lowercase();
    let resource_id = f.str("resource_id");
    if !resource_id.is_empty() {
        let rid = parse_resource_id(&resource_id)
            .ok_or_else(|| refuse("resource_id is not an Azure resource ID"))?;
        subscription = rid.subscription;
        group = rid.group;
        match rid.provider_type.as_str() {
            "microsoft.compute/virtualmachines" => vm = rid.name,
            "microsoft.compute/virtualmachinescalesets" => vmss = rid.name,
            other => {
                return Err(refuse(format!(
                    "resource_id of type {other} is not a VM or scale set"
                )))
            }
        }
    }
    if subscription.is_empty() || group.is_empty() {
        return Err(refuse(
            "subscription_id and resource_group_name (or resource_id) are required",
        ));
    }
    if vm.is_empty() == vmss.is_empty() {
        return Err(refuse(
            "exactly one of vm_name and vmss_name (or a resource_id) is required",
        ));
    }
    let mirid = claims
        .get("xms_mirid")
        .and_then(Value::as_str)
        .unwrap_or("");
    let mi = parse_resource_id(mirid)
        .ok_or_else(|| refuse("token has no xms_mirid claim: not a managed-identity token"))?;
    if mi.subscription != subscription || mi.group != group {
        return Err(refuse(
            "token's managed identity is not in the subscription and resource group of the login",
        ));
    }
    match mi.provider_type.as_str() {
        "microsoft.compute/virtualmachines" if mi.name != vm => {
            return Err(refuse(
                "token's managed identity does not belong to the VM named in the login",
            ))
        }
        "microsoft.compute/virtualmachinescalesets" if mi.name != vmss => {
            return Err(refuse(
                "token's managed identity does not belong to the scale set named in the login",
            ))
        }
        _ => {}
    }
    let in_list = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
    if !in_list(&role.bound_subscription_ids, &subscription) {
        return Err(refuse("subscription not authorized"));
    }
    if !in_list(&role.bound_resource_groups, &group) {
        return Err(refuse("resource group not authorized"));
    }
    if !role.bound_scale_sets.is_empty() && !in_list(&role.bound_scale_sets, &vmss) {
        return Err(refuse("scale set not authorized"));
    }
    let oid = claims
        .get("oid")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_lowercase();
    if !in_list(&role.bound_service_principal_ids, &oid) {
        return Err(refuse("service principal not authorized"));
    }
    if !role.bound_group_ids.is_empty() {
        let groups: Vec<String> = claims
            .get("groups")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_lowercase))
                    .collect()
            })
            .unwrap_or_default();
        if !groups.iter().any(|g| role.bound_group_ids.contains(g)) {
            return Err(refuse("groups not authorized"));
        }
    }
    if !role.bound_locations.is_empty() {
        return Err(refuse(
            "bound_locations needs the Azure compute API, which signet does not call; bind subscriptions, resource groups or scale sets instead",
        ));
    }
    let metadata = BTreeMap::from([
        ("role".to_string(), role_name.clone()),
        ("subscription_id".to_string(), subscription.clone()),
        ("resource_group_name".to_string(), group.clone()),
        ("vm_name".to_string(), vm.clone()),
        ("vmss_name".to_string(), vmss.clone()),
    ]);
    Ok(Some(Response::login(Login {
        policies: role.token.token_policies.clone(),
        metadata,
        display_name: if vm.is_empty() { vmss } else { vm },
        params: role.token.clone(),
    })))
}
