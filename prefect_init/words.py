"""Words in the right number: ``1 step``, ``2 steps``, ``1 attempt``. The one helper every message uses."""

from __future__ import annotations

_IRREGULAR = {"entry": "entries", "directory": "directories", "dependency": "dependencies", "was": "were",
              "is": "are", "has": "have", "this": "these", "process": "processes", "match": "matches"}


def plural(count: int, word: str, many: str | None = None) -> str:
    """``plural(1, "step")`` is ``1 step``; ``plural(2, "step")`` is ``2 steps``; ``many`` overrides the plural."""
    if count == 1:
        return f"{count} {word}"
    return f"{count} {many or _IRREGULAR.get(word) or word + 's'}"
