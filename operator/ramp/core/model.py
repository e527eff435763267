"""What goes into the planner and what comes out of it: plain data, no behaviour.

:class:`Observed` carries everything the shell saw and measured — the Rollout, its owned
child Deployments, the revision history (ControllerRevisions), the pinned Services, the
resolved analysis runs — and :class:`Plan` carries every action: scales in order,
creates, deletes, history writes, Service pins, the status, Events, the analysis runs
to measure and when to look again. The shell only executes a Plan.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ramp.api.rollout import RolloutStatus
from ramp.api.verbs import TOKEN_VERBS as TOKEN_VERBS
from ramp.core.release_clock import ReleaseEnd
from ramp.core.resolve import ResolvedAnalysis
from ramp.core.split import Side
from ramp.core.traffic import TrafficWrite
from ramp.core.workload_model import Workload, WorkloadPatch

Role = Literal["stable", "canary", "previous"]
PROGRESS_GRAIN = 0.1
"""Fraction of progressDeadlineSeconds within which a further progress is not recorded
(the deadline counts from the end of the grain: an abort is never early and at most 10 %
late)."""


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ceil(t: datetime) -> str:
    """``t`` rounded up to the second: for the start or end of a window that must not be
    shorter than asked (the status keeps whole seconds)."""
    from datetime import timedelta

    return iso(t + timedelta(seconds=1) if t.microsecond else t)


def parse_iso(s: str | None) -> datetime | None:
    if not s:
        return None
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Child:
    """One observed Deployment (or ReplicaSet: ``kind``) labelled as a child of the Rollout."""

    name: str
    revision: str
    role: str | None
    replicas: int
    """``spec.replicas``."""
    ready: int
    """``status.readyReplicas``."""
    current: int
    """``status.replicas``: pods that exist."""
    settled: bool
    """The Deployment controller has seen the latest spec (observedGeneration)."""
    created: str = ""
    """``metadata.creationTimestamp`` (to keep the newest as history)."""
    owner: str = ""
    """uid of its controller ownerReference ("" when it has none)."""
    deleting: bool = False
    """``metadata.deletionTimestamp`` is set: it is going away."""
    version: int = 0
    """``metadata.resourceVersion`` as a number (0: unknown); the planner never reads it,
    the shell compares it with its own writes' answers (``ramp.shell.adapters.expectations``)."""
    drift: str | None = None
    """Why its pod template is not its revision's (someone edited it: ``kubectl set
    image``), or None (see :func:`ramp.core.drift.template_drift`)."""
    pod_labels: tuple[tuple[str, str], ...] | None = None
    """The labels of its pod template, sorted (None: not observed). What its pods carry
    when the revision history no longer holds the revision's template."""
    progressed: str = ""
    """When its Deployment controller last saw it progress (``status.conditions``
    Progressing's ``lastUpdateTime``: a pod of its template created, one more ready or
    available; "" when not known: always for a ReplicaSet)."""
    kind: str = "Deployment"
    """``Deployment`` or ``ReplicaSet`` (``--children``): what the shell writes to scale or
    delete it. The planner never reads it."""

    @property
    def side(self) -> Side:
        return Side(desired=self.replicas, ready=self.ready)

    @property
    def serving(self) -> int:
        """Ready pods that stay: never more than it is asked to run."""
        return min(self.ready, self.replicas)

    @property
    def converged(self) -> bool:
        """All its pods exist, are ready, and no extra pods are left."""
        return self.settled and self.ready >= self.replicas and self.current == self.replicas


@dataclass(frozen=True)
class HistoryEntry:
    """One revision's ControllerRevision: the template exactly as written, and marks."""

    revision: str
    number: int
    template: Mapping[str, Any] | None
    promoted_at: str | None = None
    aborted: str | None = None


@dataclass(frozen=True)
class Observed:
    """Everything :func:`ramp.core.plan.plan` needs, read and measured by the shell."""

    rollout: Any
    """The :class:`ramp.api.rollout.Rollout`, its status already holding the
    measurements the shell took for this reconcile."""
    template: Mapping[str, Any]
    """``spec.template`` exactly as stored (hashed and copied into the canary)."""
    generation: int
    annotations: Mapping[str, str]
    children: tuple[Child, ...]
    uid: str = ""
    deleting: bool = False
    """The Rollout has a deletionTimestamp: garbage collection takes it from here."""
    history: tuple[HistoryEntry, ...] = ()
    services: Mapping[str, Mapping[str, str] | None] = field(default_factory=dict)
    """Selector of each Service the strategy pins (None: the Service does not exist;
    a name not present: not known yet, pin it unconditionally)."""
    endpoints: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    """Ready endpoints by revision in each pinned Service's EndpointSlices (what
    kube-proxy programs); a Service not present: not known."""
    others: Mapping[str, int] = field(default_factory=dict)
    """Ready endpoints in the same EndpointSlices (Services of ``endpoints``) whose pods
    carry no revision label: an adopted Deployment's pods, once its Services are
    unpinned at a give-back."""
    analysis: Mapping[str, ResolvedAnalysis | str] = field(default_factory=dict)
    """Resolved analysis runs by name (``step-N``, ``background``), or why not."""
    spec_problem: str | None = None
    """A problem the shell found (failed to parse, child rejected by the API server)."""
    workload: Workload | None = None
    """The Deployment of ``spec.workloadRef`` (or the one still held: ``status.workload``)."""
    deleted_at: str | None = None
    """The Rollout's ``metadata.deletionTimestamp``."""
    refused: str | None = None
    """The API server refused a child for what it says (400, 422: a webhook's denial, an
    invalid Deployment): reported like an invalid spec, but no verb is consumed by it."""
    traffic: Mapping[str, Any] = field(default_factory=dict)
    """What the shell read for each traffic router beyond the Services, by the router's
    ``kind`` (see :mod:`ramp.core.traffic`)."""


@dataclass(frozen=True)
class Event:
    """A Kubernetes Event to emit on the Rollout."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str
    post: bool = True
    """False: observed in-process (metrics, notifications) but not posted to the API
    server — the step history lives in the status (``stepHistory``), not in Events."""


@dataclass(frozen=True)
class GateResult:
    """The state of an analysis gate, computed from the measurements in the status."""

    outcome: Literal["Running", "Passed", "Failed", "Inconclusive", "Error"]
    message: str
    next_check_in: float | None = None
    abort: bool = False
    """For Inconclusive/Error: the metric's policy asks to abort instead of pausing."""


@dataclass(frozen=True)
class HistoryWrite:
    """Create a revision's ControllerRevision, or set its marks (None removes one).

    ``template`` None with ``from_child`` set: the shell copies the template recorded
    on that child Deployment (history written by an older operator version)."""

    revision: str
    template: Mapping[str, Any] | None
    annotations: Mapping[str, str | None]
    from_child: str | None = None


@dataclass(frozen=True)
class ServicePin:
    """Set the keys Ramp owns in a Service's selector (others are left alone); a key
    whose value is None is removed (a merge patch's null)."""

    service: str
    selector: Mapping[str, str | None]
    revision: str


@dataclass
class Plan:
    """What the shell should do, in this order: history, creates, status, Service pins,
    scales (in the order given), deletes, Events. ``replicas`` None: leave children."""

    status: RolloutStatus
    replicas: dict[str, int] | None = None
    """Desired ``spec.replicas`` per revision (each live child; absent = leave)."""
    scales: list[tuple[str, int]] = field(default_factory=list)
    """(revision, replicas) of the children whose count changes: shrinking ones first.

    A shrink is only ever planned against pods of the other side that are *already*
    ready, so it is safe before the grow; a grow is planned within ``maxSurge`` of the
    counts after the shrink, so doing it second keeps the surge even if the operator
    stops in between."""
    roles: dict[str, Role] = field(default_factory=dict)
    creates: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    """Revision → pod template of a Deployment to create (at ``replicas[revision]``)."""
    delete: list[str] = field(default_factory=list)
    """Names of child Deployments to delete (history beyond the limit)."""
    history: list[HistoryWrite] = field(default_factory=list)
    delete_history: list[str] = field(default_factory=list)
    """Revisions whose ControllerRevision goes (beyond ``revisionHistoryLimit``)."""
    services: list[ServicePin] = field(default_factory=list)
    traffic: list[TrafficWrite] = field(default_factory=list)
    """Writes of the traffic routers beyond the Services' pins (see
    :mod:`ramp.core.traffic`): the shell hands each to the writer of its ``router``."""
    events: list[Event] = field(default_factory=list)
    measure: list[str] = field(default_factory=list)
    """Analysis runs the plan consulted but the shell did not resolve: measure them."""
    requeue_after: float | None = None
    write_status: bool = True
    """False when the Rollout is being deleted: nothing at all is written."""
    workload: WorkloadPatch | None = None
    """Patch the adopted Deployment (before anything else; executed even when deleting)."""
    finalizer: bool | None = None
    """The give-back finalizer: True keep it on the Rollout, False remove it."""
    released: ReleaseEnd | None = None
    """A release that ended in this pass: its durations (for the operator's metrics)."""

    @property
    def create(self) -> str | None:
        """The first revision to create (most plans create at most one)."""
        return next(iter(self.creates), None)
