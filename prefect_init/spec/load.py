"""Reading a spec: YAML in, a validated :class:`~prefect_init.spec.model.Spec` or a :class:`SpecError` out.

Every problem is collected (not just the first): the structure, each step's kind, the plan (order, names,
cycles) and the output references, reported as ``SPEC:LINE: steps[2].files.dirs[0].mode: ...``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from prefect_init.errors import SpecError, SpecProblem
from prefect_init.spec.model import Spec, SpecHeader, StepBase
from prefect_init.spec.outputs import reference_problems
from prefect_init.spec.plan import needs_of, plan_problems
from prefect_init.spec.registry import KINDS, kind_module
from prefect_init.spec.source import SourceMap, format_path, load_yaml

_MESSAGES = {
    "extra_forbidden": "unknown key (check the spelling)",
    "missing": "required",
}


def _pydantic_problems(exc: ValidationError, prefix: tuple[str | int, ...], source: SourceMap) -> list[SpecProblem]:
    problems = []
    for err in exc.errors(include_input=False, include_url=False):
        # drop pydantic's internal parts: validator names and union tags (``<tcp>``)
        loc = tuple(part for part in err["loc"] if not (isinstance(part, str) and (
            part.startswith("function-") or (part.startswith("<") and part.endswith(">")))))
        message = _MESSAGES.get(err["type"]) or str(err["msg"]).removeprefix("Value error, ")
        problems.append(source.problem((*prefix, *loc), message))
    return problems


def _under(problem: SpecProblem, deferred: set[str]) -> bool:
    """Is ``problem`` about a value (or a part of one) whose variable is resolved later?"""
    return any(problem.path == d or problem.path.startswith((d + ".", d + "[")) for d in deferred)


def _stand_in(raw: dict[str, Any], kind: str) -> StepBase | None:
    """A step whose only problems are values resolved later: its common fields checked, its kind's part kept
    as written. Enough for the plan and the policies; never run."""
    common = {key: raw[key] for key in StepBase.model_fields if key in raw}
    try:
        base = StepBase.model_validate(common)
    except ValidationError:
        return None
    model: type[StepBase] = kind_module(kind).Step
    return model.model_construct(**base.model_dump(exclude_unset=True), **{kind: raw[kind]})


def _validate_step(raw: Any, index: int, source: SourceMap) -> tuple[StepBase | None, list[SpecProblem]]:
    path: tuple[str | int, ...] = ("steps", index)
    if not isinstance(raw, dict):
        return None, [source.problem(path, "a step must be a mapping with a name and one kind key")]
    kinds = [key for key in raw if key in KINDS]
    known = set(StepBase.model_fields)
    if len(kinds) > 1:
        return None, [source.problem(path, f"a step has exactly one kind key, found {len(kinds)}: {', '.join(kinds)}")]
    if not kinds:
        unknown = [key for key in raw if key not in known]
        expected = " | ".join(sorted(KINDS))
        if unknown:
            return None, [source.problem((*path, key), f"unknown step kind or key (kinds: {expected})")
                          for key in unknown]
        return None, [source.problem(path, f"a step needs one kind key: {expected}")]
    model: type[StepBase] = kind_module(kinds[0]).Step
    try:
        return model.model_validate(raw), []
    except ValidationError as exc:
        return None, _pydantic_problems(exc, path, source)


def parse_spec(text: str, file: str, env: Mapping[str, str] | None = None, base_dir: str | None = None,
               defer_unset: bool = False) -> Spec:
    """Validate spec text; raise :class:`SpecError` with every problem found.

    Relative paths resolve against ``base_dir``, by default the spec file's directory (the current one for
    ``-``, standard input). With ``defer_unset``, a variable that is not set here is no error, and neither is
    any problem of the value that names it: it is resolved where the spec runs (``render``, ``deploy``)."""
    deferred_paths: set[tuple[str | int, ...]] | None = set() if defer_unset else None
    data, source, problems = load_yaml(text, file, os.environ if env is None else env, deferred_paths)
    deferred = {format_path(p) for p in deferred_paths or ()}
    if data is None:  # broken YAML (its problem is said), or a document that is just `null`
        raise SpecError(problems or [source.problem((), "the spec must be a mapping with version, name and steps")])
    if not isinstance(data, dict):
        raise SpecError([*problems, source.problem((), "the spec must be a mapping with version, name and steps")])
    try:
        header = SpecHeader.model_validate(data)
    except ValidationError as exc:
        problems += _pydantic_problems(exc, (), source)
        raw_steps = data.get("steps") if isinstance(data.get("steps"), list) else []
        for i, raw in enumerate(raw_steps or []):
            problems += _validate_step(raw, i, source)[1]
        raise SpecError(problems) from None
    steps: list[StepBase] = []
    for i, raw in enumerate(header.steps):
        step, step_problems = _validate_step(raw, i, source)
        if deferred and step_problems:
            step_problems = [p for p in step_problems if not _under(p, deferred)]
            if step is None and not step_problems:
                step = _stand_in(raw, next(key for key in raw if key in KINDS))
        problems += step_problems
        if step is not None:
            steps.append(step)
    if not problems:
        problems += plan_problems(steps, source)
    if not problems:
        problems += reference_problems(header.steps, needs_of(steps), source)
    if problems:
        raise SpecError(problems)
    if base_dir is not None:
        base = Path(base_dir).resolve()
    else:
        base = Path(file).resolve().parent if file not in ("-", "<string>") else Path.cwd()
    return Spec(file=file, name=header.name, text=text, defaults=header.defaults, status_file=header.status_file,
                steps=steps, base_dir=base, tags=list(header.tags), data=data, deferred=tuple(sorted(deferred)))


def load_spec(path: str, env: Mapping[str, str] | None = None, base_dir: str | None = None,
              defer_unset: bool = False) -> Spec:
    """Read and validate the spec at ``path`` (``-`` reads standard input); see :func:`parse_spec`."""
    import sys

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise SpecError([SpecProblem(path, None, "", f"cannot read the spec: {reason}")]) from None
    return parse_spec(text, path, env, base_dir, defer_unset)
