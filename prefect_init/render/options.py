"""What ``prefect-init render`` is told on its command line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

KINDS = ("init-container", "job", "cronjob", "work-pool", "kustomize", "compose")
Hook = Literal["helm", "argo"]

APP_IMAGE_PLACEHOLDER = "registry.example.invalid/your-app:replace-me"
"""The app container's image when ``--app-image`` is not given: a name that cannot pull, so it is replaced."""


@dataclass(frozen=True)
class RenderOptions:
    image: str
    namespace: str | None = None
    service_account: str | None = None
    api_url: str | None = None
    app_image: str = APP_IMAGE_PLACEHOLDER
    hook: Hook | None = None
    schedule: str | None = None
    timezone: str | None = None
    env_from_secrets: tuple[str, ...] = ()
    """``--env-from-secret``: Secrets whose every key becomes a variable of the prefect-init container."""
    env_from_configmaps: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    """``--env KEY=VALUE``: literal variables (never a credential: those come from a Secret)."""
    files: tuple[FilesMount, ...] = ()
    """``--files LOCAL_DIR:PATH``: directories packed into ConfigMaps, mounted read-only at PATH."""


@dataclass(frozen=True)
class FilesMount:
    """A local directory's files (``name`` relative path -> bytes), for a ConfigMap mounted at ``path``."""

    path: str
    files: tuple[tuple[str, bytes], ...]
    source: str = ""
