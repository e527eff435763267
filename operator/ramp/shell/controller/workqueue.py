"""The reconcile queue: one asyncio worker per Rollout, woken by watch events (a kick),
scheduled again by what its reconcile returns; a bounded number in flight at once.

Every reconcile has a cause (:class:`Cause`): the kick that woke it (the Rollout's own
event, a child's, an adopted Deployment's, a finished measurement, a newly gained Lease)
or the timer that ran out (the plan's ``requeue_after``, the periodic resync, the backoff
after a failure). The reconcile reads it from :data:`CAUSE`; :attr:`WorkQueue.wakes`
counts every reconcile started, by cause.

Kicks that arrive together cost one reconcile (:attr:`WorkQueue.window`): a kicked
worker waits until ``window`` has passed since the first kick it has not reconciled yet,
or since the end of its last reconcile when that is later (the echoes of a reconcile's own
writes: the Rollout's status, its children's scales and the Deployment controller's
answers come in a burst). A kick is never dropped: one that comes during a reconcile
wakes the next; none waits longer than the window once its worker is free."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable
from contextvars import ContextVar
from enum import StrEnum

log = logging.getLogger("ramp.controller")

Key = tuple[str, str]


class Cause(StrEnum):
    """Why a reconcile ran."""

    ROLLOUT = "rollout"
    """A watch event of the Rollout itself (its spec, a user's edit, our status echo)."""
    CHILD = "child"
    """A child Deployment's event that changes what the planner reads."""
    WORKLOAD = "workload"
    """An adopted Deployment's event (``spec.workloadRef``)."""
    ROUTE = "route"
    """An event of an HTTPRoute the Rollout names (its weights, its rules, the gateway's
    acknowledgement)."""
    MEASUREMENT = "measurement"
    """An analysis measurement finished."""
    LEADER = "leader"
    """This process started acting (it gained the Lease): every Rollout is looked at."""
    KICK = "kick"
    """Any other kick."""
    REQUEUE = "requeue"
    """The plan asked to be looked at again (``requeue_after``: a pause, a deadline, an
    interval, a re-plan at once after a conflict)."""
    RESYNC = "resync"
    """The periodic look at a Rollout at rest."""
    RETRY = "retry"
    """The last reconcile failed: retried after a backoff."""


CAUSE: ContextVar[Cause] = ContextVar("ramp_reconcile_cause", default=Cause.KICK)
"""The cause of the reconcile running in this task (set by the worker)."""
RESYNC_SECONDS = 60.0
RESYNC_JITTER = 0.1
"""A Rollout at rest is looked at again after RESYNC_SECONDS ± 10 %: Rollouts that became
Healthy together (a fleet rolled out at once) do not all resync in the same second."""
RECONCILE_SLOTS = 64
"""Reconciles in flight at once (the others wait their turn in order): bounds the memory
of plans in progress when a thousand Rollouts wake together, while one slow Prometheus
or API call holds only its own slot."""
ERROR_BACKOFF = 2.0
MAX_ERROR_BACKOFF = 60.0
"""A reconcile that keeps failing is retried after 2, 4, 8 ... seconds, at most this long."""
COALESCE_WINDOW = 0.075
"""Seconds within which a Rollout's kicks are one reconcile (``--coalesce-window``)."""


class WorkQueue:
    """One asyncio worker per key; ``kick`` wakes it, its return value schedules it."""

    def __init__(self, reconcile: Callable[[str, str], Awaitable[float | None]]) -> None:
        self._reconcile = reconcile
        self._wakeups: dict[Key, asyncio.Event] = {}
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self._kicked_at: dict[Key, float] = {}
        self._causes: dict[Key, Cause] = {}
        self._first_kick: dict[Key, float] = {}
        self.window = COALESCE_WINDOW
        """Kicks of one Rollout within this many seconds are one reconcile (0: none
        waits; every kick that finds the worker free reconciles at once)."""
        self.wakes: dict[str, int] = {}
        """Reconciles started, by :class:`Cause` (finished or not)."""
        self.enabled = True
        self.accept: Callable[[Key], bool] = lambda key: True
        self._slots = asyncio.Semaphore(RECONCILE_SLOTS)
        self.failures: dict[Key, int] = {}
        """Reconciles of a Rollout that failed in a row (0: the last one succeeded)."""
        self.on_error: Callable[[Key, Exception], Awaitable[None]] | None = None
        """Told of every failed reconcile (the controller shows it on the Rollout)."""

    def kick(self, key: Key, cause: Cause = Cause.KICK) -> None:
        """Wake a Rollout's worker; the first kick since its last reconcile names the
        cause of the next one."""
        if not self.accept(key):
            return  # another shard's
        wakeup = self._wakeups.setdefault(key, asyncio.Event())
        wakeup.set()
        self._kicked_at.setdefault(key, time.monotonic())
        self._causes.setdefault(key, cause)
        self._first_kick.setdefault(key, time.monotonic())
        task = self._tasks.get(key)
        if (task is None or task.done()) and self.enabled:
            # A worker that ended for any reason is replaced: a Rollout is never orphaned.
            self._tasks[key] = asyncio.create_task(self._worker(key), name=f"ramp:{key}")

    def forget(self, key: Key) -> None:
        task = self._tasks.pop(key, None)
        self._wakeups.pop(key, None)
        self._kicked_at.pop(key, None)
        self._causes.pop(key, None)
        self._first_kick.pop(key, None)
        self.failures.pop(key, None)
        if task is not None:
            task.cancel()

    def take_kick_time(self, key: Key) -> float | None:
        """When the event that woke this reconcile arrived (None for timer wake-ups)."""
        return self._kicked_at.pop(key, None)

    def keys(self) -> Iterable[Key]:
        return list(self._wakeups)

    async def stop(self) -> None:
        self.enabled = False
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _worker(self, key: Key) -> None:
        wakeup = self._wakeups.setdefault(key, asyncio.Event())
        delay: float | None = 0.0
        timer = Cause.REQUEUE  # what wakes the worker when ``delay`` runs out
        ended = float("-inf")  # when its last reconcile ended
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=delay)
            if wakeup.is_set() and self.window > 0:
                since = max(self._first_kick.get(key, ended), ended)
                wait = since + self.window - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)  # what comes meanwhile joins this reconcile
            self._first_kick.pop(key, None)
            cause = self._causes.pop(key, Cause.KICK) if wakeup.is_set() else timer
            wakeup.clear()
            self.wakes[cause.value] = self.wakes.get(cause.value, 0) + 1
            token = CAUSE.set(cause)
            try:
                async with self._slots:
                    delay = await self._reconcile(*key)
                self.failures.pop(key, None)
                timer = Cause.REQUEUE
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = await self._failed(key, exc)
                timer = Cause.RETRY
            finally:
                CAUSE.reset(token)
                ended = time.monotonic()
            if delay is None:
                delay = RESYNC_SECONDS * random.uniform(1 - RESYNC_JITTER, 1 + RESYNC_JITTER)
                timer = Cause.RESYNC

    async def _failed(self, key: Key, exc: Exception) -> float:
        """A reconcile raised: log it, tell ``on_error``, and back off (bounded)."""
        failures = self.failures[key] = self.failures.get(key, 0) + 1
        delay = min(ERROR_BACKOFF * 2.0 ** min(failures - 1, 16), MAX_ERROR_BACKOFF)
        log.error(
            "reconcile of %s/%s failed (%d in a row); retrying in %ss",
            *key,
            failures,
            delay,
            exc_info=exc,
        )
        if self.on_error is not None:
            try:
                await self.on_error(key, exc)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("could not report the failed reconcile of %s/%s", *key)
        return delay
