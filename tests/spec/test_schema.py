"""The JSON Schema of a spec (schemas/prefect-init.schema.json, for editors): made from the models and checked in
without drift, valid for every spec the repository has, never stricter than the loader, and still refusing what
is wrong in a spec's structure."""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from prefect_init.errors import SpecError
from prefect_init.kinds.wait.targets import TARGETS
from prefect_init.spec.load import parse_spec
from prefect_init.spec.registry import KINDS
from prefect_init.spec.schema import SCHEMA_FILE, _generate, schema_text, spec_schema
from tests.spec.test_model import BAD_SPECS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
MODELINE = "# yaml-language-server: $schema=../schemas/prefect-init.schema.json\n"


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(spec_schema())


def _errors(data: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path)) or '<top>'}: {e.message[:200]}"
            for e in _validator().iter_errors(data)]


def _loads(text: str) -> bool:
    """Does the loader take ``text``? A variable is not set here: like ``render``, the loader leaves a value that
    names one to be checked where it is set (the fuzz test below sets it)."""
    try:
        parse_spec(text, "t.yaml", env={}, defer_unset=True)
    except SpecError:
        return False
    return True


# --- (a) the checked-in file is what the models make ------------------------------------------------------------

def test_checked_in_schema_matches_the_models() -> None:
    assert SCHEMA_FILE == ROOT / "schemas" / "prefect-init.schema.json"
    assert SCHEMA_FILE.is_file(), \
        "schemas/prefect-init.schema.json is missing: python -m prefect_init.spec.schema --write"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == schema_text(), \
        "schemas/prefect-init.schema.json is stale (a model changed): regenerate with " \
        "`python -m prefect_init.spec.schema --write` and commit it"


def test_schema_is_a_valid_draft_2020_12_schema_of_every_kind_and_target() -> None:
    schema = spec_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "prefect-init spec" and "$id" not in schema
    steps = schema["properties"]["steps"]["items"]["oneOf"]
    assert [s["$ref"] for s in steps] == [f"#/$defs/{kind}_step" for kind in KINDS]
    targets = schema["$defs"]["wait_step"]["properties"]["wait"]["items"]["oneOf"]
    assert [t["$ref"] for t in targets] == [f"#/$defs/wait_target_{key}" for key in TARGETS]
    assert set(schema["properties"]) == {"version", "name", "tags", "defaults", "status_file", "steps"}
    assert "validate" in schema["$defs"]["validate_step"]["properties"]  # aliases as a spec writes them
    assert "schema" in schema["$defs"]["ConfigSpec"]["properties"]
    assert schema["$defs"]["ConfigSpec"]["properties"]["mode"]["default"] == "0644"  # not 420


def test_every_before_validator_is_known_to_the_schema() -> None:
    """A BeforeValidator widens what a field takes (a duration's "5m" for a float): one the schema does not know
    would make it stricter than the loader. Teach it in prefect_init.spec.schema._BEFORE."""
    assert _generate()[1] == []


def test_descriptions_come_from_the_models() -> None:
    defs = spec_schema()["$defs"]
    assert defs["config_step"]["properties"]["config"]["description"].startswith("The `config` step: ")
    assert "warning" in defs["files_step"]["properties"]["optional"]["description"]  # a field's docstring
    assert defs["FileEntry"]["properties"]["content"]["description"].startswith("Created with this content")
    assert defs["PrefectRun"]["properties"]["deployment"]["description"] == "FLOW/DEPLOYMENT"
    assert "250ms" in defs["Defaults"]["properties"]["timeout"]["description"]


def test_main_prints_the_schema_and_writes_only_with_write(capsys: pytest.CaptureFixture[str]) -> None:
    from prefect_init.spec.schema import main

    assert main([]) == 0
    assert capsys.readouterr().out == schema_text()
    assert main(["--bogus"]) == 2


def test_the_cli_prints_the_schema_a_validator_uses() -> None:
    """``prefect-init schema > file`` is the checked-in schema, and a real validator reads it."""
    from tests.helpers import run_cli

    result = run_cli("schema")
    assert result.code == 0, result.output
    assert result.stdout == SCHEMA_FILE.read_text(encoding="utf-8")
    printed = Draft202012Validator(json.loads(result.stdout))
    assert not list(printed.iter_errors(yaml.safe_load(EXAMPLES[0].read_text(encoding="utf-8"))))
    assert list(printed.iter_errors({"version": 1, "name": "x", "steps": [{"name": "a", "comand": ["x"]}]}))


# --- (b) every spec of the repository is valid ---------------------------------------------------------------

def _repository_specs() -> list[tuple[str, str]]:
    specs = [(str(p.relative_to(ROOT)), p.read_text(encoding="utf-8")) for p in EXAMPLES]
    prefect = yaml.safe_load((ROOT / "deployments" / "prefect.yaml").read_text(encoding="utf-8"))
    specs += [(f"deployments/prefect.yaml: {d['name']} spec_text", d["parameters"]["spec_text"])
              for d in prefect["deployments"]]
    for manifest in sorted((ROOT / "deployments" / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(manifest.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
                for key, text in (doc.get("data") or {}).items():
                    data = yaml.safe_load(text) if key.endswith((".yaml", ".yml")) else None
                    if isinstance(data, dict) and "version" in data and "steps" in data:
                        specs.append((f"{manifest.relative_to(ROOT)}: {doc['metadata']['name']} {key}", text))
    spec_md = (ROOT / "docs" / "reference" / "spec.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```yaml\n(.*?)^```", spec_md, re.S | re.M)
    specs += [(f"docs/reference/spec.md, whole spec {n}", b) for n, b in enumerate(
        (b for b in blocks if re.search(r"^version:", b, re.M) and re.search(r"^steps:", b, re.M)), 1)]
    return specs


SPECS = _repository_specs()


def test_the_repository_has_the_specs_the_schema_is_checked_on() -> None:
    names = [name for name, _ in SPECS]
    assert len(EXAMPLES) >= 3 and any("spec_text" in n for n in names)
    assert any("docs/reference/spec.md" in n for n in names)
    assert sum("deployments/k8s/" in n and "init.yaml" in n for n in names) >= 3, names


@pytest.mark.parametrize(("name", "text"), SPECS, ids=[name for name, _ in SPECS])
def test_every_spec_of_the_repository_is_valid(name: str, text: str) -> None:
    assert _loads(text), f"{name}: the loader refuses it"
    errors = _errors(yaml.safe_load(text))
    assert not errors, f"{name}:\n" + "\n".join(errors)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_name_the_schema_on_their_first_line(example: Path) -> None:
    text = example.read_text(encoding="utf-8")
    assert text.startswith(MODELINE), f"{example.name}: the first line is not {MODELINE.strip()!r}"
    assert (example.parent / "../schemas/prefect-init.schema.json").resolve() == SCHEMA_FILE


# --- never stricter than the loader ---------------------------------------------------------------------------

SPEC = "version: 1\nname: x\nsteps:\n  - name: a\n"


@pytest.mark.parametrize("step", [
    "retries: ${X}\n    command: [ls]",                       # a number from a variable
    "retries: '3'\n    timeout: ${X}m\n    command: [ls]",     # quoted numbers, a duration made of a variable
    "timeout: 1.5m\n    retry_delay: 250ms\n    max_retry_delay: 90\n    command: ls -l",
    "command: [ls]\n    kill_grace: ' 2 s '",
    "git: {repo: x, dest: /r, depth: '1', submodules: 'yes'}",
    "git: {repo: x, dest: /r, depth: '${X}', submodules: '${X}'}",
    "git: {repo: x, dest: /r, submodules: 0}",
    "config: {url: '${X}', dest: /c, format: '${X}', max_bytes: 10MiB, mode: '0o644', request_timeout: 2}",
    "config: {url: 'file:///c', dest: /c, max_bytes: 1000, mode: '644', sha256: '${X}'}",
    "files: {dirs: [{path: /d, mode: '${X}', owner: '${X}'}, {path: /e, mode: '2775', owner: 'www-data'}]}",
    "vault: {address: '${X}', secrets: [{path: '${X}', dest: /s, version: '2', format: '${X}'}]}",
    "migrate: {database: x, dir: /m, table: '${X}', target: '${X}'}",
    "wait: [{tcp: 'db:5432', timeout: '${X}'}, {http: '${X}/health', status: ['200']}]\n    interval: ${X}",
    "wait: [{prefect_run: {deployment: '${X}', tag: t}}, {migrations: {database: x, version: '5'}}]",
    "wait: [{file: /r, non_empty: 'True'}]",
])
def test_values_the_loader_takes_are_valid(step: str) -> None:
    text = f"{SPEC}    {step}\n"
    assert _loads(text), text
    assert not _errors(yaml.safe_load(text)), (text, _errors(yaml.safe_load(text)))


RICH = """
version: 1
name: rich
tags: [team-web, "${X:-x}"]
defaults: {timeout: 5m, retries: 2, retry_delay: 1s, max_retry_delay: 30s}
status_file: /tmp/status.json
steps:
  - name: wait
    timeout: 2m
    retries: 1
    retry_delay: 250ms
    max_retry_delay: 2s
    optional: false
    interval: 25ms
    max_interval: 250ms
    attempt_timeout: 1s
    wait:
      - {tcp: "db:5432", timeout: 30s}
      - {http: "http://es:9200/health", status: [200], json: {status: [green]}, contains: ok, headers: {A: b},
         ca_cert: /ca.pem, insecure: false}
      - {postgres: "postgres://a:b@db/app", sql: SELECT 1}
      - {redis: "redis://r:6379/0"}
      - {dns: db.default.svc}
      - {file: /ready, non_empty: true}
      - {migrations: {database: "postgres://db/app", version: "5", table: hist, schema: public}}
      - {prefect_run: {deployment: a/b, tag: t, api_url: "http://p:4200/api"}}
  - name: secrets
    after: [wait]
    vault:
      address: http://vault:8200
      namespace: ns
      ca_cert: /ca
      insecure: false
      auth: {approle: {role_id: r, secret_id: {file: /s}, mount: approle}}
      secrets:
        - {path: secret/data/app, version: 2, keys: [a, {b: c}], required: [a], dest: /s/app.json, format: json,
           mode: "0400", owner: "1000:1000"}
      revoke_token: true
      request_timeout: 10s
  - name: config
    config: {url: "http://c/app", dest: /c/app.yaml, format: yaml, headers: {A: {file: /t}}, request_timeout: 30s,
             max_bytes: 10MiB, sha256: "%s", required: [a.b], schema: /s.json, mode: "0644",
             follow_redirects: false, ca_cert: /ca, insecure: false}
  - name: validate
    validate: {file: [/a.json], format: json, required: [a], schema: /s.json, non_empty: true}
  - name: migrate
    migrate: {database: "postgres://db/app", dir: /m, table: hist, schema: public, target: "5", out_of_order: false,
              allow_changed: false, allow_missing: false, baseline: "2"}
  - name: migrate-tool
    migrate: {database: x, command: [manage, migrate], version: "1", cwd: /w, env: {A: b}, flyway_table: fh}
  - name: clone
    git: {repo: "https://g/x.git", ref: main, dest: /repo, depth: 1, username: u, password: {file: /p},
          submodules: false, sparse: [docs]}
  - name: files
    files: {dirs: [{path: /d, mode: "0755", owner: "1000"}], files: [{path: /f, mode: "644", content: hi}]}
  - name: build
    command: npm run build
    cwd: /repo
    env: {NODE_ENV: production}
    kill_grace: 5s
  - name: tpl
    template: {inline: x, dest: /o, mode: "0600", vars: {a: b}, secrets: {s: {file: /s}}, files: {f: /f}}
  - name: tpls
    templates: [{source: /t.j2, dest: /o2}]
""" % ("a" * 64)


def _leaves(data: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(data, dict):
        return [p for key, value in data.items() for p in _leaves(value, (*path, key))]
    if isinstance(data, list):
        return [p for index, value in enumerate(data) for p in _leaves(value, (*path, index))]
    return [path]


def _replace(data: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        return {**data, head: _replace(data[head], rest, value)}
    return [*data[:head], _replace(data[head], rest, value), *data[head + 1:]]


def _get(data: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        data = data[part]
    return data


RICH_DATA = yaml.safe_load(RICH)
LEAVES = _leaves(RICH_DATA)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-5, 10**4), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
    st.sampled_from(["1", " 2 ", "+3", "5.0", "1_000", "-1", "1e3", ".5", "true", "False", "yes", "OFF", "n", "0",
                     "${X}", "${X:-3}", "x${X}", "$${X}", "5m", "250 ms", "1.5h", "10MiB", "2 KB", "0644", "0o755",
                     "755", "0999", "json", "yaml", "env", "auto", "flyway", "http://a", "file:///a", "db:5432",
                     "1000:1000", "root", "a/b", "5", "1.2", "2_1", "public", "My_App", "a" * 64]))


def test_the_rich_spec_is_valid() -> None:
    assert _loads(RICH)
    assert not _errors(RICH_DATA)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(path=st.sampled_from(LEAVES), value=SCALARS,
       variable=st.sampled_from(["1", "3", "true", "json", "5m", "0644", "http://x", "10MiB", "my-app"]))
def test_any_value_the_loader_takes_is_valid(path: tuple[Any, ...], value: Any, variable: str) -> None:
    """The property "not stricter than the loader": a value at any place of a spec that uses every key, which the
    loader takes (with ``X`` set), is valid in the schema. The one exception on purpose: a boolean for a number
    (`retries: true` is 1 to pydantic; an editor offering true/false for `retries` would help nobody)."""
    original = _get(RICH_DATA, path)
    if isinstance(value, bool) and isinstance(original, int | float) and not isinstance(original, bool):
        return
    data = _replace(RICH_DATA, path, value)
    try:
        parse_spec(yaml.safe_dump(data, sort_keys=False), "t.yaml", env={"X": variable})
    except SpecError:
        return  # the loader refuses it: the schema may or may not
    assert not _errors(data), (path, value, variable, _errors(data))


# --- (c) what is wrong in a spec's structure is refused ----------------------------------------------------------

BAD = [
    ("unknown-top-level-key", "version: 1\nname: x\ntimeout: 5m\nsteps:\n  - {name: a, command: [ls]}\n"),
    ("two-kinds", "version: 1\nname: x\nsteps:\n  - {name: a, command: [ls], git: {repo: x, dest: /r}}\n"),
    ("no-kind", "version: 1\nname: x\nsteps:\n  - {name: a, retries: 1}\n"),
    ("misspelt-key-in-a-kind", "version: 1\nname: x\nsteps:\n  - name: a\n    config: {url: 'http://c', dest: /c, "
                               "formt: yaml}\n"),
    ("misspelt-step-key", "version: 1\nname: x\nsteps:\n  - {name: a, retrys: 1, command: [ls]}\n"),
    ("wrong-type", "version: 1\nname: x\nsteps:\n  - {name: a, retries: many, command: [ls]}\n"),
    ("wrong-type-in-a-kind", "version: 1\nname: x\nsteps:\n  - {name: a, git: {repo: x, dest: /r, depth: deep}}\n"),
    ("mode-as-a-number", "version: 1\nname: x\nsteps:\n  - {name: a, files: {dirs: [{path: /d, mode: 755}]}}\n"),
    ("mode-unquoted-octal", "version: 1\nname: x\nsteps:\n  - {name: a, files: {dirs: [{path: /d, mode: 0755}]}}\n"),
    ("missing-name", "version: 1\nsteps:\n  - {name: a, command: [ls]}\n"),
    ("missing-step-name", "version: 1\nname: x\nsteps:\n  - {command: [ls]}\n"),
    ("missing-version", "name: x\nsteps:\n  - {name: a, command: [ls]}\n"),
    ("version-as-text", "version: '1'\nname: x\nsteps:\n  - {name: a, command: [ls]}\n"),
    ("optional-yes-quoted", "version: 1\nname: x\nsteps:\n  - {name: a, optional: 'yes', command: [ls]}\n"),
    ("bad-duration", "version: 1\nname: x\nsteps:\n  - {name: a, timeout: 1h30m, command: [ls]}\n"),
    ("bad-size", "version: 1\nname: x\nsteps:\n  - {name: a, config: {url: 'http://c', dest: /c, max_bytes: 1TB}}\n"),
    ("bad-choice", "version: 1\nname: x\nsteps:\n  - {name: a, validate: {file: /f, format: xml}}\n"),
    ("wait-target-with-two-keys", "version: 1\nname: x\nsteps:\n  - {name: a, wait: [{tcp: 'd:1', dns: d}]}\n"),
    ("wait-target-unknown", "version: 1\nname: x\nsteps:\n  - {name: a, wait: [{ftp: 'd:1'}]}\n"),
    ("kind-not-a-mapping", "version: 1\nname: x\nsteps:\n  - {name: a, files: [/d]}\n"),
]


@pytest.mark.parametrize(("case", "text"), BAD, ids=[c for c, _ in BAD])
def test_bad_specs_are_invalid(case: str, text: str) -> None:
    assert not _loads(text), f"{case}: the loader takes it (so the schema must too)"
    assert _errors(yaml.safe_load(text)), f"{case}: valid in the schema"


LOADER_ONLY = {
    "not-yaml": "not YAML at all: an editor says so itself",
    "duplicate-key": "YAML keeps the last; the loader refuses duplicates",
    "duplicate-names": "names unique across steps", "cycle": "the plan", "unknown-after": "the plan",
    "self-after": "the plan", "unset-variable": "the environment", "malformed-reference": "a ${...} is text",
    "own-validator": "a model's own cross-field rule (an ssh remote needs known_hosts), not in the schema",
}
"""The bad specs of test_model.py that only the loader can see (the plan, the environment, YAML itself)."""


def test_the_bad_specs_of_the_loader_are_invalid_in_the_schema() -> None:
    """Every bad spec of tests/spec/test_model.py (BAD_SPECS) is refused by the schema too, but those refused for
    what a schema does not see. A new bad spec there is checked here at once."""
    cases = {case: text for case, text, _, _ in BAD_SPECS}
    assert set(LOADER_ONLY) <= set(cases), set(LOADER_ONLY) - set(cases)
    passed = []
    for case, text in cases.items():
        if case in LOADER_ONLY:
            continue
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:  # pragma: no cover - only not-yaml, listed above
            passed.append(f"{case}: not YAML")
            continue
        if not _errors(data):
            passed.append(case)
    assert not passed, f"valid in the schema though the loader refuses them: {passed}"
