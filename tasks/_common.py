"""What the per-kind tasks share: running one step model inside a Prefect task run."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from prefect.logging import get_run_logger

from prefect_init.run.engine import run_attempt
from prefect_init.runtime.context import RunContext
from prefect_init.runtime.redaction import install_logging_filter, redact
from prefect_init.spec.model import StepBase

TASK_OPTIONS: dict[str, Any] = {"persist_result": False, "cache_policy": None, "log_prints": False}
"""No result is stored (a result may be derived from a secret); no cache (a cache key hashes the inputs)."""


class RedactingLogger:
    """Redacts every message before it reaches Prefect's logger (and so the API)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._inner.debug(redact(msg % args if args else msg))

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._inner.info(redact(msg % args if args else msg))

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._inner.warning(redact(msg % args if args else msg))

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self._inner.error(redact(msg % args if args else msg))


def task_context(name: str, timeout: float, base_dir: str | Path = ".") -> RunContext:
    """A run context for code running inside a Prefect task run: a fresh deadline, the run logger."""
    install_logging_filter()
    return RunContext(step_name=name, deadline=time.monotonic() + timeout, timeout=timeout,
                      cancel=threading.Event(), log=RedactingLogger(get_run_logger()), base_dir=Path(base_dir))


def run_step_model(step: StepBase, timeout: float = 300.0, base_dir: str | Path = ".") -> str:
    """One attempt of ``step`` with a fresh deadline; Prefect's own ``retries`` option does the retrying."""
    return run_attempt(step, task_context(step.name, timeout, base_dir))
