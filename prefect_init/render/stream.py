"""The YAML a user hands to ``render --into`` and ``import`` (manifests, ``helm template`` output, compose files):
every document, or one line saying why not. A "billion laughs" file is refused before anything walks it."""

from __future__ import annotations

from typing import Any

import yaml

from prefect_init.runtime.documents import MAX_DOCUMENT_NODES, alias_expansion


class StreamProblem(ValueError):
    """The file is not YAML this can read: one line, with the file and the line."""


def load_all(text: str, source: str) -> list[Any]:
    """The documents of ``text`` (``source`` names it in a problem)."""
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        at = f":{mark.line + 1}" if mark is not None else ""
        raise StreamProblem(f"{source}{at}: not valid YAML ({exc.problem or 'a parse error'})") from None
    except yaml.YAMLError:
        raise StreamProblem(f"{source}: not valid YAML") from None
    except RecursionError:
        raise StreamProblem(f"{source}: refused: nested too deeply") from None
    try:
        alias_expansion(docs, MAX_DOCUMENT_NODES)
    except RecursionError:
        raise StreamProblem(f"{source}: refused: nested too deeply") from None
    except Exception as exc:  # the expansion's own refusal, in words
        raise StreamProblem(f"{source}: refused: {exc}") from None
    return docs
