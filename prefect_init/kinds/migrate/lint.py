"""Lint before apply: each pending SQL file through squawk (the ``squawk`` binary of the ``squawk-cli`` wheel),
its findings sorted into those that would lock a live table for long or break the release still serving
(*blocking*: the ``migrate`` step refuses the file), style (*warnings*: logged), and the rules the step itself
satisfies (not reported: it sets ``lock_timeout``, and its deadline bounds every statement).

A finding is accepted on purpose with a comment in the file's first lines (after
``-- prefect-init: no-transaction`` when the file has it), a reason required::

    -- prefect-init: allow require-concurrent-index-creation (a 40-row lookup table, locked for milliseconds)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect_init.errors import StepFailed
from prefect_init.kinds.migrate.history import Migration

BLOCKING: dict[str, str] = {
    "require-concurrent-index-creation":
        "create the index with CREATE INDEX CONCURRENTLY, alone in a file whose first line is "
        "`-- prefect-init: no-transaction`",
    "require-concurrent-index-deletion":
        "drop the index with DROP INDEX CONCURRENTLY, alone in a file whose first line is "
        "`-- prefect-init: no-transaction`",
    "ban-concurrent-index-creation-in-transaction":
        "put the CONCURRENTLY statement alone in a file whose first line is `-- prefect-init: no-transaction`",
    "prefect-init-concurrently-in-transaction":
        "PostgreSQL refuses CONCURRENTLY inside a transaction: put the statement alone in a file whose first "
        "line is `-- prefect-init: no-transaction`",
    "changing-column-type":
        "expand then contract: add a new column, write both, backfill in batches, switch readers, drop the old "
        "one in a later release",
    "constraint-missing-not-valid":
        "add the constraint NOT VALID in one file, then ALTER TABLE ... VALIDATE CONSTRAINT in the next file",
    "adding-foreign-key-constraint":
        "add the foreign key NOT VALID in one file, then VALIDATE CONSTRAINT in the next file",
    "adding-not-nullable-field":
        "add CHECK (col IS NOT NULL) NOT VALID, VALIDATE CONSTRAINT in the next file, then SET NOT NULL "
        "(PostgreSQL 12+ skips the scan) in a third",
    "adding-required-field":
        "add the column nullable (or with a constant DEFAULT), backfill, then enforce NOT NULL as for "
        "adding-not-nullable-field",
    "adding-field-with-default":
        "add the column without the volatile default, set the default, backfill in batches",
    "adding-serial-primary-key-field":
        "CREATE UNIQUE INDEX CONCURRENTLY first (no-transaction file), then ADD PRIMARY KEY USING INDEX",
    "disallowed-unique-constraint":
        "CREATE UNIQUE INDEX CONCURRENTLY first (no-transaction file), then ADD CONSTRAINT ... UNIQUE USING INDEX",
    "renaming-column":
        "the release still serving reads the old name: add the new column, write both, switch, drop the old one "
        "in a later release (or a view)",
    "renaming-table":
        "the release still serving reads the old name: create the new table or a view under the new name, switch, "
        "drop the old one in a later release",
    "transaction-nesting":
        "leave BEGIN/COMMIT out: the step runs each file in its own transaction together with its history row "
        "(`-- prefect-init: no-transaction` for a file that must run outside one)",
    "ban-drop-database": "drop a database by hand, never from a migration",
    "prefect-init-allow-without-reason":
        "give the reason in parentheses: `-- prefect-init: allow RULE (why this is safe here)`",
}
"""The blocking rules (squawk's names, plus two of prefect-init's own) and how to write each safely."""

SATISFIED = frozenset({"require-lock-timeout", "require-statement-timeout", "require-timeout-settings"})
"""Rules the step satisfies itself: it sets ``lock_timeout`` on every attempt and cancels at its deadline."""

ALLOW = re.compile(r"^--\s*prefect-init:\s*allow\s+(?P<rule>[a-z0-9-]+)\s*(?:\((?P<reason>.*)\))?\s*$")
_CONCURRENTLY = re.compile(r"\b(CREATE\s+(UNIQUE\s+)?INDEX|DROP\s+INDEX|REINDEX\b[^;]*?)\s+CONCURRENTLY\b",
                           re.IGNORECASE)
_OUTPUT_LIMIT = 8 * 1024 * 1024
_CHUNK = 200
_NAME = r'(?:(?:"[^"]+"|\w+)\s*\.\s*)?(?:"[^"]+"|\w+)'
_CREATE_TABLE = re.compile(rf"\bCREATE\s+(?:UNLOGGED\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>{_NAME})",
                           re.IGNORECASE)
_TOUCHED = re.compile(rf"^\s*(?:ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?|CREATE\s+(?:UNIQUE\s+)?INDEX\s+"
                      rf"(?:IF\s+NOT\s+EXISTS\s+)?(?:(?!ON\b)\w+\s+|\"[^\"]+\"\s+)?ON\s+(?:ONLY\s+)?)(?P<name>{_NAME})",
                      re.IGNORECASE)
NEW_TABLE_RULES = frozenset({
    "require-concurrent-index-creation", "constraint-missing-not-valid", "adding-foreign-key-constraint",
    "adding-not-nullable-field", "adding-required-field", "adding-field-with-default", "changing-column-type",
    "adding-serial-primary-key-field", "disallowed-unique-constraint"})
"""Rules about locking a table full of rows: no matter on a table an earlier pending file creates in the same run."""


def _fold(name: str) -> str:
    return ".".join(p[1:-1] if p.startswith('"') else p.lower() for p in re.split(r"\s*\.\s*", name))


def _table_at(sql: str, line: int) -> str | None:
    """The table the statement starting at ``line`` (1-based) alters or indexes, if it says so plainly."""
    code = _strip_comments(sql).splitlines()[line - 1:]
    match = _TOUCHED.match("\n".join(code))
    return _fold(match["name"]) if match else None


@dataclass(frozen=True)
class LintFinding:
    path: Path
    line: int  # 1-based
    rule: str
    message: str
    blocking: bool
    allowed: str | None = None  # the reason of an allow line that accepts it

    def text(self, shown: str | None = None) -> str:
        return f"{shown or self.path}:{self.line}: {self.rule}: {self.message}"

    def how(self) -> str:
        return BLOCKING.get(self.rule, "")


class LintUnavailable(StepFailed):
    """squawk could not be run (not installed, crashed, answered nonsense)."""


def squawk_binary() -> str | None:
    """The ``squawk`` beside this Python (the ``squawk-cli`` wheel's script), else on PATH."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(folder) / "squawk"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("squawk")


def _header(sql: str) -> list[tuple[int, str]]:
    """The file's first lines: comment and blank lines before the first statement, numbered from 1."""
    lines = []
    for number, line in enumerate(sql.splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("--"):
            break
        lines.append((number, stripped))
    return lines


def allow_lines(migration: Migration) -> tuple[dict[str, str], list[LintFinding]]:
    """The allow lines of a file: {rule: reason}, and a blocking finding for each one without a reason."""
    allowed: dict[str, str] = {}
    problems = []
    for number, line in _header(migration.sql):
        match = ALLOW.match(line)
        if not match:
            continue
        reason = (match["reason"] or "").strip()
        if reason:
            allowed[match["rule"]] = reason
        else:
            problems.append(LintFinding(migration.path, number, "prefect-init-allow-without-reason",
                                        f"`allow {match['rule']}` needs a reason in parentheses", True))
    return allowed, problems


def _strip_comments(sql: str) -> str:
    """Comments and string literals blanked (newlines kept, so positions keep their line)."""
    def blank(match: re.Match[str]) -> str:
        return re.sub(r"[^\n]", " ", match.group(0))

    return re.sub(r"--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'", blank, sql, flags=re.DOTALL)


def _own_findings(migration: Migration) -> list[LintFinding]:
    if not migration.transactional:
        return []
    code = _strip_comments(migration.sql)
    return [LintFinding(migration.path, code[: m.start()].count("\n") + 1, "prefect-init-concurrently-in-transaction",
                        f"{' '.join(m.group(0).split()[:2])} ... CONCURRENTLY cannot run inside a transaction, and "
                        "this file runs in one", True)
            for m in _CONCURRENTLY.finditer(code)]


def _squawk(paths: list[Path], in_transaction: bool, timeout: float, pg_version: str | None) -> list[dict[str, Any]]:
    binary = squawk_binary()
    if binary is None:
        raise LintUnavailable("cannot lint the migrations: the squawk binary is not installed (it comes with the "
                              "squawk-cli package; or set lint: off)")
    argv = [binary, "--reporter", "json", "--no-error-on-unmatched-pattern",
            "--assume-in-transaction" if in_transaction else "--no-assume-in-transaction",
            *([f"--pg-version={pg_version}"] if pg_version and re.fullmatch(r"\d+\.\d+", pg_version) else []),
            *[str(p.resolve()) for p in paths]]
    # an empty working directory: no .squawk.toml found by chance changes which rules run
    with tempfile.TemporaryDirectory(prefix="prefect-init-lint-") as cwd:
        try:
            done = subprocess.run(argv, cwd=cwd, stdin=subprocess.DEVNULL, capture_output=True,
                                  timeout=max(1.0, timeout), env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        except subprocess.TimeoutExpired:
            raise LintUnavailable(f"cannot lint the migrations: squawk gave no answer within {timeout:.0f}s "
                                  "(lint: off to skip)") from None
        except OSError as exc:
            raise LintUnavailable(f"cannot lint the migrations: squawk did not start ({exc.strerror})") from None
    out = done.stdout[:_OUTPUT_LIMIT]
    try:
        found = json.loads(out.decode("utf-8", "replace") or "[]")
    except ValueError:
        first = (done.stderr.decode("utf-8", "replace").strip().splitlines() or ["no output"])[0][:200]
        raise LintUnavailable(f"cannot lint the migrations: squawk exited {done.returncode} without a report "
                              f"({first})") from None
    if not isinstance(found, list):
        raise LintUnavailable("cannot lint the migrations: squawk's report is not a list of findings")
    return [f for f in found if isinstance(f, dict)]


def lint(migrations: list[Migration], timeout: float = 30.0, pg_version: str | None = None) -> list[LintFinding]:
    """Every finding in ``migrations`` (blocking, warnings, and those accepted by an allow line), in file order;
    the rules the step satisfies left out. ``pg_version`` (``16.4``: the server's, when known) lets squawk
    leave out what that version does without a lock (a non-volatile DEFAULT on PostgreSQL 11+)."""
    if not migrations:
        return []
    by_path = {str(m.path.resolve()): m for m in migrations}
    raw: list[dict[str, Any]] = []
    for in_transaction in (True, False):
        group = [m.path for m in migrations if m.transactional == in_transaction]
        for start in range(0, len(group), _CHUNK):  # a bounded command line, however many files
            raw += _squawk(group[start:start + _CHUNK], in_transaction, timeout, pg_version)
    findings: dict[Path, list[LintFinding]] = {m.path: _own_findings(m) for m in migrations}
    for item in raw:
        migration = by_path.get(str(item.get("file")))
        rule = str(item.get("rule_name") or "")
        if migration is None or not rule or rule in SATISFIED:
            continue
        line = item.get("line")
        message = " ".join(str(item.get("message") or "").split())
        findings[migration.path].append(LintFinding(migration.path, int(line) + 1 if isinstance(line, int) else 1,
                                                    rule, message, rule in BLOCKING))
    result = []
    created: set[str] = set()  # tables the pending files before this one create: new and empty when it runs
    for migration in migrations:
        allowed, problems = allow_lines(migration)
        seen = set()
        for finding in sorted(findings[migration.path], key=lambda f: f.line):
            if (finding.line, finding.rule) in seen:  # squawk repeats some findings (a syntax error) verbatim
                continue
            seen.add((finding.line, finding.rule))
            if finding.blocking and finding.rule in NEW_TABLE_RULES and (
                    (table := _table_at(migration.sql, finding.line)) in created
                    or (table or "").rpartition(".")[2] in created):
                finding = LintFinding(finding.path, finding.line, finding.rule, f"{finding.message} (not blocking: "
                                      f"{table} is created by an earlier file of this run, so it is empty)", False)
            reason = allowed.get(finding.rule)
            result.append(finding if reason is None else
                          LintFinding(finding.path, finding.line, finding.rule, finding.message, False, reason))
        result += problems
        created |= {_fold(m["name"]) for m in _CREATE_TABLE.finditer(_strip_comments(migration.sql))}
        created |= {name.rpartition(".")[2] for name in created}
        for rule in sorted(set(allowed) - {f.rule for f in findings[migration.path]}):
            result.append(LintFinding(migration.path, 1, rule, f"allowed, but this file has no {rule} finding",
                                      False))
    return result


def refusal(findings: list[LintFinding]) -> str:
    """The step's error for the blocking findings: file, line, rule, and how to write it safely, one per line."""
    blocking = [f for f in findings if f.blocking]
    lines = [f"{f.path.name}:{f.line}: {f.rule}: {f.message} — instead: {f.how()}" for f in blocking]
    return (f"refused before applying anything: {len(blocking)} finding(s) that would lock a live table or break "
            "the release still serving (accept one on purpose with `-- prefect-init: allow RULE (REASON)` in the "
            "file's first lines, or lint: warn):\n" + "\n".join(lines))


__all__ = ["BLOCKING", "SATISFIED", "LintFinding", "LintUnavailable", "allow_lines", "lint", "refusal",
           "squawk_binary"]
