"""``prefect-init run`` against a Prefect API: the spec runs as the ``prefect-init`` flow, in this process."""

from __future__ import annotations


def run_in_prefect(spec_path: str, only: list[str] | None, status_file: str | None) -> tuple[bool, str]:
    from prefect_init.flows.run_spec import run_spec

    state = run_spec(spec_path=spec_path, only=only, status_file=status_file, return_state=True)
    return state.is_completed(), state.message or state.name
