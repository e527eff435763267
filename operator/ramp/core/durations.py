"""Duration strings like ``30s``, ``2m``, ``1h30m``, ``500ms``."""

from __future__ import annotations

import re
from datetime import timedelta

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
"""Durations like ``30s``, ``2m``, ``1h30m``, ``500ms`` (also the CRD's pattern)."""

_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """Parse a duration string.

    >>> parse_duration("1h30m")
    datetime.timedelta(seconds=5400)
    >>> parse_duration("2.5s")
    datetime.timedelta(seconds=2, microseconds=500000)
    >>> parse_duration("soon")
    Traceback (most recent call last):
    ...
    ValueError: 'soon' is not a duration (examples: 30s, 2m, 1h30m, 500ms)
    """
    pos = 0
    seconds = 0.0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        seconds += float(match.group(1)) * _UNIT[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise ValueError(f"{text!r} is not a duration (examples: 30s, 2m, 1h30m, 500ms)")
    return timedelta(seconds=seconds)
