"""Which traffic routers a Rollout has (see :mod:`ramp.core.traffic`). Pure."""

from __future__ import annotations

from ramp.api.rollout import RolloutSpec
from ramp.core.traffic import TrafficRouter
from ramp.core.traffic_services import SERVICE_PINS


def routers_for(spec: RolloutSpec) -> tuple[TrafficRouter, ...]:
    """The routers of a Rollout, in the order they write: the Service pins always (the
    Services a route's backends name select the revisions through them), then a router
    of each kind of object the spec names."""
    del spec  # no spec field names a router yet: a route router is chosen from it here
    return (SERVICE_PINS,)
