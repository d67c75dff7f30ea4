"""``prefect-init check SPEC --online``: a read-only preflight. Every step is probed at once, against the
dependencies it names, and nothing is changed: no file written, no migration applied, no command run, no secret
read. Each step module offers ``probe(step, ctx) -> Finding``; prefect is not imported.
"""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict
from typing import Any

from prefect_init.errors import StepError
from prefect_init.runtime.probe import OK, PROBLEM, Finding, ProbeContext, Quiet
from prefect_init.runtime.redaction import redact
from prefect_init.spec.model import Spec, StepBase
from prefect_init.spec.outputs import ancestors
from prefect_init.spec.plan import build_plan
from prefect_init.spec.registry import kind_module
from prefect_init.spec.writes import step_writes


def _probe(step: StepBase, ctx: ProbeContext) -> Finding:
    module = kind_module(step.kind)
    probe = getattr(module, "probe", None)
    if probe is None:
        return Finding(OK, ["nothing to probe for this kind"])
    try:
        return probe(step, ctx)
    except StepError as exc:
        return Finding(PROBLEM, [str(exc)])
    except Exception as exc:  # a probe's own failure is a problem to look at, never a traceback
        return Finding(PROBLEM, [f"unexpected {type(exc).__name__}: {exc}"])


def run(spec: Spec, timeout: float, strict: bool) -> list[tuple[StepBase, Finding]]:
    """Probe every step at once; a probe still running at ``timeout`` is a problem ("no answer in time")."""
    plan = build_plan(spec.steps)
    raw_steps = {r.get("name"): r for r in (spec.data or {}).get("steps", []) if isinstance(r, dict)}
    deadline = time.monotonic() + timeout
    cancel = threading.Event()
    pool = ThreadPoolExecutor(max_workers=max(1, len(spec.steps)), thread_name_prefix="probe")
    futures = {}
    for step in spec.steps:
        before = [spec.resolve(path) for name in ancestors(plan.needs, step.name)
                  for path, _ in step_writes(raw_steps.get(name))]
        ctx = ProbeContext(step.name, deadline, timeout, cancel, Quiet(), spec.base_dir, strict=strict,
                           written_before=before)
        futures[step.name] = pool.submit(_probe, step, ctx)
    wait(list(futures.values()), timeout=max(0.0, deadline - time.monotonic()))
    cancel.set()
    results = []
    for step in spec.steps:
        future = futures[step.name]
        if future.done():
            finding = future.result()
        else:
            finding = Finding(PROBLEM, [f"no answer within the preflight's {timeout:g}s"])
        finding.details = [redact(line) for line in finding.details]
        results.append((step, finding))
    pool.shutdown(wait=False, cancel_futures=True)
    return results


def text(results: list[tuple[StepBase, Finding]]) -> str:
    width = max(len(step.name) for step, _ in results)
    lines = []
    for step, finding in results:
        detail = "; ".join(finding.details)
        head = f"{step.name:<{width}}  {step.kind:<9} {finding.result}"
        lines.append(f"{head}: {detail}" if detail and finding.result != OK else
                     (f"{head} ({detail})" if detail else head))
    return "\n".join(lines)


def as_json(results: list[tuple[StepBase, Finding]]) -> str:
    return json.dumps({"ok": not any(f.result == PROBLEM for _, f in results),
                       "steps": [{"name": s.name, "kind": s.kind, **asdict(f)} for s, f in results]}, indent=2)


def lint(spec: Spec, all_files: bool, timeout: float = 30.0) -> list[tuple[StepBase, list[Any], str]]:
    """``prefect-init check``: each step whose kind lints its files (``lint(step, ctx, all_files)``: migrate's
    SQL through squawk) -> (step, findings, which files were linted)."""
    results: list[tuple[StepBase, list[Any], str]] = []
    for step in spec.steps:
        hook = getattr(kind_module(step.kind), "lint", None)
        if hook is None:
            continue  # (a stand-in for values not set here, --unset-ok, gets its part as written: a dict)
        ctx = ProbeContext(step.name, time.monotonic() + timeout, timeout, threading.Event(), Quiet(),
                           spec.base_dir)
        try:
            findings, note = hook(step, ctx, all_files)
        except StepError as exc:
            findings, note = [], f"not linted: {redact(str(exc))}"
        results.append((step, findings, redact(note)))
    return results
