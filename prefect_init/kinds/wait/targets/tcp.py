"""``tcp: host:port``: ready when a TCP connection is accepted (what ``nc -z`` checks)."""

from __future__ import annotations

import socket

from pydantic import field_validator

from prefect_init.kinds.wait.loop import NotReady
from prefect_init.kinds.wait.targets import Checker, SimpleChecker, TargetBase
from prefect_init.runtime.context import RunContext


def split_host_port(value: str) -> tuple[str, int]:
    """``db:5432`` / ``[::1]:5432`` -> (host, port); ValueError with a spec-worthy message."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("expected host:port, like db:5432 or [::1]:5432")
    return host.strip("[]"), int(port)


def reason_of(exc: OSError) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host ({exc.strerror})"
    return (exc.strerror or type(exc).__name__).lower()


class Target(TargetBase):
    key = "tcp"
    tcp: str

    @field_validator("tcp")
    @classmethod
    def _valid(cls, value: str) -> str:
        split_host_port(value)
        return value

    def checker(self, ctx: RunContext) -> Checker:
        host, port = split_host_port(self.tcp)

        def check(timeout: float) -> None:
            try:
                socket.create_connection((host, port), timeout=timeout).close()
            except OSError as exc:
                raise NotReady(reason_of(exc)) from None

        return SimpleChecker(check)
