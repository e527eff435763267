"""Watch events to kicks: each handler kicks the Rollout's reconcile worker.

The reconcile itself lives in :mod:`ramp.shell.controller.controller`; these handlers keep
the watch-fed indexes and translate events into kicks. The child Deployments come from a
list+watch of Ramp's own (:mod:`ramp.shell.runtime.child_watch`, :func:`child_event`),
everything else through kopf.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any, cast

import kopf

from ramp import GROUP, PREFIX, VERSION
from ramp.api.labels import ROLLOUT_LABEL
from ramp.api.rollout import Phase
from ramp.core.plan import Child
from ramp.core.workload_model import MANAGED_ANNOTATION, WATCHED_VALUE
from ramp.shell.adapters.kube_objects import (
    CHILD_KINDS,
    child_from_deployment,
    endpoint_pods,
    rollout_label,
    summarize_history,
)
from ramp.shell.controller.controller import Controller
from ramp.shell.controller.workqueue import Cause

log = logging.getLogger("ramp.handlers")  # its name before the shell package

CHILD_LABELS = {ROLLOUT_LABEL: kopf.PRESENT}
SERVICE_NAME = "kubernetes.io/service-name"
LIST_WAIT = 30.0
"""Seconds a Rollout's first event waits for the child watch's first list of its namespace
(past that, its reconcile reads the children from the API)."""
IDLE_WORKER_SECONDS = 0.5
"""How long kopf's per-object worker waits for the object's next event (kopf: 5 s)."""


class State:
    """Operator-wide state shared by the handlers (set up by ``ramp.__main__``)."""

    controller: Controller | None = None
    templates: Any = None
    history: Any = None
    endpoints: Any = None
    seen: dict[tuple[str, str], Child] = {}
    """The last planner-relevant view of each child Deployment (see :func:`relevant`)."""
    children: dict[tuple[str, str], dict[str, Child]] = {}
    """This shard's child Deployments by (namespace, Rollout label), then by name."""
    placed: dict[tuple[str, str], tuple[str, str]] = {}
    """(namespace, child name) -> (Rollout label, Rollout name) of each child kept."""
    listed: set[str | None] = set()
    """The namespaces whose children are listed (None: all namespaces), of both kinds."""
    listed_kinds: dict[str | None, set[str]] = {}
    """The kinds of children listed so far in each namespace (see :func:`children_listed`)."""
    watching = False
    """Whether the child watch runs (set by :mod:`ramp.shell.runtime.child_watch`)."""
    stopped_with_workers: list[asyncio.Task[Any]] = []
    """Runtime tasks that start tasks of their own (the child and route watches), stopped
    with the workers: at exit kopf waits up to 5 s for every task started after it before
    cancelling it, so a graceful stop (SIGTERM, the Lease handed over) would take 5 s more."""


def owned(namespace: str | None, rollout: str) -> bool:
    """Whether this process's shard handles the Rollout (every Rollout without shards).
    Another shard's children and history are neither indexed nor kicked: the memory and
    the event handling of a shard scale with its own Rollouts."""
    controller = State.controller
    return controller is None or not namespace or controller.owns(namespace, rollout)


def rollout_of(labels: Mapping[str, Any], body: Mapping[str, Any]) -> str:
    """The name of the Rollout a child or history object belongs to: its controller
    owner's name when that is a Rollout (a label value cannot hold a long name: see
    :func:`ramp.core.names.rollout_label`), else the label (an orphan: short names only)."""
    for ref in body.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "Rollout":
            name = str(ref.get("name") or "")
            if rollout_label(name) == labels.get(ROLLOUT_LABEL):
                return name
    return str(labels.get(ROLLOUT_LABEL, ""))


def _owned_child(
    namespace: str | None, labels: kopf.Labels, body: Mapping[str, Any] | None = None
) -> bool:
    # Checked inside the handlers, not as kopf ``when=`` filters: kopf builds a filter's
    # keyword arguments on every event of every handler, which cost more than the check.
    # An adopted Deployment (WATCHED_VALUE) is never a child (workload_changed kicks it).
    if labels.get(ROLLOUT_LABEL, "") == WATCHED_VALUE:
        return False
    return owned(namespace, rollout_of(labels, body or {}))


class NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff base ("essence"), which Ramp does not use: it serves on.create /
    on.update / on.delete handlers, and Ramp has none (``test_kicks`` checks). kopf builds
    it for every event all the same, as a deep copy of the whole body (a Deployment with
    its managedFields), which took about 7 % of the operator's CPU; here it is empty."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None
    ) -> kopf.BodyEssence:
        return cast(kopf.BodyEssence, {})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None


def relevant(
    type: str | None,
    namespace: str,
    body: Mapping[str, Any],
    progressing: bool = False,
    child: Child | None = None,
) -> bool:
    """Whether a child Deployment's event can change what the planner does.

    The Deployment controller writes status fields the planner never reads
    (``updatedReplicas``, ``availableReplicas``, conditions' timestamps; the planner
    reads the Progressing condition's time only when something else woke it): such an event
    would wake a reconcile that plans exactly what the last one did. The resourceVersion
    is left out of the comparison (the expectations read it from the index when the next
    reconcile runs); a deletion always counts.

    While its Rollout is ``progressing`` (a canary being shifted, a count being reached)
    two more kinds of events wake nothing (:func:`moves_the_plan`): the echo of our own
    write (the object exactly as our scale or create answered it: the reconcile that
    wrote it knew all of it), and a pod more or less that only takes a child further
    from its count."""
    meta = body.get("metadata", {})
    key = (namespace, str(meta.get("name", "")))
    if type == "DELETED":
        State.seen.pop(key, None)
        return True
    child = child or child_from_deployment(body)
    # The Progressing condition's time moves with the counts (a pod created, one more
    # ready): the planner reads it from the index when a count or a timer wakes it.
    view = dataclasses.replace(child, version=0, progressed="")
    old = State.seen.get(key)
    if old == view:
        return False
    State.seen[key] = view
    if not progressing or old is None:
        return True
    controller = State.controller
    if controller is not None and controller.kube.expectations.echo(key, child.version):
        return False
    return moves_the_plan(old, view)


def moves_the_plan(old: Child, new: Child) -> bool:
    """Whether a child's change, seen while its Rollout is Progressing, can unblock the
    plan: anything but its counts changed, it converged or stopped converging
    (:attr:`Child.converged`), a pod became ready or a pod is gone. A step waits for
    pods to be ready and extra pods to be gone (each ready pod of the canary may let the
    stable scale down, each pod gone leaves room under maxSurge); a pod created or
    unready, or the Deployment controller catching up with a spec (``settled``) while
    the child stays short of its count, only makes it wait longer. The counts of a
    Progressing Rollout are written with its next transition, not on their own."""
    same = dataclasses.replace(
        old, ready=new.ready, current=new.current, settled=new.settled, progressed=new.progressed
    )
    if same != new:
        return True  # more than counts changed
    return old.converged != new.converged or new.ready > old.ready or new.current < old.current


def progressing(namespace: str, rollout: str) -> bool:
    """Whether the newest body seen of a Rollout says it is Progressing."""
    controller = State.controller
    body = controller.bodies.get((namespace, rollout)) if controller is not None else None
    if not body:
        return False
    return bool((body.get("status") or {}).get("phase") == Phase.PROGRESSING.value)


def template_of(namespace: str, name: str) -> dict[str, Any] | None:
    """An AnalysisTemplate from the watch-fed index (None when not there yet)."""
    if State.templates is None:
        return None
    for spec in State.templates.get((namespace, name), []):
        return {"spec": spec}
    return None


def children_of(namespace: str, name: str) -> list[Child] | None:
    """Children of a Rollout from the watch (None before its namespace is listed)."""
    if None not in State.listed and namespace not in State.listed:
        return None
    return list(State.children.get((namespace, rollout_label(name)), {}).values())


def child_event(type: str | None, body: Mapping[str, Any]) -> None:
    """A labelled Deployment's watch event (None: listed): keep this shard's children,
    kick the Rollout when the change can change its plan (:func:`relevant`). An adopted
    Deployment (spec.workloadRef: the label's WATCHED_VALUE) kicks the Rollout holding it."""
    meta = body.get("metadata") or {}
    namespace = str(meta.get("namespace") or "")
    labels = meta.get("labels") or {}
    label = labels.get(ROLLOUT_LABEL)
    if label is None or not namespace:
        return
    if label == WATCHED_VALUE:
        holder = (meta.get("annotations") or {}).get(MANAGED_ANNOTATION)
        if holder:
            _kick(namespace, holder, Cause.WORKLOAD)
        return
    rollout = rollout_of(labels, body)
    if not owned(namespace, rollout):
        return
    key = (namespace, str(meta.get("name") or ""))
    if type == "DELETED":
        _drop(key)
        State.seen.pop(key, None)
        _kick(namespace, rollout, Cause.CHILD)
        return
    child = child_from_deployment(body)
    if State.placed.get(key, (label, rollout)) != (label, rollout):
        _drop(key)  # relabelled: no longer the other Rollout's
    State.placed[key] = (label, rollout)
    State.children.setdefault((namespace, label), {})[key[1]] = child
    if relevant(type, namespace, body, progressing(namespace, rollout), child):
        _kick(namespace, rollout, Cause.CHILD)


def _kick(namespace: str, rollout: str, cause: Cause) -> None:
    if State.controller is not None:
        State.controller.queue.kick((namespace, rollout), cause)


def _drop(key: tuple[str, str]) -> tuple[str, str] | None:
    place = State.placed.pop(key, None)
    if place is not None:
        kept = State.children.get((key[0], place[0]))
        if kept is not None:
            kept.pop(key[1], None)
            if not kept:
                State.children.pop((key[0], place[0]), None)
    return place


def children_listed(
    scope: str | None, items: list[dict[str, Any]], kind: str = "Deployment"
) -> None:
    """A (re-)list of the labelled Deployments (or ReplicaSets: ``kind``) of one namespace
    (None: all): each is an event; a child of that kind kept but not listed was deleted
    while the watch was away (its Rollout is kicked). The namespace counts as listed once
    both kinds are."""
    present = set()
    for body in items:
        meta = body.get("metadata") or {}
        present.add((str(meta.get("namespace") or ""), str(meta.get("name") or "")))
        child_event(None, {**body, "kind": kind})
    gone = [
        k
        for k in State.placed
        if (scope is None or k[0] == scope) and k not in present and _kind_of(k) == kind
    ]
    for key in gone:
        place = _drop(key)
        State.seen.pop(key, None)
        if place is not None:
            _kick(key[0], place[1], Cause.CHILD)
    kinds = State.listed_kinds.setdefault(scope, set())
    kinds.add(kind)
    if kinds >= set(CHILD_KINDS):
        State.listed.add(scope)


def _kind_of(key: tuple[str, str]) -> str:
    place = State.placed.get(key)
    child = State.children.get((key[0], place[0]), {}).get(key[1]) if place else None
    return child.kind if child is not None else "Deployment"


def children_unwatched(scope: str | None) -> None:
    """A namespace is no longer watched (None: all): forget its children."""
    State.listed.discard(scope)
    State.listed_kinds.pop(scope, None)
    for key in [k for k in State.placed if scope is None or k[0] == scope]:
        _drop(key)
        State.seen.pop(key, None)


def history_of(namespace: str, name: str) -> list[dict[str, Any]] | None:
    """ControllerRevisions of a Rollout from the kopf index (None before it is known)."""
    if State.history is None:
        return None
    return list(State.history.get((namespace, rollout_label(name)), []))


def endpoints_of(namespace: str, service: str) -> list[tuple[str, bool]] | None:
    """(pod name, ready) of a Service's EndpointSlices from the kopf index."""
    if State.endpoints is None:
        return None
    return [e for part in State.endpoints.get((namespace, service), []) for e in part]


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    """Keep kopf's own bookkeeping under our prefix and its watches from freezing."""
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PREFIX)
    settings.persistence.diffbase_storage = NoDiffBase(
        prefix=PREFIX, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{PREFIX}/finalizer"
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.watching.inactivity_timeout = 330
    # Server-side label selectors: the API server streams only what the indexes keep
    # (kopf's handler filters are client-side: everything else would be decoded too).
    settings.watching.label_selectors["apps", "controllerrevisions"] = ROLLOUT_LABEL
    settings.watching.label_selectors["discovery.k8s.io", "endpointslices"] = SERVICE_NAME
    # kopf's per-object worker keeps the last event's whole body (a Deployment with its
    # managedFields: tens of KB as Python objects) while it idles; with the default 5 s
    # nearly every object of a thousand rolling Rollouts holds one. Our handlers only
    # index and kick: a worker that exits sooner costs a task spawn at the object's next
    # event. (The benchmark's peak at 500 Rollouts did not move measurably with it: the
    # peak is the events in flight while the event loop is saturated.)
    settings.queueing.idle_timeout = IDLE_WORKER_SECONDS
    settings.posting.level = logging.WARNING
    settings.networking.request_timeout = 30
    if not logging.getLogger("ramp").isEnabledFor(logging.DEBUG):
        # kopf logs every handler call of every event at INFO: noise at a thousand Rollouts.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


@kopf.index("apps", "v1", "controllerrevisions", labels=CHILD_LABELS)
async def rollout_history(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[tuple[str | None, str], dict[str, Any]]:
    """Index the revision history (ControllerRevisions) by (namespace, owning Rollout):
    this shard's only."""
    if not _owned_child(namespace, labels, body):
        return {}
    return {(namespace, labels[ROLLOUT_LABEL]): summarize_history(body)}


@kopf.index(
    "discovery.k8s.io",
    "v1",
    "endpointslices",
    labels={SERVICE_NAME: kopf.PRESENT},
)
async def service_endpoints(
    namespace: str | None, labels: kopf.Labels, body: kopf.Body, **_: Any
) -> dict[tuple[str | None, str], list[tuple[str, bool]]]:
    """Index EndpointSlices by (namespace, Service): which pods kube-proxy programs."""
    return {(namespace, labels[SERVICE_NAME]): endpoint_pods(body)}


@kopf.index(GROUP, VERSION, "analysistemplates")
async def analysis_templates(
    namespace: str | None, name: str, spec: kopf.Spec, **_: Any
) -> dict[tuple[str | None, str], dict[str, Any]]:
    """Index AnalysisTemplates by (namespace, name): analysis reads no template itself."""
    return {(namespace, name): copy.deepcopy(dict(spec))}


@kopf.on.event(GROUP, VERSION, "rollouts")
async def rollout_changed(
    type: str,
    namespace: str | None,
    name: str,
    body: kopf.Body,
    analysis_templates: kopf.Index[Any, Any] | None = None,
    rollout_history: kopf.Index[Any, Any] | None = None,
    service_endpoints: kopf.Index[Any, Any] | None = None,
    **_: Any,
) -> None:
    """A Rollout changed (or was listed at start-up): reconcile it; forget it when deleted."""
    State.templates = analysis_templates
    State.history = rollout_history
    State.endpoints = service_endpoints
    if State.controller is None or not namespace:
        return
    if not State.controller.owns(namespace, name):
        return  # another shard's Rollout: not kept, not reconciled
    if type == "DELETED":
        State.controller.forget((namespace, name))
        for key in [k for k in State.seen if k[0] == namespace and k[1].startswith(f"{name}-")]:
            State.seen.pop(key, None)  # (a look-alike's entry costs one extra kick at most)
    else:
        State.controller.remember(dict(body))  # kept compact (see compact_rollout)
        State.controller.routes.remember(namespace, name, body)  # the routes it names
        if State.watching and not _is_listed(namespace):
            await _until_listed(namespace)
        State.controller.queue.kick((namespace, name), Cause.ROLLOUT)


def _is_listed(namespace: str) -> bool:
    return None in State.listed or namespace in State.listed


async def _until_listed(namespace: str) -> None:
    """Wait (at most :data:`LIST_WAIT`) for the child watch's first list of a namespace:
    a reconcile before it would read the children from the API, one list per Rollout at
    start-up (kopf's own indexes hold every handler back until they are listed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LIST_WAIT
    while not _is_listed(namespace) and loop.time() < deadline:
        await asyncio.sleep(0.05)


@kopf.on.cleanup()
async def stop_workers(**_: Any) -> None:
    """Stop every reconcile worker before the operator exits."""
    tasks, State.stopped_with_workers = State.stopped_with_workers, []
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if State.controller is not None:
        await State.controller.queue.stop()
        await State.controller.gates.close()
        log.info("ramp stats %s", json.dumps(State.controller.summary()))
