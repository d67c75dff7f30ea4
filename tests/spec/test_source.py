"""Bounded parsing: a spec (or a document) of nested YAML aliases is refused fast and small; anchors and merge
keys within the budget keep working."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

from prefect_init.spec.load import parse_spec
from tests.helpers import run_cli, write_spec

LEVELS = "abcdefghi"


def bomb(levels: int = 9) -> str:
    """The "billion laughs": 9 ** levels values from a few hundred bytes."""
    lines = ["version: 1", "name: bomb", 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, cur in itertools.pairwise(LEVELS[:levels]):
        lines.append(f"{cur}: &{cur} [{','.join(['*' + prev] * 9)}]")
    lines += ["steps:", "  - name: x", f"    command: [echo, *{LEVELS[levels - 1]}]"]
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_is_refused_fast_and_small(tmp_path: Path) -> None:
    spec = tmp_path / "bomb.yaml"
    spec.write_text(bomb())
    # the child's own peak: VmHWM belongs to the new address space of the exec'd process, whereas ru_maxrss
    # (resource) keeps the peak of the forking pytest process across exec on Linux
    measure = ("import json, resource, sys, time\n"
               "from prefect_init.spec.load import load_spec\n"
               "from prefect_init.errors import SpecError\n"
               "started = time.monotonic()\n"
               "try:\n    load_spec(sys.argv[1])\nexcept SpecError as exc:\n    message = str(exc)\n"
               "hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:'))\n"
               "print(json.dumps({'seconds': time.monotonic() - started, 'message': message,\n"
               "                  'peak_mb': int(hwm.split()[1]) / 1024,\n"
               "                  'ru_maxrss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n")
    out = json.loads(subprocess.run([sys.executable, "-c", measure, str(spec)], capture_output=True, text=True,
                                    check=True, timeout=60).stdout)
    assert out["message"] == f"{spec}: refused: the spec expands to more than 10,000 YAML nodes (aliases of aliases?)"
    assert out["seconds"] < 2.0 and out["peak_mb"] < 200, out
    result = run_cli("check", str(spec))
    assert result.code == 2 and result.stdout == "" and "refused" in result.stderr and "Traceback" not in result.stderr


def test_anchors_and_merge_keys_within_the_budget_work(tmp_path: Path) -> None:
    spec = parse_spec("""
version: 1
name: anchors
steps:
  - name: a
    command: [echo, a]
    env: &common {A: "1", B: "2"}
  - name: b
    command: [echo, b]
    env:
      <<: *common
      C: "3"
  - name: c
    command: [echo, c]
    env: *common
""", "anchors.yaml")
    envs = [step.env for step in spec.steps]  # type: ignore[attr-defined]
    assert envs == [{"A": "1", "B": "2"}, {"A": "1", "B": "2", "C": "3"}, {"A": "1", "B": "2"}]


def test_a_large_document_without_aliases_is_not_limited(tmp_path: Path) -> None:
    """The budget limits what aliases add, not a document's own size: a little over a million plain values pass."""
    document = tmp_path / "big.yaml"
    document.write_text("items:\n" + "".join(f"  - [{i}, {i}]\n" for i in range(340_000)))
    spec = write_spec(tmp_path, f"""
        version: 1
        name: big
        steps:
          - name: config
            config: {{url: "file://{document}", dest: {tmp_path}/out.yaml, format: yaml, required: [items]}}
        """)
    result = run_cli("run", str(spec))
    assert result.code == 0, result.output


def test_a_config_document_bomb_is_refused(tmp_path: Path) -> None:
    document = tmp_path / "bomb.yaml"
    document.write_text(bomb().replace("version: 1\nname: bomb\n", "").split("steps:")[0] + "top: *i\n")
    spec = write_spec(tmp_path, f"""
        version: 1
        name: doc
        steps:
          - name: config
            config: {{url: "file://{document}", dest: {tmp_path}/out.yaml, format: yaml, required: [top]}}
        """)
    result = run_cli("run", str(spec))
    assert result.code == 1
    assert "refused: its aliases expand it by more than 1,000,000 values" in result.stderr
    assert not (tmp_path / "out.yaml").exists()
