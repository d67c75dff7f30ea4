from __future__ import annotations

from prefect_init.spec.load import parse_spec
from prefect_init.spec.plan import build_plan
from tests.helpers import run_cli, write_spec

SPEC = """
version: 1
name: x
steps:
  - name: wait
    command: [ls]
  - name: secrets
    after: []
    command: [ls]
  - name: migrate
    after: [wait]
    command: [ls]
  - name: config
    after: [wait]
    command: [ls]
  - name: validate
    after: [secrets, config]
    command: [ls]
  - name: build
    command: [ls]
"""


def test_default_order_is_the_step_written_before() -> None:
    plan = build_plan(parse_spec(SPEC, "t.yaml", env={}).steps)
    assert plan.needs == {"wait": [], "secrets": [], "migrate": ["wait"], "config": ["wait"],
                          "validate": ["secrets", "config"], "build": ["validate"]}


def test_levels_are_what_runs_at_once() -> None:
    plan = build_plan(parse_spec(SPEC, "t.yaml", env={}).steps)
    assert plan.levels == [["wait", "secrets"], ["migrate", "config"], ["validate"], ["build"]]


def test_check_prints_the_plan(tmp_path) -> None:  # type: ignore[no-untyped-def]
    spec = write_spec(tmp_path, SPEC)
    result = run_cli("check", str(spec))
    assert result.code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"{spec}: valid - x, 6 steps in 4 stages"
    assert lines[1] == "stage 1 (2 at once)"
    assert lines[2].split() [:2] == ["wait", "command:"]
    assert "[at start;" in lines[2]
    assert "stage 3" in lines and "[after secrets, config;" in result.stdout
