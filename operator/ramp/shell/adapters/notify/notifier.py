"""Delivery of notifications: a bounded queue, a few workers, retries with backoff.

:meth:`Notifier.publish` is called where the operator posts an Event (from any thread); it
never blocks and never raises: the notification goes into a bounded queue, or is dropped
and counted when the queue is full. Workers send with a timeout; a network error, a
timeout, a 5xx or a 429 is retried with exponential backoff and jitter (a ``Retry-After``
is honoured up to the maximum backoff) without holding a worker while waiting; other 4xx
answers are final. A sink that keeps failing is reported in the operator's metrics
(``ramp_notification_sink_up`` 0, ``ramp_notifications_total{outcome="failed"}``), in its
log, and by a ``NotificationFailed`` Warning Event on the Rollout — never by a crash. No
message, metric or Event ever holds a sink's URL or token.

Tenants share the queue, so one cannot crowd out another (issue 20, floods): each
namespace has a quota of notifications (a token bucket: :data:`NAMESPACE_BURST`, then one
every :data:`NAMESPACE_REFILL` seconds; over it, a notification is counted as
``throttled`` and dropped), one namespace may hold at most a quarter of the queue's room
for ordinary notifications, and a quarter of the queue is kept for aborts and rollbacks
(:data:`PRIORITY`), which also bypass the quota and are delivered first.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections import Counter as Tally
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ramp.shell.adapters.notify.config import Settings, Sink
from ramp.shell.adapters.notify.messages import (
    PAUSED_REASON,
    Notification,
    analysis_of,
    notification,
    payload,
    wants,
)

log = logging.getLogger("ramp.notify")
FAILED_REASON = "NotificationFailed"
WORKERS = 2
PRIORITY = frozenset({"aborted", "rolledBack"})
"""Triggers delivered first, never held by a namespace's quota, with room kept for them."""
NAMESPACE_BURST = 20
"""Notifications a namespace may queue at once (per Event, whatever the number of sinks)."""
NAMESPACE_REFILL = 6.0
"""Seconds per further notification of a namespace once its burst is spent (10 a minute)."""
MAX_NAMESPACES = 4096
OUTCOMES = ("delivered", "failed", "dropped", "throttled")

Report = Callable[[Notification, str], None]
"""Say on the Rollout that a notification failed (``message`` without URL or token)."""


@dataclass(frozen=True)
class _Event:
    """What ``emit`` reads of an Event (the core's own type is not needed here)."""

    type: str
    reason: str
    message: str


@dataclass
class _Item:
    sink: Sink
    note: Notification
    attempt: int
    published: float
    priority: int = 1
    """0 for :data:`PRIORITY` triggers (taken from the queue first), else 1."""
    order: int = field(default=0, compare=False)

    def __lt__(self, other: _Item) -> bool:
        return (self.priority, self.order) < (other.priority, other.order)


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        kw: dict[str, Any] = {"registry": registry}
        self.notifications = Counter(
            "ramp_notifications_total",
            "Notifications by sink, trigger and outcome (delivered, failed, dropped, throttled)",
            ["sink", "trigger", "outcome"],
            **kw,
        )
        self.retries = Counter(
            "ramp_notification_retries_total", "Delivery attempts that are retried", ["sink"], **kw
        )
        self.sink_up = Gauge(
            "ramp_notification_sink_up",
            "1 when the sink's last delivery attempt succeeded, 0 when it failed",
            ["sink"],
            **kw,
        )
        self.queued = Gauge(
            "ramp_notification_queue_length", "Notifications waiting (queued or retrying)", **kw
        )
        self.refused = Gauge(
            "ramp_notification_sinks_refused",
            "Configured sinks left out (invalid, or URL not on the allow-list)",
            **kw,
        )
        self.latency = Histogram(
            "ramp_notification_delivery_seconds",
            "Seconds from the Event to the sink's 2xx answer (retries included)",
            ["sink"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            **kw,
        )


class Notifier:
    """Sends the operator's rollout events to the configured sinks."""

    def __init__(
        self,
        settings: Settings,
        registry: CollectorRegistry | None = None,
        report: Report | None = None,
        reload: Callable[[], Settings] | None = None,
        reload_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.metrics = NotifierMetrics(registry)
        self.report = report
        self.reload = reload
        self.reload_every = reload_every
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queue: asyncio.PriorityQueue[_Item] = asyncio.PriorityQueue()
        self.pending = 0
        self.clock = clock
        self.pending_by_namespace: Tally[str] = Tally()
        self.quota: OrderedDict[str, tuple[float, float]] = OrderedDict()
        """Per namespace: tokens left, and when they were last refilled."""
        self.throttle_logged: dict[str, float] = {}
        self._order = itertools.count()
        self.last_analysis: dict[tuple[str, str], dict[str, Any]] = {}
        self._apply(settings)

    def _apply(self, settings: Settings) -> None:
        self.settings = settings
        self.metrics.refused.set(len(settings.refused))
        for why in settings.refused:
            log.warning("notifications: %s; that sink is off", why)
        for sink in settings.sinks:
            self.metrics.sink_up.labels(sink.name)  # the series exists before the first send
            for outcome in OUTCOMES:
                for trigger in sink.triggers:
                    self.metrics.notifications.labels(sink.name, trigger, outcome)
            self.metrics.retries.labels(sink.name)
            self.metrics.latency.labels(sink.name)

    # -- the seam -------------------------------------------------------------------------

    def attach(self, kube: Any) -> None:
        """Be one of ``kube``'s event sinks (:attr:`ramp.shell.adapters.kube.Kube.sinks`):
        every Event it posts while it may write, every status it writes. A failure report
        is posted through ``kube.emit`` (:meth:`publish` never notifies a report)."""
        kube.sinks.append(self)
        if self.report is None:

            def report(note: Notification, message: str) -> None:
                meta = {"name": note.name, "namespace": note.namespace, "uid": note.uid}
                kube.emit({"metadata": meta}, _Event("Warning", FAILED_REASON, message))

            self.report = report

    def event(self, rollout: Mapping[str, Any], event: Any) -> None:
        """An Event the operator posted: notified to the sinks that want it."""
        self.publish(rollout, event.reason, event.type, event.message)

    def status_written(self, rollout: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """The operator wrote ``status`` over the Rollout's old one: a phase that became
        Paused (a pause step, spec.paused, an analysis that cannot decide) is notified with
        why, from the status itself."""
        try:
            before = (rollout.get("status") or {}).get("phase")
            if status.get("phase") != "Paused" or before == "Paused":
                return
            paused: Mapping[str, Any] = next(
                (c for c in status.get("conditions") or [] if c.get("type") == "Paused"), {}
            )
            why = str(paused.get("reason") or "")
            kind = "Warning" if why.startswith("Analysis") else "Normal"
            message = str(status.get("message") or why or "paused")
            self.publish({**rollout, "status": status}, PAUSED_REASON, kind, message)
        except Exception:
            log.exception("notifications: could not read a status for a pause")

    def publish(self, rollout: Mapping[str, Any], reason: str, type_: str, message: str) -> None:
        """Queue the notifications of an Event (any thread; never blocks, never raises)."""
        try:
            if self.loop is None or reason == FAILED_REASON:
                return
            now = datetime.now(UTC)
            stamp = time.monotonic()
            snapshot = {
                "metadata": dict(rollout.get("metadata") or {}),
                "spec": rollout.get("spec") or {},
                "status": dict(rollout.get("status") or {}),
            }
            args = (snapshot, reason, type_, message, now, stamp)
            if _in_loop(self.loop):
                self._enqueue(*args)
            else:
                self.loop.call_soon_threadsafe(self._enqueue, *args)
        except Exception:  # a notification must never break a reconcile
            log.exception("notifications: could not queue %s", reason)

    def _enqueue(
        self,
        rollout: dict[str, Any],
        reason: str,
        type_: str,
        message: str,
        now: datetime,
        stamp: float,
    ) -> None:
        meta = rollout["metadata"]
        key = (str(meta.get("namespace")), str(meta.get("name")))
        if reason.startswith("Analysis"):
            found = analysis_of(message)
            if found and found["verdict"] != "Pass":
                self.last_analysis[key] = found
        note = notification(rollout, reason, type_, message, now, self.last_analysis.get(key))
        if reason in ("RolloutStarted", "RolloutCompleted", "RolledBack", "CanaryReplaced"):
            self.last_analysis.pop(key, None)
        if note is None:
            return
        sinks = [sink for sink in self.settings.sinks if wants(sink, note)]
        if not sinks:
            return
        priority = 0 if note.trigger in PRIORITY else 1
        if priority and not self._within_quota(note.namespace):
            for sink in sinks:
                self.metrics.notifications.labels(sink.name, note.trigger, "throttled").inc()
            self._log_throttled(note)
            return
        for sink in sinks:
            self._put(_Item(sink, note, 1, stamp, priority))

    def _within_quota(self, namespace: str) -> bool:
        """Take one of the namespace's tokens (refilled one per NAMESPACE_REFILL seconds)."""
        now = self.clock()
        tokens, since = self.quota.pop(namespace, (float(NAMESPACE_BURST), now))
        tokens = min(float(NAMESPACE_BURST), tokens + (now - since) / NAMESPACE_REFILL)
        allowed = tokens >= 1.0
        self.quota[namespace] = (tokens - 1.0 if allowed else tokens, now)
        while len(self.quota) > MAX_NAMESPACES:
            self.quota.popitem(last=False)
        return allowed

    def _log_throttled(self, note: Notification) -> None:
        now = self.clock()
        if now - self.throttle_logged.get(note.namespace, -60.0) >= 60.0:
            self.throttle_logged[note.namespace] = now
            log.warning(
                "notifications: namespace %s is over its quota (%d, then one per %gs); "
                "%s of %s and others dropped",
                note.namespace,
                NAMESPACE_BURST,
                NAMESPACE_REFILL,
                note.trigger,
                note.name,
            )

    def _room(self, item: _Item) -> bool:
        """Whether the queue takes ``item``: aborts up to the whole queue; others up to
        three quarters of it, and a quarter of it per namespace."""
        size = self.settings.delivery.queue_size
        if item.priority == 0:
            return self.pending < size
        reserve = size // 4
        share = max(1, (size - reserve) // 4)
        return (
            self.pending < size - reserve and self.pending_by_namespace[item.note.namespace] < share
        )

    def _put(self, item: _Item) -> None:
        if not self._room(item):
            self.metrics.notifications.labels(item.sink.name, item.note.trigger, "dropped").inc()
            log.warning(
                "notifications: queue full (%d); %s of %s/%s to sink %s dropped",
                self.pending,
                item.note.trigger,
                item.note.namespace,
                item.note.name,
                item.sink.name,
            )
            return
        self.pending += 1
        self.pending_by_namespace[item.note.namespace] += 1
        self.metrics.queued.set(self.pending)
        self._queue(item)

    def _queue(self, item: _Item) -> None:
        item.order = next(self._order)
        self.queue.put_nowait(item)

    # -- delivery ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Deliver until cancelled (the operator's task list cancels it at shutdown)."""
        self.loop = asyncio.get_running_loop()
        timeout = aiohttp.ClientTimeout(total=self.settings.delivery.timeout)
        async with aiohttp.ClientSession(timeout=timeout, trust_env=False) as session:
            workers = [
                asyncio.create_task(self._worker(session), name=f"notify-{i}")
                for i in range(WORKERS)
            ]
            try:
                while True:
                    await asyncio.sleep(self.reload_every)
                    if self.reload is not None:
                        try:
                            self._apply(await asyncio.to_thread(self.reload))
                        except Exception as exc:
                            log.warning("notifications: reload failed, keeping the sinks: %s", exc)
            finally:
                for task in workers:
                    task.cancel()
                for task in workers:
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _worker(self, session: aiohttp.ClientSession) -> None:
        while True:
            item = await self.queue.get()
            try:
                await self._attempt(session, item)
            except Exception:  # never let a worker die
                log.exception("notifications: delivery to sink %s crashed", item.sink.name)
                self._done(item, "failed")

    def _done(self, item: _Item, outcome: str) -> None:
        self.pending -= 1
        self.pending_by_namespace[item.note.namespace] -= 1
        if self.pending_by_namespace[item.note.namespace] <= 0:
            del self.pending_by_namespace[item.note.namespace]
        self.metrics.queued.set(self.pending)
        self.metrics.notifications.labels(item.sink.name, item.note.trigger, outcome).inc()

    async def _attempt(self, session: aiohttp.ClientSession, item: _Item) -> None:
        sink, delivery = item.sink, self.settings.delivery
        body, headers = payload(sink, item.note)
        retry_after: float | None = None
        try:
            # No redirects: a receiver must not send the operator past the allow-list.
            async with session.post(
                sink.url, json=body, headers=headers, allow_redirects=False
            ) as resp:
                status = resp.status
                await resp.read()
                with contextlib.suppress(ValueError, TypeError):
                    retry_after = float(resp.headers.get("Retry-After", ""))
            retryable = status >= 500 or status == 429
            why = f"HTTP {status}"
            ok = 200 <= status < 300
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            ok, retryable = False, True
            why = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        self.metrics.sink_up.labels(sink.name).set(1 if ok else 0)
        if ok:
            self.metrics.latency.labels(sink.name).observe(time.monotonic() - item.published)
            log.info(
                "notifications: %s of %s/%s delivered to sink %s (attempt %d)",
                item.note.trigger,
                item.note.namespace,
                item.note.name,
                sink.name,
                item.attempt,
            )
            self._done(item, "delivered")
            return
        if retryable and item.attempt < delivery.max_attempts:
            delay = min(delivery.max_backoff, delivery.initial_backoff * 2 ** (item.attempt - 1))
            delay *= random.uniform(0.8, 1.2)
            if retry_after is not None:
                delay = max(delay, min(retry_after, delivery.max_backoff))
            self.metrics.retries.labels(sink.name).inc()
            log.warning(
                "notifications: sink %s answered %s (attempt %d/%d); retrying in %.1fs",
                sink.name,
                why,
                item.attempt,
                delivery.max_attempts,
                delay,
            )
            item.attempt += 1
            assert self.loop is not None
            self.loop.call_later(delay, self._queue, item)
            return
        message = (
            f"notification '{item.note.trigger}' to sink {sink.name} failed after "
            f"{item.attempt} attempt(s): {why}"
        )
        log.warning("notifications: %s (%s/%s)", message, item.note.namespace, item.note.name)
        self._done(item, "failed")
        if self.report is not None:
            report = self.report
            with contextlib.suppress(Exception):
                await asyncio.to_thread(report, item.note, message)


def _in_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


__all__ = ["FAILED_REASON", "Notifier"]
