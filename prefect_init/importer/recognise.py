"""What one command of an initContainer's script is, as a part of a typed step: a wait target, a directory or
file with its mode and owner, a configuration download, a git checkout, a Vault read, a migration tool; or
nothing (``echo``, ``sleep``), or a ``cd``. Anything else is None: the caller keeps it as a command.

Every recogniser takes the words as bashlex gives them (quotes removed) and turns each into a spec value through
:class:`~prefect_init.importer.variables.Vars` (``$DB_HOST`` -> ``${DB_HOST:-db}``); a word the spec
cannot say (``${X%.*}``, ``$1``, a command substitution) makes the command unrecognised. Options a recogniser
does not know make it unrecognised too: better a command step that runs as written than a step that does less.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

from prefect_init.importer.manifest import Container
from prefect_init.importer.shell import Item, Loop, Node, Pipeline, Redirect, Simple, Word
from prefect_init.importer.variables import Vars


@dataclass
class Fragment:
    comments: list[str] = field(default_factory=list, kw_only=True)
    """Where the step differs from what the shell did, said in the spec."""


@dataclass
class WaitPart(Fragment):
    targets: list[dict[str, Any]]
    timeout: str | None = None
    """The script's own deadline (``dockerize -timeout 120s``), the step's timeout."""


@dataclass
class FileOp:
    path: str
    is_dir: bool | None
    """True for a directory, False for a file, None when only its mode or owner was set (the type is guessed)."""
    mode: str | None = None
    owner: str | None = None
    content: str | None = None
    recursive: bool = False
    command: str = ""


@dataclass
class FilesPart(Fragment):
    ops: list[FileOp]


@dataclass
class ConfigPart(Fragment):
    body: dict[str, Any]


@dataclass
class GitPart(Fragment):
    body: dict[str, Any]


@dataclass
class GitRefPart(Fragment):
    dest: str
    ref: str


@dataclass
class VaultLoginPart(Fragment):
    auth: dict[str, Any]


@dataclass
class VaultReadPart(Fragment):
    path: str
    key: str
    dest: str
    settings: dict[str, Any]
    kv: bool = True
    """``vault kv get`` (else ``vault read``: maybe a dynamic secret, whose lease the login token holds)."""


@dataclass
class MigratePart(Fragment):
    body: dict[str, Any]


@dataclass
class NoisePart(Fragment):
    """Output only (``echo``), a pause (``sleep``), shell options (``set -e``): no step."""

    errexit: bool = False


@dataclass
class CdPart(Fragment):
    path: str


Part = (WaitPart | FilesPart | ConfigPart | GitPart | GitRefPart | VaultLoginPart | VaultReadPart | MigratePart |
        NoisePart | CdPart)


@dataclass
class State:
    vars: Vars
    container: Container
    cwd: str | None
    errexit: bool = False
    git_dests: list[str] = field(default_factory=list)


# -- options ------------------------------------------------------------------------------------------------------

Opts = dict[str, list[str]]


def options(args: list[str], short_flags: str = "", short_valued: str = "", long_flags: tuple[str, ...] = (),
            long_valued: tuple[str, ...] = ()) -> tuple[Opts, list[str]] | None:
    """getopt for the commands recognised: ``-abc``, ``-w1``, ``-w 1``, ``--opt=v``, ``--opt v``; an unknown
    option is None (the command is then not recognised)."""
    opts: Opts = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            positional += args[i + 1:]
            break
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if name in long_flags and not eq:
                opts.setdefault(name, []).append("")
            elif name in long_valued:
                if not eq:
                    i += 1
                    if i >= len(args):
                        return None
                    value = args[i]
                opts.setdefault(name, []).append(value)
            else:
                return None
        elif arg.startswith("-") and len(arg) > 1 and not arg[1].isdigit():
            j = 1
            while j < len(arg):
                char = arg[j]
                if char in short_flags:
                    opts.setdefault(char, []).append("")
                    j += 1
                elif char in short_valued:
                    value = arg[j + 1:]
                    if not value:
                        i += 1
                        if i >= len(args):
                            return None
                        value = args[i]
                    opts.setdefault(char, []).append(value)
                    break
                else:
                    return None
        else:
            positional.append(arg)
        i += 1
    return opts, positional


def _last(opts: Opts, *names: str) -> str | None:
    for name in names:
        if name in opts:
            return opts[name][-1]
    return None


def _values(simple: Simple, state: State) -> list[str] | None:
    values = [state.vars.value(w) for w in simple.words]
    return None if any(v is None for v in values) else [v for v in values if v is not None]


def _program(simple: Simple) -> str:
    return simple.words[0].text.rsplit("/", 1)[-1] if simple.words else ""


_QUIET_TARGETS = ("/dev/null", "/dev/stdout", "/dev/stderr")


def _file_redirect(simple: Simple, state: State) -> tuple[bool, str | None]:
    """(only harmless redirects and at most one ``> FILE``, that FILE as a spec path)."""
    target: str | None = None
    for redirect in simple.redirects:
        if redirect.op in (">&", "<&") or (redirect.target is not None and redirect.target.text in _QUIET_TARGETS
                                           and redirect.op in (">", "&>", ">|")):
            continue
        if redirect.op in (">", ">|") and redirect.target is not None and redirect.fd in (None, 1) and target is None:
            value = state.vars.value(redirect.target)
            path = _path(value, state) if value is not None else None
            if path is None:
                return False, None
            target = path
            continue
        return False, None
    return True, target


def _path(value: str | None, state: State) -> str | None:
    """An absolute path (or one relative to a known working directory); globs are refused."""
    if not value or any(c in value for c in "*?[") or value.startswith("~"):
        return None
    if not value.startswith(("/", "${")):
        if state.cwd is None or not state.cwd.startswith("/"):
            return None
        value = posixpath.join(state.cwd, value)
    if value.startswith("/"):
        value = posixpath.normpath(value)
        value = "/" + value.lstrip("/")
    return value.rstrip("/") or "/"


# -- wait targets -------------------------------------------------------------------------------------------------

def _host_port(host: str, port: str) -> str | None:
    if not host or not port or not (port.isdigit() or port.startswith("${")):
        return None
    return f"[{host}]:{port}" if ":" in host and not host.startswith("${") else f"{host}:{port}"


def _nc(args: list[str]) -> dict[str, Any] | None:
    parsed = options(args, short_flags="zvn46", short_valued="wqi")
    if parsed is None:
        return None
    opts, positional = parsed
    if "z" not in opts or len(positional) != 2:
        return None
    target = _host_port(*positional)
    return {"tcp": target} if target else None


def _pg_isready(args: list[str], simple: Simple, state: State, comments: list[str]) -> dict[str, Any] | None:
    parsed = options(args, short_flags="q", short_valued="hpUdt",
                     long_flags=("quiet",), long_valued=("host", "port", "username", "dbname", "timeout"))
    if parsed is None or parsed[1]:
        return None
    opts = parsed[0]
    database = _last(opts, "d", "dbname")
    if database and "://" in database:
        scheme, _, rest = database.partition("://")
        if scheme not in ("postgres", "postgresql"):
            return None
        userinfo, at, hostport = rest.split("/", 1)[0].rpartition("@")
        if at and ":" in userinfo:
            return {"postgres": _url_password(database, state, "PGPASSWORD")}
        if re.search(r":(\d+|\$\{[^}]+\})$", hostport):
            host, _, port = hostport.rpartition(":")
        else:
            host, port = hostport, "5432"
        target = _host_port(host, port)
        comments.append("pg_isready asks whether the server accepts connections; tcp only checks that its port "
                        "does (a postgres target with a password also logs in)")
        return {"tcp": target} if target else None
    env = state.vars.vars
    host = _last(opts, "h", "host") or (state.vars.ref("PGHOST") if "PGHOST" in env else "localhost")
    port = _last(opts, "p", "port") or (state.vars.ref("PGPORT") if "PGPORT" in env else "5432")
    assigned = {w.text.split("=", 1)[0]: w for w in simple.assignments}
    if "PGPASSWORD" in env or "PGPASSWORD" in assigned:
        if "PGPASSWORD" in assigned:
            password = state.vars.value(Word(assigned["PGPASSWORD"].text.split("=", 1)[1], "",
                                             assigned["PGPASSWORD"].params))
            if password is None:
                return None
            password = state.vars.secret(password, "PGPASSWORD")
        else:
            password = state.vars.ref("PGPASSWORD")
        user = _last(opts, "U", "username") or (state.vars.ref("PGUSER") if "PGUSER" in env else "postgres")
        name = database or (state.vars.ref("PGDATABASE") if "PGDATABASE" in env else "postgres")
        address = _host_port(host, port)
        if address is None:
            return None
        comments.append("pg_isready only asks whether the server accepts connections; this target also logs in "
                        "with the container's PGPASSWORD and runs SELECT 1")
        return {"postgres": f"postgresql://{user}:{password}@{address}/{name}"}
    if simple.assignments:
        return None
    target = _host_port(host, port)
    comments.append("pg_isready asks whether the server accepts connections; tcp only checks that its port does "
                    "(with the database's password, a postgres target also logs in)")
    return {"tcp": target} if target else None


def _dns(program: str, args: list[str], comments: list[str]) -> dict[str, Any] | None:
    if program == "nslookup" and len(args) in (1, 2) and not any(a.startswith("-") for a in args):
        if len(args) == 2:
            comments.append(f"nslookup asked the server {args[1]}; the dns target asks the system resolver")
        return {"dns": args[0]}
    if program == "getent" and len(args) == 2 and args[0] in ("hosts", "ahosts", "ahostsv4"):
        return {"dns": args[1]}
    if program == "host" and len(args) == 1 and not args[0].startswith("-"):
        return {"dns": args[0]}
    return None


_CURL = dict(short_flags="fsSLkIvi", short_valued="omHXw",
             long_flags=("fail", "silent", "show-error", "location", "insecure", "head", "fail-with-body",
                         "compressed", "verbose", "include", "no-progress-meter", "retry-connrefused",
                         "retry-all-errors", "create-dirs", "http1.1", "globoff"),
             long_valued=("output", "header", "max-time", "connect-timeout", "retry", "retry-delay",
                          "retry-max-time", "cacert", "request", "write-out"))
_WGET = dict(short_flags="qSv", short_valued="OTtU",
             long_flags=("quiet", "no-check-certificate", "spider", "no-verbose", "server-response"),
             long_valued=("output-document", "timeout", "tries", "header", "ca-certificate", "user-agent",
                          "wait", "waitretry"))

_SECRET_HEADER = re.compile(r"^(authorization|proxy-authorization|x-api-key|api-key|apikey|private-token|"
                            r"x-auth-token|x-vault-token|.*token.*|.*secret.*)$", re.IGNORECASE)


def _headers(values: list[str], state: State) -> dict[str, str] | None:
    out: dict[str, str] = {}
    for header in values:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            return None
        value = value.strip()
        if _SECRET_HEADER.match(name.strip()):
            scheme, space, token = value.partition(" ")
            if "${" in value:
                value = state.vars.secret(value, "API_KEY")  # the variables it reads hold credentials
            elif space and scheme.lower() in ("bearer", "basic", "token"):
                value = f"{scheme} {state.vars.secret(token, 'HTTP_TOKEN')}"
            else:
                value = state.vars.secret(value, "API_KEY")
        out[name.strip()] = value
    return out


def _url(value: str) -> str | None:
    """An http(s) URL (curl takes ``host:port/path`` as http), or a variable holding one."""
    if value.startswith(("http://", "https://")):
        return value
    if "://" in value:
        return None
    if value.startswith("${"):
        return value
    return f"http://{value}" if re.match(r"^[A-Za-z0-9.-]+(:(\d+|\$\{[^}]+\}))?(/|$)", value) else None


def _url_password(url: str, state: State, hint: str) -> str:
    """The URL with a literal password (``scheme://user:pw@host``) as a variable (and a variable there as one that
    holds a credential)."""
    match = re.match(r"^([a-z][a-z0-9+.-]*://[^/@:]*:)([^/@]+)(@.*)$", url)
    if match is None:
        return url
    return match.group(1) + state.vars.secret(match.group(2), hint) + match.group(3)


def _http(program: str, args: list[str], state: State, comments: list[str]) -> dict[str, Any] | None:
    """curl or wget polled in a loop: an http target (a GET answered 2xx)."""
    if program == "curl":
        parsed = options(args, **_CURL)  # type: ignore[arg-type]
        if parsed is None:
            return None
        opts, positional = parsed
        output = _last(opts, "o", "output")
        method = _last(opts, "X", "request")
        if (output not in (None, "/dev/null") or (method or "GET").upper() not in ("GET", "HEAD")
                or len(positional) != 1):
            return None
        if not ({"f", "fail", "fail-with-body"} & set(opts)):
            comments.append("curl without --fail took any HTTP answer as ready; the http target wants a 2xx (add "
                            "status: [...] for others)")
        header_values = opts.get("H", []) + opts.get("header", [])
        insecure = "k" in opts or "insecure" in opts
        ca_cert = _last(opts, "cacert")
    else:
        parsed = options(["--no-verbose" if a == "-nv" else a for a in args], **_WGET)  # type: ignore[arg-type]
        if parsed is None:
            return None
        opts, positional = parsed
        output = _last(opts, "O", "output-document")
        if output not in (None, "-", "/dev/null") or len(positional) != 1:
            return None
        header_values = opts.get("header", [])
        insecure = "no-check-certificate" in opts
        ca_cert = _last(opts, "ca-certificate")
    url = _url(positional[0])
    headers = _headers(header_values, state)
    if url is None or headers is None:
        return None
    database = _database_port(url)
    if database is not None:
        host_port, name = database
        comments.append(f"{program} polled {name}'s port: it only proved the port answers ({name} does not speak "
                        "HTTP, an http wait would never succeed): a tcp wait")
        return {"tcp": host_port}
    target: dict[str, Any] = {"http": _url_password(url, state, "HTTP_PASSWORD")}
    return target if _https_options(target, headers, insecure, ca_cert, state) else None


DATABASE_PORTS = {"3306": "MySQL", "5432": "PostgreSQL", "6379": "Redis", "27017": "MongoDB", "9042": "Cassandra",
                  "5672": "RabbitMQ", "9092": "Kafka", "2181": "ZooKeeper", "11211": "memcached", "1433": "SQL Server",
                  "1521": "Oracle", "26257": "CockroachDB", "7687": "Neo4j (bolt)", "4222": "NATS",
                  "6650": "Pulsar"}
"""Ports of services that do not answer HTTP: a URL on one of them is a tcp wait, never http."""


def _database_port(url: str) -> tuple[str, str] | None:
    """(``host:port``, the service) of an http URL whose port is a known database's, or None."""
    match = re.match(r"^https?://(?:[^/@]*@)?(?P<host>\[[^\]]+\]|[^/:?#]+):(?P<port>\d+)(?:[/?#]|$)", url)
    if match is None or match["port"] not in DATABASE_PORTS:
        return None
    return f"{match['host']}:{match['port']}", DATABASE_PORTS[match["port"]]


def _https_options(body: dict[str, Any], headers: dict[str, Any] | None, insecure: bool, ca_cert: str | None,
                   state: State) -> bool:
    """A request's headers, ``-k`` and ``--cacert`` into ``body`` (an http target's, a config step's); False when
    the CA's path is not one the spec can name."""
    if headers:
        body["headers"] = headers
    if insecure:
        body["insecure"] = True
    if ca_cert:
        path = _path(ca_cert, state)
        if path is None:
            return False
        body["ca_cert"] = path
    return True


def _redis(args: list[str], state: State, comments: list[str]) -> dict[str, Any] | None:
    parsed = options(args, short_valued="hpanu", long_flags=("tls", "no-auth-warning"),
                     long_valued=("user", "pass", "cacert"))
    if parsed is None:
        return None
    opts, positional = parsed
    if [p.lower() for p in positional] != ["ping"]:
        return None
    url = _last(opts, "u")
    if url is not None:
        if not url.startswith(("redis://", "rediss://")):
            return None
        return {"redis": _url_password(url, state, "REDIS_PASSWORD")}
    host, port = _last(opts, "h") or "127.0.0.1", _last(opts, "p") or "6379"
    password = _last(opts, "a", "pass")
    if password is None and "REDISCLI_AUTH" in state.vars.vars:
        password = state.vars.ref("REDISCLI_AUTH")
    user = _last(opts, "user") or ""
    auth = f"{user}:{state.vars.secret(password, 'REDIS_PASSWORD')}@" if password else ""
    address = _host_port(host, port)
    if address is None:
        return None
    scheme = "rediss" if "tls" in opts else "redis"
    return {"redis": f"{scheme}://{auth}{address}/{_last(opts, 'n') or '0'}"}


def _mysqladmin(args: list[str], comments: list[str]) -> dict[str, Any] | None:
    parsed = options(args, short_flags="s", short_valued="hPup",
                     long_flags=("silent",), long_valued=("host", "port", "user", "password", "connect-timeout",
                                                          "connect_timeout"))
    if parsed is None or [p.lower() for p in parsed[1]] != ["ping"]:
        return None
    opts = parsed[0]
    target = _host_port(_last(opts, "h", "host") or "localhost", _last(opts, "P", "port") or "3306")
    comments.append("mysqladmin ping asks MySQL whether it is up; tcp only checks that its port accepts "
                    "connections (there is no mysql target)")
    return {"tcp": target} if target else None


def _test(program: str, args: list[str], state: State) -> tuple[dict[str, Any], bool] | None:
    """``[ -f PATH ]``, ``test -s PATH``, ``[ ! -e PATH ]``: a file target and whether it is negated."""
    if program in ("[", "[["):
        closing = "]" if program == "[" else "]]"
        if not args or args[-1] != closing:
            return None
        args = args[:-1]
    negated = bool(args) and args[0] == "!"
    args = args[1:] if negated else args
    if len(args) != 2 or args[0] not in ("-f", "-e", "-s", "-d", "-r"):
        return None
    path = _path(args[1], state)
    if path is None:
        return None
    target: dict[str, Any] = {"file": path}
    if args[0] == "-s":
        target["non_empty"] = True
    return target, negated


def check(node: Node, state: State, comments: list[str]) -> tuple[dict[str, Any], bool] | None:
    """A readiness check (the condition of a wait loop): its target and whether it reads "ready" when it
    succeeds (False under ``!``)."""
    if isinstance(node, Pipeline):
        if len(node.commands) != 2:
            return None
        first, grep = node.commands
        grep_args = _values(grep, state)
        if grep_args is None or _program(grep) != "grep" or grep.redirects:
            return None
        parsed = options(grep_args[1:], short_flags="qsFi", long_flags=("quiet", "silent", "fixed-strings"))
        if parsed is None or len(parsed[1]) != 1 or "i" in parsed[0]:
            return None
        text = parsed[1][0]
        if "F" not in parsed[0] and "fixed-strings" not in parsed[0] and re.search(r"[\\.*^$\[\]()+?{}|]", text):
            return None
        found = check(first, state, comments)
        if found is None:
            return None
        found_target, positive = found
        if "redis" in found_target and text == "PONG":
            return found_target, positive != node.negated
        if "http" in found_target:
            found_target["contains"] = text
            return found_target, positive != node.negated
        return None
    if not isinstance(node, Simple) or not node.words:
        return None
    ok, written = _file_redirect(node, state)
    if not ok or written is not None:
        return None
    values = _values(node, state)
    if values is None:
        return None
    program, args = values[0].rsplit("/", 1)[-1], values[1:]
    if node.assignments and program not in ("pg_isready",):
        return None
    target: dict[str, Any] | None
    if program in ("[", "[[", "test"):
        found = _test(program, args, state)
        if found is None:
            return None
        return found[0], found[1] == node.negated
    if program in ("nc", "netcat"):
        target = _nc(args)
    elif program == "pg_isready":
        target = _pg_isready(args, node, state, comments)
    elif program in ("nslookup", "getent", "host"):
        target = _dns(program, args, comments)
    elif program in ("curl", "wget"):
        target = _http(program, args, state, comments)
    elif program == "redis-cli":
        target = _redis(args, state, comments)
    elif program == "mysqladmin":
        target = _mysqladmin(args, comments)
    else:
        return None
    return (target, not node.negated) if target else None


_PAUSES = {"sleep", "echo", "printf", "true", ":", "date"}


def _quiet(node: Node, state: State) -> bool:
    """Output and pauses only: what a wait loop does between checks."""
    if not isinstance(node, Simple) or not node.words or node.assignments:
        return False
    ok, written = _file_redirect(node, state)
    return ok and written is None and _program(node) in _PAUSES


def wait_loop(loop: Loop, state: State) -> WaitPart | None:
    """``until CHECK [&& CHECK]; do sleep 2; done``, ``while ! CHECK; do ...; done``, and ``while true; do CHECK
    && break; sleep 1; done``: one target per check."""
    comments: list[str] = []
    body = loop.body
    condition = loop.condition
    forever = (len(condition) == 1 and isinstance(condition[0].node, Simple)
               and [w.text for w in condition[0].node.words] in (["true"], [":"]) and loop.kind == "while")
    if forever:
        breaks = [i for i, item in enumerate(body) if isinstance(item.node, Simple)
                  and [w.text for w in item.node.words] == ["break"]]
        if len(breaks) != 1 or breaks[0] == 0 or body[breaks[0]].separator != "&&":
            return None
        at = breaks[0]
        start = at - 1
        while start > 0 and body[start].separator == "&&":
            start -= 1
        checks = body[start:at]
        if not all(_quiet(item.node, state) for item in body[:start] + body[at + 1:]):
            return None
        wanted = True
    else:
        if not all(_quiet(item.node, state) for item in body):
            return None
        checks = condition
        wanted = loop.kind == "until"
        if loop.kind == "while" and len(checks) != 1:
            return None  # `while ! a && ! b` waits for either: no target says that
    if any(item.separator not in (None, "&&") for item in checks):
        return None
    if len(checks) > 1 and not forever:  # `until printf "." && nc -z HOST PORT`: the printf only prints
        checks = [item for item in checks if not _quiet(item.node, state)] or checks
    targets = []
    for item in checks:
        found = check(item.node, state, comments)
        if found is None or found[1] != wanted:
            return None
        targets.append(found[0])
    comments.append(UNBOUNDED)
    return WaitPart(targets, comments=comments)


UNBOUNDED = ("the loop had no bound; the step waits at most its timeout (the spec's default, 5m, unless it sets "
             "timeout:), then fails and Kubernetes restarts the pod as it restarted the initContainer")
"""Said of a wait that replaced a loop without end: the deadline the script did not have."""


# -- files --------------------------------------------------------------------------------------------------------

_MODE = re.compile(r"^[0-7]{3,4}$")
_OWNER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$")


def _owner(value: str) -> str | None:
    if "${" in value:
        return value if re.fullmatch(r"[^:\s]+(:[^:\s]+)?", value) else None
    return value if _OWNER.match(value) else None


def _mode(value: str) -> str | None:
    return (value if len(value) == 4 else "0" + value) if _MODE.match(value) else None


def _files(program: str, args: list[str], state: State, text: str) -> FilesPart | None:
    if program == "mkdir":
        parsed = options(args, short_flags="pv", short_valued="m", long_flags=("parents", "verbose"),
                         long_valued=("mode",))
        if parsed is None or not parsed[1]:
            return None
        opts, paths = parsed
        mode = _last(opts, "m", "mode")
        if mode is not None and _mode(mode) is None:
            return None
        resolved = [_path(p, state) for p in paths]
        if any(p is None for p in resolved):
            return None
        return FilesPart([FileOp(p, True, _mode(mode) if mode else None, command=text) for p in resolved if p])
    if program in ("chmod", "chown"):
        parsed = options(args, short_flags="Rvfch", long_flags=("recursive", "verbose", "silent", "quiet",
                                                                "changes", "no-dereference"))
        if parsed is None or len(parsed[1]) < 2:
            return None
        opts, (what, *paths) = parsed
        recursive = "R" in opts or "recursive" in opts
        value = _mode(what) if program == "chmod" else _owner(what)
        resolved = [_path(p, state) for p in paths]
        if value is None or any(p is None for p in resolved):
            return None
        ops = [FileOp(p, True if recursive else None, mode=value if program == "chmod" else None,
                      owner=value if program == "chown" else None, recursive=recursive, command=text)
               for p in resolved if p]
        return FilesPart(ops)
    if program == "touch":
        touched = [_path(a, state) for a in args]
        if not args or any(a.startswith("-") for a in args) or any(p is None for p in touched):
            return None
        return FilesPart([FileOp(p, False, command=text) for p in touched if p])
    return None


def _echo_file(values: list[str], target: str) -> FilesPart | None:
    args = values[1:]
    newline = "\n"
    if args and args[0] == "-n":
        args, newline = args[1:], ""
    if any(a.startswith("-") for a in args[:1]) or any("\\" in a for a in args):
        return None
    return FilesPart([FileOp(target, False, content=" ".join(args) + newline, command=f"echo ... > {target}")])


# -- downloads, git, vault, migrations ----------------------------------------------------------------------------

_PARSED_SUFFIXES = (".yaml", ".yml", ".json", ".toml", ".env")


def _download(program: str, args: list[str], redirect: str | None, state: State) -> ConfigPart | None:
    """``wget -O FILE URL``, ``curl -fsSL -o FILE URL``, ``curl URL > FILE``: a config step, when the file is a
    document the step can parse and check (by its suffix or the URL's)."""
    comments: list[str] = []
    if program == "curl":
        parsed = options(args, **_CURL)  # type: ignore[arg-type]
        if parsed is None:
            return None
        opts, positional = parsed
        dest = _last(opts, "o", "output") or redirect
        method = _last(opts, "X", "request")
        if (method or "GET").upper() != "GET" or {"I", "head", "w", "write-out"} & set(opts):
            return None
        headers = _headers(opts.get("H", []) + opts.get("header", []), state)
        insecure, ca_cert = "k" in opts or "insecure" in opts, _last(opts, "cacert")
        follow = "L" in opts or "location" in opts
        if not ({"f", "fail", "fail-with-body"} & set(opts)):
            comments.append("curl without --fail wrote error pages too; the config step fails on a 4xx")
    else:
        parsed = options(["--no-verbose" if a == "-nv" else a for a in args], **_WGET)  # type: ignore[arg-type]
        if parsed is None:
            return None
        opts, positional = parsed
        dest = _last(opts, "O", "output-document")
        dest = redirect if dest == "-" else dest
        if "spider" in opts:
            return None
        headers = _headers(opts.get("header", []), state)
        insecure, ca_cert = "no-check-certificate" in opts, _last(opts, "ca-certificate")
        follow = True
    if len(positional) != 1 or dest is None or headers is None or (redirect and dest != redirect):
        return None
    url = _url(positional[0])
    path = _path(dest, state)
    if url is None or path is None or path == "/dev/null":
        return None
    plain = url.split("?", 1)[0].lower()
    if not (path.lower().endswith(_PARSED_SUFFIXES) or plain.endswith(_PARSED_SUFFIXES)):
        return None  # a binary, a script, a .properties file: not a document the config step can check
    body: dict[str, Any] = {"url": _url_password(url, state, "CONFIG_PASSWORD"), "dest": path}
    if not _https_options(body, headers, insecure, ca_cert, state):
        return None
    if follow and program == "curl":
        body["follow_redirects"] = True
    comments.append("the document is parsed (by its type or suffix) before it replaces the file")
    return ConfigPart(body, comments=comments)


def _git(args: list[str], state: State) -> GitPart | GitRefPart | None:
    directory: str | None = None
    if len(args) >= 2 and args[0] == "-C":
        directory, args = _path(args[1], state), args[2:]
        if directory is None:
            return None
    if not args:
        return None
    if args[0] == "checkout" and len(args) == 2 and not args[1].startswith("-"):
        where = directory or state.cwd
        if where in state.git_dests:
            return GitRefPart(where, args[1])
        return None
    if args[0] != "clone" or directory is not None:
        return None
    parsed = options(args[1:], short_flags="q", short_valued="b",
                     long_flags=("quiet", "single-branch", "recursive", "recurse-submodules", "no-tags",
                                 "progress"),
                     long_valued=("depth", "branch"))
    if parsed is None or len(parsed[1]) not in (1, 2):
        return None
    opts, positional = parsed
    url = positional[0]
    if not url.startswith(("https://", "http://", "file://")):
        return None  # ssh remotes need a key and known hosts the container had in ways not seen here
    comments: list[str] = []
    body: dict[str, Any] = {}
    match = re.match(r"^(https?://)([^/@]+)@(.*)$", url)
    if match:
        user, sep, password = match.group(2).partition(":")
        url = match.group(1) + match.group(3)
        if sep:
            username = user if "${" in user else "${GIT_USERNAME:-" + user + "}"
            body["username"] = username
            body["password"] = state.vars.secret(password, "GIT_TOKEN")
        else:
            body["password"] = state.vars.secret(user, "GIT_TOKEN")
        comments.append("the credentials of the URL are the git step's username and password: passed to git "
                        "through its environment, never its command line; put the token in a Secret")
    if len(positional) == 2:
        dest = _path(positional[1], state)
    else:
        base = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
        dest = _path(base, state) if base else None
    if dest is None:
        return None
    out: dict[str, Any] = {"repo": url, "ref": _last(opts, "b", "branch") or "HEAD", "dest": dest}
    depth = _last(opts, "depth")
    if depth is not None:
        if not depth.isdigit():
            return None
        out["depth"] = int(depth)
    out.update(body)
    if "recursive" in opts or "recurse-submodules" in opts:
        out["submodules"] = True
    state.git_dests.append(dest)
    return GitPart(out, comments=comments)


_VAULT_VALUED = ("field", "mount", "format", "address", "namespace", "ca-cert", "method", "path")
_VAULT_FLAGS = ("tls-skip-verify", "no-print", "non-interactive")


def _vault_options(args: list[str]) -> tuple[dict[str, str], list[str]] | None:
    opts: dict[str, str] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and len(arg) > 1:
            name, eq, value = arg.lstrip("-").partition("=")
            if name in _VAULT_FLAGS and not eq:
                opts[name] = "true"
            elif name in _VAULT_VALUED:
                if not eq:
                    i += 1
                    if i >= len(args):
                        return None
                    value = args[i]
                opts[name] = value
            else:
                return None
        else:
            positional.append(arg)
        i += 1
    return opts, positional


_VAULT_WRITE_LOGIN = re.compile(r"""^\s*(?:export\s+)?VAULT_TOKEN=["']?\$\(\s*vault\s+write\s+(?:-field[= ]token\s+)?"""
                                r"""auth/([\w.-]+)/login\s+role=["']?([\w.-]+)["']?\s+jwt=""")


def _vault(simple: Simple, args: list[str], redirect: str | None, state: State) -> Part | None:
    if args[:1] == ["login"]:
        parsed = _vault_options(args[1:])
        if parsed is None:
            return None
        opts, positional = parsed
        roles = [p.split("=", 1)[1] for p in positional if p.startswith("role=")]
        if opts.get("method") != "kubernetes" or len(roles) != 1 or len(positional) != 1:
            return None
        auth: dict[str, Any] = {"role": roles[0]}
        if opts.get("path", "kubernetes") != "kubernetes":
            auth["mount"] = opts["path"]
        return VaultLoginPart({"kubernetes": auth})
    if args[:2] == ["kv", "get"]:
        parsed = _vault_options(args[2:])
        kv = True
    elif args[:1] == ["read"]:
        parsed = _vault_options(args[1:])
        kv = False
    else:
        return None
    if parsed is None or redirect is None:
        return None
    opts, positional = parsed
    if len(positional) != 1 or "field" not in opts or opts.get("format", "table") not in ("table",):
        return None
    path = positional[0].strip("/")
    comments = []
    if kv:
        mount = opts.get("mount")
        if mount is None:
            mount, _, rest = path.partition("/")
        else:
            rest = path
        if not rest:
            return None
        path = f"{mount.strip('/')}/data/{rest}"
        comments.append("vault kv get read a KV version 2 mount here (for version 1, the path has no /data/)")
    settings: dict[str, Any] = {}
    assigned = {w.text.split("=", 1)[0]: w for w in simple.assignments}
    if "address" in opts:
        settings["address"] = opts["address"]
    elif "VAULT_ADDR" in assigned:
        value = state.vars.value(Word(assigned["VAULT_ADDR"].text.split("=", 1)[1], "",
                                      assigned["VAULT_ADDR"].params))
        if value is None:
            return None
        settings["address"] = value
    if set(assigned) - {"VAULT_ADDR"}:
        return None
    if "namespace" in opts:
        settings["namespace"] = opts["namespace"]
    if "tls-skip-verify" in opts:
        settings["insecure"] = True
    if "ca-cert" in opts:
        settings["ca_cert"] = opts["ca-cert"]
    return VaultReadPart(path, opts["field"], redirect, settings, kv=kv, comments=comments)


MIGRATION_TOOLS = (
    ("python", "manage.py", "migrate"), ("python3", "manage.py", "migrate"), ("./manage.py", "migrate"),
    ("django-admin", "migrate"), ("alembic", "upgrade"), ("flask", "db", "upgrade"),
    ("npx", "prisma", "migrate", "deploy"), ("prisma", "migrate", "deploy"), ("rails", "db:migrate"),
    ("bin/rails", "db:migrate"), ("bundle", "exec", "rails", "db:migrate"), ("bundle", "exec", "rake", "db:migrate"),
    ("rake", "db:migrate"), ("npx", "sequelize-cli", "db:migrate"), ("npx", "knex", "migrate:latest"))
"""Migration tools the migrate step runs once per version under PostgreSQL's advisory lock (racing replicas
run it once), when the container's env names a PostgreSQL database."""
_DSN_NAMES = re.compile(r"^(DATABASE_URL|DB_URL|DATABASE_URI|DB_URI|DATABASE_DSN|DB_DSN|SQLALCHEMY_DATABASE_URI|"
                        r"(POSTGRES|POSTGRESQL|PG)_?(URL|URI|DSN))$")


def _database(state: State) -> str | None:
    for name, var in state.vars.vars.items():
        if not _DSN_NAMES.match(name):
            continue
        literal = var.value if var.origin == "literal" else None
        postgres_name = bool(re.match(r"^(POSTGRES|PG)", name))
        if literal is not None and literal.startswith(("postgres://", "postgresql://")):
            return state.vars.ref(name)
        if var.origin == "credential" and any(v == name and k.startswith(("postgres://", "postgresql://"))
                                              for k, v in state.vars.space.credentials.items()):
            return state.vars.ref(name)
        if postgres_name and var.origin in ("secret", "configmap", "credential"):
            return state.vars.ref(name)
    return None


def image_version(image: str) -> str | None:
    """``registry/app:1.4.2`` -> ``1.4.2``; None for no tag or ``latest``."""
    name = image.split("@", 1)[0]
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else None
    return tag if tag and tag != "latest" else None


def _migrate(values: list[str], state: State) -> MigratePart | None:
    words = values
    if not any(tuple(words[:len(tool)]) == tool for tool in MIGRATION_TOOLS):
        return None
    database = _database(state)
    if database is None:
        return None
    version = image_version(state.container.image)
    comments = ["the migrate step runs the tool once per version, under a PostgreSQL advisory lock (racing "
                "replicas wait), and records it in its history table",
                f"it runs in the init image (it ran in {state.container.image}): the tool and the files it reads "
                "must be there"]
    if version is None:
        state.vars.space.need("APP_VERSION", "the migration set's version (the image had no version tag)")
        version = "${APP_VERSION}"
    else:
        comments.append(f"version: the image's tag ({state.container.image}); change it with each release")
    body: dict[str, Any] = {"database": database, "command": list(words), "version": version}
    if state.cwd:
        body["cwd"] = state.cwd
    env = state.vars.command_env()
    if env:
        body["env"] = env
    return MigratePart(body, comments=comments)


# -- one item -----------------------------------------------------------------------------------------------------

_NOISE = {"echo", "printf", "true", ":", "date", "ls", "id", "whoami", "pwd", "hostname", "uname", "env", "cat"}


def _set(values: list[str]) -> bool | None:
    """``set -e``, ``set -ex``, ``set -o errexit -o pipefail``: whether it turns errexit on; None for anything
    that is more than options (``set +e``, positional parameters)."""
    errexit, args = False, values[1:]
    while args:
        arg = args.pop(0)
        if arg == "-o" and args:
            errexit = errexit or args.pop(0) == "errexit"
        elif re.fullmatch(r"-[a-zA-Z]+", arg):
            errexit = errexit or "e" in arg
        else:
            return None
    return errexit


def recognise(item: Item, state: State) -> Part | None:
    """What one top-level item of a script is, or None."""
    node = item.node
    if isinstance(node, Loop):
        return wait_loop(node, state)
    if not isinstance(node, Simple) or node.negated:
        return None
    login = _VAULT_WRITE_LOGIN.match(" ".join(w.raw for w in [*node.assignments, *node.words]))
    if login and (not node.words or node.words[0].text == "export") and len(node.assignments + node.words) <= 2:
        auth: dict[str, Any] = {"role": login.group(2)}
        if login.group(1) != "kubernetes":
            auth["mount"] = login.group(1)
        return VaultLoginPart({"kubernetes": auth})
    if not node.words:
        return None
    ok, redirect = _file_redirect(node, state)
    values = _values(node, state)
    if not ok or values is None:
        return None
    program, args = values[0].rsplit("/", 1)[-1] if values[0].startswith("/") else values[0], values[1:]
    if node.assignments and program not in ("vault",):
        return None
    text = " ".join(w.raw for w in node.words)
    if program == "set":
        errexit = _set(values)
        return None if errexit is None or redirect else NoisePart(errexit=errexit)
    if program == "cd" and len(args) == 1 and redirect is None:
        path = _path(args[0], state)
        if path is None:
            return None
        state.cwd = path
        return CdPart(path)
    if program == "exit" and args in ([], ["0"]):
        return NoisePart()
    if program == "sleep" and redirect is None and len(args) == 1:
        return NoisePart(comments=[f"dropped: sleep {args[0]} (a pause between steps)"])
    if program == "echo" and redirect is not None:
        return _echo_file(values, redirect)
    if program in _NOISE and redirect is None and (program != "cat" or len(args) == 1) and (
            program != "env" or not args):
        return NoisePart()
    if program in ("mkdir", "chmod", "chown", "touch") and redirect is None:
        return _files(program, args, state, text)
    if program in ("curl", "wget"):
        return _download(program, args, redirect, state)
    if program == "git" and redirect is None:
        return _git(args, state)
    if program == "vault":
        return _vault(node, args, redirect, state)
    if program == "dockerize" and redirect is None:
        return _dockerize(args)
    if redirect is None:
        return _migrate(values, state)
    return None


def _dockerize(args: list[str]) -> WaitPart | None:
    """``dockerize -wait tcp://HOST:PORT [-wait ...] [-timeout 120s] [-wait-retry-interval 5s]`` with no command
    after it: a tcp wait on each, the timeout the step's. Anything else (an http, file or unix wait, a command to
    run, another option) is no wait step."""
    targets: list[dict[str, Any]] = []
    timeout: str | None = "10s"  # dockerize's own default
    rest = list(args)
    while rest:
        flag = rest.pop(0).lstrip("-")
        if flag in ("wait", "timeout", "wait-retry-interval") and not rest:
            return None
        if flag == "wait":
            match = re.match(r"^tcp://(?P<host>[^:/]+):(?P<port>\d+|\$\{[A-Za-z_][A-Za-z0-9_]*\})$", rest.pop(0))
            target = _host_port(match["host"], match["port"]) if match else None
            if target is None:
                return None
            targets.append({"tcp": target})
        elif flag == "timeout":
            timeout = rest.pop(0)
            if not re.fullmatch(r"\d+(ms|s|m|h)", timeout):
                return None
        elif flag == "wait-retry-interval":
            rest.pop(0)
        else:
            return None
    if not targets:
        return None
    return WaitPart(targets, timeout=timeout, comments=[f"dockerize waited at most {timeout}: the step's timeout"])


def describe_unrecognised(node: Node, script: str) -> str:
    """Why an item stays a command, in a few words."""
    from prefect_init.importer.shell import Other

    if isinstance(node, Other):
        return node.why
    if isinstance(node, Pipeline):
        return "a pipeline (" + " | ".join(_program(c) for c in node.commands) + ")"
    if isinstance(node, Loop):
        return f"an {node.kind} loop that is no plain wait" if node.kind == "until" else \
            "a while loop that is no plain wait"
    if isinstance(node, Simple) and node.words:
        program = _program(node)
        return f"{program}: {_WHY.get(program, 'no typed step runs it')}"
    return "no typed step for it"


_WHY = {
    "curl": "neither polled in a wait loop nor a download of a document the config step can parse (.yaml, .json, "
            ".toml, .env)",
    "chmod": "a symbolic mode or a glob (the files step takes octal modes and paths)",
    "chown": "an owner or a path the files step cannot take",
    "mkdir": "a path the files step cannot take",
    "git": "an ssh remote, a relative path or an option the git step does not have",
    "vault": "not a `vault kv get -field=F PATH > FILE` after a Kubernetes login",
    "cp": "a copy (the files step creates, it does not copy)",
    "rm": "a removal (no step removes files)",
}
_WHY["wget"] = _WHY["curl"]


__all__ = ["CdPart", "ConfigPart", "FileOp", "FilesPart", "GitPart", "GitRefPart", "MigratePart", "NoisePart", "Part",
           "Redirect", "State", "VaultLoginPart", "VaultReadPart", "WaitPart", "check", "describe_unrecognised",
           "image_version", "recognise", "wait_loop"]
