"""mkdocs hooks of the documentation site (``mkdocs.yml``: ``hooks:``); not part of the package.

The command-line reference is the commands' own ``--help``, run at build time: a page holding the marker
``<!-- prefect-init-help -->`` gets, in its place, the output of ``prefect-init --help`` and of each command's
``--help``, so the page cannot drift from the code (one source).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

MARKER = "<!-- prefect-init-help -->"
HELP_TIMEOUT_S = 60.0


def _program() -> str:
    """The ``prefect-init`` installed beside the Python that runs mkdocs, else the one on PATH."""
    beside = Path(sys.executable).parent / "prefect-init"
    if beside.is_file():
        return str(beside)
    found = shutil.which("prefect-init")
    if found is None:
        raise RuntimeError("prefect-init is not installed where mkdocs runs: pip install -e '.[docs]'")
    return found


def help_text(*args: str) -> str:
    """``prefect-init ARGS --help``, as a person at a terminal 80 columns wide reads it."""
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb", "NO_COLOR": "1"}
    result = subprocess.run([_program(), *args, "--help"], capture_output=True, text=True, env=env,
                            timeout=HELP_TIMEOUT_S, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"prefect-init {' '.join(args)} --help exited with {result.returncode}: {result.stderr}")
    return result.stdout.rstrip() + "\n"


def commands() -> list[str]:
    """The command names, in the order ``prefect-init --help`` lists them."""
    text = help_text()
    listing = text.split("\nCommands:\n", 1)[1]
    return re.findall(r"^  ([a-z][a-z-]*)\s", listing, re.M)


def cli_reference() -> str:
    parts = ["## `prefect-init`\n", "```text\n" + help_text() + "```\n"]
    for name in commands():
        parts += [f"## `prefect-init {name}`\n", "```text\n" + help_text(name) + "```\n"]
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    return markdown.replace(MARKER, cli_reference())
