"""What ``deploy``, ``trigger`` and ``runs`` share: a Prefect client that fails in one line, and UI links."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from prefect_init.prefect_adapter.discovery import api_answers, configured_api_url
from prefect_init.prefect_adapter.discovery import ui_url as discovery_ui_url
from prefect_init.runtime.redaction import redact, register_secret

if TYPE_CHECKING:
    from prefect.client.orchestration import SyncPrefectClient

FLOW_NAME = "prefect-init"
ENTRYPOINT = "prefect_init.flows.spec_flow:run_spec"
"""By module path: the flow is in the installed package (the image), nothing is pulled from storage."""


class CommandError(Exception):
    """A one-line failure of a command, with its exit code (1 the API refused; 2 bad input or no API); redacted
    (an API's error text, a URL, an exception's words may carry a key)."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(redact(message))
        self.code = code


def api_url(no_api_code: int) -> str:
    """The configured API URL, if it answers within the probe timeout (else :class:`CommandError`)."""
    url = configured_api_url()
    if url is None:
        raise CommandError("no Prefect API configured (set PREFECT_API_URL)", no_api_code)
    if not api_answers(url):
        raise CommandError(f"the Prefect API at {url} does not answer", no_api_code)
    return url


@contextmanager
def client(no_api_code: int) -> Iterator[SyncPrefectClient]:
    """A sync Prefect client; an HTTP failure inside comes out as one line (exit 1), never a traceback."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.exceptions import PrefectHTTPStatusError
    from prefect.settings import PREFECT_API_KEY, temporary_settings

    key = PREFECT_API_KEY.value()  # the environment's or the profile's
    register_secret(key)
    # a key read from a file (a Secret's key, `$(cat ...)` of a file without its newline stripped) ends with a
    # newline, which httpx refuses in a header ("Illegal header value b'Bearer pnu-...\\n'"): the key is its text
    updates: dict[Any, Any] = {PREFECT_API_KEY: key.strip()} if isinstance(key, str) and key != key.strip() else {}
    api_url(no_api_code)
    try:
        with temporary_settings(updates=updates), get_client(sync_client=True) as prefect:
            yield prefect
    except PrefectHTTPStatusError as exc:
        detail = _detail(exc.response)
        raise CommandError(f"the Prefect API refused: HTTP {exc.response.status_code}{detail}", 1) from None
    except httpx.HTTPError as exc:
        raise CommandError(f"the Prefect API failed: {type(exc).__name__}: {str(exc)[:200]}", 1) from None


def _detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return ""
    detail = body.get("detail") if isinstance(body, dict) else None
    return f": {str(detail)[:300]}" if detail else ""


def ui_url(path: str) -> str:
    """A link into the Prefect UI for the configured API (:func:`discovery.ui_url`, which the pod uses too)."""
    return discovery_ui_url(configured_api_url() or "", path)
