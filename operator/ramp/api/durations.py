"""Duration strings like ``30s``, ``2m``, ``1h30m``, ``500ms``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
"""Durations like ``30s``, ``2m``, ``1h30m``, ``500ms`` (also the CRD's pattern)."""

MAX_DURATION = "8760h"
"""The longest duration any field accepts (a year): the CRD refuses longer ones (CEL
``duration(self) <= duration('8760h')``), and the planner, for objects stored before that
rule, reports them as an invalid spec instead of overflowing a date."""
MAX_SECONDS = 8760 * 3600.0

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
    >>> parse_duration("99999999999h")
    Traceback (most recent call last):
    ...
    ValueError: '99999999999h' is longer than 8760h (a year), the longest duration accepted
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
    if not seconds <= MAX_SECONDS:  # (also inf and nan)
        raise ValueError(
            f"{text!r} is longer than {MAX_DURATION} (a year), the longest duration accepted"
        )
    return timedelta(seconds=seconds)


def duration_rule() -> dict[str, Any]:
    """The CRD rule bounding a duration field (``x-kubernetes-validations``)."""
    return {
        "x-kubernetes-validations": [
            {
                "rule": f"duration(self) <= duration('{MAX_DURATION}')",
                "message": f"must be at most {MAX_DURATION} (a year)",
            }
        ]
    }
