"""The reconcile loop: observe, plan (pure core), apply — one worker per Rollout.

Events only *kick* a Rollout's worker; the worker always reconciles from a fresh read of
the Rollout and the observed children, so a missed or duplicated event changes nothing.
One worker per Rollout serialises its reconciles; a plan's ``requeue_after`` (pauses,
deadlines, analysis intervals) and a periodic resync wake it up without events.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
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
from ramp.core.gating import runs_in_play
from ramp.core.plan import Child, Event, HistoryEntry, Observed, Plan, plan
from ramp.core.workload_model import GIVE_BACK_FINALIZER as GIVE_BACK
from ramp.core.workload_model import Workload
from ramp.shell.adapters.kube import Conflict, Kube
from ramp.shell.adapters.kube_objects import child_name, endpoints_by_revision, history_entry
from ramp.shell.adapters.kube_workload import Workloads
from ramp.shell.controller.adopt import adopt_orphans
from ramp.shell.controller.gates import Gates, TemplateReader
from ramp.shell.controller.timing import CURRENT as TIMING
from ramp.shell.controller.timing import PARTS, Samples, StepTiming
from ramp.shell.controller.workqueue import Key, WorkQueue

log = logging.getLogger("ramp.controller")  # its name before the shell package

API_THREADS = 32
"""Blocking API calls run on this many threads (asyncio's default pool is far smaller)."""
MEASURE_RECHECK = 1.0
"""While a measurement of a Rollout is in flight its reconcile looks again at most this
often (its completion wakes it at once)."""
T = TypeVar("T")
STATUS_THROTTLE = 3.0
"""Seconds between status writes that only update counts and wording."""
CREATE_RECHECK = 1.0
"""Seconds until a reconcile that created a child looks again (until the child shows)."""
TIMING_SAMPLES = 10_000
SPEC_REFUSALS = (400, 422)
"""A create refused with these codes was refused for what it says (the rest is retried)."""
REFUSAL_BACKOFF = (1.0, 60.0)
"""Seconds before the first retry of a create refused for another reason, and the most."""


LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def compact_rollout(body: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a Rollout without what no reconcile reads: ``managedFields`` (one
    entry per writer, as large as the spec) and kubectl's copy of the last applied spec."""
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    annotations = meta.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return copy.deepcopy({**body, "metadata": meta})


def validation_problem(exc: ValidationError) -> str:
    """The first validation error, naming its field path the way kubectl does."""
    err = exc.errors()[0]
    path = ".".join(str(p) for p in err["loc"])
    return f"{path}: {err['msg']}"


ChildSource = Callable[[str, str], list[Child] | None]
"""Children of a Rollout from the watch-fed index; None when the index is not ready."""
HistorySource = Callable[[str, str], list[dict[str, Any]] | None]
EndpointSource = Callable[[str, str], list[tuple[str, bool]] | None]
"""(pod, ready) of a Service's EndpointSlices from the watch-fed index; None: not ready."""
"""ControllerRevisions of a Rollout (summaries) from the watch-fed index; None: not ready."""

Observer = Callable[[str, str, Plan, float], None]
"""Called after each applied plan (metrics): namespace, name, plan, seconds taken."""

SERVICE_TTL = 30.0
"""Seconds a Service's selector is trusted without reading it again (our own pins update
it at once; a change by someone else is corrected within this time)."""
LATENCY_SAMPLES = 10_000
ERROR_CONDITION = "ReconcileError"
"""The condition (and Event reason) of a reconcile that raised."""
POD_CACHE = 100_000
"""Pods whose revision is remembered (the cache starts over beyond)."""


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
        self.templates = templates
        self.gates = Gates(prometheus, self._read_template)
        self.children = children
        self.history = history
        self.endpoint_source = endpoints
        self.clock = clock
        self.observers = observers or []
        self.queue = WorkQueue(self.reconcile)
        self.gates.scheduler.on_done = lambda namespace, name: self.queue.kick((namespace, name))
        self.owns: Callable[[str, str], bool] = lambda namespace, name: True
        """Whether this process handles a Rollout (``--shard``); others are ignored."""
        self.queue.accept = lambda key: self.owns(*key)
        self.queue.on_error = self.report_error
        self.reported_errors: dict[Key, str] = {}
        self.may_write: Callable[[], bool] = lambda: True
        self.reconciles = 0
        self.bodies: dict[Key, dict[str, Any]] = {}
        """The newest Rollout bodies seen (watch events, our own patches): a reconcile
        plans from them instead of reading again. A stale one only costs a Conflict on the
        resourceVersion-guarded status patch, after which the Rollout is read afresh."""
        self._bodies_lock = threading.Lock()
        self.use_cached_bodies = True
        self.last_status_write: dict[Key, float] = {}
        self.refused_status: dict[Key, str] = {}
        self.refusals: dict[Key, int] = {}
        """Creates refused in a row for a reason that is not the spec (the backoff)."""
        self.status_writes: dict[str, int] = {}
        """Status patches sent, by what changed: "transition" (more than counts and the
        progress clock), "progress" (progressedAt only), "counts" (at rest, throttled)."""
        self.services: dict[Key, tuple[dict[str, str] | None, float]] = {}
        self.pod_revision: dict[Key, str] = {}
        """(namespace, pod) -> its ``ramp.dev/revision`` ("": not Ramp's), for endpoints."""
        self.executor = ThreadPoolExecutor(max_workers=API_THREADS, thread_name_prefix="ramp-api")
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
            return await loop.run_in_executor(self.executor, fn, *args)
        return await loop.run_in_executor(
            self.executor, timing.timed(fn, self.kube.api_clock), *args
        )

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
        self.last_status_write.pop(key, None)
        self.gates.scheduler.forget(*key)
        self.reported_errors.pop(key, None)
        self.refusals.pop(key, None)
        for svc in [k for k in self.services if k[0] == key[0]]:
            self.services.pop(svc, None)
        self.queue.forget(key)

    def summary(self) -> dict[str, Any]:
        """Counters for the benchmark and diagnostics."""
        return {
            "reconciles": self.reconciles,
            "api_reads": self.kube.counters.reads,
            "api_writes": self.kube.counters.writes,
            "api_writes_by_kind": self.kube.counters.writes_by_kind,
            "status_writes_by_reason": self.status_writes,
            "step_latencies": [round(x, 4) for x in self.step_latencies.values()],
            "step_timings": self.step_timings.dicts(),
            "expectations": {
                "held_back": self.kube.expectations.held_back,
                "expired": self.kube.expectations.expired,
            },
        }

    def _history(
        self, namespace: str, name: str, uid: str, body: dict[str, Any] | None = None
    ) -> tuple[HistoryEntry, ...]:
        raw = self.history(namespace, name) if self.history else None
        if raw is None:
            raw = self.kube.list_history(namespace, name)
        if body is not None:  # orphaned entries of this Rollout (orphan-delete, re-apply)
            _, raw = adopt_orphans(self.kube, body, [], raw)
        entries = (history_entry(b, uid) for b in raw)
        return tuple(e for e in entries if e is not None)

    def _services(self, namespace: str, names: list[str]) -> dict[str, dict[str, str] | None]:
        out: dict[str, dict[str, str] | None] = {}
        for name in names:
            cached = self.services.get((namespace, name))
            if cached is None or time.monotonic() - cached[1] > SERVICE_TTL:
                cached = (self.kube.get_service_selector(namespace, name), time.monotonic())
                self.services[(namespace, name)] = cached
            out[name] = cached[0]
        return out

    def _pod_revisions(self, namespace: str, pods: list[tuple[str, bool]]) -> dict[str, str]:
        """``ramp.dev/revision`` of each endpoint's pod, from a cache that a pod not seen
        before refreshes with one list of the namespace's Ramp pods (a pod's name is never
        reused, and it exists before it is an endpoint: one list finds it, or it is not
        Ramp's)."""
        cache = self.pod_revision
        if any((namespace, pod) not in cache for pod, _ in pods):
            if len(cache) > POD_CACHE:
                cache.clear()
            fresh = self.kube.list_pod_revisions(namespace)
            for pod, _ in pods:
                cache[(namespace, pod)] = fresh.get(pod, "")
        return {pod: cache.get((namespace, pod), "") for pod, _ in pods}

    def _observe(
        self,
        body: dict[str, Any],
        rollout: Rollout,
        children: list[Child],
        workload: Workload | None = None,
    ) -> Observed:
        meta = body["metadata"]
        namespace = meta["namespace"]
        strategy = rollout.spec.strategy
        names: list[str] = []
        if strategy.canary is not None:
            names = [
                n for n in (strategy.canary.stable_service, strategy.canary.canary_service) if n
            ]
        endpoints: dict[str, dict[str, int]] = {}
        if strategy.blue_green is not None:
            bg = strategy.blue_green
            names = [n for n in (bg.active_service, bg.preview_service) if n]
            for service in names:
                pods = self.endpoint_source(namespace, service) if self.endpoint_source else None
                if pods is None:
                    pods = self.kube.list_endpoints(namespace, service)
                endpoints[service] = endpoints_by_revision(
                    pods, self._pod_revisions(namespace, pods)
                )
        return Observed(
            rollout=rollout,
            template=body["spec"].get("template") or (workload and workload.template) or {},
            generation=int(meta.get("generation") or 0),
            annotations=meta.get("annotations") or {},
            children=tuple(children),
            uid=str(meta.get("uid") or ""),
            deleting=bool(meta.get("deletionTimestamp")),
            history=self._history(namespace, meta["name"], str(meta.get("uid") or ""), body),
            services=self._services(namespace, names),
            endpoints=endpoints,
            workload=workload,
            deleted_at=meta.get("deletionTimestamp"),
        )

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
            return None
        key = (namespace, name)
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
        if any(c.owner != body["metadata"].get("uid") for c in children):  # orphans?
            children, _ = await self._call(adopt_orphans, self.kube, body, children, [])
        workload: Workload | None = None
        if self.workloads.held(body):  # spec.workloadRef: the Deployment is read
            read: tuple[dict[str, Any], Workload | None] = await self._call(
                self.workloads.observe, body
            )
            body, workload = read
        try:
            rollout = Rollout.model_validate(body)
        except ValidationError as exc:
            await self._call(self._report_unparsable, body, validation_problem(exc))
            return None
        now = self.clock()
        observed = await self._call(self._observe, body, rollout, children, workload)
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
        if result.measure:
            result.requeue_after = 0.0
        elif runs and self.gates.pending(namespace, name):
            # Measurements in flight wake this Rollout when they finish: no busy loop.
            result.requeue_after = max(result.requeue_after or 0.0, MEASURE_RECHECK)
        timing.mark("plan")
        try:
            applied = None
            if not quiet(body, observed, result):  # a thread only for a plan that writes
                applied = await self._call(self.apply, body, observed, result)
        except Conflict:
            with self._bodies_lock:
                self.bodies.pop(key, None)  # plan again from a fresh read
            return 0.0
        if applied is not None:
            result = applied
        self.gates.report(taken)  # counted once the status holding them is written
        self.reconciles += 1
        if kicked is not None and any(e.reason == "StepCompleted" for e in result.events):
            self.step_latencies.append((time.monotonic() - kicked,))
            timing.mark("apply")
            self.step_timings.append(list(timing.parts().values()))
        for observer in self.observers:
            observer(namespace, name, result, time.monotonic() - started)
        return result.requeue_after

    def apply(self, body: dict[str, Any], observed: Observed, result: Plan) -> Plan | None:
        """Execute a plan, in order: history, creates, status, Service pins, scales,
        deletes, Events. Returns a replacement plan when the API server refused a child."""
        if not self.may_write():
            return None
        meta = body["metadata"]
        namespace = meta["namespace"]
        if not result.write_status:  # being deleted: Ramp's keys leave its Services first
            self.pin_services(namespace, observed, result)
        self.workloads.apply(body, result)  # the adopted Deployment and its finalizer
        if not result.write_status:
            return None
        self.write_history(body, observed, result)
        backoff: float | None = None
        for revision, template in result.creates.items():
            refused = self.create(body, observed, result, revision, template)
            if isinstance(refused, Plan):
                return refused
            if refused is not None:
                backoff = max(backoff or 0.0, refused)
        if result.creates:
            # Look again until the child shows up: a create skipped as "just created" (the
            # watch lags) or refused as existing (an old one still going) is retried; one
            # refused for now (429, 5xx, a quota) after a backoff.
            recheck = CREATE_RECHECK if backoff is None else backoff
            result.requeue_after = min(result.requeue_after or recheck, recheck)
        self.write_status(body, result)
        # Services before scales: a pin only ever moves to pods that are ready and stay,
        # so the Service has left a revision before that revision shrinks.
        self.pin_services(namespace, observed, result)
        existing = {c.revision: c for c in observed.children if c.owner == observed.uid}
        for revision, replicas in result.scales:
            self.kube.scale_child(
                namespace, existing[revision], replicas, result.roles.get(revision)
            )
        for revision, role in result.roles.items():
            child = existing.get(revision)
            if child is not None and child.role != role and revision not in dict(result.scales):
                self.kube.scale_child(namespace, child, None, role)
        for name in result.delete:
            self.kube.delete_child(namespace, name)
        for revision in result.delete_history:
            self.kube.delete_history(namespace, meta["name"], revision)
        for event in result.events:
            self.kube.emit(body, event)
        return None

    def pin_services(self, namespace: str, observed: Observed, result: Plan) -> None:
        for pin in result.services:
            if self.kube.pin_service(namespace, pin.service, pin.selector):
                merged = {**(observed.services.get(pin.service) or {}), **pin.selector}
                self.services[(namespace, pin.service)] = (
                    {k: v for k, v in merged.items() if v is not None},
                    time.monotonic(),
                )
            else:
                self.services[(namespace, pin.service)] = (None, time.monotonic())

    def write_history(self, body: dict[str, Any], observed: Observed, result: Plan) -> None:
        known = {h.revision for h in observed.history}
        number = max((h.number for h in observed.history), default=0)
        for write in result.history:
            template = write.template
            if template is None and write.revision not in known and write.from_child:
                template = self.kube.get_recorded_template(
                    body["metadata"]["namespace"], write.from_child
                )
            exists = write.revision in known
            if not exists:
                number += 1
            self.kube.write_history(body, write, template, number, exists)

    def create(
        self,
        body: dict[str, Any],
        observed: Observed,
        result: Plan,
        revision: str,
        template: Mapping[str, Any],
    ) -> Plan | float | None:
        """Create a child. Refused for what it says (400: a webhook's denial; 422: an
        invalid Deployment), plan again with the refusal (reported like an invalid spec,
        the workload keeps running as it was, no verb consumed) and apply that (returned);
        refused for anything else (429, 5xx: a webhook down, 403: a quota), the rest of the
        plan goes on without that child (as when the watch has not shown it yet) and the
        seconds to wait before trying again are returned."""
        replicas = (result.replicas or {}).get(revision, 0)
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        try:
            self.kube.create_child(
                body, revision, template, replicas, result.roles.get(revision, "canary")
            )
            self.refusals.pop(key, None)
        except (ApiException, ValidationError) as exc:
            if isinstance(exc, ApiException) and exc.status not in SPEC_REFUSALS:
                return self._refused_for_now(body, result, revision, exc)
            if isinstance(exc, ValidationError):
                detail = validation_problem(exc).removeprefix("2.")
                reason = "invalid Deployment"
            else:
                detail, reason = _api_message(exc), str(exc.reason)
            problem = f"the Deployment for revision {revision} was refused: {reason}"
            if detail:
                problem += f" ({detail})"
            retry = dataclasses.replace(observed, refused=f"spec.template: {problem}")
            replacement = plan(retry, self.clock())
            self.kube.patch_status(body, replacement.status.to_k8s())
            for event in replacement.events:
                self.kube.emit(body, event)
            return replacement
        return None

    def _refused_for_now(
        self, body: dict[str, Any], result: Plan, revision: str, exc: ApiException
    ) -> float:
        """A create refused for a reason that is not the spec: say so (a Warning Event)
        and look again after a backoff (1 s doubling to a minute)."""
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        count = self.refusals.get(key, 0) + 1
        self.refusals[key] = count
        delay = float(min(REFUSAL_BACKOFF[0] * 2.0 ** (count - 1), REFUSAL_BACKOFF[1]))
        detail = _api_message(exc)
        message = (
            f"the Deployment for revision {revision} was refused ({exc.status} {exc.reason}"
            f"{': ' + detail if detail else ''}); retrying in {delay:.0f}s (attempt {count})"
        )
        log.warning("%s/%s: %s", key[0], key[1], message)
        self.kube.emit(body, Event("Warning", "CreateRefused", message[:1000]))
        return delay

    def write_status(self, body: dict[str, Any], result: Plan) -> None:
        """Patch the status, guarded by resourceVersion (Conflict: nothing else is done).

        A change of counts and wording only is not written while the Rollout progresses
        (the next transition — a step, an abort, the promotion — carries the counts of its
        moment); otherwise it waits up to STATUS_THROTTLE for company."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        status = result.status.to_k8s()
        if volatile_only(body.get("status") or {}, status):
            if status.get("phase") == "Progressing":
                return  # a transition is coming (a step, an abort, the promotion)
            since = time.monotonic() - self.last_status_write.get(key, 0.0)
            if since < STATUS_THROTTLE:
                wait = STATUS_THROTTLE - since
                result.requeue_after = min(result.requeue_after or wait, wait)
                return
        try:
            written = self.kube.patch_status(body, status)
        except ApiException as exc:
            if exc.status == 422:  # refused by the schema: say so where users look
                self._report_refused_status(body, str(exc.body or exc.reason))
            raise
        if written is not None:
            self.last_status_write[key] = time.monotonic()
            self.remember(written)
            why = _why(body.get("status") or {}, status)
            self.status_writes[why] = self.status_writes.get(why, 0) + 1

    def _report_refused_status(self, body: dict[str, Any], why: str) -> None:
        """A status the API server refuses (422) stops the reconcile (nothing moves without
        its intent recorded): a Warning Event names the refusal, once per message."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if self.refused_status.get(key) == why:
            return
        self.refused_status[key] = why
        message = f"the API server refused the status patch; nothing moves until it is fixed: {why}"
        self.kube.emit(body, Event("Warning", "StatusRefused", message[:1000]))

    async def report_error(self, key: Key, exc: Exception) -> None:
        """A reconcile raised: show it on the Rollout, not only in the log — a
        ``ReconcileError`` condition (the next successful status write removes it) and a
        Warning Event (once per distinct error)."""
        if self.may_write():
            await self._call(self._report_error, key, error_message(exc))

    def _report_error(self, key: Key, message: str) -> None:
        body = self.kube.get_rollout(*key)
        if body is None:
            return
        status = dict(body.get("status") or {})
        old = [c for c in status.get("conditions") or [] if c.get("type") == ERROR_CONDITION]
        if not old or old[0].get("message") != message:
            conditions = [
                c for c in status.get("conditions") or [] if c.get("type") != ERROR_CONDITION
            ]
            since = old[0].get("lastTransitionTime") if old else None
            conditions.append(
                {
                    "type": ERROR_CONDITION,
                    "status": "True",
                    "reason": "ReconcileFailed",
                    "message": message,
                    "lastTransitionTime": since or self.clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
                }
            )
            status["conditions"] = conditions
            with contextlib.suppress(Conflict):  # changed meanwhile: the next reconcile writes
                self.kube.patch_status(body, status)
        if self.reported_errors.get(key) != message:
            self.reported_errors[key] = message
            self.kube.emit(
                body,
                Event(
                    "Warning",
                    ERROR_CONDITION,
                    f"reconcile failed (retried with backoff): {message}"[:1000],
                ),
            )

    def _report_unparsable(self, body: dict[str, Any], problem: str) -> None:
        """A Rollout the models cannot read: say so in a condition, touch nothing else."""
        status = dict(body.get("status") or {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "InvalidSpec"]
        now = self.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
        conditions.append(
            {
                "type": "InvalidSpec",
                "status": "True",
                "reason": "InvalidSpec",
                "message": problem,
                "lastTransitionTime": now,
            }
        )
        status.update(
            conditions=conditions,
            phase="Degraded",
            message=f"invalid spec: {problem}; the workload keeps running as it was",
        )
        try:
            self.kube.patch_status(body, status)
        except Conflict:
            return


_VOLATILE = {
    "message",
    "replicas",
    "readyReplicas",
    "canaryReplicas",
    "canaryReadyReplicas",
    "stableReplicas",
    "stableReadyReplicas",
}


def quiet(body: Mapping[str, Any], observed: Observed, result: Plan) -> bool:
    """Whether :meth:`Controller.apply` would send nothing for this plan: no child, history,
    Service, workload or Event write, no role label to correct and the status as it is.
    Most reconciles (a pod became ready, our own write came back) plan exactly that; they
    skip the hop to an API thread and back."""
    finalizers = (body.get("metadata") or {}).get("finalizers") or []
    if (
        result.workload is not None
        or (result.finalizer is not None and result.finalizer != (GIVE_BACK in finalizers))
        or result.history
        or result.creates
        or result.services
        or result.scales
        or result.delete
        or result.delete_history
        or result.events
    ):
        return False
    roles = {c.revision: c.role for c in observed.children if c.owner == observed.uid}
    if any(rev in roles and roles[rev] != role for rev, role in result.roles.items()):
        return False
    if not result.write_status:
        return True
    old, new = body.get("status") or {}, result.status.to_k8s()
    # Counts only, while progressing: not written (see Controller.write_status).
    return old == new or (volatile_only(old, new) and new.get("phase") == "Progressing")


def _significant(status: dict[str, Any]) -> dict[str, Any]:
    view = {k: v for k, v in status.items() if k not in _VOLATILE}
    view["weights"] = (status.get("weights") or {}).get("desired")
    view["conditions"] = [
        (c.get("type"), c.get("status"), c.get("reason")) for c in status.get("conditions") or []
    ]
    return view


def volatile_only(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """True when two statuses differ only in counts, actual weight and wording."""
    return old != new and _significant(old) == _significant(new)


def _why(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What a status write changed (for the benchmark's breakdown)."""
    if volatile_only(old, new):
        return "counts"
    a, b = _significant(old), _significant(new)
    a.pop("progressedAt", None)
    b.pop("progressedAt", None)
    return "progress" if a == b else "transition"


def _rv(body: dict[str, Any]) -> int:
    try:
        return int((body.get("metadata") or {}).get("resourceVersion") or 0)
    except ValueError:  # resourceVersions are opaque; etcd's happen to be integers
        return 0


def error_message(exc: Exception) -> str:
    """A failed reconcile in words, the same for the same error (an API error without its
    response headers, which differ on every request)."""
    if isinstance(exc, ApiException):
        text = f"{exc.status} {exc.reason}: {_api_message(exc) or exc.body or ''}"
    else:
        text = str(exc)
    return f"{type(exc).__name__}: {text}"[:1000]


def _api_message(exc: Exception) -> str:
    import json

    try:
        return str(json.loads(getattr(exc, "body", "") or "{}").get("message", ""))[:300]
    except ValueError:
        return ""


__all__ = ["Controller", "WorkQueue", "child_name"]
