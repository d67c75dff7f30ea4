"""Step kinds: the spec key of each kind -> the module in ``prefect_init.kinds`` that implements it.

Each module defines ``Step`` (a :class:`prefect_init.spec.model.StepBase` subclass with a field named after the kind)
and ``run(step, ctx)``. Adding a kind is adding its module and one line here. Modules are imported only when a
spec uses the kind, so a spec with a ``files`` step never imports psycopg.
"""

from __future__ import annotations

import importlib
from types import ModuleType

KINDS: dict[str, str] = {
    "wait": "prefect_init.kinds.wait.step",
    "vault": "prefect_init.kinds.vault",
    "config": "prefect_init.kinds.config",
    "validate": "prefect_init.kinds.validate",
    "migrate": "prefect_init.kinds.migrate.step",
    "git": "prefect_init.kinds.git",
    "files": "prefect_init.kinds.files",
    "command": "prefect_init.kinds.command",
    "template": "prefect_init.kinds.template",
    "templates": "prefect_init.kinds.templates",
}


def kind_module(kind: str) -> ModuleType:
    """The implementation module of ``kind`` (KeyError for an unknown kind)."""
    return importlib.import_module(KINDS[kind])
