"""Blue-green around a release: its completion, the warm window of blue, a rollback to
blue, an abort. Pure."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import timedelta
from typing import Any

from ramp.api.rollout import BlueGreenStatus, BlueGreenStrategy, Weights
from ramp.api.routes import RouteStatus
from ramp.core.abort import abort
from ramp.core.draft import Draft
from ramp.core.history import clear_canary
from ramp.core.httproute import acknowledgement, backend_weights
from ramp.core.model import Plan, iso, iso_ceil, parse_iso
from ramp.core.route_backends import rollout
from ramp.core.status import finish
from ramp.core.traffic_httproute import ACK_GRACE, HTTPRouteRouter, router_for
from ramp.core.traffic_services import SERVICE_PINS


def spec_of(d: Draft) -> BlueGreenStrategy:
    strategy = d.spec.blue_green
    assert strategy is not None
    return strategy


def release_of(d: Draft) -> BlueGreenStatus:
    if d.st.blue_green is None:
        d.st.blue_green = BlueGreenStatus()
    return d.st.blue_green


def endpoints(d: Draft, service: str | None, revision: str | None) -> int | None:
    """Ready endpoints of ``revision`` in ``service`` (None: not known)."""
    listed = SERVICE_PINS.endpoints(d, service)
    return None if listed is None or not revision else listed.get(revision, 0)


def still_listed(d: Draft, service: str | None) -> Mapping[str, int]:
    """Ready endpoints by revision that ``service`` still sends requests to."""
    return SERVICE_PINS.endpoints(d, service) or {}


def bg_complete(d: Draft, s: BlueGreenStatus, bg: BlueGreenStrategy, blue: str, green: str) -> Plan:
    st = d.st
    switched = parse_iso(s.switched_at) or d.now
    d.event(
        "RolloutCompleted",
        f"revision {green} is active and stable (was {blue}); {blue} stays warm for rollback",
    )
    st.stable_revision = green  # marked promoted by the next pass (see StepsMixin.promote)
    clear_canary(d)
    s.warm_revision = blue
    s.warm_until = iso(switched + timedelta(seconds=bg.scale_down_delay))
    s.promoted = s.skip_analysis = s.verified_at = s.switched_at = s.aborted_at = None
    s.waiting_for = None
    d.conditions["Progressing"] = (False, "RolloutCompleted", "")
    return bg_steady(d)


def bg_steady(d: Draft) -> Plan:
    """No release: the active revision at full size; a warm blue until its window ends
    and no endpoint of it is left in the active Service. A rollback flips back to it."""
    st, bg, s = d.st, spec_of(d), release_of(d)
    active = st.stable_revision or ""
    s.active_revision = active
    s.preview_revision = active
    st.weights = Weights(desired=0, actual=0)
    replicas = {active: d.total}
    if st.canary_revision not in (None, active):
        # A release left mid-way (the template back to blue) keeps its green for the
        # traffic's sake (bg_intent), not its progress: if the template comes back to
        # green, its deadline counts from then, not from before the pods that moved
        # meanwhile (make fuzz-for, seed 381349363).
        st.progressed_at = None
    warm = s.warm_revision if s.warm_revision in d.children else None
    until = parse_iso(s.warm_until)
    for revision, served in still_listed(d, bg.active_service).items():
        child = d.child(revision) if revision not in (active, warm) else None
        if served and child is not None:  # a release left mid-way, still served
            replicas[revision] = child.replicas
            d.wake_in(1.0)
    if d.tokens.get("rollback"):
        if warm and until is not None and d.now < until:
            d.tokens.pop("rollback")
            return bg_rollback(d, warm, active)
        d.token_not_applicable(
            "rollback", "no warm previous revision to flip back to (its window is over)"
        )
    if warm:
        listed = endpoints(d, bg.active_service, warm)
        if (until is not None and d.now < until) or listed:
            replicas[warm] = d.total
            if until is not None and d.now < until:
                d.wake_in((until - d.now).total_seconds())
            else:
                d.wake_in(1.0)
            st.message = (
                f"revision {active} is active; {warm} stays warm until "
                f"{s.warm_until}{' (its endpoints are still listed)' if listed else ''}"
            )
            if "Progressing" not in d.conditions:
                d.conditions["Progressing"] = (False, "RolloutCompleted", "")
            return finish(d, replicas)
        d.event("ScaledDown", f"the warm revision {warm} scales down")
    s.warm_revision = None
    s.warm_until = None
    stable = d.child(active)
    if stable is None or not stable.converged or stable.replicas != d.total:
        st.message = f"active revision {active}: {stable.ready if stable else 0}/{d.total}"
        d.conditions.setdefault("Progressing", (True, "ScalingStable", st.message))
    else:
        st.message = f"active revision {active} runs {d.total}/{d.total} ready"
        d.conditions.setdefault("Progressing", (False, "RolloutCompleted", ""))
    return finish(d, replicas)


def bg_rollback(d: Draft, warm: str, active: str) -> Plan:
    st = d.st
    d.event("RolledBack", f"rollback: the active Service flips back to {warm}")
    st.stable_revision = warm
    st.canary_revision = active
    d.mark(warm, promoted=iso(d.now))
    abort(d, "UserRollback", f"rolled back to {warm} (ramp.dev/rollback)")
    s = release_of(d)
    s.warm_revision = s.warm_until = None
    s.switched_at = iso(d.now)
    return bg_aborted(d)


def bg_aborted(d: Draft) -> Plan:
    """Active back on blue at once (it never left full size while warm); green stays
    ``abortScaleDownDelaySeconds`` and then goes."""
    st, bg, s = d.st, spec_of(d), release_of(d)
    blue, green = st.stable_revision or "", st.canary_revision or ""
    s.active_revision = blue
    s.promoted = s.skip_analysis = s.verified_at = s.switched_at = None
    if s.warm_revision == green:
        # A warm blue released again and aborted is no rollback target, nor a revision
        # the active Service may fall back to (make fuzz-for, seed 348458296).
        s.warm_revision = s.warm_until = None
    since = parse_iso(s.aborted_at)
    if since is None:
        s.aborted_at = iso_ceil(d.now)
        since = parse_iso(s.aborted_at) or d.now
    until = since + timedelta(seconds=bg.abort_scale_down_delay)
    g = d.child(green)
    # Green stays while the active Service still sends it requests: blue deleted by
    # someone and recreated by this abort has no ready pod yet to flip back to.
    listed = still_listed(d, bg.active_service)
    held = bool(listed.get(green)) and d.serving(blue) == 0
    elsewhere = route_elsewhere(d)
    keep = g.replicas if g is not None and (d.now < until or listed.get(green) or elsewhere) else 0
    if keep:
        d.wake_in((until - d.now).total_seconds() if d.now < until else 1.0)
    st.weights = Weights(desired=0, actual=0)
    d.conditions["Aborted"] = (True, st.abort_reason or "Aborted", st.abort_message or "")
    d.conditions["Progressing"] = (False, "RolloutAborted", st.abort_message or "")
    st.message = (
        f"aborted: {st.abort_message}; active {blue} "
        f"{d.serving(blue)}/{d.total} ready"
        f"{f' (the active Service stays on {green} until then)' if held else ''}"
        f"{f', green {green} removed at {iso(until)}' if keep else ''}"
        "; retry with ramp.dev/retry or change the template"
    )
    replicas = {blue: d.total, green: keep}
    # An older green the active Service still lists (replaced after the switch and
    # aborted in the same plan): it goes only once no endpoint of it is listed.
    # While blue has no ready pod, the warm revision's ready pods (or such a listed one's)
    # are all the active Service may fall back to: they stay, a scale-down of them not
    # carried out yet undone (make fuzz-for, seed 479896203: the warm revision scaled to 0
    # by the abort while blue's pod was unready, the Service then moved to blue's none).
    unready = d.serving(blue) == 0
    for other in d.live_children:
        fallback = unready and other.ready > 0 and other.revision == s.warm_revision
        if other.revision not in replicas and (listed.get(other.revision) or fallback):
            keep_other = other.replicas
            if unready and other.ready:
                keep_other = max(keep_other, min(other.ready, d.total))
            replicas[other.revision] = keep_other
            d.wake_in(1.0)
    return finish(d, replicas)


def route_elsewhere(d: Draft) -> bool:
    """With routes: whether one may still send requests elsewhere than to the active
    Service's endpoints as the planner reads them: its weights are not all on the active
    Service, its current generation is not acknowledged, or its last change was
    acknowledged less than ``ACK_GRACE`` ago (the gateway's proxy switches a moment later,
    with the EndpointSlices as it read them). An aborted green (a rollback's: it was the
    active Service's revision) keeps its pods until then."""
    for route, to_preview, record in _routes(d):
        if route is None:
            continue  # its pods are kept by what was recorded (the traffic floors)
        if to_preview:
            return True
        if not acknowledgement(route).acknowledged or (record is not None and record.pending):
            return True
        since = parse_iso(record.acknowledged_at) if record is not None else None
        if since is not None and d.now < since + timedelta(seconds=ACK_GRACE):
            d.wake_in((since + timedelta(seconds=ACK_GRACE) - d.now).total_seconds())
            return True
    return False


def preview_weighted(d: Draft) -> bool:
    """With routes: whether one may send requests to the preview Service by its weights
    (the preview's weight in its current spec, or in the generation the gateway last
    acknowledged while the current one is not: ``status.routes[].acknowledged`` is the
    preview's weight for blue-green). A route someone deleted counts as one not
    acknowledged: the gateway may still proxy what it last acknowledged (make fuzz-for,
    seed 669638058)."""
    for route, to_preview, record in _routes(d):
        if to_preview:
            return True
        lagging = route is None or not acknowledgement(route).acknowledged
        if lagging and (record is None or record.acknowledged):
            return True
    return False


def active_unrouted(d: Draft) -> bool:
    """With routes: whether none may send requests to the active Service by its weights
    (every route's current generation acknowledged and giving it no weight in any rule):
    its selector may move without a request through a route seeing it move."""
    bg = spec_of(d)
    router = router_for(d.spec.http_routes)
    if router is None or not bg.preview_service:
        return False
    services = (bg.active_service, bg.preview_service)
    for route in router.routes(d).values():
        if route is None or not acknowledgement(route).acknowledged:
            return False
        rules = backend_weights(route, services, rollout(d), complete=True)
        if any(rule.get(bg.active_service) for rule in rules):
            return False
    return True


def _routes(d: Draft) -> Iterator[tuple[Mapping[str, Any] | None, bool, RouteStatus | None]]:
    """With routes and a preview Service: each route the spec names as observed (None:
    it does not exist), whether its weights send requests to the preview Service (in any
    rule), and the status record of it."""
    bg = spec_of(d)
    if not d.spec.http_routes or not bg.preview_service:
        return
    services = (bg.active_service, bg.preview_service)
    old = {r.name: r for r in d.old.routes or []}
    for name, route in HTTPRouteRouter(tuple(d.spec.http_routes)).routes(d).items():
        if route is None:
            yield None, False, old.get(name)
            continue
        rules = backend_weights(route, services, rollout(d), complete=True)
        yield route, any(rule.get(bg.preview_service) for rule in rules), old.get(name)
