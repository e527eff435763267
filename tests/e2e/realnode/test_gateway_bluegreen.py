"""Blue-green through a Gateway API HTTPRoute on the real gateway: Traefik in the cluster's
network namespace proxies real requests to real pods of the demo app on the real node, and
Ramp switches by the route's weights (active Service 100, preview 0, flipped at once); the
preview is reached by a header route before the switch (docs/gateway-api.md).

The demo app answers ``GET /`` with its ``VERSION``: each answer says which revision served
it. Every answer of the traffic is counted; code 0 is a request that failed.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest
from gateway_e2e import GatewayTraffic, RealGateway, accepted, share, weights_of
from ramp_e2e import Rollouts, wait_for
from realnode_e2e import FIGURES, PodClock, RealCluster, RealPrometheus, demo_rollout, release
from realnode_e2e import service as demo_service

pytestmark = pytest.mark.realnode


def first_after(traffic: GatewayTraffic, since: float, body: str) -> float | None:
    return next((t for t, b, _ in traffic.log if t >= since and b == body), None)


def test_blue_green_switches_and_aborts_by_the_route_weights_no_request_failed(
    real_cluster: RealCluster,
    real_gateway: RealGateway,
    real_prometheus: RealPrometheus,
    real_rollouts: Rollouts,
) -> None:
    """Traffic runs through the gateway all along. Before the switch a request with the
    preview header reaches green, every other blue; the switch flips the route to 100 %
    green with no failed request; an abort during the post-promotion analysis flips it back
    to 100 % blue within 1 s of the decision, before any green pod is removed
    (``abortScaleDownDelaySeconds: 0``: green's pods wait only for the gateway's
    acknowledgement). The user's route is as it was at the end, field by field."""
    rollouts, name = real_rollouts, "bg"
    active, preview = name, f"{name}-preview"
    for svc in (active, preview):
        manifest = demo_service(name)
        manifest["metadata"]["name"] = svc
        rollouts.core.create_namespaced_service(rollouts.ns, manifest)
    host = f"{name}.{rollouts.ns}.test"
    backends = [
        {"name": active, "port": 80, "weight": 100},
        {"name": preview, "port": 80, "weight": 0},
    ]
    created = real_gateway.create_route(
        rollouts.ns, real_gateway.route(name, host, [{"backendRefs": backends}])
    )
    manifest = demo_rollout(name, 3, [], deadline=120)
    # a post-promotion analysis that passes and lasts (an abort comes while it runs)
    lasting: dict[str, Any] = {
        "name": "lasting",
        "interval": "2s",
        "count": 300,
        "successCondition": "result >= 0",
        "prometheus": {"address": real_prometheus.url, "query": "vector(1)"},
    }
    manifest["spec"]["strategy"] = {
        "blueGreen": {
            "activeService": active,
            "previewService": preview,
            "httpRoutes": [name],
            "previewHeaderRoute": [{"headerName": "X-Preview", "headerValue": {"exact": "yes"}}],
            "autoPromotionEnabled": False,
            "abortScaleDownDelaySeconds": 0,
            "postPromotionAnalysis": {"metrics": [lasting]},
        }
    }
    began = time.monotonic()
    rollouts.create(manifest)
    rollouts.wait_healthy(name, 3, timeout=120)
    clock = PodClock(real_cluster.handle.client, rollouts.ns).start()
    traffic = GatewayTraffic(real_gateway, host, seconds=150).start()
    header = GatewayTraffic(
        real_gateway, host, workers=2, seconds=150, headers={"X-Preview": "yes"}, rps=100
    ).start()
    try:
        traffic.wait_count(traffic.mark(), 200, timeout=60)
        green = release(rollouts, name, {"VERSION": "v2"})

        def header_route_accepted() -> bool:
            status = rollouts.status(name)
            route = real_gateway.read_route(rollouts.ns, name)
            mine = [r for r in route["spec"]["rules"] if r.get("name", "").startswith("ramp-")]
            return (
                status.get("phase") == "Paused"
                and len(mine) == 1
                and accepted(real_gateway, rollouts.ns, name)
            )

        wait_for("green waiting for promote, its header route accepted", header_route_accepted, 120)
        time.sleep(2.0)  # the gateway's routers follow its status a moment later
        with_header = header.wait_count(header.mark(), 300, timeout=60)
        plain = traffic.wait_count(traffic.mark(), 600, timeout=60)
        assert with_header == {("v2", 200): 300}, f"the preview header reaches green: {with_header}"
        assert plain == {("v1", 200): 600}, f"before the switch the rest stays on blue: {plain}"
        promoted = time.monotonic()
        rollouts.request(name, "promote")

        def switched() -> bool:
            status = rollouts.status(name)
            routes = status.get("routes") or [{}]
            return bool((status.get("blueGreen") or {}).get("switchedAt")) and all(
                r.get("acknowledged") == 100 for r in routes
            )

        wait_for("the switch acknowledged", switched, timeout=60, interval=0.1)
        acked = time.monotonic()
        flipped = first_after(traffic, promoted, "v2") or acked
        time.sleep(2.0)
        after_switch = traffic.wait_count(traffic.mark(), 1000, timeout=60)
        assert share(after_switch, "v2") == 100.0, f"after the switch: {after_switch}"
        assert weights_of(real_gateway.read_route(rollouts.ns, name))[0] == {
            active: 0,
            preview: 100,
        }
        aborting = time.monotonic()
        rollouts.request(name, "abort")
        decided = wait_for(
            "the abort decided",
            lambda: time.monotonic() if rollouts.status(name).get("phase") == "Aborted" else 0,
            timeout=30,
            interval=0.05,
        )
        wait_for(
            "green's pods deleted",
            lambda: bool(clock.of(green)) and all(t.deleting for t in clock.of(green)),
            timeout=60,
        )
        after = traffic.mark()
        back = traffic.wait_count(after, 300, timeout=60)
    finally:
        traffic.stop()
        header.stop()
        clock.stop()
    last_blue = max((t for t, b, _ in traffic.log if b == "v1" and t < aborting), default=0.0)
    last_green = max(traffic.last("v2") or 0.0, header.last("v2") or 0.0)
    removed = min(t.deleting or t.gone or float("inf") for t in clock.of(green))
    failed = traffic.failed() + header.failed()
    FIGURES.append(
        f"gateway blue-green: header route before the switch {share(with_header, 'v2'):.0f}% "
        f"of {sum(with_header.values())} to green, {share(plain, 'v2'):.0f}% of "
        f"{sum(plain.values())} others; switch: first green answer "
        f"{flipped - promoted:.2f}s after the promote, last blue one {last_blue - promoted:.2f}s, "
        f"acknowledged {acked - promoted:.2f}s, "
        f"then {share(after_switch, 'v2'):.1f}% of {sum(after_switch.values())} to green; "
        f"abort: last green answer {last_green - decided:+.2f}s after the decision, first "
        f"green pod deleted {removed - decided:+.2f}s after it; then "
        f"{share(back, 'v1'):.1f}% of {sum(back.values())} to blue; "
        f"{len(traffic.log) + len(header.log)} requests, {len(failed)} failed; "
        f"{time.monotonic() - began:.0f}s"
    )
    print(f"\nramp real node: {FIGURES[-1]}")
    assert not failed, f"{len(failed)} failed: {traffic.errors + header.errors}; when: " + when(
        traffic.failed(), header.failed(), began, promoted, acked, decided, removed
    )
    assert last_green - decided <= 1.0, "green's share is 0 within 1 s of the decision"
    assert last_green < removed, "green's pods go only after its share is 0"
    assert share(back, "v1") == 100.0
    route = real_gateway.read_route(rollouts.ns, name)
    assert route["spec"] == copy.deepcopy(created["spec"]), "the user's route, field by field"


def when(
    plain: list[tuple[float, str, int]], header: list[tuple[float, str, int]], *marks: float
) -> str:
    """Where the failed requests fell (diagnosis of a rare failure): the first and last of
    each kind, in seconds after the creation, the promote, the acknowledged switch, the
    abort's decision and green's first pod removal."""
    names = ("created", "promoted", "acked", "decided", "removed")

    def at(t: float) -> str:
        return ", ".join(f"{n}{t - m:+.2f}s" for n, m in zip(names, marks, strict=True))

    return "; ".join(
        f"{kind} {len(log)}: first ({at(log[0][0])}), last ({at(log[-1][0])})"
        for kind, log in (("plain", sorted(plain)), ("header", sorted(header)))
        if log
    )
