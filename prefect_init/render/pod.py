"""The parts every rendered pod shares: the spec's ConfigMap, volumes, security contexts, the prefect-init
container. Plain dicts, ready for ``yaml.safe_dump``; nothing here imports prefect."""

from __future__ import annotations

import posixpath
import re
from typing import Any

from prefect_init.render.env import container_env
from prefect_init.render.files import data as files_data
from prefect_init.render.files import key as files_key
from prefect_init.render.files import read_warnings
from prefect_init.render.options import FilesMount, RenderOptions
from prefect_init.spec.model import Spec
from prefect_init.spec.writes import step_writes

UID = 10001
"""The image's non-root user (``deployments/Dockerfile``)."""
SPEC_DIR = "/etc/prefect-init"
SPEC_KEY = "init.yaml"
SPEC_PATH = f"{SPEC_DIR}/{SPEC_KEY}"
SECRETS_DIR = "/secrets"
STATUS_DIR = "/status"
CONTAINER = "prefect-init"

Doc = dict[str, Any]


def labels(spec: Spec, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": spec.name, "app.kubernetes.io/component": component,
            "app.kubernetes.io/managed-by": "prefect-init"}


def metadata(name: str, spec: Spec, component: str, options: RenderOptions,
             annotations: dict[str, str] | None = None) -> Doc:
    meta: Doc = {"name": name}
    if options.namespace:
        meta["namespace"] = options.namespace
    meta["labels"] = labels(spec, component)
    if annotations:
        meta["annotations"] = annotations
    return meta


def config_map_name(spec: Spec, options: RenderOptions) -> str:
    """``<name>-init-spec``; a hook's own copy is ``<name>-init-spec-hook``: Helm creates hook resources apart
    from the release's, and the same name in both (a chart with the Deployment and its pre-upgrade Job) fails
    the install with "already exists"."""
    return f"{spec.name}-init-spec" + ("-hook" if options.hook else "")


def config_map(spec: Spec, options: RenderOptions, annotations: dict[str, str] | None = None) -> Doc:
    """The spec as written (variables unexpanded: they resolve in the pod), key ``init.yaml``."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": metadata(config_map_name(spec, options), spec, "init-spec", options, annotations),
            "data": {SPEC_KEY: spec.text}}


def pod_security_context() -> Doc:
    return {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"}}


def container_security_context(owner_changes: bool = False) -> Doc:
    """Pod Security's "restricted" profile; with ``owner_changes`` (a step sets an owner), root with exactly
    the three capabilities a chown needs: CHOWN, FOWNER (chmod what another user owns) and DAC_OVERRIDE (create
    files in a directory that now belongs to the app's user); never privileged, no escalation, read-only root.
    That is Pod Security's "baseline" profile."""
    if owner_changes:
        return {"runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 0, "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False, "privileged": False,
                "capabilities": {"drop": ["ALL"], "add": list(OWNER_CAPABILITIES)},
                "seccompProfile": {"type": "RuntimeDefault"}}
    return {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


OWNER_CAPABILITIES = ("CHOWN", "FOWNER", "DAC_OVERRIDE")


def owner_steps(spec: Spec) -> list[str]:
    """The steps that set an owner other than the image's user (a ``files`` entry's or a Vault secret's
    ``owner``): they need root and :data:`OWNER_CAPABILITIES`."""
    out = []
    for step in (spec.data or {}).get("steps", []):
        if not isinstance(step, dict):
            continue
        files, vault = step.get("files"), step.get("vault")
        entries = [*(files.get("dirs") or []), *(files.get("files") or [])] if isinstance(files, dict) else []
        entries += (vault.get("secrets") or []) if isinstance(vault, dict) else []
        owners = {str(e["owner"]) for e in entries if isinstance(e, dict) and e.get("owner") is not None}
        if owners - {str(UID), f"{UID}:{UID}"}:
            out.append(str(step.get("name")))
    return out


def privilege_note(spec: Spec) -> list[str]:
    """What ``render`` says on stderr when the init container runs as root."""
    steps = owner_steps(spec)
    if not steps:
        return []
    return [f"note: {', '.join(steps)} set{'s' if len(steps) == 1 else ''} an owner: the prefect-init container "
            f"runs as root with {', '.join('CAP_' + c for c in OWNER_CAPABILITIES)} added to a dropped ALL (not "
            "privileged, no escalation); the app containers stay non-root. The namespace's Pod Security must allow "
            "'baseline', not 'restricted'."]


def resources() -> Doc:
    """From a measurement: ``examples/myapp.yaml`` run in its pod (tests/pods/test_rendered.py) peaks at 69 MB
    for prefect-init itself (Prefect mode speaks HTTP; prefect is not imported) and 71 MB for its largest child
    (npm's build). The limit is twice their sum, and the request their sum; a step with a heavier program (a
    large build, a JVM migration tool) needs more: set it in your manifest."""
    return {"requests": {"cpu": "100m", "memory": "160Mi"}, "limits": {"cpu": "1", "memory": "320Mi"}}


def _written(spec: Spec) -> list[tuple[str, bool]]:
    """(path, is a directory) of everything the spec writes, from the spec's data."""
    return [w for step in (spec.data or {}).get("steps", []) for w in step_writes(step)]


def _vault_dests(spec: Spec) -> list[str]:
    return [s["dest"] for step in (spec.data or {}).get("steps", []) if isinstance(step, dict)
            for s in (step.get("vault") or {}).get("secrets", []) if isinstance(s, dict) and "dest" in s]


def status_file(spec: Spec) -> tuple[str, bool]:
    """The status file's path in the pod, and whether ``--status-file`` must say it (the spec has none)."""
    if spec.status_file and posixpath.isabs(spec.status_file):
        return spec.status_file, False
    return f"{STATUS_DIR}/result.json", True


def status_file_note(spec: Spec) -> list[str]:
    """What ``render`` says when the pod writes its status elsewhere than the spec's ``status_file``."""
    if spec.status_file and not posixpath.isabs(spec.status_file):
        return [f"note: status_file {spec.status_file} is relative, and would land in the spec's read-only "
                f"ConfigMap: the pod writes {STATUS_DIR}/result.json instead (run --status-file), on the volume the "
                "app container reads"]
    return []


def volume_dirs(spec: Spec) -> tuple[list[str], list[str]]:
    """(directories to mount as emptyDirs, those of them on ``medium: Memory``), and a warning per path that
    cannot work in the pod (relative: under the read-only ConfigMap; or directly under ``/``)."""
    wanted = {SECRETS_DIR, posixpath.dirname(status_file(spec)[0])}
    for path, is_dir in _written(spec):
        if posixpath.isabs(path):
            directory = posixpath.normpath(path if is_dir else posixpath.dirname(path))
            if directory != "/":
                wanted.add(directory)
    ordered = sorted(wanted)
    mounts = [d for d in ordered if not any(d.startswith(o + "/") for o in ordered if o != d)]
    secret_paths = [SECRETS_DIR, *(d for d in _vault_dests(spec) if posixpath.isabs(d))]
    memory = [m for m in mounts if any(p == m or p.startswith(m + "/") for p in secret_paths)]
    return mounts, memory


def path_warnings(spec: Spec, options: RenderOptions | None = None) -> list[str]:
    """Every path the pod cannot provide as the spec wants it: written where no volume can be, or read where
    nothing is (see :func:`prefect_init.render.files.read_warnings`)."""
    out = read_warnings(spec, volume_dirs(spec)[0], options or RenderOptions(image=""))
    for path, is_dir in _written(spec):
        if not posixpath.isabs(path):
            out.append(f"{path}: a relative path resolves under {SPEC_DIR}, the read-only ConfigMap; "
                       "use an absolute path")
        elif posixpath.dirname(posixpath.normpath(path)) == "/" and not is_dir:
            out.append(f"{path}: a file directly under / cannot be on a volume; put it in a directory")
    return out


def volume_name(directory: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", directory.lower()).strip("-")[:63] or "root"


def volumes(spec: Spec, options: RenderOptions) -> list[Doc]:
    mounts, memory = volume_dirs(spec)
    out: list[Doc] = [{"name": "init-spec", "configMap": {"name": config_map_name(spec, options)}},
                      {"name": "tmp", "emptyDir": {}}]
    for mount in options.files:
        items = [{"key": files_key(name), "path": name} for name, _ in mount.files]
        out.append({"name": files_volume_name(mount),
                    "configMap": {"name": files_config_map_name(spec, options, mount), "items": items}})
    for directory in mounts:
        out.append({"name": volume_name(directory),
                    "emptyDir": {"medium": "Memory"} if directory in memory else {}})
    return out


def files_volume_name(mount: FilesMount) -> str:
    return ("files-" + volume_name(mount.path))[:63].rstrip("-")


def files_config_map_name(spec: Spec, options: RenderOptions, mount: FilesMount) -> str:
    return f"{spec.name}-init-files-{volume_name(mount.path)}" + ("-hook" if options.hook else "")


def files_config_maps(spec: Spec, options: RenderOptions, annotations: dict[str, str] | None = None) -> list[Doc]:
    """One ConfigMap per ``--files`` directory: its files, keyed by their flattened path."""
    out = []
    for mount in options.files:
        text, binary = files_data(mount)
        doc: Doc = {"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": metadata(files_config_map_name(spec, options, mount), spec, "init-files", options,
                                         annotations)}
        if text:
            doc["data"] = text
        if binary:
            doc["binaryData"] = binary
        out.append(doc)
    return out


def volume_mounts(spec: Spec, for_app: bool = False, options: RenderOptions | None = None) -> list[Doc]:
    """The init container's mounts (with ``options``' ``--files``); the app container gets the same data
    volumes (secrets read-only)."""
    mounts, memory = volume_dirs(spec)
    out: list[Doc] = [] if for_app else [{"name": "init-spec", "mountPath": SPEC_DIR, "readOnly": True},
                                         {"name": "tmp", "mountPath": "/tmp"}]
    if not for_app and options:
        out += [{"name": files_volume_name(m), "mountPath": m.path, "readOnly": True} for m in options.files]
    for directory in mounts:
        mount: Doc = {"name": volume_name(directory), "mountPath": directory}
        if for_app and (directory in memory or directory == posixpath.dirname(status_file(spec)[0])):
            mount["readOnly"] = True
        out.append(mount)
    return out


def init_container(spec: Spec, options: RenderOptions) -> Doc:
    path, needs_flag = status_file(spec)
    args = ["run", SPEC_PATH] + (["--status-file", path] if needs_flag else [])
    env, env_from = container_env(options)
    container: Doc = {"name": CONTAINER, "image": options.image, "args": args, "env": env}
    if env_from:
        container["envFrom"] = env_from
    return {**container, "volumeMounts": volume_mounts(spec, options=options), "resources": resources(),
            "securityContext": container_security_context(bool(owner_steps(spec))),
            "terminationMessagePolicy": "FallbackToLogsOnError"}


SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
"""Where Kubernetes mounts the pod's service-account token when ``automountServiceAccountToken`` allows it."""
_KUBERNETES_API = re.compile(r"kubectl|KUBERNETES_SERVICE_HOST|kubernetes\.default|serviceaccount", re.IGNORECASE)


def token_steps(spec: Spec) -> list[str]:
    """The steps that need the pod's service-account token: a ``vault`` step logging in with Kubernetes auth
    from the mounted token (its ``jwt_file``, by default the service account's), and a step whose text talks to
    the Kubernetes API (``kubectl``, ``KUBERNETES_SERVICE_HOST``, the service account's directory). A
    ``prefect_run`` wait needs none: it authenticates with ``PREFECT_API_KEY``."""
    import json

    out = []
    for step in (spec.data or {}).get("steps", []):
        if not isinstance(step, dict):
            continue
        vault = step.get("vault")
        auth = vault.get("auth") if isinstance(vault, dict) else None
        kubernetes = auth.get("kubernetes") if isinstance(auth, dict) else None
        jwt = kubernetes.get("jwt_file", SERVICE_ACCOUNT_DIR + "/token") if isinstance(kubernetes, dict) else None
        if (isinstance(jwt, str) and jwt.startswith(SERVICE_ACCOUNT_DIR + "/")) or \
                _KUBERNETES_API.search(json.dumps({k: v for k, v in step.items() if k != "vault"}, default=str)):
            out.append(str(step.get("name")))
    return out


def pod_spec(spec: Spec, options: RenderOptions, restart_policy: str | None = None) -> Doc:
    """What every rendered pod shares. The service-account token is mounted only when a step needs it
    (:func:`token_steps`): a pod whose token nobody reads has no credential to lose."""
    out: Doc = {}
    if options.service_account:
        out["serviceAccountName"] = options.service_account
    out["automountServiceAccountToken"] = bool(token_steps(spec))
    if restart_policy:
        out["restartPolicy"] = restart_policy
    out["securityContext"] = pod_security_context()
    out["volumes"] = volumes(spec, options)
    return out
