"""Exact traffic through a Gateway API HTTPRoute, proven with a real gateway: Traefik in the
cluster's network namespace proxies real requests to real pods of the demo app on the real
node, and Ramp moves only the weights of the route's backendRefs (docs/gateway-api.md).

The demo app answers ``GET /`` with its ``VERSION``: each answer says which revision served
it. Every answer of the traffic is counted; code 0 is a request that failed.
"""

from __future__ import annotations

import copy
import time

import pytest
from gateway_e2e import (
    GatewayTraffic,
    RealGateway,
    accepted,
    acknowledged,
    routed,
    share,
    weights_of,
)
from ramp_e2e import Rollouts, wait_for
from realnode_e2e import FIGURES, PodClock, RealCluster, release

pytestmark = pytest.mark.realnode


def test_exact_weights_with_three_replicas_no_request_failed(
    real_cluster: RealCluster, real_gateway: RealGateway, real_rollouts: Rollouts
) -> None:
    """With 3 replicas, setWeight 5, 30 and 100: over 2,000 requests per step the canary's
    share is within 1.5 points of the weight; not one request fails through the steps'
    transitions and the promotion."""
    rollouts, name = real_rollouts, "exact"
    steps = [
        {"setWeight": 5},
        {"pause": {}},
        {"setWeight": 30},
        {"pause": {}},
        {"setWeight": 100},
        {"pause": {}},
    ]
    host, _ = routed(real_gateway, rollouts, name, steps)
    traffic = GatewayTraffic(real_gateway, host, seconds=300).start()
    try:
        traffic.wait_count(traffic.mark(), 200, timeout=60)
        release(rollouts, name, {"VERSION": "v2"})
        measured = []
        for index, weight in ((1, 5), (3, 30), (5, 100)):
            wait_for(
                f"step {index + 1} paused with weight {weight} acknowledged",
                lambda i=index, w=weight: acknowledged(rollouts, name, i, w),  # type: ignore[misc]
                timeout=120,
            )
            time.sleep(2.0)  # the gateway's routers follow its status a moment later
            counts = traffic.wait_count(traffic.mark(), 2000, timeout=120)
            got = share(counts, "v2")
            measured.append(f"{weight}%: {got:.2f}% of {sum(counts.values())}")
            assert abs(got - weight) <= 1.5, f"weight {weight}: the canary got {got:.2f}%"
            stable = rollouts.deployments(name)
            assert sorted(d.spec.replicas for d in stable.values()) == sorted(
                [3, 1 if weight < 100 else 3]
            ), "the canary runs the pods its share needs, the stable its full size"
            rollouts.request(name, "promote")
        rollouts.wait_healthy(name, 3, timeout=120)
        settle = traffic.mark()
        traffic.wait_count(settle, 300, timeout=60)
    finally:
        traffic.stop()
    failed = traffic.failed()
    FIGURES.append(
        f"gateway exact weights (3 replicas): {'; '.join(measured)}; "
        f"{len(traffic.log)} requests, {len(failed)} failed"
    )
    assert not failed, f"{len(failed)} requests failed: {failed[:5]}"
    assert share(traffic.since(settle), "v2") == 100.0


def test_abort_takes_the_canary_out_of_the_route_before_its_pods_go(
    real_cluster: RealCluster, real_gateway: RealGateway, real_rollouts: Rollouts
) -> None:
    """A header route before any weight: every request with the header reaches the canary,
    every other the stable. Then an abort sets the canary's weight to 0 first: its share of
    requests is 0 within 1 s of the decision, before any of its pods is removed; no request
    fails. The user's rules (another path, a filter, a third backend) stay as they were,
    field by field."""
    rollouts, name = real_rollouts, "abort"
    backends = [
        {"name": f"{name}-stable", "port": 80, "weight": 100},
        {"name": f"{name}-canary", "port": 80, "weight": 0},
    ]
    rules = [
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
            "filters": [
                {
                    "type": "RequestHeaderModifier",
                    "requestHeaderModifier": {"set": [{"name": "X-Via", "value": "gateway"}]},
                }
            ],
            "backendRefs": backends,
        },
        {
            "matches": [{"path": {"type": "PathPrefix", "value": "/legacy"}}],
            "backendRefs": [{"name": f"{name}-stable", "port": 80, "weight": 7}],
        },
    ]
    steps = [
        {
            "setHeaderRoute": {
                "name": "beta",
                "match": [{"headerName": "X-Beta", "headerValue": {"exact": "yes"}}],
            }
        },
        {"pause": {}},
        {"setWeight": 30},
        {"pause": {}},
    ]
    host, created = routed(real_gateway, rollouts, name, steps, rules)
    clock = PodClock(real_cluster.handle.client, rollouts.ns).start()
    traffic = GatewayTraffic(real_gateway, host, seconds=240).start()
    beta = GatewayTraffic(
        real_gateway, host, workers=2, seconds=240, headers={"X-Beta": "yes"}, rps=100
    )
    try:
        traffic.wait_count(traffic.mark(), 200, timeout=60)
        canary = release(rollouts, name, {"VERSION": "v2"})

        def header_route_at_weight_0() -> bool:
            route = real_gateway.read_route(rollouts.ns, name)
            mine = [r for r in route["spec"]["rules"] if r.get("name", "").startswith("ramp-")]
            return (
                acknowledged(rollouts, name, 1, 0)
                and len(mine) == 1
                and accepted(real_gateway, rollouts.ns, name)
            )

        wait_for("the header route accepted at weight 0", header_route_at_weight_0, timeout=120)
        time.sleep(2.0)  # the gateway's routers follow its status a moment later
        beta.start()
        plain = traffic.mark()
        beta_zero = beta.wait_count(beta.mark(), 500, timeout=60)
        zero = traffic.wait_count(plain, 1000, timeout=60)
        assert beta_zero == {("v2", 200): 500}, f"at weight 0 the header goes: {beta_zero}"
        assert zero == {("v1", 200): 1000}, f"at weight 0 the rest stays: {zero}"
        rollouts.request(name, "promote")
        wait_for(
            "weight 30 acknowledged",
            lambda: acknowledged(rollouts, name, 3, 30),
            timeout=120,
        )
        time.sleep(2.0)
        counts = traffic.wait_count(traffic.mark(), 1000, timeout=120)
        beta_counts = beta.wait_count(beta.mark(), 200, timeout=60)
        assert abs(share(counts, "v2") - 30) <= 3
        assert share(beta_counts, "v2") == 100.0, "the header route sends every match there"
        requested = time.monotonic()
        rollouts.request(name, "abort")
        decided = wait_for(
            "the abort decided",
            lambda: time.monotonic() if rollouts.status(name).get("phase") == "Aborted" else 0,
            timeout=30,
            interval=0.05,
        )
        wait_for(
            "the canary's pods gone",
            lambda: all(t.gone for t in clock.of(canary)),
            timeout=90,
        )
        after = traffic.mark()
        traffic.wait_count(after, 300, timeout=60)
    finally:
        traffic.stop()
        beta.stop()
        clock.stop()
    last = traffic.last("v2") or 0.0
    removed = min(t.deleting or t.gone or float("inf") for t in clock.of(canary))
    FIGURES.append(
        f"gateway header route at weight 0: {sum(beta_zero.values())} with the header, "
        f"{share(beta_zero, 'v2'):.1f}% to the canary; {sum(zero.values())} without, "
        f"{share(zero, 'v2'):.1f}% to the canary"
    )
    FIGURES.append(
        f"gateway abort: last canary answer {last - requested:+.2f}s after the request, "
        f"{last - decided:+.2f}s after the decision; first canary pod removed "
        f"{removed - requested:+.2f}s after the request; {len(traffic.log)} + "
        f"{len(beta.log)} requests, {len(traffic.failed()) + len(beta.failed())} failed"
    )
    assert last - decided <= 1.0, "the canary's share is 0 within 1 s of the decision"
    assert last < removed, "the canary's pods go only after its share is 0"
    assert not traffic.failed() and not beta.failed()
    assert share(traffic.since(after), "v2") == 0.0
    route = real_gateway.read_route(rollouts.ns, name)
    before = copy.deepcopy(created["spec"])
    assert route["spec"] == before, "the user's route is as it was, field by field"
    assert weights_of(route)[0] == {f"{name}-stable": 100, f"{name}-canary": 0}
