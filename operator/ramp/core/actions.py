"""The writes a plan asks for, as a list of actions in the order the shell sends them.

:func:`actions` turns a :class:`~ramp.core.model.Plan` into that list (pure); the shell's
executor (:mod:`ramp.shell.controller.apply`) carries it out, the same code in the
operator and in the model tests' simulated cluster. The order:

1. the adopted Deployment: the give-back finalizer first (then nothing else: the next
   pass plans from the changed Rollout), the Deployment's patch;
2. history, creates, the status (unless the throttle holds it, :mod:`ramp.core.throttle`),
   then the give-back finalizer removed (after the status: its removal changes the
   Rollout, which would make the status patch conflict);
3. Service pins before scales: a pin only ever moves to pods that are ready and stay, so
   a Service has left a revision before that revision shrinks;
4. scales (shrinks first, as planned) and role labels, deletes of children and of
   history, Events.

A Rollout being deleted writes no status: its Service pins go first (Ramp's keys leave
its Services), then the workload, then its Events; no finalizer is added to it (the API
server refuses new finalizers on an object being deleted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ramp.core.model import Child, Event, HistoryWrite, Observed, Plan, Role, ServicePin
from ramp.core.throttle import status_write, why
from ramp.core.traffic import TrafficWrite
from ramp.core.workload_model import GIVE_BACK_FINALIZER, WorkloadPatch

PARTS = ("workload", "history", "creates", "status", "services", "scales", "deletes", "events")
"""The parts of a plan's actions, in order (an operator stopped mid-way has done a prefix)."""


@dataclass(frozen=True)
class AddFinalizer:
    """Put the give-back finalizer on the Rollout; the pass ends there (the Rollout
    changed: the Deployment is first touched once the finalizer is in place)."""

    part: ClassVar[str] = "workload"


@dataclass(frozen=True)
class PatchWorkload:
    part: ClassVar[str] = "workload"
    patch: WorkloadPatch


@dataclass(frozen=True)
class RemoveFinalizer:
    """Take the give-back finalizer (at ``index`` of the Rollout's finalizers) off."""

    part: ClassVar[str] = "workload"
    index: int


@dataclass(frozen=True)
class WriteHistory:
    """Create a revision's ControllerRevision (number ``number``) or set its marks."""

    part: ClassVar[str] = "history"
    write: HistoryWrite
    number: int
    exists: bool


@dataclass(frozen=True)
class Create:
    part: ClassVar[str] = "creates"
    revision: str
    template: Mapping[str, Any]
    replicas: int
    role: Role


@dataclass(frozen=True)
class WriteStatus:
    part: ClassVar[str] = "status"
    status: dict[str, Any]
    why: str
    """What changed: "transition", "progress" or "counts" (:func:`ramp.core.throttle.why`)."""


@dataclass(frozen=True)
class PinService:
    part: ClassVar[str] = "services"
    pin: ServicePin


@dataclass(frozen=True)
class WriteTraffic:
    """A traffic router's write beyond the Service pins (an HTTPRoute's weights), after
    the pins: the writer of its ``router`` kind carries it out."""

    part: ClassVar[str] = "services"
    write: TrafficWrite


@dataclass(frozen=True)
class Scale:
    """Set a child's replicas and/or role label (None: leave it)."""

    part: ClassVar[str] = "scales"
    child: Child
    replicas: int | None
    role: Role | None


@dataclass(frozen=True)
class DeleteChild:
    part: ClassVar[str] = "deletes"
    name: str


@dataclass(frozen=True)
class DeleteHistory:
    part: ClassVar[str] = "deletes"
    revision: str


@dataclass(frozen=True)
class Emit:
    part: ClassVar[str] = "events"
    event: Event


Action = (
    AddFinalizer
    | PatchWorkload
    | RemoveFinalizer
    | WriteHistory
    | Create
    | WriteStatus
    | PinService
    | WriteTraffic
    | Scale
    | DeleteChild
    | DeleteHistory
    | Emit
)


@dataclass(frozen=True)
class Actions:
    """What to send, in order, and when to look again (the plan's time, or sooner when
    the throttle holds a status back)."""

    steps: tuple[Action, ...]
    requeue_after: float | None


def actions(
    plan: Plan,
    observed: Observed,
    old_status: Mapping[str, Any],
    finalizers: Sequence[str] = (),
    status_written_ago: float | None = None,
) -> Actions:
    """The actions of ``plan``: ``old_status`` and ``finalizers`` are the Rollout's as
    read, ``status_written_ago`` the seconds since this process last wrote its status."""
    steps: list[Action] = []
    requeue = plan.requeue_after
    if not plan.write_status:  # being deleted: Ramp's keys leave its Services first
        steps += [PinService(pin) for pin in plan.services]
        steps += [WriteTraffic(write) for write in plan.traffic]
    if plan.finalizer is True and GIVE_BACK_FINALIZER not in finalizers and not observed.deleting:
        return Actions((*steps, AddFinalizer()), requeue)
    if plan.workload is not None:
        steps.append(PatchWorkload(plan.workload))
    release: list[Action] = []
    if plan.finalizer is False and GIVE_BACK_FINALIZER in finalizers:
        release.append(RemoveFinalizer(list(finalizers).index(GIVE_BACK_FINALIZER)))
    if not plan.write_status:
        steps += release
        steps += [Emit(event) for event in plan.events]
        return Actions(tuple(steps), requeue)
    known = {h.revision for h in observed.history}
    number = max((h.number for h in observed.history), default=0)
    for write in plan.history:
        exists = write.revision in known
        if not exists:
            number += 1
        steps.append(WriteHistory(write, number, exists))
    for revision, template in plan.creates.items():
        replicas = (plan.replicas or {}).get(revision, 0)
        steps.append(Create(revision, template, replicas, plan.roles.get(revision, "canary")))
    new = plan.status.to_k8s()
    decision = status_write(old_status, new, status_written_ago)
    if decision.write:
        steps.append(WriteStatus(new, why(old_status, new)))
    elif decision.wait is not None:
        requeue = min(requeue or decision.wait, decision.wait)
    # The finalizer leaves after the status: taking it off changes the Rollout, and the
    # status patch (guarded by the resourceVersion read) would then always conflict; the
    # pass that gives the Deployment back would lose its status (the progress it recorded,
    # a recreated child's among them) and its Events. Not written (a conflict, a restart),
    # the next pass removes it.
    steps += release
    steps += [PinService(pin) for pin in plan.services]
    steps += [WriteTraffic(write) for write in plan.traffic]
    existing = {c.revision: c for c in observed.children if c.owner == observed.uid}
    scaled = dict(plan.scales)
    for revision, replicas in plan.scales:
        child = existing.get(revision)
        role = plan.roles.get(revision)
        if child is not None and (replicas != child.replicas or (role and role != child.role)):
            steps.append(Scale(child, replicas, role))
    for revision, role in plan.roles.items():
        child = existing.get(revision)
        if child is not None and child.role != role and revision not in scaled:
            steps.append(Scale(child, None, role))
    steps += [DeleteChild(name) for name in plan.delete]
    steps += [DeleteHistory(revision) for revision in plan.delete_history]
    steps += [Emit(event) for event in plan.events]
    return Actions(tuple(steps), requeue)


__all__ = [
    "PARTS",
    "Action",
    "Actions",
    "AddFinalizer",
    "Create",
    "DeleteChild",
    "DeleteHistory",
    "Emit",
    "PatchWorkload",
    "PinService",
    "RemoveFinalizer",
    "Scale",
    "WriteHistory",
    "WriteStatus",
    "WriteTraffic",
    "actions",
]
