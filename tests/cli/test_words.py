"""The words the tool says: a misspelt key gets its closest match, a success closes with one line, numbers agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from prefect_init.words import plural
from tests.helpers import run_cli, write_spec

MISSPELT = """
version: 1
name: typos
defualts: {retries: 1}
steps:
  - name: a
    comand: ["true"]
  - name: b
    command: ["true"]
    retrys: 2
  - name: c
    files:
      dirs: [{path: /tmp/x, mod: "0755"}]
  - name: d
    wait:
      - tcp: localhost:5
        timout: 5s
  - name: e
    zzz: 1
"""


def test_a_misspelt_key_or_kind_gets_its_closest_match(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, MISSPELT)
    result = run_cli("check", str(spec))
    assert result.code == 2, result.stderr
    lines = result.stderr.splitlines()
    for expected in (f"{spec}:3: defualts: unknown key (did you mean `defaults`?)",
                     f"{spec}:6: steps[0].comand: unknown step kind or key (did you mean `command`?)",
                     f"{spec}:9: steps[1].retrys: unknown key (did you mean `retries`?)",
                     f"{spec}:12: steps[2].files.dirs[0].mod: unknown key (did you mean `mode`?)",
                     f"{spec}:16: steps[3].wait[0].timout: unknown key (did you mean `timeout`?)"):
        assert expected in lines, result.stderr
    # nothing close: the list of kinds, no guess
    zzz = next(line for line in lines if "steps[4].zzz" in line)
    assert "did you mean" not in zzz and "(kinds: command | config" in zzz


def test_a_successful_run_closes_with_one_line(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: closing
        steps:
          - name: one
            command: ["true"]
          - name: two
            command: ["true"]
    """)
    result = run_cli("run", "--local", str(spec))
    assert result.code == 0, result.stderr
    last = result.stderr.splitlines()[-1]
    assert re.fullmatch(r"prefect-init: closing: 2 steps succeeded in [0-9.]+s", last), last


def test_one_is_singular_everywhere_we_count(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: single
        steps:
          - name: only
            retries: 0
            command: ["false"]
    """)
    checked = run_cli("check", str(spec))
    assert checked.code == 0 and "single, 1 step in 1 stage" in checked.stdout, checked.stdout
    failed = run_cli("run", "--local", str(spec))
    assert failed.code == 1
    assert "failed after 1 attempt," in failed.stderr, failed.stderr
    assert "1 attempts" not in failed.stderr and "1 steps" not in failed.stderr


def test_a_plan_counts_in_the_right_number(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: counted
        steps:
          - name: one-file
            files:
              files: [{path: out/a, content: "a"}]
          - name: one-template
            templates:
              - {source: t.j2, dest: out/t}
    """)
    (tmp_path / "t.j2").write_text("x")
    result = run_cli("check", str(spec))
    assert result.code == 0, result.stderr
    assert "files: 0 dirs, 1 file " in result.stdout + " " and "templates: 1 file" in result.stdout, result.stdout
    assert "1 files" not in result.stdout


@pytest.mark.parametrize(("count", "word", "expected"), [
    (0, "step", "0 steps"), (1, "step", "1 step"), (2, "attempt", "2 attempts"), (1, "entry", "1 entry"),
    (3, "entry", "3 entries"), (2, "directory", "2 directories"),
])
def test_plural(count: int, word: str, expected: str) -> None:
    assert plural(count, word) == expected


def _commands() -> list[str]:
    from prefect_init.cli import command

    return sorted(command().commands)


@pytest.mark.parametrize("name", _commands())
def test_every_command_says_its_exit_codes_and_names_its_placeholders_in_words(name: str) -> None:
    result = run_cli(name, "--help", env={**__import__("os").environ, "COLUMNS": "200"})
    assert result.code == 0, result.stderr
    paragraphs = [p.strip() for p in result.stdout.split("\n\n") if p.strip()]
    assert paragraphs[-1].startswith("Exit codes: 0 "), paragraphs[-1]
    # typer's own placeholder is the parameter's name upper-cased (ENV_FROM_SECRET): ours are words
    from prefect_init.cli import command

    for param in command().commands[name].params:
        if param.name and "_" in param.name and not getattr(param, "is_flag", False):
            shown = re.search(rf"(?<![A-Z_]){param.name.upper()}\b", result.stdout)
            assert shown is None, f"{name} --help shows the placeholder {param.name.upper()}"


def test_migrations_takes_the_format_its_help_offers(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: fmt
        steps:
          - name: migrate
            migrate:
              database: postgresql://app@127.0.0.1:1/app
              dir: migrations
    """)
    (tmp_path / "migrations").mkdir()
    offered = run_cli("migrations", "--help", env={**__import__("os").environ, "COLUMNS": "200"}).stdout
    assert "--format text|json" in offered
    result = run_cli("migrations", str(spec), "--format", "text")
    assert "--format" not in result.stderr, result.stderr  # accepted; the database is not there: exit 1
    assert result.code == 1, result.stderr
