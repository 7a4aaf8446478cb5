//! `signet-bench` against a real `signet server -dev`: setup, then every workload for about a
//! second with no error; an operation budget (`-n`); a workload the server lacks reported as
//! unsupported; connection failures counted, not fatal.
//!
//! The server binary is built here with `cargo build --bin signet` (same profile as this test)
//! unless `SIGNET_BIN` names one.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const BENCH: &str = env!("CARGO_BIN_EXE_signet-bench");

struct Server {
    child: Child,
    addr: String,
    _home: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The signet binary: `SIGNET_BIN`, or built beside this crate's binary.
fn signet_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("SIGNET_BIN") {
        return PathBuf::from(p);
    }
    let dir = PathBuf::from(BENCH).parent().unwrap().to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "-j", "1", "-p", "signet", "--bin", "signet"])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let st = cmd.status().expect("cargo build --bin signet");
    assert!(st.success(), "cargo build --bin signet failed");
    dir.join("signet")
}

fn start() -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = tempfile::tempdir().unwrap();
    let child = Command::new(signet_bin())
        .args([
            "server",
            "-dev",
            "-dev-root-token-id=root",
            &format!("-dev-listen-address=127.0.0.1:{port}"),
        ])
        .env("HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "signet did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Server {
        child,
        addr: format!("http://127.0.0.1:{port}"),
        _home: home,
    }
}

fn bench(args: &[&str]) -> (i32, String, String) {
    let o = Command::new(BENCH)
        .args(args)
        .env_remove("VAULT_TOKEN")
        .env_remove("BAO_TOKEN")
        .env_remove("VAULT_ADDR")
        .env_remove("BAO_ADDR")
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn run_json(s: &Server, args: &[&str]) -> Value {
    let mut all = vec!["run"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--addr", &s.addr, "--token", "root", "--json", "--quiet"]);
    let (code, out, err) = bench(&all);
    assert_eq!(code, 0, "{args:?}: {out}\n{err}");
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

#[test]
fn every_workload_against_signet() {
    let s = start();
    let setup = [
        "setup",
        "--addr",
        &s.addr,
        "--token",
        "root",
        "--crl-entries",
        "40",
    ];
    let (code, out, err) = bench(&setup);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("role_id"), "{out}");
    assert!(
        out.contains("pki-crl/: 40 revoked certificates on its CRL (40 revoked now)"),
        "{out}"
    );
    // A second setup on the same server keeps what exists.
    let (code, out, err) = bench(&[&setup[..], &["--json"]].concat());
    assert_eq!(code, 0, "{out}\n{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert!(
        v["steps"][1]
            .as_str()
            .unwrap()
            .contains("already has an issuer"),
        "{v}"
    );
    assert!(v.to_string().contains("(0 revoked now)"), "{v}");
    let v = run_json(&s, &["crl-fetch", "--mount", "pki-crl", "-n", "20"]);
    assert_eq!(v["ok"], 20, "{v}");

    let pid = s.child.id().to_string();
    for w in [
        "issue",
        "sign",
        "revoke",
        "crl-fetch",
        "ocsp",
        "search",
        "approle-login",
        "kv-write",
        "kv-read",
        "mixed",
    ] {
        let v = run_json(&s, &[w, "-c", "4", "-d", "1s", "--server-pid", &pid]);
        assert_eq!(v["workload"], w);
        assert!(v["unsupported"].is_null(), "{w}: {v}");
        assert_eq!(v["error_count"], 0, "{w}: {v}");
        assert!(v["ok"].as_u64().unwrap() > 0, "{w}: {v}");
        assert!(v["ops_per_s"].as_f64().unwrap() > 0.0, "{w}: {v}");
        assert!(v["latency"]["p99_ms"].as_f64().unwrap() > 0.0, "{w}: {v}");
        assert!(v["server_cpu_ticks"].is_u64(), "{w}: {v}");
        if w == "mixed" {
            assert_eq!(
                v["requests"].as_u64().unwrap(),
                4 * v["ops"].as_u64().unwrap(),
                "{v}"
            );
        }
    }

    // The no_store role issues too; an operation budget stops the run exactly.
    let v = run_json(
        &s,
        &["issue", "--role", "ec-nostore", "-n", "25", "-c", "3"],
    );
    assert_eq!(v["ops"], 25, "{v}");
    assert_eq!(v["error_count"], 0, "{v}");
    let v = run_json(&s, &["issue", "--role", "rsa", "-n", "3", "-c", "1"]);
    assert_eq!(v["error_count"], 0, "{v}");
    // A revoke pool of 10 with a longer time limit ends early and says so.
    let v = run_json(&s, &["revoke", "--pool", "10", "-d", "30s", "-c", "2"]);
    assert_eq!(v["ok"], 10, "{v}");
    assert!(v["ended_early"].as_str().unwrap().contains("pool"), "{v}");

    // Errors are counted by status, with an example, and --fail-on-errors exits 2.
    let (code, out, _) = bench(&[
        "run",
        "issue",
        "--role",
        "missing",
        "-n",
        "5",
        "-c",
        "1",
        "--addr",
        &s.addr,
        "--token",
        "root",
        "--json",
        "--quiet",
        "--fail-on-errors",
    ]);
    assert_eq!(code, 2, "{out}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["errors"]["400"], 5, "{v}");
    assert!(
        v["error_examples"]["400"]
            .as_str()
            .unwrap()
            .contains("HTTP 400"),
        "{v}"
    );

    // A workload whose endpoint the server does not have is unsupported, not an error.
    let v = run_json(&s, &["search", "--mount", "nothing-here", "-d", "1s"]);
    assert!(v["unsupported"].as_str().is_some(), "{v}");

    // The human table.
    let (code, out, err) = bench(&[
        "run", "kv-write", "-n", "20", "-c", "2", "--addr", &s.addr, "--token", "root",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("ops/s"), "{out}");
    assert!(out.contains("errors      none"), "{out}");
    assert!(err.contains("kv-write: prepared"), "{err}");
}

#[test]
fn unreachable_server_counts_connection_errors() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("http://127.0.0.1:{port}");
    let (code, out, err) = bench(&[
        "run", "kv-write", "-n", "3", "-c", "1", "--addr", &addr, "--token", "t", "--json",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["errors"]["connect"], 3, "{v}");

    // Preparation needs the server, and says which step failed.
    let (code, _, err) = bench(&[
        "run",
        "crl-fetch",
        "-d",
        "1s",
        "--addr",
        &addr,
        "--token",
        "t",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("preparing crl-fetch"), "{err}");

    let (code, _, err) = bench(&[
        "run",
        "issue",
        "--addr",
        "https://127.0.0.1:1",
        "--token",
        "t",
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("https"), "{err}");
    let (code, _, err) = bench(&["run", "issue", "--addr", &addr]);
    assert_eq!(code, 1);
    assert!(err.contains("no token"), "{err}");
}
