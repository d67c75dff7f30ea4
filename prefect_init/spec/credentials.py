"""Literal credentials in a spec's text: what ``deploy`` refuses to store as a deployment's parameter, and what
``check`` and ``render`` warn of.

A deployment's parameters are readable by anyone who can read the deployment (the UI, the API, every flow
run's record); a rendered ConfigMap by anyone who can read the namespace's ConfigMaps. So a credential in the
spec must be a reference resolved where the run executes: ``${VAR}`` or ``{file: ...}``. Found, each with its
line: a password in a URL or DSN, and any value of a header, a ``password``, a ``secret_id`` or an ``env`` entry
written inline, and the same written as a variable's default (``${DATABASE_URL:-postgres://app:pw@db/app}``:
the default is stored as written, whatever the variable holds where the spec runs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prefect_init.errors import SpecProblem
from prefect_init.spec.source import Path_, SourceMap, load_yaml

_URL_PASSWORD = re.compile(r"://[^/@:\s]*:([^@/\s]+)@")
_DSN_PASSWORD = re.compile(r"(?:^|\s)password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", re.IGNORECASE)
CREDENTIAL_NAME = re.compile(r"PASSWORD|PASSWD|PASSPHRASE|(^|_)PASS($|_)|(^|_)PWD($|_)|(^|_)PAT($|_)|SECRET|TOKEN|"
                             r"API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|PRIVATE|CREDENTIAL|(^|_)KEY($|_)|(^|_)AUTH($|_)",
                             re.IGNORECASE)
"""A variable's name that says it holds a credential (``DB_PASSWORD``, ``REDIS_PASS``, ``GH_PAT``, ``APP_KEY``,
``BASIC_AUTH``): its literal value is kept out of specs and manifests (``import``, ``render --env``, ``--into``)."""
_SECRET_KEYS = ("password", "secret_id")
_SECRET_MAPS = ("headers", "env")


class _AsWritten(Mapping[str, str]):
    """Every ``${NAME}`` reads back as itself: the text as written, with the loader's line numbers."""

    def __getitem__(self, name: str) -> str:
        return "${" + name + "}"

    def __contains__(self, name: object) -> bool:
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
DEPLOY_WHY = "a deployment's parameters are readable by anyone who can read the deployment"
RENDER_WHY = "a ConfigMap is readable by anyone who can read the namespace's ConfigMaps"
CHECK_WHY = "deploy refuses it; render writes it into a ConfigMap"


def _is_reference(value: str) -> bool:
    return "${" in value


def _as_written(value: str) -> str:
    """``${NAME:-default}`` read as ``${NAME}``: what is a reference."""
    return _VARIABLE.sub(lambda m: "${" + m[1] + "}", value)


def _with_defaults(value: str) -> str:
    """``${NAME:-default}`` read as its default (what the value is where ``NAME`` is not set); ``${NAME}`` kept."""
    return _VARIABLE.sub(lambda m: m[2] if m[2] is not None else m[0], value)


def _defaulted(value: str) -> list[str]:
    """The variables given a non-empty default in ``value``."""
    return [m[1] for m in _VARIABLE.finditer(value) if m[2]]


def _named_credential(where: str, name: str) -> bool:
    """An ``env`` or ``headers`` entry whose name says it holds a credential (``DB_PASSWORD``, ``X-Api-Key``,
    ``Authorization``)."""
    normal = str(name).replace("-", "_")
    return bool(CREDENTIAL_NAME.search(normal)) or (where == "headers" and normal.lower() in (
        "authorization", "proxy_authorization", "cookie"))


class _Scan:
    def __init__(self, source: SourceMap, strict: bool, why: str) -> None:
        self.source, self.strict, self.why = source, strict, why
        self.out: list[SpecProblem] = []

    def problem(self, path: Path_, message: str) -> None:
        self.out.append(self.source.problem(path, message))

    def default(self, path: Path_, value: str, what: str) -> None:
        names = ", ".join(f"${{{n}:-...}}" for n in _defaulted(value))
        self.problem(path, f"{what} written as a variable's default ({names}): a default is stored as written; "
                           f"give the variable no default (or write the value as {{file: PATH}}) ({self.why})")

    def secret(self, path: Path_, value: str, inline: str) -> None:
        """A value that is a credential as a whole: a reference, never a literal, never a default."""
        if not _is_reference(_as_written(value)):
            self.problem(path, inline)
        elif _defaulted(value):
            self.default(path, value, "a credential")
        else:
            self.text(path, value)

    def text(self, path: Path_, value: str) -> None:
        """Any text: a password in a URL or DSN, literal or in a default."""
        for view, literal in ((_as_written(value), True), (_with_defaults(value), False)):
            for pattern in (_URL_PASSWORD, _DSN_PASSWORD):
                match = pattern.search(view)
                if match and not _is_reference(match.group(1)):
                    if literal:
                        self.problem(path, "a literal password in a URL or DSN: write the password (or the whole "
                                           "URL) as ${VAR}")
                    else:
                        self.default(path, value, "a password in a URL or DSN")
                    return

    def walk(self, node: Any, path: Path_) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                child = (*path, key)
                if key in _SECRET_KEYS and isinstance(value, str):
                    self.secret(child, value, "a literal credential: write it as ${VAR} or {file: PATH}, resolved "
                                              "where the run executes")
                elif key in _SECRET_MAPS and isinstance(value, dict):
                    for name, item in value.items():
                        if isinstance(item, str) and (self.strict or _named_credential(key, name)):
                            self.secret((*child, name), item, f"an inline {key} value: write it as ${{VAR}} or "
                                                              f"{{file: PATH}} ({self.why})")
                        elif isinstance(item, str):
                            self.text((*child, name), item)
                        else:
                            self.walk(item, (*child, name))
                else:
                    self.walk(value, child)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                self.walk(item, (*path, index))
        elif isinstance(node, str):
            self.text(path, node)


def literal_credentials(text: str, file: str, strict: bool = True, why: str = DEPLOY_WHY) -> list[SpecProblem]:
    """Every literal credential in ``text``, a spec that is otherwise valid, written inline or as a variable's
    default; never the value itself. ``strict`` (``deploy``): every inline ``env`` and header value, whatever
    its name; else (``check``, ``render``) only those whose name says they hold a credential."""
    # every "${" read as "$${" (a literal "${"): the loader keeps each value as written, defaults included,
    # and the text keeps its lines
    data, source, _ = load_yaml(text.replace("${", "$${"), file, {})
    scan = _Scan(source, strict, why)
    if isinstance(data, dict):
        scan.walk(data.get("steps"), ("steps",))
    return scan.out


def credential_env(text: str, env: Mapping[str, str] | Iterable[tuple[str, str]]) -> list[str]:
    """The names of ``env``'s literal values (``--env KEY=VALUE``) that are credentials: a variable the spec
    ``text`` reads as one, a name like ``*PASSWORD*``, or a value holding a password (a URL's, a DSN's). The
    one check of ``render --env``, ``deploy --env`` and ``trigger --env``."""
    wanted = credential_variables(text) if text else set()
    pairs = env.items() if isinstance(env, Mapping) else env
    return [key for key, value in pairs
            if key in wanted or CREDENTIAL_NAME.search(key) or is_literal_credential(value)]


__all__ = ["credential_env", "literal_credentials"]


_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}")


def credential_variables(text: str) -> set[str]:
    """The variables a spec reads where it wants a credential: a ``password``, ``secret_id``, header or ``env``
    value, or the password of a URL or DSN. What ``render --env`` must not write into a manifest in the clear."""
    data, _, _ = load_yaml(text, "-", _AsWritten())
    out: set[str] = set()

    def walk(node: Any, secret: bool) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _SECRET_MAPS and isinstance(value, dict):
                    for item in value.values():
                        walk(item, True)
                else:
                    walk(value, secret or key in _SECRET_KEYS)
        elif isinstance(node, list):
            for item in node:
                walk(item, secret)
        elif isinstance(node, str):
            if secret:
                out.update(_REFERENCE.findall(node))
            for pattern in (_URL_PASSWORD, _DSN_PASSWORD):
                match = pattern.search(node)
                if match:
                    out.update(_REFERENCE.findall(match.group(1)))

    if isinstance(data, dict):
        walk(data.get("steps"), False)
    return out


def is_literal_credential(value: str) -> bool:
    """A value with a password in it, as a URL's or a DSN's (``postgres://u:pw@h``, ``password=pw``)."""
    return any(pattern.search(value) for pattern in (_URL_PASSWORD, _DSN_PASSWORD))
