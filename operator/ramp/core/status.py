"""The end of every path: children to keep, Services to pin, counts, conditions, phase.

:func:`phase` is the one function that derives the phase from the rest of the status
(Argo's ``CalculateRolloutPhase``). Every list in the status is bounded here by
construction: analysis runs (the current step's and the background's), measurements
(the last 64), conditions (a fixed set).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from ramp.api.rollout import Condition, Phase, RolloutStatus, Weights
from ramp.core.draft import Draft
from ramp.core.gating import BACKGROUND, POST, PRE, step_run
from ramp.core.model import PROGRESS_GRAIN, Child, HistoryEntry, Plan, Role, iso, parse_iso
from ramp.core.routers import routers_for
from ramp.core.traffic import floors, hold_floors

MAX_MEASUREMENTS = 64
CONDITION_TYPES = (
    "Available",
    "Progressing",
    "Paused",
    "Healthy",
    "Aborted",
    "InvalidSpec",
    "StableMissing",
    "ForeignChildren",
    "TemplateDrift",
)


def finish(d: Draft, replicas: dict[str, int] | None) -> Plan:
    st = d.st
    result = Plan(status=st, events=d.events)
    if replicas is not None:
        full = {c.revision: 0 for c in d.live_children}
        full.update({k: v for k, v in replicas.items() if k})
        for revision in d.creates:
            full.setdefault(revision, 0)
        result.delete, result.delete_history = prune(d, full)
        gone = {c.revision for c in d.live_children if c.name in result.delete}
        for revision in gone:
            full.pop(revision, None)
        full = keep_routed(d, full)
        result.replicas = full
        for revision in full:
            result.roles[revision] = role_of(d, revision)
        moves = [
            (rev, n)
            for rev, n in full.items()
            if rev in d.children and d.children[rev].replicas != n
        ]
        # Shrink first, then grow (see Plan.scales): both limits hold in between.
        moves.sort(key=lambda kv: kv[1] > d.children[kv[0]].replicas)
        result.scales = moves
        result.creates = {
            rev: tpl
            for rev, tpl in d.creates.items()
            if rev not in d.children and rev not in d.going
        }
        # A create planned again for a canary the last status already waited for (it
        # did not show: refused for now, or its name is taken by a look-alike) is no
        # progress: the deadline still ends a rollout that cannot get its canary.
        again = d.old.canary_revision if not d.old.canary_replicas else None
        fresh = [rev for rev in result.creates if rev != again or not d.old.progressed_at]
        scaled_is_progress(d, bool(moves or fresh))
    # Counts this status writes that moved are progress, whatever the pass judged: once
    # written, the next pass could not see the move (make fuzz-for, seed 883951112: a
    # pass that left a stable being deleted alone wrote its pods gone, and the next,
    # the deadline's, found nothing had moved).
    scaled_is_progress(d, counts_moved(d))
    route(d, result)
    result.history = list(d.history_writes.values())
    result.measure = list(dict.fromkeys(d.measure))
    bound_lists(d)
    fill_counts(d)
    d.strategy.counts(d)
    fill_conditions(d)
    st.phase = phase(st)
    if st.phase == Phase.PROGRESSING:
        # While a rollout moves, a role label changes only with a scale of its child
        # (one patch); at rest (Healthy, Paused, Aborted) it is corrected on its own.
        moving = {revision for revision, _ in result.scales}
        for revision in [r for r in result.roles if r in d.children and r not in moving]:
            del result.roles[revision]
    result.requeue_after = d.requeue
    return result


def role_of(d: Draft, revision: str) -> Role:
    """The role label of a revision's Deployment. At weight 100 it is where the rollout
    heads (the canary ``stable``, the stable ``previous``): written with the canary's
    last scale up and the stable's last scale down, so the promotion patches no label.
    The status, not the label, says which revision is stable."""
    st = d.st
    heading = d.full_weight and st.canary_revision != st.aborted_revision
    if revision == st.stable_revision:
        return "previous" if heading else "stable"
    if revision == st.canary_revision:
        return "stable" if heading else "canary"
    return "previous"


def counts_moved(d: Draft) -> bool:
    """A ready or existing pod more or less on either side than the last status wrote."""
    st = d.st
    canary, stable = d.child(st.canary_revision), d.child(st.stable_revision)
    return (
        (canary.ready if canary else 0) != (d.old.canary_ready_replicas or 0)
        or (stable.ready if stable else 0) != (d.old.stable_ready_replicas or 0)
        or (canary.current if canary else 0) != (d.old.canary_replicas or 0)
        or (stable.current if stable else 0) != (d.old.stable_replicas or 0)
    )


def scaled_is_progress(d: Draft, scaled: bool) -> None:
    """A scale or a create applied is progress too (a stable recreated with the same
    counts as before it was deleted shows no other change), recorded once per grain
    like the rest (see ``progress_deadline``)."""
    since = parse_iso(d.st.progressed_at)
    if not scaled or since is None:
        return
    grain = timedelta(seconds=d.spec.deadline_seconds) * PROGRESS_GRAIN
    if d.now - since >= grain:
        d.st.progressed_at = iso(d.now)


def bound_lists(d: Draft) -> None:
    st = d.st
    keep = {BACKGROUND, step_run(st.current_step_index or 0), PRE, POST}
    runs = [
        r for r in st.analysis_runs or [] if r.name in keep and r.revision == st.canary_revision
    ]
    st.analysis_runs = runs or None
    if st.measurements:
        st.measurements = st.measurements[-MAX_MEASUREMENTS:]


def keep_routed(d: Draft, replicas: dict[str, int]) -> dict[str, int]:
    """A revision a router still sends requests to keeps the pods its share needs (see
    :mod:`ramp.core.traffic`)."""
    weights = d.traffic_weights()
    for router in routers_for(d.spec):
        acknowledged = router.carried(d)
        if acknowledged is not None:
            replicas = hold_floors(replicas, floors(acknowledged, weights, d.total))
    return replicas


def route(d: Draft, result: Plan) -> None:
    """Every router makes the data plane carry the strategy's intent."""
    intent = d.strategy.intent(d, result.replicas)
    for router in routers_for(d.spec):
        router.route(d, intent, result)


def prune(d: Draft, replicas: dict[str, int]) -> tuple[list[str], list[str]]:
    """Children and history entries beyond ``revisionHistoryLimit``: (names, revisions)."""
    live = {d.st.stable_revision, d.st.canary_revision, d.revision}
    stable = d.entry(d.st.stable_revision)
    if stable is None or not stable.promoted_at:
        # The stable's promotion is marked in the pass after its status was accepted: until
        # the history read says so, the previous promotion's entry is what a lost status
        # (with the stable's Deployment gone too) recovers from (issue 19 fuzz, seed
        # 1060942604): without it the planner would take the template nobody ran as the
        # first revision.
        last = last_promoted(d)
        if last is not None:
            live.add(last.revision)
    idle = [
        c
        for c in d.live_children
        if c.revision not in live and replicas.get(c.revision, 0) == 0 and c.current == 0
    ]
    idle.sort(key=d.age, reverse=True)
    limit = d.spec.history_limit
    delete = [c.name for c in idle[limit:]]
    kept = {c.revision for c in idle[:limit]}
    old = sorted(
        (h for h in d.history.values() if h.revision not in live | kept),
        key=lambda h: h.number,
        reverse=True,
    )
    room = max(limit - len(kept), 0)
    return delete, [h.revision for h in old[room:]]


def last_promoted(d: Draft) -> HistoryEntry | None:
    """The revision a lost status would recover as stable: the newest promotion; of
    two marked in the same second, not one aborted since (a promotion clears the abort
    mark, so that abort came after it)."""
    promoted = [h for h in d.history.values() if h.promoted_at]
    if not promoted:
        return None
    return max(promoted, key=lambda h: (h.promoted_at or "", not h.aborted, h.number))


def fill_counts(d: Draft) -> None:
    st = d.st
    canary = d.child(st.canary_revision)
    stable = d.child(st.stable_revision)
    st.replicas = sum(c.current for c in d.live_children)
    st.ready_replicas = sum(min(c.ready, c.current) for c in d.live_children)
    st.canary_replicas = canary.current if canary else 0
    st.canary_ready_replicas = canary.ready if canary else 0
    st.stable_replicas = stable.current if stable else 0
    st.stable_ready_replicas = stable.ready if stable else 0
    if st.canary_revision is None:
        # No release: all the traffic is the stable revision's (as Argo Rollouts shows
        # a completed rollout: 100 / 100), actually so once one of its pods is ready.
        st.weights = Weights(desired=100, actual=100 if st.stable_ready_replicas else 0)
    elif st.weights is None:
        st.weights = Weights(desired=0, actual=0)


def template_drift(d: Draft) -> None:
    """Children whose pod template someone edited serve pods that are not their
    revision's: reported (condition ``TemplateDrift``, the phase ``Degraded``, a Warning
    Event) until the template is restored or the Deployment deleted (Ramp recreates it
    from the revision history)."""
    message = drift_message(d.live_children)
    if message:
        message += (
            "; Ramp never changes a child's pod template: restore it (kubectl rollout "
            "undo deployment/<name>; a ReplicaSet: edit it back, then delete the pods made "
            "since the edit)"
        )
    d.conditions["TemplateDrift"] = (
        bool(message),
        "PodTemplateEdited" if message else "NoDrift",
        message,
    )
    old = next((c for c in d.old.conditions or [] if c.type == "TemplateDrift"), None)
    if message and (old is None or old.message != message[:1024]):
        d.event("TemplateDrift", message, warning=True)


def fill_conditions(d: Draft) -> None:
    st = d.st
    floor = d.total - d.limits.unavailable
    available = (st.ready_replicas or 0) >= floor
    d.conditions["Available"] = (
        available,
        "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
        f"{st.ready_replicas or 0} ready, {floor} required",
    )
    if "Progressing" not in d.conditions:
        d.conditions["Progressing"] = (True, "RolloutInProgress", st.message or "")
    if "Aborted" not in d.conditions:
        d.conditions["Aborted"] = (False, "NotAborted", "")
    d.conditions.setdefault("InvalidSpec", (False, "SpecValid", ""))
    d.conditions.setdefault("StableMissing", (False, "StablePresent", ""))
    foreign = ", ".join(d.foreign[:8])
    d.conditions["ForeignChildren"] = (
        bool(d.foreign),
        "LookAlikeDeployments" if d.foreign else "NoLookAlikes",
        f"Deployments labelled for this Rollout but not owned by it (never touched): {foreign}"
        if d.foreign
        else "",
    )
    template_drift(d)
    paused = d.paused_reason is not None
    d.conditions["Paused"] = (paused, d.paused_reason or "NotPaused", st.message or "")
    invalid = (
        d.conditions["InvalidSpec"][0]
        or d.conditions["StableMissing"][0]
        or d.conditions["TemplateDrift"][0]
    )
    progressing = d.conditions["Progressing"][0]
    healthy = not invalid and not paused and not progressing and not d.conditions["Aborted"][0]
    d.conditions["Healthy"] = (
        healthy,
        "Healthy" if healthy else "NotHealthy",
        "" if healthy else (st.message or ""),
    )
    old = {c.type: c for c in d.old.conditions or []}
    prev_foreign = old.get("ForeignChildren")
    if d.foreign and (
        prev_foreign is None or prev_foreign.message != d.conditions["ForeignChildren"][2]
    ):
        d.event("ForeignChildren", d.conditions["ForeignChildren"][2], warning=True)
    result = []
    # then the conditions of the Rollout's routers (RouteConflict), only where they apply
    for ctype in (*CONDITION_TYPES, *(t for t in d.conditions if t not in CONDITION_TYPES)):
        value, reason, message = d.conditions[ctype]
        status: Literal["True", "False"] = "True" if value else "False"
        prev = old.get(ctype)
        since = prev.last_transition_time if prev and prev.status == status else None
        result.append(
            Condition(
                type=ctype,
                status=status,
                reason=reason,
                message=message[:1024],
                last_transition_time=since or iso(d.now),
            )
        )
    st.conditions = result
    if st.message is not None:
        st.message = st.message[:1024]


def drift_message(children: list[Child]) -> str:
    """The ``TemplateDrift`` message: which children serve pods that are not their
    revision's ("" when none)."""
    drifted = [c for c in children if c.drift and (c.replicas or c.current)]
    return "; ".join(
        f"{c.kind} {c.name} (revision {c.revision}): {c.drift}" for c in drifted[:4]
    ) + ("; ..." if len(drifted) > 4 else "")


def phase(status: RolloutStatus) -> Phase:
    """The phase, derived from the rest of the status (conditions and revisions).

    Order of precedence: Degraded (invalid spec, stable missing, template drift) > Aborted >
    Paused > Progressing > Healthy.
    """
    conditions = {c.type: c.status == "True" for c in status.conditions or []}
    if (
        conditions.get("InvalidSpec")
        or conditions.get("StableMissing")
        or conditions.get("TemplateDrift")
    ):
        return Phase.DEGRADED
    if status.aborted_revision and status.aborted_revision == status.canary_revision:
        return Phase.ABORTED
    if conditions.get("Paused"):
        return Phase.PAUSED
    if conditions.get("Progressing") or status.canary_revision:
        return Phase.PROGRESSING
    return Phase.HEALTHY
