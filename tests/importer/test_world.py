"""The import measured on charts its recognisers were not written for (``import_world/``).

Each file of ``import_world/`` is one public chart's workload with its initContainers, rendered by hand with the
chart's default values, its source named at the top, and one ``# expect CONTAINER: FORM | FORM`` line per
initContainer: the faithful outcomes. A FORM is ``kept`` (the container stays as it is: only its own image can
run it), ``command`` (the whole script as one command step), ``split`` (typed steps and command steps cut from
the script) or the typed steps it becomes (``wait tcp``, ``wait dns``, ``files``, ``files-if-exists optional``).

:func:`measure` imports every workload and sorts each container into: as expected, **wrong** (a typed step
that does something else than the script did, or a container only its image can run turned into a step) or
**missed** (kept as a command where a typed translation is equivalent). The numbers are in
docs/guides/import-trust.md; the test holds the wrong ones at zero."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from prefect_init.importer import ContainerResult, NothingToImport, import_workload
from prefect_init.importer.manifest import workloads
from prefect_init.importer.shell import SHELLS, programs

CORPUS = Path(__file__).resolve().parent / "import_corpus"

WORLD = Path(__file__).resolve().parent / "import_world"
_EXPECT = re.compile(r"^# expect (?P<name>[A-Za-z0-9_.-]+): (?P<forms>.+)$", re.MULTILINE)
TYPED_FORMS = ("wait", "files", "config", "git", "vault", "migrate", "templates")


@dataclass
class Row:
    file: str
    container: str
    expected: list[str]
    actual: str
    verdict: str = ""


@dataclass
class Measurement:
    rows: list[Row] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(row.verdict == verdict for row in self.rows)

    @property
    def typed(self) -> int:
        return sum(row.actual.split()[0] in TYPED_FORMS for row in self.rows)

    def table(self) -> str:
        return "\n".join(f"{r.verdict:8} {r.file}: {r.container}: got {r.actual!r}, expected {' | '.join(r.expected)}"
                         for r in self.rows)


def _step_form(step: dict[str, Any]) -> str:
    """What one typed step is, in the words of the ``# expect`` lines."""
    if "wait" in step:
        targets = step["wait"] if isinstance(step["wait"], list) else step["wait"].get("targets", [])
        kinds = sorted({next(iter(t)) for t in targets if isinstance(t, dict)})
        return "wait " + " ".join(kinds)
    if "files" in step:
        entries = [*step["files"].get("dirs", []), *step["files"].get("files", [])]
        form = "files-if-exists" if entries and all(e.get("only_if_exists") for e in entries) else "files"
        return form + (" optional" if step.get("optional") else "")
    return next(k for k in step if k not in ("name", "after", "optional", "timeout", "retries", "env"))


def container_form(spec_text: str, outcome: str, step_names: list[str]) -> str:
    """``kept``, ``command``, ``split`` or the typed steps' forms (``wait tcp``, ``files``, ...)."""
    if outcome in ("kept", "command"):
        return outcome
    steps = {s["name"]: s for s in yaml.safe_load(spec_text)["steps"]}
    forms = [_step_form(steps[name]) for name in step_names if "command" not in steps[name]]
    if outcome == "split":
        return "split"
    return " + ".join(forms)


def _verdict(row: Row) -> str:
    if row.actual in row.expected:
        return "ok"
    if row.actual == "command" or (row.actual == "kept" and "command" in row.expected):
        return "missed" if "kept" not in row.expected else "wrong"
    return "wrong"


def measure() -> Measurement:
    result = Measurement()
    for manifest in sorted(WORLD.glob("*.yaml")):
        text = manifest.read_text()
        expected = {m["name"]: [f.strip() for f in m["forms"].split("|")] for m in _EXPECT.finditer(text)}
        for workload in [w for w in workloads(text) if w.init_containers]:
            try:
                imported = import_workload(text, workload.ref, manifest.name)
                containers: list[ContainerResult] = imported.containers
                spec_text = imported.spec_text
            except NothingToImport as exc:
                containers, spec_text = exc.containers, ""
            for container in containers:
                assert container.name in expected, f"{manifest.name}: no '# expect {container.name}:' line"
                row = Row(manifest.name, container.name, expected[container.name],
                          container_form(spec_text, container.outcome, container.steps))
                row.verdict = _verdict(row)
                result.rows.append(row)
    return result


def test_the_world_corpus_is_large_enough_and_each_file_names_its_source() -> None:
    files = sorted(WORLD.glob("*.yaml"))
    assert len(files) >= 20, len(files)
    for manifest in files:
        assert manifest.read_text().startswith("# source: "), manifest.name
    assert len(measure().rows) >= 30


# What the importer did wrong on this corpus before its recognisers were changed for it (14 rows, in the commit
# that added the corpus: harbor's `chmod -R 700 pgdata || true` as a files step, mattermost's curl on 3306 as an
# http wait, 12 containers only their own image can run made steps); the fixes emptied it.
KNOWN_WRONG: set[tuple[str, str]] = set()


def test_no_typed_step_does_something_else_and_no_container_of_its_own_image_is_replaced() -> None:
    measured = measure()
    wrong = {(r.file, r.container) for r in measured.rows if r.verdict == "wrong"}
    assert wrong <= KNOWN_WRONG, measured.table()
    missed = [(r.file, r.container) for r in measured.rows if r.verdict == "missed"]
    assert not missed, measured.table()


UNDERSTOOD = frozenset({
    # waits
    "nc", "netcat", "pg_isready", "nslookup", "getent", "host", "curl", "wget", "redis-cli", "mysqladmin",
    "dockerize", "test", "[", "[[",
    # files, documents, repositories, secrets, migrations the recognisers read
    "mkdir", "chmod", "chown", "touch", "git", "vault", "migrate", "flyway", "alembic", "goose", "dbmate",
    "liquibase", "sqitch",
    # output, pauses and the shell's own state
    "echo", "printf", "sleep", "true", ":", "date", "ls", "id", "whoami", "pwd", "hostname", "uname", "env", "cat",
    "set", "cd", "exit", "export", "break", "grep",
})
"""The programs a script may run and still become typed steps only: each is one a recogniser reads whole."""


def _all_workloads() -> list[tuple[Path, str]]:
    out = []
    for folder in (CORPUS, WORLD):
        for manifest in sorted(folder.glob("*.yaml")):
            if not manifest.name.endswith(".spec.yaml"):
                out += [(manifest, w.ref) for w in workloads(manifest.read_text()) if w.init_containers]
    return out


def test_every_typed_container_of_both_corpora_runs_only_understood_programs() -> None:
    checked = 0
    for manifest, ref in _all_workloads():
        try:
            imported = import_workload(manifest.read_text(), ref, manifest.name)
        except NothingToImport:
            continue
        steps = {s["name"]: s for s in yaml.safe_load(imported.spec_text)["steps"]}
        for container in imported.containers:
            if container.outcome != "typed" or all("migrate" in steps[n] for n in container.steps):
                continue  # a migrate step runs the tool as the container did (its command is the step's)
            argv = container.argv
            ran = programs(argv[-1])[0] if argv and argv[0].rsplit("/", 1)[-1] in SHELLS else argv[:1]
            strange = {p.rsplit("/", 1)[-1] for p in ran} - UNDERSTOOD
            assert not strange, f"{manifest.name}: {container.name} is typed but ran {sorted(strange)}: {argv}"
            checked += 1
    assert checked >= 30, checked  # a positive control: the check saw the typed containers
