"""A blue-green rollback in the warm window, through a Gateway API HTTPRoute on the real
gateway (issue 23): the requests move back to blue by the route's weights, acknowledged by
the gateway, not by the active Service's selector alone.

After the release completed the route's weights are on the active Service (100 / 0), which
selects green; blue stays warm (``scaleDownDelaySeconds``). A ``rollback`` pins the preview
Service to blue and writes 0 / 100; once the gateway acknowledged it the active Service
moves back to blue and the weights come back to it (100 / 0): two writes of the route.
Green's pods go only after that (``abortScaleDownDelaySeconds: 0``: nothing else holds
them). Every answer through the gateway is counted: no failed request, green's last answer
before its first pod is deleted, then 100 % blue.
"""

from __future__ import annotations

import time

import pytest
from gateway_e2e import GatewayTraffic, RealGateway, accepted, share, waiting, weights_of
from ramp_e2e import Rollouts, wait_for
from realnode_e2e import FIGURES, PodClock, RealCluster, demo_rollout, release
from realnode_e2e import service as demo_service
from test_gateway_gitops import RouteWrites

pytestmark = pytest.mark.realnode


def test_blue_green_rollback_in_the_warm_window_no_request_failed(
    real_cluster: RealCluster, real_gateway: RealGateway, real_rollouts: Rollouts
) -> None:
    rollouts, name = real_rollouts, "bgundo"
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
    real_gateway.create_route(
        rollouts.ns, real_gateway.route(name, host, [{"backendRefs": backends}])
    )
    manifest = demo_rollout(name, 2, [], deadline=120)
    manifest["spec"]["strategy"] = {
        "blueGreen": {
            "activeService": active,
            "previewService": preview,
            "httpRoutes": [name],
            "scaleDownDelaySeconds": 120,
            "abortScaleDownDelaySeconds": 0,
        }
    }
    began = time.monotonic()
    rollouts.create(manifest)
    rollouts.wait_healthy(name, 2, timeout=120)

    def served() -> bool:
        """20 answers 200 in a row (the pods reach Traefik's EndpointSlice watch a moment
        after the Rollout is Healthy)."""
        return accepted(real_gateway, rollouts.ns, name) and all(
            real_gateway.get(real_gateway.port, "/", host)[0] == 200 for _ in range(20)
        )

    wait_for("the gateway serving blue", waiting(served), timeout=60)
    traffic = GatewayTraffic(real_gateway, host, seconds=120).start()
    writes = RouteWrites(real_gateway, rollouts.ns, name).start()
    clock = PodClock(real_cluster.handle.client, rollouts.ns).start()
    try:
        traffic.wait_count(traffic.mark(), 200, timeout=60)
        green = release(rollouts, name, {"VERSION": "v2"})

        def completed() -> bool:
            status = rollouts.status(name)
            return (
                status.get("phase") == "Healthy"
                and status.get("stableRevision") == green
                and [r.get("acknowledged") for r in status.get("routes") or []] == [0]
                and accepted(real_gateway, rollouts.ns, name)
            )

        wait_for("green completed, the weights back on the active Service", completed, 120)
        time.sleep(2.0)
        on_green = traffic.wait_count(traffic.mark(), 500, timeout=60)
        generation = real_gateway.read_route(rollouts.ns, name)["metadata"]["generation"]
        rolling = time.monotonic()
        rollouts.request(name, "rollback")
        decided = wait_for(
            "the rollback decided",
            lambda: time.monotonic() if rollouts.status(name).get("phase") == "Aborted" else 0,
            timeout=30,
            interval=0.05,
        )
        wait_for(
            "green's pods deleted",
            lambda: bool(clock.of(green)) and all(t.deleting for t in clock.of(green)),
            timeout=60,
        )
        back = traffic.wait_count(traffic.mark(), 500, timeout=60)
        route = real_gateway.read_route(rollouts.ns, name)
    finally:
        traffic.stop()
        clock.stop()
        writes.stop()
    first_blue = next((t for t, b, _ in traffic.log if t >= rolling and b == "v1"), None)
    last_green = traffic.last("v2") or 0.0
    removed = min(t.deleting or t.gone or float("inf") for t in clock.of(green))
    failed = traffic.failed()
    FIGURES.append(
        f"gateway blue-green rollback in the warm window (by the route's weights): "
        f"{route['metadata']['generation'] - generation} writes of the route, first blue "
        f"answer {(first_blue or rolling) - decided:+.2f}s, last green answer "
        f"{last_green - decided:+.2f}s after the decision, first green pod deleted "
        f"{removed - decided:+.2f}s after it; {share(back, 'v1'):.1f}% of "
        f"{sum(back.values())} to blue then; {len(traffic.log)} requests, {len(failed)} failed; "
        f"{time.monotonic() - began:.0f}s"
    )
    print(f"\nramp real node: {FIGURES[-1]}")
    assert share(on_green, "v2") == 100.0, on_green
    assert not failed, f"{len(failed)} failed: {traffic.errors}"
    assert last_green < removed, "green's pods go only after the gateway stopped sending to it"
    assert share(back, "v1") == 100.0, back
    rolled = [(g, w[0]) for t, g, _, w in writes.seen if g > generation]
    assert rolled == [
        (generation + 1, {active: 0, preview: 100}),  # the preview Service selects blue
        (generation + 2, {active: 100, preview: 0}),  # then the active Service does
    ], rolled
    assert route["metadata"]["generation"] == generation + 2
    assert weights_of(route)[0] == {active: 100, preview: 0}, "back on the active Service"
