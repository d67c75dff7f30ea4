"""Prefect tasks for the ``git`` step kind."""

from __future__ import annotations

from prefect import task

from prefect_init.kinds import git
from prefect_init.tasks._common import TASK_OPTIONS, run_step_model


@task(name="git-checkout", **TASK_OPTIONS)
def git_checkout(repo: str, dest: str, ref: str = "HEAD", depth: int | None = None, username: str | None = None,
                 password_file: str | None = None, timeout: float = 300.0) -> str:
    """Check out ``repo`` at ``ref`` (branch, tag or commit) into ``dest``: a new checkout appears whole or not at
    all; an existing checkout of the same repository is updated.

    Args:
        password_file: a file holding the HTTP password or token (sent as basic auth through git's environment,
            never on the command line; masked everywhere).

    Example:
        ```python
        from prefect import flow
        from prefect_init.tasks.git import git_checkout

        @flow
        def fetch_site():
            git_checkout("https://github.com/myorg/mysite.git", "/repo", ref="main", depth=1)
        ```
    """
    spec = git.GitSpec.model_validate({"repo": repo, "dest": dest, "ref": ref, "depth": depth, "username": username,
                                       "password": {"file": password_file} if password_file else None})
    return run_step_model(git.Step(name="git", git=spec), timeout)
