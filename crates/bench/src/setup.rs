//! `signet-bench setup`: configures a fresh server the same way through the API, whatever it
//! is (signet, OpenBao, Vault), so workloads compare like with like:
//!
//! * `pki/` (max_lease_ttl 87600h) with an EC P-256 root (kept when the mount already has an
//!   issuer); roles `ec` (stored), `ec-nostore` (`no_store=true`) and `rsa` (RSA 2048), all
//!   `allow_any_name`, max_ttl 72h;
//! * `kv/`, KV version 1;
//! * AppRole at `approle/`, role `bench` with policy `bench` (issue/sign/revoke/search on the
//!   PKI mount, the KV mount, token renew-self); prints the role ID and a fresh secret ID;
//! * `pki-crl/`, a second PKI mount (EC root, role `ec`) holding exactly `--crl-entries`
//!   revoked certificates (1000), so `crl-fetch --mount pki-crl` fetches a CRL of the same
//!   size from every server, whatever the other workloads revoked before.
//!
//! Mounts that exist are kept (re-running on the same server is harmless); roles and the
//! policy are written every time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use hyper::Method;
use serde::Serialize;
use serde_json::{json, Value};

use crate::http::{api_path, error_text, Conn, Reply, Target};

#[derive(Debug, Serialize)]
pub struct SetupResult {
    pub addr: String,
    pub steps: Vec<String>,
    pub role_id: String,
    pub secret_id: String,
}

async fn call(
    conn: &mut Conn,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Reply> {
    let p = api_path(path);
    let r = conn
        .json(method.clone(), &p, Some(token), body.as_ref())
        .await
        .map_err(|e| anyhow!("{method} {p}: {e}"))?;
    Ok(r)
}

async fn ok(
    conn: &mut Conn,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Reply> {
    let r = call(conn, token, method.clone(), path, body).await?;
    if !r.ok() {
        bail!("{method} /v1/{path}: {}", error_text(&r));
    }
    Ok(r)
}

/// Whether a `sys/mounts` or `sys/auth` listing has `path/` (the table is under `data` in
/// current servers and also at the top level in older ones).
fn listed(listing: &Value, path: &str) -> bool {
    let key = format!("{}/", path.trim_matches('/'));
    listing
        .pointer("/data")
        .unwrap_or(listing)
        .get(&key)
        .is_some()
        || listing.get(&key).is_some()
}

/// The policy the AppRole role's tokens get.
pub fn policy(pki: &str, kv: &str) -> String {
    format!(
        r#"path "{pki}/issue/*" {{ capabilities = ["create", "update"] }}
path "{pki}/sign/*" {{ capabilities = ["create", "update"] }}
path "{pki}/revoke" {{ capabilities = ["create", "update"] }}
path "{pki}/certs/search" {{ capabilities = ["read", "update"] }}
path "{kv}/*" {{ capabilities = ["create", "read", "update", "list"] }}
path "auth/token/renew-self" {{ capabilities = ["update"] }}
"#
    )
}

/// Mounts `path/` as PKI (max_lease_ttl 87600h) unless it is mounted, and generates an EC
/// P-256 root unless it has an issuer.
async fn ensure_pki(
    c: &mut Conn,
    token: &str,
    mounts: &Value,
    pki: &str,
    steps: &mut Vec<String>,
) -> anyhow::Result<()> {
    if listed(mounts, pki) {
        ok(
            c,
            token,
            Method::POST,
            &format!("sys/mounts/{pki}/tune"),
            Some(json!({"max_lease_ttl": "87600h"})),
        )
        .await?;
        steps.push(format!(
            "{pki}/ already mounted (max_lease_ttl tuned to 87600h)"
        ));
    } else {
        ok(
            c,
            token,
            Method::POST,
            &format!("sys/mounts/{pki}"),
            Some(json!({"type": "pki", "config": {"max_lease_ttl": "87600h"}})),
        )
        .await?;
        steps.push(format!("mounted {pki}/ (pki, max_lease_ttl 87600h)"));
    }
    let issuers = call(
        c,
        token,
        Method::GET,
        &format!("{pki}/issuers?list=true"),
        None,
    )
    .await?;
    let has_issuer = issuers.ok()
        && issuers
            .json()
            .and_then(|v| {
                v.pointer("/data/keys")
                    .and_then(Value::as_array)
                    .map(|k| !k.is_empty())
            })
            .unwrap_or(false);
    if has_issuer {
        steps.push(format!("{pki}/ already has an issuer (kept)"));
    } else {
        ok(
            c,
            token,
            Method::POST,
            &format!("{pki}/root/generate/internal"),
            Some(json!({
                "common_name": format!("signet-bench Root ({pki})"),
                "key_type": "ec",
                "key_bits": 256,
                "ttl": "87600h",
            })),
        )
        .await?;
        steps.push(format!("{pki}/: generated an EC P-256 root"));
    }
    Ok(())
}

/// Revokes certificates on `pki/` (issued under its role `ec`) until it has `entries`
/// revoked, with 16 connections; returns how many were revoked now.
async fn fill_crl(
    target: &Arc<Target>,
    timeout: Duration,
    token: &str,
    pki: &str,
    entries: usize,
) -> anyhow::Result<usize> {
    let mut c = Conn::new(target.clone(), timeout);
    let listing = call(
        &mut c,
        token,
        Method::GET,
        &format!("{pki}/certs/revoked?list=true"),
        None,
    )
    .await?;
    let have = if listing.ok() {
        listing
            .json()
            .and_then(|v| {
                v.pointer("/data/keys")
                    .and_then(Value::as_array)
                    .map(Vec::len)
            })
            .unwrap_or(0)
    } else {
        0
    };
    let need = entries.saturating_sub(have);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..need.min(16) {
        let (target, token, pki, next) = (
            target.clone(),
            token.to_string(),
            pki.to_string(),
            next.clone(),
        );
        tasks.spawn(async move {
            let mut c = Conn::new(target, timeout);
            while next.fetch_add(1, Ordering::Relaxed) < need {
                let serial = ok(
                    &mut c,
                    &token,
                    Method::POST,
                    &format!("{pki}/issue/ec"),
                    Some(json!({"common_name": "revoked.crl.bench.example.com", "ttl": "72h"})),
                )
                .await?
                .json()
                .and_then(|v| {
                    v.pointer("/data/serial_number")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .ok_or_else(|| anyhow!("no serial_number"))?;
                ok(
                    &mut c,
                    &token,
                    Method::POST,
                    &format!("{pki}/revoke"),
                    Some(json!({"serial_number": serial})),
                )
                .await?;
            }
            Ok::<(), anyhow::Error>(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(|e| anyhow!("{e}"))??;
    }
    // Build (and cache) the CRL now rather than on the first timed fetch.
    let crl = call(&mut c, token, Method::GET, &format!("{pki}/crl"), None).await?;
    if !crl.ok() {
        bail!("GET /v1/{pki}/crl: {}", error_text(&crl));
    }
    Ok(need)
}

pub async fn setup(
    target: Arc<Target>,
    timeout: Duration,
    addr: &str,
    token: &str,
    common: &crate::args::Common,
    crl_mount: &str,
    crl_entries: usize,
) -> anyhow::Result<SetupResult> {
    let pki = common.mount.trim_matches('/');
    let kv = common.kv_mount.trim_matches('/');
    let am = common.approle_mount.trim_matches('/');
    let role = common.approle_role.as_str();
    let mut conn = Conn::new(target.clone(), timeout);
    let c = &mut conn;
    let mut steps = Vec::new();

    let mounts = ok(c, token, Method::GET, "sys/mounts", None)
        .await
        .context("listing mounts (is the token a root token?)")?
        .json()
        .unwrap_or(Value::Null);
    ensure_pki(c, token, &mounts, pki, &mut steps).await?;

    let base = json!({"allow_any_name": true, "max_ttl": "72h", "ttl": "1h"});
    for (name, extra) in [
        ("ec", json!({"key_type": "ec", "key_bits": 256})),
        (
            "ec-nostore",
            json!({"key_type": "ec", "key_bits": 256, "no_store": true}),
        ),
        ("rsa", json!({"key_type": "rsa", "key_bits": 2048})),
    ] {
        let mut body = base.clone();
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        ok(
            c,
            token,
            Method::POST,
            &format!("{pki}/roles/{name}"),
            Some(body),
        )
        .await?;
    }
    steps.push("roles ec, ec-nostore (no_store), rsa (2048)".into());

    if listed(&mounts, kv) {
        steps.push(format!("{kv}/ already mounted (kept)"));
    } else {
        ok(
            c,
            token,
            Method::POST,
            &format!("sys/mounts/{kv}"),
            Some(json!({"type": "kv", "options": {"version": "1"}})),
        )
        .await?;
        steps.push(format!("mounted {kv}/ (kv version 1)"));
    }

    let auths = ok(c, token, Method::GET, "sys/auth", None)
        .await?
        .json()
        .unwrap_or(Value::Null);
    if listed(&auths, am) {
        steps.push(format!("auth {am}/ already enabled (kept)"));
    } else {
        ok(
            c,
            token,
            Method::POST,
            &format!("sys/auth/{am}"),
            Some(json!({"type": "approle"})),
        )
        .await?;
        steps.push(format!("enabled approle at auth/{am}/"));
    }
    ok(
        c,
        token,
        Method::PUT,
        &format!("sys/policies/acl/{role}"),
        Some(json!({"policy": policy(pki, kv)})),
    )
    .await?;
    ok(
        c,
        token,
        Method::POST,
        &format!("auth/{am}/role/{role}"),
        Some(json!({"token_policies": [role], "token_ttl": "1h", "token_max_ttl": "24h"})),
    )
    .await?;
    steps.push(format!("policy {role} and AppRole role {role}"));
    let role_id = ok(
        c,
        token,
        Method::GET,
        &format!("auth/{am}/role/{role}/role-id"),
        None,
    )
    .await?
    .json()
    .and_then(|v| {
        v.pointer("/data/role_id")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
    .ok_or_else(|| anyhow!("no role_id"))?;
    let secret_id = ok(
        c,
        token,
        Method::POST,
        &format!("auth/{am}/role/{role}/secret-id"),
        Some(json!({})),
    )
    .await?
    .json()
    .and_then(|v| {
        v.pointer("/data/secret_id")
            .and_then(Value::as_str)
            .map(str::to_string)
    })
    .ok_or_else(|| anyhow!("no secret_id"))?;
    let crl_mount = crl_mount.trim_matches('/');
    if crl_entries > 0 && !crl_mount.is_empty() {
        ensure_pki(c, token, &mounts, crl_mount, &mut steps).await?;
        ok(
            c,
            token,
            Method::POST,
            &format!("{crl_mount}/roles/ec"),
            Some(json!({"allow_any_name": true, "max_ttl": "72h", "key_type": "ec", "key_bits": 256})),
        )
        .await?;
        let added = fill_crl(&target, timeout, token, crl_mount, crl_entries).await?;
        steps.push(format!(
            "{crl_mount}/: {crl_entries} revoked certificates on its CRL ({added} revoked now)"
        ));
    }
    Ok(SetupResult {
        addr: addr.to_string(),
        steps,
        role_id,
        secret_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_listings() {
        let v = json!({"data": {"pki/": {"type": "pki"}}, "sys/": {}});
        assert!(listed(&v, "pki"));
        assert!(listed(&v, "/pki/"));
        assert!(listed(&v, "sys"));
        assert!(!listed(&v, "kv"));
        assert!(!listed(&Value::Null, "kv"));
    }

    #[test]
    fn policy_names_the_mounts() {
        let p = policy("pki2", "kv2");
        assert!(p.contains(r#"path "pki2/issue/*""#));
        assert!(p.contains(r#"path "kv2/*""#));
        assert!(p.contains("auth/token/renew-self"));
    }
}
