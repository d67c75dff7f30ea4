"""``prefect-init run`` against a Prefect API: the spec runs as the ``prefect-init`` flow, in this process."""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack

from .redaction import redact
from .spec import Spec


def run_in_prefect(spec: Spec, only: list[str] | None, status_file: str | None) -> tuple[bool, str]:
    """Run the flow; (succeeded, reason). A failure of Prefect itself is a one-line reason, not a traceback.

    The flow takes the spec's path (never its expanded values). A spec read from standard input is handed over
    as a private temporary file, since standard input cannot be read twice.
    """
    with ExitStack() as stack:
        path = spec.file
        if path == "-":
            handle = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="prefect-init-"))
            os.chmod(handle.name, 0o600)
            handle.write(spec.text)
            handle.flush()
            path = handle.name
        return _run_flow(path, only, status_file)


def _run_flow(spec_path: str, only: list[str] | None, status_file: str | None) -> tuple[bool, str]:
    try:
        from prefect_init.flows.spec_flow import run_spec

        state = run_spec(spec_path=spec_path, only=only, status_file=status_file, return_state=True)
    except Exception as exc:  # a broken Prefect setting, the API going away mid-run, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return False, redact(f"Prefect failed: {type(exc).__name__}: {first} (check PREFECT_* settings and the API)")
    return state.is_completed(), state.message or state.name
