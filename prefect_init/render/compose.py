"""``render compose SPEC [--into COMPOSE.yaml] [--service NAME ...]``: the initContainer pattern for Docker Compose.

A service ``<name>-init`` runs the spec from the init image and exits; the app's services wait for it with
``depends_on: {<name>-init: {condition: service_completed_successfully}}`` (a failed step: they never start). What
the spec writes is on named volumes mounted into the init service and into the services that read them; a
directory such a service already mounts (a named volume, a bind mount) is written through that same mount, at
the same path. The spec itself is a read-only bind mount of the spec file, relative to the compose file, and so
is each ``--files LOCAL_DIR:PATH`` directory (migrations, templates).

Compose has no ``fsGroup``: a new named volume belongs to root, so the init service runs as root with every
capability dropped but CHOWN, FOWNER and DAC_OVERRIDE (what a chown and writing into another user's directory
need), on a read-only root with ``/tmp`` and its own directories (the status file's, ``/secrets`` when nothing
is written there) as tmpfs.
"""

from __future__ import annotations

import copy
import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from prefect_init.render.env import unprovided
from prefect_init.render.into import IntoError, app_dirs, under
from prefect_init.render.options import APP_IMAGE_PLACEHOLDER, RenderOptions
from prefect_init.render.pod import OWNER_CAPABILITIES, SPEC_PATH, Doc, status_file, volume_dirs, volume_name
from prefect_init.spec.model import Spec

COMPLETED = "service_completed_successfully"
APP = "app"


@dataclass
class Compose:
    text: str
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Mount:
    """One entry of a service's ``volumes``, either syntax."""

    source: str | None
    target: str
    read_only: bool
    kind: str
    """``volume``, ``bind``, ``tmpfs``, ..."""


def parse_mount(entry: Any) -> Mount | None:
    if isinstance(entry, dict):
        target = entry.get("target")
        if not isinstance(target, str):
            return None
        return Mount(entry.get("source"), posixpath.normpath(target), bool(entry.get("read_only")),
                     str(entry.get("type") or "volume"))
    if not isinstance(entry, str):
        return None
    parts = entry.split(":")
    if len(parts) == 1:
        return Mount(None, posixpath.normpath(parts[0]), False, "volume")
    source, target, mode = parts[0], parts[1], parts[2] if len(parts) > 2 else ""
    kind = "bind" if source.startswith((".", "/", "~")) else "volume"
    return Mount(source, posixpath.normpath(target), "ro" in mode.split(","), kind)


def service_hosts(text: str, services: list[str]) -> list[str]:
    """The services a text reaches by name: ``//db:5432``, ``@db/``, ``host: db``, ``db:6379``."""
    out = []
    for name in services:
        word = re.escape(name)
        if re.search(rf"(?:(?://|@){word}(?=[:/?\s\"']|$))|(?:\bhost\s*[:=]\s*[\"']?{word}\b)|(?:(?<![\w./-]){word}:\d+)",
                     text, re.MULTILINE):
            out.append(name)
    return out


def _escape(value: str) -> str:
    """Compose interpolates ``$`` in the file itself: a literal value keeps its ``$`` as ``$$``."""
    return value.replace("$", "$$")


def _relative(path: str, compose_dir: str) -> str:
    """A bind mount's source, relative to the compose file (as compose reads it)."""
    relative = posixpath.relpath(posixpath.abspath(path), posixpath.abspath(compose_dir))
    return relative if relative.startswith(("../", "./")) else "./" + relative


def render_compose(spec: Spec, options: RenderOptions, spec_path: str, compose_dir: str,
                   into: tuple[str, str] | None = None, services: tuple[str, ...] = ()) -> Compose:
    """The compose file: ``into`` is (its name, its text), else a minimal one with an ``app`` service."""
    from prefect_init.render import to_yaml

    notes: list[str] = []
    if into is not None:
        where, text = into
        from prefect_init.render.stream import StreamProblem, load_all

        try:
            documents = load_all(text, where)
        except StreamProblem as exc:
            raise IntoError(str(exc)) from None
        if len(documents) > 1:
            raise IntoError(f"{where}: {len(documents)} YAML documents: a compose file is one")
        document = documents[0] if documents else None
        if not isinstance(document, dict) or not isinstance(document.get("services"), dict) or \
                not document["services"]:
            raise IntoError(f"{where}: not a compose file (no services: mapping)")
        document = copy.deepcopy(document)
    else:
        document = {"services": {APP: {"image": options.app_image or APP_IMAGE_PLACEHOLDER}}}
    all_services: dict[str, Any] = document["services"]
    where = into[0] if into is not None else "compose"
    for name, service in all_services.items():
        if service is not None and not isinstance(service, dict):
            raise IntoError(f"{where}: services.{name}: expected a mapping")
        for key, kinds in (("volumes", (list,)), ("depends_on", (list, dict))):
            if service and service.get(key) is not None and not isinstance(service[key], kinds):
                raise IntoError(f"{where}: services.{name}.{key}: expected a "
                                f"{' or a '.join(k.__name__ for k in kinds)}")
    init_name = f"{spec.name}-init"
    unknown = [s for s in services if s not in all_services]
    if unknown:
        raise IntoError(f"--service {', '.join(unknown)}: no such service (services: {', '.join(all_services)})")
    if services:
        targets = list(services)
    else:
        reached = service_hosts("\n".join([spec.text, *(v for _, v in options.env)]), list(all_services))
        targets = [s for s in all_services if s not in reached and s != init_name]
        if reached:
            notes.append(f"note: {', '.join(reached)}: the spec reaches {'them' if len(reached) > 1 else 'it'}, "
                         f"so {'they do' if len(reached) > 1 else 'it does'} not wait for {init_name}; "
                         f"{', '.join(targets) or 'no service'} wait{'s' if len(targets) == 1 else ''} for it "
                         "(choose with --service)")
    if init_name in targets:
        raise IntoError(f"--service {init_name}: that is the init service itself")

    data_dirs, memory = volume_dirs(spec)
    shared = app_dirs(spec, data_dirs)
    top: dict[str, Any] = dict(document["volumes"]) if isinstance(document.get("volumes"), dict) else {}
    path, needs_flag = status_file(spec)
    init: Doc = {"image": options.image, "command": ["run", SPEC_PATH, *(["--status-file", path] if needs_flag
                                                                      else [])],
                 "restart": "no"}
    environment = {k: _escape(v) for k, v in options.env}
    if options.api_url:
        environment["PREFECT_API_URL"] = _escape(options.api_url)
    if environment:
        init["environment"] = environment
    init_volumes: list[Any] = [f"{_relative(spec_path, compose_dir)}:{SPEC_PATH}:ro"]
    init_volumes += [f"{_relative(m.source, compose_dir)}:{m.path}:ro" for m in options.files]  # --files
    tmpfs = ["/tmp"]
    added: dict[str, Doc] = {}
    target_mounts: dict[str, list[Any]] = {}
    for directory in data_dirs:
        held = None
        for name in targets:
            mounts = [(m, e) for e in all_services[name].get("volumes") or []
                      if (m := parse_mount(e)) is not None and under(directory, m.target)]
            if mounts:
                held = max(mounts, key=lambda pair: len(pair[0].target))
                break
        if held is not None:
            mount, entry = held
            if mount.kind == "tmpfs" or (mount.source is None and mount.kind == "volume"):
                notes.append(f"warning: {directory}: the service mounts an anonymous volume or tmpfs at "
                             f"{mount.target}, which no other container shares: mount a named volume there")
            entry = copy.deepcopy(entry)
            if isinstance(entry, dict):
                entry.pop("read_only", None)
            elif mount.read_only:
                entry = ":".join(entry.split(":")[:2])
            if not any((m := parse_mount(e)) is not None and m.target == mount.target for e in init_volumes):
                init_volumes.append(entry)  # two directories under one mount: that mount once
            continue
        if directory not in shared:
            tmpfs.append(directory)
            continue
        name = volume_name(directory)
        final = name if name not in top else f"{spec.name}-init-{name}"
        added[final] = {"driver_opts": {"type": "tmpfs", "device": "tmpfs"}} if directory in memory else {}
        init_volumes.append(f"{final}:{directory}")
        for target in targets:
            target_mounts.setdefault(target, []).append(f"{final}:{directory}" + (":ro" if directory in memory
                                                                                   else ""))
    init["volumes"] = init_volumes
    init["tmpfs"] = tmpfs
    init["read_only"] = True
    init["user"] = "0:0"
    init["cap_drop"] = ["ALL"]
    init["cap_add"] = list(OWNER_CAPABILITIES)
    init["security_opt"] = ["no-new-privileges:true"]

    out_services: dict[str, Any] = {init_name: init} if into is None else {}
    for name, service in all_services.items():
        if name == init_name:
            continue  # an earlier render's: replaced
        service = copy.deepcopy(service) if isinstance(service, dict) else {}
        if name in targets:
            service["depends_on"] = _depends_on(service.get("depends_on"), init_name)
            have = {m.target for e in service.get("volumes") or [] if (m := parse_mount(e)) is not None}
            extra = [e for e in target_mounts.get(name, []) if posixpath.normpath(e.split(":")[1]) not in have]
            if extra:
                service["volumes"] = [*(service.get("volumes") or []), *extra]
        out_services[name] = service
    if into is not None:
        out_services[init_name] = init
    document["services"] = out_services
    if added:
        document["volumes"] = {**top, **{k: v for k, v in added.items() if k not in top}}
    return Compose(to_yaml([document]).removeprefix("---\n"), notes)


def _depends_on(existing: Any, init_name: str) -> Any:
    """``existing`` with the init service added, in the form it had (a list becomes a mapping: a condition
    needs one; a listed service waits as the list form does, for its start)."""
    wanted = {"condition": COMPLETED}
    if isinstance(existing, dict):
        return {**existing, init_name: wanted}
    listed = [s for s in existing or [] if isinstance(s, str) and s != init_name]
    return {**{s: {"condition": "service_started"} for s in listed}, init_name: wanted}


def compose_unprovided_note(spec: Spec, options: RenderOptions) -> list[str]:
    """The variables the spec reads without a default that the init service's environment does not set."""
    names = unprovided(spec, options)
    if not names:
        return []
    return [f"note: the spec reads {', '.join(names)}, and the init service's environment does not set "
            f"{'them' if len(names) > 1 else 'it'}: render with --env NAME=VALUE, or add them to its environment "
            "(an env_file for credentials)"]
