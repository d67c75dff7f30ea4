"""What a rendered pod is given: the spec's variables (--env-from-secret, --env-from-configmap, --env), the files
its steps read (--files), and the privileges its steps need (an owner). Each rendered stream valid in strict mode;
running it is tests/pods."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import clean_env, run_cli, write_spec
from tests.render.kube import assert_valid, load_stream
from tests.render.test_workloads import EXAMPLE, IMAGE, pod_of

CANARY = "canary-pw-7f3a9c"


def render_result(*args: str, env: dict[str, str] | None = None) -> Any:
    return run_cli("render", *args, "--image", IMAGE, env=env or clean_env())


def init_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    pod = pod_of(docs[-1])
    return dict((pod.get("initContainers") or pod["containers"])[0])


@pytest.mark.parametrize("kind", ["init-container", "job", "cronjob"])
def test_variables_come_from_secrets_configmaps_and_literals(kind: str) -> None:
    extra = ("--schedule", "0 3 * * *") if kind == "cronjob" else ()
    result = render_result(kind, str(EXAMPLE), *extra, "--env-from-secret", "myapp-init-env",
                           "--env-from-secret", "shared-env", "--env-from-configmap", "myapp-settings",
                           "--env", "LOG_LEVEL=debug")
    assert result.code == 0, result.output
    docs = load_stream(result.stdout)
    for doc in docs:
        assert_valid(doc)
    init = init_of(docs)
    assert init["envFrom"] == [{"secretRef": {"name": "myapp-init-env"}}, {"secretRef": {"name": "shared-env"}},
                               {"configMapRef": {"name": "myapp-settings"}}]
    assert {"name": "LOG_LEVEL", "value": "debug"} in init["env"]
    assert "note:" not in result.stderr  # a Secret is given: it is taken to hold what the spec reads


def test_without_a_source_render_names_the_variables_and_the_command_that_provides_them() -> None:
    result = render_result("init-container", str(EXAMPLE))
    assert result.code == 0, result.output
    assert "envFrom" not in result.stdout
    note = [line for line in result.stderr.splitlines() if line.startswith("note: the spec reads")]
    assert note and "DATABASE_URL, VAULT_ADDR," in note[0] and "--env-from-secret myapp-init-env" in note[0]
    assert ("  kubectl create secret generic myapp-init-env --from-literal=DATABASE_URL=... "
            "--from-literal=VAULT_ADDR=...") in result.stderr.splitlines()
    # a variable given with --env is provided; one with a default never needs to be
    result = render_result("init-container", str(EXAMPLE), "--env", "VAULT_ADDR=http://vault:8200")
    assert "reads DATABASE_URL, and" in result.stderr and "VAULT_ADDR=..." not in result.stderr


@pytest.mark.parametrize("pair", [f"DATABASE_URL=postgres://app:{CANARY}@db/app", f"DB_PASSWORD={CANARY}",
                                  f"API_TOKEN={CANARY}", f"GIT_PW={CANARY}"])
def test_a_credential_in_env_is_refused_and_never_echoed(tmp_path: Path, pair: str) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: creds
        steps:
          - name: clone
            git: {repo: "https://ci:${GIT_PW}@git.example.com/app.git", dest: /repo}
          - name: db
            wait: [{postgres: "${DATABASE_URL}"}]
        """)
    result = render_result("job", str(spec), "--env", pair)
    key = pair.split("=")[0]
    assert result.code == 2 and result.stdout == ""
    assert f"--env {key}: a credential is not written into a manifest" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert CANARY not in result.stderr


def test_files_become_a_configmap_mounted_read_only(tmp_path: Path) -> None:
    migrations = tmp_path / "db" / "migrations"
    (migrations / "seed").mkdir(parents=True)
    (migrations / "V1__users.sql").write_text("create table users (id int);\n")
    (migrations / "seed" / "V2__data.sql").write_text("insert into users values (1);\n")
    (migrations / "logo.bin").write_bytes(b"\x89PNG\xff\x00")
    result = render_result("init-container", str(EXAMPLE), "--files", f"{migrations}:/migrations",
                           "--env-from-secret", "myapp-init-env")
    assert result.code == 0, result.output
    assert "/migrations" not in result.stderr  # the read path is provided now
    docs = load_stream(result.stdout)
    for doc in docs:
        assert_valid(doc)
    files = next(d for d in docs if d["metadata"]["name"] == "myapp-init-files-migrations")
    assert files["data"] == {"V1__users.sql": "create table users (id int);\n",
                             "seed__V2__data.sql": "insert into users values (1);\n"}
    assert base64.b64decode(files["binaryData"]["logo.bin"]) == b"\x89PNG\xff\x00"
    pod = pod_of(docs[-1])
    volume = next(v for v in pod["volumes"] if v["name"] == "files-migrations")
    assert {"key": "seed__V2__data.sql", "path": "seed/V2__data.sql"} in volume["configMap"]["items"]
    init = init_of(docs)
    assert {"name": "files-migrations", "mountPath": "/migrations", "readOnly": True} in init["volumeMounts"]
    app = pod["containers"][0]
    assert all(m["name"] != "files-migrations" for m in app["volumeMounts"])


def test_files_over_a_configmaps_limit_exit_2_and_unprovided_reads_are_warned(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.mkdir()
    (big / "dump.sql").write_bytes(b"x" * (1024 * 1024 + 1))
    result = render_result("job", str(EXAMPLE), "--files", f"{big}:/migrations")
    assert result.code == 2 and result.stdout == ""
    assert "a ConfigMap holds at most 1 MiB" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = render_result("job", str(EXAMPLE), "--files", "nowhere:/migrations")
    assert result.code == 2 and "nowhere is not a directory here" in result.stderr
    result = render_result("job", str(EXAMPLE))
    assert result.code == 0
    assert ("warning: step migrate: migrate.dir /migrations: no volume, no --files and nothing in the image "
            "provides it") in result.stderr
    # what an earlier step writes (the clone) is on a volume: the build's cwd is not warned about
    assert "/repo" not in result.stderr


SEED = """
    version: 1
    name: seed-permissions
    steps:
      - name: permissions
        files:
          dirs:
            - {path: /data/uploads, mode: "0777", owner: "1000:1000"}
            - {path: /data/logs, mode: "0755", owner: "1000:1000"}
          files:
            - {path: /data/logs/app.log, mode: "0666", owner: "1000:1000"}
    """


VAULT_OWNER = """
    version: 1
    name: secrets
    steps:
      - name: secrets
        vault:
          address: http://vault:8200
          auth: {token_file: /var/run/secrets/vault-token}
          secrets:
            - {path: secret/data/app, dest: /secrets/app.json, owner: "1000:1000"}
"""
"""A Vault secret written for the app's user: the same privileges as a files step's owner."""


@pytest.mark.parametrize(("kind", "spec", "step"), [
    ("init-container", SEED, "permissions"), ("job", SEED, "permissions"), ("init-container", VAULT_OWNER, "secrets"),
])
def test_a_step_that_sets_an_owner_gets_root_with_three_capabilities(tmp_path: Path, kind: str, spec: str,
                                                                     step: str) -> None:
    result = render_result(kind, str(write_spec(tmp_path, spec)))
    assert result.code == 0, result.output
    docs = load_stream(result.stdout)
    for doc in docs:
        assert_valid(doc)
    sc = init_of(docs)["securityContext"]
    assert sc["runAsUser"] == 0 and sc["runAsNonRoot"] is False and sc["privileged"] is False
    assert sc["capabilities"] == {"drop": ["ALL"], "add": ["CHOWN", "FOWNER", "DAC_OVERRIDE"]}
    assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
    pod = pod_of(docs[-1])
    if kind == "init-container":  # the app stays non-root
        assert pod["containers"][0]["securityContext"]["runAsNonRoot"] is True
    assert (f"note: {step} sets an owner: the prefect-init container runs as root with CAP_CHOWN, CAP_FOWNER, "
            "CAP_DAC_OVERRIDE") in result.stderr and "'baseline', not 'restricted'" in result.stderr


def test_a_spec_without_owners_keeps_the_restricted_pod(tmp_path: Path) -> None:
    result = render_result("job", str(EXAMPLE))
    sc = init_of(load_stream(result.stdout))["securityContext"]
    assert sc["runAsUser"] == 10001 and sc["capabilities"] == {"drop": ["ALL"]}
    assert "runs as root" not in result.stderr
    own_user = SEED.replace("1000:1000", "10001:10001")
    result = render_result("job", str(write_spec(tmp_path, own_user)))
    assert init_of(load_stream(result.stdout))["securityContext"]["runAsUser"] == 10001
