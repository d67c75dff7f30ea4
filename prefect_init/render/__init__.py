"""``prefect-init render``: the Kubernetes YAML (or the work pool's job template) that runs a spec."""

from __future__ import annotations

from typing import Any

import yaml

from prefect_init.render.options import KINDS, RenderOptions
from prefect_init.render.pod import Doc
from prefect_init.render.workloads import cronjob, deployment, job
from prefect_init.spec.model import Spec

__all__ = ["KINDS", "RenderOptions", "documents", "render", "to_yaml"]


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the spec in its ConfigMap) as literal blocks, readable in ``kubectl get -o yaml``;
    no anchors or aliases (a shared dict is written out twice)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(docs: list[Doc]) -> str:
    """A YAML stream, one document per manifest."""
    return yaml.dump_all(docs, Dumper=_Dumper, sort_keys=False, default_flow_style=False, explicit_start=True,
                         width=120)


def documents(kind: str, spec: Spec, options: RenderOptions) -> list[Doc]:
    """The manifests of ``kind``: ``init-container``, ``job`` or ``cronjob``."""
    makers = {"init-container": deployment, "job": job, "cronjob": cronjob}
    return makers[kind](spec, options)


def render(kind: str, spec: Spec, options: RenderOptions) -> str:
    """The YAML stream of ``kind``; the work pool's template is the Prefect adapter's
    (:func:`prefect_init.prefect_adapter.workpool.render_work_pool`)."""
    return to_yaml(documents(kind, spec, options))
