"""The blue-green strategy as the planner sees it (:class:`BlueGreen`). Pure."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ramp.api.analysis import AnalysisRef
from ramp.api.labels import REVISION_LABEL
from ramp.api.rollout import RolloutSpec, RolloutStatus, Weights
from ramp.core.bluegreen.release import blue_green
from ramp.core.bluegreen.steady import (
    active_unrouted,
    bg_aborted,
    bg_steady,
    preview_weighted,
    release_of,
    spec_of,
    still_listed,
)
from ramp.core.draft import Draft
from ramp.core.gating import POST, PRE
from ramp.core.judging import progress_deadline
from ramp.core.model import Child, Plan
from ramp.core.routers import acknowledged, exact_routers
from ramp.core.split import Limits
from ramp.core.status import finish
from ramp.core.traffic import ServiceTarget, TrafficIntent


class BlueGreen:
    """``spec.strategy.blueGreen`` (see :mod:`ramp.core.bluegreen`)."""

    name = "blueGreen"
    rollback = True

    def problems(self, spec: RolloutSpec) -> str | None:
        return None  # the schema checks all of it

    def limits(self, spec: RolloutSpec) -> Limits:
        """Drains (and the workload's adoption) shift within Deployment-like defaults."""
        return Limits.resolve(spec.replicas, "25%", 0)

    def runs_in_play(self, spec: RolloutSpec, status: RolloutStatus) -> dict[str, AnalysisRef]:
        """The pre-promotion analysis before the switch, the post-promotion one after."""
        bg = spec.strategy.blue_green
        release = status.blue_green
        if bg is None or (release is not None and release.skip_analysis):
            return {}
        switched = release is not None and release.switched_at is not None
        ref = bg.post_promotion_analysis if switched else bg.pre_promotion_analysis
        return {(POST if switched else PRE): ref} if ref is not None else {}

    def services(self, spec: RolloutSpec) -> tuple[str, ...]:
        bg = spec.strategy.blue_green
        names = (bg.active_service, bg.preview_service) if bg is not None else ()
        return tuple(n for n in names if n)

    def steady(self, d: Draft) -> Plan:
        return bg_steady(d)

    def share(self, d: Draft) -> int:
        """Blue stays at full size beside green (it is what the active Service lists)."""
        return 0

    def progress(self, d: Draft) -> Plan:
        return blue_green(d)

    def hold(self, d: Draft, reason: str) -> Plan:
        """A release holds as it is: nothing switches, nothing scales down. Its pods'
        progress is still recorded (the counts this status writes are the next pass's
        baseline: make fuzz-for, seed 940750721, an invalid spec's pass took a pod
        created as no progress and the next valid pass aborted for the deadline)."""
        d.paused_reason = reason
        progress_deadline(d)
        return finish(d, {c.revision: c.replicas for c in d.live_children})

    def aborted(self, d: Draft) -> Plan:
        return bg_aborted(d)

    def at_rest(self, d: Draft, replicas: dict[str, int]) -> dict[str, int]:
        """Nothing else scales down meanwhile: the warm revision may be all the active
        Service lists (issue 10: blue stays while its endpoints are)."""
        return {**{c.revision: c.replicas for c in d.live_children}, **replicas}

    def draining(self, d: Draft, others: list[Child], replicas: dict[str, int]) -> None:
        """A green replaced after the switch: the active flips back to blue (warm at full
        size), and the old green goes only once the active Service's EndpointSlices list
        none of its endpoints."""
        st = d.st
        release = st.blue_green
        if release is not None and release.active_revision not in {
            st.stable_revision,
            st.canary_revision,
        }:
            release.active_revision = st.stable_revision
        # The weights follow (a route's): all on blue unless this green was switched to.
        switched = release is not None and release.switched_at is not None
        green = switched and release is not None and release.active_revision == st.canary_revision
        st.weights = Weights(desired=100, actual=100) if green else Weights(desired=0, actual=0)
        still = still_listed(d, spec_of(d).active_service)
        for other in others:
            if still.get(other.revision):
                replicas[other.revision] = other.replicas
                d.wake_in(1.0)

    def restarted(self, d: Draft) -> None:
        release = d.st.blue_green
        if release is not None:
            release.promoted = release.skip_analysis = release.verified_at = None
            release.switched_at = release.aborted_at = release.waiting_for = None

    def intent(self, d: Draft, replicas: Mapping[str, int] | None) -> TrafficIntent:
        return bg_intent(d, replicas) if replicas is not None else TrafficIntent()

    def counts(self, d: Draft) -> None:
        bg_counts(d)

    def describe(self, d: Draft) -> str:
        return "0 steps"


def bg_intent(d: Draft, replicas: Mapping[str, int]) -> TrafficIntent:
    """The active Service never selects an aborted or unverified revision, nor one with
    no ready pod while another has them; the preview never goes empty."""
    st, bg, s = d.st, spec_of(d), release_of(d)

    def serving(revision: str | None) -> int:
        """Its ready pods that stay; or, when none are sure to, those of a scale-down its
        controller has not carried out, which this plan undoes (make fuzz-for, seed
        289686157: blue scaled to 0 by hand, its pods still ready, green deleted: the
        active Service moved to the recreated green)."""
        child = d.child(revision)
        if child is None or child.serving:
            return child.serving if child else 0
        return min(child.ready, replicas.get(child.revision, 0))

    active = s.active_revision or st.stable_revision
    if serving(active) == 0:
        other = st.stable_revision if active != st.stable_revision else s.warm_revision
        if other and serving(other) > 0 and other != st.aborted_revision:
            active = other
    if serving(active) == 0:
        # Nothing ready to move to yet (a rolled-back blue still coming up, a deleted blue
        # recreated by an abort): the active Service stays on what it selects while that
        # serves, an aborted green too; it moves once blue has a ready pod, and green
        # goes only after its endpoints left the active Service (never an empty Service).
        current = (d.obs.services.get(bg.active_service) or {}).get(REVISION_LABEL)
        if current and serving(current) > 0:
            active = current
        elif s.switched_at and st.canary_revision != st.aborted_revision:
            # Neither serves, but the green this release switched to does (a route holds
            # the active Service on blue until the release completes; the template went
            # back to blue, whose pods went unready): the Service follows green until blue
            # has a ready pod (make fuzz-for, seed 954848776).
            switched = st.canary_revision
            if switched and serving(switched) > 0:
                active = switched
    green = st.canary_revision if st.aborted_revision != st.canary_revision else None
    preview = green if green and serving(green) > 0 else active
    if preview == green:
        s.preview_revision = green
    elif s.preview_revision not in (None, active) and serving(s.preview_revision) > 0:
        preview = s.preview_revision if s.preview_revision != st.aborted_revision else active
    s.preview_revision = preview
    pinned = active
    if exact_routers(d.spec) and s.switched_at and active == green and serving(st.stable_revision):
        # A route switches by its weights (preview 100): the active Service stays on blue
        # until the release completes, so that an abort flips the weights back to it.
        pinned = st.stable_revision
    rerouted = False
    if exact_routers(d.spec) and pinned and preview == pinned:
        pinned, preview = through_the_route(d, pinned, serving)
        # the preview takes what the active Service moves to (ready, verified): not held
        # on what the route's weights send it now (make fuzz-for, seed 910736183)
        rerouted = preview != pinned
    if exact_routers(d.spec) and not rerouted:
        preview = held_preview(d, preview)
    # A Service Ramp has not pinned yet (it may serve pods of what ran before Ramp) is
    # narrowed only once the revision is fully available.
    return TrafficIntent(
        targets=(
            ServiceTarget(bg.active_service, pinned, d.total),
            ServiceTarget(bg.preview_service, preview, d.total),
        ),
        weights=d.traffic_weights(),
    )


def held_preview(d: Draft, preview: str | None) -> str | None:
    """With routes, the preview Service keeps the revision it selects while a route's
    weights may still send it requests: they give it a weight, or the route's current
    generation is not acknowledged and the last one acknowledged gave it a weight (a
    completion's return to the active Service the gateway has not applied). Moved to
    another revision (the next release's green), it would get them unverified. (Ramp's
    own header rule sends requests to the preview on purpose: it holds nothing.)"""
    bg = spec_of(d)
    selected = (d.obs.services.get(bg.preview_service or "") or {}).get(REVISION_LABEL)
    if not selected or selected == preview or not d.serving(selected):
        return preview
    return selected if preview_weighted(d) else preview


def through_the_route(
    d: Draft, target: str, serving: Callable[[str | None], int]
) -> tuple[str, str]:
    """(active, preview) revisions when the active Service must move to ``target`` with a
    route (a rollback in the warm window: the route sends everything to the active
    Service, which selects green). The active Service's selector does not move while the
    route sends it requests: the preview Service takes ``target`` first and the route
    sends it everything (0/100); once the gateway has acknowledged that, the active
    Service moves, and the weights come back to it once it lists ``target`` (what the
    gateway proxies is known at each moment, not left to the EndpointSlices' timing)."""
    active = (d.obs.services.get(spec_of(d).active_service) or {}).get(REVISION_LABEL)
    if not active or active == target or not serving(active) or not serving(target):
        return target, target
    if acknowledged(d, {target: 100, active: 0}) or active_unrouted(d):
        # The route sends the active Service nothing: it moves at once (an abort whose
        # green both Services select while the route sends everything to the preview,
        # make fuzz-for, seed 814673983), and the weights come back to it.
        return target, target
    return active, target


def bg_counts(d: Draft) -> None:
    """The HPA sees only the active side: its pods and a selector narrowed to it."""
    st, s = d.st, release_of(d)
    active = s.active_revision or st.stable_revision
    child = d.child(active)
    st.replicas = child.current if child else 0
    st.ready_replicas = min(child.ready, child.current) if child else 0
    if active:
        st.selector = f"{st.selector},{REVISION_LABEL}={active}" if st.selector else ""
