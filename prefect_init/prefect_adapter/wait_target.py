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

from typing import Any

import httpx
from pydantic import Field

from prefect_init.kinds.wait.loop import NotReady
from prefect_init.kinds.wait.targets import Checker, TargetBase
from prefect_init.prefect_adapter.discovery import configured_api_url
from prefect_init.prefect_adapter.rest import auth_headers
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


class RunChecker:
    """Finds the deployment once, then asks for a COMPLETED tagged run; else describes the newest one."""

    def __init__(self, target: PrefectRun) -> None:
        self.target = target
        self.url = (target.api_url or configured_api_url() or "").rstrip("/")
        self.client = httpx.Client(base_url=self.url, headers=auth_headers())
        self.deployment_id: str | None = None

    def _post(self, path: str, body: dict[str, Any], timeout: float) -> Any:
        response = self.client.post(path, json=body, timeout=timeout)
        response.raise_for_status()
        return response.json()

    def check(self, timeout: float) -> None:
        if not self.url:
            raise NotReady("no Prefect API configured (set PREFECT_API_URL or api_url)")
        try:
            self._check(timeout)
        except httpx.HTTPStatusError as exc:
            raise NotReady(f"the Prefect API answered HTTP {exc.response.status_code}") from None
        except httpx.TimeoutException:
            raise NotReady("the Prefect API timed out") from None
        except httpx.HTTPError as exc:
            text = str(exc)
            raise NotReady("the Prefect API refused the connection" if "refused" in text
                           else f"the Prefect API failed: {text.splitlines()[0][:200] if text else exc}") from None

    def _check(self, timeout: float) -> None:
        t = self.target
        if self.deployment_id is None:
            response = self.client.get(f"/deployments/name/{t.deployment}", timeout=timeout)
            if response.status_code == 404:
                raise NotReady(f"no deployment {t.deployment}")
            response.raise_for_status()
            self.deployment_id = str(response.json()["id"])
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
        state = run.get("state") or {}
        kind = state.get("type") or "PENDING"
        reason = f"newest run {run.get('name')} is {kind}"
        if kind in ("FAILED", "CRASHED"):
            failed = self._post("/task_runs/filter", {
                "flow_runs": {"id": {"any_": [run["id"]]}},
                "task_runs": {"state": {"type": {"any_": ["FAILED", "CRASHED"]}}}, "limit": 5}, timeout)
            if failed:
                first = failed[0]
                message = (first.get("state") or {}).get("message") or "failed"
                reason += f": step {first.get('name')} failed: {message.splitlines()[0][:300]}"
        raise NotReady(reason)

    def close(self) -> None:
        self.client.close()
