"""The signet agent against both servers: it speaks only the public API, so the same
configuration must work against OpenBao. AppRole auto-auth, a certificate block written with
`-once`, then a short-lived certificate kept current by the running agent."""
import json
import os
import subprocess
import tempfile
import time
import uuid

from conftest import SIGNET_BIN


def setup(target, d):
    pki = "agent-pki-" + uuid.uuid4().hex[:6]
    approle = "agent-approle-" + uuid.uuid4().hex[:6]
    assert target.cli("secrets", "enable", f"-path={pki}", "pki").returncode == 0
    assert target.req("POST", f"{pki}/root/generate/internal",
                      json_body={"common_name": "Agent Root", "key_type": "ec", "ttl": "1h"}).status_code == 200
    assert target.req("POST", f"{pki}/roles/web",
                      json_body={"allow_any_name": True, "key_type": "ec", "max_ttl": "1h"}).status_code == 200
    assert target.cli("auth", "enable", f"-path={approle}", "approle").returncode == 0
    assert target.cli("policy", "write", f"{pki}-agent", "-",
                      input=f'path "{pki}/issue/web" {{ capabilities = ["update"] }}\n'
                            f'path "{pki}/sign/web" {{ capabilities = ["update"] }}\n').returncode == 0
    assert target.req("POST", f"auth/{approle}/role/agent",
                      json_body={"token_policies": [f"{pki}-agent"], "token_ttl": "1h"}).status_code in (200, 204)
    role_id = target.req("GET", f"auth/{approle}/role/agent/role-id").json()["data"]["role_id"]
    with open(os.path.join(d, "role-id"), "w") as f:
        f.write(role_id)

    def new_secret():
        s = target.req("POST", f"auth/{approle}/role/agent/secret-id").json()["data"]["secret_id"]
        with open(os.path.join(d, "secret-id"), "w") as f:
            f.write(s)

    return pki, approle, new_secret


def config(target, d, pki, approle, ttl):
    conf = f'''vault {{ address = "{target.addr}" }}
auto_auth {{
  method "approle" {{
    mount_path = "auth/{approle}"
    config = {{
      role_id_file_path   = "{d}/role-id"
      secret_id_file_path = "{d}/secret-id"
    }}
  }}
  sink "file" {{ config {{ path = "{d}/token" }} }}
}}
certificate "web" {{
  path        = "{pki}/issue/web"
  common_name = "web.example.com"
  ttl         = "{ttl}"
  cert_file   = "{d}/tls/cert.pem"
  key_file    = "{d}/tls/key.pem"
  ca_file     = "{d}/tls/ca.pem"
  renew_at    = "50%"
}}
certificate "local-key" {{
  path        = "{pki}/sign/web"
  csr         = true
  key_type    = "ec"
  common_name = "local.example.com"
  ttl         = "{ttl}"
  bundle_file = "{d}/local/bundle.pem"
}}
trust "root" {{
  path        = "{pki}/ca_chain"
  destination = "{d}/trust/ca.pem"
}}
'''
    path = os.path.join(d, f"agent-{ttl}.hcl")
    with open(path, "w") as f:
        f.write(conf)
    return path


def openssl(*args):
    return subprocess.run(["openssl", *args], capture_output=True, text=True)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def run_agent(conf_path, *flags, timeout=60):
    """`signet agent [flags] -config=FILE`, finished."""
    return subprocess.run([SIGNET_BIN, "agent", *flags, f"-config={conf_path}"],
                          capture_output=True, text=True, timeout=timeout)


def cert_block(name, path, common_name, out):
    """A certificate block writing cert.pem, key.pem and ca.pem into `out`."""
    return f'''certificate "{name}" {{
  path        = "{path}"
  common_name = "{common_name}"
  ttl         = "10m"
  cert_file   = "{out}/cert.pem"
  key_file    = "{out}/key.pem"
  ca_file     = "{out}/ca.pem"
}}
'''


def assert_verifies(out):
    """The certificate in `out` chains to the CA file next to it (openssl)."""
    v = openssl("verify", "-CAfile", f"{out}/ca.pem", f"{out}/cert.pem")
    assert v.returncode == 0, v.stdout + v.stderr


def test_agent_once_and_renewal(target):
    d = tempfile.mkdtemp(prefix=f"agent-{target.kind}-")
    pki, approle, new_secret = setup(target, d)
    new_secret()
    r = subprocess.run([SIGNET_BIN, "agent", "-once", f"-config={config(target, d, pki, approle, '30m')}"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    cert, key, ca = (os.path.join(d, "tls", n) for n in ("cert.pem", "key.pem", "ca.pem"))
    v = openssl("verify", "-CAfile", ca, cert)
    assert v.returncode == 0, v.stdout + v.stderr
    assert openssl("x509", "-in", cert, "-noout", "-pubkey").stdout == openssl("pkey", "-in", key, "-pubout").stdout
    assert not os.path.exists(os.path.join(d, "secret-id"))
    # csr = true: the key was made here and only the CSR was sent; the bundle holds both.
    bundle = open(os.path.join(d, "local", "bundle.pem")).read()
    assert "PRIVATE KEY" in bundle and bundle.count("BEGIN CERTIFICATE") >= 2
    # The trust block wrote the CA chain.
    assert open(os.path.join(d, "trust", "ca.pem")).read() == open(ca).read()
    # The running agent keeps a 30-second certificate current (the 30-minute one on disk
    # would be kept: remove it first): renewed at least twice within 90 s, the key matching the
    # certificate at every read, on_change run once per write.
    for f in (cert, key):
        os.remove(f)
    new_secret()
    conf = open(config(target, d, pki, approle, "30s")).read().replace(
        '  renew_at    = "50%"\n',
        f'  renew_at    = "50%"\n  on_change   = ["sh", "-c", "echo changed >> {d}/changes"]\n', 1)
    with open(os.path.join(d, "agent-30s.hcl"), "w") as f:
        f.write(conf)
    agent = subprocess.Popen([SIGNET_BIN, "agent", f"-config={d}/agent-30s.hcl"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import serialization as ser
    spki = lambda k: k.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
    try:
        serials, reads = [], 0
        deadline = time.time() + 90
        while time.time() < deadline and len(serials) < 3:
            try:
                c = cx509.load_pem_x509_certificate(open(cert, "rb").read())
                k = ser.load_pem_private_key(open(key, "rb").read(), None)
            except FileNotFoundError:
                time.sleep(0.05)
                continue
            reads += 1
            assert spki(c.public_key()) == spki(k.public_key()), f"key and certificate differ at read {reads}"
            if not serials or serials[-1] != c.serial_number:
                serials.append(c.serial_number)
            time.sleep(0.02)
        time.sleep(1)
    finally:
        agent.terminate()
        agent.wait(10)
    # Issued, then renewed at least twice; each write ran on_change once.
    assert len(serials) >= 3, serials
    assert open(os.path.join(d, "changes")).read().count("changed") == len(serials)


def test_agent_refusals_stop_it_at_start(target):
    """A role the CA refuses and a destination that cannot be written stop the running agent
    at start with exit code 1, naming the block."""
    d = tempfile.mkdtemp(prefix=f"agent-bad-{target.kind}-")
    pki, approle, new_secret = setup(target, d)
    base = open(config(target, d, pki, approle, "10m")).read()
    cases = {
        "refused": base.replace(f'"{pki}/issue/web"', f'"{pki}/issue/no-such-role"', 1),
        "unwritable": base.replace(f'"{d}/tls/cert.pem"', '"/proc/signet-agent-test/cert.pem"', 1),
    }
    for name, conf in cases.items():
        new_secret()
        path = os.path.join(d, f"{name}.hcl")
        with open(path, "w") as f:
            f.write(conf)
        r = run_agent(path)
        assert r.returncode == 1, (name, r.stderr)
        assert 'certificate "web"' in r.stderr, (name, r.stderr)


from test_auth_methods import kube  # noqa: E402,F401  (the TokenReview fake)


def test_agent_kubernetes_auto_auth(target, kube):
    fake, good, _other, _forged = kube
    d = tempfile.mkdtemp(prefix=f"agent-k8s-{target.kind}-")
    pki, _approle, _ = setup(target, d)
    k8s = "agent-k8s-" + uuid.uuid4().hex[:6]
    assert target.cli("auth", "enable", f"-path={k8s}", "kubernetes").returncode == 0
    assert target.req("POST", f"auth/{k8s}/config", json_body={
        "kubernetes_host": fake.url, "kubernetes_ca_cert": fake.ca_pem, "token_reviewer_jwt": "reviewer-jwt"}).status_code == 204
    assert target.req("POST", f"auth/{k8s}/role/web", json_body={
        "bound_service_account_names": "cert-manager-sa", "bound_service_account_namespaces": "fruits-catalog",
        "token_policies": f"{pki}-agent", "token_ttl": "20m"}).status_code in (200, 204)
    with open(os.path.join(d, "sa-token"), "w") as f:
        f.write(good)
    conf = f'''vault {{ address = "{target.addr}" }}
auto_auth {{
  method "kubernetes" {{
    mount_path = "auth/{k8s}"
    config = {{
      role       = "web"
      token_path = "{d}/sa-token"
    }}
  }}
}}
''' + cert_block("web", f"{pki}/issue/web", "pod.example.com", d)
    r = run_agent(write(os.path.join(d, "agent.hcl"), conf), "-once")
    assert r.returncode == 0, r.stderr
    assert_verifies(d)


def test_agent_templates_seed_002_and_pki_cert(target):
    """Seed 002's consul-template template (with its certdump plugin) and a pkiCert template,
    rendered by `signet agent -once` against both servers."""
    d = tempfile.mkdtemp(prefix=f"agent-tpl-{target.kind}-")
    pki, approle, new_secret = setup(target, d)
    new_secret()
    certdump = os.path.join(d, "certdump")
    with open(certdump, "w") as f:
        f.write('#!/bin/sh\nprintf "%s\\n" "$3" > "$1"\n')
    os.chmod(certdump, 0o755)
    with open(os.path.join(d, "cert.template"), "w") as f:
        f.write('{{ with secret "' + pki + '/issue/web" "common_name=etcd-1.example.com" "ttl=10m"}}'
                '     {{ .Data.serial_number }}'
                '     {{ .Data.certificate | plugin "' + certdump + '" "' + d + '/etcd-cert.pem" "etcd"}}'
                '     {{ .Data.private_key | plugin "' + certdump + '" "' + d + '/etcd-key.pem" "etcd"}}'
                '     {{ .Data.issuing_ca | plugin "' + certdump + '" "' + d + '/etcd-ca.pem" "etcd"}}'
                '     {{ end }}')
    conf = f'''vault {{ address = "{target.addr}" }}
auto_auth {{
  method "approle" {{
    mount_path = "auth/{approle}"
    config = {{
      role_id_file_path   = "{d}/role-id"
      secret_id_file_path = "{d}/secret-id"
    }}
  }}
}}
template {{
  source      = "{d}/cert.template"
  destination = "{d}/etcd.serial"
  command     = "echo rendered >> {d}/commands"
}}
template {{
  contents    = "{{{{ with pkiCert \\"{pki}/issue/web\\" \\"common_name=web.example.com\\" \\"ttl=10m\\" }}}}{{{{ .Data.Cert }}}}{{{{ .Data.Key }}}}{{{{ end }}}}"
  destination = "{d}/web.pem"
  perms       = "0600"
}}
'''
    with open(os.path.join(d, "agent.hcl"), "w") as f:
        f.write(conf)
    r = run_agent(f"{d}/agent.hcl", "-once")
    assert r.returncode == 0, r.stderr
    serial = open(os.path.join(d, "etcd.serial")).read().split()[0]
    cert = os.path.join(d, "etcd-cert.pem")
    assert openssl("x509", "-in", cert, "-noout", "-serial").stdout.strip().lower() == "serial=" + serial.replace(":", "").lower()
    assert openssl("verify", "-CAfile", os.path.join(d, "etcd-ca.pem"), cert).returncode == 0
    assert openssl("x509", "-in", cert, "-noout", "-pubkey").stdout == openssl("pkey", "-in", os.path.join(d, "etcd-key.pem"), "-pubout").stdout
    assert open(os.path.join(d, "commands")).read() == "rendered\n"
    web = open(os.path.join(d, "web.pem")).read()
    assert "BEGIN CERTIFICATE" in web and "PRIVATE KEY" in web
    assert oct(os.stat(os.path.join(d, "web.pem")).st_mode & 0o777) == "0o600"
    # pkiCert keeps the valid certificate in its destination: a second run does not re-issue.
    first = openssl("x509", "-in", os.path.join(d, "web.pem"), "-noout", "-serial").stdout
    new_secret()
    r = run_agent(f"{d}/agent.hcl", "-once")
    assert r.returncode == 0, r.stderr
    assert openssl("x509", "-in", os.path.join(d, "web.pem"), "-noout", "-serial").stdout == first
    # error_on_missing_key: a key the data lacks fails the render instead of "<no value>".
    kv = target.mount_kv()
    assert target.req("POST", f"{kv}/app", json_body={"user": "web"}).status_code == 204
    assert target.req("PUT", f"sys/policies/acl/{pki}-agent", json_body={"policy": f'path "{kv}/*" {{ capabilities = ["read"] }}'}).status_code == 204
    for strict, want in ((False, 0), (True, 1)):
        new_secret()
        with open(os.path.join(d, "kv.hcl"), "w") as f:
            f.write(conf.split("template {")[0] + f"""template {{
  contents    = "{{{{ with secret \\"{kv}/app\\" }}}}{{{{ .Data.user }}}}/{{{{ .Data.password }}}}{{{{ end }}}}"
  destination = "{d}/kv.out"
  error_on_missing_key = {str(strict).lower()}
}}
""")
        r = run_agent(f"{d}/kv.hcl", "-once")
        assert r.returncode == want, r.stderr
        if not strict:
            assert open(os.path.join(d, "kv.out")).read() == "web/<no value>"
        else:
            assert "error_on_missing_key" in r.stderr, r.stderr
    # A template that does not parse stops the agent at start with the block named.
    with open(os.path.join(d, "bad.hcl"), "w") as f:
        f.write(conf.replace("{{ .Data.serial_number }}", "{{ .Data.serial_number").replace(
            f'source      = "{d}/cert.template"', 'contents = "{{ with }}"'))
    r = run_agent(f"{d}/bad.hcl", "-once")
    assert r.returncode == 1 and "template" in r.stderr, r.stderr


def test_bao_agent_pki_cert_template(target):
    """The other way round: OpenBao's own agent, with AppRole auto-auth and a pkiCert
    template, against both servers."""
    from conftest import BAO_BIN
    d = tempfile.mkdtemp(prefix=f"bao-agent-{target.kind}-")
    pki, approle, new_secret = setup(target, d)
    new_secret()
    conf = f'''pid_file = "{d}/pid"
exit_after_auth = true
vault {{ address = "{target.addr}" }}
auto_auth {{
  method "approle" {{
    mount_path = "auth/{approle}"
    config = {{
      role_id_file_path = "{d}/role-id"
      secret_id_file_path = "{d}/secret-id"
      remove_secret_id_file_after_reading = false
    }}
  }}
  sink "file" {{ config = {{ path = "{d}/token" }} }}
}}
template {{
  contents    = "{{{{ with pkiCert \\"{pki}/issue/web\\" \\"common_name=bao-agent.example.com\\" \\"ttl=10m\\" }}}}{{{{ .Data.Cert }}}}{{{{ .Data.Key }}}}{{{{ end }}}}"
  destination = "{d}/out.pem"
}}
'''
    with open(os.path.join(d, "agent.hcl"), "w") as f:
        f.write(conf)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = d
    r = subprocess.run([BAO_BIN, "agent", f"-config={d}/agent.hcl"], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    out = open(os.path.join(d, "out.pem")).read()
    assert "BEGIN CERTIFICATE" in out and "PRIVATE KEY" in out, out[:200]
    cert = os.path.join(d, "cert-only.pem")
    with open(cert, "w") as f:
        f.write(out[: out.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")] + "\n")
    assert "bao-agent.example.com" in openssl("x509", "-in", cert, "-noout", "-subject").stdout


def start_dev_tls(kind):
    """A dev server on TLS (`-dev-tls`, OpenBao's flag, which signet also has): its throw-away
    CA is written to <workdir>/tls/vault-ca.pem. Its listener asks for client certificates."""
    import requests
    from conftest import Target, binary_for, free_port
    binary_for(kind)
    workdir = tempfile.mkdtemp(prefix=f"conf-tls-{kind}-")
    certs = os.path.join(workdir, "tls")
    os.makedirs(certs)
    port = free_port()
    log = os.path.join(workdir, "server.log")
    with open(log, "a") as out:
        proc = subprocess.Popen([binary_for(kind), "server", "-dev", "-dev-tls", f"-dev-tls-cert-dir={certs}",
                                 "-dev-root-token-id=root", f"-dev-listen-address=127.0.0.1:{port}"],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=dict(os.environ, HOME=workdir))
    ca = os.path.join(certs, "vault-ca.pem")
    addr = f"https://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        assert proc.poll() is None, open(log).read()[-2000:]
        try:
            if os.path.exists(ca) and requests.get(f"{addr}/v1/sys/health", verify=ca, timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError(open(log).read()[-2000:])
    return Target(kind, addr, "root", proc, workdir, log), ca


def test_agent_cert_auto_auth_over_tls(target, monkeypatch):
    """`method "cert"`: the agent presents a TLS client certificate (from the method's config,
    or from the vault block's client_cert/client_key) and logs in with it, against a TLS dev
    server of each kind."""
    tls, ca = start_dev_tls(target.kind)
    try:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", ca)
        d = tempfile.mkdtemp(prefix=f"agent-cert-{target.kind}-")
        sh = lambda cmd: subprocess.run(cmd, shell=True, cwd=d, check=True, capture_output=True)
        sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=Agents -keyout cca.key -out cca.crt -days 1")
        sh("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=agent.svc -keyout c.key -out c.csr")
        with open(os.path.join(d, "ext"), "w") as f:
            f.write("extendedKeyUsage=clientAuth\n")
        sh("openssl x509 -req -in c.csr -CA cca.crt -CAkey cca.key -CAcreateserial -days 1 -extfile ext -out c.crt")
        assert tls.req("POST", "sys/mounts/pki", json_body={"type": "pki"}).status_code == 204
        assert tls.req("POST", "pki/root/generate/internal",
                       json_body={"common_name": "TLS Root", "key_type": "ec", "ttl": "1h"}).status_code == 200
        assert tls.req("POST", "pki/roles/web",
                       json_body={"allow_any_name": True, "key_type": "ec", "max_ttl": "1h"}).status_code == 200
        assert tls.req("PUT", "sys/policies/acl/agent",
                       json_body={"policy": 'path "pki/issue/web" { capabilities = ["update"] }'}).status_code == 204
        assert tls.req("POST", "sys/auth/cert", json_body={"type": "cert"}).status_code == 204
        assert tls.req("POST", "auth/cert/certs/agent", json_body={
            "certificate": open(os.path.join(d, "cca.crt")).read(), "token_policies": "agent",
            "token_ttl": "10m"}).status_code in (200, 204)
        for where, method_conf, vault_extra in (
            ("method", f'name = "agent"\n      client_cert = "{d}/c.crt"\n      client_key = "{d}/c.key"', ""),
            ("vault", 'name = "agent"', f'\n  client_cert = "{d}/c.crt"\n  client_key = "{d}/c.key"'),
        ):
            out = os.path.join(d, where)
            conf = f'''vault {{
  address = "{tls.addr}"
  ca_cert = "{ca}"{vault_extra}
}}
auto_auth {{
  method "cert" {{
    config = {{
      {method_conf}
    }}
  }}
  sink "file" {{ config = {{ path = "{out}/token" }} }}
}}
''' + cert_block("web", "pki/issue/web", "cert-auth.example.com", out)
            r = run_agent(write(os.path.join(d, f"{where}.hcl"), conf), "-once")
            assert r.returncode == 0, (where, r.stderr)
            assert_verifies(out)
            token = open(f"{out}/token").read().strip()
            me = tls.req("GET", "auth/token/lookup-self", token=token).json()["data"]
            assert me["path"] == "auth/cert/login" and "agent" in me["policies"], me
        # A certificate the method does not trust is refused, and -once says so with exit 1.
        sh("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=stranger -keyout cca.key -out cca.crt -days 1")
        bad = os.path.join(d, "bad.hcl")
        with open(bad, "w") as f:
            f.write(f'vault {{\n  address = "{tls.addr}"\n  ca_cert = "{ca}"\n}}\n'
                    f'auto_auth {{\n  method "cert" {{\n    config = {{\n      name = "agent"\n      client_cert = "{d}/cca.crt"\n      client_key = "{d}/cca.key"\n    }}\n  }}\n}}\n')
        r = run_agent(bad, "-once", timeout=120)
        assert r.returncode == 1 and "cert login failed" in r.stderr, r.stderr
    finally:
        tls.discard()


def test_agent_azure_auto_auth(target):
    """`method "azure"`: the agent fetches a managed-identity token and the VM's identity from
    the instance metadata service (served here on loopback, plain HTTP as on a VM), and logs in;
    the server checks the token against Azure AD's keys (served here over HTTPS)."""
    import pytest
    from fakes import HttpsFake, RsaSigner
    if not target.kind.startswith("signet"):
        pytest.skip("OpenBao's azure method is an external plugin that verifies tokens against "
                    "login.microsoftonline.com; only signet's can be pointed at a local Azure AD")
    tenant = "7f1a2b3c-0000-4000-8000-00000000aaaa"
    sub = "11111111-2222-3333-4444-555555555555"
    signer = RsaSigner(kid="aad-key-1")
    d = tempfile.mkdtemp(prefix="agent-azure-")
    aad = {}
    os.makedirs(os.path.join(d, "aad"))
    aad_fake = HttpsFake(os.path.join(d, "aad"), aad)
    aad[("GET", "/.well-known/openid-configuration")] = lambda b, h: (200, {
        "issuer": f"https://sts.windows.net/{tenant}/", "jwks_uri": f"{aad_fake.url}/common/discovery/keys"})
    aad[("GET", "/common/discovery/keys")] = lambda b, h: (200, {"keys": [signer.jwk()]})

    def token(body, headers):
        if headers.get("Metadata") != "true":
            return 400, {"error": "invalid_request", "error_description": "Required metadata header not specified"}
        now = int(time.time())
        jwt = signer.sign({
            "aud": "https://management.azure.com/", "iss": f"https://sts.windows.net/{tenant}/",
            "iat": now - 5, "nbf": now - 5, "exp": now + 3600, "tid": tenant, "ver": "1.0",
            "oid": "9e8d7c6b-0000-4000-8000-0000000000bb", "sub": "9e8d7c6b-0000-4000-8000-0000000000bb",
            "xms_mirid": f"/subscriptions/{sub}/resourcegroups/rg-p12345/providers/Microsoft.Compute/virtualMachines/envoy-vm-1"})
        return 200, {"access_token": jwt, "expires_in": "3599", "expires_on": str(now + 3599),
                     "resource": "https://management.azure.com/", "token_type": "Bearer"}

    def instance(body, headers):
        return 200, {"compute": {"subscriptionId": sub, "resourceGroupName": "rg-p12345", "name": "envoy-vm-1",
                                 "vmScaleSetName": "", "location": "westeurope"}}

    imds = HttpsFake(d, {("GET", "/metadata/identity/oauth2/token"): token, ("GET", "/metadata/instance"): instance}, tls=False)
    try:
        pki, _approle, _ = setup(target, d)
        assert target.req("POST", "sys/auth/azure", json_body={"type": "azure"}).status_code == 204
        r = target.req("POST", "auth/azure/config", json_body={
            "tenant_id": tenant, "resource": "https://management.azure.com/",
            "oidc_discovery_url": aad_fake.url, "oidc_discovery_ca_pem": aad_fake.ca_pem})
        assert r.status_code == 204, r.text
        r = target.req("POST", "auth/azure/role/p12345", json_body={
            "bound_subscription_ids": sub, "bound_resource_groups": "rg-p12345", "token_policies": f"{pki}-agent"})
        assert r.status_code == 204, r.text
        conf = f'''vault {{ address = "{target.addr}" }}
auto_auth {{
  method "azure" {{
    mount_path = "auth/azure"
    config = {{
      role             = "p12345"
      resource         = "https://management.azure.com/"
      metadata_address = "{imds.url}"
    }}
  }}
  sink "file" {{ config = {{ path = "{d}/token" }} }}
}}
''' + cert_block("envoy", f"{pki}/issue/web", "p12345.customers.example", d)
        r = run_agent(write(os.path.join(d, "agent.hcl"), conf), "-once")
        assert r.returncode == 0, r.stderr
        assert_verifies(d)
        me = target.req("GET", "auth/token/lookup-self", token=open(f"{d}/token").read().strip()).json()["data"]
        assert me["path"] == "auth/azure/login" and f"{pki}-agent" in me["policies"], me
        asked = [p for m, p, h in imds.requests if p.startswith("/metadata/identity/oauth2/token")]
        assert asked and "resource=https%3A%2F%2Fmanagement.azure.com%2F" in asked[0], asked
    finally:
        imds.close()
        aad_fake.close()


def test_seed_002_template_renders_as_bao_agent_does(target):
    """Seed 002's template, with its certdump plugin, rendered by OpenBao's own agent (the
    reference) and by signet's: the same bytes, the serial numbers aside (each render issues
    its own certificate)."""
    from conftest import BAO_BIN
    import re
    d = tempfile.mkdtemp(prefix=f"agent-ref-{target.kind}-")
    pki = "ref-pki-" + uuid.uuid4().hex[:6]
    assert target.req("POST", f"sys/mounts/{pki}", json_body={"type": "pki"}).status_code == 204
    assert target.req("POST", f"{pki}/root/generate/internal",
                      json_body={"common_name": "Cluster CA", "key_type": "ec", "ttl": "24h"}).status_code == 200
    assert target.req("POST", f"{pki}/roles/member",
                      json_body={"allow_any_name": True, "key_type": "ec", "max_ttl": "1h"}).status_code == 200
    with open(os.path.join(d, "token"), "w") as f:
        f.write(target.token)
    certdump = os.path.join(d, "certdump")
    with open(certdump, "w") as f:
        f.write('#!/bin/sh\nprintf "%s\\n" "$3" > "$1"\n')
    os.chmod(certdump, 0o755)
    serials = {}
    for who in ("bao", "signet"):
        out = os.path.join(d, who)
        os.makedirs(out)
        with open(os.path.join(out, "cert.template"), "w") as f:
            f.write('{{ with secret "' + pki + '/issue/member" "common_name=etcd-1.example.com"}}'
                    '     {{ .Data.serial_number }}'
                    f'     {{{{ .Data.certificate | plugin "{certdump}" "{out}/etcd-cert.pem" "etcd"}}}}'
                    f'     {{{{ .Data.private_key | plugin "{certdump}" "{out}/etcd-key.pem" "etcd"}}}}'
                    f'     {{{{ .Data.issuing_ca | plugin "{certdump}" "{out}/etcd-ca.pem" "etcd"}}}}'
                    '     {{ end }}')
        conf = f'''exit_after_auth = true
vault {{ address = "{target.addr}" }}
auto_auth {{
  method "token_file" {{ config = {{ token_file_path = "{d}/token" }} }}
}}
template {{
  source      = "{out}/cert.template"
  destination = "{out}/etcd.serial"
}}
'''
        with open(os.path.join(out, "agent.hcl"), "w") as f:
            f.write(conf)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
        env["HOME"] = out
        cmd = [BAO_BIN, "agent", f"-config={out}/agent.hcl"] if who == "bao" else [SIGNET_BIN, "agent", "-once", f"-config={out}/agent.hcl"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
        assert r.returncode == 0, (who, r.stdout[-2000:], r.stderr[-2000:])
        rendered = open(os.path.join(out, "etcd.serial")).read()
        serials[who] = re.search(r"[0-9a-f]{2}(:[0-9a-f]{2})+", rendered).group(0)
        assert openssl("verify", "-CAfile", f"{out}/etcd-ca.pem", f"{out}/etcd-cert.pem").returncode == 0
    ref = open(os.path.join(d, "bao", "etcd.serial")).read().replace(serials["bao"], "SERIAL")
    ours = open(os.path.join(d, "signet", "etcd.serial")).read().replace(serials["signet"], "SERIAL")
    assert ours == ref, (ours, ref)
    for name in ("etcd-cert.pem", "etcd-key.pem", "etcd-ca.pem"):
        shape = lambda who: re.sub(r"-----\n[A-Za-z0-9+/=\n]+\n-----", "-----\nB64\n-----", open(os.path.join(d, who, name)).read())
        assert shape("signet") == shape("bao"), name
    # The same CA issued both, so the CA files are identical.
    assert open(os.path.join(d, "bao", "etcd-ca.pem")).read() == open(os.path.join(d, "signet", "etcd-ca.pem")).read()
