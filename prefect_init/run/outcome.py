"""Outcomes of steps and runs, the status file, and the Kubernetes termination message."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prefect_init.errors import StepError
from prefect_init.runtime.atomic import make_parent, write_atomic, write_error
from prefect_init.runtime.redaction import redact

SUCCEEDED, FAILED, SKIPPED, NOT_RUN = "succeeded", "failed", "skipped", "not_run"


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def one_line(text: str, limit: int = 300) -> str:
    """A multi-line reason folded onto one line (``a:`` + ``b`` -> ``a: b``, else ``a | b``), cut at ``limit``."""
    out = ""
    for line in (ln.strip() for ln in text.splitlines() if ln.strip()):
        out += line if not out else (" " if out.endswith(":") else " | ") + line
    return out if len(out) <= limit else out[: limit - 3] + "..."


@dataclass
class StepOutcome:
    name: str
    kind: str
    status: str
    attempts: int = 0
    duration_s: float = 0.0
    error: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["duration_s"] = round(self.duration_s, 3)
        if self.error is None:
            del data["error"]
        else:
            data["error"] = redact(self.error)
        if not self.outputs:
            del data["outputs"]
        return data


@dataclass
class RunOutcome:
    name: str
    started_at: str
    finished_at: str = ""
    steps: list[StepOutcome] = field(default_factory=list)
    interrupted: bool = False
    identity: dict[str, str] = field(default_factory=dict)
    """The pod the run belongs to (:class:`prefect_init.run.identity.Identity`)."""
    peak_memory_mb: dict[str, int] = field(default_factory=dict)
    """Peak resident memory of prefect-init itself and of the largest process a step started (a command, git,
    a migration tool): what a container's memory limit must hold (:func:`peak_memory_mb`)."""

    @property
    def status(self) -> str:
        ok = not self.interrupted and all(s.status in (SUCCEEDED, NOT_RUN) for s in self.steps)
        return SUCCEEDED if ok else FAILED

    def first_failure(self) -> StepOutcome | None:
        return next((s for s in self.steps if s.status == FAILED), None)

    def reason(self) -> str:
        """One short line: why the run failed (for the termination log and the CLI's last line)."""
        failed = self.first_failure()
        if failed is not None:
            return redact(f"step {failed.name} ({failed.kind}) failed: {failed.error}")
        if self.interrupted:
            return "run stopped by SIGTERM"
        return "all steps succeeded"

    def to_dict(self) -> dict[str, object]:
        data: dict[str, object] = {"name": self.name, "status": self.status}
        if self.identity:
            data["identity"] = dict(self.identity)
        data.update({"started_at": self.started_at, "finished_at": self.finished_at,
                     "steps": [s.to_dict() for s in self.steps]})
        if self.peak_memory_mb:
            data["peak_memory_mb"] = dict(self.peak_memory_mb)
        return data

    def markdown(self) -> str:
        """A markdown table of the steps, for a Prefect artifact."""
        rows = [f"# prefect-init: {self.name} - {self.status}", ""]
        if self.identity:
            rows += [", ".join(f"{key} `{value}`" for key, value in self.identity.items()), ""]
        rows += [
                "| step | kind | status | attempts | duration | error |", "|---|---|---|---|---|---|"]
        for s in self.steps:
            error = redact(s.error or "").replace("|", "\\|").replace("\n", " ")
            rows.append(f"| {s.name} | {s.kind} | {s.status} | {s.attempts} | {s.duration_s:.2f}s | {error} |")
        produced = [s for s in self.steps if s.outputs]
        if produced:
            rows += ["", "| step | output | value |", "|---|---|---|"]
            rows += [f"| {s.name} | {key} | `{redact(value)}` |" for s in produced for key, value in s.outputs.items()]
        return "\n".join(rows) + "\n"


def peak_memory_mb() -> dict[str, int]:
    """``{"prefect_init": MB, "largest_process": MB}`` so far (``getrusage``: this process; the largest of the
    processes it started and waited for). Steps run at the same time, so a container's peak may reach the sum.
    Upper bounds, as Linux counts them: a process keeps its peak across exec, so a child's figure is at least
    the memory of the process it was started from (prefect-init's, for a step's program)."""
    import resource

    def mb(who: int) -> int:
        return round(resource.getrusage(who).ru_maxrss / 1024)  # Linux: KiB

    return {"prefect_init": mb(resource.RUSAGE_SELF), "largest_process": mb(resource.RUSAGE_CHILDREN)}


def write_status_file(path: Path, outcome: RunOutcome) -> None:
    make_parent(path)
    write_atomic(path, json.dumps(outcome.to_dict(), indent=2) + "\n", mode=0o644)


TERMINATION_LOG = "/dev/termination-log"


def write_termination_log(outcome: RunOutcome) -> None:
    """Kubernetes shows this file's content as the container's termination message (max 4096 bytes).

    Written only when the file exists and is writable (Kubernetes mounts it; elsewhere there is none)."""
    path = os.environ.get("PREFECT_INIT_TERMINATION_LOG", TERMINATION_LOG)
    if not os.path.exists(path) or not os.access(path, os.W_OK):
        return
    try:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(outcome.reason()[:4000] + "\n")
    except OSError as exc:
        raise write_error(path, exc) from None


def publish(outcome: RunOutcome, status_path: Path | None) -> list[str]:
    """Write what the main container and Kubernetes read: the status file, and the reason of a failure.

    Best effort: the run's outcome is the steps', so a file that cannot be written (a full or read-only volume)
    is a warning line in the returned list, never an exception or another exit code."""
    warnings = []
    if status_path is not None:
        try:
            write_status_file(status_path, outcome)
        except StepError as exc:
            warnings.append(f"warning: the status file was not written: {exc}")
    if outcome.status != SUCCEEDED:
        try:
            write_termination_log(outcome)
        except StepError as exc:
            warnings.append(f"warning: the termination log was not written: {exc}")
    return warnings
