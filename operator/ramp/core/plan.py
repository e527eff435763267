"""The planner: from everything observed and measured, every action to take. Pure.

``plan(observed, now)`` reads the Rollout (spec, status, request tokens), its owned
children, the revision history, the pinned Services and the analysis runs (already
measured by the shell), and returns a :class:`Plan`: scales in order, creates, deletes,
history writes, Service pins, the status, Events, the runs to measure and when to look
again. It is level-based: given the same inputs it returns the same plan, and applying a
plan and planning again changes nothing more.

The strategy is chosen once (:func:`strategy_of`); :func:`run` is the whole sequence
around it, on a :class:`~ramp.core.draft.Draft` of the plan:

1. the workload step before (:func:`ramp.core.workload.workload_problem`), the spec checks;
2. identities from the status and the history (:mod:`ramp.core.history`);
3. an invalid spec: the strategy holds (:func:`invalid`);
4. the stable exists; the template is the stable's: the strategy's steady state;
5. the release's identity, the abort and retry verbs (:mod:`ramp.core.abort`); an
   aborted release: the strategy's abort; other revisions drain;
6. the release progresses: the strategy's own walk (:mod:`ramp.core.canary`,
   :mod:`ramp.core.bluegreen`);
7. every path ends in :func:`ramp.core.status.finish` (children, traffic, counts,
   conditions, phase); the workload step after (:func:`ramp.core.workload.with_workload`).
"""

from __future__ import annotations

from datetime import datetime

from ramp.api.analysis import AnalysisRef
from ramp.api.rollout import Rollout, RolloutSpec, RolloutStatus
from ramp.core.abort import abort, abort_and_retry_tokens, aborted, drain_others
from ramp.core.bluegreen.strategy import BlueGreen
from ramp.core.canary.steps import describe_step, step_weight
from ramp.core.canary.strategy import Canary
from ramp.core.checks import selector_string, spec_problems
from ramp.core.draft import Draft, Strategy
from ramp.core.history import (
    ensure_canary_identity,
    ensure_stable,
    recover_identities,
)
from ramp.core.model import (
    TOKEN_VERBS,
    Child,
    Event,
    GateResult,
    HistoryEntry,
    HistoryWrite,
    Observed,
    Plan,
    Role,
    ServicePin,
)
from ramp.core.release_clock import track_release
from ramp.core.routers import problems as router_problems
from ramp.core.status import fill_conditions, finish, phase
from ramp.core.workload import with_workload, workload_problem

CANARY, BLUE_GREEN = Canary(), BlueGreen()


def strategy_of(spec: RolloutSpec) -> Strategy:
    """The strategy of a Rollout: blue-green when ``strategy.blueGreen`` is set."""
    return BLUE_GREEN if spec.strategy.blue_green is not None else CANARY


def runs_in_play(rollout: Rollout) -> dict[str, AnalysisRef]:
    """The analysis runs the next plan will consult, from the status (the strategy's: the
    current step's and the background's, or the pre- or post-promotion one), while a
    release is live. The shell resolves and measures them before planning."""
    status = rollout.status or RolloutStatus()
    if not status.canary_revision or status.aborted_revision == status.canary_revision:
        return {}
    return strategy_of(rollout.spec).runs_in_play(rollout.spec, status)


def run(d: Draft) -> Plan:
    """One planning pass."""
    st, strategy = d.st, d.strategy
    if d.obs.deleting:
        return Plan(status=d.old, write_status=False)  # garbage collection's now
    st.observed_generation = d.obs.generation
    st.selector = selector_string(d.spec)
    problem = d.obs.spec_problem or d.obs.refused or workload_problem(d)
    problem = problem or spec_problems(d.spec, d.obs.template) or strategy.problems(d.spec)
    problem = problem or router_problems(d)
    if problem and not d.obs.template:
        return invalid(d, problem)  # no template (workloadRef unresolved): no identity
    recover_identities(d)
    if problem:
        return invalid(d, problem)
    ignore_tokens_without_rollout(d)
    missing = ensure_stable(d)
    if missing is not None:
        return missing
    if d.revision == st.stable_revision:
        return strategy.steady(d)
    ensure_canary_identity(d)
    abort_and_retry_tokens(d)
    if st.aborted_revision == d.revision:
        return aborted(d)
    drain = drain_others(d, stable_target=d.total - strategy.share(d))
    if drain is not None:
        return drain
    return strategy.progress(d)


def invalid(d: Draft, problem: str) -> Plan:
    """An invalid spec leaves the workload as it is -- but an abort is honoured and a
    live release stays judged (the strategy holds it: analysis, progress deadline)."""
    st = d.st
    old = next((c for c in d.old.conditions or [] if c.type == "InvalidSpec"), None)
    if old is None or old.status != "True" or old.message != problem:
        d.event("InvalidSpec", f"{problem}; the workload is left as it is", warning=True)
    d.conditions["InvalidSpec"] = (True, "InvalidSpec", problem)
    message = f"invalid spec: {problem}; the workload keeps running as it was"
    live = st.canary_revision and st.canary_revision != st.stable_revision
    # Every token verb of the table is refused (a new one too) but abort, honoured below,
    # and rollback, which the invalid spec leaves unanswered (as before the table).
    for verb in (v for v in TOKEN_VERBS if v not in ("abort", "rollback")):
        if d.obs.refused:
            d.defer_tokens(verb)  # a refusal consumes no verb: acted on later
        else:
            d.token_not_applicable(verb, "the spec is invalid")
    recreated = recreate_stable_from_history(d)
    if not live:
        if d.obs.refused:
            d.defer_tokens("abort")
        d.token_not_applicable("abort", "no rollout is in progress")
        st.message = message
        stable = st.stable_revision or ""
        child = d.children.get(stable)
        as_is = {c.revision: c.replicas for c in d.live_children}
        if child is None and not recreated:
            # The stable's child still going (or none to recreate it from): the rest stays
            # as it is, and the traffic follows its ready pods.
            return finish(d, d.strategy.at_rest(d, as_is) if as_is else None)
        # The stable's size follows the spec (recreated, scaled by someone else, or
        # spec.replicas changed: an HPA) as far as the surge allows beside the rest, which
        # stays as it is (its ready pods may be all that serves); the traffic follows the
        # ready pods.
        current = child.replicas if child is not None else 0
        lim = d.strategy.limits(d.spec)
        room = lim.total + lim.surge - sum(n for rev, n in as_is.items() if rev != stable)
        target = min(d.total, max(current, room))
        return finish(d, d.strategy.at_rest(d, {**as_is, stable: target}))
    if d.tokens.get("abort") and st.aborted_revision != st.canary_revision:
        abort(d, "UserAbort", "aborted by request (ramp.dev/abort)")
        d.tokens.pop("abort")
    d.token_not_applicable("abort", "the rollout is already aborted")
    if st.aborted_revision == st.canary_revision:
        result = aborted(d)
    else:
        result = d.strategy.hold(d, "InvalidSpec")
    st.message = f"{message}; {st.message}"
    fill_conditions(d)
    return result


def recreate_stable_from_history(d: Draft) -> bool:
    """Even with an invalid spec, a missing stable comes back from its history entry
    (never from the invalid template): an abort must have a stable to return to."""
    stable = d.st.stable_revision
    entry = d.entry(stable)
    if (
        not stable
        or stable in d.children
        or stable in d.going
        or stable == d.revision
        or entry is None
        or entry.template is None
    ):
        return False
    d.creates[stable] = entry.template
    d.event(
        "StableRecreated",
        f"the Deployment of stable revision {stable} was missing: recreated from the "
        "revision history",
        warning=True,
    )
    return True


def ignore_tokens_without_rollout(d: Draft) -> None:
    """No release in progress: every token verb of the table is answered as not applicable
    (a new verb too, without a line here), but the rollback of a strategy that has one
    (blue-green's steady state acts on it)."""
    if d.revision == d.st.stable_revision:
        for verb in TOKEN_VERBS:
            if verb != "rollback":
                d.token_not_applicable(verb, "no rollout is in progress")
            elif not d.strategy.rollback:
                d.token_not_applicable(verb, "rollback flips back a blue-green release")


def plan(observed: Observed, now: datetime) -> Plan:
    """Decide the next move of a Rollout. Pure: the clock is the ``now`` parameter."""
    draft = Draft(observed, now, strategy_of(observed.rollout.spec))
    result = with_workload(draft, run(draft))  # the workload step after planning
    if result.write_status:
        result.released = track_release(result.status, now, draft.strategy.name)
    result.status.clip_strings()  # whatever a branch wrote last stays inside the schema
    return result


__all__ = [
    "TOKEN_VERBS",
    "Child",
    "Event",
    "GateResult",
    "HistoryEntry",
    "HistoryWrite",
    "Observed",
    "Plan",
    "Role",
    "ServicePin",
    "describe_step",
    "phase",
    "plan",
    "runs_in_play",
    "step_weight",
]
