"""The reconcile loop: observe, plan (pure core), apply — one worker per Rollout.

Events only *kick* a Rollout's worker; the worker always reconciles from a fresh read of
the Rollout and the observed children, so a missed or duplicated event changes nothing.
One worker per Rollout serialises its reconciles; a plan's ``requeue_after`` (pauses,
deadlines, analysis intervals) and a periodic resync wake it up without events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from ramp.api.rollout import Rollout
from ramp.core.plan import Child, Observed, Plan, plan
from ramp.kube import Conflict, Kube, child_name

log = logging.getLogger(__name__)

Key = tuple[str, str]
RESYNC_SECONDS = 60.0
ERROR_BACKOFF = 2.0


def validation_problem(exc: ValidationError) -> str:
    """The first validation error, naming its field path the way kubectl does."""
    err = exc.errors()[0]
    path = ".".join(str(p) for p in err["loc"])
    return f"{path}: {err['msg']}"


class WorkQueue:
    """One asyncio worker per key; ``kick`` wakes it, its return value schedules it."""

    def __init__(self, reconcile: Callable[[str, str], Awaitable[float | None]]) -> None:
        self._reconcile = reconcile
        self._wakeups: dict[Key, asyncio.Event] = {}
        self._tasks: dict[Key, asyncio.Task[None]] = {}
        self.enabled = True

    def kick(self, key: Key) -> None:
        wakeup = self._wakeups.setdefault(key, asyncio.Event())
        wakeup.set()
        if key not in self._tasks and self.enabled:
            self._tasks[key] = asyncio.create_task(self._worker(key), name=f"ramp:{key}")

    def forget(self, key: Key) -> None:
        task = self._tasks.pop(key, None)
        self._wakeups.pop(key, None)
        if task is not None:
            task.cancel()

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
        wakeup = self._wakeups[key]
        delay: float | None = 0.0
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wakeup.wait(), timeout=delay)
            wakeup.clear()
            try:
                delay = await self._reconcile(*key)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reconcile of %s/%s failed; retrying in %ss", *key, ERROR_BACKOFF)
                delay = ERROR_BACKOFF
            if delay is None:
                delay = RESYNC_SECONDS


ChildSource = Callable[[str, str], list[Child] | None]
"""Children of a Rollout from the watch-fed index; None when the index is not ready."""

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
    ) -> None:
        self.kube = kube
        self.children = children
        self.clock = clock
        self.observers = observers or []
        self.queue = WorkQueue(self.reconcile)
        self.may_write: Callable[[], bool] = lambda: True

    async def reconcile(self, namespace: str, name: str) -> float | None:
        started = time.monotonic()
        if not self.may_write():
            return None
        body = await asyncio.to_thread(self.kube.get_rollout, namespace, name)
        if body is None:
            self.queue.forget((namespace, name))
            return None
        children = self.children(namespace, name) if self.children else None
        if children is None:
            children = await asyncio.to_thread(self.kube.list_children, namespace, name)
        try:
            rollout = Rollout.model_validate(body)
        except ValidationError as exc:
            await asyncio.to_thread(self._report_unparsable, body, validation_problem(exc))
            return None
        observed = Observed(
            rollout=rollout,
            template=body["spec"]["template"],
            generation=int(body["metadata"].get("generation") or 0),
            annotations=body["metadata"].get("annotations") or {},
            children=tuple(children),
        )
        result = plan(observed, self.clock())
        try:
            applied = await asyncio.to_thread(self.apply, body, observed, result)
        except Conflict:
            return 0.0
        if applied is not None:
            result = applied
        for observer in self.observers:
            observer(namespace, name, result, time.monotonic() - started)
        return result.requeue_after

    def apply(self, body: dict[str, Any], observed: Observed, result: Plan) -> Plan | None:
        """Apply a plan. Returns a replacement plan when a child was refused."""
        if not self.may_write():
            return None
        meta = body["metadata"]
        namespace = meta["namespace"]
        existing = {c.revision: c for c in observed.children}
        status = result.status.to_k8s()
        # The status patch is guarded by resourceVersion: if another writer moved the
        # Rollout since we read it, Conflict is raised and no child is scaled.
        if result.replicas is not None and result.create and result.create not in existing:
            from kubernetes.client.exceptions import ApiException

            try:
                self.kube.create_child(
                    body,
                    result.create,
                    observed.template,
                    result.replicas.get(result.create, 0),
                    result.roles.get(result.create, "canary"),
                )
            except (ApiException, ValidationError) as exc:
                if isinstance(exc, ValidationError):
                    detail = validation_problem(exc).removeprefix("2.")
                    reason = "invalid Deployment"
                else:
                    detail, reason = _api_message(exc), str(exc.reason)
                problem = f"the Deployment for revision {result.create} was refused: {reason}"
                if detail:
                    problem += f" ({detail})"
                retry = Observed(
                    rollout=observed.rollout,
                    template=observed.template,
                    generation=observed.generation,
                    annotations=observed.annotations,
                    children=observed.children,
                    spec_problem=f"spec.template: {problem}",
                )
                replacement = plan(retry, self.clock())
                self.kube.patch_status(body, replacement.status.to_k8s())
                for event in replacement.events:
                    self.kube.emit(body, event)
                return replacement
        self.kube.patch_status(body, status)
        if result.replicas is not None:
            # Grow first, then shrink: pods are added before any are taken away.
            moves = sorted(
                result.replicas.items(),
                key=lambda kv: (kv[1] - (existing[kv[0]].replicas if kv[0] in existing else 0)) < 0,
            )
            for revision, replicas in moves:
                child = existing.get(revision)
                if child is not None:
                    self.kube.scale_child(namespace, child, replicas, result.roles.get(revision))
            for name in result.delete:
                self.kube.delete_child(namespace, name)
            selector = (body["spec"].get("selector") or {}).get("matchLabels") or {}
            for service, revision in result.services.items():
                if not self.kube.pin_service(namespace, service, selector, revision):
                    log.warning("service %s/%s not found; cannot pin it", namespace, service)
        for event in result.events:
            self.kube.emit(body, event)
        return None

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


def _api_message(exc: Exception) -> str:
    import json

    try:
        return str(json.loads(getattr(exc, "body", "") or "{}").get("message", ""))[:300]
    except ValueError:
        return ""


__all__ = ["Controller", "WorkQueue", "child_name"]
