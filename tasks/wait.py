"""Prefect tasks for the ``wait`` step kind: one per target kind, all on the same wait loop.

Each task returns a short summary when its target is ready and raises ``StepFailed`` at its deadline with the
target's last error. Passwords in DSNs and URLs are masked in every log line; Prefect 3 keeps task parameters in
the task's process (they are not sent to the API).
"""

from __future__ import annotations

from typing import Any

from prefect import task

from prefect_init.errors import StepFailed
from prefect_init.kinds.wait.step import not_ready, wait_for_target
from prefect_init.kinds.wait.targets import TargetBase, dns, file, http, postgres, redis, tcp
from prefect_init.tasks._common import TASK_OPTIONS, task_context


def _wait(target: TargetBase, timeout: float, max_interval: float = 0.25) -> str:
    ctx = task_context(f"wait-{target.key}", timeout)
    result = wait_for_target(target, ctx, max_interval=max_interval)
    if not result.ready:
        raise StepFailed(ctx.safe(not_ready(target, result)))
    return f"{ctx.safe(target.label())} ready after {result.elapsed:.2f}s"


@task(name="wait-for-tcp", **TASK_OPTIONS)
def wait_for_tcp(address: str, timeout: float = 120.0) -> str:
    """Wait until ``host:port`` accepts a TCP connection.

    Example:
        ```python
        from prefect import flow
        from prefect_init.tasks.wait import wait_for_tcp

        @flow
        def start():
            wait_for_tcp("vault:8200", timeout=60)
        ```
    """
    return _wait(tcp.Target(tcp=address), timeout)


@task(name="wait-for-http", **TASK_OPTIONS)
def wait_for_http(url: str, status: list[int] | None = None, json: dict[str, list[Any]] | None = None,
                  contains: str | None = None, timeout: float = 120.0) -> str:
    """Wait until ``url`` answers with an accepted status (default 2xx) and, if given, JSON values or text.

    Example:
        ```python
        from prefect import flow
        from prefect_init.tasks.wait import wait_for_http

        @flow
        def start():
            wait_for_http("http://elasticsearch:9200/_cluster/health", json={"status": ["green", "yellow"]})
        ```
    """
    return _wait(http.Target.model_validate({"http": url, "status": status, "json": json, "contains": contains}),
                 timeout)


@task(name="wait-for-postgres", **TASK_OPTIONS)
def wait_for_postgres(dsn: str, sql: str = "SELECT 1", timeout: float = 120.0) -> str:
    """Wait until PostgreSQL accepts a connection and runs ``sql``.

    Example:
        ```python
        import os
        from prefect import flow
        from prefect_init.tasks.wait import wait_for_postgres

        @flow
        def start():
            wait_for_postgres(os.environ["DATABASE_URL"], timeout=120)
        ```
    """
    return _wait(postgres.Target(postgres=dsn, sql=sql), timeout)


@task(name="wait-for-redis", **TASK_OPTIONS)
def wait_for_redis(url: str, timeout: float = 120.0) -> str:
    """Wait until Redis answers PING (password, database and TLS from the URL).

    Example:
        ```python
        from prefect import flow
        from prefect_init.tasks.wait import wait_for_redis

        @flow
        def start():
            wait_for_redis("redis://:password@redis:6379/0")
        ```
    """
    return _wait(redis.Target(redis=url), timeout)


@task(name="wait-for-dns", **TASK_OPTIONS)
def wait_for_dns(name: str, timeout: float = 120.0) -> str:
    """Wait until ``name`` resolves.

    Example:
        ```python
        from prefect_init.tasks.wait import wait_for_dns

        wait_for_dns("config-server.default.svc.cluster.local")
        ```
    """
    return _wait(dns.Target(dns=name), timeout)


@task(name="wait-for-file", **TASK_OPTIONS)
def wait_for_file(path: str, non_empty: bool = False, timeout: float = 120.0) -> str:
    """Wait until ``path`` exists (and is not empty, with ``non_empty=True``).

    Example:
        ```python
        from prefect_init.tasks.wait import wait_for_file

        wait_for_file("/shared/ready", non_empty=True)
        ```
    """
    return _wait(file.Target(file=path, non_empty=non_empty), timeout)
