"""The spec and its plan: reading a YAML spec into checked models, and the order its steps run in.

The lowest layer: it imports nothing of prefect_init but :mod:`prefect_init.errors`. A step kind's model is
found through :mod:`prefect_init.spec.registry` (by module path, imported only when a spec uses the kind).
``load_spec`` and ``parse_spec`` (in :mod:`prefect_init.spec.load`) are re-exported here.
"""

from prefect_init.spec.load import load_spec, parse_spec
from prefect_init.spec.model import Spec, StepBase

__all__ = ["Spec", "StepBase", "load_spec", "parse_spec"]
