//! JWT/OIDC (`jwt` type; `role_type=jwt`): workloads log in with a signed JWT from an identity
//! provider (Kubernetes projected tokens via OIDC discovery, CI systems, cloud workload
//! identity).
//!
//! Keys come from `jwt_validation_pubkeys`, a `jwks_url`, or an `oidc_discovery_url` (whose
//! `jwks_uri` is fetched). A role binds audiences, subject and arbitrary claims (exact or glob
//! values); `user_claim` names the identity; `claim_mappings` copy claims into token metadata.
//! The browser OIDC flow (`role_type=oidc`) is not served.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use signet_core::framework::{handler, Backend, Ctx, Field, PathBackend, PathSpec};
use signet_core::{CoreError, CoreResult, EngineFactory, Login, Operation, Response, TokenParams};
use signet_storage::Storage;
use signet_types::FieldType;

use crate::jwt::{self, JwksCache, Leeway};

/// Engine state: the key-set cache.
#[derive(Default)]
pub struct JwtAuth {
    jwks: JwksCache,
}

/// The factory the binary registers as auth types `jwt` and `oidc`.
pub fn factory() -> EngineFactory {
    Arc::new(|_entry| Ok(Arc::new(backend()) as Arc<dyn Backend>))
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Config {
    #[serde(default)]
    pub jwks_url: String,
    #[serde(default)]
    pub jwks_ca_pem: String,
    #[serde(default)]
    pub oidc_discovery_url: String,
    #[serde(default)]
    pub oidc_discovery_ca_pem: String,
    #[serde(default)]
    pub jwt_validation_pubkeys: Vec<String>,
    #[serde(default)]
    pub bound_issuer: String,
    #[serde(default)]
    pub jwt_supported_algs: Vec<String>,
    #[serde(default)]
    pub default_role: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Role {
    #[serde(default)]
    bound_audiences: Vec<String>,
    #[serde(default)]
    bound_subject: String,
    #[serde(default)]
    bound_claims: Map<String, Value>,
    #[serde(default)]
    bound_claims_type: String,
    user_claim: String,
    #[serde(default)]
    claim_mappings: BTreeMap<String, String>,
    #[serde(default)]
    groups_claim: String,
    #[serde(default)]
    clock_skew_leeway: u64,
    #[serde(default)]
    expiration_leeway: u64,
    #[serde(default)]
    not_before_leeway: u64,
    #[serde(default)]
    token: TokenParams,
}

/// Builds the engine.
pub fn backend() -> PathBackend<JwtAuth> {
    let role = PathSpec::new("role/:name")
        .field(Field::new("name", FieldType::String, "Name of the role."))
        .field(Field::new(
            "role_type",
            FieldType::String,
            "jwt (oidc is not supported).",
        ))
        .field(Field::new(
            "bound_audiences",
            FieldType::CommaStringSlice,
            "Audiences, one of which the token must carry.",
        ))
        .field(Field::new(
            "bound_subject",
            FieldType::String,
            "Required value of the sub claim.",
        ))
        .field(Field::new(
            "bound_claims",
            FieldType::Map,
            "Claims and the values they must have.",
        ))
        .field(Field::new(
            "bound_claims_type",
            FieldType::String,
            "string (exact) or glob.",
        ))
        .field(Field::new(
            "user_claim",
            FieldType::String,
            "Claim that names the user (the alias).",
        ))
        .field(Field::new(
            "claim_mappings",
            FieldType::KvPairs,
            "Claims copied to token metadata: claim=metadata_key.",
        ))
        .field(Field::new(
            "groups_claim",
            FieldType::String,
            "Claim listing groups.",
        ))
        .field(
            Field::new(
                "clock_skew_leeway",
                FieldType::DurationSecond,
                "Leeway for clock skew.",
            )
            .default(json!(60)),
        )
        .field(
            Field::new(
                "expiration_leeway",
                FieldType::DurationSecond,
                "Leeway past exp.",
            )
            .default(json!(150)),
        )
        .field(
            Field::new(
                "not_before_leeway",
                FieldType::DurationSecond,
                "Leeway before nbf.",
            )
            .default(json!(150)),
        )
        .field(Field::new(
            "allowed_redirect_uris",
            FieldType::CommaStringSlice,
            "OIDC only; accepted and ignored.",
        ))
        .field(Field::new(
            "oidc_scopes",
            FieldType::CommaStringSlice,
            "OIDC only; accepted and ignored.",
        ));
    let specs = vec![
        PathSpec::new("login")
            .field(Field::new(
                "role",
                FieldType::String,
                "Role to log in against (default_role when empty).",
            ))
            .field(Field::new("jwt", FieldType::String, "The signed JWT."))
            .op(Operation::Update, "Log in with a JWT.", handler(login))
            .help("Authenticates a JWT.", "")
            .unauthenticated(),
        PathSpec::new("config")
            .field(Field::new(
                "jwks_url",
                FieldType::String,
                "URL of the JWK set.",
            ))
            .field(Field::new(
                "jwks_ca_pem",
                FieldType::String,
                "CA certificate for the JWKS URL.",
            ))
            .field(Field::new(
                "oidc_discovery_url",
                FieldType::String,
                "OIDC discovery URL (issuer).",
            ))
            .field(Field::new(
                "oidc_discovery_ca_pem",
                FieldType::String,
                "CA certificate for OIDC discovery.",
            ))
            .field(Field::new(
                "jwt_validation_pubkeys",
                FieldType::CommaStringSlice,
                "PEM public keys.",
            ))
            .field(Field::new(
                "bound_issuer",
                FieldType::String,
                "Required iss claim.",
            ))
            .field(Field::new(
                "jwt_supported_algs",
                FieldType::CommaStringSlice,
                "Accepted signing algorithms.",
            ))
            .field(Field::new(
                "default_role",
                FieldType::String,
                "Role used when login names none.",
            ))
            .field(Field::new(
                "oidc_client_id",
                FieldType::String,
                "OIDC only; accepted and ignored.",
            ))
            .field(Field::new(
                "oidc_client_secret",
                FieldType::String,
                "OIDC only; accepted and ignored.",
            ))
            .op(
                Operation::Read,
                "Read the configuration.",
                handler(read_config),
            )
            .write_op("Configure key sources and issuer.", handler(write_config))
            .help("Configures where verification keys come from.", ""),
        PathSpec::new("role")
            .op(Operation::List, "List roles.", handler(list_roles))
            .help("List the roles.", ""),
        TokenParams::fields(role)
            .op(Operation::Read, "Read a role.", handler(read_role))
            .write_op("Create or update a role.", handler(write_role))
            .op(Operation::Delete, "Delete a role.", handler(delete_role))
            .help("Create, read, update or delete a JWT role.", ""),
    ];
    PathBackend::new(Arc::new(JwtAuth::default()), specs)
}

async fn read_config(_s: Arc<JwtAuth>, c: Ctx) -> CoreResult<Option<Response>> {
    let cfg: Option<Config> = c.storage.get_json("config").await?;
    let Some(cfg) = cfg else {
        return Err(CoreError::NotFound);
    };
    Ok(Some(Response::json(
        serde_json::to_value(&cfg).map_err(|e| CoreError::Internal(e.to_string()))?,
    )))
}

async fn write_config(s: Arc<JwtAuth>, c: Ctx) -> CoreResult<Option<Response>> {
    let f = &c.fields;
    let cfg = Config {
        jwks_url: f.str("jwks_url"),
        jwks_ca_pem: f.str("jwks_ca_pem"),
        oidc_discovery_url: f
            .str("oidc_discovery_url")
            .trim_end_matches('/')
            .to_string(),
        oidc_discovery_ca_pem: f.str("oidc_discovery_ca_pem"),
        jwt_validation_pubkeys: f.strings("jwt_validation_pubkeys"),
        bound_issuer: f.str("bound_issuer"),
        jwt_supported_algs: f.strings("jwt_supported_algs"),
        default_role: f.str("default_role"),
    };
    let sources = [
        !cfg.jwks_url.is_empty(),
        !cfg.oidc_discovery_url.is_empty(),
        !cfg.jwt_validation_pubkeys.is_empty(),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    if sources != 1 {
        return Err(CoreError::bad(
            "exactly one of 'jwt_validation_pubkeys', 'jwks_url' or 'oidc_discovery_url' must be set",
        ));
    }
    jwt::pem_keys(&cfg.jwt_validation_pubkeys)?;
    jwt::parse_algs(&cfg.jwt_supported_algs)?;
    crate::outbound::check_ca(&cfg.jwks_ca_pem)?;
    crate::outbound::check_ca(&cfg.oidc_discovery_ca_pem)?;
    c.storage.put_json("config", &cfg).await?;
    s.jwks.clear();
    Ok(None)
}

async fn list_roles(_s: Arc<JwtAuth>, c: Ctx) -> CoreResult<Option<Response>> {
    let keys = c.storage.list("role/").await?;
    Response::list_or_not_found(keys)
}

async fn read_role(_s: Arc<JwtAuth>, c: Ctx) -> CoreResult<Option<Response>> {
    let role: Option<Role> = c
        .storage
        .get_json(&format!("role/{}", c.param("name").to_lowercase()))
        .await?;
    let Some(r) = role else {
        return Err(CoreError::NotFound);
    };
    let mut m = r.token.to_json();
    m.insert("role_type".into(), json!("jwt"));
    m.insert("bound_audiences".into(), json!(r.bound_audiences));
    m.insert("bound_subject".into(), json!(r.bound_subject));
    m.insert(
        "bound_claims".into(),
        if r.bound_claims.is_empty() {
            Value::Null
        } else {
            json!(r.bound_claims)
        },
    );
    m.insert(
        "bound_claims_type".into(),
        json!(if r.bound_claims_type.is_empty() {
            "string"
        } else {
            &r.bound_claims_type
        }),
    );
    m.insert("user_claim".into(), json!(r.user_claim));
    m.insert(
        "claim_mappings".into(),
        if r.claim_mappings.is_empty() {
            Value::Null
        } else {
            json!(r.claim_mappings)
        },
    );
    m.insert("groups_claim".into(), json!(r.groups_claim));
    m.insert("clock_skew_leeway".into(), json!(r.clock_skew_leeway));
    m.insert("expiration_leeway".into(), json!(r.expiration_leeway));
    m.insert("not_before_leeway".into(), json!(r.not_before_leeway));
    m.insert("policies".into(), json!(r.token.token_policies));
    Ok(Some(Response::data(m)))
}

async fn write_role(_s: Arc<JwtAuth>, c: Ctx) -> CoreResult<Option<Response>> {
    let name = c.param("name").to_lowercase();
    let key = format!("role/{name}");
    let existing: Option<Role> = c.storage.get_json(&key).await?;
    let creating = existing.is_none();
    let mut r = existing.unwrap_or_default();
    let f = &c.fields;
    if f.is_set("role_type") && !matches!(f.str("role_type").as_str(), "" | "jwt") {
        return Err(CoreError::bad(
            "only role_type \"jwt\" is supported by signet",
        ));
    }
    if f.is_set("bound_audiences") {
        r.bound_audiences = f.strings("bound_audiences");
    }
    if f.is_set("bound_subject") {
        r.bound_subject = f.str("bound_subject");
    }
    if f.is_set("bound_claims") {
        r.bound_claims = f.map("bound_claims");
    }
    if f.is_set("bound_claims_type") {
        let t = f.str("bound_claims_type");
        if !matches!(t.as_str(), "" | "string" | "glob") {
            return Err(CoreError::bad("bound_claims_type must be string or glob"));
        }
        r.bound_claims_type = t;
    }
    if f.is_set("user_claim") {
        r.user_claim = f.str("user_claim");
    }
    if f.is_set("claim_mappings") {
        r.claim_mappings = f
            .map("claim_mappings")
            .into_iter()
            .map(|(k, v)| (k, v.as_str().unwrap_or("").to_string()))
            .collect();
    }
    if f.is_set("groups_claim") {
        r.groups_claim = f.str("groups_claim");
    }
    for (k, slot) in [
        ("clock_skew_leeway", &mut r.clock_skew_leeway),
        ("expiration_leeway", &mut r.expiration_leeway),
        ("not_before_leeway", &mut r.not_before_leeway),
    ] {
        if f.is_set(k) || creating {
            *slot = f.u64(k);
        }
    }
    r.token.update(f)?;
    if r.user_claim.is_empty() {
        return Err(CoreError::bad("a user claim must be defined on the role"));
    }
    c.storage.put_json(&key, &r).await?;
    Ok(None)
}

async fn delete_role(_s: Arc<JwtAuth>, c: Ctx) -> CoreResult<Option<Response>> {
    c.storage
        .delete(&format!("role/{}", c.param("name").to_lowercase()))
        .await?;
    Ok(None)
}

/// The keys that may verify `token` under `cfg`, and the issuer discovery vouched for.
pub(crate) async fn keys_for(
    cache: &JwksCache,
    cfg: &Config,
    token: &str,
) -> CoreResult<(Vec<jwt::Key>, Option<String>)> {
    if !cfg.jwt_validation_pubkeys.is_empty() {
        return Ok((jwt::pem_keys(&cfg.jwt_validation_pubkeys)?, None));
    }
    let kid = jsonwebtoken::decode_header(token).ok().and_then(|h| h.kid);
    if !cfg.jwks_url.is_empty() {
        return Ok((
            cache
                .keys(&cfg.jwks_url, &cfg.jwks_ca_pem, kid.as_deref())
                .await?,
            None,
        ));
    }
    let client = crate::outbound::client(&cfg.oidc_discovery_ca_pem)?;
    let url = format!(
        "{}/.well-known/openid-configuration",
        cfg.oidc_discovery_url
    );
    let doc: Value = client
        .get(&url)
        .send()
        .await
        .map_err(|e| CoreError::bad(format!("error fetching OIDC discovery document {url}: {e}")))?
        .json()
        .await
        .map_err(|e| CoreError::bad(format!("invalid OIDC discovery document at {url}: {e}")))?;
    let jwks_uri = doc
        .get("jwks_uri")
        .and_then(Value::as_str)
        .ok_or_else(|| CoreError::bad("OIDC discovery document has no jwks_uri"))?;
    let issuer = doc
        .get("issuer")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok((
        cache
            .keys(jwks_uri, &cfg.oidc_discovery_ca_pem, kid.as_deref())
            .await?,
        issuer,
    ))
}

/// A claim by name, or by JSON pointer (`/kubernetes.io/namespace`) into nested claims.
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    let Some(path) = name.strip_prefix('/') else {
        return claims.get(name);
    };
    let mut parts = path.split('/');
    let mut cur = claims.get(parts.next()?)?;
    for part in parts {
        cur = cur.get(part)?;
    }
    Some(cur)
}

fn claim_strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a.iter().flat_map(claim_strings).collect(),
        Value::Null => vec![],
        other => vec![other.to_string()],
    }
}

fn glob(pattern: &str, value: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == value,
        Some((pre, post)) => {
            value.len() >= pre.len() + post.len() && value.starts_with(pre) && value.ends_with(post)
        }
    }
}

async fn login(s: Arc<JwtAuth>, c: Ctx) -> CoreResult<Option<Response>> {
    let cfg: Config = c
        .storage
        .get_json("config")
        .await?
        .ok_or_else(|| CoreError::bad("could not load configuration"))?;
    let mut role_name = c.fields.str("role").to_lowercase();
    if role_name.is_empty() {
        role_name = cfg.default_role.to_lowercase();
    }
    if role_name.is_empty() {
        return Err(CoreError::bad("missing role"));
    }
    let token = c.fields.str("jwt");
    if token.is_empty() {
        return Err(CoreError::bad("missing token"));
    }
    let role: Role = c
        .storage
        .get_json(&format!("role/{role_name}"))
        .await?
        .ok_or_else(|| CoreError::bad(format!("role {role_name:?} could not be found")))?;
    let (keys, discovered_issuer) = keys_for(&s.jwks, &cfg, &token).await?;
    let algs = jwt::parse_algs(&cfg.jwt_supported_algs)?;
    let leeway = Leeway {
        clock_skew: role.clock_skew_leeway,
        expiration: role.expiration_leeway,
        not_before: role.not_before_leeway,
    };
    let claims = jwt::verify(&token, &keys, &algs, leeway)
        .map_err(|e| CoreError::bad(format!("error validating token: {e}")))?;
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    let want_iss = if !cfg.bound_issuer.is_empty() {
        Some(cfg.bound_issuer.clone())
    } else {
        discovered_issuer
    };
    if let Some(want) = want_iss {
        if iss != want {
            return Err(CoreError::bad(
                "error validating token: invalid issuer (iss) claim",
            ));
        }
    }
    let auds = claims.get("aud").map(claim_strings).unwrap_or_default();
    if !role.bound_audiences.is_empty() {
        if !auds.iter().any(|a| role.bound_audiences.contains(a)) {
            return Err(CoreError::bad("error validating token: invalid audience (aud) claim: audience claim does not match any expected audience"));
        }
    } else if !auds.is_empty() {
        return Err(CoreError::bad(
            "audience claim found in JWT but no audiences bound to the role",
        ));
    }
    if !role.bound_subject.is_empty()
        && claims.get("sub").and_then(Value::as_str) != Some(role.bound_subject.as_str())
    {
        return Err(CoreError::bad("sub claim does not match bound subject"));
    }
    let globbing = role.bound_claims_type == "glob";
    for (name, want) in &role.bound_claims {
        let have = claim(&claims, name).map(claim_strings).unwrap_or_default();
        let wanted = claim_strings(want);
        let ok = have.iter().any(|h| {
            wanted
                .iter()
                .any(|w| if globbing { glob(w, h) } else { w == h })
        });
        if !ok {
            return Err(CoreError::bad(format!(
                "claim {name:?} does not match any associated bound claim values"
            )));
        }
    }
    let user = claim(&claims, &role.user_claim)
        .and_then(|v| match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .ok_or_else(|| CoreError::bad(format!("claim {:?} not found in token", role.user_claim)))?;
    let mut metadata = BTreeMap::from([("role".to_string(), role_name.clone())]);
    for (from, to) in &role.claim_mappings {
        if let Some(v) = claim(&claims, from) {
            metadata.insert(to.clone(), claim_strings(v).join(","));
        }
    }
    Ok(Some(Response::login(Login {
        policies: role.token.token_policies.clone(),
        metadata,
        display_name: user,
        params: role.token.clone(),
    })))
}
