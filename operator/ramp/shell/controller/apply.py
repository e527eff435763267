"""Carrying out a plan's actions: the one implementation, in the operator and in the
model tests' simulated cluster.

:func:`ramp.core.actions.actions` lists what to send; :class:`Executor` sends it through
two ports: the writes of :class:`ramp.shell.adapters.kube.Kube` (:class:`Writes`) and the
adopted Deployment's of :class:`ramp.shell.adapters.kube_workload.Workloads`
(:class:`WorkloadWrites`). The model tests give it a simulated cluster behind the same
ports. The executor keeps what one pass leaves to the next: when the status was last
written (the throttle's input), creates refused in a row (a backoff) and a create refused
for its spec (the next pass plans with it, :attr:`ramp.core.model.Observed.refused`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from ramp.core.actions import (
    Action,
    Actions,
    AddFinalizer,
    Create,
    DeleteChild,
    DeleteHistory,
    Emit,
    PatchWorkload,
    PinService,
    RemoveFinalizer,
    Scale,
    WriteHistory,
    WriteStatus,
    WriteTraffic,
    actions,
)
from ramp.core.model import Child, Event, HistoryWrite, Observed, Plan, Role
from ramp.core.workload_model import WorkloadPatch
from ramp.shell.adapters.kube import Conflict

log = logging.getLogger("ramp.controller")

CREATE_RECHECK = 1.0
"""Seconds until a reconcile that created a child looks again (until the child shows)."""
SPEC_REFUSALS = (400, 422)
"""A create refused with these codes was refused for what it says (the rest is retried)."""
REFUSAL_BACKOFF = (1.0, 60.0)
"""Seconds before the first retry of a create refused for another reason, and the most."""

Key = tuple[str, str]


class Writes(Protocol):
    """The cluster writes a plan needs (:class:`ramp.shell.adapters.kube.Kube`'s)."""

    def create_child(
        self,
        rollout: Mapping[str, Any],
        revision: str,
        template: Mapping[str, Any],
        replicas: int,
        role: Role,
    ) -> None: ...

    def scale_child(
        self, namespace: str, child: Child, replicas: int | None, role: Role | None
    ) -> None: ...

    def delete_child(self, namespace: str, name: str, kind: str = "Deployment") -> None: ...

    def pin_service(
        self, namespace: str, service: str, selector: Mapping[str, str | None]
    ) -> bool: ...

    def write_history(
        self,
        rollout: Mapping[str, Any],
        write: HistoryWrite,
        template: Mapping[str, Any] | None,
        number: int,
        exists: bool,
    ) -> None: ...

    def delete_history(self, namespace: str, rollout: str, revision: str) -> None: ...

    def write_traffic(self, namespace: str, write: object) -> float | None: ...

    def get_recorded_template(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def patch_status(
        self, rollout: Mapping[str, Any], status: dict[str, Any]
    ) -> dict[str, Any] | None: ...

    def emit(self, rollout: Mapping[str, Any], event: Event) -> None: ...


class WorkloadWrites(Protocol):
    """The writes of ``spec.workloadRef`` (:class:`ramp.shell.adapters.kube_workload.Workloads`)."""

    def add_finalizer(self, body: dict[str, Any]) -> None: ...

    def patch_deployment(self, namespace: str, patch: WorkloadPatch) -> None: ...

    def remove_finalizer(self, body: dict[str, Any], index: int) -> None: ...


@dataclass
class Outcome:
    """How far a pass's actions went (filled as they are carried out: a caller sees it
    also when one raised)."""

    requeue_after: float | None = None
    done: list[Action] = field(default_factory=list)
    refused: str | None = None
    """A create refused for its spec: the problem the next pass plans with."""


class Executor:
    """Sends a plan's actions, in order, and remembers what the next pass needs."""

    def __init__(
        self,
        kube: Writes,
        workloads: WorkloadWrites,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.kube = kube
        self.workloads = workloads
        self.clock = clock
        self.on_written: Callable[[dict[str, Any]], None] = lambda body: None
        """Called with the Rollout a status write returned (the controller keeps it)."""
        self.on_pinned: Callable[[str, str, dict[str, str] | None], None] = lambda *a: None
        self.before_create: Callable[[Mapping[str, Any], str], None] = lambda *a: None
        """Called with (the Rollout, a revision) before its Deployment is created: the
        tracked configuration's copies (:mod:`ramp.shell.adapters.config_copies`)."""
        """Called with (namespace, Service, its selector now; None: the Service is gone)."""
        self.last_status_write: dict[Key, float] = {}
        self.refusals: dict[Key, int] = {}
        """Creates refused in a row for a reason that is not the spec (the backoff)."""
        self.refused: dict[Key, tuple[int, str]] = {}
        """A create refused for its spec: (the Rollout's generation, the problem)."""
        self.refused_status: dict[Key, str] = {}
        self.status_writes: dict[str, int] = {}
        """Status patches sent, by what changed: "transition" (more than counts and the
        progress clock), "progress" (progressedAt only), "counts" (at rest, throttled)."""
        self._lock = threading.Lock()

    # -- what one pass leaves to the next ---------------------------------------------

    def forget(self, key: Key) -> None:
        self.last_status_write.pop(key, None)
        self.refusals.pop(key, None)
        self.refused.pop(key, None)

    def take_refusal(self, key: Key, generation: int) -> str | None:
        """The problem of a create refused for its spec in the last pass (None: none, or
        the spec changed since): the next pass plans with it, once."""
        with self._lock:
            found = self.refused.pop(key, None)
        return found[1] if found is not None and found[0] == generation else None

    def actions(self, body: Mapping[str, Any], observed: Observed, result: Plan) -> Actions:
        """The actions of a plan, given what this process wrote last."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        last = self.last_status_write.get(key)
        return actions(
            result,
            observed,
            body.get("status") or {},
            meta.get("finalizers") or [],
            None if last is None else self.clock() - last,
        )

    # -- carrying them out ------------------------------------------------------------

    def execute(
        self,
        body: dict[str, Any],
        observed: Observed,
        todo: Actions,
        outcome: Outcome | None = None,
    ) -> Outcome:
        """Send ``todo``'s actions in order. Raises :class:`Conflict` when the pass must
        plan again from a fresh read (the status patch conflicted, a history entry is
        gone, the give-back finalizer was just added) and the API error of any other
        refused write; a create refused for its spec stops the pass (``refused``)."""
        out = outcome if outcome is not None else Outcome()
        out.requeue_after = todo.requeue_after
        meta = body["metadata"]
        namespace = meta["namespace"]
        creates = [i for i, a in enumerate(todo.steps) if isinstance(a, Create)]
        backoff: float | None = None
        for i, action in enumerate(todo.steps):
            if isinstance(action, AddFinalizer):
                self.workloads.add_finalizer(body)
                out.done.append(action)
                # Plan again from a fresh read (the Rollout changed): the Deployment is
                # first touched only once the finalizer that gives it back is in place.
                raise Conflict(meta["name"])
            if isinstance(action, PatchWorkload):
                self.workloads.patch_deployment(namespace, action.patch)
            elif isinstance(action, RemoveFinalizer):
                self.workloads.remove_finalizer(body, action.index)
            elif isinstance(action, WriteHistory):
                self.write_history(body, action)
            elif isinstance(action, Create):
                self.before_create(body, action.revision)
                refused = self.create(body, action)
                if isinstance(refused, str):
                    out.refused = refused
                    return out
                if refused is not None:
                    backoff = max(backoff or 0.0, refused)
            elif isinstance(action, WriteStatus):
                self.write_status(body, action)
            elif isinstance(action, PinService):
                self.pin(namespace, observed, action)
            elif isinstance(action, WriteTraffic):
                again = self.kube.write_traffic(namespace, action.write)
                if again is not None:  # refused (the object changed): read it again soon
                    out.requeue_after = min(out.requeue_after or again, again)
            elif isinstance(action, Scale):
                self.kube.scale_child(namespace, action.child, action.replicas, action.role)
            elif isinstance(action, DeleteChild):
                kind = next((c.kind for c in observed.children if c.name == action.name), None)
                self.kube.delete_child(namespace, action.name, kind or "Deployment")
            elif isinstance(action, DeleteHistory):
                self.kube.delete_history(namespace, meta["name"], action.revision)
            elif isinstance(action, Emit):
                self.kube.emit(body, action.event)
            out.done.append(action)
            if creates and i == creates[-1]:
                # Look again until the child shows up: a create skipped as "just created"
                # (the watch lags) or refused as existing (an old one still going) is
                # retried; one refused for now (429, 5xx, a quota) after a backoff.
                recheck = CREATE_RECHECK if backoff is None else backoff
                out.requeue_after = min(out.requeue_after or recheck, recheck)
        return out

    def write_history(self, body: Mapping[str, Any], action: WriteHistory) -> None:
        write = action.write
        template = write.template
        if template is None and not action.exists and write.from_child:
            template = self.kube.get_recorded_template(
                body["metadata"]["namespace"], write.from_child
            )
        self.kube.write_history(body, write, template, action.number, action.exists)

    def pin(self, namespace: str, observed: Observed, action: PinService) -> None:
        pin = action.pin
        if self.kube.pin_service(namespace, pin.service, pin.selector):
            merged = {**(observed.services.get(pin.service) or {}), **pin.selector}
            self.on_pinned(
                namespace, pin.service, {k: v for k, v in merged.items() if v is not None}
            )
        else:
            self.on_pinned(namespace, pin.service, None)

    def create(self, body: Mapping[str, Any], action: Create) -> str | float | None:
        """Create a child. Refused for what it says (400: a webhook's denial; 422: an
        invalid Deployment): the problem, which the next pass plans with (reported like
        an invalid spec, the workload keeps running as it was, no verb consumed); refused
        for anything else (429, 5xx: a webhook down, 403: a quota), the rest of the plan
        goes on without that child (as when the watch has not shown it yet) and the
        seconds to wait before trying again are returned."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        try:
            self.kube.create_child(
                body, action.revision, action.template, action.replicas, action.role
            )
            self.refusals.pop(key, None)
        except (ApiException, ValidationError) as exc:
            if isinstance(exc, ApiException) and exc.status == 404:
                raise  # the namespace is gone (the controller forgets a Rollout gone too)
            if isinstance(exc, ApiException) and exc.status not in SPEC_REFUSALS:
                return self._refused_for_now(body, action.revision, exc)
            if isinstance(exc, ValidationError):
                detail = validation_problem(exc).removeprefix("2.")
                reason = "invalid Deployment"
            else:
                detail, reason = api_message(exc), str(exc.reason)
            problem = f"the Deployment for revision {action.revision} was refused: {reason}"
            if detail:
                problem += f" ({detail})"
            problem = f"spec.template: {problem}"
            with self._lock:
                self.refused[key] = (int(meta.get("generation") or 0), problem)
            return problem
        return None

    def _refused_for_now(self, body: Mapping[str, Any], revision: str, exc: ApiException) -> float:
        """A create refused for a reason that is not the spec: say so (a Warning Event)
        and look again after a backoff (1 s doubling to a minute)."""
        key = (body["metadata"]["namespace"], body["metadata"]["name"])
        count = self.refusals.get(key, 0) + 1
        self.refusals[key] = count
        delay = float(min(REFUSAL_BACKOFF[0] * 2.0 ** (count - 1), REFUSAL_BACKOFF[1]))
        detail = api_message(exc)
        message = (
            f"the Deployment for revision {revision} was refused ({exc.status} {exc.reason}"
            f"{': ' + detail if detail else ''}); retrying in {delay:.0f}s (attempt {count})"
        )
        log.warning("%s/%s: %s", key[0], key[1], message)
        self.kube.emit(body, Event("Warning", "CreateRefused", message[:1000]))
        return delay

    def write_status(self, body: Mapping[str, Any], action: WriteStatus) -> None:
        """Patch the status, guarded by resourceVersion (Conflict: nothing else is done)."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        try:
            written = self.kube.patch_status(body, action.status)
        except ApiException as exc:
            if exc.status == 422:  # refused by the schema: say so where users look
                self._report_refused_status(body, str(exc.body or exc.reason))
            raise
        if written is not None:
            self.last_status_write[key] = self.clock()
            self.on_written(written)
            self.status_writes[action.why] = self.status_writes.get(action.why, 0) + 1

    def _report_refused_status(self, body: Mapping[str, Any], why: str) -> None:
        """A status the API server refuses (422) stops the reconcile (nothing moves without
        its intent recorded): a Warning Event names the refusal, once per message."""
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        if self.refused_status.get(key) == why:
            return
        self.refused_status[key] = why
        message = f"the API server refused the status patch; nothing moves until it is fixed: {why}"
        self.kube.emit(body, Event("Warning", "StatusRefused", message[:1000]))


def validation_problem(exc: ValidationError) -> str:
    """The first validation error, naming its field path the way kubectl does."""
    err = exc.errors()[0]
    path = ".".join(str(p) for p in err["loc"])
    return f"{path}: {err['msg']}"


def api_message(exc: Exception) -> str:
    """The ``message`` of an API error's body (at most 300 characters; "" without)."""
    try:
        return str(json.loads(getattr(exc, "body", "") or "{}").get("message", ""))[:300]
    except ValueError:
        return ""


__all__ = ["Executor", "Outcome", "WorkloadWrites", "Writes", "api_message", "validation_problem"]
