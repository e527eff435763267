"""Someone else writes the weights Ramp manages on an HTTPRoute (a GitOps tool syncing the
route from its repository puts its own weights back): reported like a ``workloadRef``
conflict (:mod:`ramp.core.workload`), without flapping. Pure.

- A **reset** is seen when Ramp still wants the weights it wrote and the route now carries
  other weights, although Ramp saw its weights acknowledged by the gateway, or the route's
  generation moved on past Ramp's own write (a stale read of the route from before Ramp's
  write is neither).
- The first reset of an **episode** raises one Event (``RouteConflict``, a warning naming
  the route and the Argo CD ``ignoreDifferences`` for its weights) and sets the Rollout's
  ``RouteConflict`` condition; Ramp leaves the weights alone for a back-off (1, 2, 5, 10
  minutes), then writes them once more. A weight Ramp moves to meanwhile (the next step,
  promotion, an abort's 0) is written at once.
- A reset again within the episode (after each of Ramp's writes, say) only counts: the
  condition stays True, no new Event.
- The episode is over when Ramp's weights held ``QUIET_SECONDS`` after the back-off:
  the condition goes False with one ``RouteConflictResolved`` Event.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ramp.api.routes import RouteStatus
from ramp.core.httproute import names_service, owned_rule
from ramp.core.model import iso, parse_iso

CONDITION = "RouteConflict"
BACKOFF_SECONDS = (60, 120, 300, 600)
"""How long Ramp leaves a route's weights alone after the 1st, 2nd, 3rd, ... reset."""
QUIET_SECONDS = 60
"""An episode is over when Ramp's weights held this long after the back-off."""


def backoff(count: int) -> int:
    """The back-off after the ``count``-th reset of an episode (1-based)."""
    return BACKOFF_SECONDS[max(0, min(count, len(BACKOFF_SECONDS)) - 1)]


def weight_pointers(route: Mapping[str, Any], services: Iterable[str], rollout: str) -> list[str]:
    """The JSON pointers of the weights Ramp writes: every backendRef naming one of the
    Rollout's Services in a rule that is not Ramp's own.

    >>> route = {"metadata": {"namespace": "ns"}, "spec": {"rules": [
    ...     {"backendRefs": [{"name": "s"}, {"name": "other"}, {"name": "c"}]},
    ...     {"backendRefs": [{"name": "s", "weight": 7}]}]}}
    >>> weight_pointers(route, ["s", "c"], "web")
    ['/spec/rules/0/backendRefs/0/weight', '/spec/rules/0/backendRefs/2/weight', \
'/spec/rules/1/backendRefs/0/weight']
    """
    namespace = (route.get("metadata") or {}).get("namespace")
    wanted = list(services)
    pointers = []
    for i, rule in enumerate((route.get("spec") or {}).get("rules") or []):
        if owned_rule(rule, rollout):
            continue
        for j, ref in enumerate(rule.get("backendRefs") or []):
            if names_service(ref, namespace, wanted):
                pointers.append(f"/spec/rules/{i}/backendRefs/{j}/weight")
    return pointers


def ignore_differences(name: str, pointers: Sequence[str]) -> str:
    """The Argo CD ``ignoreDifferences`` entry that leaves the route's weights to Ramp.

    >>> ignore_differences("shop", ["/spec/rules/0/backendRefs/0/weight"])
    'ignoreDifferences: [{group: gateway.networking.k8s.io, kind: HTTPRoute, name: shop, \
jsonPointers: [/spec/rules/0/backendRefs/0/weight]}] (docs/gateway-api.md)'
    """
    return (
        "ignoreDifferences: [{group: gateway.networking.k8s.io, kind: HTTPRoute, "
        f"name: {name}, jsonPointers: [{', '.join(pointers)}]}}] (docs/gateway-api.md)"
    )


@dataclass(frozen=True)
class Verdict:
    """What to do about one route's weights this pass."""

    conflicts: int | None
    conflict_at: str | None
    hold: bool
    """Leave the weights alone (a back-off runs)."""
    event: str | None = None
    """``RouteConflict`` (an episode begins) or ``RouteConflictResolved`` (it ended)."""
    wake: float | None = None
    """Look again this many seconds from now."""
    until: str | None = None
    """While holding: when Ramp writes its weights again."""


def judge(
    old: RouteStatus | None,
    current: int,
    wanted: int | None,
    now: datetime,
    generation: int | None = None,
) -> Verdict:
    """The verdict for a route of ``generation`` whose canary weight is ``current`` % while
    Ramp wants ``wanted`` % (None: Ramp writes no weights this pass), given its last record
    ``old``."""
    count = (old.conflicts or 0) if old else 0
    since = parse_iso(old.conflict_at) if old else None
    at = old.conflict_at if old else None
    if old is None or wanted is None:
        return Verdict(count or None, at, False)
    if count and since is not None:
        end = since + timedelta(seconds=backoff(count))
        if now < end and wanted == old.desired:  # another weight (abort): written at once
            return Verdict(count, at, True, wake=(end - now).total_seconds(), until=iso(end))
    held = old.desired is not None and old.acknowledged == old.desired and not old.message
    # Ramp's write made generation ``written + 1``: one after it is someone else's
    later = old.written is not None and generation is not None and generation > old.written + 1
    if (held or later) and wanted == old.desired and current != old.desired:
        count += 1
        end = now + timedelta(seconds=backoff(count))
        event = CONDITION if count == 1 else None
        return Verdict(count, iso(now), True, event, backoff(count), iso(end))
    if count and since is not None:
        over = since + timedelta(seconds=backoff(count) + QUIET_SECONDS)
        if now >= over and current == wanted and held:
            return Verdict(None, None, False, f"{CONDITION}Resolved")
        return Verdict(count, at, False, wake=max((over - now).total_seconds(), 1.0))
    return Verdict(None, None, False)


def condition(records: Iterable[tuple[RouteStatus, list[str]]]) -> tuple[bool, str, str]:
    """The ``RouteConflict`` condition over the routes' records (each with the pointers of
    its weights): True while an episode runs on any of them."""
    fought = [(r, p) for r, p in records if r.conflicts]
    if not fought:
        return (False, "NoConflict", "")
    said = "; ".join(
        f"HTTPRoute {r.name}: the weights of Ramp's backendRefs were set back by someone "
        f"else {r.conflicts} time(s), last at {r.conflict_at}; Ramp writes them again after "
        f"a back-off. A GitOps tool: add {ignore_differences(r.name, p)}"
        for r, p in fought
    )
    return (True, "WeightsFoughtOver", said)
