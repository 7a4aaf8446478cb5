//! Identity and access over a real socket: ACL policies, the token store (children, orphans,
//! periodic tokens, use counts, CIDR binding, expiry, accessors), and a matrix that walks every
//! registered path with a `default`-only token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{call, Server};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn token_of(v: &Value) -> String {
    v["auth"]["client_token"].as_str().unwrap().to_string()
}

async fn policy(s: &Server, name: &str, text: &str) {
    let (st, v) = call(
        s,
        "PUT",
        &format!("sys/policies/acl/{name}"),
        Some("root"),
        Some(json!({"policy": text})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
}

async fn create(s: &Server, path: &str, by: &str, body: Value) -> Value {
    let (st, v) = call(s, "POST", path, Some(by), Some(body)).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_grants_exactly_what_it_says() {
    let s = Server::dev().await;
    policy(&s, "etcd", "path \"secret/etcd/*\" {\n  capabilities = [\"read\"]\n}\npath \"auth/token/create\" {\n  capabilities = [\"update\"]\n}\n").await;
    call(
        &s,
        "POST",
        "secret/etcd/member",
        Some("root"),
        Some(json!({"k": "v"})),
    )
    .await;
    call(
        &s,
        "POST",
        "secret/other",
        Some("root"),
        Some(json!({"k": "v"})),
    )
    .await;
    let v = create(
        &s,
        "auth/token/create",
        "root",
        json!({"policies": ["etcd"]}),
    )
    .await;
    assert_eq!(v["auth"]["policies"], json!(["default", "etcd"]));
    let t = token_of(&v);
    let (st, v) = call(&s, "GET", "secret/etcd/member", Some(&t), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, v) = call(&s, "GET", "secret/other", Some(&t), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    assert_eq!(
        v,
        json!({"errors": ["1 error occurred:\n\t* permission denied\n\n"]})
    );
    let (st, _) = call(
        &s,
        "POST",
        "secret/etcd/member",
        Some(&t),
        Some(json!({"k": "w"})),
    )
    .await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = call(&s, "GET", "sys/mounts", Some(&t), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    // The default policy lets it look itself up.
    let (st, v) = call(&s, "GET", "auth/token/lookup-self", Some(&t), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"]["id"], json!(t));
    let (_, v) = call(
        &s,
        "POST",
        "sys/capabilities-self",
        Some(&t),
        Some(json!({"paths": ["secret/etcd/a", "secret/b"]})),
    )
    .await;
    assert_eq!(v["data"]["secret/etcd/a"], json!(["read"]));
    assert_eq!(v["data"]["secret/b"], json!(["deny"]));
    // A child may not get policies its parent lacks; a bad policy names its line.
    let (st, _) = call(
        &s,
        "POST",
        "auth/token/create",
        Some(&t),
        Some(json!({"policies": ["admin"]})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, v) = call(
        &s,
        "PUT",
        "sys/policies/acl/bad",
        Some("root"),
        Some(json!({"policy": "path \"a\" {\n  capabilities = [\"read\"]\n  oops = 1\n}\n"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["errors"][0].as_str().unwrap().contains("line 3"), "{v}");
    let (st, _) = call(&s, "GET", "sys/policies/acl/bad", Some("root"), None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    let (_, v) = call(&s, "LIST", "sys/policies/acl", Some("root"), None).await;
    assert_eq!(v["data"]["keys"], json!(["default", "etcd", "root"]));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_revocation_takes_children_but_not_orphans() {
    let s = Server::dev().await;
    policy(
        &s,
        "p",
        "path \"auth/token/create*\" { capabilities = [\"update\"] }",
    )
    .await;
    let parent =
        token_of(&create(&s, "auth/token/create", "root", json!({"policies": ["p"]})).await);
    let child = token_of(&create(&s, "auth/token/create", &parent, json!({})).await);
    let orphan = token_of(&create(&s, "auth/token/create-orphan", &parent, json!({})).await);
    let (_, v) = call(&s, "GET", "auth/token/lookup-self", Some(&orphan), None).await;
    assert_eq!(v["data"]["orphan"], json!(true));
    let (st, _) = call(
        &s,
        "POST",
        "auth/token/revoke",
        Some("root"),
        Some(json!({"token": parent})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    for (t, expect) in [(&parent, 403), (&child, 403), (&orphan, 200)] {
        let (st, _) = call(&s, "GET", "auth/token/lookup-self", Some(t), None).await;
        assert_eq!(st.as_u16(), expect);
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_orphan_from_role_outlives_its_first_ttl() {
    let s = Server::dev().await;
    policy(
        &s,
        "member",
        "path \"secret/etcd/*\" { capabilities = [\"read\"] }",
    )
    .await;
    let (st, _) = call(
        &s,
        "POST",
        "auth/token/roles/k8s",
        Some("root"),
        Some(json!({"period": "3s", "orphan": true, "allowed_policies": "member"})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let v = create(
        &s,
        "auth/token/create/k8s",
        "root",
        json!({"policies": ["member"]}),
    )
    .await;
    assert_eq!(v["auth"]["orphan"], json!(true));
    assert_eq!(v["auth"]["lease_duration"], json!(3));
    let t = token_of(&v);
    // A policy outside the role is refused.
    let (st, _) = call(
        &s,
        "POST",
        "auth/token/create/k8s",
        Some("root"),
        Some(json!({"policies": ["admin"]})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let (st, v) = call(&s, "POST", "auth/token/renew-self", Some(&t), None).await;
        assert_eq!(st, StatusCode::OK, "{v}");
        assert_eq!(v["auth"]["lease_duration"], json!(3));
    }
    let (st, v) = call(&s, "GET", "auth/token/lookup-self", Some(&t), None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"]["role"], json!("k8s"));
    assert_eq!(v["data"]["path"], json!("auth/token/create/k8s"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uses_expiry_cidrs_and_accessors() {
    let s = Server::dev().await;
    let limited = token_of(
        &create(
            &s,
            "auth/token/create",
            "root",
            json!({"num_uses": 2, "policies": ["default"]}),
        )
        .await,
    );
    for expect in [200, 200, 403] {
        let (st, _) = call(&s, "GET", "auth/token/lookup-self", Some(&limited), None).await;
        assert_eq!(st.as_u16(), expect);
    }
    let short = token_of(
        &create(
            &s,
            "auth/token/create",
            "root",
            json!({"ttl": "1s", "policies": ["default"]}),
        )
        .await,
    );
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (st, _) = call(&s, "GET", "auth/token/lookup-self", Some(&short), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    call(
        &s,
        "POST",
        "auth/token/roles/far",
        Some("root"),
        Some(json!({"token_bound_cidrs": ["10.0.0.0/8"]})),
    )
    .await;
    let bound = token_of(&create(&s, "auth/token/create/far", "root", json!({})).await);
    let (st, _) = call(&s, "GET", "auth/token/lookup-self", Some(&bound), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = call(
        &s,
        "POST",
        "auth/token/roles/bad",
        Some("root"),
        Some(json!({"token_bound_cidrs": ["10.0.0.0/99"]})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let v = create(
        &s,
        "auth/token/create",
        "root",
        json!({"policies": ["default"], "ttl": "1h"}),
    )
    .await;
    let acc = v["auth"]["accessor"].as_str().unwrap().to_string();
    let t = token_of(&v);
    let (_, v) = call(&s, "LIST", "auth/token/accessors", Some("root"), None).await;
    assert!(v["data"]["keys"].as_array().unwrap().contains(&json!(acc)));
    let (st, v) = call(
        &s,
        "POST",
        "auth/token/lookup-accessor",
        Some("root"),
        Some(json!({"accessor": acc})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["data"]["id"], json!(""));
    let (st, v) = call(
        &s,
        "POST",
        "auth/token/renew-accessor",
        Some("root"),
        Some(json!({"accessor": acc, "increment": "2h"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let (st, _) = call(
        &s,
        "POST",
        "auth/token/revoke-accessor",
        Some("root"),
        Some(json!({"accessor": acc})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(&s, "GET", "auth/token/lookup-self", Some(&t), None).await;
    assert_eq!(st, StatusCode::FORBIDDEN);
    let (st, _) = call(&s, "POST", "auth/token/tidy", Some("root"), None).await;
    assert_eq!(st, StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_only_token_is_refused_everywhere_default_grants_nothing() {
    let s = Server::dev().await;
    let t = token_of(
        &create(
            &s,
            "auth/token/create",
            "root",
            json!({"policies": ["default"]}),
        )
        .await,
    );
    let (_, doc) = call(&s, "GET", "sys/internal/specs/openapi", None, None).await;
    let granted = [
        "auth/token/lookup-self",
        "auth/token/renew-self",
        "auth/token/revoke-self",
        "sys/capabilities-self",
    ];
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .trim_start_matches('/')
            .split('/')
            .map(|seg| if seg.starts_with('{') { "x" } else { seg })
            .collect::<Vec<_>>()
            .join("/");
        for (method, verb) in [("get", "GET"), ("post", "POST"), ("delete", "DELETE")] {
            if item.get(method).is_none() {
                continue;
            }
            if granted.contains(&concrete.as_str()) {
                continue;
            }
            // Paths that answer without any token are public by design; skip them.
            let (anon, _) = call(&s, verb, &concrete, None, Some(json!({}))).await;
            if anon != StatusCode::FORBIDDEN {
                continue;
            }
            let (st, v) = call(&s, verb, &concrete, Some(&t), Some(json!({}))).await;
            assert_eq!(st, StatusCode::FORBIDDEN, "{verb} {concrete}: {v}");
            checked += 1;
        }
    }
    assert!(checked > 20, "only {checked} path/operation pairs checked");
    // The token still works where default grants access.
    let (st, _) = call(&s, "GET", "auth/token/lookup-self", Some(&t), None).await;
    assert_eq!(st, StatusCode::OK);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approle_login_and_attacks() {
    let s = Server::dev().await;
    policy(
        &s,
        "cert-manager",
        "path \"istioca/sign/cluster-local\" { capabilities = [\"update\"] }",
    )
    .await;
    let (st, _) = call(
        &s,
        "POST",
        "sys/auth/approle",
        Some("root"),
        Some(json!({"type": "approle"})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, v) = call(&s, "POST", "auth/approle/role/cert-manager", Some("root"), Some(json!({"token_policies": "cert-manager", "token_ttl": "1h", "token_max_ttl": "4h", "secret_id_num_uses": 1}))).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (_, v) = call(
        &s,
        "GET",
        "auth/approle/role/cert-manager/role-id",
        Some("root"),
        None,
    )
    .await;
    let role_id = v["data"]["role_id"].as_str().unwrap().to_string();
    let (_, v) = call(
        &s,
        "POST",
        "auth/approle/role/cert-manager/secret-id",
        Some("root"),
        None,
    )
    .await;
    let secret_id = v["data"]["secret_id"].as_str().unwrap().to_string();
    let accessor = v["data"]["secret_id_accessor"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = call(
        &s,
        "LIST",
        "auth/approle/role/cert-manager/secret-id",
        Some("root"),
        None,
    )
    .await;
    assert_eq!(v["data"]["keys"], json!([accessor]));
    let (_, before) = call(&s, "LIST", "auth/token/accessors", Some("root"), None).await;

    // Wrong secret, unknown role ID, missing secret: 400 and no token.
    for body in [
        json!({"role_id": role_id, "secret_id": "wrong"}),
        json!({"role_id": "nope", "secret_id": secret_id}),
        json!({"role_id": role_id}),
    ] {
        let (st, v) = call(&s, "POST", "auth/approle/login", None, Some(body)).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
        assert!(v["auth"].is_null());
    }
    let (_, after) = call(&s, "LIST", "auth/token/accessors", Some("root"), None).await;
    assert_eq!(before["data"], after["data"]);

    let (st, v) = call(
        &s,
        "POST",
        "auth/approle/login",
        None,
        Some(json!({"role_id": role_id, "secret_id": secret_id})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["auth"]["policies"], json!(["cert-manager", "default"]));
    assert_eq!(v["auth"]["lease_duration"], json!(3600));
    assert_eq!(v["auth"]["metadata"], json!({"role_name": "cert-manager"}));
    let t = token_of(&v);
    let (st, _) = call(&s, "GET", "auth/token/lookup-self", Some(&t), None).await;
    assert_eq!(st, StatusCode::OK);
    // A single-use secret ID does not work twice.
    let (st, v) = call(
        &s,
        "POST",
        "auth/approle/login",
        None,
        Some(json!({"role_id": role_id, "secret_id": secret_id})),
    )
    .await;
    assert_eq!(
        (st, v),
        (
            StatusCode::BAD_REQUEST,
            json!({"errors": ["invalid role or secret ID"]})
        )
    );
    // Custom secret IDs, lookup and destroy by accessor.
    let (st, v) = call(
        &s,
        "POST",
        "auth/approle/role/cert-manager/custom-secret-id",
        Some("root"),
        Some(json!({"secret_id": "my-own-secret", "metadata": "{\"team\":\"mesh\"}"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let acc = v["data"]["secret_id_accessor"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = call(
        &s,
        "POST",
        "auth/approle/role/cert-manager/secret-id/lookup",
        Some("root"),
        Some(json!({"secret_id": "my-own-secret"})),
    )
    .await;
    assert_eq!(v["data"]["metadata"], json!({"team": "mesh"}));
    let (st, _) = call(
        &s,
        "POST",
        "auth/approle/role/cert-manager/secret-id-accessor/destroy",
        Some("root"),
        Some(json!({"secret_id_accessor": acc})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _) = call(
        &s,
        "POST",
        "auth/approle/login",
        None,
        Some(json!({"role_id": role_id, "secret_id": "my-own-secret"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    s.stop().await;
}
