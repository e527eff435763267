"""Where a reconcile's time goes: cheap monotonic timestamps, no locks on the hot path.

A :class:`StepTiming` follows one reconcile from the event that woke it: the wait in the
work queue, observe, plan and apply, and within observe and apply the wait for a thread
of the API pool and the time spent in API requests (:class:`ApiClock`). The controller
keeps these for reconciles that completed a step; the benchmark prints them.
"""

from __future__ import annotations

import contextvars
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ramp.shell.adapters.api_clock import ApiClock

T = TypeVar("T")

NEXT = {"observe": "plan", "plan": "apply", "apply": "done"}
PARTS = (
    "queue",
    "observe",
    "plan",
    "apply",
    "observe_pool",
    "observe_api",
    "apply_pool",
    "apply_api",
    "total",
)
"""The parts of a step's time (:meth:`StepTiming.parts`), in the order samples keep them."""


class Samples:
    """The last ``capacity`` samples of ``names`` (floats), in one array allocated up
    front: a long-running operator's memory does not grow as samples arrive (a deque of
    dicts of floats took about 5 MB at 10,000 samples, grown over the first hours)."""

    def __init__(self, capacity: int, names: Sequence[str] = ("value",)) -> None:
        self.names = tuple(names)
        self.capacity = capacity
        self._data = array("d", bytes(8 * capacity * len(self.names)))
        self._count = 0
        self._lock = threading.Lock()

    def append(self, values: Sequence[float]) -> None:
        width = len(self.names)
        with self._lock:
            at = (self._count % self.capacity) * width
            self._data[at : at + width] = array("d", values)
            self._count += 1

    def __len__(self) -> int:
        return min(self._count, self.capacity)

    def rows(self) -> list[tuple[float, ...]]:
        """The samples kept, oldest first."""
        width, n = len(self.names), len(self)
        first = self._count - n
        return [
            tuple(self._data[(i % self.capacity) * width : (i % self.capacity + 1) * width])
            for i in range(first, first + n)
        ]

    def dicts(self) -> list[dict[str, float]]:
        return [
            {k: round(v, 4) for k, v in zip(self.names, row, strict=True)} for row in self.rows()
        ]

    def values(self) -> list[float]:
        """The first column of every sample (a one-column series)."""
        return [row[0] for row in self.rows()]


class StepTiming:
    """The timestamps of one reconcile (phases: observe, plan, apply)."""

    def __init__(self, kicked: float | None, started: float) -> None:
        self.kicked = kicked
        self.started = started
        self._last = started
        self.phase = "observe"
        self.phases: dict[str, float] = {}
        self.pool: dict[str, float] = {"observe": 0.0, "apply": 0.0}
        self.api: dict[str, float] = {"observe": 0.0, "apply": 0.0}

    def mark(self, phase: str) -> None:
        """``phase`` ends now; the next one begins."""
        now = time.monotonic()
        self.phases[phase] = now - self._last
        self._last = now
        self.phase = NEXT.get(phase, "done")

    def timed(self, fn: Callable[..., T], clock: ApiClock) -> Callable[..., T]:
        """``fn`` for the thread pool, adding its wait for a thread and its API time."""
        submitted = time.monotonic()
        phase = self.phase

        def run(*args: Any) -> T:
            began = time.monotonic()
            api_before = clock.seconds()
            try:
                return fn(*args)
            finally:
                self.pool[phase] = self.pool.get(phase, 0.0) + began - submitted
                self.api[phase] = self.api.get(phase, 0.0) + clock.seconds() - api_before

        return run

    def parts(self) -> dict[str, float]:
        """Seconds by part (rounded to 0.1 ms): queue (wake-up event to reconcile start),
        observe, plan, apply, their pool waits and API time, and the total."""
        out = {"queue": self.started - self.kicked if self.kicked is not None else 0.0}
        for phase in ("observe", "plan", "apply"):
            out[phase] = self.phases.get(phase, 0.0)
        for phase in ("observe", "apply"):
            out[f"{phase}_pool"] = self.pool.get(phase, 0.0)
            out[f"{phase}_api"] = self.api.get(phase, 0.0)
        out["total"] = self._last - (self.kicked if self.kicked is not None else self.started)
        return {k: round(out[k], 4) for k in PARTS}


CURRENT: contextvars.ContextVar[StepTiming | None] = contextvars.ContextVar(
    "ramp_step_timing", default=None
)
"""The timing of the reconcile running in this task (each worker is its own task)."""
