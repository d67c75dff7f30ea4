"""``render --into`` on a file kept in git: what it does not change comes back byte for byte, the document it
changes keeps its comments, flow styles, quotes and indentation, and only the changed parts differ."""

from __future__ import annotations

import difflib
from pathlib import Path

import pytest
import yaml

from prefect_init.render.roundtrip import changed_document, guess_indent
from tests.helpers import run_cli

SPEC = """\
# imported by prefect-init import from Deployment/web (initContainers: perms)
version: 1
name: web
steps:
  - name: perms
    files:
      dirs:
        - {path: /data/uploads, mode: "0770"}
"""

SERVICE = """\
# the web service: untouched, so byte for byte
apiVersion: v1
kind: Service
metadata:
  name: web     # two spaces before this comment, kept
  annotations: {"example.com/odd":   'spacing kept'}
spec:
  selector: {app: web}
  ports: [{port: 80}]
"""

DEPLOYMENT = """\
# GitOps: reviewed line by line
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: "frontend"}   # flow style and quotes kept
spec:
  replicas: 3 # scaled by hand, see the runbook
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      # the old init: replaced
      initContainers:
      - name: perms
        image: busybox:1.36
        command: ["sh", "-c", "mkdir -p /data/uploads && chmod 770 /data/uploads"]
        volumeMounts:
        - {name: data, mountPath: /data}
      containers:
      - name: app
        image: 'nginx:1.27'   # pinned
        args: [--port, "8080"]
        ports: [{containerPort: 8080}]
        volumeMounts:
        - {name: data, mountPath: /var/lib/web}
      volumes:
      - {name: data, emptyDir: {}}
"""


def _render(tmp_path: Path, manifest: str) -> str:
    spec = tmp_path / "init.yaml"
    spec.write_text(SPEC)
    target = tmp_path / "web.yaml"
    target.write_text(manifest)
    result = run_cli("render", "init-container", str(spec), "--image", "prefect-init:test", "--into", str(target))
    assert result.code == 0, result.output
    return result.stdout


def test_an_untouched_document_comes_back_byte_for_byte(tmp_path: Path) -> None:
    out = _render(tmp_path, SERVICE + "---\n" + DEPLOYMENT)
    assert SERVICE in out


def test_the_changed_document_differs_only_where_render_changed_it(tmp_path: Path) -> None:
    out = _render(tmp_path, SERVICE + "---\n" + DEPLOYMENT)
    changed = out[out.index("# GitOps"):]
    before, after = DEPLOYMENT.splitlines(), changed.splitlines()
    replaced = DEPLOYMENT[DEPLOYMENT.index("      - name: perms"):DEPLOYMENT.index("      containers:")].splitlines()
    removed = [line[2:] for line in difflib.ndiff(before, after) if line.startswith("- ")]
    # what went is the replaced initContainer's lines, and nothing else: not one comment, style or quote
    assert removed and set(removed) <= set(replaced), "\n".join(removed)
    rest = iter(after)  # every other line of the original is there, in its order
    for line in before:
        if line not in replaced:
            assert any(line == candidate for candidate in rest), f"lost or changed: {line!r}"
    for kept in ("  labels: {app: web, tier: \"frontend\"}   # flow style and quotes kept",
                 "  replicas: 3 # scaled by hand, see the runbook",
                 "      # the old init: replaced",
                 "        image: 'nginx:1.27'   # pinned",
                 "        ports: [{containerPort: 8080}]"):
        assert kept in after, kept
    # the new parts follow the file's own indentation: lists at their parent key's column
    assert "      - name: prefect-init" in after
    doc = next(d for d in yaml.safe_load_all(out) if d and d["kind"] == "Deployment")
    pod = doc["spec"]["template"]["spec"]
    assert [c["name"] for c in pod["initContainers"]] == ["prefect-init"]
    assert doc["metadata"]["labels"] == {"app": "web", "tier": "frontend"}


def test_rendering_twice_is_rendering_once(tmp_path: Path) -> None:
    first = _render(tmp_path, SERVICE + "---\n" + DEPLOYMENT)
    assert _render(tmp_path, first) == first


@pytest.mark.parametrize(("text", "expected"), [
    ("a:\n  b: 1\n  c:\n    - x\n", (2, 4, 2)),
    ("a:\n    b: 1\nc:\n- x\n", (4, 2, 0)),
    ("a:\n  - name: x\n    y: 1\n", (2, 4, 2)),
    ("a: 1\n", (2, 2, 0)),
])
def test_the_indentation_is_read_off_the_file(text: str, expected: tuple[int, int, int]) -> None:
    assert guess_indent(text) == expected


def test_a_new_value_is_written_in_block_style_and_a_removed_key_goes() -> None:
    raw = "---\n# top\nkind: X  # kind\nspec:\n  keep: {a: 1}\n  drop: 2\n"
    out = changed_document(raw, {"kind": "X", "spec": {"keep": {"a": 1}, "drop": 2}},
                           {"kind": "X", "spec": {"keep": {"a": 1}, "new": {"b": [1, 2]}}})
    assert out == "---\n# top\nkind: X  # kind\nspec:\n  keep: {a: 1}\n  new:\n    b:\n    - 1\n    - 2\n"
