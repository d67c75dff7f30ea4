"""The YAML writer of everything prefect-init prints or writes (manifests, specs, kustomizations)."""

from __future__ import annotations

from typing import Any

import yaml


class Dumper(yaml.SafeDumper):
    """Multi-line strings (the spec in its ConfigMap) as literal blocks, readable in ``kubectl get -o yaml``;
    no anchors or aliases (a shared dict is written out twice)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value and not any(line != line.rstrip() for line in value.splitlines()) else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


Dumper.add_representer(str, _str)
