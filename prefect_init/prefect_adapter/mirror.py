"""``prefect-init run`` with a Prefect API: the run is mirrored into Prefect as a flow run, never held back by it.

The steps run in this process exactly as in local mode (same scheduler, same retry loop); an
:class:`~prefect_init.prefect_adapter.observer.Observer` records the flow run, a task run per step with its retries, the
log lines, the artifact and heartbeat events. prefect itself is not imported: the API is spoken over HTTP.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from prefect_init.prefect_adapter.observer import Observer
from prefect_init.prefect_adapter.rest import ApiLost, ApiRefused, ApiWrong, PrefectRest, auth_headers
from prefect_init.run.identity import Identity
from prefect_init.spec.model import Spec
from prefect_init.spec.plan import build_plan

CLOSE_BUDGET = 4.0
"""At most this long after the last step for the API to take what is still queued (a busy server, a rollout of
many pods at once, needs seconds; the pod must not wait more than a few)."""
CLOSE_BUDGET_TERMINATED = 1.5
"""After SIGTERM (the kubelet's grace period is running)."""


HEARTBEAT_DEFAULT = 180.0


def heartbeat_seconds() -> tuple[float, str | None]:
    """Prefect's own setting (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``, default 180 s, at least 30 s), and a warning
    when it is not a number (a broken setting must not stop a pod: the default is used)."""
    for name in ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY"):
        raw = os.environ.get(name)
        if raw:
            try:
                return max(30.0, float(raw)), None
            except ValueError:
                return HEARTBEAT_DEFAULT, (f"warning: {name}={raw!r} is not a number of seconds; heartbeats every "
                                           f"{HEARTBEAT_DEFAULT:g} s")
    return HEARTBEAT_DEFAULT, None


LOG_LEVEL_SETTING = "PREFECT_INIT_API_LOG_LEVEL"
LOG_LEVELS = {"DEBUG": 0, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "OFF": 100}


def api_log_level() -> tuple[int, str | None]:
    """The lowest level of a log line sent to Prefect (``PREFECT_INIT_API_LOG_LEVEL``: DEBUG, the default, sends
    every line; INFO, WARNING, ERROR; OFF sends none, the states and events still go), and a warning when the
    setting is not one of those (a broken setting must not stop a pod: every line is sent). A Prefect Cloud tier
    counts every log line; the pod's stderr keeps them all whatever the level."""
    raw = os.environ.get(LOG_LEVEL_SETTING, "").strip()
    if not raw:
        return 0, None
    if raw.upper() in LOG_LEVELS:
        return LOG_LEVELS[raw.upper()], None
    return 0, (f"warning: {LOG_LEVEL_SETTING}={raw!r} is not DEBUG, INFO, WARNING, ERROR or OFF; every log line "
               "goes to Prefect")


def start_observer(spec: Spec, url: str, only: list[str] | None, status_path: Path | None,
                   warn: Callable[[str], None]) -> tuple[Observer | None, str]:
    """An observer whose flow run exists, or (None, why not) when the API refuses or does not answer writes."""
    rest = PrefectRest(url, auth_headers())
    beat, warning = heartbeat_seconds()
    level, level_warning = api_log_level()
    for line in (warning, level_warning):
        if line:
            warn(line)
    identity = Identity.from_env()
    observer = Observer(rest, spec.name, build_plan(spec.steps).needs, heartbeat_seconds=beat, identity=identity,
                        log_level=level)
    parameters = {"spec_path": spec.file, "only": only, "status_file": str(status_path) if status_path else None}
    try:
        observer.start(parameters, tags=identity.tags(spec.name, spec.tags))
    except ApiRefused as exc:
        rest.close()
        return None, f"the Prefect API at {url} refuses writes ({exc})"
    except ApiWrong as exc:  # an HTML page, {} instead of a run, an endless answer: not the API
        rest.close()
        return None, f"the Prefect API at {url} {exc}"
    except ApiLost as exc:
        rest.close()
        return None, f"the Prefect API at {url} does not take writes ({exc})"
    except Exception as exc:  # the first promise: no answer of the API stops the steps, not even a bug of ours
        rest.close()
        return None, f"the Prefect API at {url} could not be used ({type(exc).__name__})"
    return observer, ""
