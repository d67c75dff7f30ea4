"""``${VAR}`` and ``${VAR:-default}`` from the environment; ``$${`` writes a literal ``${``."""

from __future__ import annotations

import re
from collections.abc import Mapping

_TOKEN = re.compile(r"\$\$\{|\$\{steps\.[a-z0-9-]+\.[A-Za-z_][A-Za-z0-9_]*\}|"
                    r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{[^}]*\}?")
OUTPUT_REF = re.compile(r"\$\{steps\.([a-z0-9-]+)\.([A-Za-z_][A-Za-z0-9_]*)\}")
"""``${steps.STEP.KEY}``: an output of an earlier step, expanded when the reading step starts."""


class UnsetVariable(ValueError):
    """A ``${VAR}`` without a default names a variable that is not set."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"environment variable {name} is not set (write ${{{name}:-default}} for a default)")


class BadReference(ValueError):
    """``${...}`` that is not a variable reference."""


def expand(text: str, env: Mapping[str, str]) -> str:
    """Replace every reference in ``text``; raise :class:`UnsetVariable` or :class:`BadReference`."""
    if "$" not in text:
        return text

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        if token.startswith("${steps."):
            return token  # an output reference: left for the step's start
        name, default = match.group(1), match.group(2)
        if name is None:
            raise BadReference("malformed ${...} reference: expected ${NAME} or ${NAME:-default} ($${ for a literal)")
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise UnsetVariable(name)

    return _TOKEN.sub(replace, text)



def required_variables(text: str) -> list[str]:
    """The variables ``text`` reads without a default (``${X}``, not ``${X:-d}``), once each, in order of first
    use; what the place a spec runs must set (``render`` says which nothing provides)."""
    names: list[str] = []
    for match in _TOKEN.finditer(text):
        name = match.group(1)
        if name and match.group(2) is None and name not in names:
            names.append(name)
    return names


def referenced_variables(text: str) -> set[str]:
    """Every variable ``text`` reads, with a default or without."""
    return {match.group(1) for match in _TOKEN.finditer(text) if match.group(1)}
