"""render --into, played by podman: a Deployment whose shell initContainers prepare its volumes, played as it
is, then with the equivalent spec rendered into the same file: the app container sees the same files, modes
and owners, on its own volumes."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.helpers import run_cli, write_spec
from tests.pods.images import BASE_IMAGE, Images
from tests.pods.play import Adapt, play, remove_volumes

WORKLOAD = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      initContainers:
        - name: perms
          image: {base}
          command: [sh, -c, "mkdir -p /data/uploads && chmod 770 /data/uploads && chown -R 1000:1000 /data"]
          volumeMounts:
            - {{name: app-data, mountPath: /data}}
        - name: config
          image: {base}
          command: [sh, -c, "printf 'listen: 8080\\\\nuploads: /srv/data/uploads\\\\n' > /config/app.conf"]
          volumeMounts:
            - {{name: app-conf, mountPath: /config}}
      containers:
        - name: app
          image: {base}
          securityContext: {{runAsUser: 1000, runAsGroup: 1000}}
          command:
            - sh
            - -c
            - >-
              find /srv/data /etc/app -printf 'SEEN %p %m %U:%G %y\\n';
              echo "CONF $(tr '\\n' ' ' < /etc/app/app.conf)";
              touch /srv/data/uploads/new && echo WRITE-OK;
              echo APP-DONE
          volumeMounts:
            - {{name: app-data, mountPath: /srv/data}}
            - {{name: app-conf, mountPath: /etc/app, readOnly: true}}
      volumes:
        - {{name: app-data, emptyDir: {{}}}}
        - {{name: app-conf, emptyDir: {{}}}}
"""

SPEC = """\
# imported by prefect-init import from Deployment/{name} (initContainers: perms, config)
version: 1
name: {name}
steps:
  - name: perms
    files:
      dirs:
        - {{path: /data, owner: "1000:1000"}}
        - {{path: /data/uploads, mode: "0770", owner: "1000:1000"}}
  - name: config
    files:
      files:
        - {{path: /config/app.conf, mode: "0644", content: "listen: 8080\\nuploads: /srv/data/uploads\\n"}}
"""


def seen(lines: list[str]) -> tuple[set[str], list[str]]:
    return ({line for line in lines if line.startswith("SEEN ")},
            [line for line in lines if line.startswith(("CONF ", "WRITE-OK"))])


@pytest.mark.parametrize("source", ["by hand", "prefect-init import"])
def test_the_app_sees_the_same_files_after_render_into(images: Images, tmp_path: Path, source: str) -> None:
    """The spec written by hand, and made by ``prefect-init import`` from the same file."""
    name = f"into{uuid.uuid4().hex[:6]}"
    manifest = tmp_path / "web.yaml"
    manifest.write_text(WORKLOAD.format(name=name, base=BASE_IMAGE))
    if source == "by hand":
        spec = write_spec(tmp_path, SPEC.format(name=name))
    else:
        spec = tmp_path / "imported.yaml"
        imported = run_cli("import", str(manifest), "-o", str(spec))
        assert imported.code == 0, imported.stderr  # import is a command of this version: never skipped
    rendered = run_cli("render", "init-container", str(spec), "--image", images.init, "--into", str(manifest))
    assert rendered.code == 0, rendered.stderr
    try:
        original = play(manifest.read_text(), Adapt(prefix=f"{name}-a-"), tmp_path, until="APP-DONE")
        replaced = play(rendered.stdout, Adapt(prefix=f"{name}-b-"), tmp_path, until="APP-DONE")
    finally:
        remove_volumes(f"{name}-")
    for played in (original, replaced):  # the app starts only once every init container exited 0
        assert "APP-DONE" in played.lines, played.lines[-30:]
    assert any("[perms]" in line for line in replaced.lines), replaced.lines[:30]  # prefect-init ran the spec
    before, after = seen(original.lines), seen(replaced.lines)
    print("\n".join(sorted(before[0])))
    assert after == before
    assert "SEEN /srv/data/uploads 770 1000:1000 d" in before[0], before
    assert "SEEN /etc/app/app.conf 644 0:0 f" in before[0], before
    assert before[1] == ["CONF listen: 8080 uploads: /srv/data/uploads ", "WRITE-OK"], before
