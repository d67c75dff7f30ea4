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
ALL_SUCCEEDED = "all steps succeeded"
"""The reason of a run in which every step succeeded; any other reason is worth a line, even on success."""
ALL_REQUIRED_SUCCEEDED = "all required steps succeeded"


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
    optional: bool = False
    """The step's ``optional: true``: its failure does not fail the run."""

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        del data["optional"]
        if self.optional:  # only when true, right after the status it qualifies
            rest = {key: value for key, value in data.items() if key not in ("name", "kind", "status")}
            data = {"name": self.name, "kind": self.kind, "status": self.status, "optional": True, **rest}
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
        """``succeeded`` when every required step succeeded (or was left out by ``--only``) and the run was not
        stopped; an optional step may have failed or been skipped."""
        ok = not self.interrupted and all(s.status in (SUCCEEDED, NOT_RUN) for s in self.steps if not s.optional)
        return SUCCEEDED if ok else FAILED

    def optional_failures(self) -> list[StepOutcome]:
        """The optional steps that failed: warnings of a run that may still have succeeded."""
        return [s for s in self.steps if s.optional and s.status == FAILED]

    def first_failure(self) -> StepOutcome | None:
        """The step to blame: the first required step that failed, else the first optional one that failed (which
        fails a run that was not stopped only when a required step needs it, and so was skipped)."""
        required = next((s for s in self.steps if s.status == FAILED and not s.optional), None)
        if required is not None or self.interrupted:
            return required
        return next(iter(self.optional_failures()), None)

    def reason(self) -> str:
        """One short line: why the run failed, or that optional steps failed in a run that succeeded (for the
        termination log, the CLI's last line and the flow run's final state)."""
        failed = self.first_failure()
        if failed is not None and not failed.optional:
            return redact(f"step {failed.name} ({failed.kind}) failed: {failed.error}")
        if self.interrupted:
            return "run stopped by SIGTERM"
        skipped = next((s for s in self.steps if s.status == SKIPPED and not s.optional), None)
        if skipped is not None:  # a required step needs an optional one that failed
            text = f"step {skipped.name} ({skipped.kind}) skipped: {skipped.error}"
            if failed is not None:
                text += f"; optional step {failed.name} ({failed.kind}) failed: {failed.error}"
            return redact(text)
        if failed is not None:
            names = ", ".join(s.name for s in self.optional_failures())
            return f"{ALL_REQUIRED_SUCCEEDED}; optional steps failed: {names}"
        return ALL_SUCCEEDED

    def completed_message(self) -> str:
        """The message of a succeeded run's Completed state in Prefect."""
        reason = self.reason()
        return "All steps succeeded." if reason == ALL_SUCCEEDED else reason[:1].upper() + reason[1:] + "."

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
        """A markdown table of the steps, for a Prefect artifact. Every value in it (a step's error, which holds
        its command's last output; outputs; the pod's identity) is escaped: it shows as text, never as HTML, an
        image, a link or a broken table (:func:`md_text`, :func:`md_code`)."""
        title = f"# prefect-init: {md_text(self.name)} - {self.status}"
        optional = ", ".join(md_text(s.name) for s in self.optional_failures())
        if optional and self.status == SUCCEEDED:
            title += f" (optional steps failed: {optional})"
        rows = [title, ""]
        if self.identity:
            rows += [", ".join(f"{md_text(key)} {md_code(value)}" for key, value in self.identity.items()), ""]
        rows += [
                "| step | kind | status | attempts | duration | error |", "|---|---|---|---|---|---|"]
        for s in self.steps:
            error = md_text(redact(s.error or ""))
            name = md_text(f"{s.name} (optional)" if s.optional else s.name)
            rows.append(f"| {name} | {md_text(s.kind)} | {s.status} | {s.attempts} | {s.duration_s:.2f}s | {error} |")
        produced = [s for s in self.steps if s.outputs]
        if produced:
            rows += ["", "| step | output | value |", "|---|---|---|"]
            rows += [f"| {md_text(s.name)} | {md_text(key)} | {md_code(redact(value))} |"
                     for s in produced for key, value in s.outputs.items()]
        return "\n".join(rows) + "\n"


_MD_ESCAPED = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\\": "\\\\", "`": "\\`", "[": "\\[", "]": "\\]",
               "|": "\\|"}


def md_text(text: str) -> str:
    """``text`` as one line of literal markdown text, safe in a table cell: ``&``, ``<``, ``>`` as entities (no
    HTML: ``<img onerror=...>`` stays text), a backslash, a backtick and brackets backslash-escaped (no code
    span, link or image), ``|`` too (it does not split the cell), line breaks as spaces (no row or fence of its
    own). Emphasis is left alone: it changes no content and keeps names like ``warm_cache`` readable."""
    return "".join(_MD_ESCAPED.get(char, char) for char in " ".join(text.splitlines()))


def md_code(text: str) -> str:
    """``text`` as one inline code span, safe in a table cell: fenced by more backticks than it holds in a row,
    ``|`` escaped (GitHub's tables split on it even in code), line breaks as spaces."""
    line = " ".join(text.splitlines()).replace("|", "\\|")
    runs = [len(part) for part in "".join(c if c == "`" else " " for c in line).split()]
    fence = "`" * (max(runs, default=0) + 1)
    pad = " " if line.startswith("`") or line.endswith("`") or not line.strip() else ""
    return f"{fence}{pad}{line}{pad}{fence}"


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
    """Write what the main container and Kubernetes read: the status file, and the reason of a failure (or of
    the optional steps that failed in a run that succeeded).

    Best effort: the run's outcome is the steps', so a file that cannot be written (a full or read-only volume)
    is a warning line in the returned list, never an exception or another exit code."""
    warnings = []
    if status_path is not None:
        try:
            write_status_file(status_path, outcome)
        except StepError as exc:
            warnings.append(f"warning: the status file was not written: {exc}")
    if outcome.status != SUCCEEDED or outcome.optional_failures():  # `kubectl describe pod` shows the warning
        try:
            write_termination_log(outcome)
        except StepError as exc:
            warnings.append(f"warning: the termination log was not written: {exc}")
    return warnings
