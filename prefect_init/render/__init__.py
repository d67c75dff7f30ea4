"""``prefect-init render``: the Kubernetes YAML (or the work pool's job template) that runs a spec."""

from __future__ import annotations

import yaml

from prefect_init.render.dump import Dumper
from prefect_init.render.options import KINDS, RenderOptions
from prefect_init.render.pod import Doc
from prefect_init.render.workloads import cronjob, deployment, job
from prefect_init.spec.model import Spec

__all__ = ["KINDS", "Dumper", "RenderOptions", "documents", "render", "to_yaml"]


def to_yaml(docs: list[Doc]) -> str:
    """A YAML stream, one document per manifest."""
    return yaml.dump_all(docs, Dumper=Dumper, sort_keys=False, default_flow_style=False, explicit_start=True,
                         width=120)


def documents(kind: str, spec: Spec, options: RenderOptions) -> list[Doc]:
    """The manifests of ``kind``: ``init-container``, ``job`` or ``cronjob``."""
    makers = {"init-container": deployment, "job": job, "cronjob": cronjob}
    return makers[kind](spec, options)


def render(kind: str, spec: Spec, options: RenderOptions) -> str:
    """The YAML stream of ``kind``; the work pool's template is the Prefect adapter's
    (:func:`prefect_init.prefect_adapter.workpool.render_work_pool`)."""
    return to_yaml(documents(kind, spec, options))
