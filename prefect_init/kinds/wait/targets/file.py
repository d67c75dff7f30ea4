"""``file: path``: ready when the file exists (and, with ``non_empty: true``, has content)."""

from __future__ import annotations

import os

from prefect_init.kinds.wait.loop import NotReady
from prefect_init.kinds.wait.targets import Checker, SimpleChecker, TargetBase
from prefect_init.runtime.context import RunContext


class Target(TargetBase):
    key = "file"
    file: str
    non_empty: bool = False

    def checker(self, ctx: RunContext) -> Checker:
        path = ctx.resolve(self.file)

        def check(timeout: float) -> None:
            try:
                size = os.stat(path).st_size
            except FileNotFoundError:
                raise NotReady("does not exist") from None
            except OSError as exc:
                raise NotReady((exc.strerror or "cannot stat").lower()) from None
            if self.non_empty and size == 0:
                raise NotReady("is empty")

        return SimpleChecker(check)
