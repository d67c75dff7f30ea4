"""``prefect-init runs``: the latest runs from the Prefect API as a table, as ``kubectl get`` would show them,
for the person on call who does not have the UI open. Plain HTTP; prefect is not imported."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from prefect_init.prefect_adapter.client import CommandError, api_url
from prefect_init.prefect_adapter.rest import auth_headers

FLOW_NAME = "prefect-init"
FAILED_TYPES = ["FAILED", "CRASHED"]
COLUMNS = ("RUN", "POD", "STATE", "FAILED STEP", "STARTED", "DURATION", "URL")


@dataclass
class Row:
    run: str
    """The flow run's name: ``<spec name>/<pod>`` from a pod, ``<spec name>/<slug>`` from a deployment."""
    pod: str
    state: str
    failed_step: str
    started: str
    duration: str
    url: str

    def cells(self) -> tuple[str, ...]:
        return (self.run, self.pod, self.state, self.failed_step, self.started, self.duration, self.url)


def spec_tag(target: str) -> str:
    """``myapp`` or a spec file -> ``spec:myapp``."""
    if Path(target).is_file():
        from prefect_init.spec.load import load_spec

        return f"spec:{load_spec(target, defer_unset=True).name}"
    return f"spec:{target}"


def _tag_value(tags: list[str], key: str) -> str | None:
    return next((t.split(":", 1)[1] for t in tags if t.startswith(f"{key}:")), None)


def _when(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value.replace("Z", "+00:00")).strftime("%Y-%m-%d %H:%M:%SZ")


def list_runs(tag: str | None, failed: bool, limit: int, scheduled: bool = False) -> list[Row]:
    """The runs that have started, newest first; with ``scheduled``, those still to come too (by the time they
    are expected: a schedule's future runs first)."""
    url = api_url(no_api_code=2)
    ui = url.rstrip("/").removesuffix("/api")
    with httpx.Client(base_url=url.rstrip("/"), headers=auth_headers(), timeout=30) as client:
        try:
            flow = client.get(f"/flows/name/{FLOW_NAME}")
            if flow.status_code == 404:
                return []
            flow.raise_for_status()
            runs_filter: dict[str, Any] = {}
            if tag:
                runs_filter["tags"] = {"all_": [tag]}
            if failed:
                runs_filter["state"] = {"type": {"any_": FAILED_TYPES}}
            if not scheduled:
                runs_filter["start_time"] = {"is_null_": False}
            runs = client.post("/flow_runs/filter", json={
                "flows": {"id": {"any_": [flow.json()["id"]]}}, "flow_runs": runs_filter,
                "sort": "EXPECTED_START_TIME_DESC" if scheduled else "START_TIME_DESC", "limit": limit}
            ).raise_for_status().json()
            failed_tasks: list[dict[str, Any]] = []
            if runs:
                failed_tasks = client.post("/task_runs/filter", json={
                    "flow_runs": {"id": {"any_": [r["id"] for r in runs]}},
                    "task_runs": {"state": {"type": {"any_": FAILED_TYPES}}}}).raise_for_status().json()
        except httpx.HTTPStatusError as exc:
            raise CommandError(f"the Prefect API refused: HTTP {exc.response.status_code}", 1) from None
        except httpx.HTTPError as exc:
            raise CommandError(f"the Prefect API failed: {type(exc).__name__}", 1) from None
    first_failed: dict[str, str] = {}
    for task in sorted(failed_tasks, key=lambda t: t.get("start_time") or ""):
        first_failed.setdefault(task["flow_run_id"], task["name"])
    rows = []
    for run in runs:
        tags = run.get("tags") or []
        seconds = run.get("total_run_time") or 0.0
        rows.append(Row(run=run["name"],
                        pod=_tag_value(tags, "pod") or "-",
                        state=(run.get("state") or {}).get("name") or run.get("state_type") or "-",
                        failed_step=first_failed.get(run["id"], "-"), started=_when(run.get("start_time")),
                        duration=f"{seconds:.1f}s" if seconds else "-", url=f"{ui}/runs/flow-run/{run['id']}"))
    return rows


def table(rows: list[Row]) -> str:
    cells = [COLUMNS, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                     for line in cells)
