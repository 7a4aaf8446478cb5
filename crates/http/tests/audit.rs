//! Audit devices: what an operator finds in the file after an issuance through an AppRole
//! token, and fail-closed behaviour when no device can write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::{call, Server};
use reqwest::StatusCode;
use serde_json::{json, Map, Value};
use signet_core::audit::AuditDevice;
use signet_storage::backends::inmem::InmemStorage;

async fn dev_with(devices: Vec<Arc<dyn AuditDevice>>) -> Server {
    let s = Server::start_with_audit(Arc::new(InmemStorage::new()), 1 << 20, devices).await;
    s.core.dev_bootstrap(Some("root".into())).await.unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuance_through_approle_is_findable_and_secrets_are_hashed() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("audit.log");
    let dev = signet_audit::FileDevice::open(
        "main",
        "main audit log",
        signet_audit::FileOptions {
            file_path: file.display().to_string(),
            mode: 0o600,
            log_raw: false,
            hmac_accessor: true,
            prefix: String::new(),
        },
    )
    .unwrap();
    let s = dev_with(vec![Arc::new(dev)]).await;
    call(
        &s,
        "POST",
        "sys/mounts/pki",
        Some("root"),
        Some(json!({"type": "pki", "config": {"max_lease_ttl": "87600h"}})),
    )
    .await;
    call(
        &s,
        "POST",
        "pki/root/generate/internal",
        Some("root"),
        Some(json!({"common_name": "Root", "ttl": "8760h", "key_type": "ec"})),
    )
    .await;
    call(
        &s,
        "POST",
        "pki/roles/web",
        Some("root"),
        Some(json!({"allowed_domains": "example.com", "allow_subdomains": true, "key_type": "ec"})),
    )
    .await;
    call(
        &s,
        "PUT",
        "sys/policies/acl/issuer",
        Some("root"),
        Some(json!({"policy": "path \"pki/issue/web\" { capabilities = [\"update\"] }"})),
    )
    .await;
    call(
        &s,
        "POST",
        "sys/auth/approle",
        Some("root"),
        Some(json!({"type": "approle"})),
    )
    .await;
    call(
        &s,
        "POST",
        "auth/approle/role/cm",
        Some("root"),
        Some(json!({"token_policies": "issuer"})),
    )
    .await;
    let (_, v) = call(
        &s,
        "GET",
        "auth/approle/role/cm/role-id",
        Some("root"),
        None,
    )
    .await;
    let role_id = v["data"]["role_id"].as_str().unwrap().to_string();
    let (_, v) = call(
        &s,
        "POST",
        "auth/approle/role/cm/secret-id",
        Some("root"),
        None,
    )
    .await;
    let secret_id = v["data"]["secret_id"].as_str().unwrap().to_string();
    let (_, v) = call(
        &s,
        "POST",
        "auth/approle/login",
        None,
        Some(json!({"role_id": role_id, "secret_id": secret_id})),
    )
    .await;
    let token = v["auth"]["client_token"].as_str().unwrap().to_string();
    let accessor = v["auth"]["accessor"].as_str().unwrap().to_string();
    let (st, v) = call(
        &s,
        "POST",
        "pki/issue/web",
        Some(&token),
        Some(json!({"common_name": "audited.example.com", "ttl": "1h"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let serial = v["data"]["serial_number"].as_str().unwrap().to_string();
    let private_key = v["data"]["private_key"].as_str().unwrap().to_string();

    let log = std::fs::read_to_string(&file).unwrap();
    for secret in [&token, &secret_id, &accessor, &private_key] {
        assert!(
            !log.contains(secret.as_str()),
            "a secret appears in clear in the audit log"
        );
    }
    // The dev root token is the string "root": it must not appear as a token value.
    assert!(!log.contains("\"client_token\":\"root\""));
    assert!(
        !log.contains("PRIVATE KEY"),
        "no private key in the audit log"
    );
    // grep on the CN finds the issuance: request and response entries.
    let entries: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mine: Vec<&Value> = entries
        .iter()
        .filter(|e| e["request"]["path"] == "pki/issue/web")
        .collect();
    assert_eq!(mine.len(), 2, "{log}");
    let (req, resp) = (mine[0], mine[1]);
    assert_eq!(req["type"], "request");
    assert_eq!(resp["type"], "response");
    assert_eq!(req["request"]["data"]["common_name"], "audited.example.com");
    assert_eq!(req["request"]["mount_type"], "pki");
    assert_eq!(req["request"]["operation"], "update");
    assert_eq!(req["auth"]["metadata"]["role_name"], "cm");
    assert_eq!(req["auth"]["policies"], json!(["default", "issuer"]));
    assert_eq!(resp["response"]["data"]["serial_number"], serial.as_str());
    assert_eq!(
        resp["response"]["certificates"][0]["common_name"],
        "audited.example.com"
    );
    assert_eq!(
        resp["response"]["certificates"][0]["serial_number"],
        serial.as_str()
    );
    assert!(resp["response"]["data"]["private_key"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));
    // sys/audit-hash computes the same HMAC, so a known token or accessor can be searched for.
    let (_, v) = call(
        &s,
        "POST",
        "sys/audit-hash/main",
        Some("root"),
        Some(json!({"input": accessor})),
    )
    .await;
    assert_eq!(req["auth"]["accessor"], v["data"]["hash"]);
    let (_, v) = call(
        &s,
        "POST",
        "sys/audit-hash/main",
        Some("root"),
        Some(json!({"input": token})),
    )
    .await;
    assert_eq!(req["auth"]["client_token"], v["data"]["hash"]);
    // The login's secret ID is hashed too.
    let login = entries
        .iter()
        .find(|e| e["request"]["path"] == "auth/approle/login" && e["type"] == "request")
        .unwrap();
    assert!(login["request"]["data"]["secret_id"]
        .as_str()
        .unwrap()
        .starts_with("hmac-sha256:"));
    // Listing, and no devices through the API.
    let (_, v) = call(&s, "GET", "sys/audit", Some("root"), None).await;
    assert_eq!(v["data"]["main/"]["type"], "file");
    let (st, _) = call(
        &s,
        "POST",
        "sys/audit/other",
        Some("root"),
        Some(json!({"type": "file", "options": {"file_path": "/tmp/x"}})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    s.stop().await;
}

struct Broken;

impl AuditDevice for Broken {
    fn path(&self) -> &str {
        "broken/"
    }
    fn kind(&self) -> &str {
        "file"
    }
    fn description(&self) -> &str {
        ""
    }
    fn options(&self) -> Map<String, Value> {
        Map::new()
    }
    fn write(&self, _line: &[u8]) -> std::io::Result<()> {
        Err(std::io::Error::other("disk full"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_no_device_can_record_are_refused_and_not_run() {
    let s = Server::start_with_audit(
        Arc::new(InmemStorage::new()),
        1 << 20,
        vec![Arc::new(Broken)],
    )
    .await;
    // dev_bootstrap goes through the core directly, not through audited requests.
    s.core.dev_bootstrap(Some("root".into())).await.unwrap();
    let (st, v) = call(
        &s,
        "POST",
        "secret/x",
        Some("root"),
        Some(json!({"a": "b"})),
    )
    .await;
    assert_eq!(st, StatusCode::INTERNAL_SERVER_ERROR, "{v}");
    assert!(v["errors"][0].as_str().unwrap().contains("audit"));
    // The write never happened.
    let rt = s.core.mount_table();
    let (m, _) = rt.route("secret/x").unwrap();
    let view = signet_storage::StorageView::new(
        s.core.barrier().clone(),
        format!("logical/{}/", m.entry.uuid),
    );
    assert!(signet_storage::Storage::get(&view, "x")
        .await
        .unwrap()
        .is_none());
    // With a working device beside it, one success suffices.
    let dir = tempfile::tempdir().unwrap();
    let ok = signet_audit::FileDevice::open(
        "ok",
        "",
        signet_audit::FileOptions {
            file_path: dir.path().join("a.log").display().to_string(),
            mode: 0o600,
            log_raw: false,
            hmac_accessor: true,
            prefix: String::new(),
        },
    )
    .unwrap();
    let s2 = Server::start_with_audit(
        Arc::new(InmemStorage::new()),
        1 << 20,
        vec![Arc::new(Broken), Arc::new(ok)],
    )
    .await;
    s2.core.dev_bootstrap(Some("root".into())).await.unwrap();
    let (st, _) = call(
        &s2,
        "POST",
        "secret/x",
        Some("root"),
        Some(json!({"a": "b"})),
    )
    .await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    // A file device whose directory does not exist fails to open.
    assert!(signet_audit::FileDevice::open(
        "bad",
        "",
        signet_audit::FileOptions {
            file_path: "/nonexistent-dir/x/audit.log".into(),
            mode: 0o600,
            log_raw: false,
            hmac_accessor: true,
            prefix: String::new(),
        }
    )
    .is_err());
    s.stop().await;
    s2.stop().await;
}

async fn dev_api() -> Server {
    let s = Server::start_full(Arc::new(InmemStorage::new()), 1 << 20, vec![], true).await;
    s.core.dev_bootstrap(Some("root".into())).await.unwrap();
    s
}

/// With `unsafe_allow_api_audit_creation`, `sys/audit/:path` enables and disables devices;
/// a device whose destination cannot be opened is never enabled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_enabled_file_device_under_the_unsafe_flag() {
    let s = dev_api().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("api.log");
    let (st, v) = call(
        &s,
        "PUT",
        "sys/audit/bad",
        Some("root"),
        Some(json!({"type": "file", "options": {"file_path": "/nonexistent-dir/x.log"}})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (_, list) = call(&s, "GET", "sys/audit", Some("root"), None).await;
    assert!(list["data"].get("bad/").is_none(), "{list}");
    let (st, v) = call(
        &s,
        "PUT",
        "sys/audit/kafka",
        Some("root"),
        Some(json!({"type": "kafka"})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    let (st, v) = call(&s, "PUT", "sys/audit/f1", Some("root"), Some(json!({"type": "file", "description": "api", "options": {"file_path": file.display().to_string()}}))).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, _) = call(
        &s,
        "PUT",
        "sys/audit/f1",
        Some("root"),
        Some(json!({"type": "file", "options": {"file_path": file.display().to_string()}})),
    )
    .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "path already in use");
    let (_, list) = call(&s, "GET", "sys/audit", Some("root"), None).await;
    assert_eq!(list["data"]["f1/"]["type"], "file", "{list}");
    assert_eq!(list["data"]["f1/"]["description"], "api");
    call(&s, "GET", "sys/mounts", Some("root"), None).await;
    let log = std::fs::read_to_string(&file).unwrap();
    assert!(
        log.lines().any(|l| l.contains("\"path\":\"sys/mounts\"")),
        "{log}"
    );
    let (st, _) = call(&s, "DELETE", "sys/audit/f1", Some("root"), None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let before = std::fs::read_to_string(&file).unwrap().len();
    call(&s, "GET", "sys/mounts", Some("root"), None).await;
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().len(),
        before,
        "disabled device writes nothing"
    );
}

/// Without the flag the API cannot create devices (a token holder must not be able to point
/// a file device at an arbitrary path of the server).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_enable_refused_without_the_flag() {
    let s = dev_with(vec![]).await;
    let dir = tempfile::tempdir().unwrap();
    let (st, v) = call(&s, "PUT", "sys/audit/f1", Some("root"), Some(json!({"type": "file", "options": {"file_path": dir.path().join("x").display().to_string()}}))).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert!(v["errors"][0]
        .as_str()
        .unwrap()
        .contains("cannot enable audit device via API"));
    assert!(!dir.path().join("x").exists());
}

/// A socket device: entries arrive over TCP; when the peer goes away the requests fail closed
/// (it is the only device), and when it comes back they are recorded again, no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socket_device_fails_closed_and_recovers() {
    use std::io::{BufRead, BufReader};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let serve =
        move |listener: std::net::TcpListener, tx: std::sync::mpsc::Sender<String>, once: bool| {
            std::thread::spawn(move || {
                if let Ok((conn, _)) = listener.accept() {
                    if once {
                        drop(listener);
                    }
                    for line in BufReader::new(conn).lines() {
                        match line {
                            Ok(l) => {
                                if tx.send(l).is_err() {
                                    return;
                                }
                            }
                            Err(_) => return,
                        }
                    }
                }
            })
        };
    let s = dev_api().await;
    let reader = serve(listener, tx.clone(), true);
    let (st, v) = call(&s, "PUT", "sys/audit/sock", Some("root"), Some(json!({"type": "socket", "options": {"address": addr.to_string(), "socket_type": "tcp"}}))).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    let (st, _) = call(&s, "GET", "sys/mounts", Some("root"), None).await;
    assert_eq!(st, StatusCode::OK);
    let mut got = Vec::new();
    while let Ok(l) = rx.recv_timeout(std::time::Duration::from_secs(5)) {
        got.push(l);
        if got
            .iter()
            .any(|l| l.contains("\"type\":\"response\"") && l.contains("sys/mounts"))
        {
            break;
        }
    }
    assert!(
        got.iter()
            .any(|l| l.contains("\"type\":\"request\"") && l.contains("sys/mounts")),
        "{got:?}"
    );
    // The peer goes away: the connection and the listener are closed.
    let (st, _) = call(
        &s,
        "POST",
        "sys/audit-hash/sock",
        Some("root"),
        Some(json!({"input": "x"})),
    )
    .await;
    assert_eq!(st, StatusCode::OK);
    // Stop the reader by closing its side: the server half sees EOF.
    drop(rx);
    let _ = reader;
    // The reader thread exits on the next line it fails to forward; make sure it does.
    call(&s, "GET", "sys/mounts", Some("root"), None).await;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let mut refused = false;
    for _ in 0..5 {
        let (st, v) = call(&s, "GET", "sys/mounts", Some("root"), None).await;
        if st == StatusCode::INTERNAL_SERVER_ERROR {
            assert!(v["errors"][0].as_str().unwrap().contains("audit"), "{v}");
            refused = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(
        refused,
        "requests fail closed while the only audit device is unreachable"
    );
    // The peer returns on the same address: requests are recorded again.
    let listener = std::net::TcpListener::bind(addr).unwrap();
    let (tx2, rx2) = std::sync::mpsc::channel::<String>();
    serve(listener, tx2, true);
    let (st, v) = call(&s, "GET", "sys/mounts", Some("root"), None).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let line = rx2.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
    assert!(line.contains("sys/mounts"), "{line}");
}

/// A syslog device sends RFC 3164 datagrams (`<PRI>tag[pid]: json`) to the syslog socket.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_device_sends_datagrams() {
    let dir = tempfile::tempdir().unwrap();
    let sock_path = dir.path().join("log.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let s = dev_api().await;
    let (st, v) = call(&s, "PUT", "sys/audit/syslog", Some("root"), Some(json!({"type": "syslog", "options": {"facility": "LOCAL0", "tag": "signet-test", "socket_path": sock_path.display().to_string()}}))).await;
    assert_eq!(st, StatusCode::NO_CONTENT, "{v}");
    call(&s, "GET", "sys/mounts", Some("root"), None).await;
    sock.set_read_timeout(Some(std::time::Duration::from_millis(500)))
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let mut seen = Vec::new();
    while let Ok(n) = sock.recv(&mut buf) {
        seen.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    assert!(seen.len() >= 2, "{seen:?}");
    // LOCAL0 (16) * 8 + informational (6) = 134.
    let want = format!("<134>signet-test[{}]: {{", std::process::id());
    assert!(seen.iter().all(|m| m.starts_with(&want)), "{seen:?}");
    assert!(
        seen.iter().any(|m| m.contains("\"path\":\"sys/mounts\"")),
        "{seen:?}"
    );
    let (st, _) = call(&s, "PUT", "sys/audit/syslog2", Some("root"), Some(json!({"type": "syslog", "options": {"socket_path": dir.path().join("nope").display().to_string()}}))).await;
    assert_eq!(
        st,
        StatusCode::BAD_REQUEST,
        "unreachable syslog socket is refused"
    );
}
