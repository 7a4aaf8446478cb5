"""Declarative audit devices on both servers (`server -dev -config=FILE`), listed by the bao
CLI, hashing with sys/audit-hash, and refusing API-created devices."""
import json
import os
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import BAO_BIN, SIGNET_BIN, free_port, wait_ready


@pytest.fixture(params=["openbao", "signet"])
def audited(request):
    kind = request.param
    if kind not in os.environ.get("CONFORMANCE_TARGETS", "openbao,signet").split(","):
        pytest.skip(f"{kind} not selected by CONFORMANCE_TARGETS")
    d = tempfile.mkdtemp(prefix=f"audit-{kind}-")
    log = os.path.join(d, "audit.log")
    conf = os.path.join(d, "audit.hcl")
    with open(conf, "w") as f:
        f.write(f'audit "file" "main" {{\n  description = "all requests"\n  options {{\n    file_path = "{log}"\n  }}\n}}\n')
    port = free_port()
    addr = f"http://127.0.0.1:{port}"
    binary = SIGNET_BIN if kind == "signet" else BAO_BIN
    cmd = [binary, "server", "-dev", "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}", f"-config={conf}"]
    out = os.path.join(d, "server.log")
    proc = subprocess.Popen(cmd, stdout=open(out, "w"), stderr=subprocess.STDOUT, env=dict(os.environ, HOME=d))
    try:
        wait_ready(addr, proc, out)
        yield kind, addr, log, d
    finally:
        proc.terminate()
        proc.wait(10)


def test_audit_list_hash_and_entries(audited):
    kind, addr, log, home = audited
    h = {"X-Vault-Token": "root"}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env.update(BAO_ADDR=addr, BAO_TOKEN="root", HOME=home)
    r = subprocess.run([BAO_BIN, "audit", "list", "-format=json"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["main/"]["type"] == "file"
    requests.post(f"{addr}/v1/sys/mounts/akv", json={"type": "kv", "options": {"version": "1"}}, headers=h, timeout=10)
    requests.post(f"{addr}/v1/akv/app", json={"password": "hunter2-audit"}, headers=h, timeout=10)
    r = requests.post(f"{addr}/v1/sys/audit-hash/main", json={"input": "hunter2-audit"}, headers=h, timeout=10)
    digest = r.json()["data"]["hash"]
    assert digest.startswith("hmac-sha256:")
    time.sleep(0.2)
    text = open(log).read()
    assert "hunter2-audit" not in text
    assert digest in text
    entries = [json.loads(l) for l in text.splitlines() if l.strip()]
    writes = [e for e in entries if e.get("request", {}).get("path") == "akv/app"]
    assert {e["type"] for e in writes} == {"request", "response"}
    # Devices are not created through the API by default.
    r = requests.put(f"{addr}/v1/sys/audit/other", json={"type": "file", "options": {"file_path": os.path.join(home, "x.log")}}, headers=h, timeout=10)
    assert r.status_code == 400, r.text
    assert r.json()["errors"] == ["cannot enable audit device via API; use declarative, config-based audit device management instead"]
    assert not os.path.exists(os.path.join(home, "x.log"))
    # The bao CLI's table and its answers for enable and disable.
    r = subprocess.run([BAO_BIN, "audit", "list", "-detailed"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and "main/" in r.stdout and "file" in r.stdout, r.stdout + r.stderr
    r = subprocess.run([BAO_BIN, "audit", "enable", "file", "file_path=" + os.path.join(home, "y.log")],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2 and "cannot enable audit device via API" in r.stderr
    r = subprocess.run([BAO_BIN, "audit", "disable", "never-enabled"], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
