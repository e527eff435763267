"""The traffic-router protocol, and which routers a Rollout has (the guide to writing
one is :mod:`ramp.core.traffic`). Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from ramp.api.rollout import RolloutSpec
from ramp.core.draft import Draft
from ramp.core.model import Plan
from ramp.core.split import Split
from ramp.core.traffic import TrafficIntent
from ramp.core.traffic_httproute import router_for
from ramp.core.traffic_services import SERVICE_PINS


class TrafficRouter(Protocol):
    """One way requests reach revisions (see the module's guide)."""

    kind: str
    exact: bool
    """It gives a canary step's weight exactly (a route's weights), whatever the replica
    count: the step's replicas are :meth:`exact_split`'s, not the replica ratio's."""

    def describe(self) -> str:
        """Its objects in a few words (``HTTPRoute shop``), for ``kubectl ramp plan``."""
        ...

    def exact_split(self, draft: Draft, weight: int) -> Split | None:
        """The replicas of a canary step at ``weight`` when this router gives it exactly
        (the canary the pods its share needs, the stable its full size); None: it does not
        (the replica ratio is the split)."""
        ...

    def problems(self, draft: Draft) -> str | None:
        """What keeps this router from routing (an object the spec names is missing, or
        does not reference the Rollout's Services): reported as an invalid spec naming the
        field, and the traffic stays as it was. None: nothing."""
        ...

    def acknowledged(self, draft: Draft) -> Mapping[str, int] | None:
        """Per revision, the percent of requests the data plane confirmed it carries (a
        revision absent: 0); None: this router carries no weights of its own."""
        ...

    def carried(self, draft: Draft) -> Mapping[str, int] | None:
        """What the floors keep pods for: :meth:`acknowledged`, and the revisions requests
        may still reach otherwise (a header route whose removal is not acknowledged yet)."""
        ...

    def route(self, draft: Draft, intent: TrafficIntent, plan: Plan) -> None:
        """Add to ``plan`` the writes that make the data plane carry ``intent`` (none where
        it already does). ``plan.replicas`` is None when the workload is left as it is."""
        ...

    def release(self, draft: Draft, services: tuple[str, ...], plan: Plan) -> bool:
        """The Rollout goes (deleted, its workload given back): add the writes that take
        out what Ramp wrote. True while some are planned (the shell waits for them)."""
        ...


def routers_for(spec: RolloutSpec) -> tuple[TrafficRouter, ...]:
    """The routers of a Rollout, in the order they write: the Service pins always (the
    Services a route's backends name select the revisions through them), then a router
    of each kind of object the spec names."""
    route = router_for(spec.http_routes)
    return (SERVICE_PINS,) if route is None else (SERVICE_PINS, route)


def acknowledged(draft: Draft, weights: Mapping[str, int]) -> bool:
    """Every router that carries weights has confirmed ``weights`` (revision -> percent;
    a revision it does not name: 0). Routers without weights (Service pins) agree."""
    for router in routers_for(draft.spec):
        seen = router.acknowledged(draft)
        if seen is not None and any(seen.get(r, 0) != w for r, w in weights.items() if r):
            return False
    return True


def problems(draft: Draft) -> str | None:
    """The first problem a router of the Rollout reports (None: none)."""
    for router in routers_for(draft.spec):
        problem = router.problems(draft)
        if problem:
            return problem
    return None


def exact_split(draft: Draft, weight: int) -> Split | None:
    """The replicas of a canary step at ``weight`` when a router of the Rollout gives the
    weight exactly (None: none does, the replica ratio is the split)."""
    for router in routers_for(draft.spec):
        split = router.exact_split(draft, weight)
        if split is not None:
            return split
    return None


def exact_routers(spec: RolloutSpec) -> tuple[TrafficRouter, ...]:
    """The Rollout's routers that give the steps' weights exactly."""
    return tuple(router for router in routers_for(spec) if router.exact)
