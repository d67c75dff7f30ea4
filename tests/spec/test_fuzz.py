"""Fuzzing the spec loader (hypothesis): generated and mutated specs give a Spec or a SpecError, never another
exception; `prefect-init check` on them exits 0 or 2, never with a traceback. Bounded in examples and time."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prefect_init.errors import SpecError
from prefect_init.spec.load import parse_spec
from prefect_init.spec.model import Spec

BASE: dict[str, Any] = {
    "version": 1, "name": "fuzz", "defaults": {"timeout": "5s", "retries": 1},
    "steps": [
        {"name": "wait", "wait": [{"tcp": "127.0.0.1:5432"}, {"http": "http://x/health", "status": [200]}]},
        {"name": "files", "files": {"dirs": [{"path": "/data", "mode": "0755"}]}},
        {"name": "cmd", "after": ["wait"], "command": ["echo", "${X:-y}"], "env": {"A": {"file": "/a"}}},
        {"name": "cfg", "config": {"url": "http://c/app.yaml", "dest": "/c/app.yaml", "required": ["a.b"]}},
    ],
}

KEYS = st.sampled_from(["version", "name", "steps", "after", "wait", "files", "command", "config", "vault",
                        "migrate", "git", "validate", "timeout", "retries", "dirs", "path", "mode", "dest",
                        "url", "tcp", "http", "env", "file", "x", "", "0"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(["${X}", "${", "$${", "0644", "5m", "-1s", "1e99s",
                                                          "http://", "a" * 70, "../..", "\x00"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
                      max_leaves=12)


def _mutate(data: Any, path: list[Any], value: Any) -> Any:
    """Replace (or add) the value at ``path`` of a copy of ``data``."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(data, dict):
        key = head if isinstance(head, str) else (list(data)[head % len(data)] if data else "k")
        return {**data, key: _mutate(data.get(key), rest, value)}
    if isinstance(data, list) and data:
        index = head % len(data) if isinstance(head, int) else 0
        return [*data[:index], _mutate(data[index], rest, value), *data[index + 1:]]
    return value


def _load(text: str) -> None:
    """The property: ``parse_spec`` gives a Spec, or a SpecError whose every problem is one line naming the file
    and saying something; nothing else escapes."""
    try:
        result = parse_spec(text, "fuzz.yaml", env={"X": "1"})
    except SpecError as exc:
        assert exc.problems
        for problem in exc.problems:
            line = str(problem)
            assert line.startswith("fuzz.yaml") and "\n" not in line, line
            assert line.split(": ", 1)[-1].strip(), line
    except Exception as exc:
        raise AssertionError(f"{type(exc).__name__} escaped parse_spec: {exc}") from exc
    else:
        assert isinstance(result, Spec)


PATHS = st.lists(st.one_of(KEYS, st.integers(0, 5)), max_size=4)
FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@FUZZ
@given(path=PATHS, value=VALUES)
def test_structure_mutations(path: list[Any], value: Any) -> None:
    _load(yaml.safe_dump(_mutate(BASE, path, value), sort_keys=False))


@FUZZ
@given(cut=st.integers(0, 2000), insert=st.text(alphabet=" \t\n:-[]{}&*!|>'\"#%@`,?$", max_size=6))
def test_text_mutations(cut: int, insert: str) -> None:
    text = yaml.safe_dump(BASE, sort_keys=False)
    at = cut % (len(text) + 1)
    _load(text[:at] + insert + text[at + len(insert):])


@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(path=PATHS, value=VALUES)
def test_check_command_exits_0_or_2(path: list[Any], value: Any) -> None:
    with tempfile.TemporaryDirectory() as directory:
        spec = Path(directory) / "fuzz.yaml"
        spec.write_text(yaml.safe_dump(_mutate(BASE, path, value), sort_keys=False))
        proc = subprocess.run([sys.executable, "-m", "prefect_init.cli", "check", str(spec)], capture_output=True,
                              text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "X": "1"})
    assert proc.returncode in (0, 2), proc.stderr
    assert "Traceback" not in proc.stderr
