"""The flow that runs a prefect-init spec."""

from prefect_init.flows.spec_flow import run_spec

__all__ = ["run_spec"]
