"""Each step sees what its own container saw: two initContainers that define a variable differently are imported
under each container's own name (``SETUP_VISIBILITY_STORE_SQL_PASSWORD``), and ``render --into`` gives the
prefect-init container that container's entry under that name (a Secret's reference stays a reference)."""

from __future__ import annotations

from pathlib import Path

from prefect_init.render.into import pod_template
from tests.helpers import run_cli
from tests.render.kube import load_stream

WORLD = Path(__file__).resolve().parents[1] / "importer" / "import_world"


def test_a_variable_two_containers_define_differently_reaches_each_step_as_its_container_had_it(
        tmp_path: Path) -> None:
    manifest = WORLD / "temporal-schema.yaml"  # four initContainers, two stores: two SQL_PASSWORD Secrets
    assert manifest.exists(), manifest
    spec = tmp_path / "init.yaml"
    imported = run_cli("import", "--replace-all", str(manifest), "-o", str(spec))
    assert imported.code == 0, imported.stderr
    assert "${SETUP_VISIBILITY_STORE_SQL_PASSWORD}" in spec.read_text()  # the control: the importer renamed it
    result = run_cli("render", "init-container", str(spec), "--image", "prefect-init:test", "--into", str(manifest))
    assert result.code == 0, result.stderr
    assert "nothing in this manifest sets them" not in result.stderr, result.stderr
    job = next(d for d in load_stream(result.stdout) if d["kind"] == "Job")
    found = pod_template(job)
    assert found is not None
    init = next(c for c in found[1]["initContainers"] if c["name"] == "prefect-init")
    env = {e["name"]: e for e in init["env"]}
    secret = {"secretKeyRef": {"name": "temporal-visibility-store", "key": "password"}}
    assert env["SETUP_VISIBILITY_STORE_SQL_PASSWORD"] == {"name": "SETUP_VISIBILITY_STORE_SQL_PASSWORD",
                                                          "valueFrom": secret}
    assert env["SQL_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "temporal-default-store"  # the first one's
    assert env["SETUP_VISIBILITY_STORE_SQL_DATABASE"]["value"] == "temporal_visibility"
