"""The command line's layout: one module per command (``prefect_init/cli/``), registered on one ``app`` when the
package is imported. What that layout could change on its own: the order --help lists the commands in (the order
the package imports the modules), and what --help loads (a module that imports a spec model or prefect at its top
would load it for every command's --help)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env, run_cli, write_spec

COMMANDS = ["check", "run", "render", "deploy", "trigger", "runs", "migrations", "import", "schema"]
"""The order of the one-file command line this package replaced: validate, run, render, then Prefect, then the rest."""

HEAVY = ("prefect_init.spec.model", "prefect_init.spec.load", "prefect_init.prefect_adapter", "prefect", "yaml")


def test_help_lists_the_commands_in_their_order() -> None:
    result = run_cli("--help", env={**clean_env(), "COLUMNS": "200"})
    assert result.code == 0, result.output
    listed = result.stdout.split("\nCommands:\n", 1)[1].splitlines()
    assert [line.split()[0] for line in listed if line.startswith("  ") and line[2] != " "] == COMMANDS


def test_no_commands_help_loads_a_spec_model_or_prefect(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, "version: 1\nname: light\nsteps:\n  - name: a\n    command: [echo, a]\n")
    probe = (
        "import sys\nfrom prefect_init.cli import app\n"
        "def call(*args):\n"
        "    try:\n        app(list(args))\n    except SystemExit:\n        pass\n"
        f"heavy = {HEAVY!r}\n"
        "def loaded():\n"
        "    return sorted(m for m in sys.modules if any(m == h or m.startswith(h + '.') for h in heavy))\n"
        f"for command in ['', *{COMMANDS!r}]:\n"
        "    call(*([command] if command else []), '--help')\n"
        "    print('HELP', command or 'prefect-init', loaded(), file=sys.stderr)\n"
        f"call('check', {str(spec)!r})\n"
        "print('CHECK', loaded(), file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, env=clean_env())
    lines = [line for line in proc.stderr.splitlines() if line.startswith(("HELP ", "CHECK "))]
    assert len(lines) == len(COMMANDS) + 2, proc.stdout + proc.stderr
    # the positive control: the probe sees a spec model once a command reads a spec
    assert "'prefect_init.spec.model'" in lines[-1], lines[-1]
    assert all(line.endswith(" []") for line in lines[:-1]), "\n".join(lines[:-1])
