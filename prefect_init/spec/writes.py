"""What a step writes and reads, from its part of the spec. Writes: every ``dest`` (a directory under ``git``,
else a file) and the paths of a ``files`` step; ``render`` mounts volumes from them, and ``check --online`` knows
from them what an earlier step will have produced. Reads: the files and directories a step needs to find in
place (migrations, templates, schemas, ``{file: ...}`` values); ``render`` warns about any nothing provides."""

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


_READ_KEYS = {"migrate": ("dir", "cwd"), "command": ("cwd",), "template": ("source",), "config": ("schema", "ca_cert"),
              "validate": ("file", "schema"), "vault": ("ca_cert",)}
"""Per step kind, the keys (of its own mapping; ``command``'s at the step's level) that name a path it reads."""


def step_reads(raw: Any) -> list[tuple[str, str]]:
    """(path as written, where: ``migrate.dir``, ...) of what one step's data reads from the file system."""
    out: list[tuple[str, str]] = []
    if not isinstance(raw, dict):
        return out

    def add(value: Any, where: str) -> None:
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                out.append((item, where))

    for kind, keys in _READ_KEYS.items():
        if kind not in raw:
            continue
        own = raw if kind == "command" else raw[kind]
        parts = own if isinstance(own, list) else [own]  # `templates:` is a list of template mappings
        for part in parts:
            if isinstance(part, dict):
                for key in keys:
                    add(part.get(key), f"{kind}.{key}")
    for part in raw.get("templates") or []:
        if isinstance(part, dict):
            add(part.get("source"), "templates.source")
    config = raw.get("config")
    if isinstance(config, dict) and isinstance(config.get("url"), str) and config["url"].startswith("file://"):
        add(config["url"][len("file://"):], "config.url")

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if set(node) == {"file"} and isinstance(node["file"], str):
                out.append((node["file"], f"{where} (file:)"))
                return
            for key, value in node.items():
                walk(value, f"{where}.{key}" if where else str(key))
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk({k: v for k, v in raw.items() if k not in ("name", "after")}, "")
    auth = (raw.get("vault") or {}).get("auth") if isinstance(raw.get("vault"), dict) else None
    if isinstance(auth, dict):
        add(auth.get("token_file"), "vault.auth.token_file")
        if isinstance(auth.get("approle"), dict):
            add(auth["approle"].get("secret_id_file"), "vault.auth.approle.secret_id_file")
    return out
