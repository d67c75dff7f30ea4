"""The vault step through the CLI, against the Vault stand-in in tests/vaultserver.py (no Vault binary here)."""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import clean_env, run_cli
from tests.vaultserver import FakeVault, KV2Version, VaultState, vault_server

ROOT_TOKEN = "hvs.root-token-canary-0001"
JWT = "eyJ.jwt-canary-0002.sig"
SECRET_ID = "secret-id-canary-0003"
API_KEY = "api-key-canary-0004"
DB_PASSWORD = "db-pass-canary-'$`\\\"0005\nsecond line"
CANARIES = [ROOT_TOKEN, JWT, SECRET_ID, API_KEY, "db-pass-canary", "redis-canary-0006"]


@pytest.fixture()
def vault() -> Iterator[FakeVault]:
    state = VaultState()
    state.tokens[ROOT_TOKEN] = ["secret/", "kv/", "database/"]
    state.kubernetes_roles[("kubernetes", "myapp")] = (JWT, ["secret/data/myapp"])
    state.approles[("approle", "role-id-1")] = (SECRET_ID, ["secret/data/myapp"])
    state.put_kv2("secret/myapp", {"api_key": "old-value-v1", "db_password": "old"})
    state.put_kv2("secret/myapp", {"api_key": API_KEY, "db_password": DB_PASSWORD,
                                   "redis_password": "redis-canary-0006"})
    state.kv1["kv/legacy"] = {"legacy_key": "legacy-canary-0007"}
    state.db_roles.add("myapp")
    with vault_server(state) as server:
        yield server


def _spec(tmp_path: Path, vault: dict[str, Any], retries: int = 2, timeout: str = "20s") -> Path:
    path = tmp_path / "init.yaml"
    path.write_text(json.dumps({"version": 1, "name": "secrets", "status_file": "status.json", "steps": [
        {"name": "secrets", "retries": retries, "retry_delay": "50ms", "timeout": timeout, "vault": vault}]}))
    return path


def _run(tmp_path: Path, vault: dict[str, Any], env: dict[str, str] | None = None, **kw: Any) -> tuple[int, str, str]:
    result = run_cli("run", str(_spec(tmp_path, vault, **kw)), env=clean_env(**(env or {})))
    status = (tmp_path / "status.json").read_text()
    step = json.loads(status)["steps"][0]
    for canary in CANARIES:
        assert canary not in result.output + status, canary
    return result.code, step.get("error", ""), result.stderr


def _jwt(tmp_path: Path) -> str:
    (tmp_path / "sa-token").write_text(JWT)
    return str(tmp_path / "sa-token")


def test_kubernetes_auth_kv2_json_mode_and_revoke(tmp_path: Path, vault: FakeVault) -> None:
    code, error, stderr = _run(tmp_path, {
        "address": vault.address, "auth": {"kubernetes": {"role": "myapp", "jwt_file": _jwt(tmp_path)}},
        "secrets": [{"path": "secret/data/myapp", "dest": "out/app.json", "required": ["api_key"]}]})
    assert code == 0, error + stderr
    dest = tmp_path / "out/app.json"
    assert json.loads(dest.read_text())["api_key"] == API_KEY
    assert stat.S_IMODE(dest.stat().st_mode) == 0o400
    assert len(vault.state.revoked) == 1  # the step logged in, so it revoked its token
    assert vault.state.count("auth/kubernetes/login", "POST") == 1
    assert "vault login (kubernetes role myapp at auth/kubernetes): logged in" in stderr


def test_approle_with_secret_id_file(tmp_path: Path, vault: FakeVault) -> None:
    (tmp_path / "sid").write_text(SECRET_ID + "\n")
    approle = {"role_id": "role-id-1", "secret_id_file": str(tmp_path / "sid")}
    code, error, _ = _run(tmp_path, {
        "address": vault.address, "auth": {"approle": approle},
        "secrets": [{"path": "secret/data/myapp", "dest": "app.yaml", "format": "yaml", "mode": "0440",
                     "keys": ["api_key", {"db_password": "DB_PASSWORD"}]}]})
    assert code == 0, error
    data = yaml.safe_load((tmp_path / "app.yaml").read_text())
    assert data == {"api_key": API_KEY, "DB_PASSWORD": DB_PASSWORD}
    assert stat.S_IMODE((tmp_path / "app.yaml").stat().st_mode) == 0o440


def test_token_file_and_vault_token_are_not_revoked(tmp_path: Path, vault: FakeVault) -> None:
    (tmp_path / "token").write_text(ROOT_TOKEN)
    secrets = [{"path": "kv/legacy", "dest": "legacy.json"}]
    code, error, _ = _run(tmp_path, {"address": vault.address, "auth": {"token_file": str(tmp_path / "token")},
                                     "secrets": secrets})
    assert code == 0, error
    code, error, _ = _run(tmp_path, {"secrets": secrets}, env={"VAULT_ADDR": vault.address, "VAULT_TOKEN": ROOT_TOKEN})
    assert code == 0, error
    assert json.loads((tmp_path / "legacy.json").read_text()) == {"legacy_key": "legacy-canary-0007"}
    assert vault.state.revoked == []


def test_pinned_deleted_and_destroyed_versions(tmp_path: Path, vault: FakeVault) -> None:
    base = {"address": vault.address, "auth": {"token_file": str(tmp_path / "token")}}
    (tmp_path / "token").write_text(ROOT_TOKEN)
    code, error, _ = _run(tmp_path, {**base, "secrets": [{"path": "secret/data/myapp", "version": 1,
                                                          "dest": "v1.json"}]})
    assert code == 0, error
    assert json.loads((tmp_path / "v1.json").read_text())["api_key"] == "old-value-v1"
    vault.state.kv2["secret/myapp"].append(KV2Version({"api_key": "x"}, "2026-01-01T00:00:00Z",
                                                      deleted="2026-02-01T00:00:00Z"))
    vault.state.kv2["secret/myapp"].append(KV2Version({"api_key": "y"}, "2026-01-01T00:00:00Z", destroyed=True))
    code, error, _ = _run(tmp_path, {**base, "secrets": [{"path": "secret/data/myapp", "version": 3,
                                                          "dest": "v3.json"}]})
    assert code == 1 and error == "vault read secret/data/myapp: version 3 was deleted at 2026-02-01T00:00:00Z"
    code, error, _ = _run(tmp_path, {**base, "secrets": [{"path": "secret/data/myapp", "dest": "v4.json"}]})
    assert code == 1 and error == "vault read secret/data/myapp: version 4 was destroyed"
    assert not (tmp_path / "v3.json").exists() and not (tmp_path / "v4.json").exists()


def test_dynamic_creds_as_env_read_back_by_a_shell(tmp_path: Path, vault: FakeVault) -> None:
    (tmp_path / "token").write_text(ROOT_TOKEN)
    code, error, _ = _run(tmp_path, {"address": vault.address, "auth": {"token_file": str(tmp_path / "token")},
                                     "secrets": [{"path": "database/creds/myapp", "dest": "db.env", "format": "env"},
                                                 {"path": "secret/data/myapp", "dest": "app.env", "format": "env"}]})
    assert code == 0, error
    db = subprocess.run(["sh", "-c", f'. {tmp_path / "db.env"}; printf "%s" "$username"'], capture_output=True,
                        text=True, check=True).stdout
    assert db.startswith("v-k8s-")
    value = subprocess.run(["sh", "-c", f'. {tmp_path / "app.env"}; printf "%s" "$db_password"'],
                           capture_output=True, text=True, check=True).stdout
    assert value == DB_PASSWORD  # quotes, $, backquote, backslash and a newline survive


def test_403_is_final_exactly_one_request(tmp_path: Path, vault: FakeVault) -> None:
    code, error, _ = _run(tmp_path, {
        "address": vault.address, "auth": {"kubernetes": {"role": "myapp", "jwt_file": _jwt(tmp_path)}},
        "secrets": [{"path": "kv/legacy", "dest": "legacy.json"}]}, retries=3)
    assert code == 1
    assert error == "vault read kv/legacy: permission denied (403: check the Vault policy of this role / token)"
    assert vault.state.count("kv/legacy") == 1
    assert len(vault.state.revoked) == 1  # revoked on failure too


def test_bad_login_is_final(tmp_path: Path, vault: FakeVault) -> None:
    (tmp_path / "sa-token").write_text("not-the-jwt")
    code, error, _ = _run(tmp_path, {"address": vault.address,
                                     "auth": {"kubernetes": {"role": "myapp", "jwt_file": str(tmp_path / "sa-token")}},
                                     "secrets": [{"path": "secret/data/myapp", "dest": "a.json"}]}, retries=3)
    assert code == 1
    assert error.startswith("vault login (kubernetes role myapp at auth/kubernetes): permission denied")
    assert vault.state.count("auth/kubernetes/login", "POST") == 1


def test_sealed_then_unsealed_during_the_step(tmp_path: Path, vault: FakeVault) -> None:
    vault.state.sealed_answers = 3  # counted, not timed: a slow start-up cannot miss the sealed answers
    (tmp_path / "token").write_text(ROOT_TOKEN)
    code, error, stderr = _run(tmp_path, {"address": vault.address, "auth": {"token_file": str(tmp_path / "token")},
                                          "secrets": [{"path": "secret/data/myapp", "dest": "a.json"}]}, retries=10)
    assert code == 0, error
    assert "Vault is sealed or down (503: Vault is sealed)" in stderr
    assert vault.state.sealed_served == 3


def test_standby_is_retried(tmp_path: Path, vault: FakeVault) -> None:
    """The first two answers come from a standby node (counted, not timed: a slow start cannot skip them)."""
    vault.state.standby_answers = 2
    (tmp_path / "token").write_text(ROOT_TOKEN)
    code, error, _ = _run(tmp_path, {"address": vault.address, "auth": {"token_file": str(tmp_path / "token")},
                                     "secrets": [{"path": "secret/data/myapp", "dest": "a.json"}]}, retries=10)
    assert code == 0, error
    assert vault.state.standby_served == 2  # standby was really hit, twice
    asked = [p for _, p, _ in vault.state.requests if p != "sys/health"]
    assert len(asked) >= 3 and asked[-1] == "secret/data/myapp"  # and asked again until the read succeeded
    assert json.loads((tmp_path / "a.json").read_text())


def test_connection_refused_is_retried_then_fails(tmp_path: Path) -> None:
    from tests.conftest import free_port

    (tmp_path / "token").write_text(ROOT_TOKEN)
    code, error, _ = _run(tmp_path, {"address": f"http://127.0.0.1:{free_port()}",
                                     "auth": {"token_file": str(tmp_path / "token")},
                                     "secrets": [{"path": "secret/data/myapp", "dest": "a.json"}]}, retries=2)
    assert code == 1
    assert error == "vault read secret/data/myapp: connection refused"
    assert json.loads((tmp_path / "status.json").read_text())["steps"][0]["attempts"] == 3


def test_missing_required_key_fails_names_it_and_writes_nothing(tmp_path: Path, vault: FakeVault) -> None:
    (tmp_path / "token").write_text(ROOT_TOKEN)
    (tmp_path / "existing.json").write_text("previous")
    code, error, _ = _run(tmp_path, {"address": vault.address, "auth": {"token_file": str(tmp_path / "token")},
                                     "secrets": [
                                         {"path": "kv/legacy", "dest": "first.json"},
                                         {"path": "secret/data/myapp", "dest": "existing.json",
                                          "required": ["api_key", "stripe_key", "smtp_password"]}]})
    assert code == 1
    assert error == "vault read secret/data/myapp: missing required keys: stripe_key, smtp_password"
    assert not (tmp_path / "first.json").exists()  # nothing is written until every secret checked out
    assert (tmp_path / "existing.json").read_text() == "previous"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.json", "init.yaml", "status.json", "token"]


def test_one_failure_among_several_leaves_no_file(tmp_path: Path, vault: FakeVault) -> None:
    vault.state.tokens["limited-token-1"] = ["secret/"]
    (tmp_path / "token").write_text("limited-token-1")
    code, _, _ = _run(tmp_path, {"address": vault.address, "auth": {"token_file": str(tmp_path / "token")},
                                 "secrets": [{"path": "secret/data/myapp", "dest": "a.json"},
                                             {"path": "kv/legacy", "dest": "b.json"}]})
    assert code == 1
    assert not (tmp_path / "a.json").exists() and not (tmp_path / "b.json").exists()


def test_namespace(tmp_path: Path, vault: FakeVault) -> None:
    vault.state.put_kv2("secret/myapp", {"ns_key": "in-namespace"}, namespace="team-a/")
    vault.state.tokens["ns-token-1"] = ["team-a/secret/"]
    (tmp_path / "token").write_text("ns-token-1")
    code, error, _ = _run(tmp_path, {"address": vault.address, "namespace": "team-a",
                                     "auth": {"token_file": str(tmp_path / "token")},
                                     "secrets": [{"path": "secret/data/myapp", "dest": "ns.json"}]})
    assert code == 0, error
    assert json.loads((tmp_path / "ns.json").read_text()) == {"ns_key": "in-namespace"}
    assert all(ns == "team-a" for _, path, ns in vault.state.requests if path == "secret/data/myapp")


def test_fetches_secrets_at_the_same_time(tmp_path: Path, vault: FakeVault) -> None:
    """Each answer takes 0.3 s; the server counts the requests it is answering at once."""
    for i in range(8):
        vault.state.put_kv2(f"secret/app{i}", {"k": f"v{i}"})
    vault.state.latency = 0.3
    (tmp_path / "token").write_text(ROOT_TOKEN)
    code, error, _ = _run(tmp_path, {"address": vault.address, "auth": {"token_file": str(tmp_path / "token")},
                                     "secrets": [{"path": f"secret/data/app{i}", "dest": f"s/{i}.json"}
                                                 for i in range(8)]})
    assert code == 0, error
    assert [json.loads((tmp_path / f"s/{i}.json").read_text())["k"] for i in range(8)] == [f"v{i}" for i in range(8)]
    assert vault.state.max_in_flight >= 4, vault.state.max_in_flight  # one at a time would be 1
    step = json.loads((tmp_path / "status.json").read_text())["steps"][0]
    assert step["duration_s"] < 8 * 0.3, step  # less than the eight reads one after another


@pytest.mark.parametrize(("vault_spec", "message"), [
    ({"secrets": []}, "steps[0].vault.secrets: must not be empty"),
    ({"auth": {"kubernetes": {"role": "a"}, "token_file": "/t"}, "secrets": [{"path": "a", "dest": "b"}]},
     "steps[0].vault.auth: give exactly one of kubernetes, approle or token_file"),
    ({"auth": {"approle": {"role_id": "r"}}, "secrets": [{"path": "a", "dest": "b"}]},
     "give exactly one of secret_id or secret_id_file"),
    ({"secrets": [{"path": "a", "dest": "b", "format": "xml"}]},
     "steps[0].vault.secrets[0].format: expected json, env or yaml"),
    ({"secrets": [{"path": "a", "dest": "b", "mode": 400}]}, "steps[0].vault.secrets[0].mode: expected an octal"),
])
def test_bad_vault_specs(tmp_path: Path, vault_spec: dict[str, Any], message: str) -> None:
    result = run_cli("check", str(_spec(tmp_path, vault_spec)))
    assert result.code == 2
    assert message in result.stderr, result.stderr


def test_tls_with_ca_cert(tmp_path: Path, tls_ca: Any) -> None:
    _, pem, cert = tls_ca
    state = VaultState()
    state.tokens[ROOT_TOKEN] = ["secret/"]
    state.put_kv2("secret/tls", {"k": "over-tls"})
    (tmp_path / "token").write_text(ROOT_TOKEN)
    with vault_server(state, tls=cert) as server:
        secrets = [{"path": "secret/data/tls", "dest": "tls.json"}]
        base = {"address": server.address, "auth": {"token_file": str(tmp_path / "token")}, "secrets": secrets}
        code, error, _ = _run(tmp_path, {**base, "ca_cert": str(pem)})
        assert code == 0, error
        assert json.loads((tmp_path / "tls.json").read_text()) == {"k": "over-tls"}
        code, error, _ = _run(tmp_path, base, retries=0)
    assert code == 1
    assert error == ("vault read secret/data/tls: TLS failed, the server's certificate is not trusted "
                     "(set ca_cert: to its CA)")


def test_the_stand_in_health_endpoint_follows_vaults_documented_codes(vault: FakeVault) -> None:
    """sys/health: 200 active, 429 standby (200 with standbyok), 503 sealed, 501 uninitialized, overridable."""
    import httpx

    def health(query: str = "") -> int:
        return httpx.get(f"{vault.address}/v1/sys/health{query}").status_code

    assert health() == 200 and health("?activecode=204") == 204
    vault.state.standby = True
    assert health() == 429 and health("?standbyok=true") == 200 and health("?standbycode=472") == 472
    vault.state.sealed = True
    assert health() == 503 and health("?sealedcode=200") == 200
    vault.state.initialized = False
    assert health() == 501
    body = httpx.get(f"{vault.address}/v1/sys/health").json()
    assert {"initialized", "sealed", "standby", "version", "cluster_name"} <= set(body)
