"""Strict schema checks of Kubernetes documents with kubernetes-validate (no API server can run here)."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import yaml

VERSIONS = ("1.29", kubernetes_validate.utils.latest_version())
"""The oldest release we support and the newest the installed kubernetes-validate knows."""


def assert_valid(doc: dict[str, Any]) -> None:
    for version in VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            raise AssertionError(f"{doc['kind']} {doc['metadata'].get('name')} invalid for {version}: "
                                 f"{exc.message} at {list(exc.path)}") from None


def load_stream(text: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]
