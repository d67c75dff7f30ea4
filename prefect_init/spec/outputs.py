"""Step outputs: what a step produced (``git``: ``revision``; ``migrate``: ``version``; a command's
``$PREFECT_INIT_OUTPUT`` lines), read by a later step as ``${steps.STEP.KEY}``.

A reference is checked when the spec is loaded (STEP must be one of the reading step's ancestors in the plan:
``after:``, transitively) and expanded when the reading step starts, by validating its part of the spec again
with the values in place. Outputs are not secrets: a value that is one is refused where it is set.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from prefect_init.errors import SpecProblem, StepFailed
from prefect_init.spec.interpolate import OUTPUT_REF
from prefect_init.spec.source import Path_, SourceMap

KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def references(node: Any, path: Path_ = ()) -> Iterator[tuple[Path_, str, str]]:
    """(path, step, key) of every ``${steps.STEP.KEY}`` in ``node``."""
    if isinstance(node, str):
        for match in OUTPUT_REF.finditer(node):
            yield path, match.group(1), match.group(2)
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from references(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from references(value, (*path, index))


def ancestors(needs: Mapping[str, list[str]], name: str) -> set[str]:
    seen: set[str] = set()
    stack = list(needs.get(name, []))
    while stack:
        current = stack.pop()
        if current not in seen:
            seen.add(current)
            stack.extend(needs.get(current, []))
    return seen


def reference_problems(raw_steps: list[Any], needs: Mapping[str, list[str]], source: SourceMap) -> list[SpecProblem]:
    problems = []
    names = set(needs)
    for index, raw in enumerate(raw_steps):
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
            continue
        before = ancestors(needs, raw["name"])
        for path, step, key in references(raw, ("steps", index)):
            ref = f"${{steps.{step}.{key}}}"
            if step not in names:
                problems.append(source.problem(path, f"{ref}: unknown step {step!r}"))
            elif step not in before:
                problems.append(source.problem(path, f"{ref}: step {step!r} is not one this step comes after "
                                                     "(add it to after:, directly or through a step in between)"))
    return problems


def substitute(node: Any, outputs: Mapping[str, Mapping[str, str]], reader: str) -> Any:
    """``node`` with every reference replaced; a key the step did not produce is a final error naming both."""
    if isinstance(node, str):
        def value(match: re.Match[str]) -> str:
            step, key = match.group(1), match.group(2)
            produced = outputs.get(step, {})
            if key not in produced:
                have = ", ".join(sorted(produced)) or "none"
                raise StepFailed(f"step {reader!r} reads ${{steps.{step}.{key}}}, but step {step!r} produced no "
                                 f"output {key!r} (its outputs: {have})")
            return produced[key]

        return OUTPUT_REF.sub(value, node)
    if isinstance(node, dict):
        return {key: substitute(value, outputs, reader) for key, value in node.items()}
    if isinstance(node, list):
        return [substitute(value, outputs, reader) for value in node]
    return node
