"""The ``command`` step: a process without a shell, its output streamed into the logs line by line.

.. code-block:: yaml

    - name: build
      command: [npm, run, build]
      cwd: /repo
      env:
        NODE_ENV: production
        NPM_TOKEN: {file: /secrets/npm-token}   # read at run time; a secret, masked everywhere

A non-zero exit is worth retrying (the step's ``retries``); a missing program or cwd is final. At the deadline,
or on SIGTERM, the whole process group gets SIGTERM, then SIGKILL after ``kill_grace``.
"""

from __future__ import annotations

import collections
import contextlib
import os
import shlex
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from prefect_init.errors import RetryableError, StepCancelled, StepFailed, StepTimeout
from prefect_init.runtime.context import RunContext
from prefect_init.runtime.values import resolve_value
from prefect_init.spec.durations import Duration, format_duration
from prefect_init.spec.model import Argv, FromFile, StepBase

MAX_LINE = 64 * 1024
"""The most bytes of one line of a process's output that are kept and logged: a line of 50 MB (a minified file
cat by mistake, a binary) is cut there, the rest counted, so memory and the time to redact and log it stay bound."""
TAIL_LINES = 10


class Step(StepBase):
    kind = "command"
    command: Argv
    cwd: str | None = None
    env: dict[str, str | FromFile] = Field(default_factory=dict)
    kill_grace: Duration = 5.0

    def describe(self) -> str:
        return f"command: {shlex.join(self.command)}"


def environment(extra: dict[str, str | FromFile], ctx: RunContext) -> dict[str, str]:
    """This process's environment plus ``extra`` (values from files are read now, as secrets)."""
    env = dict(os.environ)
    env.update({key: resolve_value(value, ctx, f"env {key}") for key, value in extra.items()})
    return env


def _kill_group(proc: subprocess.Popen[bytes], grace: float) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


def run_process(argv: list[str], ctx: RunContext, *, cwd: Path | None = None, env: dict[str, str] | None = None,
                kill_grace: float = 5.0) -> str:
    """Run ``argv`` (no shell), its output streamed into ``ctx.log`` line by line; honour deadline and SIGTERM.

    A non-zero exit raises :class:`RetryableError` carrying the last lines of output.
    """
    shown = shlex.join(argv)
    ctx.log.info(f"running: {shown}" + (f" (in {cwd})" if cwd else ""))
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
    except FileNotFoundError as exc:
        missing = cwd if cwd is not None and not cwd.is_dir() else argv[0]
        raise StepFailed(f"{missing}: {exc.strerror} (is it installed in the image / mounted?)") from None
    except PermissionError:
        raise StepFailed(f"{argv[0]}: permission denied (is it executable?)") from None
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)

    def pump() -> None:
        assert proc.stdout is not None
        while raw := proc.stdout.readline(MAX_LINE):
            line = raw.decode(errors="replace").rstrip("\r\n")
            if len(raw) == MAX_LINE and not raw.endswith(b"\n"):  # the rest of an endless line: counted, not kept
                rest = 0
                while more := proc.stdout.readline(MAX_LINE):
                    rest += len(more)
                    if more.endswith(b"\n"):
                        break
                line += f" ... (the line goes on for {rest} more bytes, not shown)"
            tail.append(line)
            ctx.log.info(line)

    reader = threading.Thread(target=pump, name=f"{ctx.step_name}-output", daemon=True)
    reader.start()
    started = time.monotonic()
    while proc.poll() is None:
        if ctx.cancel.is_set() or ctx.remaining() <= 0:
            _kill_group(proc, kill_grace)
            reader.join(timeout=1)
            if ctx.cancel.is_set():
                raise StepCancelled(f"{shown}: stopped by SIGTERM; the process group was killed")
            raise StepTimeout(f"{shown}: still running at the deadline ({format_duration(ctx.timeout)}); "
                              "the process group was killed")
        ctx.cancel.wait(min(0.05, max(ctx.remaining(), 0.001)))
    reader.join(timeout=5)
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        how = (f"killed by signal {-proc.returncode}" if proc.returncode < 0 else f"exited with {proc.returncode}")
        last = "\n".join(tail) if tail else "(no output)"
        raise RetryableError(f"{shown}: {how} after {elapsed:.1f}s\nlast output:\n{last}")
    return f"exit 0 after {elapsed:.1f}s"


def parse_outputs(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines, and ``KEY<<DELIMITER`` ... ``DELIMITER`` for multi-line values (GitHub Actions'
    ``$GITHUB_OUTPUT`` format). A line that is neither is an error naming its number, never its text."""
    outputs: dict[str, str] = {}
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.strip():
            continue
        if "<<" in line and ("=" not in line or line.index("<<") < line.index("=")):
            key, delimiter = line.split("<<", 1)
            body: list[str] = []
            while index < len(lines) and lines[index] != delimiter:
                body.append(lines[index])
                index += 1
            if index >= len(lines):
                raise StepFailed(f"$PREFECT_INIT_OUTPUT: {key.strip()}<<{delimiter}: no closing {delimiter} line")
            index += 1
            outputs[key.strip()] = "\n".join(body)
        elif "=" in line:
            key, value = line.split("=", 1)
            outputs[key.strip()] = value
        else:
            raise StepFailed(f"$PREFECT_INIT_OUTPUT line {index}: expected KEY=VALUE or KEY<<DELIMITER")
    return outputs


def run(step: Step, ctx: RunContext) -> str:
    """Run the command; what it writes to ``$PREFECT_INIT_OUTPUT`` becomes this step's outputs."""
    import tempfile

    env = environment(step.env, ctx)
    fd, output_file = tempfile.mkstemp(prefix="prefect-init-output-", suffix=".txt")
    os.close(fd)
    try:
        env["PREFECT_INIT_OUTPUT"] = output_file
        summary = run_process(step.command, ctx, cwd=ctx.resolve(step.cwd) if step.cwd else None, env=env,
                              kill_grace=step.kill_grace)
        with open(output_file, encoding="utf-8", errors="replace") as handle:
            for key, value in parse_outputs(handle.read()).items():
                ctx.output(key, value)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(output_file)
    return summary


def probe(step: Step, ctx: RunContext) -> Any:
    """The program is on PATH (or, with a path, there and executable) and ``cwd`` exists or an ancestor makes it."""
    import shutil

    from prefect_init.runtime.probe import OK, PROBLEM, Finding

    problems = []
    cwd = ctx.resolve(step.cwd) if step.cwd else None
    program = step.command[0]
    produced = cwd is not None and ctx.produced_by_ancestor(cwd)  # type: ignore[attr-defined]
    if "/" in program:
        where = (cwd / program) if cwd is not None and not program.startswith("/") else Path(program)
        if not (where.is_file() and os.access(where, os.X_OK)) and not produced:
            problems.append(f"{program}: not an executable file")
    elif shutil.which(program) is None:
        problems.append(f"{program}: not found on PATH ({os.environ.get('PATH', '')})")
    if cwd is not None and not cwd.is_dir() and not produced:
        problems.append(f"cwd {cwd}: no such directory")
    if problems:
        return Finding(PROBLEM, problems)
    return Finding(OK, [f"{program} found" + (f"; {cwd} made by an earlier step" if produced and cwd and
                                               not cwd.is_dir() else "")])
