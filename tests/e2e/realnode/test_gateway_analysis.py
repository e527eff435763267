"""Analysis of the gateway's own traffic (issue 23): the real Prometheus scrapes Traefik's
metrics per service and response code, an AnalysisTemplate computes the canary Service's
error ratio from them, and real requests through the real gateway to real pods of the demo
app decide: a canary answering errors is aborted with the analysis's reason, a good one
completes (docs/gateway-api.md, "Analysis of the gateway's traffic").

Traefik names the service of a backendRef ``<namespace>-<Service>-http-<port>`` in its
Gateway API provider, ``@kubernetesgateway`` appended in its metrics.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from gateway_e2e import GatewayTraffic, RealGateway, routed
from ramp_e2e import Rollouts, wait_for
from realnode_e2e import FIGURES, RealCluster, RealPrometheus, release

pytestmark = pytest.mark.realnode

SERVICE = 'service="{{namespace}}-{{args.service}}-http-{{args.port}}@kubernetesgateway"'
ERROR_RATIO = (
    f'(sum(rate(traefik_service_requests_total{{{SERVICE},code=~"5.."}}[5s])) or vector(0))'
    f" / sum(rate(traefik_service_requests_total{{{SERVICE}}}[5s]))"
)
"""The share of 5xx answers the gateway got from the canary Service over 5 s. A service with
no 5xx series yet is 0 errors (``or vector(0)``); with no requests at all it is no data."""


def template(prometheus: str) -> dict[str, Any]:
    """The AnalysisTemplate of docs/gateway-api.md, with the test's Prometheus."""
    return {
        "apiVersion": "ramp.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "gateway-error-ratio"},
        "spec": {
            "args": [{"name": "service"}, {"name": "port", "value": "80"}],
            "metrics": [
                {
                    "name": "gateway-error-ratio",
                    "interval": "1s",
                    "count": 3,
                    # longer than the rate window and a scrape: the first measurement sees
                    # none of an earlier canary's requests (the Service's series stay)
                    "initialDelay": "6s",
                    "inconclusiveLimit": 8,
                    "successCondition": "result < 0.05",
                    "failureCondition": "result >= 0.2",
                    "prometheus": {"address": prometheus, "query": ERROR_RATIO},
                }
            ],
        },
    }


def test_gateway_metrics_abort_a_bad_canary_and_complete_a_good_one(
    real_cluster: RealCluster,
    real_gateway: RealGateway,
    real_prometheus: RealPrometheus,
    real_rollouts: Rollouts,
) -> None:
    """A canary at 20 % of the route whose pods answer half their requests with 500 is
    aborted by the analysis of the gateway's metrics (AnalysisFailed, naming the metric), its
    weight back to 0; the next version, answering no error, passes the same analysis and
    becomes stable. Every request goes through the real gateway and is counted."""
    rollouts, name = real_rollouts, "gwm"
    # the gateway's series name the route's namespace only inside their service label:
    # Prometheus writes it as the namespace label that Ramp scopes every query with
    real_prometheus.scrape(
        "traefik",
        f"127.0.0.1:{real_gateway.metrics_port}",
        [
            {
                "source_labels": ["service"],
                "regex": f"({rollouts.ns})-.+@kubernetesgateway",
                "target_label": "namespace",
            }
        ],
    )
    rollouts.custom.create_namespaced_custom_object(
        "ramp.dev", "v1alpha1", rollouts.ns, "analysistemplates", template(real_prometheus.url)
    )
    analysis = {
        "templates": [{"templateName": "gateway-error-ratio"}],
        "args": [{"name": "service", "value": f"{name}-canary"}],
    }
    steps = [{"setWeight": 20}, {"analysis": analysis}, {"setWeight": 100}]
    host, _ = routed(real_gateway, rollouts, name, steps, replicas=2)
    canary_service = f"{rollouts.ns}-{name}-canary-http-80@kubernetesgateway"
    traffic = GatewayTraffic(real_gateway, host, seconds=150, rps=100).start()
    try:
        traffic.wait_count(traffic.mark(), 100, timeout=60)
        wait_for(
            "Prometheus scraping the gateway",
            lambda: bool(real_prometheus.query('up{job="traefik"} == 1')),
            timeout=30,
        )
        bad_mark = traffic.mark()
        release(rollouts, name, {"VERSION": "v2", "ERROR_RATIO": "0.5"})
        status = rollouts.wait_phase(name, "Aborted", timeout=90)
        aborted = time.monotonic()
        bad = traffic.since(bad_mark)
        first_error = next((t for t, _, code in traffic.log[bad_mark:] if code == 500), aborted)
        routes = status.get("routes") or []
        # the gateway's own series of the canary Service saw the errors
        seen = real_prometheus.query(
            f'sum(max_over_time(traefik_service_requests_total{{service="{canary_service}",'
            f'code="500"}}[5m]))'
        )
        wait_for(
            "the canary's weight 0 acknowledged",
            lambda: all(
                r.get("acknowledged") == 0 for r in rollouts.status(name).get("routes") or [{}]
            ),
            timeout=30,
        )
        time.sleep(2.0)  # the gateway's routers follow its status a moment later
        good_mark = traffic.mark()
        v3 = release(rollouts, name, {"VERSION": "v3"})
        final = rollouts.wait(
            name,
            "v3 stable, Healthy",
            lambda s: s.get("phase") == "Healthy" and s.get("stableRevision") == v3,
            120,
        )
        good = traffic.since(good_mark)
    finally:
        traffic.stop()
    errors = sum(n for (_, code), n in bad.items() if code == 500)
    failed = [m for m in status.get("measurements") or [] if m.get("verdict") == "Fail"]
    ratio = [float(m["value"]) for m in failed if m.get("value") not in (None, "")]
    passed = [
        float(m["value"])
        for m in final.get("measurements") or []
        if m.get("verdict") == "Pass" and m.get("revision") == v3
    ]
    FIGURES.append(
        f"gateway-metrics analysis: bad canary (ERROR_RATIO 0.5, weight 20): "
        f"{sum(bad.values())} requests, {errors} answered 500, error ratio measured "
        f"{', '.join(f'{r:.3f}' for r in ratio) or '?'}; first 500 -> Aborted "
        f"{aborted - first_error:.1f}s; good canary: {sum(good.values())} requests, "
        f"error ratio measured {', '.join(f'{r:.3f}' for r in passed)}, promoted"
    )
    assert status["abortReason"] == "AnalysisFailed", status
    assert "gateway-error-ratio" in status["message"], status["message"]
    assert seen and seen[0][1] > 0, seen
    assert errors > 0 and ratio and all(r >= 0.2 for r in ratio), (errors, failed)
    assert all(r.get("desired") == 0 for r in routes), routes
    assert len(passed) == 3 and all(r < 0.05 for r in passed), final.get("measurements")
    assert set(good) <= {("v1", 200), ("v3", 200)}, good
    assert not [entry for entry in traffic.log if entry[2] == 0], traffic.errors
