"""Prefect tasks for the ``template`` step kind."""

from __future__ import annotations

from prefect import task

from prefect_init.kinds import template
from prefect_init.tasks._common import TASK_OPTIONS, run_step_model


@task(name="render-template", **TASK_OPTIONS)
def render_template(dest: str, source: str | None = None, inline: str | None = None,
                    vars: dict[str, str] | None = None, secrets_from_files: dict[str, str] | None = None,
                    files: dict[str, str] | None = None, mode: str | None = None, timeout: float = 60.0) -> str:
    """Render a Jinja2 template (sandboxed; an undefined name is an error) into ``dest``, atomically.

    Args:
        dest: the file to write; left untouched when the output is identical.
        source: the template file (``include`` and ``import`` look beside it); or ``inline``, its text.
        vars: plain values by name.
        secrets_from_files: name -> file holding a secret (read now, masked everywhere; mode 0400 by default).
        files: name -> a JSON, YAML, TOML or env file, parsed (``{{ app.db_password }}``).
        mode: the file's mode as a quoted octal string (``"0644"``).
        timeout: seconds for the task.

    Returns:
        ``"1 of 1 files written"`` or ``"0 of 1 files written"`` (unchanged).

    Example:
        ```python
        from prefect import flow
        from prefect_init.tasks.template import render_template

        @flow
        def configure():
            render_template("/config/nginx.conf", source="/templates/nginx.conf.j2",
                            vars={"server_name": "shop.example.com"},
                            secrets_from_files={"db_password": "/secrets/db_password"})
        ```
    """
    spec = template.TemplateSpec.model_validate({
        "dest": dest, "source": source, "inline": inline, "vars": vars or {}, "files": files or {},
        "secrets": {name: {"file": path} for name, path in (secrets_from_files or {}).items()},
        **({"mode": mode} if mode else {})})
    return run_step_model(template.Step(name="template", template=spec), timeout)
