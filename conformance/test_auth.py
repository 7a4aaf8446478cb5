"""Identity and access: policies, the token store and AppRole, with the bao CLI and hvac."""
import json
import time
import uuid

import hvac


def test_policy_grants_read_only_where_it_says(target):
    kv = target.mount_kv()
    pol = f'path "{kv}/etcd/*" {{\n  capabilities = ["read"]\n}}\n'
    name = "etcd-" + uuid.uuid4().hex[:6]
    r = target.cli("policy", "write", name, "-", input=pol)
    assert r.returncode == 0, r.stderr
    assert name in target.cli("policy", "list").stdout
    assert target.req("GET", f"sys/policies/acl/{name}").json()["data"]["policy"] == pol
    target.req("POST", f"{kv}/etcd/member", json_body={"k": "v"})
    target.req("POST", f"{kv}/other", json_body={"k": "v"})
    r = target.cli("token", "create", f"-policy={name}", "-format=json")
    assert r.returncode == 0, r.stderr
    tok = json.loads(r.stdout)["auth"]["client_token"]
    assert target.req("GET", f"{kv}/etcd/member", token=tok).status_code == 200
    r = target.req("GET", f"{kv}/other", token=tok)
    assert r.status_code == 403
    assert target.req("POST", f"{kv}/etcd/member", token=tok, json_body={"k": "w"}).status_code == 403
    caps = target.req("POST", "sys/capabilities-self", token=tok, json_body={"paths": [f"{kv}/etcd/x"]}).json()
    assert caps["data"][f"{kv}/etcd/x"] == ["read"]
    # A policy that does not parse is refused.
    r = target.req("PUT", "sys/policies/acl/broken", json_body={"policy": 'path "a" { capabilities = ["reed"] }'})
    assert r.status_code == 400


def test_periodic_orphan_token_role(target):
    role = "k8s-" + uuid.uuid4().hex[:6]
    r = target.req("POST", f"auth/token/roles/{role}", json_body={"period": "720h", "orphan": True, "allowed_policies": "member"})
    assert r.status_code == 204
    r = target.cli("token", "create", "-policy=member", f"-role={role}", "-format=json")
    assert r.returncode == 0, r.stderr
    auth = json.loads(r.stdout)["auth"]
    assert auth["orphan"] is True and auth["renewable"] is True and auth["lease_duration"] == 720 * 3600
    r = target.req("POST", "auth/token/renew-self", token=auth["client_token"])
    assert r.status_code == 200 and r.json()["auth"]["lease_duration"] == 720 * 3600
    look = target.req("GET", "auth/token/lookup-self", token=auth["client_token"]).json()["data"]
    assert look["role"] == role and look["orphan"] is True and look["renewable"] is True
    r = target.req("POST", "auth/token/create/" + role, json_body={"policies": ["admin"]})
    assert r.status_code == 400


def test_token_lifecycle_via_cli_and_hvac(target):
    r = target.cli("token", "create", "-ttl=1h", "-policy=default", "-format=json")
    tok = json.loads(r.stdout)["auth"]["client_token"]
    client = hvac.Client(url=target.addr, token=tok)
    assert client.is_authenticated()
    me = client.auth.token.lookup_self()["data"]
    assert me["policies"] == ["default"] and 3500 < me["ttl"] <= 3600
    assert target.cli("token", "revoke", tok).returncode == 0
    assert not hvac.Client(url=target.addr, token=tok).is_authenticated()


def test_approle_login_cli_and_hvac(target):
    mount = "approle-" + uuid.uuid4().hex[:6]
    assert target.cli("auth", "enable", f"-path={mount}", "approle").returncode == 0
    r = target.cli("write", f"auth/{mount}/role/cert-manager", "token_policies=cert-manager", "token_ttl=1h", "token_max_ttl=4h")
    assert r.returncode == 0, r.stderr
    role_id = json.loads(target.cli("read", "-format=json", f"auth/{mount}/role/cert-manager/role-id").stdout)["data"]["role_id"]
    r = target.cli("write", "-f", "-format=json", f"auth/{mount}/role/cert-manager/secret-id")
    assert r.returncode == 0, r.stderr
    secret_id = json.loads(r.stdout)["data"]["secret_id"]
    r = target.cli("write", "-format=json", f"auth/{mount}/login", f"role_id={role_id}", f"secret_id={secret_id}", token=None)
    assert r.returncode == 0, r.stderr
    auth = json.loads(r.stdout)["auth"]
    assert auth["policies"] == ["cert-manager", "default"] and auth["lease_duration"] == 3600
    assert auth["metadata"] == {"role_name": "cert-manager"}
    client = hvac.Client(url=target.addr)
    resp = client.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point=mount)
    assert resp["auth"]["token_policies"] == ["cert-manager", "default"]
    r = target.req("POST", f"auth/{mount}/login", token=None, json_body={"role_id": role_id, "secret_id": "wrong"})
    assert r.status_code == 400 and r.json() == {"errors": ["invalid role or secret ID"]}
    assert f"{mount}/" in target.cli("auth", "list").stdout
    assert target.cli("auth", "disable", mount).returncode == 0
