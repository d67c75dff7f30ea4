"""The ``validate`` step: files another step wrote, checked before the application starts.

.. code-block:: yaml

    - name: validate-secrets
      after: [secrets]
      validate:
        file: /secrets/app-secrets.json       # or a list of files
        format: auto                          # json | yaml | toml | env | auto (from the suffix)
        required: [api_key, db_password, redis_password]
        schema: /etc/prefect-init/secrets.schema.json
        non_empty: true                       # the file must have content (default)

Every problem of every file comes in one message (``missing required keys: db_password, redis_password``);
no value is ever printed. A failure is final.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from prefect_init.errors import StepFailed
from prefect_init.runtime.context import RunContext
from prefect_init.runtime.documents import Format, check_document, guess_format, load_schema, parse_file
from prefect_init.spec.model import StepBase, StrictModel


class ValidateSpec(StrictModel):
    file: str | list[str]
    format: Literal["json", "yaml", "toml", "env", "auto"] = "auto"
    required: list[str] = Field(default_factory=list)
    schema_: str | None = Field(default=None, alias="schema")
    non_empty: bool = True

    @property
    def files(self) -> list[str]:
        return [self.file] if isinstance(self.file, str) else list(self.file)


class Step(StepBase):
    kind = "validate"
    validate_: ValidateSpec = Field(alias="validate")

    def describe(self) -> str:
        return f"validate: {', '.join(self.validate_.files)}"


def run(step: Step, ctx: RunContext) -> str:
    spec = step.validate_
    schema = load_schema(ctx.resolve(spec.schema_)) if spec.schema_ else None
    problems: list[str] = []
    for name in spec.files:
        path = ctx.resolve(name)
        try:
            size = path.stat().st_size
        except OSError as exc:
            problems.append(f"{path}: {(exc.strerror or 'cannot read').lower()}")
            continue
        if spec.non_empty and size == 0:
            problems.append(f"{path}: is empty")
            continue
        fmt: Format | None = spec.format if spec.format != "auto" else guess_format(name)
        if fmt is None:
            problems.append(f"{path}: cannot tell the format from the suffix; set format:")
            continue
        try:
            check_document(parse_file(path, fmt, str(path)), str(path), spec.required, schema)
        except StepFailed as exc:
            problems.append(str(exc))
    if problems:
        raise StepFailed(problems[0] if len(problems) == 1 else "\n".join(problems))
    ctx.log.info(f"{len(spec.files)} files valid")
    return f"{len(spec.files)} files valid"


def probe(step: Step, ctx: RunContext) -> Any:
    """Files that exist are checked; a missing one is fine when an earlier step writes it, else a problem."""
    from prefect_init.runtime.probe import OK, PROBLEM, Finding

    existing, later, missing = [], [], []
    for name in step.validate_.files:
        path = ctx.resolve(name)
        if path.exists():
            existing.append(name)
        elif ctx.produced_by_ancestor(path):  # type: ignore[attr-defined]
            later.append(f"{path}: produced by an earlier step")
        else:
            missing.append(f"{path}: missing, and no earlier step writes it")
    problems = list(missing)
    if existing:
        subset = Step.model_validate({"name": step.name, "validate": {
            **step.validate_.model_dump(by_alias=True, exclude_unset=True), "file": existing}})
        try:
            run(subset, ctx)
        except StepFailed as exc:
            problems += str(exc).splitlines()
    if problems:
        return Finding(PROBLEM, problems)
    return Finding(OK, [f"{len(existing)} files valid", *later])
