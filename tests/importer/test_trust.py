"""Import you can trust (issue 32): each class of defect found on import_world/, on a workload of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from prefect_init.importer import MAX_MANIFEST_BYTES, ImportProblem, NothingToImport, import_workload
from prefect_init.importer.shell import programs
from tests.helpers import run_cli


def _workload(*containers: dict[str, object], security: dict[str, object] | None = None) -> str:
    pod: dict[str, object] = {"initContainers": list(containers), "containers": [{"name": "app", "image": "app:1"}]}
    if security:
        pod["securityContext"] = security
    return yaml.safe_dump({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                           "spec": {"template": {"spec": pod}}}, sort_keys=False)


def _sh(name: str, script: str, image: str = "busybox:1.36", **extra: object) -> dict[str, object]:
    return {"name": name, "image": image, "command": ["sh", "-c", script], **extra}


def _steps(text: str) -> list[dict[str, Any]]:
    return yaml.safe_load(import_workload(text).spec_text)["steps"]


@pytest.mark.parametrize("script", ["chmod -R 700 /data/pgdata || true", "mkdir -p /a && chmod 700 /a || true",
                                    "chmod 700 /data/x || :", "set +e\nchown 999 /data/x", "chmod 700 /data/x; true"])
def test_a_script_that_may_fail_is_kept_whole_never_a_typed_step(script: str) -> None:
    steps = _steps(_workload(_sh("perms", script)))
    assert [list(s)[1] for s in steps] == ["command"], steps
    assert steps[0]["command"][-1] == script


@pytest.mark.parametrize(("url", "target"), [("http://db:3306", "db:3306"), ("http://cache:6379/", "cache:6379"),
                                             ("mongo:27017", "mongo:27017")])
def test_curl_on_a_database_port_is_a_tcp_wait(url: str, target: str) -> None:
    steps = _steps(_workload(_sh("wait", f"until curl --max-time 10 {url}; do sleep 5; done")))
    assert steps[0]["wait"] == [{"tcp": target}], steps


def test_curl_on_an_http_port_stays_an_http_wait() -> None:
    steps = _steps(_workload(_sh("wait", "until curl -f http://api:8080/health; do sleep 5; done")))
    assert steps[0]["wait"] == [{"http": "http://api:8080/health"}], steps


def test_printf_before_nc_in_the_condition_is_only_output() -> None:
    steps = _steps(_workload(_sh("wait", 'until printf "." && nc -z -w 2 db 5432; do sleep 2; done')))
    assert steps[0]["wait"] == [{"tcp": "db:5432"}], steps


def test_dockerize_waits_become_one_tcp_wait_with_its_timeout() -> None:
    steps = _steps(_workload(_sh("wait", 'dockerize -wait "tcp://db:5432" -wait tcp://redis:6379 -timeout 120s')))
    assert steps[0]["wait"] == [{"tcp": "db:5432"}, {"tcp": "redis:6379"}] and steps[0]["timeout"] == "120s"
    with pytest.raises(NothingToImport, match="runs dockerize from its own image"):  # a command after the waits
        import_workload(_workload(_sh("wait", "dockerize -wait tcp://db:5432 -timeout 120s ./run.sh")))


@pytest.mark.parametrize(("container", "why"), [
    ({"name": "plugin", "image": "velero/velero-plugin-for-aws:v1.8.0"}, "runs the entrypoint of its own image"),
    ({"name": "init", "image": "cr.l5d.io/linkerd/proxy-init:v2", "args": ["--incoming-proxy-port", "4143"]},
     "with args only"),
    ({"name": "copy", "image": "quay.io/argoproj/argocd:v2.9.0",
      "command": ["/bin/cp", "-n", "/usr/local/bin/argocd", "/var/run/argocd/argocd-cmp-server"]}, "copies"),
    ({"name": "schema", "image": "temporalio/admin-tools:1.22.0", "command": ["temporal-sql-tool", "create-database"]},
     "runs temporal-sql-tool from its own image"),
    (_sh("sysctl", "sysctl -w vm.max_map_count=262144", securityContext={"privileged": True}), "privileged"),
    (_sh("fw", "iptables -A INPUT -j ACCEPT", securityContext={"capabilities": {"add": ["NET_ADMIN"]}}), "NET_ADMIN"),
])
def test_a_container_only_its_own_image_can_run_is_kept(container: dict[str, object], why: str) -> None:
    text = _workload(container, _sh("wait", "until nc -z db 5432; do sleep 1; done"))
    imported = import_workload(text)
    kept = next(c for c in imported.containers if c.name == container["name"])
    assert kept.outcome == "kept" and why in (kept.why or ""), kept
    assert imported.spec_text.splitlines()[1].endswith("(initContainers: wait)")  # render --into keeps the other
    assert [s["name"] for s in yaml.safe_load(imported.spec_text)["steps"]] == ["wait"]
    assert any(line.endswith(kept.why or "") for line in imported.notes)
    with pytest.raises(NothingToImport):
        import_workload(_workload(container))
    forced = import_workload(_workload(container), replace_all=True)
    assert forced.containers[0].outcome != "kept"


def test_arithmetic_numbers_and_variables_are_no_programs() -> None:
    found, parsed = programs('[[ `hostname` =~ -([0-9]+)$ ]] || exit 1\necho server-id=$((100 + $ordinal)) > f\n'
                             'cp /a /b\n')
    assert "100" not in found and "cp" in found, (found, parsed)


def test_two_containers_defining_a_variable_differently_each_keep_their_own() -> None:
    def store(name: str, database: str, secret: str, host: str) -> dict[str, object]:
        return _sh(name, "until nc -z $DB_HOST 5432; do sleep 1; done\npsql -d $SQL_DATABASE -c 'select 1'",
                   env=[{"name": "SQL_DATABASE", "value": database}, {"name": "DB_HOST", "value": host},
                        {"name": "SQL_PASSWORD", "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}}])

    imported = import_workload(_workload(store("default-store", "temporal", "default-pw", "db-a"),
                                         store("visibility-store", "temporal_visibility", "visibility-pw", "db-b")))
    steps = {s["name"]: s for s in yaml.safe_load(imported.spec_text)["steps"]}
    envs = [s["env"] for s in steps.values() if "command" in s]
    assert [e["SQL_DATABASE"] for e in envs] == ["${SQL_DATABASE:-temporal}",
                                                  "${VISIBILITY_STORE_SQL_DATABASE:-temporal_visibility}"]
    assert [e["SQL_PASSWORD"] for e in envs] == ["${SQL_PASSWORD}", "${VISIBILITY_STORE_SQL_PASSWORD}"]
    waits = [t for s in steps.values() if "wait" in s for t in s["wait"]]
    assert waits == [{"tcp": "${DB_HOST:-db-a}:5432"}, {"tcp": "${VISIBILITY_STORE_DB_HOST:-db-b}:5432"}], waits
    assert any("VISIBILITY_STORE_SQL_PASSWORD: initContainer \"visibility-store\"'s own SQL_PASSWORD" in line
               and "Secret visibility-pw (key password)" in line for line in imported.notes), imported.notes


def test_the_spec_names_no_schema_file_that_is_not_there() -> None:
    text = import_workload(_workload(_sh("wait", "until nc -z db 5432; do sleep 1; done"))).spec_text
    assert "$schema=" not in text  # the modeline would name a file import never wrote
    assert text.splitlines()[0].startswith("# editor completion: prefect-init schema > prefect-init.schema.json")


def test_a_manifest_over_the_limit_is_refused_in_words_before_it_is_parsed() -> None:
    workload = _workload(_sh("wait", "until nc -z db 5432; do sleep 1; done"))
    padding = "# " + "x" * 1000 + "\n"
    text = padding * (MAX_MANIFEST_BYTES // len(padding) + 1) + workload
    with pytest.raises(ImportProblem, match=r"MiB, over the 16 MiB import reads: give it the one workload"):
        import_workload(text, source="big.yaml")
    assert import_workload(text[-MAX_MANIFEST_BYTES:].split("\n", 1)[1]).containers[0].outcome == "typed"


def test_a_wait_that_replaced_a_loop_without_end_says_the_deadline_that_replaced_it() -> None:
    text = import_workload(_workload(_sh("wait", "until nc -z db 5432; do sleep 1; done"))).spec_text
    assert "# the loop had no bound; the step waits at most its timeout (the spec's default, 5m" in text
    bounded = import_workload(_workload(_sh("wait", "dockerize -wait tcp://db:5432 -timeout 90s"))).spec_text
    assert "the loop had no bound" not in bounded and "timeout: 90s" in bounded


def test_a_script_mounted_from_a_config_map_of_the_stream_is_read_and_its_programs_named() -> None:
    container: dict[str, object] = {"name": "dashboards", "image": "curlimages/curl:7.85.0", "command": ["/bin/sh"],
                 "args": ["-c", "/bin/sh -x /etc/grafana/download.sh"],
                 "volumeMounts": [{"name": "config", "mountPath": "/etc/grafana/download.sh",
                                   "subPath": "download.sh"}]}
    doc = yaml.safe_load(_workload(container))
    doc["spec"]["template"]["spec"]["volumes"] = [{"name": "config", "configMap": {"name": "grafana"}}]
    script = "#!/bin/sh\nset -euf\ncurl -skf https://example.invalid/d.json > /tmp/d.json\n"
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "grafana"},
                  "data": {"download.sh": script}}
    alone = import_workload(yaml.safe_dump(doc))
    assert "curl" not in alone.missing_programs  # a positive control: without the ConfigMap nothing says curl
    imported = import_workload(yaml.safe_dump_all([config_map, doc]))
    assert "curl" in imported.missing_programs, imported.missing_programs
    assert "# runs /etc/grafana/download.sh from ConfigMap grafana (in this stream), which runs: curl" in \
        imported.spec_text


def test_a_literal_is_a_credential_by_its_name_or_its_shape_not_by_a_word_of_its_name() -> None:
    env = [{"name": "SECRET_NAME", "value": "db-credentials"}, {"name": "TOKEN_URL", "value": "https://auth/token"},
           {"name": "PASSWORD_FILE", "value": "/run/secrets/pw"}, {"name": "TOKEN_TTL", "value": "3600"},
           {"name": "API_KEY", "value": "k3y-Zq81"}, {"name": "DB_URL", "value": "postgres://app:pw-Kp55@db/app"}]
    script = "echo $SECRET_NAME $TOKEN_URL $PASSWORD_FILE $TOKEN_TTL > /tmp/x; psql $DB_URL -c 'select 1' $API_KEY"
    imported = import_workload(_workload(_sh("init", script, env=env)))
    credentials = [line for line in imported.notes if "literal credential" in line]
    named = {word.strip(":") for line in credentials for word in line.split()}
    assert {"API_KEY", "DB_URL"} <= named, credentials  # by its name, by its shape (a URL's password)
    assert not named & {"SECRET_NAME", "TOKEN_URL", "PASSWORD_FILE", "TOKEN_TTL"}, credentials
    assert "k3y-Zq81" not in imported.spec_text and "pw-Kp55" not in imported.spec_text


# Issue 34's import rows: each broke once and passed the suite.

def test_pg_isready_waits_on_the_port_it_was_given() -> None:
    steps = _steps(_workload(_sh("wait", "until pg_isready -h db -p 6543 -U app; do sleep 1; done", "postgres:16")))
    assert steps[0]["wait"] == [{"tcp": "db:6543"}], steps


def test_a_password_in_a_literal_env_url_is_no_default_of_the_spec() -> None:
    env = [{"name": "DATABASE_URL", "value": "postgres://app:s3cret-Wq42@db:5432/app"}]
    imported = import_workload(_workload(_sh("wait", 'until nc -z db 5432; do sleep 1; done; psql "$DATABASE_URL"',
                                             env=env)))
    assert "s3cret-Wq42" not in imported.spec_text and "${DATABASE_URL:-" not in imported.spec_text
    assert "DATABASE_URL: ${DATABASE_URL}" in imported.spec_text  # the step still reads it, from a Secret


def test_a_program_called_by_its_absolute_path_is_named_missing() -> None:
    imported = import_workload(_workload(_sh("render", "/usr/bin/jq -r .name /config/app.json > /work/name")))
    assert "jq" in imported.missing_programs, imported.missing_programs


def test_the_command_line_keeps_such_containers_or_replaces_them_all_with_replace_all(tmp_path: Path) -> None:
    manifest = tmp_path / "velero.yaml"
    manifest.write_text(_workload({"name": "plugin", "image": "velero/velero-plugin-for-aws:v1.8.0"}))
    kept = run_cli("import", str(manifest))
    assert kept.code == 2 and "nothing to import" in kept.stderr and "kept: runs the entrypoint" in kept.stderr
    forced = run_cli("import", str(manifest), "--replace-all", "-o", str(tmp_path / "init.yaml"))
    assert forced.code == 0, forced.output
    assert "(initContainers: plugin)" in (tmp_path / "init.yaml").read_text()


def test_a_file_of_its_own_image_is_kept_a_file_of_a_mounted_volume_is_run() -> None:
    own = import_workload(_workload({"name": "assets", "image": "ghcr.io/acme/app:6", "workingDir": "/app",
                                     "command": ["./bin/prepare.sh", "--target", "/assets"],
                                     "volumeMounts": [{"name": "assets", "mountPath": "/assets"}]},
                                    _sh("wait", "until nc -z db 5432; do sleep 1; done")))
    assert own.containers[0].outcome == "kept" and "runs ./bin/prepare.sh from its own image" in (own.containers[0].why
                                                                                                 or "")
    mounted = import_workload(_workload({"name": "assets", "image": "ghcr.io/acme/app:6", "workingDir": "/scripts",
                                         "command": ["./prepare.sh"],
                                         "volumeMounts": [{"name": "scripts", "mountPath": "/scripts"}]}))
    assert mounted.containers[0].outcome == "command"  # the volume goes with the spec: the init image runs it


def test_a_replaced_container_after_a_kept_one_is_said_to_run_before_it_now() -> None:
    plugin: dict[str, object] = {"name": "plugin", "image": "velero/velero-plugin-for-aws:v1.8.0"}
    moved = import_workload(_workload(_sh("wait", "until nc -z db 5432; do sleep 1; done"), plugin,
                                      _sh("perms", "mkdir -p /data/x")))
    assert "Order changed: perms ran after plugin, which is kept" in " ".join(moved.notes), moved.notes
    in_order = import_workload(_workload(plugin, _sh("wait", "until nc -z db 5432; do sleep 1; done")))
    assert not any("Order changed" in line for line in in_order.notes), in_order.notes


def test_render_into_leaves_a_kept_container_in_its_place_as_it_was(tmp_path: Path) -> None:
    manifest = Path(__file__).resolve().parent / "import_corpus" / "elasticsearch.yaml"
    spec = tmp_path / "init.yaml"
    assert run_cli("import", str(manifest), "-o", str(spec)).code == 0
    rendered = run_cli("render", "init-container", str(spec), "--image", "prefect-init:test", "--into", str(manifest))
    assert rendered.code == 0, rendered.output
    pod = next(d for d in yaml.safe_load_all(rendered.stdout) if d and d.get("kind") == "StatefulSet")
    init = pod["spec"]["template"]["spec"]["initContainers"]
    original = next(d for d in yaml.safe_load_all(manifest.read_text()) if d and d.get("kind") == "StatefulSet")
    assert [c["name"] for c in init] == ["configure-sysctl", "prefect-init"]
    assert init[0] == original["spec"]["template"]["spec"]["initContainers"][0]  # untouched, privileged and all
