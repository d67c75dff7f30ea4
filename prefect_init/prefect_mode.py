"""``prefect-init run`` against a Prefect API: the spec runs as the ``prefect-init`` flow, in this process."""

from __future__ import annotations

from .redaction import redact


def run_in_prefect(spec_path: str, only: list[str] | None, status_file: str | None) -> tuple[bool, str]:
    """Run the flow; (succeeded, reason). A failure of Prefect itself is a one-line reason, not a traceback."""
    try:
        from prefect_init.flows.spec_flow import run_spec

        state = run_spec(spec_path=spec_path, only=only, status_file=status_file, return_state=True)
    except Exception as exc:  # a broken Prefect setting, the API going away mid-run, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return False, redact(f"Prefect failed: {type(exc).__name__}: {first} (check PREFECT_* settings and the API)")
    return state.is_completed(), state.message or state.name
