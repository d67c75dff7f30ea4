"""``templates:``, several ``template`` destinations in one step (see :mod:`prefect_init.steps.template`)."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..context import RunContext
from ..spec import StepBase
from .template import TemplateSpec, run_all


class Step(StepBase):
    kind = "templates"
    templates: list[TemplateSpec] = Field(min_length=1)

    def describe(self) -> str:
        return f"templates: {len(self.templates)} files"


def run(step: Step, ctx: RunContext) -> str:
    return run_all(step.templates, ctx)


def probe(step: Step, ctx: RunContext) -> Any:
    from ..preflight import OK, PROBLEM, Finding
    from .template import probe_all

    return probe_all(step.templates, ctx, Finding, OK, PROBLEM)
