from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path

from tests.helpers import CLI, clean_env, run_cli, write_spec


def test_output_is_streamed_line_by_line_with_the_step_name(tmp_path: Path) -> None:
    """The first line must reach the log while the command still runs: the command waits for a file that the
    test creates only after it has read that line (collecting output at exit would wait forever: bounded)."""
    go = tmp_path / "go"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: out
        steps:
          - name: talk
            timeout: 20s
            command: [sh, -c, "echo one; while [ ! -e {go} ]; do sleep 0.02; done; echo two >&2; printf three"]
    """)
    proc = subprocess.Popen([*CLI, "run", str(spec)], env=clean_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen: list[str] = []
    deadline = time.monotonic() + 15
    for line in proc.stderr:  # line by line, as they arrive
        seen.append(line)
        if line.rstrip().endswith("[talk] one"):
            assert proc.poll() is None and not go.exists()  # streamed while the command waits
            go.touch()
            break
        assert time.monotonic() < deadline, seen
    rest = proc.stderr.read()
    assert proc.wait(timeout=30) == 0, "".join(seen) + rest
    assert go.exists(), "the first line never arrived while the command ran"
    texts = [ln.split("[talk] ", 1)[1] for ln in ("".join(seen) + rest).splitlines() if "[talk] " in ln]
    assert {"one", "two", "three"} <= set(texts)


def test_env_and_cwd(tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    spec = write_spec(tmp_path, """
        version: 1
        name: env
        steps:
          - name: show
            command: [sh, -c, 'echo "$GREETING from $(pwd)"']
            cwd: work
            env: {GREETING: hello}
    """)
    result = run_cli("run", str(spec))
    assert f"hello from {tmp_path / 'work'}" in result.stderr


def test_no_shell_is_involved(tmp_path: Path) -> None:
    """A harmless marker: if a shell ever ran the argument, it would create the file."""
    marker = tmp_path / "marker"
    spec = write_spec(tmp_path, f"""
        version: 1
        name: noshell
        steps:
          - name: literal
            command: [echo, "$HOME; touch {marker}"]
    """)
    result = run_cli("run", str(spec))
    assert result.code == 0, result.output
    assert f"[literal] $HOME; touch {marker}" in result.stderr
    assert not marker.exists()


def test_string_command_is_split_without_a_shell(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: split
        steps:
          - name: s
            command: echo 'two words' "$NOPE"
    """)
    result = run_cli("run", str(spec))
    assert "[s] two words $NOPE" in result.stderr


def test_missing_program_is_final(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: missing
        defaults: {retries: 3}
        steps:
          - name: m
            command: [no-such-program-xyz]
    """)
    result = run_cli("run", str(spec), "--status-file", str(tmp_path / "s.json"))
    assert result.code == 1
    step = json.loads((tmp_path / "s.json").read_text())["steps"][0]
    assert step["attempts"] == 1
    assert step["error"].startswith("no-such-program-xyz: No such file or directory")


def test_error_carries_the_last_lines(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, """
        version: 1
        name: tail
        steps:
          - name: t
            retries: 0
            command: [sh, -c, "for i in $(seq 1 30); do echo line$i; done; exit 4"]
    """)
    run_cli("run", str(spec), "--status-file", str(tmp_path / "s.json"))
    error = json.loads((tmp_path / "s.json").read_text())["steps"][0]["error"]
    assert re.fullmatch(r"sh -c .*: exited with 4 after \d+\.\ds", error.splitlines()[0])
    assert error.splitlines()[1] == "last output:"
    assert error.splitlines()[-1] == "line30"
    assert "line20" not in error and "line21" in error  # the last 10 lines
