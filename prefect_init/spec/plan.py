"""The plan: which step needs which, and what runs at the same time.

A step needs the step written before it, unless it says ``after:`` (``after: []`` starts at once). Unknown
names, duplicates, self-references and cycles are spec errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from prefect_init.errors import SpecProblem
from prefect_init.spec.source import SourceMap


class StepBase(Protocol):
    """What the plan reads of a step (:class:`prefect_init.spec.model.StepBase` has it): the plan does not
    import the model, and the model does not import the plan."""

    @property
    def name(self) -> str: ...
    @property
    def after(self) -> list[str] | None: ...


def needs_of(steps: Sequence[StepBase]) -> dict[str, list[str]]:
    """Each step's direct needs, by name."""
    needs: dict[str, list[str]] = {}
    for i, step in enumerate(steps):
        if step.after is not None:
            needs[step.name] = list(dict.fromkeys(step.after))
        else:
            needs[step.name] = [steps[i - 1].name] if i else []
    return needs


def _find_cycle(needs: dict[str, list[str]], nodes: set[str]) -> list[str]:
    """One cycle among ``nodes`` (each of which is on or behind a cycle), as a closed path."""
    start = sorted(nodes)[0]
    path, seen = [start], {start: 0}
    while True:
        nxt = next(n for n in needs[path[-1]] if n in nodes)
        if nxt in seen:
            return [*path[seen[nxt]:], nxt]
        seen[nxt] = len(path)
        path.append(nxt)


def plan_problems(steps: Sequence[StepBase], source: SourceMap) -> list[SpecProblem]:
    problems: list[SpecProblem] = []
    names: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.name in names:
            problems.append(source.problem(("steps", i, "name"),
                                           f"duplicate step name {step.name!r} (also steps[{names[step.name]}])"))
        else:
            names[step.name] = i
    for i, step in enumerate(steps):
        for j, dep in enumerate(step.after or []):
            if dep == step.name:
                problems.append(source.problem(("steps", i, "after", j), "a step cannot come after itself"))
            elif dep not in names:
                problems.append(source.problem(("steps", i, "after", j), f"unknown step {dep!r}"))
    if problems:
        return problems
    needs = needs_of(steps)
    levels = _levels(needs)
    placed = {n for level in levels for n in level}
    if len(placed) < len(steps):
        cycle = _find_cycle(needs, {s.name for s in steps} - placed)
        first = names[cycle[0]]
        problems.append(source.problem(("steps", first, "after"), f"cycle: {' -> '.join(cycle)}"))
    return problems


def _levels(needs: dict[str, list[str]]) -> list[list[str]]:
    remaining = {name: set(deps) for name, deps in needs.items()}
    order = list(needs)
    levels: list[list[str]] = []
    done: set[str] = set()
    while remaining:
        level = [n for n in order if n in remaining and remaining[n] <= done]
        if not level:
            break  # a cycle: reported by plan_problems
        levels.append(level)
        done.update(level)
        for n in level:
            del remaining[n]
    return levels


@dataclass(frozen=True)
class Plan:
    """Needs and levels of a valid spec. Steps of one level can run at the same time."""

    order: list[str]
    needs: dict[str, list[str]]
    levels: list[list[str]]


def build_plan(steps: Sequence[StepBase]) -> Plan:
    needs = needs_of(steps)
    return Plan(order=[s.name for s in steps], needs=needs, levels=_levels(needs))
