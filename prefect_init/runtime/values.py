"""Values a spec may give inline or as ``{file: path}``; values from files are secrets."""

from __future__ import annotations

from prefect_init.errors import StepFailed
from prefect_init.runtime.context import RunContext
from prefect_init.runtime.redaction import register_secret
from prefect_init.spec.model import FromFile


def resolve_value(value: str | FromFile, ctx: RunContext, what: str) -> str:
    """The value itself, or the content of its file (one trailing newline dropped), registered as a secret."""
    if not isinstance(value, FromFile):
        return value
    path = ctx.resolve(value.file)
    try:
        secret = path.read_text(encoding="utf-8").removesuffix("\n")
    except OSError as exc:
        raise StepFailed(f"{what}: cannot read {path}: {exc.strerror}") from None
    register_secret(secret)
    return secret
