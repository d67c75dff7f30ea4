"""What a step writes, read from its part of the spec: every ``dest`` (a directory under ``git``, else a file)
and the paths of a ``files`` step. ``render`` mounts volumes from it; ``check --online`` knows from it what an
earlier step will have produced."""

from __future__ import annotations

from typing import Any


def step_writes(raw: Any) -> list[tuple[str, bool]]:
    """(path as written, is a directory) for one step's data (anything else: nothing)."""
    out: list[tuple[str, bool]] = []

    def walk(node: Any, under_git: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "dest" and isinstance(value, str):
                    out.append((value, under_git))
                walk(value, under_git or key == "git")
        elif isinstance(node, list):
            for item in node:
                walk(item, under_git)

    if not isinstance(raw, dict):
        return out
    walk(raw, False)
    files = raw.get("files")
    if isinstance(files, dict):
        for group, is_dir in (("dirs", True), ("files", False)):
            out += [(e["path"], is_dir) for e in files.get(group) or []
                    if isinstance(e, dict) and isinstance(e.get("path"), str)]
    return out
