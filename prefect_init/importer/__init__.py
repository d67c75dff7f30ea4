"""``prefect-init import``: a workload's initContainers (a manifest, ``helm template`` output) as a spec.

What a script does that the spec can say becomes a typed step: waits (``nc -z``, ``pg_isready``, ``nslookup``,
``curl``/``wget`` polled in a loop, ``redis-cli ping``, ``[ -f PATH ]``) one ``wait`` step with every target;
``mkdir``/``chmod``/``chown`` a ``files`` step; ``wget -O``/``curl -o`` of a document a ``config`` step; ``git
clone`` a ``git`` step; ``vault kv get -field=F PATH > FILE`` a ``vault`` step (and a ``templates`` step writing
the raw value as the shell did); a known migration tool with a PostgreSQL DSN a ``migrate`` step. The rest is a
``command`` step that runs the original as written, in the init image; an ``&&`` chain (or a ``set -e``
sequence) of simple commands is split around what is recognised, anything subtler is kept whole.

Every step says in a comment what it came from; every literal credential (a credential's env value, a URL's
password, ``--password=``, ``PGPASSWORD=``, ``mysql -p``, ``redis-cli -a``, a token header) becomes a
``${VARIABLE}`` and its value is in no output. The spec's first lines name the workload and its initContainers in
a fixed form (:data:`PROVENANCE`), which ``render --into`` may read back.
"""

from __future__ import annotations

import copy
import json
import posixpath
import re
import shlex
import textwrap
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import yaml

from prefect_init.importer.image import APT_PACKAGES, STANDARD_DIRS, dockerfile_lines, image_programs, split_programs
from prefect_init.importer.manifest import Container, ImportProblem, Workload, choose, kube_expand, workloads
from prefect_init.importer.recognise import (
    CdPart,
    ConfigPart,
    FileOp,
    FilesPart,
    GitPart,
    GitRefPart,
    MigratePart,
    NoisePart,
    Part,
    State,
    VaultLoginPart,
    VaultReadPart,
    WaitPart,
    describe_unrecognised,
    recognise,
)
from prefect_init.importer.shell import BUILTINS, SHELLS, Item, Other, Simple, Word, parse
from prefect_init.importer.shell import programs as script_programs
from prefect_init.importer.variables import SENTINEL, Vars, Workspace, scrub, scrub_argv
from prefect_init.render.dump import Dumper
from prefect_init.render.provenance import PROVENANCE, parse_provenance

__all__ = ["MAX_MANIFEST_BYTES", "PROVENANCE", "SCHEMA_LINE", "ContainerResult", "ImportProblem", "Imported",
           "NothingToImport", "import_workload", "parse_provenance"]

Doc = dict[str, Any]

SCHEMA_LINE = ("# editor completion: prefect-init schema > prefect-init.schema.json beside this spec, then see "
               "prefect-init schema --help")
"""How to get the editor's schema. Not the ``yaml-language-server`` modeline itself: it would name a file that is
not there (import writes the spec, not the schema), and the editor would report the spec as broken."""
MAX_MANIFEST_BYTES = 16 * 1024 * 1024
"""The largest manifest import reads: 16 MiB (a big chart's ``helm template`` output, CRDs included, is a few
MiB). Past it import refuses in words before parsing: reading YAML costs time and memory in proportion (16 MiB:
6.5 s and 92 MB peak here, bench/bench_import.py), and a 50 MB stream held a laptop for half a minute."""
LONG_TIMEOUT = "30m"
"""The timeout of a command or migration step: an initContainer has no time limit; a build or a migration may
outlast the spec's default 5 minutes."""
ENTRYPOINTS = {"alpine/git": "git", "bitnami/git": "git", "migrate/migrate": "migrate", "flyway/flyway": "flyway",
               "liquibase/liquibase": "liquibase", "bitnami/kubectl": "kubectl", "rancher/kubectl": "kubectl",
               "curlimages/curl": "curl", "groundnuty/k8s-wait-for": "wait_for.sh", "hashicorp/vault": "vault",
               "alpine/curl": "curl"}
"""The program of well-known images' ENTRYPOINT, which a container's ``args`` (without ``command``) are given to
(curlimages/curl's only takes args that start with ``-`` as curl's)."""
SCRIPT_LINES = 12
"""At most this many lines of a script are quoted in a step's comment."""


@dataclass
class ContainerResult:
    name: str
    image: str
    outcome: str
    """``typed`` (typed steps only), ``split`` (typed steps and command steps cut from the script),
    ``command`` (the whole script as one command step) or ``kept`` (no step: only its own image can run it)."""
    steps: list[str] = field(default_factory=list)
    why: str | None = None
    """Why (part of) it stayed a command."""
    argv: list[str] = field(default_factory=list)
    """What the container ran (Kubernetes' ``$(VAR)`` written as ``${VAR}``, literal credentials as references)."""


@dataclass
class Imported:
    spec_text: str
    notes: list[str]
    """Lines for stderr: what became of each container, the variables to provide, the programs missing."""
    workload: tuple[str, str]
    init_containers: list[str]
    missing_programs: list[str]
    containers: list[ContainerResult]
    dockerfile: list[str]
    """A Dockerfile for an init image with :attr:`missing_programs` (empty when none is missing)."""


@dataclass
class Draft:
    kind: str
    body: dict[str, Any]
    origins: list[str]
    comments: list[str] = field(default_factory=list)
    name: str = ""
    programs: list[str] = field(default_factory=list)
    only_wait: bool = False
    """The one step of an initContainer that only waits (merged with the next such one)."""


# -- helpers ------------------------------------------------------------------------------------------------------

def _name(text: str, limit: int = 63) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower())
    name = re.sub(r"-{2,}", "-", name).strip("-")[:limit].strip("-")
    return name or "init"


def _escape(text: str) -> str:
    """A text the spec must pass on as written: ``${`` becomes ``$${`` (the spec's own variables are not
    expanded in it)."""
    return text.replace("${", "$${")


def _origin_comment(container: Container, argv: list[str], script: str | None) -> list[str]:
    head = f'from initContainer "{container.name}" ({container.image or "no image"})'
    if script is None:
        return [f"{head}: {shlex.join(argv)}"]
    lines = script.strip("\n").splitlines() or [""]
    if len(lines) == 1:
        return [f"{head}: {lines[0].strip()}"]
    quoted = [f"  {line.rstrip()}" for line in lines[:SCRIPT_LINES]]
    if len(lines) > SCRIPT_LINES:
        quoted.append(f"  ... ({len(lines) - SCRIPT_LINES} more lines)")
    return [f"{head}:", *quoted]


def _shell_form(argv: list[str]) -> tuple[list[str], str, bool] | None:
    """(the shell and its options, the script, errexit) of ``sh -c SCRIPT``, ``/bin/bash -ec SCRIPT``,
    ``sh -o pipefail -c SCRIPT``; None for anything else (a script given positional parameters, too)."""
    if not argv or argv[0].rsplit("/", 1)[-1] not in SHELLS:
        return None
    index, errexit, script_at = 1, False, None
    while index < len(argv) and argv[index].startswith(("-", "+")) and argv[index] not in ("-", "--"):
        flag = argv[index]
        if flag in ("-o", "+o") and index + 1 < len(argv):
            errexit = errexit or (flag == "-o" and argv[index + 1] == "errexit")
            index += 2
            continue
        if flag.startswith("-") and "e" in flag[1:]:
            errexit = True
        if "c" in flag[1:]:
            script_at = index + 1
            break
        index += 1
    if script_at is None or script_at != len(argv) - 1:
        return None
    return argv[:script_at], argv[script_at], errexit


def _argv_words(argv: list[str]) -> list[Word]:
    return [Word(text=arg, raw=arg) for arg in argv]


def _spec_argv(argv: list[str], vars_: Vars) -> list[str]:
    """An argv run without a shell, for the spec: its marked references as spec references, the rest as
    written."""
    out = []
    for arg in argv:
        parts = arg.split(SENTINEL)
        out.append("".join(vars_.ref(part) if i % 2 else _escape(part) for i, part in enumerate(parts)))
    return out


_INTERPRETERS = {"python", "python3", "node", "ruby", "perl", "php", "sh", "bash", "ash", "dash"}
_SCRIPT = re.compile(r"^[^-$].*(\.(py|js|mjs|rb|pl|php|sh)|/[^/]+)$")


def _image_files(argv: list[str]) -> list[str]:
    """The program, and the script an interpreter runs (``python manage.py``): files a step needs to find."""
    out = [argv[0]] if argv else []
    if len(argv) > 1 and argv[0].rsplit("/", 1)[-1] in _INTERPRETERS and _SCRIPT.match(argv[1]):
        out.append(argv[1] if "/" in argv[1] else f"./{argv[1]}")
    return out


def _plain(arg: str) -> str:
    """An argument as it ran, for a comment: a marked reference as ``$NAME``."""
    parts = arg.split(SENTINEL)
    return "".join(f"${part}" if i % 2 else part for i, part in enumerate(parts))


_ENV_CHANGING = {"export", "unset", "source", ".", "set", "cd", "umask", "alias", "trap", "exec", "pushd", "popd",
                 "shift", "read", "local", "declare", "typeset", "eval"}


def _changes_environment(node: Any) -> bool:
    """A command whose effect reaches the commands after it in the same shell (``export``, ``cd``, ``X=1``)."""
    if isinstance(node, Simple):
        return not node.words or node.words[0].text in _ENV_CHANGING
    return False


def _may_fail(items: list[Item], parts: list[Part | None], errexits: list[bool]) -> str | None:
    """Why a script whose typed parts may fail without failing it must stay whole, or None. A typed step fails
    where ``chmod X || true``, ``chmod X; true`` or ``set +e; chmod X`` went on, and a files step creates what
    the script's chmod or chown did not: no typed step is equivalent."""
    for index, (item, part) in enumerate(zip(items, parts, strict=True)):
        if item.separator == "||" or (index and items[index - 1].separator == "||"):
            return "'||' lets a command fail without failing the script ('|| true'): a typed step would fail there"
        if isinstance(item.node, Simple) and [w.text for w in item.node.words[:2]] == ["set", "+e"]:
            return "'set +e' lets its commands fail: a typed step would fail there"
        last = index == len(items) - 1
        if (last and index and not errexits[index] and isinstance(part, NoisePart) and isinstance(item.node, Simple)
                and [w.text for w in item.node.words] in (["true"], [":"])):
            return "'; true' at its end makes it succeed whatever failed before: a typed step would fail there"
    return None


_KERNEL_CAPABILITIES = frozenset({"NET_ADMIN", "NET_RAW", "SYS_ADMIN", "SYS_MODULE", "SYS_PTRACE", "SYS_RESOURCE",
                                  "SYS_TIME", "SYS_RAWIO", "SYS_BOOT", "BPF", "PERFMON", "MKNOD", "ALL"})
"""Capabilities that change the node or its network: a container that adds one is kept as it is."""


class NothingToImport(ImportProblem):
    """Every initContainer is kept: only its own image can run it (``containers`` says why, each)."""

    def __init__(self, message: str, containers: list[ContainerResult]) -> None:
        super().__init__(message)
        self.containers = containers


# -- one container ------------------------------------------------------------------------------------------------

class _Container:
    def __init__(self, container: Container, space: Workspace) -> None:
        self.c = container
        self.space = space
        self.vars = Vars(container, space)
        self.drafts: list[Draft] = []
        self.result = ContainerResult(container.name, container.image, "typed")

    # the command a container runs, as Kubernetes runs it
    def _argv(self) -> tuple[list[str], str | None]:
        """(argv, a caveat to say in the step's comment, or None)."""
        command, args = self.c.command, self.c.args
        if command:
            return [*command, *(args or [])], None
        if not args:
            return [], "it runs its image's own entrypoint (no command or args): not seen here"
        repository = self.c.image.split("@")[0].rsplit(":", 1)[0] if ":" in self.c.image.rsplit("/", 1)[-1] \
            else self.c.image.split("@")[0]
        entrypoint = ENTRYPOINTS.get(repository.removeprefix("docker.io/"))
        if entrypoint is not None and (entrypoint != "curl" or args[0].startswith("-")):
            return [entrypoint, *args], None
        if args[0].rsplit("/", 1)[-1] in SHELLS:
            return list(args), None
        if not args[0].startswith("-"):
            return list(args), ("args without command: taken as the command (if the image has an ENTRYPOINT, put "
                                "it first)")
        program = repository.rsplit("/", 1)[-1] or "ENTRYPOINT"
        return [program, *args], (f"args without command run the image's entrypoint, taken here to be "
                                  f"{program!r} (the image's name): check it")

    def own_image(self, argv: list[str], caveat: str | None) -> str | None:
        """Why only the container's own image can run it (it is kept as it is), or None. Said from what the
        manifest shows: privileges, no command, args only, a program or a file of that image."""
        security = self.c.security
        added = (security.get("capabilities") or {}).get("add") or [] if isinstance(security, dict) else []
        powers = sorted({str(c).upper().removeprefix("CAP_") for c in added} & _KERNEL_CAPABILITIES)
        if isinstance(security, dict) and security.get("privileged") is True:
            return ("kept: privileged (privileged: true): it changes the node (kernel settings, devices, network), "
                    "which the init image does not do")
        if powers:
            return f"kept: it needs {', '.join(powers)} (network or kernel changes), which the init image does not do"
        if not argv:
            return (f"kept: runs the entrypoint of its own image ({self.c.image or 'no image'}): nothing to run "
                    "elsewhere")
        if not self.c.command and caveat is not None:
            return (f"kept: runs its own image's entrypoint ({self.c.image or 'no image'}) with args only: the init "
                    "image has not that entrypoint")
        have = image_programs()
        if argv[0].rsplit("/", 1)[-1] == "cp":
            copied = next((a for a in argv[1:] if a.startswith(STANDARD_DIRS)
                           and a.rsplit("/", 1)[-1] not in have and a.rsplit("/", 1)[-1] not in APT_PACKAGES), None)
            if copied is not None:
                return f"kept: copies {copied} out of its own image ({self.c.image}), which the init image lacks"
        programs = [p for d in self.drafts if d.kind == "command" for p in d.programs]
        mounts = [m["mountPath"].rstrip("/") or "/" for m in self.c.mounts]
        cwd = self.c.working_dir or ""
        for program in programs:
            name = program.rsplit("/", 1)[-1] if program.startswith(STANDARD_DIRS) else program
            if "$" in name:
                continue
            if "/" in name:  # a file: of a volume the container mounts, or of its own image
                where = posixpath.normpath(posixpath.join(cwd or "/", name))
                if not any(_under(where, top) for top in mounts):
                    return f"kept: runs {name} from its own image ({self.c.image})"
                continue
            if name in BUILTINS or name in SHELLS:
                continue
            if name not in have and APT_PACKAGES.get(name) is None:  # no Debian package has it
                return f"kept: runs {name} from its own image ({self.c.image})"
        return None

    def convert(self, replace_all: bool = False) -> None:
        argv, caveat = self._argv()
        snapshot = (copy.deepcopy(self.space.needed), list(self.space.defaults))
        self._convert(argv, caveat)
        why = None if replace_all or self.result.outcome == "typed" else self.own_image(argv, caveat)
        if why is not None:
            self.space.needed, self.space.defaults = snapshot
            self.drafts = []
            self.result.outcome, self.result.why = "kept", why

    def _convert(self, argv: list[str], caveat: str | None) -> None:
        if not argv:
            self._placeholder(caveat or "")
            return
        shell = _shell_form(argv)
        snapshot = (copy.deepcopy(self.space.needed), list(self.space.defaults))
        if shell is None:
            self._argv_form(argv, caveat)
        else:
            self._shell(shell, caveat)
        if self.result.outcome == "command" and not any(d.kind != "command" for d in self.drafts):
            self.space.needed, self.space.defaults = snapshot
            for draft in self.drafts:  # what the command steps read, recorded again without the typed attempts
                if "env" in draft.body:
                    draft.body["env"] = self.vars.command_env(draft.body["command"][-1])

    def _placeholder(self, why: str) -> None:
        script = (f"echo 'initContainer {self.c.name} ran the entrypoint of {self.c.image}: write its command "
                  "here' >&2; exit 1")
        draft = Draft("command", {"command": ["sh", "-c", script]}, [self.c.name],
                      comments=[f'from initContainer "{self.c.name}" ({self.c.image}): {why}',
                                "a placeholder that fails: put the image's command here, and build an init image "
                                "with its program"])
        self.drafts.append(draft)
        self.result.outcome, self.result.why = "command", why

    def _argv_form(self, argv: list[str], caveat: str | None) -> None:
        marked = scrub_argv(argv, self.c.name, self.vars)
        self.result.argv = [_plain(a) for a in marked]
        simple = Simple(_argv_words(marked), [], [], 0, 0)
        state = State(self.vars, self.c, self.c.working_dir)
        part = recognise(Item(simple, None), state) if caveat is None else None
        origin = _origin_comment(self.c, self.result.argv, None)
        if part is not None and not isinstance(part, NoisePart | CdPart | GitRefPart | VaultLoginPart):
            self._typed([part], origin)
            return
        why = caveat or describe_unrecognised(simple, "")
        body: dict[str, Any] = {"command": _spec_argv(marked, self.vars)}
        self._command(body, origin, why, _image_files([_plain(a) for a in marked]))
        self.result.outcome, self.result.why = "command", why

    def _command(self, body: dict[str, Any], origin: list[str], why: str, programs: list[str],
                 cwd: str | None = None, script: str | None = None) -> None:
        cwd = cwd if cwd is not None else self.c.working_dir
        if cwd:
            body["cwd"] = cwd
        env = self.vars.command_env(script)
        if env:
            body["env"] = env
        body["timeout"] = LONG_TIMEOUT
        comments = [*origin, f"not understood: {why}; it runs as written, in the init image (it ran in "
                             f"{self.c.image or 'an image not named'})"]
        self.drafts.append(Draft("command", body, [self.c.name], comments=comments, programs=programs))

    def _shell(self, shell: tuple[list[str], str, bool], caveat: str | None) -> None:
        prefix, original, errexit = shell
        script = scrub(kube_expand(original, self.vars.defined), self.c.name, self.vars)
        self.result.argv = [*prefix, script]
        parsed = parse(script)
        as_written = scrub(original, self.c.name, self.vars)  # the comment quotes the script as written
        origin = _origin_comment(self.c, [*prefix, as_written], as_written)
        whole_why: str | None = caveat or parsed.error
        parts: list[Part | None] = []
        cwds: list[str | None] = []
        errexits: list[bool] = []
        state = State(self.vars, self.c, self.c.working_dir, errexit=errexit)
        if whole_why is None:
            for item in parsed.items:
                cwds.append(state.cwd)
                errexits.append(state.errexit)
                snapshot = (copy.deepcopy(self.space.needed), list(self.space.defaults))
                part = recognise(item, state)
                if part is None or isinstance(part, NoisePart):  # what it read is no step's
                    self.space.needed, self.space.defaults = snapshot[0], snapshot[1]
                if isinstance(part, NoisePart) and part.errexit:
                    state.errexit = True
                parts.append(part)
            self._vault_logins(parts, parsed.items, script)
        kinds = ["C" if p is None else "N" if isinstance(p, NoisePart | CdPart) else "T" for p in parts]
        if whole_why is None and "T" in kinds:
            whole_why = _may_fail(parsed.items, parts, errexits)
        if whole_why is None and ("C" in kinds or "T" not in kinds):
            whole_why = self._split_refused(parsed.items, parts, kinds, errexits, script)
        if whole_why is not None:
            self._whole(prefix, script, origin, whole_why)
            return
        if "C" not in kinds:
            self._typed([p for p in parts if p is not None], origin)
            return
        self._split(prefix, script, parsed.items, parts, kinds, cwds, errexits, origin)

    def _vault_logins(self, parts: list[Part | None], items: list[Item], script: str) -> None:
        """A Vault login is a step's auth only with reads after it; a command using vault keeps them all."""
        reads = any(isinstance(p, VaultReadPart) for p in parts)
        vault_in_commands = any(p is None and re.search(r"\bvault\b", script[i.node.start:i.node.end])
                                for p, i in zip(parts, items, strict=True))
        for index, part in enumerate(parts):
            if isinstance(part, VaultLoginPart | VaultReadPart) and (not reads or vault_in_commands):
                parts[index] = None

    def _split_refused(self, items: list[Item], parts: list[Part | None], kinds: list[str],
                       errexits: list[bool], script: str) -> str | None:
        """Why the script must stay whole, or None when the parts that are not recognised can be cut out."""
        first_c = next((i for i, k in enumerate(kinds) if k == "C"), None)
        if "T" not in kinds:
            if first_c is None:
                return "it only prints or pauses"
            return describe_unrecognised(items[first_c].node, script)
        assert first_c is not None
        what = describe_unrecognised(items[first_c].node, script)
        for item, kind in zip(items, kinds, strict=True):
            if kind == "C" and isinstance(item.node, Other):
                return f"{item.node.why} among its commands (kept whole: such a script is not split)"
            if item.separator in ("||", "&"):
                return f"commands joined by {item.separator} (kept whole)"
            if kind == "C" and _changes_environment(item.node):
                return "a command that changes the shell's state for the ones after it (kept whole)"
        solid = [i for i, k in enumerate(kinds) if k != "N"]
        for a, b in pairwise(solid):
            if {kinds[a], kinds[b]} != {"T", "C"}:
                continue
            joined = [items[i].separator for i in range(a + 1, b + 1)]
            wait_first = kinds[a] == "T" and isinstance(parts[a], WaitPart)
            if not (all(s == "&&" for s in joined) or errexits[b] or wait_first):
                return (f"{what}, and its commands go on after a failure (';' or a new line without set -e): "
                        "kept whole")
        return None

    def _whole(self, prefix: list[str], script: str, origin: list[str], why: str) -> None:
        body = {"command": [*prefix, _escape(script)]}
        programs, parsed = script_programs(script)
        self._command(body, origin, why, [prefix[0], *programs], script=script)
        if not parsed:
            self.drafts[-1].comments.append("(its programs were read roughly: the shell parser refused it)")
        self.result.outcome, self.result.why = "command", why

    def _split(self, prefix: list[str], script: str, items: list[Item], parts: list[Part | None],
               kinds: list[str], cwds: list[str | None], errexits: list[bool], origin: list[str]) -> None:
        """Runs of recognised items become typed steps, runs of the others (with what prints or pauses between
        them) command steps cut from the script as written; each says which part of the script it is."""
        self.result.outcome = "split"
        first_c = next(i for i, k in enumerate(kinds) if k == "C")
        self.result.why = describe_unrecognised(items[first_c].node, script)
        runs: list[tuple[str, list[int]]] = []
        for index, kind in enumerate(kinds):
            if kind == "N":
                continue
            if runs and runs[-1][0] == kind:
                runs[-1][1].append(index)
            else:
                runs.append((kind, [index]))
        head = f'from initContainer "{self.c.name}" ({self.c.image or "no image"})'
        del origin  # each part quotes its own lines
        for number, (kind, indices) in enumerate(runs, 1):
            first, last = indices[0], indices[-1]
            text = script[items[first].node.start:items[last].node.end]
            lines = text.splitlines() or [""]
            comment = [f"{head}, part {number} of {len(runs)}:",
                       *(f"  {line.rstrip()}" for line in lines[:SCRIPT_LINES])]
            if len(lines) > SCRIPT_LINES:
                comment.append(f"  ... ({len(lines) - SCRIPT_LINES} more lines)")
            if kind == "T":
                self._typed([p for i in range(first, last + 1) if (p := parts[i]) is not None], comment)
                continue
            shell = list(prefix)
            if errexits[first] and not any(f.startswith("-") and "e" in f[1:] for f in shell[1:]):
                shell = [shell[0], "-e", *shell[1:]]
            programs, _ = script_programs(text)
            self._command({"command": [*shell, _escape(text)]}, comment, self.result.why or "",
                          [shell[0], *programs], cwd=cwds[first], script=text)

    def _typed(self, parts: list[Part], origin: list[str]) -> None:
        """Typed parts in order: adjacent ones of a kind in one step (waits, files, one Vault login and reads)."""
        for part in parts:
            last = self.drafts[-1] if self.drafts else None
            comments = list(part.comments)
            if isinstance(part, NoisePart | CdPart):
                continue
            if isinstance(part, WaitPart):
                if last is not None and last.kind == "wait" and last.origins == [self.c.name]:
                    last.body["wait"] += part.targets
                    last.comments += comments
                    continue
                wait_body: dict[str, Any] = {"wait": part.targets}
                if part.timeout:
                    wait_body["timeout"] = part.timeout
                self.drafts.append(Draft("wait", wait_body, [self.c.name], [*origin, *comments]))
            elif isinstance(part, FilesPart):
                if last is not None and last.kind == "files" and last.origins == [self.c.name]:
                    last.body["ops"] += part.ops
                    continue
                self.drafts.append(Draft("files", {"ops": list(part.ops)}, [self.c.name], [*origin, *comments]))
            elif isinstance(part, ConfigPart):
                self.drafts.append(Draft("config", {"config": part.body}, [self.c.name], [*origin, *comments]))
            elif isinstance(part, GitPart):
                self.drafts.append(Draft("git", {"git": part.body}, [self.c.name], [*origin, *comments]))
            elif isinstance(part, GitRefPart):
                git = next(d for d in reversed(self.drafts) if d.kind == "git" and d.body["git"]["dest"] == part.dest)
                git.body["git"]["ref"] = part.ref
                git.comments.append(f"ref: the git checkout {part.ref} after the clone")
            elif isinstance(part, VaultLoginPart | VaultReadPart):
                if last is None or last.kind != "vault" or last.origins != [self.c.name]:
                    last = Draft("vault", {"auth": None, "reads": [], "settings": {}}, [self.c.name],
                                 [*origin])
                    self.drafts.append(last)
                if isinstance(part, VaultLoginPart):
                    last.body["auth"] = part.auth
                else:
                    last.body["reads"].append(part)
                    last.body["settings"].update(part.settings)
                last.comments += comments
            elif isinstance(part, MigratePart):
                body = dict(part.body)
                self.drafts.append(Draft("migrate", {"migrate": body, "timeout": LONG_TIMEOUT}, [self.c.name],
                                         [*origin, *comments], programs=_image_files(body["command"])))


# -- drafts as steps ----------------------------------------------------------------------------------------------

_FILE_SUFFIX = re.compile(r"\.[A-Za-z0-9]{1,5}$")


def _under(path: str, top: str) -> bool:
    """``path`` is ``top`` or in it."""
    return path == top or path.startswith(top.rstrip("/") + "/")


def _meets(entry: dict[str, Any], op: FileOp) -> bool:
    """Whether ``entry`` acts on what ``op`` acts on (its path; under it, ``-R``; above it, an entry's ``-R``): an
    op after it cannot join an entry before it. A path with a variable may be anywhere: it meets every ``-R``."""
    path, unknown = entry["path"], "${" in entry["path"] or "${" in op.path
    return path == op.path or (bool(entry.get("recursive")) and (unknown or _under(op.path, path))) or (
        op.recursive and (unknown or _under(path, op.path)))


_ATTRIBUTES = ("mode", "owner", "content")


def _files_body(draft: Draft, mounts: set[str]) -> dict[str, Any]:
    # the entries in the script's order, so that applying them in turn gives what the script left: an op joins the
    # last entry of its path when that is of its kind (with -R or without) and nothing after it acts on the same
    # paths, else it is a new entry at the end (`chmod 755 /d; chmod -R 700 /d; chmod 750 /d`: /d ends 0750, all
    # it holds 0700)
    entries: list[dict[str, Any]] = []
    types: dict[str, bool | None] = {}
    for op in draft.body["ops"]:
        last = next((i for i in range(len(entries) - 1, -1, -1) if entries[i]["path"] == op.path), None)
        entry: dict[str, Any] | None = None
        if last is not None and not any(_meets(e, op) for e in entries[last + 1:]) and (
                bool(entries[last].get("recursive")) == op.recursive
                or (op.recursive and entries[last] == {"path": op.path})):  # `mkdir -p /d; chown -R 1 /d`: one entry
            entry = entries[last]
        if entry is None:
            entry = {"path": op.path}
            entries.append(entry)
        if op.is_dir is not None:
            types[op.path] = op.is_dir
        for key in _ATTRIBUTES:
            if getattr(op, key) is not None:
                entry[key] = getattr(op, key)
        if op.recursive:
            entry.pop("recursive", None)
            entry["recursive"] = True
            types[op.path] = True  # chmod -R / chown -R of a file is its own mode or owner: a directory here
    guessed: list[str] = []
    for path in dict.fromkeys(e["path"] for e in entries):
        if types.get(path) is None:
            types[path] = path in mounts or not _FILE_SUFFIX.search(path.rsplit("/", 1)[-1])
            if path not in mounts:
                guessed.append(f"{path} ({'a directory' if types[path] else 'a file'})")
    for index, entry in enumerate(entries):  # the step sets its files after its dirs: a later -R above a file
        if not types[entry["path"]]:         # sets the file's mode or owner there
            for later in entries[index + 1:]:
                if later.get("recursive") and _under(entry["path"], later["path"]):
                    entry.update({k: later[k] for k in ("mode", "owner") if k in later})
    # an entry whose every setting a later one of its path sets again (on all it holds too, for a -R one) does
    # nothing: left out
    entries = [e for i, e in enumerate(entries)
               if not any(later["path"] == e["path"] and (later.get("recursive") or not e.get("recursive"))
                          and {k for k in _ATTRIBUTES if k in e} <= set(later) for later in entries[i + 1:])]
    dirs = [e for e in entries if types[e["path"]]]
    files = [e for e in entries if not types[e["path"]]]
    if guessed:
        draft.comments.append(f"taken to be: {', '.join(guessed)}")
    out: dict[str, Any] = {}
    if dirs:
        out["dirs"] = dirs
    if files:
        out["files"] = files
    return {"files": out}


def _vault_steps(draft: Draft, vars_by_container: dict[str, Vars]) -> list[tuple[str, dict[str, Any]]]:
    vars_ = vars_by_container[draft.origins[0]]
    reads: list[VaultReadPart] = draft.body["reads"]
    settings = dict(draft.body["settings"])
    if "address" not in settings:
        settings["address"] = vars_.ref("VAULT_ADDR")
        if settings["address"] == "${VAULT_ADDR:-}":
            settings["address"] = "${VAULT_ADDR}"
            vars_.space.need("VAULT_ADDR", "Vault's address (the vault CLI read it from the environment)")
    for key, name in (("namespace", "VAULT_NAMESPACE"), ("ca_cert", "VAULT_CACERT")):
        if key not in settings and name in vars_.vars:
            settings[key] = vars_.ref(name)
    vault: dict[str, Any] = {"address": settings.pop("address"), **settings}
    if draft.body["auth"] is not None:
        vault["auth"] = draft.body["auth"]
        if not all(read.kv for read in reads):
            vault["revoke_token"] = False
            draft.comments.append("revoke_token: false: a dynamic secret's lease ends with the token that read it "
                                  "(the CLI kept its token too)")
    else:
        vars_.space.need("VAULT_TOKEN", "the Vault token the vault CLI used (no login in the script): put it in "
                         "a Secret", credential=True)
        draft.comments.append("no login in the script: the step reads its token from $VAULT_TOKEN, as the CLI did")
    by_path: dict[str, dict[str, Any]] = {}
    templates = []
    for read in reads:
        directory = posixpath.dirname(read.dest)
        hidden = posixpath.join(directory, f".{_name(read.path.replace('/', '-'), 40)}.vault.json")
        secret = by_path.setdefault(read.path, {"path": read.path, "keys": [], "dest": hidden, "format": "json"})
        if read.key not in secret["keys"]:
            secret["keys"].append(read.key)
        templates.append({"inline": "{{ secret[" + json.dumps(read.key) + "] }}", "dest": read.dest,
                          "mode": "0644", "files": {"secret": secret["dest"]}})
    vault["secrets"] = list(by_path.values())
    draft.comments.append("vault -field wrote the raw value: the vault step writes the keys as JSON (0400, beside "
                          "it), the templates step the raw value where the shell did (0644, as its umask made it; "
                          "0400 with owner: is safer)")
    return [("vault", {"vault": vault}), ("files", {"templates": templates})]


def _step_bodies(draft: Draft, mounts: set[str], vars_by_container: dict[str, Vars]
                 ) -> list[tuple[str, dict[str, Any]]]:
    if draft.kind == "files":
        return [("files", _files_body(draft, mounts))]
    if draft.kind == "vault":
        return _vault_steps(draft, vars_by_container)
    return [(draft.kind, draft.body)]


class _Dumper(Dumper):
    """render's dumper (multi-line scripts as literal blocks, no anchors), with lists indented under their key, as
    the examples are written."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> Any:
        return super().increase_indent(flow, False)


def _dump_step(step: dict[str, Any]) -> str:
    text = yaml.dump([step], Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100,
                     allow_unicode=True)
    return "".join(f"  {line}" if line.strip() else line for line in text.splitlines(keepends=True))


def _comment(lines: list[str], indent: str = "") -> str:
    out = []
    for line in lines:
        for part in line.splitlines() or [""]:
            out.append(f"{indent}# {part}".rstrip())
    return "\n".join(out) + "\n" if out else ""


# -- the workload -------------------------------------------------------------------------------------------------

def _merge_waits(per_container: list[list[Draft]]) -> list[Draft]:
    """Consecutive containers that each only wait become one wait step with every target."""
    out: list[Draft] = []
    for drafts in per_container:
        only_wait = len(drafts) == 1 and drafts[0].kind == "wait"
        last = out[-1] if out else None
        if only_wait and last is not None and last.only_wait:
            last.body["wait"] += drafts[0].body["wait"]
            last.origins += drafts[0].origins
            last.comments += drafts[0].comments
            continue
        for draft in drafts:
            draft.only_wait = only_wait
            out.append(draft)
    return out


def _names(drafts: list[Draft]) -> None:
    taken: set[str] = set()
    per_origin: dict[str, int] = {}
    for draft in drafts:
        per_origin[draft.origins[0]] = per_origin.get(draft.origins[0], 0) + 1
    for draft in drafts:
        if len(draft.origins) > 1:
            base = "wait-for-services"
        elif per_origin[draft.origins[0]] == 1:
            base = _name(draft.origins[0])
        else:
            base = f"{_name(draft.origins[0], 54)}-{draft.kind}"
        name, number = base, 2
        while name in taken:
            name, number = f"{base[:60]}-{number}", number + 1
        taken.add(name)
        draft.name = name


def _mounts(workload: Workload) -> tuple[set[str], list[str]]:
    paths: set[str] = set()
    words: list[str] = []
    volumes = {v.get("name"): v for v in workload.volumes}
    for container in workload.init_containers:
        for mount in container.mounts:
            path = mount["mountPath"].rstrip("/") or "/"
            paths.add(path)
            volume = volumes.get(mount.get("name")) or {}
            kind = next((k for k in volume if k != "name"), "volume")
            ro = ", read-only" if mount.get("readOnly") else ""
            word = f"{mount.get('name')} at {path} ({kind}{ro})"
            if word not in words:
                words.append(word)
    return paths, words


def _needs_lines(space: Workspace, workload: Workload, env_from: list[str]) -> list[str]:
    lines: list[str] = []
    needed = [n for n in space.needed.values() if n.name not in ("POD_NAMESPACE",)]
    credentials = [n.name for n in needed if n.credential and "literal credential" in n.why]
    if needed or env_from:
        lines.append("Variables this spec reads that the prefect-init container must be given (render --into copies "
                     "the initContainers' env and envFrom onto it):")
        lines += [f"  {n.name}: {n.why}" for n in needed]
        if env_from:
            lines.append(f"  envFrom: {', '.join(env_from)}")
    if "POD_NAMESPACE" in space.needed:
        lines.append(f"  POD_NAMESPACE: {space.needed['POD_NAMESPACE'].why}")
    if credentials:
        secret = f"{_name(workload.name, 50)}-init-env"
        literal = " ".join(f"--from-literal={n}=..." for n in credentials)
        lines.append(f"Literal credentials of the manifest are variables now: kubectl create secret generic {secret} "
                     f"{literal} (then render --env-from-secret {secret})")
    unread = [name for name in space.credentials.values() if name in space.names and name not in space.needed]
    if unread:
        lines.append(f"Literal credentials in the initContainers' env that this spec does not read: "
                     f"{', '.join(unread)}: put them in a Secret all the same (render --into would copy them)")
    if space.defaults:
        lines.append(f"Defaults from the manifest's literal env values: {', '.join(space.defaults)}")
    return lines


def _mounted_scripts(container: Container, workload: Workload) -> dict[str, tuple[str, str]]:
    """The files a container mounts from a ConfigMap of the same stream: path -> (ConfigMap, text)."""
    volumes = {v.get("name"): v for v in workload.volumes}
    out: dict[str, tuple[str, str]] = {}
    for mount in container.mounts:
        source = (volumes.get(mount.get("name")) or {}).get("configMap") or {}
        data = workload.config_maps.get(str(source.get("name"))) if isinstance(source, dict) else None
        if not data:
            continue
        paths = {str(item.get("key")): str(item.get("path")) for item in source.get("items") or []
                 if isinstance(item, dict)} or {key: key for key in data}
        top = mount["mountPath"].rstrip("/")
        for key, relative in paths.items():
            if key not in data:
                continue
            if mount.get("subPath") is not None:
                if mount["subPath"] == relative:
                    out[top] = (str(source.get("name")), data[key])
            else:
                out[f"{top}/{relative}"] = (str(source.get("name")), data[key])
    return out


def _read_mounted_scripts(converter: _Container, workload: Workload) -> None:
    """A script the container runs from a ConfigMap of the same stream is read: the programs it runs are the
    command step's (the init image must have them: curl of a dashboards script), and its comment says so."""
    ran = " ".join(converter.result.argv)
    for path, (config_map, text) in _mounted_scripts(converter.c, workload).items():
        if not re.search(rf"(?<![\w/.-]){re.escape(path)}(?![\w/.-])", ran):
            continue
        found = [p for p in script_programs(text)[0] if p not in BUILTINS]
        for draft in converter.drafts:
            if draft.kind == "command" and path in " ".join(map(str, draft.body.get("command", []))):
                draft.programs += [p for p in found if p not in draft.programs]
                draft.comments.append(f"runs {path} from ConfigMap {config_map} (in this stream), which runs: "
                                      f"{', '.join(found) or 'no program'}")


def _first_definers(workload: Workload) -> dict[str, str]:
    """The variables two initContainers define differently -> the first container that defines it."""
    conflicts = set(_conflicts(workload))
    first: dict[str, str] = {}
    for container in workload.init_containers:
        for entry in container.env:
            if entry["name"] in conflicts:
                first.setdefault(entry["name"], container.name)
    return first


def _conflicts(workload: Workload) -> list[str]:
    """The variables two initContainers define differently."""
    first: dict[str, Doc] = {}
    conflicts: list[str] = []
    for container in workload.init_containers:
        for entry in container.env:
            name = entry["name"]
            if name not in first:
                first[name] = entry
            elif entry != first[name] and name not in conflicts:
                conflicts.append(name)
    return conflicts


def import_workload(text: str, workload: str | None = None, source: str = "the manifest",
                    replace_all: bool = False) -> Imported:
    """The spec for one workload's initContainers (see the module's docstring). Raises :class:`ImportProblem`
    (one line) for a bad manifest or choice, :class:`NothingToImport` when every initContainer is kept.

    A container only its own image can run (privileged or with kernel capabilities, no command, args only, a
    program or a file of that image) is kept as it is: no step, and the provenance line names only the
    containers the spec replaces, so ``render --into`` leaves the others in their place. ``replace_all`` turns
    each into a step all the same (the old behaviour)."""
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_MANIFEST_BYTES:
        raise ImportProblem(f"{source}: {size / 1048576:.1f} MiB, over the {MAX_MANIFEST_BYTES // 1048576} MiB import "
                            "reads: give it the one workload (kubectl get deploy/NAME -o yaml, or helm template "
                            "--show-only templates/FILE.yaml)")
    chosen = choose(workloads(text, source), workload, source)
    promoted: set[str] = set()
    while True:  # again while a literal of the env turns out to be a credential (Workspace.promoted)
        space = Workspace(chosen.ref, names={e["name"] for c in chosen.init_containers for e in c.env},
                          promoted=set(promoted), own=_first_definers(chosen))
        converters = []
        for container in chosen.init_containers:
            converter = _Container(container, space)
            converter.convert(replace_all)
            converters.append(converter)
        if space.promoted <= promoted:
            break
        promoted = space.promoted
    for converter in converters:
        _read_mounted_scripts(converter, chosen)
    drafts = _merge_waits([c.drafts for c in converters])
    _names(drafts)
    vars_by_container = {c.c.name: c.vars for c in converters}
    for converter in converters:
        converter.result.steps = [d.name for d in drafts if converter.c.name in d.origins]
    mount_paths, mount_words = _mounts(chosen)

    steps: list[tuple[Draft, str, dict[str, Any]]] = []
    for draft in drafts:
        bodies = _step_bodies(draft, mount_paths, vars_by_container)
        for index, (_, body) in enumerate(bodies):
            name = draft.name if index == 0 else f"{draft.name[:57]}-write"
            steps.append((draft, name, {"name": name, **{k: v for k, v in body.items() if k != "ops"}}))

    programs: list[str] = []
    for draft in drafts:
        for program in draft.programs:
            if program not in BUILTINS and program not in programs:
                programs.append(program)
    missing, path_programs = split_programs(programs)
    env_from_words = []
    for converter in converters:
        for words in converter.vars.env_from:
            if words not in env_from_words:
                env_from_words.append(words)

    kept = [c.result for c in converters if c.result.outcome == "kept"]
    replaced = [c.c.name for c in converters if c.result.outcome != "kept"]
    if not replaced:
        raise NothingToImport(f"{chosen.ref}: nothing to import: every initContainer is kept as it is ("
                              + "; ".join(f"{r.name}: {r.why}" for r in kept)
                              + "); --replace-all makes steps of them all the same",
                              [c.result for c in converters])
    header = [PROVENANCE.format(kind=chosen.kind, name=chosen.name, containers=", ".join(replaced))]
    kept_lines: list[str] = []
    if kept:
        kept_lines.append("Kept as they are (render --into leaves them in their place; the prefect-init container "
                          f"takes the place of {replaced[0]}): " + "; ".join(
                              f"{r.name} ({r.why.removeprefix('kept: ') if r.why else ''})" for r in kept))
        order = [c.result.outcome != "kept" for c in converters]
        first = order.index(True)
        moved = [c.c.name for c in converters[first:] if c.result.outcome != "kept"
                 and any(not o for o in order[first:converters.index(c)])]
        if moved:
            between = [c.c.name for c in converters[first:] if c.result.outcome == "kept"
                       and any(order[converters.index(c):])]
            kept_lines.append(f"Order changed: {', '.join(moved)} ran after {', '.join(between)}, which is kept; their "
                          f"steps now run before it, in the prefect-init container: check that they need nothing it "
                          "made (or import with --replace-all)")
    header += kept_lines
    conflicts = _conflicts(chosen)
    needs = _needs_lines(space, chosen, env_from_words)
    if conflicts:
        needs.append(f"Defined differently by two initContainers: {', '.join(conflicts)}: each step reads its own "
                     "container's value (the others' under a name of their own, CONTAINER_NAME, listed above)")
    header += needs
    if missing:
        header.append(f"Command steps run in the init image, which lacks: {', '.join(missing)} (prefect-init import "
                      "printed a Dockerfile that adds them; prefect-init check --online finds what is missing where "
                      "the spec runs)")
    if path_programs:
        header.append(f"Command steps run files of the original images or volumes: {', '.join(path_programs)}: "
                      "copy them into the init image (or mount their volume)")
    if mount_words:
        header.append(f"The initContainers' volumes (the paths the steps write): {'; '.join(mount_words)}")
    provenance, *rest = header
    wrapped = [wrapped for line in rest for wrapped in textwrap.wrap(line, 116, subsequent_indent="    ",
                                                                    break_on_hyphens=False)]
    out = [SCHEMA_LINE + "\n", provenance + "\n", _comment(wrapped), "version: 1\n",
           f"name: {_name(chosen.name)}\n", "steps:\n"]
    for draft, name, body in steps:
        if name == draft.name:
            out.append(_comment(list(dict.fromkeys(draft.comments)), "  "))
        out.append(_dump_step(body))
    spec_text = "".join(out)

    notes = [f'initContainer "{name}": a sidecar (restartPolicy: Always), no init step: left out'
             for name in chosen.sidecars]
    for converter in converters:
        result = converter.result
        kinds = [d.kind for d in drafts if result.name in d.origins]
        if result.outcome == "kept":
            notes.append(f'initContainer "{result.name}" ({result.image}): {result.why}')
        elif result.outcome == "typed":
            notes.append(f'initContainer "{result.name}" ({result.image}): typed steps: '
                         f"{', '.join(f'{n} ({k})' for n, k in zip(result.steps, kinds, strict=False))}")
        else:
            notes.append(f'initContainer "{result.name}" ({result.image}): '
                         f"{'a command step' if result.outcome == 'command' else 'typed and command steps'} "
                         f"({result.why})")
    notes += kept_lines + needs
    dockerfile = dockerfile_lines(missing) if missing else []
    if missing:
        notes.append(f"the command steps run in the init image, which lacks: {', '.join(missing)}; an image that "
                     "has them (build it, then render with --image):")
        notes += [f"  {line}" for line in dockerfile]
        notes.append("prefect-init check --online SPEC, where the spec runs, says which programs are still missing")
    if path_programs:
        notes.append(f"the command steps run files of the original images or volumes: {', '.join(path_programs)}")

    imported = Imported(spec_text=spec_text, notes=notes, workload=(chosen.kind, chosen.name),
                        init_containers=replaced, missing_programs=missing,
                        containers=[c.result for c in converters], dockerfile=dockerfile)
    _check(imported, space)
    return imported


def _check(imported: Imported, space: Workspace) -> None:
    """The spec made must load (every variable taken as set where it runs), and no literal credential may be
    in anything said: a bug of ours, said in one line without the value."""
    from prefect_init.errors import SpecError
    from prefect_init.spec.load import parse_spec

    said = "\n".join([imported.spec_text, *imported.notes, *(" ".join(c.argv) for c in imported.containers)])
    for value, name in space.credentials.items():
        if len(value) >= 3 and re.search(rf"(?<![A-Za-z0-9]){re.escape(value)}(?![A-Za-z0-9])", said):
            raise ImportProblem(f"internal error: the credential of {name} would be written (a bug: please report "
                                "it; nothing was written)")
    try:
        parse_spec(imported.spec_text, "<import>", env={}, defer_unset=True)
    except SpecError as exc:
        first = exc.problems[0] if exc.problems else "?"
        raise ImportProblem(f"internal error: the spec made does not load: {first} (a bug: please report it)"
                            ) from None
