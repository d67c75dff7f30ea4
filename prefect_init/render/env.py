"""The variables of the prefect-init container: the pod's identity, the Prefect API, and what the spec reads
(``--env-from-secret``, ``--env-from-configmap``, ``--env``); and what ``render`` says when nothing provides one."""

from __future__ import annotations

import shlex
from typing import Any

from prefect_init.render.options import RenderOptions
from prefect_init.spec.credentials import RENDER_WHY, credential_env, literal_credentials
from prefect_init.spec.interpolate import required_variables
from prefect_init.spec.model import Spec

Doc = dict[str, Any]

API_KEY_SECRET = {"name": "prefect-api-key", "key": "key"}
"""Where ``PREFECT_API_KEY`` comes from: ``kubectl create secret generic prefect-api-key --from-literal=key=...``."""
DOWNWARD = (("POD_NAME", "metadata.name"), ("POD_NAMESPACE", "metadata.namespace"), ("NODE_NAME", "spec.nodeName"))


def downward_env() -> list[Doc]:
    """The pod's identity (Downward API): names the Prefect flow run after the pod."""
    return [{"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}} for name, path in DOWNWARD]


def api_env(options: RenderOptions) -> list[Doc]:
    """``PREFECT_API_URL`` only when asked for (else the run is local); the key from a Secret, optional, so a
    self-hosted server without keys works too."""
    if not options.api_url:
        return []
    return [{"name": "PREFECT_API_URL", "value": options.api_url},
            {"name": "PREFECT_API_KEY", "valueFrom": {"secretKeyRef": {**API_KEY_SECRET, "optional": True}}}]


def container_env(options: RenderOptions) -> tuple[list[Doc], list[Doc]]:
    """(``env``, ``envFrom``) of the prefect-init container. ``env`` wins over ``envFrom`` in Kubernetes, so
    the pod's identity and the API's address cannot be shadowed by a Secret's key of the same name."""
    env: list[Doc] = [*downward_env(), *api_env(options)]
    env += [{"name": k, "value": v} for k, v in options.env]
    env_from: list[Doc] = [{"secretRef": {"name": n}} for n in options.env_from_secrets]
    env_from += [{"configMapRef": {"name": n}} for n in options.env_from_configmaps]
    return env, env_from


def literal_credential_env(spec: Spec, env: list[tuple[str, str]] | tuple[tuple[str, str], ...]) -> list[str]:
    """The names of the literal values that are credentials: a variable the spec reads as one, a name like
    ``*PASSWORD*``, or a value holding a password (a URL's, a DSN's)."""
    return credential_env(spec.text, env)


def refused_env(spec: Spec, options: RenderOptions) -> list[str]:
    """``--env`` values that are credentials (what ``deploy`` refuses to store): each one line, no value."""
    return [f"render: --env {key}: a credential is not written into a manifest in the clear; put it in a Secret "
            f"and add --env-from-secret NAME (kubectl create secret generic NAME --from-literal={key}=...)"
            for key in literal_credential_env(spec, options.env)]


def credential_warnings(spec: Spec) -> list[str]:
    """A credential written into the spec itself (a password in a URL, an ``env`` token, literal or as a
    variable's default): ``render`` puts the spec into a ConfigMap as written, so it says so, each with its line.
    A warning, not a refusal: the manifest is the user's to apply (``deploy``, which stores it, refuses)."""
    return [f"warning: {problem}" for problem in literal_credentials(spec.text, spec.file, strict=False,
                                                                      why=RENDER_WHY)]


def unprovided(spec: Spec, options: RenderOptions) -> list[str]:
    """Variables the spec reads without a default that nothing rendered provides. With an ``envFrom`` source
    given, it is taken to provide them (what a Secret holds is not known here)."""
    if options.env_from_secrets or options.env_from_configmaps:
        return []
    env, _ = container_env(options)
    given = {str(item["name"]) for item in env}
    return [name for name in required_variables(spec.text) if name not in given]


def unprovided_note(spec: Spec, options: RenderOptions) -> list[str]:
    """What ``render`` prints on stderr for :func:`unprovided` variables: which, and how to provide them."""
    names = unprovided(spec, options)
    if not names:
        return []
    secret = f"{spec.name}-init-env"
    create = " ".join(["kubectl", "create", "secret", "generic", secret,
                       *(f"--from-literal={name}=..." for name in names)])
    return [f"note: the spec reads {', '.join(names)}, and nothing in this manifest sets "
            f"{'them' if len(names) > 1 else 'it'}: the init container would exit 2. Create them, then render "
            f"with --env-from-secret {shlex.quote(secret)}:",
            f"  {create}"]
