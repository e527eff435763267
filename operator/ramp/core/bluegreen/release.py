"""Blue-green: a release in progress, from green coming up to the switch and the
post-promotion analysis (see :mod:`ramp.core.bluegreen`). Pure."""

from __future__ import annotations

from datetime import timedelta

from ramp.api.rollout import BlueGreenStatus, BlueGreenStrategy, Weights
from ramp.core.abort import abort, aborted
from ramp.core.bluegreen.steady import bg_complete, endpoints, release_of, spec_of
from ramp.core.draft import Draft
from ramp.core.gating import POST, PRE
from ramp.core.judging import gate_outcome, progress_deadline
from ramp.core.model import Plan, iso, iso_ceil, parse_iso
from ramp.core.routers import acknowledged
from ramp.core.status import finish


def blue_green(d: Draft) -> Plan:
    """A release in progress (template ≠ stable, not aborted)."""
    st, bg, s = d.st, spec_of(d), release_of(d)
    blue, green = st.stable_revision or "", st.canary_revision or ""
    if s.preview_revision is None or s.active_revision is None or s.switched_at is None:
        # Before this release's switch the active side is blue — also when an abort
        # (which flipped back) and a retry come in the same plan.
        s.active_revision = blue
    full, preview = d.total, min(bg.preview_replica_count or d.total, d.total)
    bg_tokens(d, s)
    if s.switched_at is None:
        size = full if s.promoted else preview
        replicas = {blue: full, green: size}
        g = d.child(green)
        ready = g is not None and g.converged and g.replicas == size
        st.weights = Weights(desired=0, actual=0)
        if not ready:
            return bg_wait(d, f"green {g.ready if g else 0}/{size} ready", replicas)
        st.progressed_at = None
        if d.spec.paused:
            return bg_held(d, replicas)
        if g is not None and g.drift:
            s.waiting_for = f"the pod template of {g.name} to be restored (edited)"
            st.message = f"release holds: waiting for {s.waiting_for}"
            d.paused_reason = "TemplateDrift"
            return finish(d, replicas)
        if full == 0:
            # spec.replicas 0 (KEDA, an off-hours scaler): green runs no pod to verify,
            # and a revision that never ran a ready pod is never switched to.
            s.waiting_for = "replicas: spec.replicas is 0, green runs no pod to verify"
            st.message = f"release holds: waiting for {s.waiting_for}"
            d.paused_reason = "NoReplicas"
            return finish(d, replicas)
        if bg.pre_promotion_analysis is not None and not s.skip_analysis:
            held = gate_outcome(d, PRE, bg.pre_promotion_analysis, PRE, replicas)
            if held is not None:
                s.waiting_for = st.message
                return held
        if not s.promoted:
            return bg_promotion_gate(d, s, bg, replicas)
        listed = endpoints(d, bg.preview_service, green)
        if listed is not None and listed < full:
            s.waiting_for = f"waiting for {listed}/{full} green endpoints ready"
            st.message = f"switch: {s.waiting_for} in Service {bg.preview_service}"
            d.wake_in(1.0)
            return finish(d, replicas)
        s.switched_at = iso_ceil(d.now)
        s.active_revision = green
        s.waiting_for = None
        d.event("Switched", f"active Service {bg.active_service} switched to {green}")
    replicas = {blue: full, green: full}
    st.weights = Weights(desired=100, actual=100)
    if not acknowledged(d, {blue: 0, green: 100}):
        # a route switches by its weights: the switch counts once the gateway has them
        st.weights = Weights(desired=100, actual=0)
        return bg_wait(d, "the gateway to acknowledge the route's switch to green", replicas)
    if bg.post_promotion_analysis is not None and not s.skip_analysis:
        held = gate_outcome(d, POST, bg.post_promotion_analysis, POST, replicas)
        if held is not None:
            return held
    return bg_complete(d, s, bg, blue, green)


def bg_tokens(d: Draft, s: BlueGreenStatus) -> None:
    if d.tokens.pop("promote-full", None):
        s.promoted = True
        s.skip_analysis = True
        d.tokens.pop("promote", None)
        d.event("PromotedFull", "promote-full: switching as soon as green is ready, no analysis")
    if d.tokens.get("promote"):
        if s.switched_at is not None:
            d.token_not_applicable("promote", "the switch has happened already")
        else:
            d.tokens.pop("promote")
            s.promoted = True
            d.event("Promoted", "promote requested: the pause is skipped (not analysis)")
    d.token_not_applicable("rollback", "the release has not completed (use abort)")


def bg_promotion_gate(
    d: Draft, s: BlueGreenStatus, bg: BlueGreenStrategy, replicas: dict[str, int]
) -> Plan:
    st = d.st
    verified = parse_iso(s.verified_at)
    if verified is None:
        # Recorded rounded up: the status keeps whole seconds, and a wait counted from
        # a rounded-down moment promoted up to a second early after the first pass.
        # The wait counts from the moment recorded, in this pass too: the waitingFor
        # written now and every later pass agree (issue 19: 4 s apart, not 5).
        s.verified_at = iso_ceil(d.now)
        seconds = bg.auto_promotion_seconds or 0
        verified = (parse_iso(s.verified_at) or d.now) if seconds else d.now
    if bg.auto_promotion:
        at = verified + timedelta(seconds=bg.auto_promotion_seconds or 0)
        if d.now >= at:
            s.promoted = True
            d.event("AutoPromoted", "green is ready and verified: promoting")
            d.wake_in(0.05)
            s.waiting_for = "green to reach full size"
            st.message = f"switch: waiting for {s.waiting_for}"
            return finish(d, {**replicas, st.canary_revision or "": d.total})
        s.waiting_for = f"auto-promotion at {iso(at)}"
        d.wake_in((at - d.now).total_seconds())
        st.message = f"green ready and verified; {s.waiting_for}"
        return finish(d, replicas)
    s.waiting_for = "waiting for promote"
    d.paused_reason = "WaitingForPromote"
    st.message = (
        "green ready and verified; waiting for promote (kubectl ramp promote, or annotate "
        "ramp.dev/promote=<token>)"
    )
    return finish(d, replicas)


def bg_wait(d: Draft, what: str, replicas: dict[str, int]) -> Plan:
    st, s = d.st, release_of(d)
    deadline = progress_deadline(d)
    if d.now >= deadline:
        abort(
            d,
            "ProgressDeadlineExceeded",
            f"no progress within progressDeadlineSeconds={d.spec.deadline_seconds}: {what}",
        )
        return aborted(d)
    d.wake_in((deadline - d.now).total_seconds())
    s.waiting_for = what
    st.message = f"switch: waiting for {what}"
    if st.canary_revision == d.revision and d.revision not in d.children:
        d.creates[d.revision] = d.obs.template
    return finish(d, replicas)


def bg_held(d: Draft, replicas: dict[str, int]) -> Plan:
    st = d.st
    if not st.held_by_spec_paused:
        d.event("Paused", "spec.paused is true: the release holds before the switch")
    st.held_by_spec_paused = True
    d.paused_reason = "SpecPaused"
    st.message = "paused by spec.paused before the switch; set spec.paused to false"
    return finish(d, replicas)
