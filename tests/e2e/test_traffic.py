"""The error ratio a gate sees follows the split Ramp made (EndpointSlice-driven traffic).

A Service selects the Rollout's pods; :class:`~prometheus.traffic.ServiceTraffic` sends
requests over its ready endpoints, each pod answering with its revision's error ratio
(the pod annotation ``demo.ramp.dev/error-ratio``). With a 25 % bad canary at 2 of 10
ready pods, Prometheus must measure about 5 % overall and 25 % for the canary, and the
canary's analysis must then abort the rollout.
"""

from __future__ import annotations

import time
from typing import Any

from ramp_e2e import Rollouts, rollout_manifest, wait_for
from test_analysis import error_metric

from cluster.fixtures import ClusterHandle
from prometheus.fixtures import PrometheusServer
from prometheus.traffic import ERROR_ANNOTATION, ServiceTraffic

OVERALL = (
    'sum(rate(http_requests_total{{namespace="{ns}",rollout="{name}",code=~"5.."}}[4s]))'
    ' / sum(rate(http_requests_total{{namespace="{ns}",rollout="{name}"}}[4s]))'
)


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]},
    }


def test_measured_error_ratio_tracks_the_split_and_gates_the_canary(
    cluster: ClusterHandle, rollouts: Rollouts, prom: PrometheusServer
) -> None:
    ns, name = rollouts.ns, "shop"
    rollouts.core.create_namespaced_service(ns, service(name))
    steps = [
        {"setWeight": 20},
        {"pause": {"duration": "15s"}},
        {"analysis": {"metrics": [error_metric(prom.url, interval="1s", count=3)]}},
        {"setWeight": 100},
    ]
    manifest = rollout_manifest(name, replicas=10, steps=steps)
    manifest["spec"]["template"]["metadata"]["annotations"] = {ERROR_ANNOTATION: "0"}
    rollouts.create(manifest)
    rollouts.wait_healthy(name, 10)
    traffic = ServiceTraffic(cluster.client, prom.exporter, ns, name, name, rps=400).start()
    try:
        wait_for(
            "10 ready endpoints", lambda: traffic.current and traffic.expected_error_ratio() == 0
        )
        # A bad release: a quarter of its answers are errors.
        rollouts.patch(
            name, {"spec": {"template": {"metadata": {"annotations": {ERROR_ANNOTATION: "0.25"}}}}}
        )
        status = rollouts.wait(
            name,
            "2 of 10 ready pods on the canary",
            lambda s: (
                s.get("currentStepIndex") == 1 and (s.get("weights") or {}).get("actual") == 20
            ),
            timeout=30,
        )
        canary = status["canaryRevision"]
        wait_for("the split in the traffic", lambda: traffic.expected_error_ratio() == 0.05)
        query = OVERALL.format(ns=ns, name=name)
        seen: list[float] = []

        def settled() -> bool:
            values = [v for _, v in prom.query(query)]
            if values:
                seen.append(values[0])
            return len(seen) >= 3 and all(abs(v - 0.05) < 0.004 for v in seen[-3:])

        time.sleep(4)  # a whole rate window at the new split
        wait_for(
            "an overall error ratio of about 5 %", settled, timeout=12, describe=lambda: str(seen)
        )
        canary_only = [
            v
            for _, v in prom.query(
                f'sum(rate(http_requests_total{{namespace="{ns}",rollout="{name}",'
                f'revision="{canary}",code=~"5.."}}[4s])) / sum(rate(http_requests_total'
                f'{{namespace="{ns}",rollout="{name}",revision="{canary}"}}[4s]))'
            )
        ]
        assert canary_only and abs(canary_only[0] - 0.25) < 0.01, canary_only

        # The analysis of the canary then fails on what the split produced, and aborts.
        final = rollouts.wait_phase(name, "Aborted", timeout=60)
        assert "error-ratio" in (final.get("abortMessage") or final.get("message") or "")
        print(
            f"\ntraffic: weight 20 with a 25% bad canary -> measured overall "
            f"{seen[-1]:.2%} (expected 5.00%), canary {canary_only[0]:.2%}"
        )
    finally:
        traffic.stop()
