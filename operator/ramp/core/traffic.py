"""The traffic-router seam: how requests reach the revisions a strategy runs. Pure.

A strategy decides *where* traffic should go (:class:`TrafficIntent`: which revision each
of its Services selects, the share of requests per revision, header routes); a router
(:class:`ramp.core.routers.TrafficRouter`) makes the data plane carry it and says what
the data plane has *acknowledged*. The planner asks every router of the Rollout
(:func:`ramp.core.routers.routers_for`) in each pass, after the strategy chose the
replicas:

0. ``router.problems(draft)`` before planning -- an object the spec names that cannot be
   routed (missing, not referencing the Rollout's Services) is an invalid spec naming the
   field, and the traffic stays as it was;
1. ``router.acknowledged(draft)`` -- per revision, the share of requests (percent) the
   data plane has confirmed it carries now, or ``None`` when this router carries no
   weights of its own (Service pins: the replica ratio is the split);
2. :func:`hold_floors` raises the planned replicas of every revision the data plane still
   sends requests to (``router.carried(draft)``: what it acknowledged, and what else may
   still reach a revision, such as a header route whose removal is not acknowledged yet),
   or is asked to, to the pods its share needs (:func:`floors`): **a
   revision a router still sends traffic to is never scaled below the pods its share
   needs, and a revision is only scaled to zero once its weight 0 is acknowledged**;
3. ``router.route(draft, intent, plan)`` adds its writes to the plan (only where what
   was observed differs: a level-based router writes nothing when all is in place).

A canary step is reached only once every router that carries weights acknowledged the
step's weights (:func:`ramp.core.routers.acknowledged`): until then the step waits, and
its progress deadline runs.

Writing a router (:mod:`ramp.core.traffic_httproute` is one to read):

- its own module ``ramp/core/traffic_<kind>.py`` with a class that has the methods of
  :class:`ramp.core.routers.TrafficRouter`, a ``kind`` and ``exact``; it reads what the shell
  observed for it from ``draft.obs.traffic[kind]`` (whatever the shell's reader of that
  kind put there: the routes, their generation and ``status.parents``) and adds its
  writes to ``plan.traffic`` (objects with a ``router`` attribute naming its kind: the
  shell hands each to the writer of that kind);
- one line in :func:`ramp.core.routers.routers_for` (when the spec names its objects);
- the API field that names those objects, and the shell's reader and writer of them (a
  module of their own in ``ramp/shell/adapters``, one entry in ``traffic_io.ADAPTERS``).

Rules a router keeps:

- **Acknowledged, not written.** A weight counts only once the data plane says it applied
  it (for a route: ``status.parents[].conditions`` Accepted with ``observedGeneration``
  equal to the route's generation). Until then ``acknowledged`` returns what was last
  confirmed, so the floors keep the pods that still take requests; a data plane that never
  acknowledges holds the rollout (the strategy's progress deadline applies), it is never
  guessed.
- **Abort and promotion move traffic first.** The intent of an abort gives the canary
  weight 0 at once; its pods go only after that 0 is acknowledged (the floors see to it).
- **Only Ramp's parts are written.** A router writes the weights of the backends that name
  the Rollout's Services and the rules it marked as its own (header routes); anything else
  in the user's object stays byte for byte.
- **Pure.** A router reads the draft and returns data; the shell does the I/O.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from ramp.core.split import Split


@dataclass(frozen=True)
class ServiceTarget:
    """A Service of the strategy and the revision it should select."""

    service: str | None
    revision: str | None
    narrow_at: int = 1
    """A Service Ramp has not pinned yet (it may serve what ran before Ramp: the Deployment
    a Rollout replaces) is narrowed to ``revision`` only once that revision serves at least
    this many ready pods."""


@dataclass(frozen=True)
class HeaderMatch:
    """One header condition of a header route."""

    name: str
    value: str
    type: Literal["Exact", "Prefix", "RegularExpression"] = "Exact"


@dataclass(frozen=True)
class HeaderRoute:
    """Requests matching every header go to ``revision``, whatever the weights (a rule
    the router adds and marks as Ramp's; it goes when the intent no longer names it)."""

    name: str
    revision: str
    matches: tuple[HeaderMatch, ...]


@dataclass(frozen=True)
class TrafficIntent:
    """Where the strategy wants traffic to go after this pass."""

    targets: tuple[ServiceTarget, ...] = ()
    """Each Service of the strategy and the revision it selects (stable/canary Services,
    active/preview Services)."""
    weights: Mapping[str, int] = field(default_factory=dict)
    """Revision -> percent of requests (adding up to 100 when a release runs): the step's
    weight for a canary, 0/100 for blue-green. A router that carries weights (a route)
    writes them; Service pins leave the split to the replica ratio."""
    headers: tuple[HeaderRoute, ...] = ()


class TrafficWrite(Protocol):
    """A write a router planned (in :attr:`ramp.core.model.Plan.traffic`); the shell's
    writer of the same ``router`` kind executes it."""

    @property
    def router(self) -> str: ...


def floors(
    acknowledged: Mapping[str, int], wanted: Mapping[str, int], total: int
) -> dict[str, int]:
    """The fewest replicas each revision may be planned at: the pods its share of requests
    needs, for the larger of the share the data plane confirmed (it still sends that) and
    the share asked for (it will) -- at least one pod for any share above 0.

    >>> floors({"a": 100}, {"a": 0, "b": 100}, 3)
    {'a': 3, 'b': 3}
    >>> floors({"a": 95, "b": 5}, {"a": 95, "b": 5}, 3)
    {'a': 3, 'b': 1}
    """
    result: dict[str, int] = {}
    for revision in dict.fromkeys([*acknowledged, *wanted]):
        share = max(acknowledged.get(revision, 0), wanted.get(revision, 0))
        if share > 0:
            result[revision] = min(total, max(1, math.ceil(total * share / 100)))
    return result


def hold_floors(replicas: Mapping[str, int], least: Mapping[str, int]) -> dict[str, int]:
    """``replicas`` with each revision raised to its floor (none lowered, none added that
    the plan does not run).

    >>> hold_floors({"a": 0, "b": 3}, {"a": 3})
    {'a': 3, 'b': 3}
    """
    return {rev: max(n, least.get(rev, 0)) for rev, n in replicas.items()}


def needed(total: int, share: int) -> int:
    """The pods a share of requests needs: ``ceil(total * share / 100)``, at least one."""
    return 0 if share <= 0 else min(total, max(1, math.ceil(total * share / 100)))


def routed_split(total: int, weight: int, headers: bool = False) -> Split:
    """The replicas of a step at ``weight`` when routes carry it: the canary the pods its
    share needs (at least one; one at weight 0 while a header route sends it requests),
    the stable its full size.

    >>> routed_split(3, 5)
    Split(canary=1, stable=3, weight=5)
    >>> routed_split(3, 0, headers=True)
    Split(canary=1, stable=3, weight=0)
    """
    canary = max(needed(total, weight), 1 if headers and total else 0)
    return Split(canary=canary, stable=total, weight=weight)
