"""Spec loading through the real CLI: every bad spec gives exit 2 and one `SPEC:LINE: path: message` line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from prefect_init.errors import SpecError
from prefect_init.spec.load import parse_spec
from tests.helpers import clean_env, run_cli, write_spec

GOOD_STEP = "  - name: a\n    command: [echo, a]\n"

# (case id, spec text, expected line, expected "path: message" fragment)
BAD_SPECS = [
    ("not-yaml", "version: 1\nname: x\nsteps: [\n  - {name: a", 4, "not valid YAML"),
    ("empty", "", 1, "the spec is empty"),
    ("not-a-mapping", "- just\n- a list\n", 1, "must be a mapping"),
    ("no-steps", "version: 1\nname: x\nsteps: []\n", 3, "steps: List should have at least 1 item"),
    ("missing-name", "version: 1\nsteps:\n" + GOOD_STEP, 1, "name: required"),
    ("bad-version", "version: 2\nname: x\nsteps:\n" + GOOD_STEP, 1, "version: Input should be 1"),
    ("bad-spec-name", "version: 1\nname: My_App\nsteps:\n" + GOOD_STEP, 2, "name: must be 1-63 lowercase"),
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
     "defaults.retries: Input should be greater than or equal to 0"),
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
     "steps[0].retries: Input should be a valid integer"),
    ("wrong-type-command", "version: 1\nname: x\nsteps:\n  - name: a\n    command: {run: ls}\n", 5,
     "steps[0].command: Input should be a valid list"),
    ("wrong-type-steps", "version: 1\nname: x\nsteps: {a: 1}\n", 3, "steps: Input should be a valid list"),
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
     "steps[0].command: Value should have at least 1 item"),
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
        f"{spec}:5: steps[0].retries: Input should be a valid integer, unable to parse string as an integer"]
    assert "canary-hunter2-value" not in result.output


def test_spec_error_type_lists_problems() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec("version: 1\nname: x\nsteps: []\n", "t.yaml", env={})
    assert len(info.value.problems) == 1
    assert info.value.problems[0].line == 3


def test_the_example_of_spec_md_is_valid(tmp_path: Path) -> None:
    """../shared/design/spec.md's example must stay true (it sits beside the checkout, as in CI)."""
    design = Path(__file__).resolve().parents[3] / "shared" / "design" / "spec.md"
    if not design.exists():
        pytest.skip("shared/design/spec.md is not beside this checkout")
    blocks = re.findall(r"```yaml\n(.*?)```", design.read_text(), re.S)
    assert blocks
    spec = tmp_path / "example.yaml"
    # the example, and the template step shown after it (a step of the same list)
    spec.write_text(blocks[0] + (blocks[1] if len(blocks) > 1 and "template:" in blocks[1] else ""))
    result = run_cli("check", str(spec), env=clean_env(DATABASE_URL="postgres://app:pw@db:5432/app",
                                                       VAULT_ADDR="http://vault:8200"))
    assert result.code == 0, result.stderr
    assert "steps in" in result.stdout
