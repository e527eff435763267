"""The second traffic router: Gateway API HTTPRoutes carry the steps' weights. Pure.

A Rollout whose strategy names ``httpRoutes`` sends its requests through them: the
stable and canary Services stay pinned to their revisions (:mod:`ramp.core.traffic_services`)
and the weights of the routes' backendRefs to those Services split the requests, whatever
the replica count (:mod:`ramp.core.httproute` edits only those weights and Ramp's own
rules). The order that keeps every request answered:

- a revision's share of a route only **grows** once the revision runs the pods that share
  needs (ready), and only through a Service whose ready endpoints are that revision's
  alone (:func:`ramp.core.httproute.assign`): a pin not applied yet, or endpoints not
  ready yet, hold the weights where they are;
- what the gateway **acknowledged** (the route's generation Accepted with its references
  resolved) is what counts: :meth:`HTTPRouteRouter.acknowledged` gives the shares of the
  last acknowledged generation (recorded in ``status.routes``), and the floors of
  :mod:`ramp.core.traffic` keep the pods of every revision the route still sends requests
  to; a step is complete only once its weight is acknowledged (:func:`step_replicas`);
- abort and promotion move the weights first (the intent's weights), the pods follow.

While a canary runs, the stable keeps its full size and the canary runs the pods its share
needs (at least one): ``maxSurge`` does not bound them (:func:`step_replicas`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ramp.api.routes import HeaderRouteMatch, RouteStatus
from ramp.core.httproute import (
    KIND,
    HeaderMatch,
    HeaderRule,
    acknowledgement,
    assign,
    backend_weights,
    header_ops,
    most,
    percent,
    problems,
    reseated,
    revision_shares,
    route_patch,
    weight_ops,
)
from ramp.core.model import iso, parse_iso
from ramp.core.route_backends import (
    backends,
    header_revisions,
    rollout,
    serving,
    split_shares,
    through_the_services,
)
from ramp.core.route_conflict import (
    CONDITION,
    QUIET_SECONDS,
    Verdict,
    backoff,
    condition,
    ignore_differences,
    judge,
    weight_pointers,
)
from ramp.core.split import Split
from ramp.core.traffic import TrafficIntent, needed, routed_split

if TYPE_CHECKING:
    from ramp.core.draft import Draft
    from ramp.core.model import Plan

ACK_POLL = 0.5
"""While a route's new generation is not acknowledged: look again this soon (seconds)."""
ACK_GRACE = 2.0
"""Seconds the shares acknowledged before a change still count for the floors."""


class HTTPRouteRouter:
    """Weights of the HTTPRoutes the strategy names (see the module)."""

    kind = KIND
    exact = True

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names

    def describe(self) -> str:
        return f"HTTPRoute {', '.join(self.names)}"

    def exact_split(self, draft: Draft, weight: int) -> Split | None:
        """The routes give the weight exactly; a header route keeps one canary pod."""
        return routed_split(draft.total, weight, headers=bool(header_rules(draft)))

    # -- what was observed ----------------------------------------------------------

    def routes(self, draft: Draft) -> Mapping[str, Mapping[str, Any] | None]:
        seen: Mapping[str, Any] = draft.obs.traffic.get(KIND) or {}
        return {name: seen.get(name) for name in self.names}

    def acknowledged(self, draft: Draft) -> Mapping[str, int] | None:
        """Per revision, the largest share any route's acknowledged generation gives it;
        for a route whose current generation is not acknowledged, also the shares of the
        generations since the last acknowledged one (the gateway may proxy any of them:
        recorded ``pending``) and of the current one (for a route that is gone: what was
        recorded)."""
        services = backends(draft)
        old = {r.name: r for r in draft.old.routes or []}
        result: dict[str, int] = {}
        for name, route in self.routes(draft).items():
            record = old.get(name)
            now = split_shares(route, services, draft) if route is not None else {}
            if route is not None and acknowledgement(route).acknowledged:
                shares = most(now, settling(draft, record, now))
            elif record is None:
                # No record (a status lost) while the gateway has not acknowledged the
                # route: what its earlier generations send where is not known; any
                # Service the route names may carry every request (make fuzz-for, seeds
                # 394401876, 856184725: a switch lost twice).
                shares = most(now, unknown(draft, services))
            else:
                shares = most(
                    now,
                    record.revisions or {},
                    record.pending or {},
                    through_the_services(draft, record, services),
                )
            result = most(result, shares)
        return result

    def carried(self, draft: Draft) -> Mapping[str, int] | None:
        """:meth:`acknowledged`, and 1 % for each revision a header rule of Ramp's reaches
        in a route as read, or did while its removal is not acknowledged (recorded)."""
        result = dict(self.acknowledged(draft) or {})
        old = {r.name: r for r in draft.old.routes or []}
        services, served = backends(draft), serving(draft)
        for name, route in self.routes(draft).items():
            record = old.get(name)
            lagging = route is not None and not acknowledgement(route).acknowledged
            reached = header_revisions(route, draft) | set(
                (record.headers if record else None) or []
            )
            if lagging and record and record.headers and len(services) == 2:
                # The header rule the gateway may still proxy sends to the Service it
                # names, whatever that lists now: the record names what it listed then
                # (make fuzz-for, seed 917422010: the preview Service moved on).
                reached |= {r for r, n in (served.get(services[1]) or {}).items() if n > 0}
            for revision in reached:
                result[revision] = max(result.get(revision, 0), 1)
        return result

    def problems(self, draft: Draft) -> str | None:
        return route_problems(draft)

    # -- what is written ------------------------------------------------------------

    def route(self, draft: Draft, intent: TrafficIntent, plan: Plan) -> None:
        services = backends(draft)
        served = serving(draft)
        order = [(t.service, t.revision) for t in intent.targets if t.service]
        weights = grown(draft, intent.weights, self.acknowledged(draft) or {})
        wanted = assign(weights, order, served) if weights is not None else None
        headers = header_rules(draft)
        records = []
        fought: list[tuple[RouteStatus, list[str]]] = []
        for name, route in self.routes(draft).items():
            problem = problems(route, name, services)
            if route is None or problem:
                # what the gateway last acknowledged stays known (its pods are kept)
                last = next((r for r in draft.old.routes or [] if r.name == name), None)
                kept = last.model_copy() if last is not None else RouteStatus(name=name)
                kept.message = problem
                records.append(kept)
                continue
            verdict = self.conflict(draft, name, route, wanted)
            wanted_here = None if verdict.hold else wanted
            if wanted_here is None and not verdict.hold and draft.spec.canary is not None:
                # the weights cannot move yet: the same shares through the preferred
                # Services (make fuzz-for, seed 954848776; see httproute.reseated)
                wanted_here = reseated(split_shares(route, services, draft), order, served)
            ops = weight_ops(route, wanted_here, rollout(draft)) if wanted_here is not None else []
            ops += header_ops(route, headers, services, rollout(draft))
            patch = route_patch(route, ops)
            if patch is not None:
                plan.traffic.append(patch)
            if verdict.hold:
                last = next((r for r in draft.old.routes or [] if r.name == name), None)
                kept = last.model_copy() if last is not None else RouteStatus(name=name)
                kept.message = f"weights set back by someone else: left alone until {verdict.until}"
                kept.written = None  # after the back-off Ramp writes before it judges again
            else:
                kept = self.record(draft, name, route, wanted, patch is not None)
            kept.conflicts, kept.conflict_at = verdict.conflicts, verdict.conflict_at
            records.append(kept)
            fought.append((kept, weight_pointers(route, services, rollout(draft))))
        draft.st.routes = records or None
        draft.conditions[CONDITION] = condition(fought)
        if any(r.message for r in records):
            draft.wake_in(ACK_POLL)

    def conflict(
        self,
        draft: Draft,
        name: str,
        route: Mapping[str, Any],
        wanted: Mapping[str, int] | None,
    ) -> Verdict:
        """Someone else set the weights back (a GitOps tool syncing its repository) while
        Ramp held them in place (:mod:`ramp.core.route_conflict`): said once per episode
        (an Event naming the route and the ``ignoreDifferences`` for its weights, and the
        ``RouteConflict`` condition), and the weights are left alone for a back-off instead
        of fighting over them; then Ramp writes them once more. The floors keep the pods of
        whatever the gateway acknowledges meanwhile."""
        old = next((r for r in draft.old.routes or [] if r.name == name), None)
        services = backends(draft)
        if len(services) < 2:
            return Verdict(None, None, False)
        canary = services[1]
        current = percent(backend_weights(route, services, rollout(draft), complete=True), canary)
        generation = (route.get("metadata") or {}).get("generation")
        verdict = judge(
            old,
            current,
            wanted.get(canary) if wanted is not None else None,
            draft.now,
            generation if isinstance(generation, int) else None,
        )
        if verdict.wake is not None:
            draft.wake_in(verdict.wake)
        pointers = weight_pointers(route, services, rollout(draft))
        if verdict.event == CONDITION and old is not None:
            draft.event(
                CONDITION,
                f"HTTPRoute {name}: the weights were set back by someone else (canary "
                f"{current}%, Ramp holds {old.desired}%); left alone for "
                f"{backoff(verdict.conflicts or 1)}s, then written once more (said once "
                f"while it goes on). A GitOps tool: {ignore_differences(name, pointers)}",
                warning=True,
            )
        elif verdict.event is not None:
            draft.event(
                verdict.event,
                f"HTTPRoute {name}: Ramp's weights held {QUIET_SECONDS}s after it wrote "
                "them again: no longer fought over",
            )
        return verdict

    def record(
        self,
        draft: Draft,
        name: str,
        route: Mapping[str, Any],
        wanted: Mapping[str, int] | None,
        writing: bool,
    ) -> RouteStatus:
        """The status of one route: the canary's share wanted and acknowledged."""
        services = backends(draft)
        canary = services[1] if len(services) > 1 else ""
        current = backend_weights(route, services, rollout(draft), complete=True)
        ack = acknowledgement(route)
        old = next((r for r in draft.old.routes or [] if r.name == name), None)
        acked = percent(current, canary) if ack.acknowledged else (old and old.acknowledged)
        revisions = (
            split_shares(route, services, draft)
            if ack.acknowledged
            else (old.revisions if old else None)
        )
        previous, since = (old.previous, old.acknowledged_at) if old else (None, None)
        if ack.acknowledged and old is not None and (old.revisions != revisions or old.pending):
            # a change acknowledged now (what was proxied before still counts a moment)
            previous, since = most(old.revisions or {}, old.pending or {}), iso(draft.now)
        pending = None if ack.acknowledged else most(split_shares(route, services, draft))
        if pending is not None and old is None:
            # the generations before the one read are not known (a status lost)
            pending = most(pending, unknown(draft, services))
        headers = header_revisions(route, draft)
        if old is not None and old.headers and (not ack.acknowledged or old.pending):
            headers |= set(old.headers)  # a removal not acknowledged yet (or just now)
        if pending is not None and old is not None and old.pending:
            pending = most(pending, old.pending)
        if writing and wanted is not None:
            # what this pass writes, hidden from the next read by a GitOps reset between
            pending = most(pending or {}, revision_shares([wanted], serving(draft)))
        desired = wanted.get(canary, 0) if wanted is not None else percent(current, canary)
        written = old.written if old else None
        if writing:
            generation = (route.get("metadata") or {}).get("generation")
            written = generation if isinstance(generation, int) else None
        message = ack.reason
        if wanted is None:
            message = (
                "waiting for the revisions' ready pods and the Services' endpoints before "
                "moving the weights"
            )
        elif writing:
            message = f"writing weight {desired}"
        return RouteStatus(
            name=name,
            desired=desired,
            acknowledged=acked,
            revisions=dict(revisions) if revisions else None,
            previous=dict(previous) if previous else None,
            pending=pending or None,
            headers=sorted(headers) or None,
            acknowledged_at=since,
            message=message or None,
            written=written,
        )

    def release(self, draft: Draft, services: tuple[str, ...], plan: Plan) -> bool:
        """The Rollout goes: Ramp's header rules go; the weights stay as they are (all on
        the revision that keeps serving, the stable Service's)."""
        writing = False
        for route in self.routes(draft).values():
            if route is None:
                continue
            patch = route_patch(route, header_ops(route, [], services, rollout(draft)))
            if patch is not None:
                plan.traffic.append(patch)
                writing = True
        return writing


def settling(draft: Draft, record: RouteStatus | None, shares: Mapping[str, int]) -> dict[str, int]:
    """The shares the gateway acknowledged before, while its proxy may still use them: a
    gateway reports a route's generation accepted when it has read it, and its proxy
    switches a moment later (Traefik: 0.4-0.7 s measured). For ``ACK_GRACE`` seconds
    after a change is acknowledged (or when it is seen for the first time in this pass),
    the previous shares still count for the floors."""
    if record is None:
        return {}
    if record.revisions is not None and (dict(record.revisions) != dict(shares) or record.pending):
        draft.wake_in(ACK_GRACE)
        return most(record.revisions, record.pending or {})  # acknowledged just now
    since = parse_iso(record.acknowledged_at)
    if record.previous and since is not None:
        left = (since + timedelta(seconds=ACK_GRACE) - draft.now).total_seconds()
        if left > 0:
            draft.wake_in(left)
            return dict(record.previous)
    return {}


def unknown(draft: Draft, services: tuple[str, ...]) -> dict[str, int]:
    """Every request to each revision the Services list now: the shares of a route whose
    unacknowledged history is not known."""
    return revision_shares([{service: 100} for service in services], serving(draft))


def router_for(names: list[str] | None) -> HTTPRouteRouter | None:
    return HTTPRouteRouter(tuple(names)) if names else None


def grown(
    draft: Draft, weights: Mapping[str, int], acked: Mapping[str, int]
) -> dict[str, int] | None:
    """``weights``, unless a revision would get a larger share than the gateway
    acknowledged for it before its ready pods can carry that share: then None (the weights
    stay where they are; the canary's weight moves once its pods are ready)."""
    for revision, share in weights.items():
        if share > acked.get(revision, 0) and draft.serving(revision) < needed(draft.total, share):
            return None
    return dict(weights)


def header_rules(draft: Draft) -> list[HeaderRule]:
    """The header routes of the ``setHeaderRoute`` steps reached so far (the last of each
    name wins; one without ``match`` removes it), while a canary runs; blue-green: the
    ``previewHeaderRoute`` to the preview Service, while a release runs."""
    st = draft.st
    services = backends(draft)
    if len(services) < 2 or not st.canary_revision or st.canary_revision == st.aborted_revision:
        return []
    bg = draft.spec.blue_green
    if bg is not None:  # blue-green: the preview, while a release runs
        match = bg.preview_header_route
        return [HeaderRule("preview", services[1], header_matches(match))] if match else []
    rules: dict[str, HeaderRule | None] = {}
    for step in draft.spec.canary.steps[: (st.current_step_index or 0) + 1]:
        header = step.set_header_route
        if header is None:
            continue
        if not header.match:
            rules[header.name] = None
            continue
        rules[header.name] = HeaderRule(header.name, services[1], header_matches(header.match))
    return [r for r in rules.values() if r is not None]


def header_matches(match: list[HeaderRouteMatch]) -> tuple[HeaderMatch, ...]:
    matches = []
    for m in match:
        value = m.header_value
        if value.exact is not None:
            matches.append(HeaderMatch(m.header_name, value.exact, "Exact"))
        elif value.prefix is not None:
            matches.append(HeaderMatch(m.header_name, value.prefix, "Prefix"))
        else:
            matches.append(HeaderMatch(m.header_name, value.regex or "", "RegularExpression"))
    return tuple(matches)


def route_problems(draft: Draft) -> str | None:
    """Why the routes cannot carry the traffic (InvalidSpec, naming the field): a route
    that does not exist or has no backendRef to one of the Services, a Service that
    does not exist. None: they can (or the strategy names none)."""
    names = draft.spec.http_routes
    if not names:
        return None
    bg, canary = draft.spec.blue_green, draft.spec.canary
    where = "spec.strategy.blueGreen" if bg is not None else "spec.strategy.canary"
    fields = ("activeService", "previewService") if bg else ("stableService", "canaryService")
    services = (
        (bg.active_service, bg.preview_service)
        if bg
        else (canary.stable_service, canary.canary_service)
    )
    for field, service in zip(fields, services, strict=True):
        if service and service in draft.obs.services and draft.obs.services[service] is None:
            return f"{where}.{field}: Service {service!r} does not exist"
    routes = HTTPRouteRouter(tuple(names)).routes(draft)
    for i, name in enumerate(names):
        problem = problems(routes.get(name), name, backends(draft))
        if problem:
            return f"{where}.httpRoutes[{i}]: {problem}"
    return None
