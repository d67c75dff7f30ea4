"""What a step's probe (``check --online``) gets and answers: a :class:`ProbeContext` and a :class:`Finding`.
The runner that probes every step at once is :mod:`prefect_init.run.preflight`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prefect_init.runtime.context import RunContext

OK, CHANGE, PROBLEM = "ok", "would change", "problem"


@dataclass
class Finding:
    result: str
    details: list[str] = field(default_factory=list)


@dataclass
class ProbeContext(RunContext):
    """A run context for a probe: its deadline, and what the step's ancestors would have written by then."""

    strict: bool = False
    written_before: list[Path] = field(default_factory=list)

    def produced_by_ancestor(self, path: Path) -> bool:
        return any(path == p or p in path.parents or path in p.parents for p in self.written_before)


class Quiet:
    """A logger that drops everything: a probe reports through its finding."""

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def info(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
    def error(self, msg: str, *args: Any, **kwargs: Any) -> None: ...
