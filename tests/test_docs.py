"""The documentation: one source for every fact.

- The site builds with ``mkdocs build --strict``: a broken link, an unknown anchor, a link mkdocs cannot
  recognise or a page missing from the nav fails it (``mkdocs.yml``'s ``validation:``).
- The spec reference (``docs/reference/spec.md``) documents every key of every step kind that the spec's JSON
  Schema has, and no key the schema lacks: each kind's section has tables whose first column is the key in
  backticks (``dirs[].path`` names ``dirs`` and ``path``).
- The command-line reference is the commands' own ``--help``, put into the page when the site is built
  (``docs/hooks.py``): the built page holds each command's help text, and the page's source holds none.
- The README is a front page: at most 200 lines, exactly two set-up commands (each marked by a
  ``<!-- setup-command: ... -->`` line before its fenced block), the second being what ``.ci/run`` runs.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPEC_MD = ROOT / "docs" / "reference" / "spec.md"
SCHEMA = ROOT / "schemas" / "prefect-init.schema.json"
README = ROOT / "README.md"
BUILD_TIMEOUT_S = 300.0
HELP_TIMEOUT_S = 60.0


# ---------------------------------------------------------------------------------------------------------------
# (a) the site builds, strictly


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(ROOT / "mkdocs.yml"),
                             "-d", str(out)], capture_output=True, text=True, cwd=ROOT, env=env,
                            timeout=BUILD_TIMEOUT_S, check=False)
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stdout}\n{result.stderr}"
    return out


def test_the_site_builds_with_strict_validation(site: Path) -> None:
    assert (site / "index.html").is_file()
    assert (site / "reference" / "spec" / "index.html").is_file()


def test_the_validation_that_makes_a_broken_link_fail_is_configured() -> None:
    """Without these settings mkdocs only logs a broken anchor or an unrecognised link at INFO, and --strict
    passes a site with them."""
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    block = config.split("\nvalidation:\n", 1)[1].split("\n\n", 1)[0]
    for setting in ("omitted_files: warn", "not_found: warn", "unrecognized_links: warn", "anchors: warn",
                    "absolute_links: warn"):
        assert setting in block, f"mkdocs.yml's validation: lacks {setting}"


# ---------------------------------------------------------------------------------------------------------------
# (b) the spec reference against the JSON Schema


def _schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        name = ref.removeprefix("#/$defs/")
        return name, schema["$defs"][name]
    return None, node


def _keys_under(schema: dict[str, Any], node: Any, seen: frozenset[str] = frozenset()) -> set[str]:
    """Every property name reachable from ``node`` (through $ref, anyOf/oneOf/allOf, items and maps), except
    inside ``{file: PATH}`` (FromFile: documented once, under Value types)."""
    if not isinstance(node, dict):
        return set()
    name, node = _resolve(schema, node)
    if name == "FromFile" or (name is not None and name in seen):
        return set()
    seen = seen | {name} if name else seen
    keys: set[str] = set()
    for key, sub in (node.get("properties") or {}).items():
        keys.add(key)
        keys |= _keys_under(schema, sub, seen)
    for combinator in ("anyOf", "oneOf", "allOf", "prefixItems"):
        for sub in node.get(combinator) or []:
            keys |= _keys_under(schema, sub, seen)
    for single in ("items", "additionalProperties"):
        keys |= _keys_under(schema, node.get(single), seen)
    return keys


def _step_kinds(schema: dict[str, Any]) -> list[str]:
    refs = [item["$ref"] for item in schema["properties"]["steps"]["items"]["oneOf"]]
    return [ref.removeprefix("#/$defs/").removesuffix("_step") for ref in refs]


def _common_step_keys(schema: dict[str, Any]) -> set[str]:
    """The keys every step has (name, after, timeout, ...): in every kind's step, documented once."""
    sets = [set(schema["$defs"][f"{kind}_step"]["properties"]) for kind in _step_kinds(schema)]
    return set.intersection(*sets)


def _kind_keys(schema: dict[str, Any], kind: str) -> set[str]:
    step = schema["$defs"][f"{kind}_step"]
    common = _common_step_keys(schema)
    keys: set[str] = set()
    for key, sub in step["properties"].items():
        if key in common:
            continue
        keys.add(key)
        keys |= _keys_under(schema, sub)
    return keys


def _blank_code(text: str) -> str:
    return re.sub(r"^```.*?^```", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S | re.M)


def _section(text: str, heading: str) -> str:
    """From the line ``heading`` down to the next heading of its level or higher."""
    lines = _blank_code(text).splitlines()
    level = len(heading) - len(heading.lstrip("#"))
    starts = [i for i, line in enumerate(lines) if line.strip() == heading]
    assert len(starts) == 1, f"docs/reference/spec.md: {len(starts)} headings {heading!r} (one expected)"
    end = next((j for j in range(starts[0] + 1, len(lines))
                if (m := re.match(r"^(#+) ", lines[j])) and len(m.group(1)) <= level), len(lines))
    return "\n".join(lines[starts[0]:end])


def documented_keys(section: str) -> set[str]:
    """The keys of the tables whose first column is headed ``key``: each `name` in a row's first cell, split at
    ``.`` and ``[]`` (``dirs[].path`` is ``dirs`` and ``path``)."""
    keys: set[str] = set()
    in_key_table = False
    for line in section.splitlines():
        if not line.startswith("|"):
            in_key_table = False
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells and cells[0] == "key":
            in_key_table = True
            continue
        if not in_key_table or set(cells[0]) <= set("-: "):
            continue
        for name in re.findall(r"`([^`]+)`", cells[0]):
            keys |= {part for part in re.split(r"\.|\[\]", name) if part}
    return keys


def _spec_md() -> str:
    return SPEC_MD.read_text(encoding="utf-8")


def test_the_schema_has_the_kinds_the_reference_is_checked_on() -> None:
    """A positive control: the walk of the schema finds the keys it must (else an empty set would match an empty
    page)."""
    schema = _schema()
    assert {"wait", "vault", "migrate", "template", "templates", "command"} <= set(_step_kinds(schema))
    assert {"name", "after", "timeout", "retries", "optional"} <= _common_step_keys(schema)
    assert {"secrets", "path", "kubernetes", "role", "secret_id_file"} <= _kind_keys(schema, "vault")
    assert {"interval", "tcp", "http", "prefect_run", "deployment", "timeout"} <= _kind_keys(schema, "wait")
    assert "file" not in _kind_keys(schema, "command"), "{file: PATH} is documented once, not per kind"


@pytest.mark.parametrize("kind", _step_kinds(_schema()))
def test_the_spec_reference_documents_exactly_the_keys_of_each_kind(kind: str) -> None:
    schema = _schema()
    wanted = _kind_keys(schema, kind) | {kind}
    documented = documented_keys(_section(_spec_md(), f"### `{kind}`")) | {kind}
    missing, extra = sorted(wanted - documented), sorted(documented - wanted)
    assert not missing and not extra, (
        f"docs/reference/spec.md, section `{kind}`: keys the schema has but no table row names: {missing}; "
        f"keys in its tables the schema lacks: {extra} (first column of a table headed 'key', in backticks)")


def test_the_spec_reference_documents_the_top_level_and_the_common_step_keys() -> None:
    schema = _schema()
    top = set(schema["properties"]) | set(schema["$defs"]["Defaults"]["properties"])
    assert documented_keys(_section(_spec_md(), "## Top-level keys")) == top
    assert documented_keys(_section(_spec_md(), "## Keys of every step")) == _common_step_keys(schema)


def test_the_readme_describes_no_step_kind() -> None:
    """The step kinds are described in one place, the spec reference: no README heading names one."""
    kinds = _step_kinds(_schema())
    headings = [line for line in README.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    assert not [h for h in headings if any(f"`{kind}`" in h for kind in kinds)], headings


# ---------------------------------------------------------------------------------------------------------------
# (c) the command-line reference is the commands' own --help


def _help(*args: str) -> str:
    program = Path(sys.executable).parent / "prefect-init"
    env = {**os.environ, "COLUMNS": "80", "TERM": "dumb", "NO_COLOR": "1"}
    result = subprocess.run([str(program), *args, "--help"], capture_output=True, text=True, env=env,
                            timeout=HELP_TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _words(text: str) -> str:
    return " ".join(text.split())


def test_the_cli_reference_is_each_commands_help(site: Path) -> None:
    page = (site / "reference" / "cli" / "index.html").read_text(encoding="utf-8")
    text = _words(html.unescape(re.sub(r"<[^>]+>", "", page)))
    commands = re.findall(r"^  ([a-z][a-z-]*)\s", _help().split("\nCommands:\n", 1)[1], re.M)
    assert len(commands) >= 9, commands
    for args in [(), *((c,) for c in commands)]:
        wanted = _words(_help(*args))
        assert wanted in text, f"the built CLI reference lacks `prefect-init {' '.join(args)} --help` as it is now"


def test_the_cli_reference_page_holds_no_help_of_its_own() -> None:
    source = (ROOT / "docs" / "reference" / "cli.md").read_text(encoding="utf-8")
    assert "<!-- prefect-init-help -->" in source
    assert "Usage:" not in source and "--help  Show this message" not in source


# ---------------------------------------------------------------------------------------------------------------
# (d) the README as a front page


def setup_commands(readme: str) -> list[str]:
    """The fenced block after each ``<!-- setup-command: ... -->`` line, as one command line each."""
    blocks = re.findall(r"^<!-- setup-command:[^\n]*-->\n```sh\n(.*?)^```", readme, re.S | re.M)
    return [block.strip() for block in blocks]


def test_the_readme_is_a_front_page_with_two_set_up_commands() -> None:
    readme = README.read_text(encoding="utf-8")
    lines = readme.count("\n")
    assert lines <= 200, f"README.md has {lines} lines (a front page has at most 200)"
    markers = readme.count("<!-- setup-command")
    commands = setup_commands(readme)
    assert markers == 2 and len(commands) == 2, f"{markers} set-up markers, {len(commands)} marked commands"
    assert all("\n" not in c for c in commands), "each set-up command is one line, to paste as it is"
    assert "prefect-init run examples/" in commands[0]
    assert "mkdocs build --strict" in commands[1] and "pytest" in commands[1]


def test_ci_runs_the_readmes_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").strip().splitlines()
    assert ci[-1] == setup_commands(README.read_text(encoding="utf-8"))[1], \
        ".ci/run's last line must be the README's test command as written there"


def test_the_readmes_relative_links_exist() -> None:
    readme = README.read_text(encoding="utf-8")
    targets = re.findall(r"\]\((?!https?://|#)([^)#\s]+)", readme)
    assert len(targets) >= 10, targets
    missing = [t for t in targets if not (ROOT / t).exists()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


# ---------------------------------------------------------------------------------------------------------------
# the variables prefect-init reads are documented


def test_every_prefect_init_variable_the_code_reads_is_documented() -> None:
    code = "\n".join(p.read_text(encoding="utf-8") for folder in ("prefect_init", "tasks", "flows")
                     for p in (ROOT / folder).rglob("*.py"))
    names = set(re.findall(r"[\"'](PREFECT_INIT_[A-Z_]+)[\"']", code))
    assert {"PREFECT_INIT_API_LOG_LEVEL", "PREFECT_INIT_DEBUG", "PREFECT_INIT_TERMINATION_LOG"} <= names
    page = (ROOT / "docs" / "reference" / "environment.md").read_text(encoding="utf-8")
    missing = sorted(n for n in names | {"PREFECT_FLOWS_HEARTBEAT_FREQUENCY"} if f"`{n}`" not in page)
    assert not missing, f"docs/reference/environment.md does not name: {missing}"
