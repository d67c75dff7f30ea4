"""`optional: true` through the real CLI in local mode: an optional step's failure is a warning; a required step
that needs it is still skipped, and fails the run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.helpers import OPTIONAL_SPEC, clean_env, run_cli, write_spec


def _steps(path: Path) -> tuple[str, dict[str, dict[str, Any]]]:
    status = json.loads(path.read_text())
    return status["status"], {s["name"]: s for s in status["steps"]}


def test_an_optional_failure_is_a_warning_and_its_optional_dependent_is_skipped(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    log.write_text("")
    spec = write_spec(tmp_path, OPTIONAL_SPEC.format(name="opt"))
    result = run_cli("run", str(spec), env=clean_env(PREFECT_INIT_TERMINATION_LOG=str(log)))
    assert result.code == 0, result.output
    status, steps = _steps(tmp_path / "status.json")
    assert status == "succeeded"
    assert steps["warm-cache"] == {"name": "warm-cache", "kind": "command", "status": "failed", "optional": True,
                                   "attempts": 2, "duration_s": steps["warm-cache"]["duration_s"],
                                   "error": steps["warm-cache"]["error"]}
    assert "exited with 1" in steps["warm-cache"]["error"]
    assert steps["report-cache"]["status"] == "skipped" and steps["report-cache"]["optional"] is True
    assert steps["serve"]["status"] == "succeeded" and steps["prepare"]["status"] == "succeeded"
    assert "optional" not in steps["serve"]  # only where it is true
    warn = [line for line in result.stderr.splitlines() if "[warm-cache] failed" in line]
    assert len(warn) == 1 and " WARN  [warm-cache] failed (optional; the run goes on) after 2 attempts, " in warn[0]
    assert "ERROR" not in result.stderr, result.stderr
    assert "WARN  [report-cache] skipped (optional): a step it needs failed" in result.stderr
    # a run that succeeded says which optional steps failed where `kubectl describe pod` shows it
    assert log.read_text() == "all required steps succeeded; optional steps failed: warm-cache\n"
    # and the CLI's last line says so too: a green run that lost its cache warm-up is not silent
    assert result.stderr.splitlines()[-1] == (
        "prefect-init: opt: all required steps succeeded; optional steps failed: warm-cache")


def test_a_required_step_after_a_failed_optional_one_is_skipped_and_fails_the_run(tmp_path: Path) -> None:
    log = tmp_path / "termination-log"
    log.write_text("")
    spec = write_spec(tmp_path, """
        version: 1
        name: opt-needed
        status_file: status.json
        steps:
          - name: seed
            optional: true
            retries: 1
            retry_delay: 10ms
            command: [sh, -c, "echo 'seed server away' >&2; exit 1"]
          - name: serve
            after: [seed]
            command: [echo, never]
    """)
    result = run_cli("run", str(spec), env=clean_env(PREFECT_INIT_TERMINATION_LOG=str(log)))
    assert result.code == 1, result.output
    status, steps = _steps(tmp_path / "status.json")
    assert status == "failed"
    assert (steps["seed"]["status"], steps["seed"]["optional"], steps["seed"]["attempts"]) == ("failed", True, 2)
    assert steps["serve"]["status"] == "skipped" and "optional" not in steps["serve"]
    reason = log.read_text()
    assert reason.startswith("step serve (command) skipped: a step it needs failed; optional step seed (command) "
                             "failed: sh -c"), reason
    assert "seed server away" in reason
    assert result.stderr.splitlines()[-1].startswith("prefect-init: opt-needed: step serve (command) skipped: ")


def test_a_required_failure_still_fails_a_run_with_optional_steps(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: opt-mixed
        status_file: status.json
        defaults: {retries: 0}
        steps:
          - name: warm
            optional: true
            after: []
            command: [echo, warm]
          - name: migrate
            after: []
            command: ["false"]
    """)
    result = run_cli("run", str(spec))
    assert result.code == 1, result.output
    status, steps = _steps(tmp_path / "status.json")
    assert status == "failed"
    assert steps["warm"]["status"] == "succeeded" and steps["warm"]["optional"] is True
    assert result.stderr.splitlines()[-1].startswith("prefect-init: opt-mixed: step migrate (command) failed: ")
    assert " ERROR [migrate] failed after 1 attempt," in result.stderr
