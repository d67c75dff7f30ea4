"""Spec loading through the real CLI: every bad spec gives exit 2 and one `SPEC:LINE: path: message` line."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from prefect_init.errors import SpecError
from prefect_init.kinds.wait.targets import TARGETS
from prefect_init.spec.load import parse_spec
from prefect_init.spec.model import FromFile, StepBase
from prefect_init.spec.registry import KINDS, kind_module
from tests.helpers import clean_env, run_cli, write_spec

GOOD_STEP = "  - name: a\n    command: [echo, a]\n"
SPEC_MD = Path(__file__).resolve().parents[2] / "docs" / "reference" / "spec.md"
"""The spec reference, kept true by the tests at the end of this file."""

# (case id, spec text, expected line, expected "path: message" fragment)
BAD_SPECS = [
    ("not-yaml", "version: 1\nname: x\nsteps: [\n  - {name: a", 4, "not valid YAML"),
    ("empty", "", 1, "the spec is empty"),
    ("not-a-mapping", "- just\n- a list\n", 1, "must be a mapping"),
    ("no-steps", "version: 1\nname: x\nsteps: []\n", 3, "steps: must not be empty"),
    ("missing-name", "version: 1\nsteps:\n" + GOOD_STEP, 1, "name: required"),
    ("bad-version", "version: 2\nname: x\nsteps:\n" + GOOD_STEP, 1, "version: expected 1"),
    ("bad-spec-name", "version: 1\nname: My_App\nsteps:\n" + GOOD_STEP, 2, "name: must be 1-63 lowercase"),
    ("own-validator", "version: 1\nname: x\nsteps:\n  - name: a\n    git: {repo: 'git@example.com:a/b.git', "
     "dest: /src}\n", 5, "steps[0].git: an ssh remote needs known_hosts"),
    ("unknown-kind", "version: 1\nname: x\nsteps:\n  - name: a\n    shell: ls\n", 5,
     "steps[0].shell: unknown step kind or key"),
    ("no-kind", "version: 1\nname: x\nsteps:\n  - name: a\n", 4, "steps[0]: a step needs one kind key"),
    ("two-kinds", "version: 1\nname: x\nsteps:\n  - name: a\n    command: [ls]\n    files: {}\n", 4,
     "steps[0]: a step has exactly one kind key, found 2: command, files"),
    ("duplicate-names", "version: 1\nname: x\nsteps:\n" + GOOD_STEP + GOOD_STEP, 6,
     "steps[1].name: duplicate step name 'a'"),
    ("cycle", "version: 1\nname: x\nsteps:\n  - name: a\n    after: [b]\n    command: [ls]\n"
     "  - name: b\n    after: [a]\n    command: [ls]\n", 5, "steps[0].after: cycle: a -> b -> a"),
    ("unknown-after", "version: 1\nname: x\nsteps:\n  - name: a\n    after: [nope]\n    command: [ls]\n", 5,
     "steps[0].after[0]: unknown step 'nope'"),
    ("self-after", "version: 1\nname: x\nsteps:\n  - name: a\n    after: [a]\n    command: [ls]\n", 5,
     "steps[0].after[0]: a step cannot come after itself"),
    ("bad-duration", "version: 1\nname: x\nsteps:\n  - name: a\n    timeout: 5 minutes\n    command: [ls]\n", 5,
     "steps[0].timeout: expected a duration"),
    ("bad-default-duration", "version: 1\nname: x\ndefaults:\n  retry_delay: soon\nsteps:\n" + GOOD_STEP, 4,
     "defaults.retry_delay: expected a duration"),
    ("negative-retries", "version: 1\nname: x\ndefaults: {retries: -1}\nsteps:\n" + GOOD_STEP, 3,
     "defaults.retries: must be at least 0"),
    ("bad-mode", "version: 1\nname: x\nsteps:\n  - name: a\n    files:\n      dirs:\n        - path: /tmp/x\n"
     "          mode: 0755\n", 8, 'steps[0].files.dirs[0].mode: expected an octal mode as a quoted string'),
    ("bad-mode-digits", "version: 1\nname: x\nsteps:\n  - name: a\n    files:\n      dirs:\n"
     '        - {path: /tmp/x, mode: "0999"}\n', 7, "steps[0].files.dirs[0].mode: expected an octal mode"),
    ("bad-owner", "version: 1\nname: x\nsteps:\n  - name: a\n    files:\n      dirs:\n"
     '        - {path: /tmp/x, owner: "1:2:3"}\n', 7, 'steps[0].files.dirs[0].owner: expected "uid:gid"'),
    ("unset-variable", "version: 1\nname: x\nsteps:\n  - name: a\n    command: [echo, '${PI_TEST_UNSET}']\n", 5,
     "steps[0].command[1]: environment variable PI_TEST_UNSET is not set"),
    ("malformed-reference", "version: 1\nname: x\nsteps:\n  - name: a\n    command: [echo, '${not a var}']\n", 5,
     "steps[0].command[1]: malformed ${...} reference"),
    ("wrong-type-retries", "version: 1\nname: x\nsteps:\n  - name: a\n    retries: many\n    command: [ls]\n", 5,
     "steps[0].retries: expected a whole number"),
    ("wrong-type-command", "version: 1\nname: x\nsteps:\n  - name: a\n    command: {run: ls}\n", 5,
     "steps[0].command: expected a list, like [a, b]"),
    ("wrong-type-steps", "version: 1\nname: x\nsteps: {a: 1}\n", 3, "steps: expected a list, like [a, b]"),
    ("step-not-mapping", "version: 1\nname: x\nsteps:\n  - just-a-string\n", 4, "steps[0]: a step must be a mapping"),
    ("unknown-top-key", "version: 1\nname: x\nstatus_fiel: /tmp/s.json\nsteps:\n" + GOOD_STEP, 3,
     "status_fiel: unknown key"),
    ("unknown-step-key", "version: 1\nname: x\nsteps:\n  - name: a\n    retrys: 3\n    command: [ls]\n", 5,
     "steps[0].retrys: unknown key"),
    ("unknown-nested-key", "version: 1\nname: x\nsteps:\n  - name: a\n    files:\n      dirs:\n"
     "        - {path: /tmp/x, mod: '0755'}\n", 7, "steps[0].files.dirs[0].mod: unknown key"),
    ("duplicate-key", "version: 1\nname: x\nname: y\nsteps:\n" + GOOD_STEP, 3, "name: duplicate key"),
    ("bad-step-name", "version: 1\nname: x\nsteps:\n  - name: Build_It\n    command: [ls]\n", 4,
     "steps[0].name: must be 1-63 lowercase"),
    ("empty-command", "version: 1\nname: x\nsteps:\n  - name: a\n    command: []\n", 5,
     "steps[0].command: must not be empty"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), [c[1:] for c in BAD_SPECS], ids=[c[0] for c in BAD_SPECS])
def test_bad_spec_exits_2_with_one_line_per_problem(tmp_path: Path, text: str, line: int, fragment: str) -> None:
    spec = tmp_path / "init.yaml"
    spec.write_text(text)
    for command in ("check", "run"):
        result = run_cli(command, str(spec))
        assert result.code == 2, result.output
        assert "Traceback" not in result.output
        lines = result.stderr.strip().splitlines()
        assert lines, "no error printed"
        assert all(re.match(rf"^{re.escape(str(spec))}:\d+: ", ln) for ln in lines), lines
        assert any(ln.startswith(f"{spec}:{line}: ") and fragment in ln for ln in lines), lines


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: x
        steps:
          - name: a
            retrys: 1
            command: [ls]
          - name: b
            timeout: forever
            command: [ls]
          - name: c
            files: {dirs: [{path: /x, mode: 755}]}
    """)
    result = run_cli("check", str(spec))
    assert result.code == 2
    lines = result.stderr.strip().splitlines()
    assert [ln.split(": ")[1] for ln in lines] == ["steps[0].retrys", "steps[1].timeout", "steps[2].files.dirs[0].mode"]


def test_missing_spec_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("run", str(tmp_path / "nope.yaml"))
    assert result.code == 2
    assert result.stderr.strip() == f"{tmp_path / 'nope.yaml'}: cannot read the spec: No such file or directory"


def test_unknown_option_and_only_are_usage_errors(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "version: 1\nname: x\nsteps:\n" + GOOD_STEP)
    assert run_cli("run", str(spec), "--bogus").code == 2
    result = run_cli("run", str(spec), "--only", "zzz")
    assert result.code == 2
    assert result.stderr.strip() == "--only: unknown step 'zzz' (steps: a)"


def test_variables_defaults_and_literal_dollar() -> None:
    text = """
version: 1
name: x
defaults: {timeout: "${PI_TIMEOUT:-90s}"}
steps:
  - name: a
    command: [echo, "${PI_USER}", "${PI_MISSING:-fallback}", "$${NOT_EXPANDED}", "cost: $5"]
"""
    spec = parse_spec(text, "t.yaml", env={"PI_USER": "alice"})
    assert spec.defaults.timeout == 90.0
    assert spec.steps[0].command == ["echo", "alice", "fallback", "${NOT_EXPANDED}", "cost: $5"]  # type: ignore[attr-defined]


def test_variable_value_cannot_inject_yaml_structure() -> None:
    text = "version: 1\nname: x\nsteps:\n  - name: a\n    command: [echo, '${PI_V}']\n"
    spec = parse_spec(text, "t.yaml", env={"PI_V": "x]\n  - name: evil\n    command: [rm"})
    assert len(spec.steps) == 1
    assert spec.steps[0].command[1].startswith("x]")  # type: ignore[attr-defined]


def test_durations_and_defaults_inheritance() -> None:
    text = """
version: 1
name: x
defaults: {timeout: 2m, retries: 4, retry_delay: 250ms, max_retry_delay: 1h}
steps:
  - name: a
    command: [ls]
  - name: b
    timeout: 1.5
    retries: 0
    command: [ls]
"""
    spec = parse_spec(text, "t.yaml", env={})
    a, b = (spec.policy(s) for s in spec.steps)
    assert (a.timeout, a.retries, a.retry_delay, a.max_retry_delay) == (120.0, 4, 0.25, 3600.0)
    assert (b.timeout, b.retries) == (1.5, 0)


def test_error_never_echoes_the_value(tmp_path: Path) -> None:
    """A wrong value that came from the environment (it may be a secret) is not repeated in the error."""
    spec = write_spec(tmp_path, """
        version: 1
        name: x
        steps:
          - name: a
            retries: "${PI_SECRETISH}"
            command: [ls]
    """)
    result = run_cli("check", str(spec), env=clean_env(PI_SECRETISH="canary-hunter2-value"))
    assert result.code == 2
    assert result.stderr.splitlines() == [
        f"{spec}:5: steps[0].retries: expected a whole number"]
    assert "canary-hunter2-value" not in result.output


def test_spec_error_type_lists_problems() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec("version: 1\nname: x\nsteps: []\n", "t.yaml", env={})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].line == 3


def _spec_md() -> str:
    """The repository's spec reference; missing is a failure, not a skip."""
    assert SPEC_MD.is_file(), f"{SPEC_MD} is missing: the spec reference belongs to the repository"
    return SPEC_MD.read_text(encoding="utf-8")


def _whole_specs(text: str) -> list[str]:
    """The ```yaml blocks that are a whole spec (with top-level ``version:`` and ``steps:``), not a step snippet."""
    blocks = re.findall(r"^```yaml\n(.*?)^```", text, re.S | re.M)
    return [b for b in blocks if re.search(r"^version:", b, re.M) and re.search(r"^steps:", b, re.M)]


def _section(key: str) -> str | None:
    """The section of docs/reference/spec.md whose heading holds `key` (in backticks), down to the next heading of
    its level or higher; code blocks are blanked first, so a ``# comment`` in YAML is no heading."""
    text = re.sub(r"^```.*?^```", lambda m: "\n" * m.group(0).count("\n"), _spec_md(), flags=re.S | re.M)
    lines = text.splitlines()
    levels = [len(m.group(1)) if (m := re.match(r"^(#{1,6}) ", line)) else 0 for line in lines]
    for index, line in enumerate(lines):
        if levels[index] and f"`{key}`" in line:
            end = next((j for j in range(index + 1, len(lines)) if 0 < levels[j] <= levels[index]), len(lines))
            return "\n".join(lines[index:end])
    return None


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models inside a field's type (through lists, dicts, unions and Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models_in(arg)]


def _keys(model: type[BaseModel], skip: frozenset[str] = frozenset()) -> set[str]:
    """Every key a spec may write in ``model``, nested models included (``{file: ...}`` is documented once)."""
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        keys.add(info.alias or name)
        for nested in _models_in(info.annotation):
            if nested is not FromFile:
                keys |= _keys(nested)
    return keys


def test_the_example_of_spec_md_is_valid(tmp_path: Path) -> None:
    """Every whole spec in docs/reference/spec.md (its complete example) passes `prefect-init check`, variables
    unset but the two it names."""
    specs = _whole_specs(_spec_md())
    assert specs, "docs/reference/spec.md has no complete example (a ```yaml block with version: and steps:)"
    for number, text in enumerate(specs, 1):
        spec = tmp_path / f"example-{number}.yaml"
        spec.write_text(text)
        result = run_cli("check", str(spec), env=clean_env(DATABASE_URL="postgres://app:pw@db:5432/app",
                                                           VAULT_ADDR="http://vault:8200"))
        assert result.code == 0, f"example {number} of docs/reference/spec.md:\n{result.stderr}"
        assert "steps in" in result.stdout


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_step_kind_has_a_section_in_spec_md(kind: str) -> None:
    """A kind added to the registry without its reference fails here."""
    assert _section(kind) is not None, \
        f"docs/reference/spec.md has no section for the step kind {kind!r} (a heading with `{kind}`)"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_wait_target_has_a_section_in_spec_md(target: str) -> None:
    section = _section("wait")
    assert section is not None and re.search(rf"^#+ .*`{re.escape(target)}`", section, re.M), \
        f"docs/reference/spec.md's `wait` section has no heading for the wait target {target!r}"


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_key_of_a_step_kind_is_in_its_section(kind: str) -> None:
    """Each key of a kind (and of its wait targets) is named in its section: `key`, or a path ending in it
    (`dirs[].path`, `kubernetes.role`). The keys every step has are documented once, above the kinds."""
    section = _section(kind) or ""
    keys = _keys(kind_module(kind).Step, skip=frozenset(StepBase.model_fields))
    missing = sorted(k for k in keys if not re.search(rf"`(?:[\w\[\]]+\.)*{re.escape(k)}`", section))
    assert not missing, f"docs/reference/spec.md's section on `{kind}` does not name: {', '.join(missing)}"


PYDANTIC_WORDS = ("Input should", "should have", "String should", "Value should", "Field required", "valid integer",
                  "Value error", "Assertion failed", "validation error", "errors.pydantic.dev")


def test_every_problem_at_once_ordered_by_line(tmp_path: Path) -> None:
    """A misspelt key, an unquoted mode and a cycle: three lines, by line, in one run (the cycle used to wait
    until the other two were fixed)."""
    spec = write_spec(tmp_path, """
        version: 1
        name: x
        steps:
          - name: a
            after: [c]
            comand: [echo]
          - name: b
            after: [a]
            files: {dirs: [{path: /d, mode: 755}]}
          - name: c
            after: [b]
            command: [echo]
        """)
    result = run_cli("check", str(spec))
    assert result.code == 2
    assert [line.split(": ", 2)[:2] for line in result.stderr.splitlines()] == [
        [f"{spec}:5", "steps[0].after"], [f"{spec}:6", "steps[0].comand"], [f"{spec}:9", "steps[1].files.dirs[0].mode"]]
    assert "cycle: a -> c -> b -> a" in result.stderr


@pytest.mark.parametrize(("yaml_value", "words"), [
    ("command: [true]", 'steps[0].command[0]: expected text (quote it: "true")'),
    ("command: true", "steps[0].command: expected a list, like [a, b] (a command is a list of its arguments"),
    ("vault: {address: vault:8200, secrets: [{path: a, dest: /b}]}",
     "steps[0].vault.address: expected an http:// or https:// URL"),
    ("vault: {secrets: [{path: a, dest: /b, format: xml}]}",
     "steps[0].vault.secrets[0].format: expected json, env or yaml"),
    ("migrate: {database: x, dir: m, table: bad-name}", "steps[0].migrate.table: expected an SQL name"),
    ("wait: [{tcp: db:5432, timeout: soon}]", "steps[0].wait[0].timeout: expected a duration"),
    ("git: {repo: x, dest: /r, depth: 0}", "steps[0].git.depth: must be at least 1"),
])
def test_messages_in_words(tmp_path: Path, yaml_value: str, words: str) -> None:
    spec = write_spec(tmp_path, f"version: 1\nname: x\nsteps:\n  - name: a\n    {yaml_value}\n")
    result = run_cli("check", str(spec))
    assert result.code == 2 and words in result.stderr, result.stderr
    assert not any(w in result.stderr for w in PYDANTIC_WORDS), result.stderr


def test_no_bad_spec_is_told_in_a_validators_words(tmp_path: Path) -> None:
    for case, text, _, _ in BAD_SPECS:
        result = run_cli("check", str(write_spec(tmp_path, text, name=f"{case}.yaml")))
        assert not any(w in result.stderr for w in PYDANTIC_WORDS), (case, result.stderr)


def test_every_pattern_of_a_model_has_its_words() -> None:
    """A pattern added to a model without words would print the regular expression's failure."""
    from prefect_init.spec.load import _PATTERNS
    from prefect_init.spec.registry import KINDS, kind_module

    found: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("pattern"), str):
                found.add(node["pattern"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for kind in KINDS:
        walk(kind_module(kind).Step.model_json_schema(mode="validation"))
    assert found and found <= set(_PATTERNS), found - set(_PATTERNS)
