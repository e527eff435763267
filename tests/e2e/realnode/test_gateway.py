"""The real gateway of the tests (tests/cluster/gateway, fixture ``real_gateway``): Traefik in
the cluster's network namespace proxies real HTTP to real pods on the real node, split by an
HTTPRoute's weights exactly (its weighted round robin is deterministic), and follows a
change of the weights once it has acknowledged the route's new generation."""

from __future__ import annotations

import time
from typing import Any

import pytest
from gateway_e2e import GW_GROUP, GW_VERSION, GatewayTraffic, RealGateway, accepted, share
from ramp_e2e import Rollouts, wait_for
from realnode_e2e import FIGURES, RealCluster, container, service

from cluster import realnode

pytestmark = pytest.mark.realnode


def deployment(name: str, version: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name, "version": version}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"{name}-{version}"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [container({"VERSION": version})],
                    "nodeSelector": {realnode.NODE_LABEL: "true"},
                    "tolerations": [
                        {"key": realnode.NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                },
            },
        },
    }


def test_weighted_route_to_real_pods_through_the_gateway(
    real_cluster: RealCluster, real_gateway: RealGateway, real_rollouts: Rollouts
) -> None:
    ns, name = real_rollouts.ns, "gw"
    for version, replicas in (("v1", 2), ("v2", 1)):
        real_rollouts.apps.create_namespaced_deployment(ns, deployment(name, version, replicas))
        svc = service(name)
        svc["metadata"]["name"] = f"{name}-{version}"
        svc["spec"]["selector"] = {"app": name, "version": version}
        real_rollouts.core.create_namespaced_service(ns, svc)
    host = f"{name}.{ns}.test"
    backends = [
        {"name": f"{name}-v1", "port": 80, "weight": 90},  # 10 % to v2, then 40 % (60 / 40)
        {"name": f"{name}-v2", "port": 80, "weight": 10},
    ]
    real_gateway.create_route(ns, real_gateway.route(name, host, [{"backendRefs": backends}]))
    wait_for(
        "3 ready pods",
        lambda: (
            sum(
                d.status.ready_replicas or 0
                for d in real_rollouts.apps.list_namespaced_deployment(ns).items
            )
            == 3
        ),
        timeout=90,
    )
    wait_for("the route accepted", lambda: accepted(real_gateway, ns, name), timeout=60)

    def both_serve() -> bool:
        """Both versions answer, 40 requests in a row with 200 (the gateway has the
        endpoints of both Services)."""
        answers = [real_gateway.get(real_gateway.port, "/", host) for _ in range(40)]
        bodies = {b.strip() for _, b in answers}
        return bodies == {"v1", "v2"} and all(c == 200 for c, _ in answers)

    wait_for("both versions served through the gateway", both_serve, timeout=60)
    traffic = GatewayTraffic(real_gateway, host, seconds=120).start()
    try:
        counts = traffic.wait_count(traffic.mark(), 1000, timeout=90)
        first = share(counts, "v2")
        real_gateway.custom.patch_namespaced_custom_object(
            GW_GROUP,
            GW_VERSION,
            ns,
            "httproutes",
            name,
            [
                {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 60},
                {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 40},
            ],
            _content_type="application/json-patch+json",
        )
        changed = time.monotonic()
        wait_for("the new generation accepted", lambda: accepted(real_gateway, ns, name), 30)
        acked = time.monotonic()
        # Traefik reports the generation accepted when its provider read it; its routers
        # switch a moment later (measured 0.4-0.7 s here): measure after that
        time.sleep(2.0)
        counts = traffic.wait_count(traffic.mark(), 1000, timeout=90)
        second = share(counts, "v2")
    finally:
        traffic.stop()
    FIGURES.append(
        f"gateway alone: 10% -> {first:.1f}%, 40% -> {second:.1f}% over 1,000 requests each; "
        f"new weights accepted {acked - changed:.2f}s after the patch; "
        f"{len(traffic.log)} requests, {len(traffic.failed())} failed"
    )
    assert abs(first - 10) <= 1.5 and abs(second - 40) <= 1.5
    assert not traffic.failed(), f"{len(traffic.failed())} failed: {traffic.errors}"
