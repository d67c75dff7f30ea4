"""An initContainer's script as a sequence of items: simple commands, pipelines, ``until``/``while`` loops, and
everything else (``if``, ``for``, ``case``, functions, subshells, heredocs) kept whole as "other".

bashlex (a port of bash's own parser) does the parsing: words after quote removal, with the parameter
expansions and command substitutions they hold, and each node's position in the script, so a part of the script
can be cut out exactly as written. A script bashlex cannot parse (arithmetic ``$((...))``, ``case``) is left
whole: nothing of it is recognised.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import bashlex
import bashlex.errors

SHELLS = {"sh", "bash", "ash", "dash", "zsh", "ksh"}
BUILTINS = frozenset({
    ".", ":", "[", "[[", "alias", "bg", "break", "builtin", "cd", "command", "continue", "declare", "echo", "eval",
    "exec", "exit", "export", "false", "fg", "getopts", "hash", "jobs", "kill", "let", "local", "printf", "pwd",
    "read", "readonly", "return", "set", "shift", "source", "test", "times", "trap", "true", "type", "typeset",
    "ulimit", "umask", "unalias", "unset", "wait"})
"""Shell builtins (POSIX sh, bash, busybox ash): not programs an image must have."""
WRAPPERS = {"exec", "command", "xargs", "timeout", "env", "nice", "nohup", "stdbuf", "su-exec", "gosu", "time"}
"""Programs that run another: the program after their options is needed too (``find ... | xargs chown``)."""


@dataclass
class Word:
    text: str
    """After quote removal, expansions as written (``${DB_HOST:-db}``)."""
    raw: str
    """As written in the script (quotes included)."""
    params: list[str] = field(default_factory=list)
    """The parameter expansions it holds, as bashlex reads them (``DB_HOST:-db``)."""
    substitutions: list[str] = field(default_factory=list)
    """Its command substitutions as written (``$(cat /var/run/...)``)."""
    other: bool = False
    """A tilde, arithmetic or process substitution: never recognised."""


@dataclass
class Redirect:
    op: str
    target: Word | None
    fd: int | None = None


@dataclass
class Simple:
    words: list[Word]
    assignments: list[Word]
    redirects: list[Redirect]
    start: int
    end: int
    negated: bool = False
    heredoc: bool = False

    @property
    def argv(self) -> list[str]:
        return [w.text for w in self.words]


@dataclass
class Pipeline:
    commands: list[Simple]
    start: int
    end: int
    negated: bool = False


@dataclass
class Loop:
    kind: str
    """``until`` or ``while``."""
    condition: list[Item]
    body: list[Item]
    start: int
    end: int


@dataclass
class Other:
    start: int
    end: int
    why: str


Node = Simple | Pipeline | Loop | Other


@dataclass
class Item:
    node: Node
    separator: str | None
    """What joined it to the item before: ``;``, ``&&``, ``||``, ``&`` or a newline (``\\n``); None for the first."""


@dataclass
class Script:
    text: str
    items: list[Item]
    error: str | None = None
    """Why bashlex could not parse it (then ``items`` is empty)."""


def _word(node: Any, script: str) -> Word:
    start, end = node.pos
    word = Word(text=node.word, raw=script[start:end])
    for part in getattr(node, "parts", []) or []:
        if part.kind == "parameter":
            word.params.append(part.value)
        elif part.kind == "commandsubstitution":
            word.substitutions.append(script[part.pos[0]:part.pos[1]])
        else:
            word.other = True
    return word


def _simple(node: Any, script: str) -> Simple:
    words, assignments, redirects, heredoc = [], [], [], False
    for part in node.parts:
        if part.kind == "word":
            words.append(_word(part, script))
        elif part.kind == "assignment":
            assignments.append(_word(part, script))
        elif part.kind == "redirect":
            target = part.output if hasattr(part.output, "kind") else None
            if part.type in ("<<", "<<-") or getattr(part, "heredoc", None) is not None:
                heredoc = True
            redirects.append(Redirect(part.type, _word(target, script) if target is not None and
                                      target.kind == "word" else None,
                                      part.input if isinstance(getattr(part, "input", None), int) else None))
    return Simple(words, assignments, redirects, node.pos[0], node.pos[1], heredoc=heredoc)


def _items(node: Any, script: str) -> list[Item]:
    """A bashlex list (or a single node) as items with their separators."""
    if node.kind != "list":
        return [Item(_node(node, script), None)]
    out: list[Item] = []
    separator: str | None = None
    for part in node.parts:
        if part.kind == "operator":
            separator = part.op
            continue
        out.append(Item(_node(part, script), separator if out else None))
        separator = None
    if separator == "&":  # `cmd &`: the last item runs in the background
        out[-1] = Item(Other(out[-1].node.start, out[-1].node.end, "runs in the background (&)"), out[-1].separator)
    return out


def _reserved_parts(node: Any) -> tuple[list[Any], list[Any]]:
    parts = [p for p in node.parts if p.kind != "reservedword"]
    return parts[0], parts[1]


def _node(node: Any, script: str) -> Node:
    start, end = node.pos
    if node.kind == "command":
        simple = _simple(node, script)
        if simple.heredoc:
            return Other(start, end, "a heredoc")
        return simple
    if node.kind == "pipeline":
        negated = any(p.kind == "reservedword" and p.word == "!" for p in node.parts)
        commands = [p for p in node.parts if p.kind not in ("pipe", "reservedword")]
        if not all(c.kind == "command" for c in commands):
            return Other(start, end, "a pipeline of compound commands")
        simples = [_simple(c, script) for c in commands]
        if any(s.heredoc for s in simples):
            return Other(start, end, "a heredoc")
        if len(simples) == 1:
            simples[0].negated = negated
            return simples[0]
        return Pipeline(simples, start, end, negated)
    if node.kind == "compound":
        inner = [p for p in node.list if p.kind not in ("reservedword",)]
        if len(inner) == 1 and inner[0].kind in ("until", "while"):
            loop = inner[0]
            condition, body = _reserved_parts(loop)
            return Loop(loop.kind, _items(condition, script), _items(body, script), start, end)
        first = inner[0].kind if inner else "group"
        words = {"if": "an if block", "for": "a for loop", "case": "a case block"}
        return Other(start, end, words.get(first, "a compound command"))
    if node.kind == "function":
        return Other(start, end, "a function")
    return Other(start, end, f"a {node.kind}")


_SEPARATOR_NL = "\n"
_NEWLINE_BEFORE_DO = re.compile(r"(?<=[^;&|\s])([ \t]*)\n(?=[ \t]*do\b)")


def _for_bashlex(script: str) -> str:
    """bashlex refuses a loop's ``do`` on the line after its condition (``until nc -z db 5432`` NEWLINE ``do``),
    which sh takes: that newline is given to it as ``;``, the same length, so every position stays."""
    return _NEWLINE_BEFORE_DO.sub(lambda m: m.group(1) + ";", script)


def parse(script: str) -> Script:
    """The script's top-level items. Items on separate lines are joined by a newline separator."""
    if not script.strip() or all(not line.strip() or line.lstrip().startswith("#") for line in script.splitlines()):
        return Script(script, [], "an empty script")
    try:
        trees = bashlex.parse(_for_bashlex(script))
    except (bashlex.errors.ParsingError, NotImplementedError, AttributeError, IndexError, TypeError,
            ValueError, AssertionError, RecursionError) as exc:
        reason = str(exc).split("(position")[0].strip() or type(exc).__name__
        return Script(script, [], f"the shell parser refused it ({reason})")
    items: list[Item] = []
    for tree in trees:
        for index, item in enumerate(_items(tree, script)):
            if index == 0 and items:
                item.separator = _SEPARATOR_NL
            items.append(item)
    return Script(script, items)


def _walk(node: Any) -> Iterator[Any]:
    yield node
    for name in ("parts", "list"):
        for child in getattr(node, name, None) or []:
            if hasattr(child, "kind"):
                yield from _walk(child)
    for name in ("command", "output"):
        child = getattr(node, name, None)
        if hasattr(child, "kind"):
            yield from _walk(child)


def _program_of(words: list[str]) -> list[str]:
    """The program of a simple command's words, and the one a wrapper runs (``xargs -r chown`` -> xargs, chown)."""
    out: list[str] = []
    rest = list(words)
    while rest:
        program = rest.pop(0)
        out.append(program)
        if program.rsplit("/", 1)[-1] not in WRAPPERS:
            break
        while rest and (rest[0].startswith("-") or "=" in rest[0] or re.fullmatch(r"[0-9.]+[smhd]?", rest[0])):
            rest.pop(0)  # the wrapper's own options (and timeout's duration, env's VAR=value)
    return out


_RESERVED = {"if", "then", "else", "elif", "fi", "for", "while", "until", "do", "done", "case", "esac", "in",
             "function", "{", "}", "!", "select"}


def programs(script: str) -> tuple[list[str], bool]:
    """The programs a script runs (the first word of each simple command, and what ``xargs``, ``exec`` and the
    like run), once each, in order; and whether the script parsed (if not, a rougher reading: the first word of
    each line and of each part after ``;``, ``&&``, ``||``, ``|`` and ``$(``)."""
    found: list[str] = []
    try:
        trees = bashlex.parse(_for_bashlex(script))
    except Exception:
        trees = None
    if trees is not None:
        for tree in trees:
            for node in _walk(tree):
                if node.kind == "command":
                    words = [p.word for p in node.parts if p.kind == "word"]
                    for program in _program_of(words):
                        if program not in found:
                            found.append(program)
        return [p for p in found if _PROGRAM.match(p)], True
    for chunk in re.split(r"\n|;|&&|\|\||\||\$\(|`|\bthen\b|\bdo\b|\belse\b", script):
        words = re.findall(r"[^\s'\"()]+", chunk.split("#", 1)[0])
        words = [w for w in words if w not in _RESERVED and not re.match(r"[A-Za-z_][A-Za-z0-9_]*=", w)]
        if words and re.match(r"[A-Za-z0-9_./-]+$", words[0]):
            for program in _program_of(words):
                if program not in found:
                    found.append(program)
    return [p for p in found if _PROGRAM.match(p) and p not in BUILTINS], False


_PROGRAM = re.compile(r"^(?!\d+$)[A-Za-z0-9_./+-]+$")
"""A word that can name a program: not a number (``$((100 + $i))`` read roughly gives ``100``), no ``$``."""


def quote_state(script: str, index: int) -> str:
    """Whether ``script[index]`` is outside quotes (``""``), inside double quotes (``'"'``) or single quotes
    (``"'"``): only what is needed to write a variable reference in place of a literal there."""
    state, i = "", 0
    while i < index:
        char = script[i]
        if state == "'":
            state = "" if char == "'" else state
        elif char == "\\":
            i += 1
        elif state == '"':
            state = "" if char == '"' else state
        elif char in "'\"":
            state = char
        elif char == "#" and (i == 0 or script[i - 1] in " \t\n;&|("):
            newline = script.find("\n", i)
            i = index if newline < 0 or newline >= index else newline
            continue
        i += 1
    return state


def reference(name: str, state: str, next_char: str) -> str:
    """A shell reference to ``${name}`` that reads as one word wherever a literal stood (braced always: what
    ``deploy`` checks takes ``${`` for a reference, and a name character after it cannot extend the name)."""
    del next_char
    bare = "${" + name + "}"
    if state == "'":
        return f"'\"{bare}\"'"
    if state == '"':
        return bare
    return f'"{bare}"'
