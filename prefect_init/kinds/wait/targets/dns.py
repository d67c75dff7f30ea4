"""``dns: name``: ready when the name resolves (a Service's DNS record exists)."""

from __future__ import annotations

import socket

from prefect_init.kinds.wait.loop import NotReady
from prefect_init.kinds.wait.targets import Checker, SimpleChecker, TargetBase
from prefect_init.runtime.context import RunContext


class Target(TargetBase):
    key = "dns"
    dns: str

    def checker(self, ctx: RunContext) -> Checker:
        def check(timeout: float) -> None:
            try:
                if not socket.getaddrinfo(self.dns, None):
                    raise NotReady("no addresses")
            except socket.gaierror as exc:
                raise NotReady(f"does not resolve ({exc.strerror})") from None

        return SimpleChecker(check)
