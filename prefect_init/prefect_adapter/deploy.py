"""``prefect-init deploy``: the spec as the deployment ``prefect-init/NAME`` of the spec flow, by module path.

The spec's text, as written, is the deployment's parameter ``spec_text`` (``${VAR}`` and ``{file: ...}`` are
resolved where the run executes), so the UI shows exactly what runs and a Job needs no ConfigMap. A spec with a
literal credential is refused before anything is created.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prefect_init.errors import SpecError
from prefect_init.prefect_adapter.client import ENTRYPOINT, FLOW_NAME, CommandError, client, ui_url
from prefect_init.spec.credentials import credential_env, literal_credentials
from prefect_init.spec.model import Spec

KUBERNETES_ONLY = {"image": "--image", "namespace": "--namespace", "service_account_name": "--service-account"}


@dataclass
class DeployRequest:
    spec: Spec
    pool: str
    name: str | None = None
    crons: list[str] = field(default_factory=list)
    timezone: str | None = None
    image: str | None = None
    namespace: str | None = None
    service_account: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    base_dir: str | None = None
    create_pool: str | None = None

    def job_variables(self) -> dict[str, object]:
        out: dict[str, object] = {}
        for key, value in (("image", self.image), ("namespace", self.namespace),
                           ("service_account_name", self.service_account)):
            if value:
                out[key] = value
        if self.env:
            out["env"] = dict(self.env)
        return out


@dataclass
class Deployed:
    name: str
    url: str
    schedules: list[str]
    created_pool: bool


def _schedules(request: DeployRequest) -> list[object]:
    from prefect.client.schemas.actions import DeploymentScheduleCreate
    from prefect.client.schemas.schedules import CronSchedule

    out: list[object] = []
    for expression in request.crons:
        try:
            schedule = CronSchedule(cron=expression, timezone=request.timezone or "UTC")
        except ValueError as exc:
            first = str(exc).splitlines()
            reason = next((line.strip() for line in first[1:] if line.strip() and not line.startswith(" ")), "")
            raise CommandError(f"--cron {expression!r} / --timezone: not a valid schedule "
                               f"({reason or 'five cron fields and an IANA time zone'})", 2) from None
        out.append(DeploymentScheduleCreate(schedule=schedule, active=True))
    return out


def _pool_template(kind: str, request: DeployRequest) -> dict[str, object]:
    if kind == "kubernetes":
        from prefect_init.prefect_adapter.workpool import base_job_template
        from prefect_init.render import RenderOptions

        return base_job_template(RenderOptions(image=request.image or "prefect-init:latest"))
    from prefect.workers.process import ProcessWorker

    return ProcessWorker.get_default_base_job_template()


def refuse_credential_env(text: str, env: dict[str, str], where: str) -> None:
    """``--env`` values that are credentials (render's one check, :func:`credential_env`) are never stored as job
    variables: exit 2, the names only, before the API is asked anything."""
    names = credential_env(text, env)
    if names:
        raise CommandError(f"--env {', '.join(names)}: a credential is not stored as {where}'s job variable "
                           "(readable by anyone who can read it): give it to the worker's pods from a Kubernetes "
                           "Secret (the work pool's job template), or to the worker's own environment", 2)


def deploy(request: DeployRequest) -> Deployed:
    problems = literal_credentials(request.spec.text, request.spec.file)
    if problems:
        raise SpecError(problems)
    refuse_credential_env(request.spec.text, request.env, "a deployment")
    schedules = _schedules(request)  # a bad --cron is exit 2 before the API is asked anything
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectNotFound
    from prefect.utilities.callables import parameter_schema

    from prefect_init.flows.spec_flow import run_spec

    name = request.name or request.spec.name
    with client(no_api_code=1) as prefect:
        created = False
        try:
            pool = prefect.read_work_pool(request.pool)
        except ObjectNotFound:
            if request.create_pool is None:
                raise CommandError(
                    f"work pool {request.pool!r} does not exist: create it with `prefect work-pool create "
                    f"{request.pool} --type kubernetes --base-job-template deployments/base-job-template.json` "
                    f"(or `--type process` to try it locally), or pass --create-pool kubernetes|process", 2) from None
            pool = prefect.create_work_pool(WorkPoolCreate(
                name=request.pool, type=request.create_pool,
                base_job_template=_pool_template(request.create_pool, request)))
            created = True
        variables = request.job_variables()
        if pool.type != "kubernetes":
            wrong = [flag for key, flag in KUBERNETES_ONLY.items() if key in variables]
            if wrong:
                raise CommandError(f"{', '.join(wrong)}: for a kubernetes work pool; {request.pool!r} is a "
                                   f"{pool.type} pool", 2)
        flow_id = prefect.create_flow_from_name(FLOW_NAME)
        parameters: dict[str, object] = {"spec_text": request.spec.text}
        if request.base_dir:
            parameters["base_dir"] = request.base_dir
        deployment_id = prefect.create_deployment(
            flow_id=flow_id, name=name, entrypoint=ENTRYPOINT, work_pool_name=request.pool,
            parameters=parameters, parameter_openapi_schema=parameter_schema(run_spec).model_dump_for_openapi(),
            tags=list(dict.fromkeys(["prefect-init", f"spec:{request.spec.name}", request.spec.name,
                                     *request.spec.tags, *request.tags])),
            job_variables=variables, schedules=schedules,  # type: ignore[arg-type]
            description=f"prefect-init spec {request.spec.name}", pull_steps=[],
        )
    return Deployed(name=f"{FLOW_NAME}/{name}", url=ui_url(f"deployments/deployment/{deployment_id}"),
                    schedules=[f"{c} ({request.timezone or 'UTC'})" for c in request.crons], created_pool=created)
