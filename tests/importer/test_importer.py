"""prefect-init import: a workload's initContainers as a spec.

The corpus (``import_corpus/``) holds workloads in the shapes public charts use, each beside the spec import must
make of it (``NAME.spec.yaml``, or ``NAME.KIND-NAME.spec.yaml`` when the file has several workloads with
initContainers). Every spec passes ``check``; at least 80 % of the containers become typed steps only, and the
rest run the original script as written."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from prefect_init.importer import ContainerResult, NothingToImport, import_workload, parse_provenance
from prefect_init.importer.manifest import workloads
from prefect_init.spec.credentials import literal_credentials
from tests.helpers import clean_env, run_cli

CORPUS = Path(__file__).resolve().parent / "import_corpus"


KEPT_WHOLE = {("kafka.yaml", "Deployment/orders-consumer")}
"""Workloads whose every initContainer is kept as it is (only its own image can run it): import has nothing to
make of them (NothingToImport)."""


def _cases() -> list[tuple[Path, str | None, Path]]:
    cases: list[tuple[Path, str | None, Path]] = []
    for manifest in sorted(CORPUS.glob("*.yaml")):
        if manifest.name.endswith(".spec.yaml"):
            continue
        found = [w for w in workloads(manifest.read_text()) if w.init_containers]
        for workload in found:
            if (manifest.name, workload.ref) in KEPT_WHOLE:
                continue
            if len(found) == 1:
                cases.append((manifest, None, CORPUS / f"{manifest.stem}.spec.yaml"))
            else:
                cases.append((manifest, workload.ref,
                              CORPUS / f"{manifest.stem}.{workload.kind.lower()}-{workload.name}.spec.yaml"))
    return cases


CASES = _cases()


def _steps(spec_text: str) -> dict[str, dict[str, Any]]:
    return {step["name"]: step for step in yaml.safe_load(spec_text)["steps"]}


def _unescaped(argv: list[str]) -> list[str]:
    """A command step's argv as the shell gets it (the spec writes a literal ``${`` as ``$${``)."""
    return [arg.replace("$${", "${") for arg in argv]


def test_a_workload_whose_containers_only_their_own_image_can_run_has_nothing_to_import() -> None:
    manifest = CORPUS / "kafka.yaml"
    with pytest.raises(NothingToImport) as caught:
        import_workload(manifest.read_text(), "Deployment/orders-consumer", manifest.name)
    assert [(c.name, c.outcome) for c in caught.value.containers] == [("wait-for-migration", "kept")]
    assert "kept: runs kubectl from its own image" in str(caught.value)


def test_the_corpus_is_large_enough() -> None:
    manifests = {manifest for manifest, _, _ in CASES}
    containers = sum(len(import_workload(m.read_text(), w).containers) for m, w, _ in CASES)
    assert len(manifests) >= 12 and containers >= 25, (len(manifests), containers)
    assert all(expected.exists() for _, _, expected in CASES), [str(e) for _, _, e in CASES if not e.exists()]


@pytest.mark.parametrize(("manifest", "workload", "expected"), CASES, ids=[e.name for _, _, e in CASES])
def test_import_makes_the_expected_spec_and_it_passes_check(manifest: Path, workload: str | None, expected: Path,
                                                            tmp_path: Path) -> None:
    imported = import_workload(manifest.read_text(), workload, manifest.name)
    assert imported.spec_text == expected.read_text(), f"{manifest.name}: the spec differs from {expected.name}"
    kind, name = imported.workload
    assert imported.spec_text.splitlines()[1] == (f"# imported by prefect-init import from {kind}/{name} "
                                                  f"(initContainers: {', '.join(imported.init_containers)})")
    assert parse_provenance(imported.spec_text) == (kind, name, imported.init_containers)
    spec = tmp_path / "init.yaml"
    spec.write_text(imported.spec_text)
    result = run_cli("check", str(spec), "--unset-ok")
    assert result.code == 0, result.output
    assert result.stdout.startswith(f"{spec}: valid - "), result.output


def test_most_containers_become_typed_steps_and_the_rest_run_as_written() -> None:
    results: list[tuple[Path, ContainerResult, dict[str, dict[str, Any]], dict[str, Any]]] = []
    for manifest, workload, _ in CASES:
        imported = import_workload(manifest.read_text(), workload)
        steps = _steps(imported.spec_text)
        chosen = next(w for w in workloads(manifest.read_text())
                      if (w.kind, w.name) == imported.workload)
        originals = {c.name: c for c in chosen.init_containers}
        for container in imported.containers:
            results.append((manifest, container, steps, {"original": originals[container.name]}))
    typed = [r for r in results if r[1].outcome == "typed"]
    share = len(typed) / len(results)
    assert share >= 0.8, f"{len(typed)} of {len(results)} containers ({share:.0%}) became typed steps only: " + \
        ", ".join(f"{m.name}:{c.name} ({c.why})" for m, c, _, _ in results if c.outcome != "typed")
    for manifest, container, steps, extra in results:
        own = [steps[name] for name in container.steps]
        if container.outcome == "kept":  # only its own image can run it: no step, named in the summary
            assert not own and container.why and container.why.startswith("kept: "), (manifest.name, container)
            continue
        assert own, f"{manifest.name}: {container.name} made no step"
        commands = [s for s in own if "command" in s]
        if container.outcome == "typed":
            assert not commands, f"{manifest.name}: {container.name} is typed but has a command step"
            continue
        assert commands, f"{manifest.name}: {container.name} ({container.outcome}) has no command step"
        original = extra["original"]
        written = [*(original.command or []), *(original.args or [])]
        if container.outcome == "command":
            step, = commands
            assert _unescaped(step["command"]) == container.argv, (manifest.name, container.name)
            if "$(" not in " ".join(written) and "$" not in "".join(written[:1]):
                assert _unescaped(step["command"]) == written, f"{manifest.name}: {container.name}: not as written"
        else:  # split: each command step runs a part of the script, cut out as written
            script = container.argv[-1]
            assert len(own) > len(commands), f"{manifest.name}: {container.name}: a split without typed steps"
            for step in commands:
                assert _unescaped(step["command"])[-1] in script, (manifest.name, container.name, step["name"])
                assert _unescaped(step["command"])[-1] in written[-1]


def test_a_split_keeps_the_order_and_the_working_directory() -> None:
    imported = import_workload((CORPUS / "git-clone-build.yaml").read_text())
    steps = list(_steps(imported.spec_text).values())
    assert [next(k for k in ("git", "command", "files") if k in s) for s in steps] == ["git", "command", "git"]
    assert steps[0]["git"]["repo"] == "https://github.com/acme/site.git"
    assert steps[0]["git"]["password"] == "${GIT_TOKEN}" and steps[0]["git"]["username"] == "${GIT_USERNAME:-deploy}"
    assert steps[1]["command"] == ["sh", "-c", "npm ci && npm run build"] and steps[1]["cwd"] == "/workspace/site"
    assert "npm" in imported.missing_programs


def test_missing_programs_are_named_with_a_dockerfile_that_adds_them() -> None:
    result = run_cli("import", str(CORPUS / "config-download.yaml"))
    assert result.code == 0, result.output
    assert "lacks: curl" in result.stderr
    assert "FROM ${INIT_IMAGE}" in result.stderr and "apt-get install -y --no-install-recommends curl" in result.stderr
    assert "prefect-init check --online" in result.stderr
    assert "git" not in import_workload((CORPUS / "git-clone-build.yaml").read_text()).missing_programs
    kubectl = import_workload((CORPUS / "kafka.yaml").read_text(), "Deployment/orders-consumer", replace_all=True)
    assert kubectl.missing_programs == ["kubectl"]  # --replace-all: the old behaviour, a step all the same
    assert any("kubectl: not a Debian package" in line for line in kubectl.dockerfile)


def _manifest(directory: Path, containers: list[dict[str, Any]], name: str = "app") -> Path:
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
           "spec": {"template": {"spec": {"initContainers": containers,
                                          "containers": [{"name": "app", "image": "app:1.0"}]}}}}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


CANARIES = ("c4n4ry-env-Zq81", "c4n4ry-flag-Xw27", "c4n4ry-url-Kp55", "c4n4ry-assign-Tr90", "c4n4ry-git-Hv13")


def test_literal_credentials_become_variables_and_their_values_are_written_nowhere(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    manifest = _manifest(tmp_path, [
        {"name": "wait-db", "image": "postgres:16",
         "env": [{"name": "DB_PASSWORD", "value": CANARIES[0]}, {"name": "DB_HOST", "value": "127.0.0.1"}],
         "command": ["sh", "-c", "until pg_isready -h $DB_HOST; do sleep 1; done"]},
        {"name": "canary", "image": "busybox:1.36",
         "command": ["sh", "-c", f"printf '%s\\n' --password={CANARIES[1]} 'postgres://app:{CANARIES[2]}@db:5432/app' "
                                 f"\"PGPASSWORD={CANARIES[3]}\" > {out}"]},
        {"name": "clone", "image": "alpine/git:2.43.0",
         "args": ["clone", f"https://ci:{CANARIES[4]}@git.example.com/acme/app.git", "/repo"]},
    ])
    spec = tmp_path / "init.yaml"
    result = run_cli("import", str(manifest), "-o", str(spec))
    assert result.code == 0, result.output
    text = spec.read_text()
    # positive control: the canaries are in the manifest, and the spec refers to the variables that hold them
    assert all(canary in manifest.read_text() for canary in CANARIES)
    for reference in ("${CANARY_PASSWORD}", "${POSTGRES_PASSWORD}", "${PGPASSWORD}", "password: ${GIT_TOKEN}"):
        assert reference in text, reference
    assert '--password="$${CANARY_PASSWORD}"' in text and "postgres://app:'\"$${POSTGRES_PASSWORD}\"'@db" in text
    assert "DB_PASSWORD" in result.stderr and "put it in a Secret" in result.stderr
    for canary in CANARIES:
        assert canary not in text and canary not in result.stdout and canary not in result.stderr, canary
    assert literal_credentials(text, str(spec)) == []  # deploy would store it: no literal credential left
    assert run_cli("check", str(spec), "--unset-ok").code == 0
    # and the command still gets them, from the variables the prefect-init container is given
    env = clean_env(CANARY_PASSWORD=CANARIES[1], POSTGRES_PASSWORD=CANARIES[2], PGPASSWORD=CANARIES[3],
                    GIT_TOKEN=CANARIES[4])
    run = run_cli("run", str(spec), "--local", "--only", "canary", env=env)
    assert run.code == 0, run.output
    assert out.read_text() == (f"--password={CANARIES[1]}\npostgres://app:{CANARIES[2]}@db:5432/app\n"
                               f"PGPASSWORD={CANARIES[3]}\n")


USED = "c4n4ry-used-Qm38"
"""A literal env value whose variable's name says nothing of a credential (or only ``PASS``, ``PWD``, ``PAT``), used
where a credential goes."""


@pytest.mark.parametrize(("env", "command", "references"), [
    pytest.param({"REDIS_PASS": USED}, ["sh", "-c", "until redis-cli -h redis -a $REDIS_PASS ping; do sleep 1; done"],
                 ["redis: redis://:${REDIS_PASS}@redis:6379/0"], id="redis-cli -a"),
    pytest.param({"TOK": USED},
                 ["sh", "-c", 'until curl -fsS -H "Authorization: Bearer $TOK" http://api/health; do sleep 1; done'],
                 ["Authorization: Bearer ${TOK}"], id="a bearer header"),
    pytest.param({"GH_PAT": USED}, ["sh", "-c", "git clone https://ci:$GH_PAT@github.com/acme/app.git /repo"],
                 ["password: ${GH_PAT}"], id="a git URL's password"),
    pytest.param({"MYSQL_PWD": USED, "DB_PASS": USED + "-2"},
                 ["sh", "-c", "mysql -h db -u app -e 'select 1' app | tail -1"],
                 ["MYSQL_PWD: ${MYSQL_PWD}", "DB_PASS: ${DB_PASS}"], id="a command step's env"),
    # a name that says nothing: where it is used says it
    pytest.param({"RW": USED}, ["sh", "-c", "until redis-cli -h redis -a $RW ping; do sleep 1; done"],
                 ["redis: redis://:${RW}@redis:6379/0"], id="redis-cli -a, any name"),
    pytest.param({"GHX": USED}, ["sh", "-c", "git clone https://ci:$GHX@github.com/acme/app.git /repo"],
                 ["password: ${GHX}"], id="a git URL's password, any name"),
    pytest.param({"V1": USED}, ["sh", "-c", "mysql -h db -u app -p$V1 -e 'select 1' | tail -1"], ["V1: ${V1}"],
                 id="mysql -p in a command step"),
    pytest.param({"V2": USED}, ["redis-cli", "-a", "$(V2)", "info"], ["V2: ${V2}"], id="an argv's $(VAR)"),
    pytest.param({"V3": USED, "DATABASE_URL": "postgres://app:$(V3)@db:5432/app"},
                 ["sh", "-c", "./migrate.sh | tee /tmp/log"], ["DATABASE_URL: postgres://app:${V3}@db:5432/app"],
                 id="a URL's password in the env"),
    # found once the spec is begun: an earlier container's step read it, or only the wait's header says it
    pytest.param({"V4": USED}, ["sh", "-c", "./seed.sh $V4 | tee /tmp/log"],
                 ["V4: ${V4}", "Authorization: Bearer ${V4}"], id="an earlier container's command step"),
    pytest.param({"V5": USED}, ["sh", "-c", 'until curl -fsS -H "X-Request-Token: $V5" http://api/; do sleep 1; done'],
                 ["X-Request-Token: ${V5}"], id="a token header of any name"),
])
def test_a_literal_used_as_a_credential_is_a_credential(env: dict[str, str], command: list[str],
                                                          references: list[str], tmp_path: Path) -> None:
    containers = [{"name": "init", "image": "alpine/git:2.43.0",
                   "env": [{"name": k, "value": v} for k, v in env.items()], "command": command}]
    if "Authorization: Bearer ${V4}" in references:  # then a container that uses it as a credential
        wait = 'until curl -fsS -H "Authorization: Bearer $V4" http://api/; do sleep 1; done'
        containers.append({**containers[0], "name": "wait", "command": ["sh", "-c", wait]})
    manifest = _manifest(tmp_path, containers)
    result = run_cli("import", str(manifest), "--replace-all")  # ./migrate.sh, ./seed.sh: files of the image
    assert result.code == 0, result.output
    text = result.stdout
    # positive control: the canary is in the manifest, and the spec refers to the variable that holds it
    assert USED in manifest.read_text()
    for reference in references:
        assert reference in text, (reference, text)
    names = [name for name, value in env.items() if USED in value and "$(" not in value]
    for name in names:
        assert "${" + name + ":-" not in text, name
        assert f"--from-literal={name}=..." in result.stderr.replace("\n    ", " "), result.stderr
    assert USED not in text and USED not in result.stdout and USED not in result.stderr
    assert literal_credentials(text, "init.yaml") == []


def test_an_imported_wait_and_files_steps_do_what_the_script_did(tmp_path: Path) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        data = tmp_path / "data"
        manifest = _manifest(tmp_path, [
            {"name": "wait", "image": "busybox:1.36",
             "command": ["sh", "-c", f"until nc -z 127.0.0.1 {port}; do echo waiting; sleep 1; done"]},
            {"name": "prepare", "image": "busybox:1.36",
             "command": ["sh", "-c", f"mkdir -p {data}/uploads && chmod 750 {data}/uploads && echo ready > "
                                     f"{data}/uploads/flag && ls {data}/uploads | wc -l > {data}/count"]},
        ])
        spec = tmp_path / "init.yaml"
        assert run_cli("import", str(manifest), "-o", str(spec)).code == 0
        kinds = [next(k for k in ("wait", "files", "command") if k in s) for s in _steps(spec.read_text()).values()]
        assert kinds == ["wait", "files", "command"]
        run = run_cli("run", str(spec), "--local")
    assert run.code == 0, run.output
    assert stat.S_IMODE(os.stat(data / "uploads").st_mode) == 0o750
    assert (data / "uploads" / "flag").read_text() == "ready\n"
    assert (data / "count").read_text().strip() == "1"


def test_repeated_files_ops_end_as_the_script_left_them(tmp_path: Path) -> None:
    script = ("mkdir -p {d}/sub && touch {d}/a.log {d}/sub/c.log && chmod 755 {d} && chmod -R 700 {d} && "
              "chmod 750 {d} && touch {d}/b.log && chmod 604 {d}/b.log && chmod -R 711 {d}/sub && chmod 705 {d}/sub")
    by_shell, by_spec = tmp_path / "shell" / "d", tmp_path / "spec" / "d"
    by_shell.parent.mkdir()
    subprocess.run(["sh", "-c", script.format(d=by_shell)], check=True)
    manifest = _manifest(tmp_path, [{"name": "perms", "image": "busybox:1.36",
                                     "command": ["sh", "-c", script.format(d=by_spec)]}])
    spec = tmp_path / "init.yaml"
    assert run_cli("import", str(manifest), "-o", str(spec)).code == 0
    kinds = [next(k for k in ("files", "command") if k in s) for s in _steps(spec.read_text()).values()]
    assert kinds == ["files"]
    run = run_cli("run", str(spec), "--local")
    assert run.code == 0, run.output

    def modes(top: Path) -> dict[str, str]:
        return {str(p.relative_to(top)): oct(stat.S_IMODE(p.stat().st_mode)) for p in [top, *top.rglob("*")]}

    assert modes(by_spec) == modes(by_shell) == {".": "0o750", "sub": "0o705", "a.log": "0o700", "sub/c.log": "0o711",
                                                 "b.log": "0o604"}


BAD_INPUTS = [
    ({"kind": "CronJob", "spec": {"jobTemplate": [1]}}, "CronJob/web: spec.jobTemplate: expected a mapping"),
    ({"container": {"envFrom": [{"secretRef": [1]}]}},
     "Deployment/web: spec.template.spec.initContainers[0].envFrom[0].secretRef: expected a mapping"),
    ({"container": {"volumeMounts": [{"name": ["data"], "mountPath": "/data"}]}},
     "Deployment/web: spec.template.spec.initContainers[0].volumeMounts[0].name: expected a string"),
    ({"container": {"env": {"A": "b"}}}, "Deployment/web: spec.template.spec.initContainers[0].env: expected a list"),
    ({"container": {"env": [{"name": "A", "valueFrom": {"secretKeyRef": "db"}}]}},
     "Deployment/web: spec.template.spec.initContainers[0].env[0].valueFrom.secretKeyRef: expected a mapping"),
    ({"container": {"env": [{"name": 7, "value": "x"}]}},
     "Deployment/web: spec.template.spec.initContainers[0].env[0].name: expected a string"),
    ({"container": {"image": ["busybox"]}},
     "Deployment/web: spec.template.spec.initContainers[0].image: expected a string"),
    ({"pod": {"volumes": [{"name": ["data"], "emptyDir": {}}]}},
     "Deployment/web: spec.template.spec.volumes[0].name: expected a string"),
    ({"pod": {"initContainers": {"wait": 1}}}, "Deployment/web: spec.template.spec.initContainers: expected a list"),
    ({"kind": "Pod", "spec": {"initContainers": [{"name": "w", "envFrom": [{"configMapRef": "x"}]}]}},
     "Pod/web: spec.initContainers[0].envFrom[0].configMapRef: expected a mapping"),
]


@pytest.mark.parametrize(("change", "words"), BAD_INPUTS, ids=[words.split(": ", 1)[1] for _, words in BAD_INPUTS])
def test_a_badly_typed_manifest_is_one_line_exit_2(change: dict[str, Any], words: str, tmp_path: Path) -> None:
    container = {"name": "wait", "image": "busybox:1.36", **change.get("container", {}),
                 "command": ["sh", "-c", "until nc -z db 5432; do sleep 1; done"]}
    pod = {"initContainers": [container], "containers": [{"name": "app", "image": "app:1.0"}], **change.get("pod", {})}
    doc = {"apiVersion": "v1", "kind": change.get("kind", "Deployment"), "metadata": {"name": "web"},
           "spec": change.get("spec", {"template": {"spec": pod}})}
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = run_cli("import", str(manifest))
    assert result.code == 2 and result.stdout == "", result.output
    assert result.stderr == f"import: {words}\n", result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


@pytest.mark.parametrize("script", [
    "while nc -z db 5432; do sleep 1; done",        # waits while it is up: the opposite of a wait
    "until ! nc -z db 5432; do sleep 1; done",
    "until nc -z '$DB_HOST' 5432; do sleep 1; done",  # a literal $DB_HOST (single quotes), no variable
    "for i in $(seq 1 30); do nc -z db 5432 && break; sleep 2; done",  # gives up after 30 tries
    "until nc -z db 5432 || nc -z db2 5432; do sleep 1; done",
])
def test_what_is_no_plain_wait_runs_as_written(script: str, tmp_path: Path) -> None:
    imported = import_workload(_manifest(tmp_path, [{"name": "w", "image": "busybox", "command": ["sh", "-c", script]}]
                                         ).read_text())
    step, = _steps(imported.spec_text).values()
    assert _unescaped(step["command"]) == ["sh", "-c", script]


def test_a_script_that_goes_on_after_a_failure_is_not_split(tmp_path: Path) -> None:
    script = "mkdir -p /data\n./seed.sh\nchown -R 1000:1000 /data"
    imported = import_workload(_manifest(tmp_path, [{"name": "s", "image": "app", "command": ["sh", "-c", script]}]
                                         ).read_text(), replace_all=True)  # ./seed.sh is a file of the image
    assert imported.containers[0].outcome == "command"
    with_errexit = import_workload(_manifest(tmp_path, [{"name": "s", "image": "app",
                                                         "command": ["sh", "-ec", script]}]).read_text(),
                                   replace_all=True)
    assert with_errexit.containers[0].outcome == "split"
    assert [s.get("command") for s in _steps(with_errexit.spec_text).values()][1] == ["sh", "-ec", "./seed.sh"]


def test_the_spec_reads_the_variables_by_their_names_in_the_manifest() -> None:
    spec = import_workload((CORPUS / "migrations.yaml").read_text()).spec_text
    assert "${DB_PASSWORD}" in spec and "${POSTGRES_URL}" in spec  # render --into copies the env as it is


@pytest.mark.parametrize(("text", "expected"), [
    ("# yaml-language-server: $schema=x\n# imported by prefect-init import from Deployment/web "
     "(initContainers: perms, config)\nversion: 1\n", ("Deployment", "web", ["perms", "config"])),
    ("\n".join(["# a comment"] * 20) + "\n  #  Imported by prefect-init import from  Job/seed\n",
     ("Job", "seed", [])),
    ("version: 1\nname: web\n", None),
    ("\n".join(["# a comment"] * 30) + "\n# imported by prefect-init import from Pod/p (initContainers: a)\n", None),
])
def test_the_provenance_line_is_read_as_written_by_hand_too(text: str, expected: Any) -> None:
    assert parse_provenance(text) == expected


def test_several_workloads_without_workload_is_one_line_exit_2() -> None:
    result = run_cli("import", str(CORPUS / "helm-template-output.yaml"))
    assert result.code == 2 and result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--workload Deployment/release-api" in result.stderr and "--workload Job/release-seed" in result.stderr
    chosen = run_cli("import", str(CORPUS / "helm-template-output.yaml"), "--workload", "job/release-seed")
    assert chosen.code == 0, chosen.output
    assert chosen.stdout == (CORPUS / "helm-template-output.job-release-seed.spec.yaml").read_text()


@pytest.mark.parametrize(("text", "words"), [
    ("kind: Deployment\nmetadata: {name: web\n", "not valid YAML"),
    ("apiVersion: v1\nkind: Service\nmetadata: {name: web}\n", "no workload with initContainers"),
    ("- a\n- b\n", "not a Kubernetes manifest"),
])
def test_a_bad_manifest_is_one_line_exit_2(text: str, words: str, tmp_path: Path) -> None:
    manifest = tmp_path / "bad.yaml"
    manifest.write_text(text)
    result = run_cli("import", str(manifest))
    assert result.code == 2 and result.stdout == "", result.output
    assert len(result.stderr.strip().splitlines()) == 1 and words in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_an_unknown_workload_and_an_unwritable_output_are_one_line_exit_2(tmp_path: Path) -> None:
    manifest = str(CORPUS / "wait-for-services.yaml")
    result = run_cli("import", manifest, "--workload", "Deployment/nope")
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    (tmp_path / "a-file").write_text("")
    result = run_cli("import", manifest, "-o", str(tmp_path / "a-file" / "init.yaml"))
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output


def test_output_is_written_atomically_and_stdin_is_read(tmp_path: Path) -> None:
    manifest = CORPUS / "wait-for-services.yaml"
    spec = tmp_path / "init.yaml"
    spec.write_text("an older spec\n")
    result = run_cli("import", str(manifest), "-o", str(spec))
    assert result.code == 0 and result.stdout == "", result.output
    assert spec.read_text() == (CORPUS / "wait-for-services.spec.yaml").read_text()
    assert f"wrote {spec}" in result.stderr and [p.name for p in tmp_path.iterdir()] == ["init.yaml"]
    import subprocess
    import sys

    piped = subprocess.run([sys.executable, "-m", "prefect_init.cli", "import", "-"], input=manifest.read_text(),
                           capture_output=True, text=True, env=clean_env(), timeout=60)
    assert piped.returncode == 0 and piped.stdout == spec.read_text(), piped.stderr


def test_native_sidecars_are_left_out(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, [
        {"name": "proxy", "image": "envoyproxy/envoy:v1.29", "restartPolicy": "Always"},
        {"name": "wait", "image": "busybox:1.36", "command": ["sh", "-c", "until nc -z db 5432; do sleep 1; done"]},
    ])
    imported = import_workload(manifest.read_text())
    assert imported.init_containers == ["wait"] and list(_steps(imported.spec_text)) == ["wait"]
    assert "(initContainers: wait)" in imported.spec_text.splitlines()[1]
    assert any('"proxy": a sidecar' in note for note in imported.notes)


def test_a_variable_set_nowhere_is_one_the_init_container_must_be_given(tmp_path: Path) -> None:
    """`until nc -z $DB_HOST 5432` with DB_HOST in no env: the shell read it as empty, which no wait target takes;
    the spec reads ${DB_HOST} and says it must be given, and it passes check."""
    manifest = tmp_path / "w.yaml"
    manifest.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  initContainers:\n"
                        "    - name: wait\n      image: busybox\n"
                        "      command: [sh, -c, 'until nc -z $DB_HOST 5432; do sleep 2; done']\n"
                        "  containers: [{name: a, image: b}]\n")
    result = run_cli("import", str(manifest), "-o", str(tmp_path / "init.yaml"))
    assert result.code == 0, result.output
    assert _steps((tmp_path / "init.yaml").read_text())["wait"]["wait"] == [{"tcp": "${DB_HOST}:5432"}]
    assert "DB_HOST: set nowhere in the manifest" in result.stderr, result.stderr
    assert run_cli("check", str(tmp_path / "init.yaml"), "--unset-ok").code == 0


def test_a_yaml_bomb_is_refused_in_one_line(tmp_path: Path) -> None:
    from tests.render.test_into import BOMB

    (tmp_path / "bomb.yaml").write_text(BOMB)
    result = run_cli("import", str(tmp_path / "bomb.yaml"), timeout=30)
    assert result.code == 2, result.output
    assert result.stderr.splitlines() == [
        f"import: {tmp_path / 'bomb.yaml'}: refused: its aliases expand it by more than 1,000,000 values"], \
        result.stderr
