"""Prefect tasks for the ``command`` step kind."""

from __future__ import annotations

from prefect import task

from prefect_init.kinds import command
from prefect_init.spec.model import FromFile
from prefect_init.tasks._common import TASK_OPTIONS, run_step_model


@task(name="run-command", **TASK_OPTIONS)
def run_command(argv: list[str] | str, cwd: str | None = None, env: dict[str, str] | None = None,
                env_from_files: dict[str, str] | None = None, timeout: float = 300.0) -> str:
    """Run a program without a shell, streaming its output into the task run's logs line by line.

    Args:
        argv: the program and its arguments (a string is split like a shell would, but no shell runs).
        cwd: the working directory.
        env: extra environment variables (not secret: they are task parameters).
        env_from_files: variable name -> file to read it from at run time; these values are secrets,
            masked in every log line.
        timeout: seconds; at the deadline the process group is killed.

    Returns:
        ``"exit 0 after 1.2s"``. A non-zero exit raises ``RetryableError`` (so the task's ``retries`` apply).

    Example:
        ```python
        from prefect import flow
        from prefect_init.tasks.command import run_command

        @flow
        def build():
            run_command.with_options(retries=2)(["npm", "run", "build"], cwd="/repo",
                                                env_from_files={"NPM_TOKEN": "/secrets/npm-token"})
        ```
    """
    variables: dict[str, str | FromFile] = dict(env or {})
    variables.update({k: FromFile(file=v) for k, v in (env_from_files or {}).items()})
    step = command.Step(name="command", command=argv, cwd=cwd, env=variables)  # type: ignore[arg-type]
    return run_step_model(step, timeout)
