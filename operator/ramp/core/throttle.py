"""When a status is written: a change of counts and wording only waits (pure).

A status that changes only in counts, the actual weight and wording is not written while
the Rollout progresses (the next transition, a step, an abort or the promotion, carries
the counts of its moment); otherwise it waits until :data:`STATUS_THROTTLE` seconds have
passed since this process last wrote the Rollout's status. The shell gives the age of
its last write (None: none it remembers) and carries out what :func:`status_write`
decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STATUS_THROTTLE = 3.0
"""Seconds between status writes that only update counts and wording."""

_VOLATILE = {
    "message",
    "replicas",
    "readyReplicas",
    "canaryReplicas",
    "canaryReadyReplicas",
    "stableReplicas",
    "stableReadyReplicas",
}


@dataclass(frozen=True)
class StatusWrite:
    """Whether to write the new status now; if not, when to look again (None: at the
    plan's own time)."""

    write: bool
    wait: float | None = None


def status_write(
    old: Mapping[str, Any], new: Mapping[str, Any], written_ago: float | None
) -> StatusWrite:
    """Write ``new`` over ``old`` now? ``written_ago``: seconds since this process last
    wrote this Rollout's status (None: not that it remembers)."""
    if old == new:
        return StatusWrite(False)
    if volatile_only(old, new):
        if new.get("phase") == "Progressing":
            return StatusWrite(False)  # a transition is coming (a step, an abort, ...)
        if written_ago is not None and written_ago < STATUS_THROTTLE:
            return StatusWrite(False, STATUS_THROTTLE - written_ago)
    return StatusWrite(True)


def _significant(status: Mapping[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in status.items() if k not in _VOLATILE}
    view["weights"] = (status.get("weights") or {}).get("desired")
    view["conditions"] = [
        (c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or []
    ]
    return view


def volatile_only(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """True when two statuses differ only in counts, actual weight and wording."""
    return old != new and _significant(old) == _significant(new)


def why(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """What a status write changes (for the benchmark's breakdown): "counts" (at rest,
    throttled), "progress" (progressedAt only) or "transition" (more)."""
    if volatile_only(old, new):
        return "counts"
    a, b = _significant(old), _significant(new)
    a.pop("progressedAt", None)
    b.pop("progressedAt", None)
    return "progress" if a == b else "transition"


__all__ = ["STATUS_THROTTLE", "StatusWrite", "status_write", "volatile_only", "why"]
