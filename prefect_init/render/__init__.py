"""``prefect-init render``: the Kubernetes YAML (or the work pool's job template) that runs a spec."""

from __future__ import annotations

import json
from typing import Any

import yaml

from ..spec import Spec
from .options import KINDS, RenderOptions
from .pod import Doc
from .workloads import cronjob, deployment, job

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
    """The manifests of ``kind`` (not ``work-pool``, which is JSON: see :func:`render`)."""
    makers = {"init-container": deployment, "job": job, "cronjob": cronjob}
    return makers[kind](spec, options)


def render(kind: str, spec: Spec, options: RenderOptions) -> str:
    if kind == "work-pool":
        from .workpool import base_job_template

        template: dict[str, Any] = base_job_template(options)
        return json.dumps(template, indent=2) + "\n"
    return to_yaml(documents(kind, spec, options))
