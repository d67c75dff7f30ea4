"""``templates:``, several ``template`` destinations in one step (see :mod:`prefect_init.kinds.template`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from prefect_init.kinds.template import TemplateSpec, run_all
from prefect_init.runtime.context import RunContext
from prefect_init.spec.model import StepBase
from prefect_init.words import plural


class Step(StepBase):
    kind = "templates"
    templates: list[TemplateSpec] = Field(min_length=1)

    def describe(self) -> str:
        return f"templates: {plural(len(self.templates), 'file')}"


def run(step: Step, ctx: RunContext) -> str:
    return run_all(step.templates, ctx)


def probe(step: Step, ctx: RunContext) -> Any:
    from prefect_init.kinds.template import probe_all
    from prefect_init.runtime.probe import OK, PROBLEM, Finding

    return probe_all(step.templates, ctx, Finding, OK, PROBLEM)
