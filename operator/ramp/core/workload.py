"""``spec.workloadRef``: adopt an existing Deployment, hold it, give it back. Pure.

The referenced Deployment's pod template is the Rollout's template (the shell puts it in
:attr:`Observed.template`), so a change of it starts a rollout through the strategy like
a template change does. Around the plan of every pass, :func:`with_workload`
decides what happens to the Deployment itself:

- **No bypass.** From the first pass on the Deployment is held at ``spec.paused: true``
  (a paused Deployment still scales, but never rolls its pods to a new template), and
  annotated ``ramp.dev/workload-of: <rollout>`` and labelled ``ramp.dev/rollout:
  Adopted`` (the label the operator's watch selects on the API server: its changes reach
  the operator at once). Someone unpausing it is undone at once.
- **Adoption without downtime** (``scaleDown``): ``progressively`` scales the Deployment
  down only as Ramp's pods are ready — its replicas are ``max(0, R - maxUnavailable -
  ready Ramp pods)``, never raised — and, while it still runs pods, Ramp's stable grows
  within ``maxSurge`` of ``R`` across both; ``onsuccess`` scales it to 0 once Ramp's
  stable is fully ready; ``never`` leaves its replicas alone (both run: twice the pods).
  This holds for every revision, not only the first: it is computed from what serves.
- **GitOps-aware.** Ramp records the replicas it wrote (``ramp.dev/scaled-to``). A
  different value means someone else set them: Ramp says so (Event and the
  ``WorkloadConflict`` condition naming the field and its manager, with the
  ``ignoreDifferences`` to add) and leaves the field alone for a back-off (1, 2, 5, 10
  minutes) instead of flapping; then it asserts it once more.
- **Give-back.** When the Rollout is deleted (a bounded finalizer holds it) or its
  ``workloadRef`` is removed, the Deployment is unpaused and scaled to the Rollout's
  replicas first; only when its pods are ready is it released (annotations and label
  removed, finalizer dropped) — so Ramp's pods go only after the Deployment's serve again.
  A deleted Rollout first takes its revision key out of the Services it pinned (they
  select the Deployment's pods again), then drops the finalizer.
"""

from __future__ import annotations

from datetime import timedelta

from ramp.api.labels import ROLLOUT_LABEL
from ramp.api.rollout import Condition, WorkloadStatus
from ramp.core.draft import Draft
from ramp.core.model import Plan, iso, parse_iso
from ramp.core.routers import routers_for
from ramp.core.workload_model import (
    MANAGED_ANNOTATION,
    ORIGINAL_ANNOTATION,
    SCALED_TO_ANNOTATION,
    WATCHED_VALUE,
    Workload,
    WorkloadPatch,
)

BACKOFF_SECONDS = (60, 120, 300, 600)
"""How long Ramp leaves a fought-over field alone after the 1st, 2nd, 3rd, ... fight."""
QUIET_SECONDS = 60
"""A conflict is over when Ramp's value held this long after it asserted it again."""
GIVE_BACK_SECONDS = 300
"""The finalizer is dropped at the latest this long after the deletion was asked for."""
IGNORE_DIFFERENCES = (
    "ignoreDifferences: [{group: apps, kind: Deployment, name: %s, "
    "jsonPointers: [/spec/replicas, /spec/paused]}] (docs/argocd.md)"
)


def rollout_name(d: Draft) -> str:
    return str((d.obs.rollout.metadata or {}).get("name", ""))


def workload_problem(d: Draft) -> str | None:
    """What keeps the referenced Deployment from being adopted (None: nothing)."""
    ref = d.spec.workload_ref
    if ref is None:
        return None
    w = d.obs.workload
    if w is None or not w.found:
        return f"spec.workloadRef: deployment {ref.name} not found"
    if w.managed_by and w.managed_by != rollout_name(d):
        return f"spec.workloadRef: deployment {ref.name} is held by rollout {w.managed_by}"
    labels = ((w.template or {}).get("metadata") or {}).get("labels") or {}
    for key, value in (d.spec.selector.match_labels or {}).items():
        if labels.get(key) != value:
            return (
                f"spec.selector: {key}={value} does not match the pod labels of "
                f"deployment {ref.name}"
            )
    return None


def with_workload(d: Draft, result: Plan) -> Plan:
    """Add what happens to the adopted (or formerly adopted) Deployment to ``result``."""
    w = d.obs.workload
    mine = w is not None and w.found and w.managed_by == rollout_name(d)
    if d.obs.deleting or (d.spec.workload_ref is None and w is not None):
        if w is None or not mine:
            if d.obs.deleting and release_traffic(d, result):
                # The Deployment it held is unknown (workloadRef removed and the status
                # lost): the Services still lose Ramp's key before its pods go (make
                # fuzz-for, seed 171873156: they selected nothing once they had gone).
                result.requeue_after = 1.0
                return result
            result.finalizer = False
            result.status.workload = None
            return result
        return give_back(d, result, w)
    if d.spec.workload_ref is None:
        result.status.workload = None
        result.status.workload_observed_generation = None
        result.finalizer = False
        return result
    if w is None or (not mine and workload_problem(d) is not None):
        return result  # reported as an invalid spec; nothing is touched
    return hold_workload(d, result, w)


# -- adoption ---------------------------------------------------------------------


def hold_workload(d: Draft, result: Plan, w: Workload) -> Plan:
    ref = d.spec.workload_ref
    assert ref is not None
    st = result.status
    result.finalizer = True
    st.workload_observed_generation = w.generation
    planned = result.replicas or {}
    serving = sum(min(c.ready, planned.get(c.revision, c.replicas)) for c in d.live_children)
    mode = ref.mode
    want = w.replicas
    if mode == "progressively":
        want = min(w.replicas, max(0, d.total - d.limits.unavailable - serving))
    elif mode == "onsuccess":
        stable = d.child(st.stable_revision)
        if stable is not None and min(stable.ready, stable.replicas) >= d.total:
            want = 0
    old = d.old.workload
    state = "Adopted" if want == 0 or mode == "never" else "Adopting"
    ws = WorkloadStatus(name=w.name, state=state, replicas=w.replicas, ready_replicas=w.ready)
    if old is not None and old.name == w.name:
        ws.conflict_field, ws.conflict_manager = old.conflict_field, old.conflict_manager
        ws.conflicts, ws.retry_at, ws.asserted_at = old.conflicts, old.retry_at, old.asserted_at
    annotations: dict[str, str | None] = {}
    if w.managed_by != rollout_name(d):
        annotations[MANAGED_ANNOTATION] = rollout_name(d)
        annotations[ORIGINAL_ANNOTATION] = str(w.replicas)
        d.event(
            "WorkloadAdopted",
            f"deployment {w.name} adopted: held paused (scaleDown {mode}); its template "
            "now rolls out through this Rollout",
        )
    labels: dict[str, str | None] = {}
    if w.managed_by != rollout_name(d) or not w.watched:
        labels[ROLLOUT_LABEL] = WATCHED_VALUE  # watched from now on (see WATCHED_VALUE)
    paused = None
    if not w.paused:
        paused = True
        if w.managed_by == rollout_name(d):
            say_fought(d, ws, "spec.paused", w.paused_manager, "set to false", w.name)
    replicas = None
    if mode != "never":
        replicas = replicas_to_write(d, ws, w, want)
        if replicas is not None:
            annotations[SCALED_TO_ANNOTATION] = str(replicas)
        if mode == "progressively" and state == "Adopting" and w.replicas > 0:
            cap_stable(d, result, w)
    if replicas is not None or paused is not None or annotations or labels:
        result.workload = WorkloadPatch(w.name, replicas, paused, annotations, labels)
    st.workload = ws
    conflict_condition(d, result, ws)
    if state == "Adopting":
        d.wake_in(2.0)
    result.requeue_after = d.requeue
    events_to(d, result)
    return result


def replicas_to_write(d: Draft, ws: WorkloadStatus, w: Workload, want: int) -> int | None:
    """The replicas to write now, or None: already right, or backing off a fight."""
    fought = w.scaled_to is not None and w.replicas != w.scaled_to
    if fought and ws.retry_at is None:
        ws.conflicts = (ws.conflicts or 0) + 1
        wait = BACKOFF_SECONDS[min(ws.conflicts, len(BACKOFF_SECONDS)) - 1]
        ws.retry_at = iso(d.now + timedelta(seconds=wait))
        say_fought(d, ws, "spec.replicas", w.replicas_manager, f"set to {w.replicas}", w.name, wait)
    if fought:
        retry = parse_iso(ws.retry_at)
        if retry is not None and d.now < retry:
            d.wake_in((retry - d.now).total_seconds())
            return None
        ws.retry_at = None
        ws.asserted_at = iso(d.now)
        return want
    if ws.conflict_field == "spec.replicas" and ws.retry_at is None:
        asserted = parse_iso(ws.asserted_at)
        if asserted is None or d.now - asserted >= timedelta(seconds=QUIET_SECONDS):
            d.event(
                "WorkloadConflictResolved",
                f"deployment {w.name}: spec.replicas kept Ramp's value for "
                f"{QUIET_SECONDS}s: no longer fought over",
            )
            ws.conflict_field = ws.conflict_manager = ws.asserted_at = None
            ws.conflicts = None
        else:
            d.wake_in(QUIET_SECONDS)
    return want if want != w.replicas else None


def say_fought(
    d: Draft,
    ws: WorkloadStatus,
    field: str,
    manager: str | None,
    what: str,
    name: str,
    wait: int | None = None,
) -> None:
    ws.conflict_field = field
    ws.conflict_manager = manager
    by = f" by {manager}" if manager else ""
    then = (
        f"Ramp leaves it for {wait}s, then sets it once more"
        if wait
        else "Ramp holds it paused again at once (no bypass)"
    )
    d.event(
        "WorkloadConflict",
        f"deployment {name}: {field} was {what}{by} while this Rollout manages it; "
        f"{then}. In Argo CD add {IGNORE_DIFFERENCES % name}",
        warning=True,
    )


def conflict_condition(d: Draft, result: Plan, ws: WorkloadStatus) -> None:
    st = result.status
    fought = ws.conflict_field is not None
    message = ""
    if fought:
        by = f" (by {ws.conflict_manager})" if ws.conflict_manager else ""
        message = (
            f"{ws.conflict_field} of deployment {ws.name} is set by someone else{by}; "
            f"add {IGNORE_DIFFERENCES % ws.name}"
        )
    status = "True" if fought else "False"
    old = next((c for c in d.old.conditions or [] if c.type == "WorkloadConflict"), None)
    since = old.last_transition_time if old is not None and old.status == status else None
    conditions = [c for c in st.conditions or [] if c.type != "WorkloadConflict"]
    conditions.append(
        Condition(
            type="WorkloadConflict",
            status=status,
            reason="FieldFoughtOver" if fought else "NoConflict",
            message=message[:1024],
            last_transition_time=since or iso(d.now),
        )
    )
    st.conditions = conditions


def cap_stable(d: Draft, result: Plan, w: Workload) -> None:
    """While the Deployment still runs pods, Ramp's stable grows within maxSurge of R
    across both (it is never shrunk by this)."""
    stable = result.status.stable_revision
    if result.replicas is None or not stable or stable not in result.replicas:
        return
    child = d.child(stable)
    current = child.replicas if child else 0
    cap = max(current, d.total + d.limits.surge - w.replicas)
    if result.replicas[stable] <= cap:
        return
    result.replicas[stable] = cap
    result.scales = [(r, n) for r, n in result.scales if r != stable]
    if child is not None and child.replicas != cap:
        result.scales.insert(0, (stable, cap))


# -- give-back ----------------------------------------------------------------------


def give_back(d: Draft, result: Plan, w: Workload) -> Plan:
    """Unpause the Deployment at the Rollout's replicas; release it once it serves."""
    target = d.total
    why = "the Rollout is being deleted" if d.obs.deleting else "workloadRef was removed"
    result.finalizer = True
    ws: WorkloadStatus | None = WorkloadStatus(
        name=w.name, state="GivingBack", replicas=w.replicas, ready_replicas=w.ready
    )
    if w.paused or w.replicas != target:
        result.workload = WorkloadPatch(w.name, target, False, {SCALED_TO_ANNOTATION: str(target)})
        d.event(
            "WorkloadGivingBack",
            f"{why}: deployment {w.name} unpaused at {target} replicas; Ramp's pods stay "
            "until its pods are ready",
        )
        events_to(d, result)
        if d.obs.deleting:
            # Unpinned now: the Services select the Deployment's pods beside Ramp's (which
            # may be gone already: a stable deleted by hand), never nothing meanwhile.
            release_traffic(d, result)
        d.wake_in(1.0)
    else:
        ready = w.settled and w.ready >= target and w.updated >= target
        deadline = parse_iso(d.obs.deleted_at)
        late = deadline is not None and d.now - deadline >= timedelta(seconds=GIVE_BACK_SECONDS)
        if d.obs.deleting and release_traffic(d, result):
            # Ramp's key leaves the Services first (they select the Deployment's pods
            # beside Ramp's), then the finalizer: garbage collection takes Ramp's pods.
            d.wake_in(1.0)
        elif (ready and (not d.obs.deleting or listed(d, target))) or late:
            release = dict.fromkeys((MANAGED_ANNOTATION, SCALED_TO_ANNOTATION, ORIGINAL_ANNOTATION))
            result.workload = WorkloadPatch(
                w.name, annotations=release, labels={ROLLOUT_LABEL: None}
            )
            result.finalizer = False
            ws = None
            if ready:
                d.event(
                    "WorkloadGivenBack",
                    f"deployment {w.name} given back: {w.ready}/{target} ready",
                )
            else:
                d.event(
                    "WorkloadGiveBackTimedOut",
                    f"deployment {w.name}: {w.ready}/{target} ready after "
                    f"{GIVE_BACK_SECONDS}s; released anyway",
                    warning=True,
                )
            events_to(d, result)
        else:
            d.wake_in(1.0)
    if result.write_status:
        result.status.workload = ws
    result.requeue_after = d.requeue
    return result


def listed(d: Draft, target: int) -> bool:
    """At a deletion, whether each Service of the strategy whose EndpointSlices are read
    (blue-green, a route) lists a ready pod that is not Ramp's: the Deployment's pods are
    served before garbage collection takes Ramp's (the EndpointSlice controller, and a
    gateway after it, follow a pod's readiness a moment later). Read nowhere: the
    Deployment's ready count decides."""
    return target == 0 or all(
        d.obs.others.get(service, 0) > 0
        for service in d.strategy.services(d.spec)
        if service in d.obs.endpoints
    )


def release_traffic(d: Draft, result: Plan) -> bool:
    """Every router takes out what Ramp wrote for the Services the strategy names;
    True while some writes are planned."""
    services = d.strategy.services(d.spec)
    released = [router.release(d, services, result) for router in routers_for(d.spec)]
    return any(released)


def events_to(d: Draft, result: Plan) -> None:
    """Events of this concern, added to a plan that was already finished."""
    for event in d.events:
        if event not in result.events:
            result.events.append(event)
