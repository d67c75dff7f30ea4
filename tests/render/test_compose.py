"""render compose: an init service that runs the spec, the app's services waiting for it to complete, the
volumes it writes shared with them; with --into, the user's compose file with only that added."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helpers import run_cli

IMAGE = "registry.example.com/prefect-init:0.1.0-init"
SPEC = """\
version: 1
name: shop
steps:
  - name: wait-db
    wait: [{postgres: "postgresql://shop@db:5432/shop"}]
  - name: dirs
    after: [wait-db]
    files:
      dirs: [{path: /data/uploads, mode: "0770", owner: "1000:1000"}]
      files: [{path: /config/app.conf, content: "ready\\n"}]
"""
COMPOSE = """\
# the shop, for local development
services:
  db:
    image: postgres:16
    environment: {POSTGRES_PASSWORD: dev}
    volumes: [pgdata:/var/lib/postgresql/data]
  web:
    image: shop:dev
    depends_on: [db]
    ports: ["8080:80"]
    volumes:
      - uploads:/data
  worker:
    image: shop:dev
    command: [worker]
    depends_on:
      db: {condition: service_healthy}
volumes:
  pgdata: {}
  uploads: {}
"""


def render(tmp_path: Path, *args: str, compose: str | None = COMPOSE, code: int = 0) -> tuple[dict[str, Any], str]:
    (tmp_path / "deploy").mkdir(exist_ok=True)
    spec = tmp_path / "deploy" / "init.yaml"
    spec.write_text(SPEC)
    into: list[str] = []
    if compose is not None:
        target = tmp_path / "compose.yaml"
        target.write_text(compose)
        into = ["--into", str(target)]
    result = run_cli("render", "compose", str(spec), "--image", IMAGE, *into, *args)
    assert result.code == code, result.output
    return (yaml.safe_load(result.stdout) if code == 0 else {}), result.stderr


def test_into_adds_the_init_service_and_changes_nothing_else(tmp_path: Path) -> None:
    out, err = render(tmp_path)
    original = yaml.safe_load(COMPOSE)
    init = out["services"]["shop-init"]
    assert init["image"] == IMAGE and init["restart"] == "no"
    assert init["command"] == ["run", "/etc/prefect-init/init.yaml", "--status-file", "/status/result.json"]
    assert "./deploy/init.yaml:/etc/prefect-init/init.yaml:ro" in init["volumes"]  # relative to the compose file
    assert "uploads:/data" in init["volumes"]  # web's own volume, at web's path: the init writes web's files
    assert "config:/config" in init["volumes"]  # nothing mounts /config: a new named volume
    assert init["read_only"] is True and "/tmp" in init["tmpfs"] and init["user"] == "0:0"
    # the spec sets an owner: exactly the capabilities a chown and a write into another user's directory need
    assert init["cap_drop"] == ["ALL"]
    assert sorted(init["cap_add"]) == ["CHOWN", "DAC_OVERRIDE", "FOWNER"]
    assert init["security_opt"] == ["no-new-privileges:true"]
    # db is reached by the spec: it must not wait for the init service (that would never start)
    assert "db: the spec reaches it" in err
    assert out["services"]["db"] == original["services"]["db"]
    web, worker = out["services"]["web"], out["services"]["worker"]
    assert web["depends_on"] == {"db": {"condition": "service_started"},  # the list form, as a mapping
                                 "shop-init": {"condition": "service_completed_successfully"}}
    assert worker["depends_on"] == {"db": {"condition": "service_healthy"},
                                    "shop-init": {"condition": "service_completed_successfully"}}
    assert web["volumes"] == ["uploads:/data", "config:/config"]  # /data: no second mount
    assert worker["volumes"] == ["config:/config"]  # /data is web's volume: the worker gets only what is new
    assert out["volumes"] == {"pgdata": {}, "uploads": {}, "config": {}}
    rest = copy.deepcopy(out)
    del rest["services"]["shop-init"], rest["volumes"]["config"]
    for name in ("web", "worker"):
        del rest["services"][name]["depends_on"]
        rest["services"][name]["volumes"] = [v for v in rest["services"][name]["volumes"]
                                             if not v.startswith("config:")] or None
    expected = copy.deepcopy(original)
    for name in ("web", "worker"):
        del expected["services"][name]["depends_on"]
        expected["services"][name]["volumes"] = expected["services"][name].get("volumes")
    assert rest == expected
    again, _ = render(tmp_path, compose=yaml.safe_dump(out, sort_keys=False))
    assert again == out  # rendering into its own output changes nothing


def test_two_directories_under_one_mount_mount_it_once(tmp_path: Path) -> None:
    """/data/uploads and /data/cache both under web's uploads:/data: the init service mounts it once (compose
    refuses two mounts at one path)."""
    spec = SPEC.replace('dirs: [{path: /data/uploads, mode: "0770", owner: "1000:1000"}]',
                        'dirs: [{path: /data/uploads, mode: "0770"}, {path: /data/cache, mode: "0700"}]')
    assert spec != SPEC
    (tmp_path / "deploy").mkdir()
    (tmp_path / "deploy" / "init.yaml").write_text(spec)
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    result = run_cli("render", "compose", str(tmp_path / "deploy" / "init.yaml"), "--image", IMAGE, "--into",
                     str(tmp_path / "compose.yaml"))
    assert result.code == 0, result.output
    volumes = yaml.safe_load(result.stdout)["services"]["shop-init"]["volumes"]
    targets = [str(v).split(":")[1] for v in volumes]
    assert targets.count("/data") == 1 and len(targets) == len(set(targets)), volumes


def test_service_chooses_who_waits(tmp_path: Path) -> None:
    out, err = render(tmp_path, "--service", "worker")
    assert "depends_on" not in out["services"]["db"]
    assert out["services"]["web"]["depends_on"] == ["db"]
    assert "shop-init" in out["services"]["worker"]["depends_on"]
    assert "reaches" not in err


def test_without_into_a_minimal_file_with_an_app(tmp_path: Path) -> None:
    (tmp_path / "deploy" / "sql").mkdir(parents=True)
    (tmp_path / "deploy" / "sql" / "V1__a.sql").write_text("SELECT 1;\n")
    out, _ = render(tmp_path, "--app-image", "shop:dev", "--env", "GREETING=a$b", "--files",
                    f"{tmp_path / 'deploy' / 'sql'}:/migrations", compose=None)
    relative = os.path.relpath(tmp_path / "deploy" / "sql")  # without --into: relative to where render ran
    relative = relative if relative.startswith(".") else "./" + relative
    assert f"{relative}:/migrations:ro" in out["services"]["shop-init"]["volumes"]
    assert list(out["services"]) == ["shop-init", "app"]
    app = out["services"]["app"]
    assert app["image"] == "shop:dev"
    assert app["depends_on"] == {"shop-init": {"condition": "service_completed_successfully"}}
    assert sorted(app["volumes"]) == ["config:/config", "data-uploads:/data/uploads"]
    assert out["services"]["shop-init"]["environment"] == {"GREETING": "a$$b"}  # compose interpolates $
    assert out["volumes"] == {"config": {}, "data-uploads": {}}


@pytest.mark.parametrize(("args", "compose", "message"), [
    ((), "services: [unclosed\n", "not valid YAML"),
    ((), "version: '3'\n", "not a compose file"),
    ((), "services:\n  a: 5\n", "compose.yaml: services.a: expected a mapping"),
    ((), "services:\n  a: {depends_on: db}\n", "services.a.depends_on: expected a list or a dict"),
    (("--service", "nope"), COMPOSE, "--service nope: no such service"),
    (("--namespace", "x"), COMPOSE, "--namespace is not for a compose file"),
    (("--env-from-secret", "x"), COMPOSE, "--env-from-secret is for"),
    (("--workload", "deployment/x"), COMPOSE, "--workload is for init-container and kustomize only"),
])
def test_problems_are_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], compose: str, message: str) -> None:
    _, err = render(tmp_path, *args, compose=compose, code=2)
    assert message in err and len(err.strip().splitlines()) == 1, err
