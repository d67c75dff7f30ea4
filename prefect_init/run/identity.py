"""Which pod a run belongs to: the Downward API's variables, turned into a run name, tags and a status entry.

``POD_NAME``, ``POD_NAMESPACE`` and ``NODE_NAME`` (``render init-container`` sets them from the Downward API); in
a pod without them (``KUBERNETES_SERVICE_HOST`` is set in every pod), ``HOSTNAME`` is the pod's name. Outside
Kubernetes (a laptop, CI) a run has no pod identity: its name is the spec's name.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    pod: str | None = None
    namespace: str | None = None
    node: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Identity:
        env = os.environ if env is None else env
        pod = env.get("POD_NAME") or (env.get("HOSTNAME") if env.get("KUBERNETES_SERVICE_HOST") else None)
        return cls(pod or None, env.get("POD_NAMESPACE") or None, env.get("NODE_NAME") or None)

    def run_name(self, spec_name: str) -> str:
        """``<spec name>/<pod name>``, or the spec's name alone outside a pod."""
        return f"{spec_name}/{self.pod}" if self.pod else spec_name

    def tags(self, spec_name: str, extra: list[str] | tuple[str, ...] = ()) -> list[str]:
        tags = ["prefect-init", f"spec:{spec_name}"]
        tags += [f"{key}:{value}" for key, value in self.to_dict().items()]
        return list(dict.fromkeys([*tags, *extra]))

    def to_dict(self) -> dict[str, str]:
        return {key: value for key, value in (("namespace", self.namespace), ("pod", self.pod),
                                              ("node", self.node)) if value}
