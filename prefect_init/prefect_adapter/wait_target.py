"""``prefect_run: {deployment: prefect-init/myapp, tag: release-1.4.2}``: ready when a flow run of that
deployment carrying that tag is COMPLETED.

Pods wait for the release's run (migrations ahead of the rollout) instead of for a Job: the run's record
outlives the Job (a Job deleted by its TTL no longer breaks the wait). It talks to the Prefect REST API over
HTTP, without importing prefect, so a pod that only waits stays at local-mode cost.

.. code-block:: yaml

    - prefect_run:
        deployment: prefect-init/myapp
        tag: release-${APP_VERSION}
        api_url: http://prefect-server.prefect:4200/api   # default: PREFECT_API_URL; PREFECT_API_KEY or
                                                          # PREFECT_API_AUTH_STRING authenticate
"""

from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import quote

from pydantic import Field

from prefect_init.kinds.wait.loop import NotReady
from prefect_init.kinds.wait.targets import Checker, TargetBase
from prefect_init.prefect_adapter.discovery import configured_api_url
from prefect_init.prefect_adapter.rest import (
    ApiLost,
    ApiRefused,
    ApiRejected,
    ApiWrong,
    PrefectRest,
    auth_headers,
)
from prefect_init.runtime.context import RunContext
from prefect_init.spec.model import StrictModel


class PrefectRun(StrictModel):
    deployment: str = Field(pattern=r"^[^/\s]+/[^/\s]+$", description="FLOW/DEPLOYMENT")
    tag: str = Field(min_length=1)
    api_url: str | None = Field(default=None, pattern=r"^https?://")


class Target(TargetBase):
    key = "prefect_run"
    prefect_run: PrefectRun

    def label(self) -> str:
        return f"prefect_run {self.prefect_run.deployment} tagged {self.prefect_run.tag}"

    def checker(self, ctx: RunContext) -> Checker:
        return RunChecker(self.prefect_run)


def _uuid(value: Any, what: str) -> str:
    """An id the API gave, checked: it goes into the next call's path, so nothing but a UUID is taken."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ApiWrong(f"answered {what} without a run's or deployment's id (not the API?)") from None


def _items(answer: Any, what: str) -> list[dict[str, Any]]:
    if not isinstance(answer, list) or not all(isinstance(item, dict) for item in answer):
        raise ApiWrong(f"answered {what} with {type(answer).__name__}, not a list of runs (not the API?)")
    return answer


class RunChecker:
    """Finds the deployment once, then asks for a COMPLETED tagged run; else describes the newest one. Every call
    is bounded as a whole (time and bytes, :class:`PrefectRest`) and every answer's shape checked: a login page,
    an endless or trickled answer is "not ready" in words, never a hang or a crash."""

    def __init__(self, target: PrefectRun) -> None:
        self.target = target
        self.url = (target.api_url or configured_api_url() or "").rstrip("/")
        self.rest = PrefectRest(self.url, auth_headers()) if self.url else None
        self.deployment_id: str | None = None

    def _post(self, path: str, body: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        assert self.rest is not None
        return _items(self.rest.call("POST", path, body, timeout=timeout), f"POST {path}")

    def check(self, timeout: float) -> None:
        if self.rest is None:
            raise NotReady("no Prefect API configured (set PREFECT_API_URL or api_url)")
        try:
            self._check(timeout)
        except ApiRefused as exc:
            raise NotReady(f"the Prefect API refused: {exc}") from None
        except ApiRejected as exc:
            raise NotReady(f"the Prefect API answered HTTP {exc.status}") from None
        except ApiWrong as exc:
            raise NotReady(f"the Prefect API at {self.url} {exc}") from None
        except ApiLost as exc:
            raise NotReady("the Prefect API refused the connection" if str(exc) == "connection refused"
                           else f"the Prefect API did not answer: {exc}") from None

    def _check(self, timeout: float) -> None:
        assert self.rest is not None
        t = self.target
        if self.deployment_id is None:
            flow, name = (quote(part, safe="") for part in t.deployment.split("/", 1))
            try:
                found = self.rest.call("GET", f"/deployments/name/{flow}/{name}", timeout=timeout)
            except ApiRejected as exc:
                if exc.status == 404:
                    raise NotReady(f"no deployment {t.deployment}") from None
                raise
            self.deployment_id = _uuid(found.get("id") if isinstance(found, dict) else None, "GET /deployments")
        runs = {"deployment_id": {"any_": [self.deployment_id]}, "tags": {"all_": [t.tag]}}
        done = self._post("/flow_runs/filter", {"flow_runs": {**runs, "state": {"type": {"any_": ["COMPLETED"]}}},
                                                "limit": 1}, timeout)
        if done:
            return
        newest = self._post("/flow_runs/filter", {"flow_runs": runs, "sort": "EXPECTED_START_TIME_DESC",
                                                  "limit": 1}, timeout)
        if not newest:
            raise NotReady(f"no run tagged {t.tag} yet")
        run = newest[0]
        state: dict[str, Any] = run["state"] if isinstance(run.get("state"), dict) else {}
        kind = str(state.get("type") or "PENDING")
        reason = f"newest run {run.get('name')} is {kind}"
        if kind in ("FAILED", "CRASHED"):
            failed = self._post("/task_runs/filter", {
                "flow_runs": {"id": {"any_": [_uuid(run.get("id"), "POST /flow_runs/filter")]}},
                "task_runs": {"state": {"type": {"any_": ["FAILED", "CRASHED"]}}}, "limit": 5}, timeout)
            if failed:
                first = failed[0]
                first_state: dict[str, Any] = first["state"] if isinstance(first.get("state"), dict) else {}
                message = str(first_state.get("message") or "failed")
                reason += f": step {first.get('name')} failed: {(message.splitlines() or ['failed'])[0][:300]}"
        raise NotReady(reason)

    def close(self) -> None:
        if self.rest is not None:
            self.rest.close()
