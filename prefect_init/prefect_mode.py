"""``prefect-init run`` against a Prefect API: the spec runs as the ``prefect-init`` flow, in this process."""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack

from .outcome import one_line
from .redaction import redact
from .spec import Spec


def run_in_prefect(spec: Spec, only: list[str] | None, status_file: str | None) -> tuple[bool, str]:
    """Run the flow; (succeeded, reason). A failure of Prefect itself is a one-line reason, not a traceback.

    The flow takes the spec's path (never its expanded values). A spec read from standard input is handed over
    as a private temporary file, since standard input cannot be read twice, with its base directory (the
    current one), so relative paths mean the same as in local mode.
    """
    with ExitStack() as stack:
        path, base_dir = spec.file, None
        if path == "-":
            base_dir = str(spec.base_dir)
            handle = stack.enter_context(tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="prefect-init-"))
            os.chmod(handle.name, 0o600)
            handle.write(spec.text)
            handle.flush()
            path = handle.name
        return _run_flow(path, only, status_file, base_dir)


def _run_flow(spec_path: str, only: list[str] | None, status_file: str | None,
              base_dir: str | None) -> tuple[bool, str]:
    try:
        from prefect_init.flows.spec_flow import run_spec

        state = run_spec(spec_path=spec_path, only=only, status_file=status_file, base_dir=base_dir,
                         return_state=True)
    except Exception as exc:  # a broken Prefect setting, the API going away mid-run, ...
        return False, redact(f"Prefect failed: {type(exc).__name__}: {one_line(str(exc), 200)} "
                             "(check PREFECT_* settings and the API)")
    return state.is_completed(), state.message or state.name
