//! The `signet` CLI against a real `signet server -dev` over a socket: the vault verbs, their
//! output shapes and exit codes (0 ok, 1 local error, 2 API error); durable servers over SQLite
//! and PostgreSQL for the agent and for `operator migrate` (the PostgreSQL of scripts/pg.sh,
//! or `SIGNET_TEST_PG_URL`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use signet_storage::testkit::pg_url;

const BIN: &str = env!("CARGO_BIN_EXE_signet");

struct Dev {
    child: Child,
    addr: String,
    home: tempfile::TempDir,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dev() -> Dev {
    dev_with_config(None)
}

/// `server -dev`, with `-config=FILE` when given.
fn dev_with_config(config: Option<&std::path::Path>) -> Dev {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = tempfile::tempdir().unwrap();
    let mut args = vec![
        "server".to_string(),
        "-dev".into(),
        "-dev-root-token-id=root".into(),
        format!("-dev-listen-address=127.0.0.1:{port}"),
    ];
    if let Some(c) = config {
        args.push(format!("-config={}", c.display()));
    }
    let child = Command::new(BIN)
        .args(&args)
        .env("HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Dev { child, addr, home }
}

impl Dev {
    fn run(&self, args: &[&str]) -> Output {
        self.run_with(args, None, "root")
    }

    fn run_with(&self, args: &[&str], stdin: Option<&str>, token: &str) -> Output {
        let mut c = Command::new(BIN);
        c.args(args)
            .env_remove("SIGNET_ADDR")
            .env_remove("SIGNET_TOKEN")
            .env_remove("BAO_ADDR")
            .env_remove("BAO_TOKEN")
            .env("VAULT_ADDR", &self.addr)
            .env("VAULT_TOKEN", token)
            .env("HOME", self.home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(input) = stdin {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().unwrap()
    }
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn kv_verbs_formats_and_exit_codes() {
    let d = dev();
    let o = d.run(&["secrets", "enable", "-path=kv", "-version=1", "kv"]);
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        out(&o).trim(),
        "Success! Enabled the kv secrets engine at: kv/"
    );
    let o = d.run(&["write", "kv/app", "user=web", "pass=s3cret"]);
    assert_eq!(out(&o).trim(), "Success! Data written to: kv/app");
    let o = d.run(&["read", "kv/app"]);
    let text = out(&o);
    assert!(
        text.starts_with(
            "Key                 Value\n---                 -----\nrefresh_interval    768h\n"
        ),
        "{text}"
    );
    assert!(text.contains("pass                s3cret"));
    assert_eq!(out(&d.run(&["read", "-field=user", "kv/app"])), "web");
    let o = d.run(&["read", "-format=json", "kv/app"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["data"]["pass"], "s3cret");
    assert!(out(&d.run(&["read", "-format=yaml", "kv/app"])).contains("  user: web\n"));
    let o = d.run_with(
        &["write", "kv/json", "-"],
        Some(r#"{"from": "stdin"}"#),
        "root",
    );
    assert!(o.status.success());
    assert_eq!(out(&d.run(&["read", "-field=from", "kv/json"])), "stdin");
    assert_eq!(out(&d.run(&["list", "kv"])), "Keys\n----\napp\njson\n");
    let o = d.run(&["read", "kv/missing"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "No value found at kv/missing"
    );
    assert_eq!(d.run(&["write", "kv/x"]).status.code(), Some(1));
    assert_eq!(d.run(&["read", "-nope", "kv/x"]).status.code(), Some(1));
    let o = d.run_with(&["read", "kv/app"], None, "bad-token");
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Code: 403"));
    assert!(d.run(&["delete", "kv/app"]).status.success());
    assert_eq!(d.run(&["read", "kv/app"]).status.code(), Some(2));
}

#[test]
fn mounts_status_policies_tokens_and_old_verbs() {
    let d = dev();
    let o = d.run(&["status"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(out(&o).contains("Sealed          false"));
    assert!(d
        .run(&["mount", "-path=cluster1/pki/etcd", "kv"])
        .status
        .success());
    assert!(d
        .run(&["mount-tune", "-max-lease-ttl=87600h", "cluster1/pki/etcd"])
        .status
        .success());
    let o = d.run(&["secrets", "list", "-format=json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["cluster1/pki/etcd/"]["config"]["max_lease_ttl"],
        87600 * 3600
    );
    assert!(d
        .run(&["secrets", "move", "cluster1/pki/etcd", "cluster1/kv"])
        .status
        .success());
    assert!(d
        .run(&["secrets", "disable", "cluster1/kv"])
        .status
        .success());
    let o = d.run_with(
        &["policy-write", "member", "-"],
        Some("path \"secret/etcd/*\" {\n  policy = \"read\"\n}\n"),
        "root",
    );
    assert!(o.status.success(), "{o:?}");
    assert!(out(&d.run(&["policy", "list"])).contains("member\n"));
    assert!(d
        .run(&[
            "write",
            "auth/token/roles/k8s",
            "period=720h",
            "orphan=true",
            "allowed_policies=member"
        ])
        .status
        .success());
    let o = d.run(&[
        "token-create",
        "-policy=member",
        "-role=k8s",
        "-format=json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["auth"]["orphan"], true);
    let token = v["auth"]["client_token"].as_str().unwrap().to_string();
    assert!(d.run(&["write", "secret/etcd/key", "v=1"]).status.success());
    assert!(d
        .run_with(&["read", "secret/etcd/key"], None, &token)
        .status
        .success());
    assert_eq!(
        d.run_with(&["read", "secret/other"], None, &token)
            .status
            .code(),
        Some(2)
    );
    let o = d.run(&["token", "capabilities", &token, "secret/etcd/key"]);
    assert_eq!(out(&o).trim(), "list, read");
    assert!(d.run(&["token", "revoke", &token]).status.success());
    assert_eq!(
        d.run_with(&["token", "lookup"], None, &token).status.code(),
        Some(2)
    );
    let o = d.run(&["operator", "rotate"]);
    assert!(out(&o).contains("Key Term        2"), "{}", out(&o));
    assert!(out(&d.run(&["path-help", "sys/health"])).contains("health"));
}

#[test]
fn approle_login_stores_the_token() {
    let d = dev();
    assert!(d.run(&["auth", "enable", "approle"]).status.success());
    assert!(d
        .run(&["write", "auth/approle/role/web", "token_policies=default"])
        .status
        .success());
    let role_id = out(&d.run(&["read", "-field=role_id", "auth/approle/role/web/role-id"]));
    let secret_id = out(&d.run(&[
        "write",
        "-f",
        "-field=secret_id",
        "auth/approle/role/web/secret-id",
    ]));
    let o = d.run_with(
        &[
            "login",
            "-method=approle",
            &format!("role_id={role_id}"),
            &format!("secret_id={secret_id}"),
        ],
        None,
        "",
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stored = std::fs::read_to_string(d.home.path().join(".vault-token")).unwrap();
    assert!(stored.starts_with("s."));
    assert!(out(&d.run(&["auth", "list"])).contains("approle/"));
}

/// logrotate's dance: the audit file is moved away, SIGHUP makes the server reopen its path,
/// and new entries go to a fresh file there. `audit list` shows the declared device.
#[cfg(unix)]
#[test]
fn sighup_reopens_the_audit_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.log");
    let conf = dir.path().join("audit.hcl");
    std::fs::write(
        &conf,
        format!(
            "audit \"file\" \"main\" {{\n  options {{\n    file_path = \"{}\"\n  }}\n}}\n",
            log.display()
        ),
    )
    .unwrap();
    let d = dev_with_config(Some(&conf));
    let o = d.run(&["audit", "list"]);
    assert!(o.status.success(), "{}", out(&o));
    assert!(out(&o).contains("main/"), "{}", out(&o));
    let o = d.run(&["secrets", "list"]);
    assert!(o.status.success());
    let rotated = dir.path().join("audit.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    let pid = d.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    // The reopen happens on the server's signal task: wait for the new file.
    let start = Instant::now();
    while !log.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the audit file was not reopened after SIGHUP"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = d.run(&["auth", "list"]);
    assert!(o.status.success());
    let fresh = std::fs::read_to_string(&log).unwrap();
    assert!(fresh.contains("\"path\":\"sys/auth\""), "{fresh}");
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("\"path\":\"sys/mounts\""), "{old}");
    assert!(!old.contains("\"path\":\"sys/auth\""));
}

/// A plain HTTP/1.1 request over a socket: (status, body).
fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    (status, body.to_string())
}

fn openssl_out(args: &[&str]) -> String {
    let o = Command::new("openssl").args(args).output().unwrap();
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The agent against a real server: AppRole login, a 6-second certificate renewed at half its
/// life, the key matching the certificate at every read, on_change once per renewal, the
/// secret ID file removed after reading, and `-once` keeping a certificate still valid on disk.
#[test]
fn agent_keeps_a_short_lived_certificate_current() {
    let d = dev();
    let ok = |args: &[&str]| {
        let o = d.run(args);
        assert!(o.status.success(), "{args:?}: {}", out(&o));
        out(&o)
    };
    ok(&["secrets", "enable", "pki"]);
    ok(&[
        "write",
        "pki/root/generate/internal",
        "common_name=Agent Root",
        "key_type=ec",
        "ttl=1h",
    ]);
    ok(&[
        "write",
        "pki/roles/web",
        "allow_any_name=true",
        "key_type=ec",
        "max_ttl=1h",
    ]);
    ok(&["auth", "enable", "approle"]);
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("agent.hcl.policy");
    std::fs::write(
        &policy,
        "path \"pki/issue/web\" { capabilities = [\"update\"] }\n",
    )
    .unwrap();
    ok(&["policy", "write", "agent", policy.to_str().unwrap()]);
    ok(&[
        "write",
        "auth/approle/role/agent",
        "token_policies=agent",
        "token_ttl=1h",
    ]);
    let role_id = ok(&["read", "-field=role_id", "auth/approle/role/agent/role-id"]);
    let secret_id = ok(&[
        "write",
        "-f",
        "-field=secret_id",
        "auth/approle/role/agent/secret-id",
    ]);
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("role-id"), role_id.trim()).unwrap();
    std::fs::write(p("secret-id"), secret_id.trim()).unwrap();
    let metrics_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = format!(
        r#"vault {{ address = "{addr}" }}
listener "tcp" {{
  address     = "127.0.0.1:{metrics_port}"
  tls_disable = true
}}
auto_auth {{
  method "approle" {{
    config = {{
      role_id_file_path   = "{dir}/role-id"
      secret_id_file_path = "{dir}/secret-id"
    }}
  }}
  sink "file" {{ config {{ path = "{dir}/token" }} }}
}}
certificate "web" {{
  path        = "pki/issue/web"
  common_name = "web.example.com"
  ttl         = "6s"
  cert_file   = "{dir}/tls/cert.pem"
  key_file    = "{dir}/tls/key.pem"
  chain_file  = "{dir}/tls/chain.pem"
  ca_file     = "{dir}/tls/ca.pem"
  mode        = "0600"
  renew_at    = "50%"
  on_change   = ["sh", "-c", "echo changed >> {dir}/changes"]
}}
"#,
        addr = d.addr,
        dir = dir.path().display()
    );
    std::fs::write(p("agent.hcl"), &conf).unwrap();
    let mut agent = Command::new(BIN)
        .args(["agent", &format!("-config={}", p("agent.hcl").display())])
        .env("HOME", d.home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut serials = std::collections::BTreeSet::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(14) {
        let (cert, key) = (p("tls/cert.pem"), p("tls/key.pem"));
        if cert.exists() && key.exists() {
            let c = cert.to_str().unwrap();
            let cert_pub = openssl_out(&["x509", "-in", c, "-noout", "-pubkey"]);
            let key_pub = openssl_out(&["pkey", "-in", key.to_str().unwrap(), "-pubout"]);
            // The pair may change between the two reads; re-read the certificate once.
            if cert_pub != key_pub {
                let again = openssl_out(&["x509", "-in", c, "-noout", "-pubkey"]);
                assert_eq!(again, key_pub, "key and certificate do not match");
            }
            serials.insert(openssl_out(&["x509", "-in", c, "-noout", "-serial"]));
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    // SIGHUP reloads the configuration: the next certificate carries the new name.
    std::fs::write(
        p("agent.hcl"),
        conf.replace("web.example.com", "web2.example.com"),
    )
    .unwrap();
    assert!(Command::new("kill")
        .args(["-HUP", &agent.id().to_string()])
        .status()
        .unwrap()
        .success());
    let start = Instant::now();
    loop {
        let subject = openssl_out(&[
            "x509",
            "-in",
            p("tls/cert.pem").to_str().unwrap(),
            "-noout",
            "-subject",
        ]);
        if subject.contains("web2.example.com") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(12),
            "the reloaded configuration was not applied after {:?}: {subject}",
            start.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The listener: /health and Prometheus /metrics.
    assert_eq!(http(metrics_port, "GET", "/health", "").0, 200);
    let (st, metrics) = http(metrics_port, "GET", "/metrics", "");
    assert_eq!(st, 200);
    assert!(
        metrics.contains("signet_agent_certificate_expiry_seconds{name=\"web\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("signet_agent_certificate_renewals_total{name=\"web\"}"),
        "{metrics}"
    );
    let _ = agent.kill();
    let _ = agent.wait();
    assert!(
        serials.len() >= 3,
        "issued and renewed at least twice: {serials:?}"
    );
    let changes = std::fs::read_to_string(p("changes")).unwrap_or_default();
    assert!(
        changes.lines().count() >= serials.len(),
        "on_change per write: {changes}"
    );
    assert!(
        !p("secret-id").exists(),
        "the secret ID file is removed after reading"
    );
    assert!(std::fs::read_to_string(p("token")).unwrap().len() > 10);
    let v = Command::new("openssl")
        .args(["verify", "-CAfile"])
        .arg(p("tls/ca.pem"))
        .arg(p("tls/cert.pem"))
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stdout));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(p("tls/key.pem"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // -once with a certificate still valid on disk (long TTL this time) keeps it.
    std::fs::write(
        p("secret-id"),
        ok(&[
            "write",
            "-f",
            "-field=secret_id",
            "auth/approle/role/agent/secret-id",
        ])
        .trim(),
    )
    .unwrap();
    let long = conf
        .replace("web.example.com", "web2.example.com")
        .replace("ttl         = \"6s\"", "ttl         = \"30m\"")
        .replace(&format!("127.0.0.1:{metrics_port}"), "127.0.0.1:0");
    std::fs::write(p("agent-long.hcl"), &long).unwrap();
    let run_once = || {
        std::fs::write(
            p("secret-id"),
            ok(&[
                "write",
                "-f",
                "-field=secret_id",
                "auth/approle/role/agent/secret-id",
            ])
            .trim(),
        )
        .unwrap();
        let o = Command::new(BIN)
            .args([
                "agent",
                "-once",
                &format!("-config={}", p("agent-long.hcl").display()),
            ])
            .env("HOME", d.home.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", out(&o));
        openssl_out(&[
            "x509",
            "-in",
            p("tls/cert.pem").to_str().unwrap(),
            "-noout",
            "-serial",
        ])
    };
    let first = run_once();
    let second = run_once();
    assert_eq!(
        first, second,
        "a valid certificate on disk is kept, not re-issued"
    );
    // A configuration error names the file and line and exits 1.
    std::fs::write(
        p("bad.hcl"),
        "vault { address = \"http://x\" }\nbogus = 1\n",
    )
    .unwrap();
    let o = Command::new(BIN)
        .args(["agent", &format!("-config={}", p("bad.hcl").display())])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("bad.hcl:2"), "{err}");
}

/// Starts `signet server` on a SQLite file with a key-file seal (unsealed at start).
fn durable_server(dir: &std::path::Path, port: u16) -> Child {
    server_with(&dir.join("server.hcl"), port)
}

/// Starts `signet server -config=CONF` and waits until it listens on `port`.
fn server_with(conf: &std::path::Path, port: u16) -> Child {
    let child = Command::new(BIN)
        .args(["server", &format!("-config={}", conf.display())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// While the CA is down the agent keeps the files it has and keeps running; when the CA
/// returns, the certificate is renewed without restarting the agent.
#[test]
fn agent_keeps_files_while_the_ca_is_down_and_renews_when_it_returns() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(
        p("seal.key"),
        base64::engine::general_purpose::STANDARD.encode([7u8; 32]),
    )
    .unwrap();
    std::fs::write(
        p("server.hcl"),
        format!(
            "storage \"sqlite\" {{ path = \"{}\" }}\nlistener \"tcp\" {{ address = \"127.0.0.1:{port}\" tls_disable = true }}\nseal \"file\" {{ path = \"{}\" }}\n",
            p("signet.db").display(),
            p("seal.key").display()
        ),
    )
    .unwrap();
    let server = durable_server(dir.path(), port);
    let root = init_root(port);
    let mut d = Dev {
        child: server,
        addr: format!("http://127.0.0.1:{port}"),
        home: tempfile::tempdir().unwrap(),
    };
    let ok = |d: &Dev, args: &[&str]| {
        let o = d.run_with(args, None, &root);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        out(&o)
    };
    // A moment for the auto-unseal after init.
    std::thread::sleep(Duration::from_millis(300));
    pki_root_and_role(&d, &root, "Root");
    let token = ok(
        &d,
        &["token", "create", "-field=token", "-policy=root", "-ttl=2h"],
    );
    std::fs::write(p("token"), token.trim()).unwrap();
    std::fs::write(
        p("agent.hcl"),
        format!(
            r#"vault {{ address = "http://127.0.0.1:{port}" }}
auto_auth {{
  method "token_file" {{ config = {{ token_file_path = "{dir}/token" }} }}
}}
certificate "web" {{
  path        = "pki/issue/web"
  common_name = "web.example.com"
  ttl         = "4s"
  cert_file   = "{dir}/cert.pem"
  key_file    = "{dir}/key.pem"
  renew_at    = "50%"
}}
"#,
            dir = dir.path().display()
        ),
    )
    .unwrap();
    let mut agent = Command::new(BIN)
        .args(["agent", &format!("-config={}", p("agent.hcl").display())])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let serial = || {
        openssl_out(&[
            "x509",
            "-in",
            p("cert.pem").to_str().unwrap(),
            "-noout",
            "-serial",
        ])
    };
    let start = Instant::now();
    while !p("cert.pem").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "first certificate"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The CA goes away for longer than the certificate lives.
    let _ = d.child.kill();
    let _ = d.child.wait();
    let before = (serial(), std::fs::read(p("key.pem")).unwrap());
    std::thread::sleep(Duration::from_secs(6));
    assert!(
        agent.try_wait().unwrap().is_none(),
        "the agent keeps running"
    );
    assert_eq!(
        (serial(), std::fs::read(p("key.pem")).unwrap()),
        before,
        "old files stay in place"
    );
    // The CA returns: a new certificate arrives without restarting the agent.
    d.child = durable_server(dir.path(), port);
    let start = Instant::now();
    while serial() == before.0 {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "renewed after the CA came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = agent.kill();
    let _ = agent.wait();
}

/// `<command> -h` prints the command's usage and exits 0, as the vault CLI does.
#[test]
fn help_flags_print_usage() {
    for args in [
        &["read", "-h"][..],
        &["server", "-help"],
        &["agent", "--help"],
        &["write", "kv/x", "-h"],
    ] {
        let o = Command::new(BIN).args(args).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}");
        let text = String::from_utf8_lossy(&o.stdout);
        assert!(
            text.starts_with(&format!("Usage: signet {}", args[0])),
            "{text}"
        );
    }
}

/// Through the CLI: enables `pki/` with an EC root named `common_name` (2 h) and the role
/// `web` (any name, EC, leaves up to 1 h); the root certificate.
fn pki_root_and_role(d: &Dev, token: &str, common_name: &str) -> String {
    let cn = format!("common_name={common_name}");
    let steps: [&[&str]; 3] = [
        &["secrets", "enable", "pki"],
        &[
            "write",
            "-field=certificate",
            "pki/root/generate/internal",
            &cn,
            "key_type=ec",
            "ttl=2h",
        ],
        &[
            "write",
            "pki/roles/web",
            "allow_any_name=true",
            "key_type=ec",
            "max_ttl=1h",
        ],
    ];
    let mut root = String::new();
    for (i, args) in steps.iter().enumerate() {
        let o = d.run_with(args, None, token);
        assert!(o.status.success(), "{args:?}: {}", err(&o));
        if i == 1 {
            root = out(&o);
        }
    }
    root
}

/// A PostgreSQL table no other test or run uses.
fn unique_table(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "t_mig_{name}_{:x}_{:x}",
        std::process::id(),
        nanos & 0xffff_ffff_ffff
    )
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `signet operator migrate ARGS...`, no server involved.
fn migrate(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(["operator", "migrate"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// N from the summary line "Success! Copied N keys (...)".
fn copied_keys(o: &Output) -> u64 {
    let text = out(o);
    text.split("Copied ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no summary in {text:?}"))
}

/// Rows of a SQLite store, counted by SQLite itself.
fn sqlite_keys(path: &std::path::Path) -> u64 {
    let conn =
        rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    conn.query_row("SELECT count(*) FROM kv", [], |r| r.get::<_, i64>(0))
        .unwrap() as u64
}

/// A SQLite store holding `keys` (raw: the migration copies bytes, it needs no server).
fn sqlite_store(path: &std::path::Path, keys: &[String]) {
    use signet_storage::Storage as _;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let s = signet_storage::backends::sqlite::SqliteStorage::open(path).unwrap();
        let ops = keys
            .iter()
            .map(|k| signet_storage::Op::Put(k.clone(), k.as_bytes().repeat(3)))
            .collect();
        s.apply(ops).await.unwrap();
    });
}

/// SIGTERM, then wait for the server to exit (killed after 15 s).
fn stop(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(15) {
            let _ = child.kill();
            let _ = child.wait();
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `sys/init` with one share; the root token.
fn init_root(port: u16) -> String {
    let (st, init) = http(
        port,
        "PUT",
        "/v1/sys/init",
        r#"{"secret_shares":1,"secret_threshold":1}"#,
    );
    assert_eq!(st, 200, "{init}");
    init.split("\"root_token\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string()
}

/// Waits until the server reports itself unsealed.
fn wait_unsealed(port: u16) {
    let start = Instant::now();
    loop {
        let (st, body) = http(port, "GET", "/v1/sys/seal-status", "");
        if st == 200 && body.contains("\"sealed\":false") {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "still sealed: {st} {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn server_hcl(storage: &str, port: u16, seal: &std::path::Path) -> String {
    format!(
        "{storage}\nlistener \"tcp\" {{ address = \"127.0.0.1:{port}\" tls_disable = true }}\nseal \"file\" {{ path = \"{}\" }}\n",
        seal.display()
    )
}

/// An embedded installation moves to PostgreSQL and back: a SQLite server with a CA, a role,
/// an issued certificate and a policy is stopped and migrated; a server on PostgreSQL with
/// the same seal key file comes up unsealed with all of it and issues; migrating back into a
/// new SQLite file copies every key the PostgreSQL table holds, and a server there reads both
/// certificates.
#[test]
fn migrate_sqlite_to_postgresql_and_back() {
    use base64::Engine as _;
    let url = pg_url();
    let table = unique_table("rt");
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(
        p("seal.key"),
        base64::engine::general_purpose::STANDARD.encode([9u8; 32]),
    )
    .unwrap();
    let db = p("signet.db");
    let port = free_port();
    std::fs::write(
        p("server.hcl"),
        server_hcl(
            &format!("storage \"sqlite\" {{ path = \"{}\" }}", db.display()),
            port,
            &p("seal.key"),
        ),
    )
    .unwrap();
    let mut d = Dev {
        child: durable_server(dir.path(), port),
        addr: format!("http://127.0.0.1:{port}"),
        home: tempfile::tempdir().unwrap(),
    };
    let root = init_root(port);
    wait_unsealed(port);
    let ok = |d: &Dev, args: &[&str]| {
        let o = d.run_with(args, None, &root);
        assert!(o.status.success(), "{args:?}: {}", err(&o));
        out(&o)
    };
    let ca = pki_root_and_role(&d, &root, "Migrated Root");
    let issued: serde_json::Value = serde_json::from_str(&ok(
        &d,
        &[
            "write",
            "-format=json",
            "pki/issue/web",
            "common_name=web.example.com",
            "ttl=30m",
        ],
    ))
    .unwrap();
    let serial = issued["data"]["serial_number"]
        .as_str()
        .unwrap()
        .to_string();
    let cert = issued["data"]["certificate"].as_str().unwrap().to_string();
    std::fs::write(
        p("web.policy"),
        "path \"pki/issue/web\" { capabilities = [\"update\"] }\n",
    )
    .unwrap();
    ok(
        &d,
        &[
            "policy",
            "write",
            "web-issuer",
            p("web.policy").to_str().unwrap(),
        ],
    );
    stop(&mut d.child);

    let o = migrate(&[
        "-from",
        &format!("sqlite:{}", db.display()),
        "-to",
        &format!("postgresql:{url}"),
        "-table",
        &table,
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let n = copied_keys(&o);
    assert_eq!(n, sqlite_keys(&db), "every row of the SQLite file");
    assert!(
        out(&o).contains(&format!("\nverified {n} keys\n")),
        "{}",
        out(&o)
    );
    assert!(!err(&o).contains('\r'), "no terminal, no redrawn line");

    let pg_port = free_port();
    std::fs::write(
        p("pg.hcl"),
        server_hcl(
            &format!(
                "storage \"postgresql\" {{\n  connection_url = \"{url}\"\n  table = \"{table}\"\n}}"
            ),
            pg_port,
            &p("seal.key"),
        ),
    )
    .unwrap();
    let mut d = Dev {
        child: server_with(&p("pg.hcl"), pg_port),
        addr: format!("http://127.0.0.1:{pg_port}"),
        home: tempfile::tempdir().unwrap(),
    };
    wait_unsealed(pg_port);
    assert_eq!(
        ok(
            &d,
            &["read", "-field=certificate", &format!("pki/cert/{serial}")]
        )
        .trim(),
        cert.trim()
    );
    assert_eq!(
        ok(&d, &["read", "-field=certificate", "pki/cert/ca"]).trim(),
        ca.trim()
    );
    let role: serde_json::Value =
        serde_json::from_str(&ok(&d, &["read", "-format=json", "pki/roles/web"])).unwrap();
    assert_eq!(role["data"]["allow_any_name"], true);
    assert!(ok(&d, &["policy", "read", "web-issuer"]).contains("pki/issue/web"));
    let issued: serde_json::Value = serde_json::from_str(&ok(
        &d,
        &[
            "write",
            "-format=json",
            "pki/issue/web",
            "common_name=after.example.com",
            "ttl=30m",
        ],
    ))
    .unwrap();
    let serial2 = issued["data"]["serial_number"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(serial2, serial);
    stop(&mut d.child);

    let back = p("back/signet.db");
    let o = migrate(&[
        "-from",
        &format!("postgresql:{url}"),
        "-table",
        &table,
        "-to",
        &format!("sqlite:{}", back.display()),
    ]);
    assert!(o.status.success(), "{}", err(&o));
    let n2 = copied_keys(&o);
    assert!(
        n2 > n,
        "the certificate issued on PostgreSQL came back: {n2} <= {n}"
    );
    assert_eq!(sqlite_keys(&back), n2);
    assert!(out(&o).contains(&format!("\nverified {n2} keys\n")));

    let back_port = free_port();
    std::fs::write(
        p("back.hcl"),
        server_hcl(
            &format!("storage \"sqlite\" {{ path = \"{}\" }}", back.display()),
            back_port,
            &p("seal.key"),
        ),
    )
    .unwrap();
    let d = Dev {
        child: server_with(&p("back.hcl"), back_port),
        addr: format!("http://127.0.0.1:{back_port}"),
        home: tempfile::tempdir().unwrap(),
    };
    wait_unsealed(back_port);
    for s in [&serial, &serial2] {
        ok(
            &d,
            &["read", "-field=certificate", &format!("pki/cert/{s}")],
        );
    }
}

/// A destination that already holds keys is refused, naming it and the count, unless
/// `-force`; with `-force` keys the source lacks are kept and reported.
#[test]
fn migrate_refuses_a_non_empty_destination_without_force() {
    let url = pg_url();
    let table = unique_table("force");
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<String> = (0..25)
        .map(|i| format!("logical/{}/k{i:02}", i % 3))
        .chain(["core/keyring".to_string()])
        .collect();
    let src = dir.path().join("src.db");
    sqlite_store(&src, &keys);
    let from = format!("-from=sqlite:{}", src.display());
    let to = format!("-to=postgresql:{url}");
    let tbl = format!("-table={table}");

    let o = migrate(&[&from, &to, &tbl, "-batch=7"]);
    assert!(o.status.success(), "{}", err(&o));
    assert_eq!(copied_keys(&o), 26);
    assert!(out(&o).contains("verified 26 keys"), "{}", out(&o));

    let o = migrate(&[&from, &to, &tbl]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let e = err(&o);
    assert!(e.contains(&format!("(table {table})")), "{e}");
    assert!(e.contains("holds 26 keys"), "{e}");
    assert!(e.contains("-force"), "{e}");
    assert!(!out(&o).contains("Copied"));

    // A smaller source over the same table: the 6 keys it lacks stay, and are reported.
    let small = dir.path().join("small.db");
    sqlite_store(&small, &keys[..20]);
    let o = migrate(&[
        &format!("-from=sqlite:{}", small.display()),
        &to,
        &tbl,
        "-force",
    ]);
    assert!(o.status.success(), "{}", err(&o));
    assert!(out(&o).contains("verified 20 keys"), "{}", out(&o));
    assert!(err(&o).contains("also holds 6 keys"), "{}", err(&o));

    // The same rule for a SQLite destination.
    let dst = dir.path().join("dst.db");
    let to_sqlite = format!("-to=sqlite:{}", dst.display());
    assert!(migrate(&[&from, &to_sqlite]).status.success());
    let o = migrate(&[&from, &to_sqlite]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err(&o).contains(&format!("sqlite:{}", dst.display())),
        "{}",
        err(&o)
    );
    assert!(err(&o).contains("holds 26 keys"), "{}", err(&o));
    assert!(migrate(&[&from, &to_sqlite, "-force"]).status.success());
}

/// Bad locations, a missing source file and an unreachable database exit 1 with a message
/// (never a password); `-h` prints the usage.
#[test]
fn migrate_rejects_bad_locations_and_unreachable_databases() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.db");
    sqlite_store(&src, &["core/keyring".to_string()]);
    let from = format!("-from=sqlite:{}", src.display());
    let out_db = dir.path().join("out.db");
    let to = format!("-to=sqlite:{}", out_db.display());
    let fails = |args: &[&str], want: &str| {
        let o = migrate(args);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", out(&o));
        let e = err(&o);
        assert!(e.contains(want), "{args:?}: {e}");
        assert!(!e.contains("hunter2"), "{args:?} leaks the password: {e}");
        assert!(!e.contains("panicked"), "{e}");
    };
    fails(&["-from=inmem:", &to], "unknown scheme \"inmem\"");
    fails(
        &[&from, "-to=mysql://u:hunter2@h/db"],
        "unknown scheme \"mysql\"",
    );
    fails(
        &[&from, "-to=postgres://u:hunter2@h/db"],
        "write postgresql: before the URL",
    );
    fails(&[&from, "-to=/tmp/x.db"], "sqlite:PATH or postgresql:URL");
    fails(&[&from], "Both -from and -to are required");
    fails(&[&from, &to, "-batch=0"], "-batch");
    fails(
        &[&from, &format!("-to=sqlite:{}", src.display())],
        "the same",
    );
    fails(
        &["-from=sqlite:/nonexistent/signet.db", &to],
        "the source sqlite:/nonexistent/signet.db does not exist",
    );
    assert!(
        !out_db.exists(),
        "nothing is created when the source is missing"
    );
    let closed = free_port();
    fails(
        &[
            &from,
            &format!("-to=postgresql:postgres://signet:hunter2@127.0.0.1:{closed}/postgres?sslmode=disable"),
        ],
        "cannot reach postgresql:postgres://signet:***@127.0.0.1",
    );
    fails(
        &[
            &format!("-from=postgresql:postgres://signet:hunter2@127.0.0.1:{closed}/postgres?sslmode=disable"),
            &to,
        ],
        "cannot reach",
    );
    let o = migrate(&["-h"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        out(&o).starts_with("Usage: signet operator migrate"),
        "{}",
        out(&o)
    );
    assert!(out(&o).contains("Stop every server"));
}
