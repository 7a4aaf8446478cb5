//! Kubernetes (`kubernetes`): pods log in with their service-account token (seeds 000, 001).
//!
//! The token is checked by the cluster's TokenReview API at `kubernetes_host` (over TLS with
//! `kubernetes_ca_cert`, authenticated by `token_reviewer_jwt`, or by the login token itself
//! when none is configured), or locally against `pem_keys` when they are set. The service
//! account's namespace and name (from the review, else the token's claims) must be bound by the
//! role; the role's `audience`, when set, must be in the token's audiences.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use signet_core::framework::{handler, Backend, Ctx, Field, PathBackend, PathSpec};
use signet_core::{CoreError, CoreResult, EngineFactory, Login, Operation, Response, TokenParams};
use signet_storage::Storage;
use signet_types::FieldType;

use crate::jwt;

const LOCAL_CA: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
const LOCAL_JWT: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Engine state (none beyond storage).
#[derive(Default)]
pub struct Kubernetes;

/// The factory the binary registers as auth type `kubernetes`.
pub fn factory() -> EngineFactory {
    Arc::new(|_entry| Ok(Arc::new(backend()) as Arc<dyn Backend>))
}

/// `Debug` redacts the reviewer token; it is wiped from memory on drop.
#[derive(Clone, Default, Serialize, Deserialize)]
struct Config {
    kubernetes_host: String,
    #[serde(default)]
    kubernetes_ca_cert: String,
    #[serde(default)]
    token_reviewer_jwt: String,
    #[serde(default)]
    pem_keys: Vec<String>,
    #[serde(default)]
    issuer: String,
    #[serde(default)]
    disable_iss_validation: bool,
    #[serde(default)]
    disable_local_ca_jwt: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("kubernetes_host", &self.kubernetes_host)
            .field("token_reviewer_jwt", &"REDACTED")
            .finish_non_exhaustive()
    }
}

impl Drop for Config {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.token_reviewer_jwt);
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Role {
    bound_service_account_names: Vec<String>,
    bound_service_account_namespaces: Vec<String>,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    alias_name_source: String,
    #[serde(default)]
    token: TokenParams,
}

/// Builds the engine.
pub fn backend() -> PathBackend<Kubernetes> {
    let role = PathSpec::new("role/:name")
        .field(Field::new("name", FieldType::String, "Name of the role."))
        .field(Field::new(
            "bound_service_account_names",
            FieldType::CommaStringSlice,
            "Service account names able to log in (\"*\" for any).",
        ))
        .field(Field::new(
            "bound_service_account_namespaces",
            FieldType::CommaStringSlice,
            "Namespaces able to log in (\"*\" for any).",
        ))
        .field(Field::new(
            "audience",
            FieldType::String,
            "Audience the token must carry.",
        ))
        .field(Field::new(
            "alias_name_source",
            FieldType::String,
            "serviceaccount_uid (default) or serviceaccount_name.",
        ));
    let specs = vec![
        PathSpec::new("login")
            .field(Field::new(
                "role",
                FieldType::String,
                "Name of the role to log in against.",
            ))
            .field(Field::new(
                "jwt",
                FieldType::String,
                "The service account token.",
            ))
            .op(
                Operation::Update,
                "Log in with a Kubernetes service account token.",
                handler(login),
            )
            .help("Authenticates a Kubernetes service account.", "")
            .unauthenticated(),
        PathSpec::new("config")
            .field(Field::new(
                "kubernetes_host",
                FieldType::String,
                "Host of the Kubernetes API server (https://host:port).",
            ))
            .field(Field::new(
                "kubernetes_ca_cert",
                FieldType::String,
                "PEM CA certificate of the API server.",
            ))
            .field(Field::new(
                "token_reviewer_jwt",
                FieldType::String,
                "Service account token used to call TokenReview.",
            ))
            .field(Field::new(
                "pem_keys",
                FieldType::CommaStringSlice,
                "PEM public keys to verify tokens locally instead of TokenReview.",
            ))
            .field(Field::new(
                "issuer",
                FieldType::String,
                "Expected issuer of the tokens.",
            ))
            .field(
                Field::new(
                    "disable_iss_validation",
                    FieldType::Bool,
                    "Do not check the issuer.",
                )
                .default(json!(true)),
            )
            .field(Field::new(
                "disable_local_ca_jwt",
                FieldType::Bool,
                "Do not read the pod's own CA certificate and token.",
            ))
            .op(
                Operation::Read,
                "Read the configuration.",
                handler(read_config),
            )
            .write_op(
                "Configure the Kubernetes API server connection.",
                handler(write_config),
            )
            .help("Configures how tokens are verified.", ""),
        PathSpec::new("role")
            .op(Operation::List, "List roles.", handler(list_roles))
            .help("List the roles.", ""),
        TokenParams::fields(role)
            .op(Operation::Read, "Read a role.", handler(read_role))
            .write_op("Create or update a role.", handler(write_role))
            .op(Operation::Delete, "Delete a role.", handler(delete_role))
            .help("Create, read, update or delete a Kubernetes role.", ""),
    ];
    PathBackend::new(Arc::new(Kubernetes), specs)
}

async fn read_config(_s: Arc<Kubernetes>, c: Ctx) -> CoreResult<Option<Response>> {
    let cfg: Option<Config> = c.storage.get_json("config").await?;
    let Some(cfg) = cfg else {
        return Err(CoreError::NotFound);
    };
    Ok(Some(Response::json(json!({
        "kubernetes_host": cfg.kubernetes_host,
        "kubernetes_ca_cert": cfg.kubernetes_ca_cert,
        "pem_keys": cfg.pem_keys,
        "issuer": cfg.issuer,
        "disable_iss_validation": cfg.disable_iss_validation,
        "disable_local_ca_jwt": cfg.disable_local_ca_jwt,
        "token_reviewer_jwt_set": !cfg.token_reviewer_jwt.is_empty(),
    }))))
}

async fn write_config(_s: Arc<Kubernetes>, c: Ctx) -> CoreResult<Option<Response>> {
    let f = &c.fields;
    let host = f.str("kubernetes_host");
    if host.is_empty() {
        return Err(CoreError::bad("no host provided"));
    }
    if !(host.starts_with("https://") || host.starts_with("http://")) {
        return Err(CoreError::bad("kubernetes_host must be an http(s) URL"));
    }
    let mut ca = f.str("kubernetes_ca_cert");
    let disable_local = f.bool("disable_local_ca_jwt");
    if ca.is_empty() && !disable_local {
        ca = std::fs::read_to_string(LOCAL_CA).map_err(|e| {
            CoreError::bad(format!(
                "kubernetes_ca_cert not given and the pod's CA cannot be read ({LOCAL_CA}: {e}); \
                 set kubernetes_ca_cert or disable_local_ca_jwt=true"
            ))
        })?;
    }
    crate::outbound::check_ca(&ca)?;
    let pem_keys = f.strings("pem_keys");
    jwt::pem_keys(&pem_keys)?;
    let cfg = Config {
        kubernetes_host: host.trim_end_matches('/').to_string(),
        kubernetes_ca_cert: ca,
        token_reviewer_jwt: f.str("token_reviewer_jwt"),
        pem_keys,
        issuer: f.str("issuer"),
        disable_iss_validation: f.bool("disable_iss_validation"),
        disable_local_ca_jwt: disable_local,
    };
    c.storage.put_json("config", &cfg).await?;
    Ok(None)
}

async fn list_roles(_s: Arc<Kubernetes>, c: Ctx) -> CoreResult<Option<Response>> {
    let keys = c.storage.list("role/").await?;
    Response::list_or_not_found(keys)
}

async fn read_role(_s: Arc<Kubernetes>, c: Ctx) -> CoreResult<Option<Response>> {
    let role: Option<Role> = c
        .storage
        .get_json(&format!("role/{}", c.param("name").to_lowercase()))
        .await?;
    let Some(r) = role else {
        return Err(CoreError::NotFound);
    };
    let mut m = r.token.to_json();
    m.insert(
        "bound_service_account_names".into(),
        json!(r.bound_service_account_names),
    );
    m.insert(
        "bound_service_account_namespaces".into(),
        json!(r.bound_service_account_namespaces),
    );
    m.insert("audience".into(), json!(r.audience));
    m.insert(
        "alias_name_source".into(),
        json!(if r.alias_name_source.is_empty() {
            "serviceaccount_uid"
        } else {
            &r.alias_name_source
        }),
    );
    m.insert("policies".into(), json!(r.token.token_policies));
    Ok(Some(Response::data(m)))
}

async fn write_role(_s: Arc<Kubernetes>, c: Ctx) -> CoreResult<Option<Response>> {
    let name = c.param("name").to_lowercase();
    let key = format!("role/{name}");
    let mut role: Role = c.storage.get_json(&key).await?.unwrap_or_default();
    let f = &c.fields;
    if f.is_set("bound_service_account_names") {
        role.bound_service_account_names = f.strings("bound_service_account_names");
    }
    if f.is_set("bound_service_account_namespaces") {
        role.bound_service_account_namespaces = f.strings("bound_service_account_namespaces");
    }
    if f.is_set("audience") {
        role.audience = f.str("audience");
    }
    if f.is_set("alias_name_source") {
        let src = f.str("alias_name_source");
        if !matches!(
            src.as_str(),
            "" | "serviceaccount_uid" | "serviceaccount_name"
        ) {
            return Err(CoreError::bad(
                "alias_name_source must be serviceaccount_uid or serviceaccount_name",
            ));
        }
        role.alias_name_source = src;
    }
    role.token.update(f)?;
    if role.bound_service_account_names.is_empty() {
        return Err(CoreError::bad(
            "\"bound_service_account_names\" can not be empty",
        ));
    }
    if role.bound_service_account_namespaces.is_empty() {
        return Err(CoreError::bad(
            "\"bound_service_account_namespaces\" can not be empty",
        ));
    }
    c.storage.put_json(&key, &role).await?;
    Ok(None)
}

async fn delete_role(_s: Arc<Kubernetes>, c: Ctx) -> CoreResult<Option<Response>> {
    c.storage
        .delete(&format!("role/{}", c.param("name").to_lowercase()))
        .await?;
    Ok(None)
}

/// The service account a token stands for.
struct Account {
    namespace: String,
    name: String,
    uid: String,
    secret_name: String,
    audiences: Vec<String>,
}

fn account_from_claims(claims: &Map<String, Value>) -> Option<Account> {
    let s = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let aud = match claims.get("aud") {
        Some(Value::String(a)) => vec![a.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str().map(str::to_string))
            .collect(),
        _ => vec![],
    };
    if let Some(k) = claims.get("kubernetes.io") {
        // Projected (bound) service-account tokens.
        return Some(Account {
            namespace: s(k.get("namespace")),
            name: s(k.pointer("/serviceaccount/name")),
            uid: s(k.pointer("/serviceaccount/uid")),
            secret_name: String::new(),
            audiences: aud,
        });
    }
    let ns = s(claims.get("kubernetes.io/serviceaccount/namespace"));
    if ns.is_empty() {
        return None;
    }
    Some(Account {
        namespace: ns,
        name: s(claims.get("kubernetes.io/serviceaccount/service-account.name")),
        uid: s(claims.get("kubernetes.io/serviceaccount/service-account.uid")),
        secret_name: s(claims.get("kubernetes.io/serviceaccount/secret.name")),
        audiences: aud,
    })
}

fn bound(list: &[String], value: &str) -> bool {
    list.iter()
        .any(|b| b == "*" || b == value || signet_policy_glob(b, value))
}

fn signet_policy_glob(pattern: &str, value: &str) -> bool {
    pattern.ends_with('*') && value.starts_with(pattern.trim_end_matches('*'))
}

async fn token_review(cfg: &Config, jwt_token: &str, audience: &str) -> CoreResult<Account> {
    let reviewer = if !cfg.token_reviewer_jwt.is_empty() {
        cfg.token_reviewer_jwt.clone()
    } else if !cfg.disable_local_ca_jwt {
        std::fs::read_to_string(LOCAL_JWT)
            .map(|t| t.trim().to_string())
            .unwrap_or_else(|_| jwt_token.to_string())
    } else {
        jwt_token.to_string()
    };
    let mut spec = json!({"token": jwt_token});
    if !audience.is_empty() {
        spec["audiences"] = json!([audience]);
    }
    let body =
        json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec});
    let client = crate::outbound::client(&cfg.kubernetes_ca_cert)?;
    let resp = client
        .post(format!(
            "{}/apis/authentication.k8s.io/v1/tokenreviews",
            cfg.kubernetes_host
        ))
        .bearer_auth(reviewer)
        .json(&body)
        .send()
        .await
        .map_err(|e| {
            CoreError::Status(
                500,
                vec![format!("error calling the Kubernetes TokenReview API: {e}")],
            )
        })?;
    let status = resp.status();
    let v: Value = resp.json().await.unwrap_or(Value::Null);
    if status.as_u16() == 401 || status.as_u16() == 403 {
        return Err(CoreError::Status(
            500,
            vec![format!(
                "the TokenReview API refused the reviewer credentials (HTTP {status})"
            )],
        ));
    }
    if !status.is_success() {
        return Err(CoreError::Status(
            500,
            vec![format!("TokenReview failed with HTTP {status}")],
        ));
    }
    if v.pointer("/status/authenticated").and_then(Value::as_bool) != Some(true) {
        return Err(CoreError::PermissionDenied);
    }
    let username = v
        .pointer("/status/user/username")
        .and_then(Value::as_str)
        .unwrap_or("");
    let parts: Vec<&str> = username.split(':').collect();
    if parts.len() != 4 || parts[0] != "system" || parts[1] != "serviceaccount" {
        return Err(CoreError::bad(
            "lookup failed: the token is not a service account token",
        ));
    }
    let audiences = v
        .pointer("/status/audiences")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Account {
        namespace: parts[2].to_string(),
        name: parts[3].to_string(),
        uid: v
            .pointer("/status/user/uid")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        secret_name: String::new(),
        audiences,
    })
}

async fn login(_s: Arc<Kubernetes>, c: Ctx) -> CoreResult<Option<Response>> {
    let role_name = c.fields.str("role").to_lowercase();
    if role_name.is_empty() {
        return Err(CoreError::bad("missing role"));
    }
    let token = c.fields.str("jwt");
    if token.is_empty() {
        return Err(CoreError::bad("missing jwt"));
    }
    let role: Role = c
        .storage
        .get_json(&format!("role/{role_name}"))
        .await?
        .ok_or_else(|| CoreError::bad(format!("invalid role name \"{role_name}\"")))?;
    let cfg: Config = c
        .storage
        .get_json("config")
        .await?
        .ok_or_else(|| CoreError::bad("could not load backend configuration"))?;
    let claims = jwt::claims_unverified(&token)?;
    let account = if !cfg.pem_keys.is_empty() {
        let keys = jwt::pem_keys(&cfg.pem_keys)?;
        let verified = jwt::verify(&token, &keys, &[], jwt::Leeway::default()).map_err(|e| {
            tracing::debug!(reason = %e, "kubernetes login refused");
            CoreError::PermissionDenied
        })?;
        if !cfg.issuer.is_empty()
            && !cfg.disable_iss_validation
            && verified.get("iss").and_then(Value::as_str) != Some(cfg.issuer.as_str())
        {
            return Err(CoreError::PermissionDenied);
        }
        account_from_claims(&verified).ok_or(CoreError::PermissionDenied)?
    } else {
        let mut a = token_review(&cfg, &token, &role.audience).await?;
        if let Some(from_claims) = account_from_claims(&claims) {
            if a.uid.is_empty() {
                a.uid = from_claims.uid;
            }
            a.secret_name = from_claims.secret_name;
            if a.audiences.is_empty() {
                a.audiences = from_claims.audiences;
            }
        }
        a
    };
    if !bound(&role.bound_service_account_names, &account.name) {
        return Err(CoreError::Status(
            403,
            vec!["service account name not authorized".into()],
        ));
    }
    if !bound(&role.bound_service_account_namespaces, &account.namespace) {
        return Err(CoreError::Status(
            403,
            vec!["namespace not authorized".into()],
        ));
    }
    if !role.audience.is_empty() && !account.audiences.iter().any(|a| a == &role.audience) {
        return Err(CoreError::Status(
            403,
            vec![
                "invalid audience (aud) claim: audience claim does not match any expected audience"
                    .into(),
            ],
        ));
    }
    let metadata = BTreeMap::from([
        ("role".to_string(), role_name.clone()),
        ("service_account_name".to_string(), account.name.clone()),
        (
            "service_account_namespace".to_string(),
            account.namespace.clone(),
        ),
        (
            "service_account_secret_name".to_string(),
            account.secret_name.clone(),
        ),
        ("service_account_uid".to_string(), account.uid.clone()),
    ]);
    Ok(Some(Response::login(Login {
        policies: role.token.token_policies.clone(),
        metadata,
        display_name: format!("{}-{}", account.namespace, account.name),
        params: role.token.clone(),
    })))
}
