"""Step kinds: the spec key of each kind -> the module in ``prefect_init.steps`` that implements it.

Each module defines ``Step`` (a :class:`prefect_init.spec.StepBase` subclass with a field named after the kind)
and ``run(step, ctx)``. Adding a kind is adding its module and one line here. Modules are imported only when a
spec uses the kind, so a spec with a ``files`` step never imports psycopg.
"""

from __future__ import annotations

import importlib
from types import ModuleType

KINDS: dict[str, str] = {
    "wait": "prefect_init.steps.wait",
    "vault": "prefect_init.steps.vault",
    "config": "prefect_init.steps.config",
    "validate": "prefect_init.steps.validate",
    "migrate": "prefect_init.steps.migrate",
    "git": "prefect_init.steps.git",
    "files": "prefect_init.steps.files",
    "command": "prefect_init.steps.command",
    "template": "prefect_init.steps.template",
    "templates": "prefect_init.steps.templates",
}


def kind_module(kind: str) -> ModuleType:
    """The implementation module of ``kind`` (KeyError for an unknown kind)."""
    return importlib.import_module(KINDS[kind])
