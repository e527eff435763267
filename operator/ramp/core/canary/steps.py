"""Walking the canary's steps: weights, readiness, pauses, analysis gates, promotion.

A ``setWeight`` step is reached when the canary and the stable both hold their share,
ready. While the rollout waits for replicas a progress deadline runs like a Deployment's:
it counts from the last progress (a ready or existing pod more or less on either side,
a step entered), so a scale or a pod going unready restarts the clock instead of
aborting a rollout that is not stuck.
"""

from __future__ import annotations

from datetime import timedelta

from ramp.api.durations import parse_duration
from ramp.api.rollout import (
    MAX_STEP_HISTORY,
    CanaryStrategy,
    HandledTokens,
    RolloutSpec,
    Step,
    StepRecord,
    Weights,
)
from ramp.core.abort import abort, aborted
from ramp.core.draft import Draft
from ramp.core.gating import BACKGROUND, step_run
from ramp.core.history import clear_canary
from ramp.core.judging import gate_outcome, progress_deadline
from ramp.core.model import Plan, iso, parse_iso
from ramp.core.routers import acknowledged, exact_routers, exact_split
from ramp.core.split import Split, next_replicas, split_replicas
from ramp.core.status import finish

_NO_STEPS = CanaryStrategy()


def canary_spec(spec: RolloutSpec) -> CanaryStrategy:
    """``spec.strategy.canary`` (a spec naming no strategy at all walks no steps)."""
    return spec.strategy.canary or _NO_STEPS


def canary_steps(d: Draft) -> list[Step]:
    return canary_spec(d.spec).steps


def step_weight(steps: list[Step], index: int) -> int:
    """The canary weight in force at step ``index``: the last setWeight at or before it.

    Past the last step the weight is 100 (promotion).

    >>> steps = [Step(set_weight=20), Step(pause={}), Step(set_weight=50)]
    >>> [step_weight(steps, i) for i in range(4)]
    [20, 20, 50, 100]
    """
    if index >= len(steps):
        return 100
    for step in reversed(steps[: index + 1]):
        if step.set_weight is not None:
            return step.set_weight
    return 0


def describe_step(step: Step) -> str:
    """A short human description of a step."""
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration else "pause (until promoted)"
    if step.set_header_route is not None:
        return f"setHeaderRoute {step.set_header_route.name}"
    return "analysis"


def promote_tokens(d: Draft, index: int) -> int:
    steps = canary_steps(d)
    if d.tokens.get("promote-full"):
        d.event("PromotedFull", "promote-full requested: skipping the remaining steps")
        d.tokens.pop("promote", None)
        return enter(d, len(steps))
    if d.tokens.get("promote"):
        if index >= len(steps):
            d.token_not_applicable("promote", "every step is done already")
            return index
        d.event(
            "Promoted",
            f"promote requested: step {index + 1}/{len(steps)} "
            f"({describe_step(steps[index])}) skipped",
        )
        return enter(d, index + 1)
    return index


def enter(d: Draft, index: int) -> int:
    """Enter step ``index``: its clock starts; analysis runs of other steps end."""
    st = d.st
    st.current_step_index = index
    st.step_started_at = iso(d.now)
    st.progressed_at = None
    keep = {BACKGROUND, step_run(index)}
    runs = [r for r in st.analysis_runs or [] if r.name in keep]
    st.analysis_runs = runs or None
    warn_weight(d, index)
    return index


def walk_steps(d: Draft, hold: str | None = None) -> Plan:
    """Walk from the current step as far as the cluster allows. ``hold`` (the reason:
    spec.paused, an invalid spec) keeps the step and the promote tokens, but the split
    still follows ``replicas``, the background analysis still judges and the progress
    deadline still runs."""
    st = d.st
    steps = canary_steps(d)
    index = st.current_step_index or 0
    if hold is None:
        index = promote_tokens(d, index)
    elif hold == "SpecPaused" and d.st.handled_tokens is not None:
        # Promotions wait for the resume: they are not consumed while held (a token
        # recorded as handled with a status recreated stays so: make fuzz-for, seed
        # 9766017, a promote-full acted on again after a restore while paused).
        before = d.old.handled_tokens or HandledTokens()
        if "promote" in d.tokens:
            d.st.handled_tokens.promote = before.promote
        if "promote-full" in d.tokens:
            d.st.handled_tokens.promote_full = before.promote_full
    else:
        d.defer_tokens("promote", "promote-full")  # acted on once the hold ends
    canary_rev, stable_rev = st.canary_revision or "", st.stable_revision or ""
    for _ in range(len(steps) + 2):
        st.current_step_index = index
        weight = step_weight(steps, index)
        target = split_replicas(d.total, weight)
        d.full_weight = weight >= 100
        canary, stable = d.child(canary_rev), d.child(stable_rev)
        c, s = next_replicas(d.limits, target, d.side(canary_rev), d.side(stable_rev))
        routed = exact_split(d, weight)
        if routed is not None:  # a router gives the weight exactly, once acknowledged
            target = routed
            c, s = target.canary, target.stable
        replicas = {canary_rev: c, stable_rev: s}
        reached = (
            (c, s) == (target.canary, target.stable)
            and (target.canary == 0 or (canary is not None and canary.converged))
            and (canary is None or canary.replicas == target.canary)
            and (stable is None or (stable.converged and stable.replicas == target.stable))
            and (stable is not None or target.stable == 0)
            and acknowledged(d, {canary_rev: weight, stable_rev: 100 - weight})
        )
        set_weights(d, weight)
        background = background_gate(d, index, replicas)
        if background is not None:
            return background
        if not reached:
            return wait_ready(d, index, target, replicas)
        st.progressed_at = None
        if hold is not None:
            return hold_step(d, hold, index, replicas)
        if weight > 0 and d.total == 0:
            return no_replicas(d, index, replicas)
        if canary is not None and canary.drift:
            return drifted(d, canary.name, replicas)
        if index >= len(steps):
            return promote(d)
        step = steps[index]
        started = parse_iso(st.step_started_at) or d.now
        if step.pause is not None:
            if step.pause.duration is None:
                d.paused_reason = "PauseStep"
                st.message = (
                    f"paused at step {index + 1}/{len(steps)} until promoted "
                    "(kubectl ramp promote, or annotate ramp.dev/promote=<token>)"
                )
                return finish(d, replicas)
            left = (started + parse_duration(step.pause.duration)) - d.now
            if left > timedelta(0):
                d.wake_in(left.total_seconds())
                st.message = (
                    f"step {index + 1}/{len(steps)}: pause {step.pause.duration}, "
                    f"{left.total_seconds():.1f}s left"
                )
                return finish(d, replicas)
        elif step.analysis is not None:
            held = gate_outcome(
                d, step_run(index), step.analysis, f"step {index + 1} analysis", replicas
            )
            if held is not None:
                return held
        d.event(
            "StepCompleted",
            f"step {index + 1}/{len(steps)} ({describe_step(step)}) complete: "
            f"canary {target.canary}, stable {target.stable} ready",
            post=False,  # one write per step saved: the record is stepHistory
        )
        d.st.step_history = [
            *(d.st.step_history or [])[-(MAX_STEP_HISTORY - 1) :],
            StepRecord(index=index, completed_at=iso(d.now)),
        ]
        index = enter(d, index + 1)
    raise AssertionError("unreachable: the step loop is bounded by the number of steps")


def hold_step(d: Draft, why: str, index: int, replicas: dict[str, int]) -> Plan:
    st = d.st
    if why == "SpecPaused":
        if not st.held_by_spec_paused:
            d.event("Paused", "spec.paused is true: the rollout holds where it is")
        st.held_by_spec_paused = True
        st.message = (
            f"paused by spec.paused at step {index + 1}/{len(canary_steps(d))}; set "
            "spec.paused to false to resume (background analysis keeps judging)"
        )
    d.paused_reason = why
    return finish(d, replicas)


def no_replicas(d: Draft, index: int, replicas: dict[str, int]) -> Plan:
    """``spec.replicas`` is 0 (an off-hours scaler, KEDA): a step that should show the
    canary to users has nothing to show, and a revision that never ran a ready pod is
    never promoted. The rollout holds here (no progress deadline: nothing is stuck)
    and goes on once there are replicas again."""
    st = d.st
    steps = canary_steps(d)
    where = f"step {index + 1}/{len(steps)}" if index < len(steps) else "promotion"
    st.message = (
        f"{where} holds: spec.replicas is 0, so revision {st.canary_revision} runs no "
        "pod to judge; the rollout goes on once replicas are back"
    )
    d.paused_reason = "NoReplicas"
    return finish(d, replicas)


def drifted(d: Draft, name: str, replicas: dict[str, int]) -> Plan:
    """The canary's pod template was edited by someone: its pods are not the revision,
    so they prove nothing; no step is passed until the template is restored."""
    d.st.message = (
        f"holds: the pod template of the canary Deployment {name} was edited; its pods "
        "are not the revision and prove nothing (see condition TemplateDrift)"
    )
    d.paused_reason = "TemplateDrift"
    return finish(d, replicas)


def set_weights(d: Draft, desired: int) -> None:
    c_ready = d.serving(d.st.canary_revision)
    s_ready = d.serving(d.st.stable_revision)
    actual = round(100 * c_ready / (c_ready + s_ready)) if c_ready + s_ready else 0
    d.st.weights = Weights(desired=desired, actual=actual)


def wait_ready(d: Draft, index: int, target: Split, replicas: dict[str, int]) -> Plan:
    st = d.st
    steps = canary_steps(d)
    canary, stable = d.child(st.canary_revision), d.child(st.stable_revision)
    c_ready = canary.ready if canary else 0
    s_ready = stable.ready if stable else 0
    deadline = progress_deadline(d)
    where = (
        f"step {index + 1}/{len(steps)} ({describe_step(steps[index])})"
        if index < len(steps)
        else "promotion (weight 100)"
    )
    if d.now >= deadline:
        abort(
            d,
            "ProgressDeadlineExceeded",
            f"{where}: no progress within progressDeadlineSeconds="
            f"{d.spec.deadline_seconds}: canary {c_ready}/{target.canary} ready, "
            f"stable {s_ready}/{target.stable} ready",
        )
        return aborted(d)
    d.wake_in((deadline - d.now).total_seconds())
    st.message = (
        f"{where}: waiting for canary {c_ready}/{target.canary} ready and stable "
        f"{s_ready}/{target.stable}"
    )
    canary_rev = st.canary_revision
    if canary_rev == d.revision and canary_rev not in d.children:
        d.creates[canary_rev] = d.obs.template
    return finish(d, replicas)


def background_gate(d: Draft, index: int, replicas: dict[str, int]) -> Plan | None:
    background = canary_spec(d.spec).analysis
    if background is None or index < (background.starting_step or 0):
        return None
    return gate_outcome(d, BACKGROUND, background, "background analysis", replicas)


def warn_weight(d: Draft, index: int) -> None:
    """Warn when the weight of the step just entered cannot be given exactly."""
    steps = canary_steps(d)
    if index >= len(steps) or steps[index].set_weight is None or exact_routers(d.spec):
        return  # a router gives every weight exactly
    split = split_replicas(d.total, steps[index].set_weight or 0)
    if not split.representable:
        d.event(
            "UnrepresentableWeight",
            f"setWeight {split.weight} with {d.total} replicas is "
            f"{split.canary} canary / {split.stable} stable: actual weight "
            f"{split.actual_weight}%",
            warning=True,
        )


def promote(d: Draft) -> Plan:
    st = d.st
    old_stable, new_stable = st.stable_revision or "", st.canary_revision or ""
    d.event(
        "RolloutCompleted",
        f"revision {new_stable} promoted to stable (was {old_stable}); no pod restarted",
    )
    # No history mark yet: the next pass writes ``promoted-at`` once this status is
    # accepted (a mark written before a status that then conflicts -- an abort racing
    # the promotion -- would make a lost status recover the aborted revision).
    st.stable_revision = new_stable
    clear_canary(d)
    st.message = f"stable revision {new_stable} runs {d.total}/{d.total} ready"
    d.conditions["Progressing"] = (False, "RolloutCompleted", "")
    set_weights(d, 0)
    return finish(d, {new_stable: d.total, old_stable: 0})
