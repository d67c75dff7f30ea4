"""A user's YAML document changed in place: what render changes is new, everything else comes back as written.

``render --into`` changes one document of a file teams keep in git. Re-dumping it whole (PyYAML) loses its
comments, flow styles (``{app: web}``), quotes and indentation: a diff to review line by line. Here the document
is loaded with ruamel.yaml's round-trip loader, only the values that differ between the document as read and as
changed are replaced, and it is dumped with the indentation it was written with. Unchanged values, their
comments and their styles stay as they were.
"""

from __future__ import annotations

import io
import itertools
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq


def _split_head(raw: str) -> tuple[str, str]:
    """(the lines before the document's content: blank lines, comments, directives, ``---``; the rest)."""
    lines = raw.splitlines(keepends=True)
    for number, line in enumerate(lines):
        text = line.strip()
        if text and not text.startswith("#") and not text.startswith("%") and text != "---":
            return "".join(lines[:number]), "".join(lines[number:])  # ``--- {a: b}`` stays with its content
    return raw, ""


def guess_indent(text: str) -> tuple[int, int, int]:
    """(mapping, sequence, offset) as ruamel.yaml's ``indent()`` takes them, read off the first nested mapping
    and the first nested block sequence of ``text`` (2, 2, 0 where there is none). ``key:`` then ``  - a``
    is an offset of 2 and a sequence indent of 4."""
    mapping = sequence = offset = None
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    for parent, child in itertools.pairwise(lines):
        if not parent.rstrip().endswith(":"):
            continue
        base = len(parent) - len(parent.lstrip()) + (2 if parent.lstrip().startswith("- ") else 0)
        column = len(child) - len(child.lstrip())
        if column <= base and not child.lstrip().startswith("- "):
            continue
        if child.lstrip().startswith("- "):
            if sequence is None:
                offset = column - base
                rest = child.lstrip()[1:]
                sequence = offset + 1 + len(rest) - len(rest.lstrip())
        elif mapping is None:
            mapping = column - base
        if mapping is not None and sequence is not None:
            break
    mapping = mapping or 2
    if sequence is None:
        return mapping, mapping, 0
    return mapping, max(sequence, (offset or 0) + 2), offset or 0


def _same_item(old: Any, new: Any) -> bool:
    """Two list items that are the same thing: equal, or mappings with the same ``name`` (a container, a
    volume, a mount, a variable)."""
    if old == new:
        return True
    return isinstance(old, dict) and isinstance(new, dict) and "name" in old and old.get("name") == new.get("name")


def _merge(node: Any, old: Any, new: Any) -> Any:
    """``node`` (ruamel's, as read) made equal to ``new``, touching only what differs from ``old``."""
    if old == new:
        return node
    if isinstance(node, CommentedMap) and isinstance(old, dict) and isinstance(new, dict):
        for key in [k for k in node if k not in new]:
            del node[key]
        for key, value in new.items():
            if key in node and key in old:
                node[key] = _merge(node[key], old[key], value)
            else:
                node[key] = _plain(value)
        return node
    if isinstance(node, CommentedSeq) and isinstance(old, list) and isinstance(new, list):
        used: set[int] = set()
        items = []
        for value in new:
            match = next((i for i, o in enumerate(old) if i not in used and o == value), None)
            if match is None:
                match = next((i for i, o in enumerate(old) if i not in used and _same_item(o, value)), None)
            if match is None:
                items.append(_plain(value))
            else:
                used.add(match)
                items.append(_merge(node[match], old[match], value))
        if len(items) == len(node) and all(a is b for a, b in zip(items, node, strict=True)):
            return node
        if len(items) != len(node):  # comments hang on positions: where the list's length changes, start afresh
            node.ca.items.clear()
        node[:] = items
        return node
    return _plain(new)


def _plain(value: Any) -> Any:
    """A new value as ruamel dumps it in block style (a plain dict would come out as a flow mapping)."""
    if isinstance(value, dict):
        out = CommentedMap()
        for key, item in value.items():
            out[key] = _plain(item)
        return out
    if isinstance(value, list):
        return CommentedSeq(_plain(item) for item in value)
    return value


def changed_document(raw: str, old: Any, new: Any) -> str:
    """The document ``raw`` (its text as written, parsed as ``old``) changed into ``new``; starts with ``---``."""
    head, body = _split_head(raw)
    mapping, sequence, offset = guess_indent(body)
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line the user wrote on one
    yaml.brace_single_entry_mapping_in_flow_sequence = True  # [{containerPort: 80}] stays as written
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    node = yaml.load(body)
    merged = _merge(node, old, new)
    out = io.StringIO()
    yaml.dump(merged, out)
    head = head.strip("\n")
    if not any(line.strip() == "---" for line in head.splitlines()) and not body.lstrip().startswith("--- "):
        head = "---\n" + head if head else "---"
    return (head + "\n" if head else "") + out.getvalue()
