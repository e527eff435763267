"""The canary Service's pin held while a route's weights send it requests. Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ramp.api.labels import REVISION_LABEL
from ramp.core.httproute import KIND, acknowledgement, backend_weights, percent
from ramp.core.route_backends import backends, rollout
from ramp.core.traffic import needed

if TYPE_CHECKING:
    from ramp.core.draft import Draft


def held_pin(draft: Draft, service: str | None, chosen: str | None) -> str | None:
    """The revision ``service`` (the canary's) selects while a route's weights may send it
    more requests than ``chosen``'s ready pods can answer: its weight in a route's current
    spec, or, while that generation is not acknowledged, in the last acknowledged one.
    A new release's canary takes the Service once its weight there is acknowledged gone
    (make fuzz-for, seed 954848776); an abort's stable (full size) takes it at once."""
    selected = (draft.obs.services.get(service or "") or {}).get(REVISION_LABEL)
    if not service or not selected or selected == chosen or not draft.serving(selected):
        return chosen
    services = backends(draft)
    old = {r.name: r for r in draft.old.routes or []}
    share = 0
    for name, route in (draft.obs.traffic.get(KIND) or {}).items():
        if route is None:
            continue
        rules = backend_weights(route, services, rollout(draft), complete=True)
        share = max(share, percent(rules, service))
        record = old.get(name)
        if not acknowledgement(route).acknowledged:
            share = max(share, (record.acknowledged or 0) if record is not None else 100)
    if share and draft.serving(chosen or "") < needed(draft.total, share):
        return selected
    return chosen
