"""Ramp watches the HTTPRoutes its Rollouts name (issue 23, ``ramp.shell.runtime.route_watch``):
a change of a route wakes the Rollouts naming it at once, on a Rollout at rest too, instead
of at its resync (every 60 s ± 10 %).

A Rollout completed and at rest (Healthy, all on the stable); the test makes Ramp look at
it (an annotation) so that its next resync is ~60 s away, then a GitOps tool's self-heal
sets the route's weights to 80/20 (a JSON patch, as Argo CD sends): the ``RouteConflict``
condition must come within seconds, not at the resync. Then the user deletes the route:
``InvalidSpec`` naming it, as fast. On the real API server with the real gateway serving
the route.
"""

from __future__ import annotations

import secrets
import time

import pytest
from gateway_e2e import GW_GROUP, GW_VERSION, RealGateway, routed, weights_of
from ramp_e2e import Rollouts, condition, wait_for
from realnode_e2e import FIGURES, RealCluster

pytestmark = pytest.mark.realnode

SOON = 10.0
"""Seconds within which a route's change is seen (a resync would take 54 s at the least)."""
PASS = 2.0
"""Seconds the annotation's pass is given before the route changes (its next resync is then
54-66 s away)."""


def looked_at(rollouts: Rollouts, name: str) -> None:
    """An event of the Rollout: Ramp looks at it now, and at its resync ~60 s later."""
    rollouts.patch(name, {"metadata": {"annotations": {"test/kick": secrets.token_hex(3)}}})
    time.sleep(PASS)


def seen_within(rollouts: Rollouts, name: str, what: str, kind: str, since: float) -> float:
    """Seconds from ``since`` until the Rollout's condition ``kind`` is True."""
    wait_for(
        what,
        lambda: condition(rollouts.status(name), kind).get("status") == "True",
        timeout=SOON + 50,  # fails below with the figure, not here, when it took a resync
        interval=0.05,
    )
    return time.monotonic() - since


def test_route_reset_and_deletion_at_rest_seen_at_once(
    real_cluster: RealCluster, real_gateway: RealGateway, real_rollouts: Rollouts
) -> None:
    rollouts, name = real_rollouts, "atrest"
    routed(real_gateway, rollouts, name, [{"setWeight": 50}], replicas=1)
    at_rest = rollouts.wait(
        name,
        "the route recorded at rest",
        lambda s: (
            s.get("phase") == "Healthy"
            and [(r.get("desired"), r.get("acknowledged")) for r in s.get("routes") or []]
            == [(0, 0)]
        ),
        timeout=60,
    )
    assert condition(at_rest, "RouteConflict").get("status") != "True", at_rest
    looked_at(rollouts, name)
    reset_at = time.monotonic()
    real_gateway.custom.patch_namespaced_custom_object(
        GW_GROUP,
        GW_VERSION,
        rollouts.ns,
        "httproutes",
        name,
        [
            {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 80},
            {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 20},
        ],
        field_manager="argocd-controller",
        _content_type="application/json-patch+json",
    )
    conflict = seen_within(rollouts, name, "the RouteConflict condition", "RouteConflict", reset_at)
    status = rollouts.status(name)
    events = [
        e
        for e in rollouts.core.list_namespaced_event(
            rollouts.ns, field_selector=f"involvedObject.name={name},involvedObject.kind=Rollout"
        ).items
        if e.reason == "RouteConflict"
    ]
    kept = weights_of(real_gateway.read_route(rollouts.ns, name))

    looked_at(rollouts, name)
    deleted_at = time.monotonic()
    real_gateway.custom.delete_namespaced_custom_object(
        GW_GROUP, GW_VERSION, rollouts.ns, "httproutes", name
    )
    invalid = seen_within(rollouts, name, "InvalidSpec for the route", "InvalidSpec", deleted_at)
    message = condition(rollouts.status(name), "InvalidSpec").get("message", "")
    FIGURES.append(
        f"gateway route watch, a Rollout at rest (next resync 54-66 s away): a GitOps reset "
        f"reported as RouteConflict {conflict:.2f}s after the patch, the route's deletion "
        f"as InvalidSpec {invalid:.2f}s after it"
    )
    assert conflict <= SOON, f"the reset was seen {conflict:.1f}s after it: at a resync?"
    assert invalid <= SOON, f"the deletion was seen {invalid:.1f}s after it: at a resync?"
    assert status.get("phase") == "Healthy", status
    assert condition(status, "RouteConflict")["reason"] == "WeightsFoughtOver", status
    assert len(events) == 1, [e.message for e in events]
    assert kept[0] == {f"{name}-stable": 80, f"{name}-canary": 20}, kept
    assert "httpRoutes" in message, message
