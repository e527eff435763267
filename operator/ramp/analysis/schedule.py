"""Measurements off the reconcile path, a bounded number per namespace at once.

A reconcile never waits for Prometheus (issue 19, class 11). It *submits* the
measurements that are due and *takes* those that finished since its last look; each
finished measurement wakes its Rollout again (``on_done``). So:

* the operator-wide reconcile slots are held only for the planning, never for a query:
  a slow or hung Prometheus delays no reconcile, and an abort never waits on a
  measurement;
* each namespace has its own measurement capacity (``per_namespace`` at once, the rest
  wait in that namespace's line): one namespace's slow queries cannot delay another's;
* each measurement has a hard deadline (``deadline(metric timeout)``): whatever it waits
  on, its slot is free again by then, and the result is an Error saying so.

Finished measurements not taken within ``keep_seconds`` (the Rollout moved on, was
deleted, aborted) are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ramp.api.analysis import Measurement

log = logging.getLogger("ramp.analysis.schedule")

PER_NAMESPACE = 4
"""Measurements in flight at once for the Rollouts of one namespace."""
KEEP_SECONDS = 600.0

MeasureKey = tuple[str, str, str, str, str]
"""(namespace, rollout, analysis run, metric, canary revision)."""


@dataclass
class _Done:
    measurement: Measurement
    at: float


class MeasurementScheduler:
    """Runs measurements as background tasks with per-namespace capacity."""

    def __init__(
        self,
        per_namespace: int = PER_NAMESPACE,
        *,
        keep_seconds: float = KEEP_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_namespace = per_namespace
        self.keep_seconds = keep_seconds
        self._clock = clock
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._running: dict[MeasureKey, asyncio.Task[None]] = {}
        self._done: dict[MeasureKey, _Done] = {}
        self.on_done: Callable[[str, str], None] | None = None
        """Called with (namespace, rollout) when one of its measurements finished."""
        self.started = 0
        self.finished = 0

    def take(self, key: MeasureKey) -> Measurement | None:
        """The finished measurement for ``key`` (once), or None."""
        done = self._done.pop(key, None)
        return done.measurement if done is not None else None

    def busy(self, key: MeasureKey) -> bool:
        """Whether a measurement for ``key`` is queued or running."""
        task = self._running.get(key)
        return task is not None and not task.done()

    def pending(self, namespace: str, rollout: str) -> int:
        """Measurements of this Rollout queued or running."""
        return sum(
            1 for k, t in self._running.items() if k[:2] == (namespace, rollout) and not t.done()
        )

    def in_flight(self, namespace: str | None = None) -> int:
        """Measurements queued or running (of one namespace, or all)."""
        return sum(
            1
            for k, t in self._running.items()
            if not t.done() and (namespace is None or k[0] == namespace)
        )

    def submit(
        self,
        key: MeasureKey,
        measure: Callable[[], Awaitable[Measurement]],
        deadline: float,
        on_deadline: Callable[[], Measurement],
    ) -> bool:
        """Start measuring ``key`` unless it already is; False when it was running.

        ``measure()`` is awaited in the namespace's line; after ``deadline`` seconds in a
        slot it is cancelled and ``on_deadline()`` is the result.
        """
        self._expire()
        if self.busy(key):
            return False
        self.started += 1
        task = asyncio.create_task(self._run(key, measure, deadline, on_deadline))
        self._running[key] = task
        return True

    async def _run(
        self,
        key: MeasureKey,
        measure: Callable[[], Awaitable[Measurement]],
        deadline: float,
        on_deadline: Callable[[], Measurement],
    ) -> None:
        namespace = key[0]
        slot = self._slots.setdefault(namespace, asyncio.Semaphore(self.per_namespace))
        try:
            async with slot:
                try:
                    async with asyncio.timeout(deadline):
                        measurement = await measure()
                except TimeoutError:
                    measurement = on_deadline()
            self._done[key] = _Done(measurement, self._clock())
            self.finished += 1
        except asyncio.CancelledError:
            raise
        except Exception:  # the provider never raises; a surprise must not lose the slot
            log.exception("measurement %s failed", key)
            return
        finally:
            if self._running.get(key) is asyncio.current_task():
                del self._running[key]
        if self.on_done is not None:
            try:
                self.on_done(key[0], key[1])
            except Exception:
                log.exception("waking %s/%s after a measurement failed", key[0], key[1])

    def forget(self, namespace: str, rollout: str) -> None:
        """The Rollout is gone: cancel its measurements and drop their results."""
        for key in [k for k in self._running if k[:2] == (namespace, rollout)]:
            self._running.pop(key).cancel()
        for key in [k for k in self._done if k[:2] == (namespace, rollout)]:
            del self._done[key]

    def _expire(self) -> None:
        cutoff = self._clock() - self.keep_seconds
        for key in [k for k, d in self._done.items() if d.at < cutoff]:
            del self._done[key]

    async def close(self) -> None:
        tasks = list(self._running.values())
        self._running.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
