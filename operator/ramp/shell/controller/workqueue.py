"""The reconcile queue: one asyncio worker per Rollout, woken by watch events (a kick),
scheduled again by what its reconcile returns; a bounded number in flight at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable

log = logging.getLogger("ramp.controller")

Key = tuple[str, str]
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


class WorkQueue:
    """One asyncio worker per key; ``kick`` wakes it, its return value schedules it."""

    def __init__(self, reconcile: Callable[[str, str], Awaitable[float | None]]) -> None:
        self._reconcile = reconcile
        self._wakeups: dict[Key, asyncio.Event] = {}
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self._kicked_at: dict[Key, float] = {}
        self.enabled = True
        self.accept: Callable[[Key], bool] = lambda key: True
        self._slots = asyncio.Semaphore(RECONCILE_SLOTS)
        self.failures: dict[Key, int] = {}
        """Reconciles of a Rollout that failed in a row (0: the last one succeeded)."""
        self.on_error: Callable[[Key, Exception], Awaitable[None]] | None = None
        """Told of every failed reconcile (the controller shows it on the Rollout)."""

    def kick(self, key: Key) -> None:
        if not self.accept(key):
            return  # another shard's
        wakeup = self._wakeups.setdefault(key, asyncio.Event())
        wakeup.set()
        self._kicked_at.setdefault(key, time.monotonic())
        task = self._tasks.get(key)
        if (task is None or task.done()) and self.enabled:
            # A worker that ended for any reason is replaced: a Rollout is never orphaned.
            self._tasks[key] = asyncio.create_task(self._worker(key), name=f"ramp:{key}")

    def forget(self, key: Key) -> None:
        task = self._tasks.pop(key, None)
        self._wakeups.pop(key, None)
        self._kicked_at.pop(key, None)
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
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=delay)
            wakeup.clear()
            try:
                async with self._slots:
                    delay = await self._reconcile(*key)
                self.failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = await self._failed(key, exc)
            if delay is None:
                delay = RESYNC_SECONDS * random.uniform(1 - RESYNC_JITTER, 1 + RESYNC_JITTER)

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
