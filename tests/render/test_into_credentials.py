"""render --into calls a literal env value copied from the replaced initContainers a credential by its name or its
shape only: a prefix path, a port, a host name, a log level or a settings module a step reads is none, and a
password that is a ``$(VAR)`` reference is not in the value. The real ones are each said once, never with their
value."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.helpers import run_cli

IMAGE = "registry.example.com/prefect-init:0.1.0-init"

SPEC = """\
# imported by prefect-init import from Deployment/web (initContainers: migrate)
version: 1
name: web
steps:
  - name: migrate
    command: [sh, -c, "echo migrating"]
    env:
      DJANGO_SETTINGS_MODULE: ${DJANGO_SETTINGS_MODULE}
      API_PREFIX: ${API_PREFIX}
      DATABASE_URL: ${DATABASE_URL}
"""

NOT_CREDENTIALS = {"API_PREFIX": "/api/v1", "PORT": "8080", "DB_HOST": "db.example.internal", "LOG_LEVEL": "debug",
                   "DJANGO_SETTINGS_MODULE": "web.settings.production",
                   "DATABASE_URL": "postgres://web:$(DB_PASSWORD)@db:5432/web",
                   "DSN": "host=db user=web password=$(DB_PASSWORD)"}
CREDENTIALS = {"DB_PASSWORD": "hunter2-CANARY", "GITHUB_TOKEN": "ghp_CANARY0123", "REPLICA_URL":
               "postgres://web:s3cret-CANARY@replica:5432/web", "TLS": "-----BEGIN PRIVATE KEY-----\nCANARY\n"}


def test_only_credentials_by_name_or_shape_are_warned_of(tmp_path: Path) -> None:
    env = [{"name": k, "value": v} for k, v in {**NOT_CREDENTIALS, **CREDENTIALS}.items()]
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {"initContainers": [{"name": "migrate", "image": "web:1", "command": ["./migrate"],
                                                 "env": env}],
                             "containers": [{"name": "web", "image": "web:1"}]}}}}
    (tmp_path / "init.yaml").write_text(SPEC)
    (tmp_path / "web.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    result = run_cli("render", "init-container", str(tmp_path / "init.yaml"), "--image", IMAGE, "--into",
                     str(tmp_path / "web.yaml"))
    assert result.code == 0, result.stderr
    warned = sorted(line.split()[2].rstrip(":") for line in result.stderr.splitlines()
                    if "a literal credential, copied from your manifest" in line)
    assert warned == sorted(CREDENTIALS), result.stderr  # each real one once, and nothing else
    assert "CANARY" not in result.stderr
