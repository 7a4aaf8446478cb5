//! Auto-auth: logging in (AppRole, Kubernetes, JWT, Azure managed identity, a TLS client
//! certificate, a token file), renewing the token at two thirds of its
//! lease, and writing it to the sinks. The token lives in a `Zeroizing` string and is never
//! logged.

use std::time::Duration;

use serde_json::{json, Value};
use signet_client::Client;
use zeroize::Zeroizing;

use crate::config::{AutoAuth, ServerConfig};
use crate::files;
use crate::Failure;

/// A token and what the server said about it.
pub struct Session {
    pub token: Zeroizing<String>,
    pub lease: u64,
    pub renewable: bool,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("token", &"REDACTED")
            .field("lease", &self.lease)
            .field("renewable", &self.renewable)
            .finish()
    }
}

/// The login state kept between attempts (a secret ID removed from disk after its first read
/// stays in memory for later logins, as Vault Agent does).
#[derive(Default)]
pub struct Authenticator {
    secret_id: Option<Zeroizing<String>>,
}

/// A file the login needs; one that is missing may yet appear (a projected token, a secret
/// ID delivered later), so that is worth retrying.
fn read_trimmed(path: &str, what: &str) -> Result<Zeroizing<String>, Failure> {
    std::fs::read_to_string(path)
        .map(|s| Zeroizing::new(s.trim().to_string()))
        .map_err(|e| Failure::transient(format!("cannot read the {what} file {path}: {e}")))
}

fn session_from(auth: &Value) -> Result<Session, String> {
    let token = auth
        .get("client_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("the login answer has no client_token")?;
    Ok(Session {
        token: Zeroizing::new(token.to_string()),
        lease: auth
            .get("lease_duration")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        renewable: auth
            .get("renewable")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

impl Authenticator {
    /// Logs in with the configured method.
    pub async fn login(&mut self, client: &Client, a: &AutoAuth) -> Result<Session, Failure> {
        let get = |k: &str| a.config.get(k).and_then(Value::as_str).map(String::from);
        match a.kind.as_str() {
            "approle" => {
                let role_path =
                    get("role_id_file_path").ok_or("approle needs role_id_file_path")?;
                let role_id = read_trimmed(&role_path, "role ID")?;
                if let Some(p) = get("secret_id_file_path") {
                    match read_trimmed(&p, "secret ID") {
                        Ok(s) if !s.is_empty() => {
                            self.secret_id = Some(s);
                            let remove = !matches!(
                                a.config.get("remove_secret_id_file_after_reading"),
                                Some(Value::Bool(false))
                            ) && !matches!(
                                a.config
                                    .get("remove_secret_id_file_after_reading")
                                    .and_then(Value::as_str),
                                Some("false")
                            );
                            if remove {
                                let _ = std::fs::remove_file(&p);
                            }
                        }
                        _ if self.secret_id.is_some() => {}
                        Err(e) => return Err(e),
                        Ok(_) => {
                            return Err(Failure::transient(format!(
                                "the secret ID file {p} is empty"
                            )))
                        }
                    }
                }
                let mut body = json!({"role_id": role_id.as_str()});
                if let Some(s) = &self.secret_id {
                    body["secret_id"] = json!(s.as_str());
                }
                let mut anon = client.clone();
                anon.set_token(None);
                let resp = anon
                    .write(&format!("{}/login", a.mount_path.trim_matches('/')), &body)
                    .await
                    .map_err(|e| Failure::api("approle login failed: ", e))?
                    .ok_or("approle login returned nothing")?;
                Ok(session_from(resp.get("auth").unwrap_or(&Value::Null))?)
            }
            "kubernetes" | "jwt" => {
                let role = get("role").ok_or_else(|| format!("{} needs a role", a.kind))?;
                let path = if a.kind == "kubernetes" {
                    get("token_path").unwrap_or_else(|| {
                        "/var/run/secrets/kubernetes.io/serviceaccount/token".into()
                    })
                } else {
                    get("path").ok_or("jwt needs path (the file holding the JWT)")?
                };
                // Re-read on every login: projected service-account tokens rotate.
                let jwt = read_trimmed(&path, "JWT")?;
                login_jwt(client, a, &json!({"role": role, "jwt": jwt.as_str()})).await
            }
            "cert" => {
                // The client presents the certificate in the handshake (see `login_client`);
                // `name` picks one of the method's trusted certificates, else the server
                // tries them all.
                let body = match get("name") {
                    Some(n) if !n.is_empty() => json!({"name": n}),
                    _ => json!({}),
                };
                login_jwt(client, a, &body).await
            }
            "azure" => {
                let role = get("role").ok_or("azure needs a role")?;
                let resource =
                    get("resource").unwrap_or_else(|| "https://management.azure.com/".into());
                let metadata =
                    get("metadata_address").unwrap_or_else(|| "http://169.254.169.254".into());
                let jwt = azure_token(
                    client,
                    &metadata,
                    &resource,
                    get("client_id"),
                    get("object_id"),
                )
                .await?;
                let compute = azure_compute(client, &metadata).await.unwrap_or_default();
                let mut body = json!({"role": role, "jwt": jwt.as_str()});
                for (k, v) in compute {
                    body[k] = json!(v);
                }
                login_jwt(client, a, &body).await
            }
            _ => {
                let path = get("token_file_path").ok_or("token_file needs token_file_path")?;
                let token = read_trimmed(&path, "token")?;
                let mut c = client.clone();
                c.set_token(Some(token.to_string()));
                let resp = c
                    .read("auth/token/lookup-self")
                    .await
                    .map_err(|e| Failure::api(&format!("the token in {path} is not valid: "), e))?
                    .ok_or("token lookup returned nothing")?;
                let d = resp.get("data").cloned().unwrap_or(Value::Null);
                Ok(Session {
                    token,
                    lease: d.get("ttl").and_then(Value::as_u64).unwrap_or(0),
                    renewable: d.get("renewable").and_then(Value::as_bool).unwrap_or(false),
                })
            }
        }
    }
}

/// The client logins go through: the server's, except that the `cert` method presents its
/// own client certificate (and trusts its own `ca_cert`) when its config names them.
pub fn login_client(server: &ServerConfig, a: &AutoAuth) -> Result<Client, String> {
    let path = |k: &str| {
        a.config
            .get(k)
            .and_then(Value::as_str)
            .map(std::path::PathBuf::from)
    };
    let mut cfg = signet_client::ClientConfig {
        address: server.address.clone(),
        token: None,
        ca_cert: server.ca_cert.clone(),
        tls_skip_verify: server.tls_skip_verify,
        tls_server_name: server.tls_server_name.clone(),
        client_cert: server.client_cert.clone(),
        client_key: server.client_key.clone(),
    };
    if a.kind == "cert" {
        if let (Some(c), Some(k)) = (path("client_cert"), path("client_key")) {
            cfg.client_cert = Some(c);
            cfg.client_key = Some(k);
        }
        if let Some(ca) = path("ca_cert") {
            cfg.ca_cert = Some(ca);
        }
    }
    Client::new(cfg).map_err(|e| format!("auto_auth method {:?}: {e}", a.kind))
}

/// Posts a login body to the method's mount and reads the token from the answer.
async fn login_jwt(client: &Client, a: &AutoAuth, body: &Value) -> Result<Session, Failure> {
    let mut anon = client.clone();
    anon.set_token(None);
    let resp = anon
        .write(&format!("{}/login", a.mount_path.trim_matches('/')), body)
        .await
        .map_err(|e| Failure::api(&format!("{} login failed: ", a.kind), e))?
        .ok_or_else(|| format!("{} login returned nothing", a.kind))?;
    Ok(session_from(resp.get("auth").unwrap_or(&Value::Null))?)
}

/// A managed-identity access token from the instance metadata service.
async fn azure_token(
    client: &Client,
    metadata: &str,
    resource: &str,
    client_id: Option<String>,
    object_id: Option<String>,
) -> Result<Zeroizing<String>, Failure> {
    let mut url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource={}",
        metadata.trim_end_matches('/'),
        percent(resource)
    );
    if let Some(c) = client_id {
        url.push_str(&format!("&client_id={}", percent(&c)));
    }
    if let Some(o) = object_id {
        url.push_str(&format!("&object_id={}", percent(&o)));
    }
    let v = client
        .get_url(&url, &[("Metadata", "true")])
        .await
        .map_err(|e| {
            Failure::transient(format!(
                "the instance metadata service did not give a token: {e}"
            ))
        })?;
    v.get("access_token")
        .and_then(Value::as_str)
        .map(|t| Zeroizing::new(t.to_string()))
        .ok_or_else(|| Failure::transient("the instance metadata answer has no access_token"))
}

/// The VM's subscription, resource group and name (the azure method wants them).
async fn azure_compute(
    client: &Client,
    metadata: &str,
) -> Result<Vec<(&'static str, String)>, String> {
    let url = format!(
        "{}/metadata/instance?api-version=2021-02-01",
        metadata.trim_end_matches('/')
    );
    let v = client
        .get_url(&url, &[("Metadata", "true")])
        .await
        .map_err(|e| e.to_string())?;
    let c = v.get("compute").cloned().unwrap_or(Value::Null);
    let g = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let mut out = vec![
        ("subscription_id", g("subscriptionId")),
        ("resource_group_name", g("resourceGroupName")),
    ];
    if g("vmScaleSetName").is_empty() {
        out.push(("vm_name", g("name")));
    } else {
        out.push(("vmss_name", g("vmScaleSetName")));
    }
    Ok(out)
}

fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Renews the session's token.
pub async fn renew(client: &Client, s: &Session) -> Result<Session, String> {
    let mut c = client.clone();
    c.set_token(Some(s.token.to_string()));
    let resp = c
        .write("auth/token/renew-self", &json!({}))
        .await
        .map_err(|e| format!("token renewal failed: {e}"))?
        .ok_or("token renewal returned nothing")?;
    session_from(resp.get("auth").unwrap_or(&Value::Null))
}

/// Writes the token to every sink (atomically, mode 0640 by default).
pub fn write_sinks(a: &AutoAuth, s: &Session) -> Result<(), String> {
    for (path, perms) in &a.sinks {
        files::write_set(&[(path.clone(), s.token.as_bytes().to_vec())], perms, true)?;
    }
    Ok(())
}

/// Logs in, retrying with exponential backoff and jitter until it works or `attempts` are
/// spent (0 = forever).
pub async fn login_with_retry(
    auth: &mut Authenticator,
    client: &Client,
    a: &AutoAuth,
    attempts: u32,
) -> Result<Session, String> {
    let attempts = if a.exit_on_err { 1 } else { attempts };
    let mut n = 0;
    loop {
        match auth.login(client, a).await {
            Ok(s) => return Ok(s),
            Err(e) => {
                n += 1;
                // With a bounded number of attempts (-once, exit_after_auth), a refusal is
                // final; running for good, everything is retried (credentials get fixed).
                if attempts > 0 && (n >= attempts || e.permanent) {
                    return Err(e.message);
                }
                let wait = crate::schedule::backoff(
                    n - 1,
                    a.min_backoff,
                    a.max_backoff,
                    crate::schedule::draw(),
                );
                tracing::warn!(method = %a.kind, error = %e, retry_in_secs = wait, "auto-auth failed");
                tokio::time::sleep(Duration::from_secs_f64(wait)).await;
            }
        }
    }
}
