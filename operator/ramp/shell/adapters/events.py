"""Events correlated and rate-limited per Rollout, like client-go's ``EventCorrelator``.

A condition that alternates Pass and Error would otherwise post an Event each time: an API
write per flip, per metric, per Rollout, for as long as the analysis runs. Before the
operator posts an Event, :meth:`EventCorrelator.observe` decides what to write:

* **dedupe**: the same type, reason and message on the same Rollout within
  :data:`WINDOW` updates the existing Event (``count`` + 1, ``lastTimestamp``) instead of
  creating one;
* **aggregate**: from the :data:`SIMILAR`-th distinct message of the same type and reason
  on a Rollout within the window, the messages are combined into one Event
  (``(combined from similar events): <latest message>``), counted like a duplicate;
* **spam filter**: each Rollout has a token bucket (:data:`BURST` writes, one more every
  :data:`REFILL` seconds); a write without a token is dropped (counted, and logged once a
  minute). Aborts and rollbacks (:data:`ALWAYS`) always pass: their notification and their
  record matter most, and a Rollout aborts at most once per revision.

client-go uses the same three steps (10 similar, 10 minutes, a burst of 25); its refill is
one write every 5 minutes, ours one every 10 s, since a progressive rollout legitimately
reports more than a Pod does. Nothing here talks to the API server: the caller writes.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

WINDOW = 600.0
"""Seconds within which a repeated or similar Event is folded into an earlier one."""
SIMILAR = 10
"""Distinct messages of one type and reason on one Rollout before they are combined."""
BURST = 25
"""Event writes (creates and count updates) a Rollout may make at once."""
REFILL = 10.0
"""Seconds per further write once the burst is spent (6 a minute)."""
ALWAYS = frozenset({"Aborted", "RolledBack"})
"""Reasons never dropped by the spam filter."""
MAX_OBJECTS = 4096
"""Rollouts whose history is kept (least recently seen forgotten first)."""
COMBINED = "(combined from similar events): "

ObjectKey = tuple[str, str, str]
"""namespace, name, uid of the Rollout."""


class Action(StrEnum):
    """What the caller writes for an observed Event."""

    CREATE = "create"
    """A new Event object, named ``Decision.name``."""
    UPDATE = "update"
    """Patch Event ``Decision.name``: ``count``, ``lastTimestamp``, ``message``."""
    DROP = "drop"
    """Write nothing: the Rollout's budget of Event writes is spent."""


@dataclass(frozen=True)
class Decision:
    action: Action
    name: str
    message: str
    count: int


@dataclass
class _Seen:
    name: str
    count: int
    first: float
    last: float


@dataclass
class _Object:
    tokens: float
    refilled: float
    seen: dict[tuple[str, str, str], _Seen] = field(default_factory=dict)
    messages: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    dropped: int = 0


class EventCorrelator:
    """Per-Rollout dedupe, aggregation and spam filter (thread-safe; clock injectable)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        burst: int = BURST,
        refill: float = REFILL,
        similar: int = SIMILAR,
        window: float = WINDOW,
        max_objects: int = MAX_OBJECTS,
    ) -> None:
        self.clock = clock
        self.burst = burst
        self.refill = refill
        self.similar = similar
        self.window = window
        self.max_objects = max_objects
        self.objects: OrderedDict[ObjectKey, _Object] = OrderedDict()
        self.dropped = 0
        self.lock = threading.Lock()

    def observe(
        self, key: ObjectKey, type_: str, reason: str, message: str, new_name: Callable[[], str]
    ) -> Decision:
        """Decide the write for an Event; ``new_name()`` names an Event to create."""
        with self.lock:
            now = self.clock()
            obj = self._object(key, now)
            combined = self._aggregate(obj, type_, reason, message, now)
            message = COMBINED + message if combined else message
            identity = (type_, reason, COMBINED if combined else message)
            seen = obj.seen.get(identity)
            if seen is not None and now - seen.last > self.window:
                seen = None
            if not self._take(obj, now) and reason not in ALWAYS:
                obj.dropped += 1
                self.dropped += 1
                return Decision(Action.DROP, seen.name if seen else "", message, 0)
            if seen is None:
                seen = _Seen(new_name(), 1, now, now)
                obj.seen[identity] = seen
                action = Action.CREATE
            else:
                seen.count += 1
                seen.last = now
                action = Action.UPDATE
            return Decision(action, seen.name, message, seen.count)

    def forget(self, name: str) -> None:
        """An Event the API server no longer has (deleted, expired): create it anew."""
        with self.lock:
            for obj in self.objects.values():
                for identity, seen in list(obj.seen.items()):
                    if seen.name == name:
                        del obj.seen[identity]

    # -- steps --------------------------------------------------------------------------

    def _object(self, key: ObjectKey, now: float) -> _Object:
        obj = self.objects.get(key)
        if obj is None:
            obj = _Object(tokens=float(self.burst), refilled=now)
            self.objects[key] = obj
            while len(self.objects) > self.max_objects:
                self.objects.popitem(last=False)
        else:
            self.objects.move_to_end(key)
        for identity, seen in list(obj.seen.items()):
            if now - seen.last > self.window:
                del obj.seen[identity]
        return obj

    def _aggregate(self, obj: _Object, type_: str, reason: str, message: str, now: float) -> bool:
        """Whether the Event joins its type and reason's combined Event (the SIMILAR-th
        distinct message within the window); keeps at most SIMILAR messages."""
        messages = obj.messages.setdefault((type_, reason), {})
        for old, at in list(messages.items()):
            if now - at > self.window:
                del messages[old]
        messages.pop(message, None)
        messages[message] = now
        while len(messages) > self.similar:
            del messages[next(iter(messages))]
        return len(messages) >= self.similar

    def _take(self, obj: _Object, now: float) -> bool:
        if self.refill > 0:
            obj.tokens = min(float(self.burst), obj.tokens + (now - obj.refilled) / self.refill)
        obj.refilled = now
        if obj.tokens >= 1.0:
            obj.tokens -= 1.0
            return True
        return False


__all__ = [
    "ALWAYS",
    "BURST",
    "REFILL",
    "SIMILAR",
    "WINDOW",
    "Action",
    "Decision",
    "EventCorrelator",
]
