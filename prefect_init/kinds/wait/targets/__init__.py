"""Wait targets: one module per kind, each a pydantic model with a ``checker()`` that answers ready or not.

A checker's ``check(timeout)`` returns when the target is ready and raises
:class:`prefect_init.kinds.wait.loop.NotReady` with a short reason when it is not; ``close()`` frees what it holds
(an HTTP client). The kinds are listed in :data:`TARGETS`; adding one is a module and a line there.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Protocol

from prefect_init.runtime.context import RunContext
from prefect_init.spec.durations import Duration
from prefect_init.spec.model import StrictModel

TARGETS: dict[str, str] = {
    "tcp": "prefect_init.kinds.wait.targets.tcp",
    "http": "prefect_init.kinds.wait.targets.http",
    "postgres": "prefect_init.kinds.wait.targets.postgres",
    "redis": "prefect_init.kinds.wait.targets.redis",
    "dns": "prefect_init.kinds.wait.targets.dns",
    "file": "prefect_init.kinds.wait.targets.file",
    "migrations": "prefect_init.kinds.migrate.target",
    "prefect_run": "prefect_init.prefect_adapter.wait_target",
}


class Checker(Protocol):
    def check(self, timeout: float) -> None: ...
    def close(self) -> None: ...


class TargetBase(StrictModel):
    """What every target has: its own deadline, shorter than the step's if set."""

    key: ClassVar[str]
    timeout: Duration | None = None

    def label(self) -> str:
        """How the target is named in logs and errors (passwords are masked by the redactor)."""
        return f"{self.key} {getattr(self, self.key)}"

    def checker(self, ctx: RunContext) -> Checker:
        raise NotImplementedError


@dataclass
class SimpleChecker:
    """A checker that is just a function of the attempt's timeout."""

    function: Callable[[float], None]

    def check(self, timeout: float) -> None:
        self.function(timeout)

    def close(self) -> None:
        pass


def target_models() -> dict[str, type[TargetBase]]:
    return {key: importlib.import_module(module).Target for key, module in TARGETS.items()}
