"""The reconcile loop: observe, plan (pure core), apply — one worker per Rollout.

Events only *kick* a Rollout's worker; the worker always reconciles from a fresh read of
the Rollout and the observed children, so a missed or duplicated event changes nothing.
One worker per Rollout serialises its reconciles; a plan's ``requeue_after`` (pauses,
deadlines, analysis intervals) and a periodic resync wake it up without events.

Observing is :mod:`ramp.shell.controller.observe`'s, applying
:mod:`ramp.shell.controller.apply`'s (the actions of :mod:`ramp.core.actions`), what a
failed reconcile shows :mod:`ramp.shell.controller.report`'s.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from ramp.analysis.prometheus import ProviderConfig
from ramp.api.analysis import Measurement
from ramp.api.rollout import Rollout
from ramp.core.plan import Child, Event, Observed, Plan, plan, runs_in_play
from ramp.core.workload_model import Workload
from ramp.shell.adapters.config_copies import RECHECK as CONFIG_RECHECK
from ramp.shell.adapters.config_copies import ConfigTracker
from ramp.shell.adapters.gateway_routes import ECHOES
from ramp.shell.adapters.kube import Conflict, Kube
from ramp.shell.adapters.kube_objects import child_name
from ramp.shell.adapters.kube_workload import Workloads
from ramp.shell.controller.adopt import adopt_orphans
from ramp.shell.controller.apply import Executor, Outcome, validation_problem
from ramp.shell.controller.gates import Gates, TemplateReader
from ramp.shell.controller.observe import (
    ChildSource,
    EndpointSource,
    HistorySource,
    Reader,
    compact_rollout,
)
from ramp.shell.controller.report import error_message, report_error, report_unparsable
from ramp.shell.controller.route_index import RouteIndex
from ramp.shell.controller.timing import CURRENT as TIMING
from ramp.shell.controller.timing import PARTS, Samples, StepTiming
from ramp.shell.controller.workqueue import CAUSE, Cause, Key, WorkQueue

log = logging.getLogger("ramp.controller")  # its name before the shell package

API_THREADS = 32
"""Blocking API calls run on this many threads (asyncio's default pool is far smaller)."""
MEASURE_RECHECK = 1.0
"""While a measurement of a Rollout is in flight its reconcile looks again at most this
often (its completion wakes it at once)."""
T = TypeVar("T")
TIMING_SAMPLES = 10_000
LATENCY_SAMPLES = 10_000

Observer = Callable[[str, str, Plan, float], None]
"""Called after each applied plan (metrics): namespace, name, plan, seconds taken."""


class Controller:
    """Observe → plan → apply for one Rollout at a time."""

    def __init__(
        self,
        kube: Kube,
        children: ChildSource | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        observers: list[Observer] | None = None,
        prometheus: ProviderConfig | None = None,
        templates: TemplateReader | None = None,
        history: HistorySource | None = None,
        endpoints: EndpointSource | None = None,
    ) -> None:
        self.kube = kube
        self.workloads = Workloads(kube)
        self.reader = Reader(kube, history, endpoints)
        self.executor = Executor(kube, self.workloads)
        self.executor.on_written = self.remember
        self.executor.on_pinned = self.reader.pinned
        self.config = ConfigTracker(kube)
        self.executor.before_create = self.config.ensure
        self.templates = templates
        self.gates = Gates(prometheus, self._read_template)
        self.children = children
        self.clock = clock
        self.observers = observers or []
        self.queue = WorkQueue(self.reconcile)
        self.gates.scheduler.on_done = lambda namespace, name: self.queue.kick(
            (namespace, name), Cause.MEASUREMENT
        )
        self.routes = RouteIndex(lambda key: self.queue.kick(key, Cause.ROUTE), ECHOES)
        """Which Rollouts name which HTTPRoutes (the route watch kicks them)."""
        self.owns: Callable[[str, str], bool] = lambda namespace, name: True
        """Whether this process handles a Rollout (``--shard``); others are ignored."""
        self.queue.accept = lambda key: self.owns(*key)
        self.queue.on_error = self.report_error
        self.reported_errors: dict[Key, str] = {}
        self.may_write: Callable[[], bool] = lambda: True
        self.deferred: set[Key] = set()
        """Rollouts a reconcile left alone because this process could not write then (a
        standby, a renewal late under load, a write refused as not the leader): kicked
        again once it can (:meth:`kick_deferred`), not left to the resync a minute later."""
        self.holds: Callable[[Key], bool] = lambda key: False
        """Whether Events of the Rollout were refused in such a pause (then its next
        pass posts them first: ``post_held``)."""
        self.post_held: Callable[[str, str], None] = lambda namespace, name: None
        self.reconciles = 0
        self.reconciles_by_cause: dict[str, int] = {}
        """Reconciles that planned (those ``reconciles`` counts) by what woke them
        (:class:`ramp.shell.controller.workqueue.Cause`)."""
        self.bodies: dict[Key, dict[str, Any]] = {}
        """The newest Rollout bodies seen (watch events, our own patches): a reconcile
        plans from them instead of reading again. A stale one only costs a Conflict on the
        resourceVersion-guarded status patch, after which the Rollout is read afresh."""
        self._bodies_lock = threading.Lock()
        self.use_cached_bodies = True
        self.pool = ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="ramp-api")
        self.step_latencies = Samples(LATENCY_SAMPLES)
        """Seconds from the event that woke a reconcile to the next split written, for
        reconciles that completed a step (the benchmark reads them)."""
        self.step_timings = Samples(TIMING_SAMPLES, PARTS)
        """Where those seconds went (:meth:`StepTiming.parts`), one entry per step."""

    def _read_template(self, namespace: str, name: str) -> dict[str, Any] | None:
        """An AnalysisTemplate from the watch-fed index, else (just created) from the API."""
        found = self.templates(namespace, name) if self.templates else None
        return found if found is not None else self.kube.get_analysis_template(namespace, name)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking API call on the controller's own thread pool (timed into the
        reconcile's :class:`StepTiming` when one is being taken)."""
        loop = asyncio.get_running_loop()
        timing = TIMING.get()
        if timing is None:
            return await loop.run_in_executor(self.pool, fn, *args)
        return await loop.run_in_executor(self.pool, timing.timed(fn, self.kube.api_clock), *args)

    def remember(self, body: Mapping[str, Any]) -> None:
        """Keep the newest body of a Rollout (by resourceVersion) for its next reconcile,
        as a compact copy (:func:`compact_rollout`). Called from the event loop and from
        API threads: the compare-and-set is locked."""
        body = compact_rollout(body)
        meta = body.get("metadata") or {}
        key = (meta.get("namespace", ""), meta.get("name", ""))
        with self._bodies_lock:
            old = self.bodies.get(key)
            if old is None or _rv(body) >= _rv(old):
                self.bodies[key] = body

    def forget(self, key: Key) -> None:
        """A Rollout is gone: drop everything kept for it."""
        with self._bodies_lock:
            self.bodies.pop(key, None)
        self.executor.forget(key)
        self.gates.scheduler.forget(*key)
        self.reported_errors.pop(key, None)
        self.reader.forget(key[0])
        self.config.forget(*key)
        self.routes.forget(key)
        self.queue.forget(key)
        self.deferred.discard(key)

    def summary(self) -> dict[str, Any]:
        """Counters for the benchmark and diagnostics."""
        return {
            "reconciles": self.reconciles,
            "reconciles_by_cause": dict(self.reconciles_by_cause),
            "wakes_by_cause": dict(self.queue.wakes),
            "api_reads": self.kube.counters.reads,
            "api_writes": self.kube.counters.writes,
            "api_writes_by_kind": self.kube.counters.writes_by_kind,
            "status_writes_by_reason": self.executor.status_writes,
            "step_latencies": [round(x, 4) for x in self.step_latencies.values()],
            "step_timings": self.step_timings.dicts(),
            "expectations": {
                "held_back": self.kube.expectations.held_back,
                "expired": self.kube.expectations.expired,
            },
        }

    def _observe(
        self,
        body: dict[str, Any],
        rollout: Rollout,
        children: list[Child],
        workload: Workload | None = None,
    ) -> Observed:
        meta = body["metadata"]
        refused = self.executor.take_refusal(
            (meta["namespace"], meta["name"]), int(meta.get("generation") or 0)
        )
        return self.reader.observe(body, rollout, children, workload, refused)

    async def reconcile(self, namespace: str, name: str) -> float | None:
        started = time.monotonic()
        kicked = self.queue.take_kick_time((namespace, name))
        timing = StepTiming(kicked, started)
        token = TIMING.set(timing)
        try:
            return await self._reconcile(namespace, name, timing)
        finally:
            TIMING.reset(token)

    async def _reconcile(self, namespace: str, name: str, timing: StepTiming) -> float | None:
        started, kicked = timing.started, timing.kicked
        if not self.may_write():
            self.deferred.add((namespace, name))
            return None
        key = (namespace, name)
        if self.holds(key):
            await self._call(self.post_held, namespace, name)
        body = self.bodies.get(key) if self.use_cached_bodies else None
        if body is None:
            body = await self._call(self.kube.get_rollout, namespace, name)
        if body is None:
            self.forget(key)
            return None
        children = self.children(namespace, name) if self.children else None
        behind = children is not None and self.kube.expectations.unshown(
            namespace, name, (c.name for c in children)
        )  # the index lags behind a create of ours: plan from the API's children
        if children is None or behind:
            children = await self._call(self.kube.list_children, namespace, name)
        if not behind:  # the expectations wait for the index, not for a read of the API
            self.kube.expectations.observe(namespace, children)  # writes the watch now shows
            children = self.kube.expectations.overlay(namespace, children)  # and not yet
        if any(c.owner != body["metadata"].get("uid") for c in children):  # orphans?
            children, _ = await self._call(adopt_orphans, self.kube, body, children, [])
        workload: Workload | None = None
        if self.workloads.holding(body):  # spec.workloadRef: the Deployment is read
            read: tuple[dict[str, Any], Workload | None] = await self._call(
                self.workloads.observe, body
            )
            body, workload = read
        try:
            rollout = Rollout.model_validate(body)
        except ValidationError as exc:
            await self._call(
                report_unparsable, self.kube, self.clock(), body, validation_problem(exc)
            )
            return None
        now = self.clock()
        observed = await self._call(self._observe, body, rollout, children, workload)
        tracked = bool(rollout.spec.track_config) and not observed.deleting
        if tracked:  # the template reads per-revision copies of its ConfigMaps and Secrets
            observed = await self._call(self.config.rewrite, observed, namespace, name)
        gate_events: list[Event] = []
        taken: list[Measurement] = []
        runs = runs_in_play(rollout) if not observed.deleting else {}
        if runs:
            # Analysis in play: resolve it, take what is due, and plan once with the data.
            await self._call(self.gates.refresh_token)
            resolved = await self._call(self.gates.resolve, runs, rollout, namespace)
            status, gate_events, taken = await self.gates.measure(resolved, rollout, namespace, now)
            rollout = rollout.model_copy(update={"status": status})
            observed = dataclasses.replace(observed, rollout=rollout, analysis=resolved)
        timing.mark("observe")
        result = plan(observed, now)
        result.events[:0] = gate_events
        if tracked:  # look at the configuration again even when nothing else wakes it
            wait = result.requeue_after
            result.requeue_after = CONFIG_RECHECK if wait is None else min(wait, CONFIG_RECHECK)
        if result.measure:
            result.requeue_after = 0.0
        elif runs and self.gates.pending(namespace, name):
            # Measurements in flight wake this Rollout when they finish: no busy loop.
            result.requeue_after = max(result.requeue_after or 0.0, MEASURE_RECHECK)
        timing.mark("plan")
        todo = self.executor.actions(body, observed, result)
        result.requeue_after = todo.requeue_after
        if todo.steps and not self.may_write():
            # The Lease paused while this pass planned: its writes wait for acting again
            # (a plan with no timer of its own would otherwise sleep until the resync).
            self.deferred.add(key)
            return None
        try:
            if todo.steps:  # a thread only for a plan that writes
                outcome = await self._call(self.executor.execute, body, observed, todo)
                if self.holds(key):  # its Events were refused: posted once acting again
                    self.deferred.add(key)
                result.requeue_after = outcome.requeue_after
                if outcome.refused is not None:
                    return 0.0  # a create refused for its spec: plan again with that
        except Conflict:
            with self._bodies_lock:
                self.bodies.pop(key, None)  # plan again from a fresh read
            return 0.0
        except ApiException as exc:
            # 404: the Rollout itself may be gone unseen (its namespace deleted: the watch
            # of a deleted namespace stops before the DELETED event); then forget it
            # rather than retry a write to nothing forever.
            if exc.status != 404 or await self._call(self.kube.get_rollout, *key) is not None:
                raise
            log.info("%s/%s: the Rollout is gone; forgotten", *key)
            self.forget(key)
            return None
        self.gates.report(taken)  # counted once the status holding them is written
        self.reconciles += 1
        cause = CAUSE.get().value
        self.reconciles_by_cause[cause] = self.reconciles_by_cause.get(cause, 0) + 1
        if kicked is not None and any(e.reason == "StepCompleted" for e in result.events):
            self.step_latencies.append((time.monotonic() - kicked,))
            timing.mark("apply")
            self.step_timings.append(list(timing.parts().values()))
        for observer in self.observers:
            observer(namespace, name, result, time.monotonic() - started)
        return result.requeue_after

    def kick_deferred(self) -> None:
        """Kick the Rollouts left alone while this process could not write, if it can now
        (the leader election calls it at every check that finds it acting: a renewal that
        answered past the renew deadline ends a pause no transition was seen for)."""
        if self.deferred and self.may_write():
            keys, self.deferred = self.deferred, set()
            for key in keys:
                self.queue.kick(key, Cause.LEADER)

    def apply(self, body: dict[str, Any], observed: Observed, result: Plan) -> Outcome | None:
        """Execute a plan's actions (:meth:`Executor.execute`); ``result.requeue_after``
        becomes the time to look again. None when this process may not write."""
        if not self.may_write():
            return None
        todo = self.executor.actions(body, observed, result)
        outcome = self.executor.execute(body, observed, todo)
        result.requeue_after = outcome.requeue_after
        return outcome

    async def report_error(self, key: Key, exc: Exception) -> None:
        """A reconcile raised: show it on the Rollout, not only in the log — a
        ``ReconcileError`` condition (the next successful status write removes it) and a
        Warning Event (once per distinct error)."""
        if self.may_write():
            await self._call(
                report_error, self.kube, self.clock, self.reported_errors, key, error_message(exc)
            )


def _rv(body: dict[str, Any]) -> int:
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:  # resourceVersions are opaque; etcd's happen to be integers
        return 0


__all__ = ["Controller", "Event", "WorkQueue", "child_name", "error_message"]
