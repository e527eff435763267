"""Which revisions the Rollout's Services in a route reach: the Services the routes'
backendRefs name, the ready endpoints each lists by revision, and the shares of a route's
rules over them. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ramp.api.labels import REVISION_LABEL
from ramp.api.routes import RouteStatus
from ramp.core.httproute import backend_weights, owned_rule, revision_shares

if TYPE_CHECKING:
    from ramp.core.draft import Draft


def split_shares(
    route: Mapping[str, Any], services: tuple[str, ...], draft: Draft
) -> dict[str, int]:
    """Per revision, the percent of requests of the rules that name both Services (the
    split Ramp writes; :func:`ramp.core.routers.acknowledged` compares it with a step's
    weights)."""
    rules = backend_weights(route, services, rollout(draft), complete=True)
    return revision_shares(rules, serving(draft))


def through_the_services(
    draft: Draft, record: RouteStatus | None, services: tuple[str, ...]
) -> dict[str, int]:
    """The acknowledged split of the Rollout's two Services over the revisions their
    endpoints list now: a pin that moved while the gateway had not acknowledged the route's
    new generation hands the Service's share to its new pods (make fuzz-for, seed
    246751388: the canary Service moved to a new canary, then that canary was scaled away
    while the gateway still sent it 5 %)."""
    if record is None or record.acknowledged is None or len(services) < 2:
        return {}
    stable, canary = services[0], services[1]
    split = {stable: 100 - record.acknowledged, canary: record.acknowledged}
    return revision_shares([split], serving(draft))


def header_revisions(route: Mapping[str, Any] | None, draft: Draft) -> set[str]:
    """The revisions a rule of Ramp's (a header route) in ``route`` sends requests to."""
    served, name = serving(draft), rollout(draft)
    return {
        revision
        for rule in ((route or {}).get("spec") or {}).get("rules") or []
        if owned_rule(rule, name)
        for ref in rule.get("backendRefs") or []
        for revision, n in (served.get(str(ref.get("name"))) or {}).items()
        if n > 0
    }


def rollout(draft: Draft) -> str:
    """The Rollout's name (Ramp's header rules are named after it)."""
    return str(draft.obs.rollout.metadata.get("name") or draft.obs.uid)


def backends(draft: Draft) -> tuple[str, ...]:
    """The Rollout's Services the routes' backendRefs name (stable first)."""
    spec = draft.spec
    pair: tuple[str | None, str | None] = (
        (spec.blue_green.active_service, spec.blue_green.preview_service)
        if spec.blue_green is not None
        else (spec.canary.stable_service, spec.canary.canary_service)
    )
    return tuple(s for s in pair if s)


def serving(draft: Draft) -> dict[str, dict[str, int]]:
    """Per Service of the Rollout, its ready endpoints by revision (the revision its
    selector is pinned to, with the revision's ready pods, when the endpoints were not
    read)."""
    result: dict[str, dict[str, int]] = {}
    for service in backends(draft):
        if service in draft.obs.endpoints:
            result[service] = dict(draft.obs.endpoints[service])
            continue
        pinned = (draft.obs.services.get(service) or {}).get(REVISION_LABEL)
        result[service] = {pinned: draft.serving(pinned)} if pinned else {}
    return result
