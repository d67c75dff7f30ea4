"""deployments/ is generated: the checked-in files are what the code renders now, and every manifest is valid."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from prefect_init.cli.tree import files
from tests.prefect_adapter.test_workpool import job_for_a_flow_run
from tests.render.kube import assert_valid, load_stream

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = ROOT / "deployments"


def test_checked_in_files_match_the_code() -> None:
    expected = files()
    stale = [name for name, content in expected.items()
             if not (DEPLOYMENTS / name).is_file() or (DEPLOYMENTS / name).read_text() != content]
    assert not stale, f"regenerate with: python -m prefect_init.cli.tree deployments  (stale: {stale})"
    on_disk = {str(p.relative_to(DEPLOYMENTS)) for p in DEPLOYMENTS.rglob("*") if p.is_file()}
    assert on_disk == set(expected), "a file in deployments/ that the code does not make"


def test_check_mode_names_a_changed_file(tmp_path: Path) -> None:
    """The --check mode fails on drift (a mutated copy), and passes on the real tree."""
    copy = tmp_path / "deployments"
    for name, content in files().items():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        (copy / name).write_text(content)
    run = [sys.executable, "-m", "prefect_init.cli.tree"]
    assert subprocess.run([*run, str(copy), "--check"], capture_output=True).returncode == 0
    (copy / "k8s" / "job.yaml").write_text((copy / "k8s" / "job.yaml").read_text().replace("backoffLimit: 2",
                                                                                           "backoffLimit: 6"))
    result = subprocess.run([*run, str(copy), "--check"], capture_output=True, text=True)
    assert result.returncode == 1 and "k8s/job.yaml: differs" in result.stderr


def test_every_checked_in_manifest_is_valid() -> None:
    kinds = []
    for path in sorted((DEPLOYMENTS / "k8s").glob("*.yaml")):
        for doc in load_stream(path.read_text()):
            assert_valid(doc)
            kinds.append(doc["kind"])
    assert sorted(set(kinds)) == ["ConfigMap", "CronJob", "Deployment", "Job", "ServiceAccount"]
    job = load_stream((DEPLOYMENTS / "k8s" / "job.yaml").read_text())[1]
    assert job["metadata"]["annotations"]["helm.sh/hook"] == "pre-install,pre-upgrade"
    template = json.loads((DEPLOYMENTS / "base-job-template.json").read_text())
    assert_valid(job_for_a_flow_run(template))


def test_prefect_yaml_deploys_the_spec_flow_by_module_path() -> None:
    doc = yaml.safe_load((DEPLOYMENTS / "prefect.yaml").read_text())
    deployment, = doc["deployments"]
    assert deployment["entrypoint"] == "prefect_init.flows.spec_flow:run_spec"
    assert doc["pull"] is None  # the flow is in the image's installed package
    assert deployment["parameters"]["spec_text"] == (ROOT / "examples" / "myapp.yaml").read_text()
    assert deployment["work_pool"]["name"] == "kubernetes"
    assert deployment["schedules"][0]["cron"] == "0 3 * * *"


def test_dockerfile() -> None:
    text = (DEPLOYMENTS / "Dockerfile").read_text()
    stages = {chunk.split("\n", 1)[0].split(" AS ")[-1]: chunk for chunk in text.split("\nFROM ")[1:]}
    assert list(stages) == ["build", "init", "worker"]
    init, worker = stages["init"], stages["worker"]
    assert "-e " not in text
    assert "pip install --no-deps /wheels/*.whl && pip install -r /wheels/init-requirements.txt" in init
    assert "init_requirements.py /wheels prefect prefect-kubernetes" in stages["build"]
    assert worker.startswith("init AS worker") and "pip install /wheels/*.whl" in worker
    assert "git" in init and "gcc" not in text and "build-essential" not in text
    assert "USER 10001:10001" in init and "--uid 10001" in init and worker.rstrip().endswith("USER 10001:10001")
    assert 'ENTRYPOINT ["prefect-init"]' in init and 'CMD ["run", "/etc/prefect-init/init.yaml"]' in init
    assert text.startswith("# The prefect-init images") and "python:3.11-slim" in text
