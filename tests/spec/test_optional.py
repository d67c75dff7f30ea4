"""`optional:` on a step: a boolean, false unless written, and nothing else read as one."""

from __future__ import annotations

from pathlib import Path

import pytest

from prefect_init.errors import SpecError
from prefect_init.spec.load import parse_spec
from tests.helpers import run_cli, write_spec

SPEC = """version: 1
name: x
steps:
  - name: warm
    {line}
    command: [echo, warm]
  - name: serve
    command: [echo, serve]
"""


@pytest.mark.parametrize(("line", "expected"), [("optional: true", True), ("optional: false", False),
                                                ("retries: 0", False)])
def test_optional_is_read_and_false_by_default(line: str, expected: bool) -> None:
    spec = parse_spec(SPEC.format(line=line), "init.yaml")
    assert spec.step("warm").optional is expected
    assert spec.step("serve").optional is False


@pytest.mark.parametrize("value", ['"yes"', '"true"', "1", "0", "[true]", "maybe"])
def test_optional_must_be_a_boolean(value: str) -> None:
    """A string, a number, a list: refused, never read as true (``"yes"`` would be by a lax boolean)."""
    with pytest.raises(SpecError) as caught:
        parse_spec(SPEC.format(line=f"optional: {value}"), "init.yaml")
    problems = [str(p) for p in caught.value.problems]
    assert problems == ["init.yaml:5: steps[0].optional: expected true or false"], problems


def test_check_names_the_line_of_a_bad_optional(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.format(line="optional: 1"))
    result = run_cli("check", str(spec))
    assert result.code == 2
    assert result.stderr.splitlines() == [f"{spec}:5: steps[0].optional: expected true or false"]


def test_check_shows_which_steps_are_optional(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, SPEC.format(line="optional: true"))
    result = run_cli("check", str(spec))
    assert result.code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  ")}
    assert lines["warm"].endswith("; optional]"), lines
    assert "optional" not in lines["serve"], lines
