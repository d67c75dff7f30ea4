"""Literal credentials in a spec's text: what ``deploy`` refuses to store as a deployment's parameter.

A deployment's parameters are readable by anyone who can read the deployment (the UI, the API, every flow
run's record). So a credential in the spec must be a reference resolved where the run executes: ``${VAR}``
or ``{file: ...}``. Refused, each with its line: a password in a URL or DSN, and any value of a header, a
``password``, a ``secret_id`` or an ``env`` entry written inline.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
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


def _is_reference(value: str) -> bool:
    return "${" in value


def _scan(node: Any, path: Path_, source: SourceMap, out: list[SpecProblem]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            child = (*path, key)
            if key in _SECRET_KEYS and isinstance(value, str) and not _is_reference(value):
                out.append(source.problem(child, "a literal credential: write it as ${VAR} or {file: PATH}, "
                                                 "resolved where the run executes"))
            elif key in _SECRET_MAPS and isinstance(value, dict):
                for name, item in value.items():
                    if isinstance(item, str) and not _is_reference(item):
                        out.append(source.problem((*child, name), f"an inline {key} value: write it as ${{VAR}} "
                                                  "or {file: PATH} (a deployment's parameters are readable by "
                                                  "anyone who can read the deployment)"))
                    elif not isinstance(item, str):
                        _scan(item, (*child, name), source, out)
            else:
                _scan(value, child, source, out)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            _scan(item, (*path, index), source, out)
    elif isinstance(node, str):
        for pattern in (_URL_PASSWORD, _DSN_PASSWORD):
            match = pattern.search(node)
            if match and not _is_reference(match.group(1)):
                out.append(source.problem(path, "a literal password in a URL or DSN: write the password (or the "
                                                "whole URL) as ${VAR}"))
                break


def literal_credentials(text: str, file: str) -> list[SpecProblem]:
    """Every literal credential in ``text``, a spec that is otherwise valid; never the value itself."""
    data, source, _ = load_yaml(text, file, _AsWritten())
    out: list[SpecProblem] = []
    if isinstance(data, dict):
        _scan(data.get("steps"), ("steps",), source, out)
    return out


__all__ = ["literal_credentials"]


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
