"""Is there a Prefect API to run against? Decided without importing prefect (that alone costs ~1 s, ~78 MB).

The API URL comes from ``PREFECT_API_URL``, else from the active Prefect profile (``PREFECT_PROFILE`` or the
``active`` entry of ``$PREFECT_HOME/profiles.toml``). It "answers" when ``GET {url}/health`` gets any HTTP
response within the probe timeout, a whole one: the status line and headers (a redirect is an answer, not
followed; the body is not read).
"""

from __future__ import annotations

import os
import threading
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

PROBE_TIMEOUT = 1.5


def profile_setting(name: str) -> str | None:
    """A setting of the active Prefect profile (``PREFECT_PROFILE`` or ``active`` in ``profiles.toml``)."""
    home = Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()
    try:
        profiles = tomllib.loads((home / "profiles.toml").read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active")
    value = profiles.get("profiles", {}).get(active, {}).get(name) if active else None
    return str(value) if value else None


def configured_api_url() -> str | None:
    return os.environ.get("PREFECT_API_URL") or profile_setting("PREFECT_API_URL")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect (an SSO proxy's login) is an answer: not followed to another host, it raises HTTPError."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def _probe(url: str, timeout: float, answered: list[bool], done: threading.Event) -> None:
    try:
        opener = urllib.request.build_opener(_NoRedirect)
        with opener.open(url.rstrip("/") + "/health", timeout=timeout):
            answered.append(True)
    except urllib.error.HTTPError:
        answered.append(True)  # it answered, if only to refuse
    except Exception:  # refused, unreachable, a bad URL, headers too long or that make no sense: no answer
        pass
    finally:
        done.set()


def api_answers(url: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether ``GET {url}/health`` gets its status line and headers within ``timeout`` seconds, as a whole:
    urllib bounds each read, so headers trickled a byte at a time would hold a pod for as long as they last. The
    probe runs in a thread of its own, abandoned (a daemon) at the deadline."""
    answered: list[bool] = []
    done = threading.Event()
    threading.Thread(target=_probe, args=(url, timeout, answered, done), name="prefect-probe", daemon=True).start()
    return done.wait(timeout) and bool(answered)


_CLOUD_API = "https://api.prefect.cloud/api/accounts/"


def ui_url(api_url: str, path: str) -> str:
    """A link into the Prefect UI, found as Prefect finds it: ``PREFECT_UI_URL`` (the environment, then the
    profile), else Prefect Cloud's app for its API, else the API URL without ``/api``."""
    base = os.environ.get("PREFECT_UI_URL") or profile_setting("PREFECT_UI_URL")
    if not base:
        api = api_url.rstrip("/")
        if api.startswith(_CLOUD_API):
            base = "https://app.prefect.cloud/account/" + api.removeprefix(_CLOUD_API).replace(
                "/workspaces/", "/workspace/", 1)
        else:
            base = api.removesuffix("/api")
    return f"{base.rstrip('/')}/{path.lstrip('/')}"
