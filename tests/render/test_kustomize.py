"""render kustomize: ``kubectl kustomize DIR`` gives what ``render init-container --into`` prints for the same
workload (compared as parsed documents, lists of named things up to order, initContainers in order)."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from prefect_init.errors import StepFailed
from prefect_init.render import kustomize
from tests.helpers import run_cli
from tests.render.kube import assert_valid, load_stream
from tests.render.workloads_inline import KINDS, SPEC, SPEC_PLAIN, normalized, pod_of, workload

IMAGE = "registry.example.com/prefect-init:0.1.0-init"
needs_kubectl = pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed here")


def kubectl_kustomize(directory: Path) -> list[dict[str, Any]]:
    built = subprocess.run(["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    return load_stream(built.stdout)


def by_identity(docs: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
    return {(d["kind"], d["metadata"]["name"]): normalized(d) for d in docs}


def both(tmp_path: Path, kind: str, *args: str, spec: str | None = None, manifest: str | None = None,
         spec_in_dir: bool = False) -> tuple[list[dict[str, Any]], list[dict[str, Any]], Path]:
    """(render --into's documents, kubectl kustomize's) for the same spec and workload file."""
    directory = tmp_path / "k8s"
    directory.mkdir()
    target = directory / "web.yaml"
    target.write_text(manifest if manifest is not None else workload(kind))
    spec_path = (directory if spec_in_dir else tmp_path) / "init.yaml"
    spec_path.write_text(spec if spec is not None else SPEC.format(kind=kind))
    printed = run_cli("render", "init-container", str(spec_path), "--image", IMAGE, "--into", str(target), *args)
    assert printed.code == 0, printed.stderr
    written = run_cli("render", "kustomize", str(spec_path), "--image", IMAGE, "--into", str(target),
                      "-o", str(directory), *args)
    assert written.code == 0, written.stderr
    assert "kubectl apply -k" in written.stderr
    return load_stream(printed.stdout), kubectl_kustomize(directory), directory


@needs_kubectl
@pytest.mark.parametrize("kind", KINDS)
def test_kustomize_builds_what_into_prints(tmp_path: Path, kind: str) -> None:
    printed, built, directory = both(tmp_path, kind)
    assert by_identity(built) == by_identity(printed)
    for doc in built:
        assert_valid(doc)
    workload_doc = next(d for d in built if d["kind"] == kind)
    assert [c["name"] for c in pod_of(workload_doc)["initContainers"]] == ["prefect-init"]
    patch = yaml.safe_load((directory / kustomize.PATCH).read_text())
    entries = pod_of(patch)
    assert {"name": "perms", "$patch": "delete"} in entries["initContainers"]
    assert {"name": "config", "$patch": "delete"} in entries["initContainers"]
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert kustomization["resources"] == ["web.yaml"]
    assert kustomization["configMapGenerator"][0]["files"] == ["init.yaml=init.yaml"]
    assert kustomization["generatorOptions"] == {"disableNameSuffixHash": True}
    assert (directory / "init.yaml").read_text() == SPEC.format(kind=kind)  # the spec, copied beside it


@needs_kubectl
@pytest.mark.parametrize("args", [("--keep-init",), ()])
def test_the_order_of_the_init_containers_is_the_same(tmp_path: Path, args: tuple[str, ...]) -> None:
    """kustomize puts a list's elements named in a patch first: the patch names those that stay ahead."""
    manifest = workload("StatefulSet").replace("initContainers:\n", (
        "initContainers:\n        - name: wait-db\n          image: busybox:1.36\n"
        "        - name: proxy\n          image: envoy:1\n          restartPolicy: Always\n"), 1)
    printed, built, _ = both(tmp_path, "StatefulSet", *args, manifest=manifest, spec_in_dir=True)
    assert by_identity(built) == by_identity(printed)
    order = [[c["name"] for c in pod_of(d)["initContainers"]] for docs in (printed, built) for d in docs
             if d["kind"] == "StatefulSet"]
    expected = ["prefect-init", "wait-db", "proxy", "perms", "config"] if args else ["wait-db", "proxy",
                                                                                      "prefect-init"]
    assert order == [expected, expected]


def test_the_spec_in_the_directory_is_used_in_place(tmp_path: Path) -> None:
    directory = tmp_path / "k8s"
    directory.mkdir()
    (directory / "web.yaml").write_text(workload("Deployment"))
    (directory / "specs").mkdir()
    spec = directory / "specs" / "web-init.yaml"
    spec.write_text(SPEC_PLAIN)
    result = run_cli("render", "kustomize", str(spec), "--image", IMAGE, "--into", str(directory / "web.yaml"),
                     "-o", str(directory))
    assert result.code == 0, result.stderr
    assert sorted(p.name for p in directory.iterdir()) == ["kustomization.yaml", "prefect-init-patch.yaml",
                                                           "specs", "web.yaml"]
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    assert kustomization["configMapGenerator"][0]["files"] == ["init.yaml=specs/web-init.yaml"]


def test_a_second_render_replaces_its_own_copy_of_the_spec_and_no_other_file(tmp_path: Path) -> None:
    """The first render copies notes.yaml (the spec) into DIR; the second, of another spec also named notes.yaml,
    may replace that copy. A third, after the user wrote their own notes.yaml where a spec copy of another name
    (init.yaml) was, does not replace the user's file."""
    directory, elsewhere = tmp_path / "k8s", tmp_path / "specs"
    directory.mkdir()
    elsewhere.mkdir()
    (directory / "web.yaml").write_text(workload("Deployment"))
    spec = elsewhere / "notes.yaml"
    spec.write_text(SPEC_PLAIN)
    args = ("--image", IMAGE, "--into", str(directory / "web.yaml"), "-o", str(directory))
    assert run_cli("render", "kustomize", str(spec), *args).code == 0
    assert (directory / "notes.yaml").read_text() == SPEC_PLAIN
    spec.write_text(SPEC_PLAIN.replace("mode: \"0755\"", "mode: \"0750\""))
    assert spec.read_text() != SPEC_PLAIN
    again = run_cli("render", "kustomize", str(spec), *args)
    assert again.code == 0, again.stderr
    assert (directory / "notes.yaml").read_text() == spec.read_text()
    other = elsewhere / "init.yaml"
    other.write_text(SPEC_PLAIN)
    assert run_cli("render", "kustomize", str(other), *args).code == 0  # its copy: init.yaml
    (directory / "notes.yaml").write_text("my own notes\n")
    spec.write_text(SPEC_PLAIN)
    refused = run_cli("render", "kustomize", str(spec), *args)
    assert refused.code == 2 and "notes.yaml is there and is not this spec" in refused.stderr, refused.output
    assert (directory / "notes.yaml").read_text() == "my own notes\n"


@pytest.mark.parametrize(("setup", "args", "message"), [
    ("outside", (), "kustomize reads only files in or below the kustomization's directory"),
    ("foreign", (), "was not written by prefect-init"),
    ("rendered", (), "has a prefect-init initContainer already"),
    ("none", ("--no-into",), "--into WORKLOAD.yaml is required"),
    ("none", ("--no-o",), "-o DIR is required"),
    ("none", ("--app-image", "x"), "--app-image is for init-container and compose only"),
    ("patch-dir", (), "is a directory"),
])
def test_problems_are_one_line_exit_2_and_nothing_is_written(tmp_path: Path, setup: str, args: tuple[str, ...],
                                                              message: str) -> None:
    directory = tmp_path / "k8s"
    directory.mkdir()
    target = directory / "web.yaml"
    target.write_text(workload("Deployment"))
    spec = tmp_path / "init.yaml"
    spec.write_text(SPEC_PLAIN)
    out = directory
    if setup == "outside":
        out = tmp_path / "elsewhere"
        out.mkdir()
    elif setup == "foreign":
        (directory / "kustomization.yaml").write_text("resources: [web.yaml]\n")
    elif setup == "rendered":
        target.write_text(run_cli("render", "init-container", str(spec), "--image", IMAGE, "--into",
                                  str(target)).stdout)
    elif setup == "patch-dir":
        (directory / kustomize.PATCH).mkdir()
    before = {p.name: (p.read_text() if p.is_file() else None) for p in out.iterdir()}
    flags = [a for a in args if not a.startswith("--no-")]
    command = ["render", "kustomize", str(spec), "--image", IMAGE, *flags]
    command += [] if "--no-into" in args else ["--into", str(target)]
    command += [] if "--no-o" in args else ["-o", str(out)]
    result = run_cli(*command)
    assert result.code == 2 and message in result.stderr, result.stderr
    assert result.stdout == "" and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert {p.name: (p.read_text() if p.is_file() else None) for p in out.iterdir()} == before


def test_a_failed_write_leaves_the_directory_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "kustomization.yaml").write_text(kustomize.MARKER + "\nold\n")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(StepFailed, match="no space left on device"):
        kustomize.write(tmp_path, {"init.yaml": "spec\n", kustomize.PATCH: "patch\n", "kustomization.yaml": "new\n"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kustomization.yaml"]  # no temporary file left
    assert (tmp_path / "kustomization.yaml").read_text() == kustomize.MARKER + "\nold\n"
