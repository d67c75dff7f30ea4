"""The variables of an imported workload: where each of the initContainers' variables comes from, how the spec
refers to it (``${DB_HOST:-db}``, ``${DB_PASSWORD}``), what the prefect-init container must be given, and every
literal credential, which becomes a variable and never reaches the spec, the notes or a comment."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prefect_init.importer.manifest import Container, kube_expand
from prefect_init.importer.shell import Word, quote_state, reference
from prefect_init.render.provenance import own_prefix
from prefect_init.spec.credentials import CREDENTIAL_NAME, is_literal_credential

_PASS = re.compile(r"(?<!BY)(?<!COM)PASS(?!IVE|THRU|THROUGH|ENGER|AGE|PORT)", re.IGNORECASE)
_NOT_CREDENTIALS = ("PWD", "OLDPWD")
"""The shell's working directories, not passwords."""


_ABOUT_A_CREDENTIAL = re.compile(r"_(NAME|URL|URI|FILE|PATH|DIR|REF|TTL|HOST|PORT|ENDPOINT|TYPE|MODE|ENABLED|"
                                 r"EXPIRY|EXPIRES|LENGTH|HEADER|FIELD|MOUNT|LOCATION|REGION|ALGORITHM|ISSUER|"
                                 r"AUDIENCE|SCOPE|LIFETIME|TIMEOUT|INTERVAL|ROLE|USER|USERNAME)$", re.IGNORECASE)
"""A name that speaks of a credential without holding one: ``SECRET_NAME`` (a Secret's name), ``TOKEN_URL``,
``PASSWORD_FILE`` (a path), ``TOKEN_TTL``. Its value is a credential only by its shape (a URL's password, a DSN,
a PEM block: :func:`~prefect_init.spec.credentials.is_literal_credential`)."""


def credential_name(name: str) -> bool:
    """A variable whose name says it holds a credential (``DB_PASSWORD``, ``REDIS_PASS``, ``DBPASS``, ``MYSQL_PWD``,
    ``GH_PAT``, ``GITHUB_TOKEN``, ``API_KEY``: :data:`~prefect_init.spec.credentials.CREDENTIAL_NAME`, and ``PASS``
    anywhere but in ``BYPASS``, ``PASSIVE``...), but not one that only speaks of one (:data:`_ABOUT_A_CREDENTIAL`);
    its literal value in a manifest is moved into a Secret."""
    if name.upper() in _NOT_CREDENTIALS or _ABOUT_A_CREDENTIAL.search(name):
        return False
    return bool(CREDENTIAL_NAME.search(name) or _PASS.search(name))

KUBE_INJECTED = re.compile(r"^(HOSTNAME|HOME|PATH|KUBERNETES_[A-Z0-9_]+|[A-Z0-9_]+_SERVICE_(HOST|PORT)(_[A-Z0-9_]+)?|"
                           r"[A-Z0-9_]+_PORT_[0-9]+_(TCP|UDP)(_PROTO|_PORT|_ADDR)?)$")
"""Set in every container by Kubernetes (service links, the host name) or by the image: the prefect-init container
has them as well."""
NAMESPACE_FILE = re.compile(r"^(\$\(|`)\s*cat\s+/var/run/secrets/kubernetes\.io/serviceaccount/namespace\s*(\)|`)$")
"""``$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)``: the pod's namespace, as Kubernetes' own
documentation waits for a Service; ``${POD_NAMESPACE}`` (render sets it from the Downward API)."""
_KUBE_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
_URL_PASSWORD = re.compile(r"://[^/@:\s]*:([^@/\s]+)@")
_PARAM = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}$`\\\"']*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
SENTINEL = "\x00"
"""Marks a reference in an argv run without a shell: ``\\x00NAME\\x00``."""


@dataclass
class Variable:
    name: str
    origin: str
    """``literal``, ``credential`` (a literal credential, moved), ``secret``, ``configmap``, ``field``,
    ``resource``, ``script`` (a literal credential of a script, moved)."""
    value: str | None = None
    """A literal value that is no credential (the spec's default for it); None otherwise."""
    source: str = ""
    """In words: ``Secret db (key password)``."""


@dataclass
class Needed:
    name: str
    why: str
    credential: bool = False


@dataclass
class Workspace:
    """What every container of one workload shares: the variables needed, the credentials found (by value, only
    to keep them out of every output), the names taken."""

    workload: str
    needed: dict[str, Needed] = field(default_factory=dict)
    credentials: dict[str, str] = field(default_factory=dict)
    """Literal credential value -> the variable that now holds it."""
    defaults: list[str] = field(default_factory=list)
    """Variables whose literal value from the manifest is the spec's default."""
    promoted: set[str] = field(default_factory=set)
    """Variables whose literal value in the env is used as a credential (``redis-cli -a $REDIS_PASS``, a URL's
    password, a token header) though their name does not say so: credentials, like ``DB_PASSWORD``'s value. One
    found after the spec began to be written means writing it again (:func:`import_workload` does)."""
    names: set[str] = field(default_factory=set)
    """Every variable an initContainer of the workload defines: a credential moved out of a script gets a name
    none of them has (the prefect-init container has one environment for all)."""

    own: dict[str, str] = field(default_factory=dict)
    """Variables two initContainers define differently -> the first container that defines it. The others'
    steps read their own value under a name of their own (:meth:`Vars.ref`), so each step sees exactly what its
    container saw (the prefect-init container has one environment)."""

    def need(self, name: str, why: str, credential: bool = False) -> None:
        if name not in self.needed:
            self.needed[name] = Needed(name, why, credential)

    def credential_variable(self, value: str, hint: str, taken: set[str]) -> str:
        if value in self.credentials:
            return self.credentials[value]
        base = re.sub(r"[^A-Z0-9_]", "_", hint.upper()).strip("_") or "SECRET"
        if base[0].isdigit():
            base = f"V_{base}"
        name, number = base, 2
        used = taken | self.names | set(self.needed) | set(self.credentials.values())
        while name in used:
            name, number = f"{base}_{number}", number + 1
        self.credentials[value] = name
        return name


def _source(entry: dict[str, Any]) -> tuple[str, str]:
    """(origin, in words) of an env entry with ``valueFrom``."""
    frm = entry.get("valueFrom") or {}
    if "secretKeyRef" in frm:
        ref = frm["secretKeyRef"] or {}
        return "secret", f"Secret {ref.get('name')} (key {ref.get('key')})"
    if "configMapKeyRef" in frm:
        ref = frm["configMapKeyRef"] or {}
        return "configmap", f"ConfigMap {ref.get('name')} (key {ref.get('key')})"
    if "fieldRef" in frm:
        return "field", f"the pod's {(frm['fieldRef'] or {}).get('fieldPath')} (fieldRef)"
    if "resourceFieldRef" in frm:
        return "resource", f"the container's {(frm['resourceFieldRef'] or {}).get('resource')} (resourceFieldRef)"
    return "other", "valueFrom"


class Vars:
    """One container's variables: how a word of its script becomes a spec value."""

    def __init__(self, container: Container, space: Workspace) -> None:
        self.container = container
        self.space = space
        self.vars: dict[str, Variable] = {}
        self.env_from = [self._env_from_words(e) for e in container.env_from]
        for entry in container.env:
            name = entry["name"]
            if "valueFrom" in entry:
                origin, words = _source(entry)
                self.vars[name] = Variable(name, origin, source=words)
                continue
            value = "" if entry.get("value") is None else str(entry.get("value"))
            if value and "$(" not in value and (credential_name(name) or is_literal_credential(value)
                                                or name in space.promoted):
                space.credentials.setdefault(value, name)
                self.vars[name] = Variable(name, "credential", source="a literal credential in the manifest")
            else:
                self.vars[name] = Variable(name, "literal", value=value, source="a literal in the manifest")
        self._expanding: set[str] = set()
        self.script_credentials: dict[str, str] = {}
        """Variables that now hold a literal credential found in this container's script: name -> where."""
        for name, var in list(self.vars.items()):  # PGPASSWORD: $(DB_PW), a URL's password $(DB_PW): credentials
            if var.origin != "literal" or not var.value or "$(" not in var.value:
                continue
            if credential_name(name):
                self.promote(name)
                continue
            for match in _URL_PASSWORD.finditer(var.value):
                for other in _KUBE_REF.findall(match.group(1)):
                    self.promote(other)

    @staticmethod
    def _env_from_words(entry: dict[str, Any]) -> str:
        prefix = f" (prefix {entry['prefix']})" if entry.get("prefix") else ""
        if "secretRef" in entry:
            return f"Secret {(entry['secretRef'] or {}).get('name')}{prefix}"
        if "configMapRef" in entry:
            return f"ConfigMap {(entry['configMapRef'] or {}).get('name')}{prefix}"
        return "envFrom"

    @property
    def defined(self) -> set[str]:
        return set(self.vars)

    # -- references ---------------------------------------------------------------------------------------------

    def own_name(self, name: str) -> str:
        """The spec's name for ``name`` as this container defines it: ``name`` itself, or, when another
        initContainer defined it first and differently, ``CONTAINER_NAME`` (its own)."""
        first = self.space.own.get(name)
        if first is None or first == self.container.name or name not in self.vars:
            return name
        return f"{own_prefix(self.container.name)}_{name}"

    def ref(self, name: str, default: str | None = None) -> str:
        """The spec's reference to a variable the container's script reads (under this container's own name for
        it when two initContainers define it differently: :meth:`own_name`)."""
        own = self.own_name(name)
        if own == name:
            return self._ref(name, default)
        needed, defaults = set(self.space.needed), list(self.space.defaults)
        out = self._ref(name, default)
        if out.startswith("${" + name):
            out = "${" + own + out[len(name) + 2:]
        if name in self.space.needed and name not in needed:
            self.space.needed.pop(name)
        var = self.vars[name]
        if var.origin != "literal" or out == "${" + own + "}":
            why = var.source if var.origin != "literal" else "a literal in the manifest that is no default here"
            self.space.need(own, f'initContainer "{self.container.name}"\'s own {name} (another initContainer '
                                 f"defines it differently): {why}", var.origin == "credential")
        if name in self.space.defaults and name not in defaults:
            self.space.defaults.remove(name)
        if out.startswith("${" + own + ":-") and own not in self.space.defaults:
            self.space.defaults.append(own)
        return out

    def _ref(self, name: str, default: str | None = None) -> str:
        where = f'initContainer "{self.container.name}"'
        var = self.vars.get(name)
        if default is not None and (var is None or var.origin != "literal"):
            if var is not None:
                self._record(var)
            return "${" + name + ":-" + default + "}"  # the shell's own default (the env's literal wins over it)
        if name == "POD_NAMESPACE" and name not in self.vars:
            self.space.need(name, "the pod's namespace: prefect-init render sets it (the Downward API)")
            return "${POD_NAMESPACE}"
        if var is None:
            if name in self.script_credentials:
                self.space.need(name, self.script_credentials[name], credential=True)
                return "${" + name + "}"
            if KUBE_INJECTED.match(name):
                return "${" + name + "}"
            if self.env_from:
                self.space.need(name, f"not in {where}'s env: from its envFrom ({', '.join(self.env_from)})")
                return "${" + name + "}"
            # set nowhere in the manifest: the shell read it as empty, which no typed step can take (an empty
            # host), so the prefect-init container must be given it
            self.space.need(name, f"set nowhere in the manifest ({where} reads it): give the prefect-init "
                                  "container its value")
            return "${" + name + "}"
        if var.origin == "literal" and var.value is not None:
            if not any(c in var.value for c in "}\n") and "$(" not in var.value:
                if name not in self.space.defaults:
                    self.space.defaults.append(name)
                return "${" + name + ":-" + var.value + "}"
            if "$(" in var.value and name not in self._expanding:  # Kubernetes' $(VAR): written out
                self._expanding.add(name)
                try:
                    return kube_expand(var.value, self.defined, ref=self.ref, literal=lambda s: s.replace("${", "$${"))
                finally:
                    self._expanding.discard(name)
            self.space.need(name, f"a literal in the manifest ({where}'s env) that is no default here")
            return "${" + name + "}"
        self._record(var)
        return "${" + name + "}"

    def _record(self, var: Variable) -> None:
        """What the prefect-init container must be given for a variable that is no literal of the manifest."""
        if var.origin == "credential":
            self.space.need(var.name, f'a literal credential in the manifest (initContainer "{self.container.name}"'
                            "'s env): put it in a Secret", credential=True)
        elif var.origin != "literal":
            self.space.need(var.name, var.source)

    def promote(self, name: str, seen: set[str] | None = None) -> None:
        """``name`` is used where a credential goes (``redis-cli -a $NAME``, a URL's password, a token header, git's
        password, ``PGPASSWORD=$NAME``): if its value is a literal of the env, that value is a credential (in
        :attr:`Workspace.promoted`): ``${NAME}`` without a default from now on, the value in no output. A
        literal that refers to others (``$(DB_PW)``) makes those credentials."""
        var = self.vars.get(name)
        if var is None or var.origin != "literal" or not var.value:
            return
        if "$(" in var.value:
            seen = set() if seen is None else seen
            if name not in seen:
                seen.add(name)
                for other in _KUBE_REF.findall(var.value):
                    self.promote(other, seen)
            return
        self.space.promoted.add(name)
        self.space.credentials.setdefault(var.value, name)
        self.vars[name] = Variable(name, "credential", source="a literal credential in the manifest")
        if name in self.space.defaults:
            self.space.defaults.remove(name)
        self.space.needed.pop(name, None)
        self._record(self.vars[name])

    def secret(self, value: str, hint: str) -> str:
        """A credential a recognised command gives (a URL's password, ``redis-cli -a``): a reference, never the
        literal (which becomes a variable named after ``hint``). The variables a reference reads are credentials
        (see :meth:`promote`)."""
        if "${" in value:
            for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", value):
                self.promote(name)
                need = self.space.needed.get(name)
                if need is not None:
                    need.credential = True
            return value  # a default written before the promotion: the import is made again (promoted)
        name = self.space.credential_variable(value, hint, self.defined)
        self.script_credentials[name] = (f'a literal credential in initContainer "{self.container.name}"\'s '
                                         "command: put it in a Secret")
        return self.ref(name)

    def value(self, word: Word) -> str | None:
        """A word of a recognised command as a spec value: ``$X`` and ``${X:-d}`` as spec references; None for
        anything the spec cannot say (``${X%.*}``, ``$1``, a command substitution, a single-quoted ``$``)."""
        if word.other:
            return None
        text = word.text
        if SENTINEL in text:  # an argv without a shell: references are marked, nothing else is special
            parts = text.split(SENTINEL)
            return "".join(self.ref(part) if i % 2 else part.replace("${", "$${") for i, part in enumerate(parts))
        namespace = False
        for substitution in word.substitutions:
            if not NAMESPACE_FILE.match(substitution):
                return None
            text, namespace = text.replace(substitution, "\x01"), True
        matches = list(_PARAM.finditer(text))
        if not text.count("$") == len(matches) == len(word.params):
            return None  # a `$` the spec cannot say: ${X%.*}, $1, $@, a single-quoted or escaped `$`
        out, last = [], 0
        for match in matches:
            out.append(text[last:match.start()])
            out.append(self.ref(match.group(1) or match.group(3), match.group(2)))
            last = match.end()
        out.append(text[last:])
        result = "".join(out)
        return result.replace("\x01", self.ref("POD_NAMESPACE")) if namespace else result

    # -- the environment of a command step ----------------------------------------------------------------------

    def command_env(self, script: str | None = None) -> dict[str, str]:
        """The container's env as a command step's ``env:``: a literal as the default of its own variable
        (``NODE_ENV: ${NODE_ENV:-production}``, so a value given to the prefect-init container still wins), every
        other one as a reference; never a literal credential. A credential moved out of the script is there when
        ``script`` (the part the step runs) reads it."""
        out: dict[str, str] = {name: self.ref(name) for name in self.vars}
        for name in self.script_credentials:  # those of this script (or part of it) only
            if script is None or re.search(rf"\$\{{?{name}(?![A-Za-z0-9_])", script):
                out[name] = self.ref(name)
        return out


# -- literal credentials in a script ------------------------------------------------------------------------------

_VALUE = r"('[^'\n]*'|\"[^\"$`\\\n]*\"|[^\s;&|'\"$()<>`]+)"
_REFERENCE = r"(\"?\$\{?[A-Za-z_][A-Za-z0-9_]*(?::-[^}\n]*)?\}?\"?)"
"""A value that is a variable's (``$PW``, ``"${PW}"``, ``${PW:-x}``): the variable is used as a credential."""
_PLACES: list[tuple[str, str, Callable[[re.Match[str], str], str]]] = [
    (r"(?<![A-Za-z0-9_-])([A-Za-z_][A-Za-z0-9_]*)=(V)", _VALUE,
     lambda m, c: m.group(1) if credential_name(m.group(1)) else ""),
    (r"(?i)(?<![A-Za-z0-9_-])--?(password|passwd|pass|token|secret|api-key|apikey|auth-token|access-key|"
     r"secret-key)(?:=|\s+)(V)", _VALUE, lambda m, c: f"{c}_{m.group(1)}"),
    (r"\b(?:mysql|mysqladmin|mysqldump|mariadb|mariadb-admin)\b[^\n;&|]*?\s-p(V)", _VALUE,
     lambda m, c: "MYSQL_PASSWORD"),
    (r"\bredis-cli\b[^\n;&|]*?\s-a\s+(V)", _VALUE, lambda m, c: "REDIS_PASSWORD"),
    (r"\b(?:curl|wget)\b[^\n;&|]*?\s(?:-u\s*|--user[= ]\s*)['\"]?[^\s:'\"]+:(V)", _VALUE,
     lambda m, c: "HTTP_PASSWORD"),
    (r"(?i)((?:authorization|proxy-authorization):\s*(?:bearer|basic|token)\s+)(V)", r"([^\s'\"$;&|`]+)",
     lambda m, c: "HTTP_TOKEN"),
    (r"(?i)((?:x-api-key|api-key|apikey|private-token|x-auth-token|x-vault-token)\s*:\s*)(V)",
     r"([^\s'\"$;&|`]+)", lambda m, c: "API_KEY"),
    (r"\bvault\s+login\s+(?!-)(V)", _VALUE, lambda m, c: "VAULT_TOKEN"),
    (r"\b([a-z][a-z0-9+.-]*)://[^\s/@:'\"]*:(V)@", r"([^\s/@'\"$]+)",
     lambda m, c: "GIT_TOKEN" if "git" in m.string[max(0, m.start() - 200):m.start()] and
     m.group(1).startswith("http") else f"{m.group(1).split('+')[0]}_PASSWORD"),
    (r"\bgit\b[^\n;&|]*?\bhttps?://(V)@", r"((?:gh[pousr]_|github_pat_|glpat-)[A-Za-z0-9_-]+|[A-Za-z0-9_-]{32,})",
     lambda m, c: "GIT_TOKEN"),
]
"""Where a script holds a credential (``(V)`` stands for the value), the literal value's form there, and the
variable a literal becomes: an assignment to a credential's name (``PGPASSWORD=...``), ``--password=``/``--token``,
``mysql -p...``, ``redis-cli -a``, ``curl -u user:...``, an ``Authorization`` or API key header, ``vault login
TOKEN``, a URL's password, a token as a git URL's user."""
_PATTERNS = [(re.compile(place.replace("(V)", literal)), hint) for place, literal, hint in _PLACES]
"""The literal credentials of a script."""
_REFERENCES = [(re.compile(place.replace("(V)", _REFERENCE)), hint) for place, _, hint in _PLACES]
"""The variables a script uses as credentials (``redis-cli -a $REDIS_PASS``): see :meth:`Vars.promote`."""


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def scrub(script: str, container: str, vars_: Vars, writer: Callable[[str, str, str], str] = reference) -> str:
    """``script`` with every literal credential replaced by a reference to a variable that holds it (a shell
    reference that reads as one word where the literal stood, by default), registered with ``vars_``.

    Also every literal credential of the workload's env found verbatim in the script."""
    prefix = re.sub(r"[^A-Z0-9]", "_", container.upper()).strip("_") or "INIT"
    for pattern, hint_of in _REFERENCES:
        for match in pattern.finditer(script):
            if hint_of(match, prefix):  # a single-quoted `$X` too: `sh -c '...'` would read it
                for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", match.group(match.lastindex or 0)):
                    vars_.promote(name)
    replacements: list[tuple[int, int, str]] = []
    for pattern, hint_of in _PATTERNS:
        for match in pattern.finditer(script):
            hint = hint_of(match, prefix)
            if not hint:
                continue
            index = match.lastindex or 0
            start, end = match.span(index)
            value = _unquote(script[start:end])
            if not value or "$" in value or any(s < end and start < e for s, e, _ in replacements):
                continue
            name = vars_.space.credential_variable(value, hint, vars_.defined)
            vars_.script_credentials.setdefault(name, f'a literal credential in initContainer "{container}"\'s '
                                                "script: put it in a Secret")
            replacements.append((start, end, name))
    for value, name in sorted(vars_.space.credentials.items(), key=lambda item: -len(item[0])):
        if len(value) < 4:
            continue
        for match in re.finditer(re.escape(value), script):
            start, end = match.span()
            if any(s < end and start < e for s, e, _ in replacements):
                continue
            replacements.append((start, end, name))
            if name not in vars_.vars:
                vars_.script_credentials.setdefault(name, f'a literal credential in initContainer "{container}"\'s '
                                                    "script: put it in a Secret")
    out, last = [], 0
    for start, end, name in sorted(replacements):
        out.append(script[last:start])
        out.append(writer(name, quote_state(script, start), script[end:end + 1]))
        last = end
    out.append(script[last:])
    return "".join(out)


_ARGV_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^--?(password|passwd|pass|token|secret|api-key|apikey|auth-token|access-key|secret-key)=(.+)$",
                re.IGNORECASE), "{prefix}_{1}"),
    (re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.+)$"), "{1}"),
    (re.compile(r"^((?:authorization|proxy-authorization):\s*(?:bearer|basic|token)\s+)(.+)$", re.IGNORECASE),
     "HTTP_TOKEN"),
    (re.compile(r"^((?:x-api-key|api-key|apikey|private-token|x-auth-token|x-vault-token)\s*:\s*)(.+)$",
                re.IGNORECASE), "API_KEY"),
    (re.compile(r"([a-z][a-z0-9+.-]*)://[^\s/@:]*:([^/@]+)@"), "{1}_PASSWORD"),
    (re.compile(r"^(https?)://((?:gh[pousr]_|github_pat_|glpat-)[A-Za-z0-9_-]+|\$\([A-Za-z_][A-Za-z0-9_]*\))@"),
     "GIT_TOKEN"),
]
_ARGV_NEXT = re.compile(r"^--?(password|passwd|pass|token|secret|api-key|apikey|auth-token|access-key|secret-key)$",
                        re.IGNORECASE)


def scrub_argv(argv: list[str], container: str, vars_: Vars) -> list[str]:
    """An argv run without a shell, its literal credentials and Kubernetes' ``$(VAR)`` references as marked
    references (see :data:`SENTINEL`): the same rules as :func:`scrub`, a whole argument being a whole value."""
    prefix = re.sub(r"[^A-Z0-9]", "_", container.upper()).strip("_") or "INIT"
    program = argv[0].rsplit("/", 1)[-1] if argv else ""

    def mark(arg: str, start: int, end: int, hint: str) -> str:
        value = arg[start:end]
        for name in _KUBE_REF.findall(value):  # `redis-cli -a $(REDIS_PASS)`: REDIS_PASS holds a credential
            vars_.promote(name)
        if not value or "$(" in value or SENTINEL in value:
            return arg
        name = vars_.space.credential_variable(value, hint, vars_.defined)
        vars_.script_credentials.setdefault(name, f'a literal credential in initContainer "{container}"\'s '
                                            "command: put it in a Secret")
        return arg[:start] + f"{SENTINEL}{name}{SENTINEL}" + arg[end:]

    out: list[str] = []
    for index, arg in enumerate(argv):
        before = argv[index - 1] if index else ""
        if _ARGV_NEXT.match(before) or (program in ("redis-cli",) and before == "-a"):
            arg = mark(arg, 0, len(arg), f"{prefix}_{before.lstrip('-')}" if program != "redis-cli"
                       else "REDIS_PASSWORD")
        elif program in ("curl", "wget") and before in ("-u", "--user") and ":" in arg:
            arg = mark(arg, arg.index(":") + 1, len(arg), "HTTP_PASSWORD")
        elif program.startswith(("mysql", "mariadb")) and re.match(r"^-p.", arg):
            arg = mark(arg, 2, len(arg), "MYSQL_PASSWORD")
        else:
            for pattern, hint in _ARGV_RULES:
                match = pattern.search(arg)
                if match is None:
                    continue
                name = hint.format(None, *match.groups(), prefix=prefix)
                if program == "git" and hint == "{1}_PASSWORD":
                    name = "GIT_TOKEN"
                if hint == "{1}" and not credential_name(match.group(1)):
                    continue
                if hint == "GIT_TOKEN" and program != "git":
                    continue
                arg = mark(arg, *match.span(2), name)
                break
        for value, name in sorted(vars_.space.credentials.items(), key=lambda item: -len(item[0])):
            if len(value) >= 4 and value in arg:
                arg = arg.replace(value, f"{SENTINEL}{name}{SENTINEL}")
        out.append(kube_expand(arg, vars_.defined, ref=lambda n: f"{SENTINEL}{n}{SENTINEL}"))
    return out
