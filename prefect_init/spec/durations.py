"""Durations as the spec writes them: ``250ms``, ``2s``, ``5m``, ``1h``, or a number of seconds."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_duration(value: object) -> float:
    """Return seconds for a duration; raise ValueError with a message fit for a spec error."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 250ms, 2s, 5m, 1h or a number of seconds")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError("expected a duration like 250ms, 2s, 5m, 1h or a number of seconds")
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


def format_duration(seconds: float) -> str:
    """Short human form: ``0.25s``, ``2s``, ``5m``, ``1h30m``."""
    if seconds < 60:
        return f"{seconds:g}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    out = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return out or "0s"


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: seconds as a float, parsed from the spec's duration forms."""
