"""Abort, retry and draining old revisions.

An abort marks the release's revision aborted and hands over to the strategy's
``aborted`` (the canary goes back to the stable within the shifting limits, blue-green
flips back at once). Draining revisions that are neither stable nor the release's (a
replaced canary, a rollback) stays within ``maxSurge``.
"""

from __future__ import annotations

from ramp.core.draft import Draft
from ramp.core.history import restart_canary
from ramp.core.model import Plan
from ramp.core.split import Side, Split, next_replicas
from ramp.core.status import finish


def abort(d: Draft, reason: str, message: str) -> None:
    st = d.st
    revision = st.canary_revision or d.revision
    st.aborted_revision = revision
    st.abort_reason = reason
    st.abort_message = message
    st.progressed_at = None
    d.mark(revision, aborted=reason)
    d.event("Aborted", f"rollout of {revision} aborted: {message}", warning=True)


def abort_and_retry_tokens(d: Draft) -> None:
    st = d.st
    if d.tokens.get("abort"):
        if st.aborted_revision != st.canary_revision:
            abort(d, "UserAbort", "aborted by request (ramp.dev/abort)")
        else:
            d.token_not_applicable("abort", "the rollout is already aborted")
    if d.tokens.get("retry"):
        if st.aborted_revision == st.canary_revision:
            restart_canary(d, "Retried", "retry requested: canary restarts at step 1")
        elif paused_by_analysis(d):
            st.analysis_runs = None
            d.event("Retried", "retry requested: the paused analysis measures again")
        else:
            d.token_not_applicable("retry", "the rollout is neither aborted nor paused")


def paused_by_analysis(d: Draft) -> bool:
    return any(
        c.type == "Paused" and c.status == "True" and c.reason.startswith("Analysis")
        for c in d.old.conditions or []
    )


def aborted(d: Draft) -> Plan:
    """The release is aborted: verbs that cannot act say so; the strategy goes back."""
    for verb in ("promote", "promote-full"):
        d.token_not_applicable(verb, "the rollout is aborted (retry it first)")
    d.token_not_applicable("rollback", "the rollout is aborted already")
    return d.strategy.aborted(d)


def drain_others(d: Draft, stable_target: int) -> Plan | None:
    """Children that are neither stable nor canary go to zero within ``maxSurge``: the
    stable grows into the room they leave, and they shrink as its pods become ready."""
    st = d.st
    keep = {st.stable_revision, st.canary_revision}
    others = [c for c in d.live_children if c.revision not in keep and c.replicas > 0]
    if not others:
        return None
    canary = d.child(st.canary_revision)
    stable = d.side(st.stable_revision)
    c_desired = canary.replicas if canary else 0
    c_ready = canary.serving if canary else 0
    # The canary holds its pods: count them on the stable's side of the shift.
    kept = Side(stable.desired + c_desired, stable.counted_ready + c_ready)
    draining = Side(sum(o.replicas for o in others), sum(o.serving for o in others))
    target = Split(canary=0, stable=stable_target + c_desired, weight=0)
    left, kept_total = next_replicas(d.limits, target, draining, kept)
    replicas: dict[str, int] = {st.stable_revision or "": max(kept_total - c_desired, 0)}
    if canary is not None:
        replicas[canary.revision] = canary.replicas
    # What the others keep goes to their ready pods first (a Deployment scaled down
    # removes its unready pods first), then, newest first, to the rest: the room the shift
    # counted on is never taken from a ready pod while an unready one stays (make
    # fuzz-for, seed 75814388: a rollback to a stable at 0, beside the canary's one ready
    # pod a revision scaled up by hand with none; the canary's went and ready pods fell
    # from 1 to 0 with maxUnavailable 0).
    newest = sorted(others, key=d.age, reverse=True)
    kept_of = dict.fromkeys((o.revision for o in others), 0)
    for other in newest:
        kept_of[other.revision] = n = min(other.serving, other.replicas, left)
        left -= n
    for other in newest:
        n = min(other.replicas - kept_of[other.revision], left)
        kept_of[other.revision] += n
        left -= n
    staying = 0  # ready pods of the others that this move keeps
    for other in others:
        n = kept_of[other.revision]
        replicas[other.revision] = n
        staying += min(n, other.serving)
    # The kept side counts the canary's pods with the stable's: the canary's unready ones
    # must not stand in for stable pods that are ready. The stable keeps what availability
    # needs beside the canary's ready pods and the others' that stay (make fuzz-for, seed
    # 217055544: a canary at 0/1 ready, a drained revision scaled up by hand, and the
    # stable went from 2 ready to 1 with maxUnavailable 0).
    need = d.limits.total - d.limits.unavailable - c_ready - staying
    stable_rev = st.stable_revision or ""
    replicas[stable_rev] = max(replicas[stable_rev], min(stable.desired, need))
    d.strategy.draining(d, others, replicas)
    names = ", ".join(o.revision for o in others)
    st.message = (
        f"scaling down old revision(s) {names} as stable {st.stable_revision} becomes "
        f"ready ({d.serving(st.stable_revision)}/{stable_target})"
    )
    d.conditions["Progressing"] = (True, "ScalingDownOld", st.message)
    d.defer_tokens("promote", "promote-full")  # acted on once the drain is done
    return finish(d, replicas)
