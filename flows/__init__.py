"""The flow that runs a prefect-init spec."""

from prefect_init.flows.run_spec import run_spec

__all__ = ["run_spec"]
