"""What the commands share: the typer ``app`` they register on, the exit codes, one line per error."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from prefect_init.errors import SpecError

if TYPE_CHECKING:
    from prefect_init.spec.model import Spec

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  rich_markup_mode=None)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def err(message: str) -> None:
    sys.stderr.write(message.rstrip("\n") + "\n")
    sys.stderr.flush()


def load(path: str, defer_unset: bool = False) -> Spec:
    from prefect_init.spec.load import load_spec  # here, not at the top: --help needs no pydantic model

    try:
        return load_spec(path, defer_unset=defer_unset)
    except SpecError as exc:
        for problem in exc.problems:
            err(str(problem))
        raise typer.Exit(EXIT_USAGE) from None


def pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not key.replace("_", "a").isalnum() or key[0].isdigit():
            err(f"{flag} {item!r}: expected KEY=VALUE with KEY a variable name")
            raise typer.Exit(EXIT_USAGE)
        out[key] = value
    return out


def needs_prefect(command: str) -> None:
    """A command that needs prefect, in the init image (which leaves it out): one line and exit 2."""
    from importlib.util import find_spec

    if find_spec("prefect") is None or find_spec("prefect_kubernetes") is None:
        err(f"prefect-init {command}: needs prefect, which this install leaves out (the init image): use the "
            "worker image, or `pip install prefect-init`")
        raise typer.Exit(EXIT_USAGE)


@contextmanager
def one_line_failures() -> Iterator[None]:
    """A spec error (exit 2, one line per problem) or a command's own failure (its code, one line): no traceback."""
    from prefect_init.prefect_adapter.client import CommandError

    try:
        yield
    except SpecError as exc:
        for problem in exc.problems:
            err(str(problem))
        raise typer.Exit(EXIT_USAGE) from None
    except CommandError as exc:
        err(f"prefect-init: {exc}")
        raise typer.Exit(exc.code) from None


def duration(flag: str, value: str) -> float:
    from prefect_init.spec.durations import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        err(f"{flag} {value!r}: {exc}")
        raise typer.Exit(EXIT_USAGE) from None

