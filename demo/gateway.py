"""``make demo GATEWAY=1``: the demo's canary through a Gateway API HTTPRoute, served by a
real gateway (docs/gateway-api.md).

On the real node (``--real-node`` is implied): Traefik (tests/cluster/gateway, ``make
gateway-build``) runs in the cluster's network namespace as the controller of the Gateway
``ramp-gateway/web``; the Rollout ``checkout`` (3 replicas) names the Services
``checkout-stable`` / ``checkout-canary`` and the HTTPRoute ``checkout``, whose weights carry
the steps' weights exactly (5 % of 3 pods is one pod, 33 %: the route gives 5 %). Real
requests go through the gateway; every answer says which version served it, and the demo
prints the share each version got at each weight the gateway acknowledged. The analysis
reads the gateway's own metrics (Traefik's ``traefik_service_requests_total`` per service
and code, scraped by the real Prometheus).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for folder in ("tests", "tests/e2e", "tests/e2e/realnode"):
    if str(REPO / folder) not in sys.path:
        sys.path.insert(0, str(REPO / folder))

from gateway_e2e import GatewayTraffic, RealGateway, share  # noqa: E402

REPLICAS = 3
RPS = 100.0
STEPS: list[dict[str, Any]] = [
    {"setWeight": 5},
    {"pause": {"duration": "8s"}},
    {"setWeight": 20},
    {"analysis": {"templates": [{"templateName": "error-rate"}]}},
    {"setWeight": 50},
    {"pause": {"duration": "8s"}},
    {"setWeight": 100},
]
SETTLE = 2.0
"""Seconds after the gateway acknowledged a weight before its answers are counted (its
routers follow its status 0.4-0.7 s later)."""
SAMPLE = 300
"""Answers counted at each acknowledged weight."""


def query(service: str) -> str:
    """The canary Service's error ratio over 5 s, from the gateway's metrics."""
    selector = f'service="{{{{namespace}}}}-{service}-http-80@kubernetesgateway"'
    return (
        f'(sum(rate(traefik_service_requests_total{{{selector},code=~"5.."}}[5s])) '
        f"or vector(0)) / sum(rate(traefik_service_requests_total{{{selector}}}[5s]))"
    )


class DemoGateway:
    """The gateway of the demo, its route and the traffic through it."""

    def __init__(self, real: Any, workdir: Path, namespace: str, name: str) -> None:
        self.real, self.ns, self.name = real, namespace, name
        self.gateway = RealGateway(real, workdir)
        self.host = f"{name}.{namespace}.demo"
        self.traffic: GatewayTraffic | None = None
        self.acked: tuple[str, int] | None = None
        """(revision, weight) last acknowledged, seen at ``since``; its answers are counted
        from index ``mark`` of the traffic's log (-1: counted)."""
        self.since = 0.0
        self.mark: int | None = None
        self.shares: dict[str, list[str]] = {}
        """Per release label: what its canary got at each weight, in words."""

    def start(self, prometheus: Any) -> str:
        """Start Traefik and have Prometheus scrape it; a line saying where it listens."""
        self.gateway.start()
        # the series name the route's namespace only in their service label: Prometheus
        # writes it as the namespace label that Ramp scopes every query with
        prometheus.scrape(
            "traefik",
            f"127.0.0.1:{self.gateway.metrics_port}",
            [
                {
                    "source_labels": ["service"],
                    "regex": f"({self.ns})-.+@kubernetesgateway",
                    "target_label": "namespace",
                }
            ],
        )
        return (
            f"gateway: Traefik on 127.0.0.1:{self.gateway.port} in the cluster's network "
            f"namespace (Gateway ramp-gateway/web), its metrics scraped by Prometheus"
        )

    def objects(self, service: Callable[[str], dict[str, Any]]) -> list[dict[str, Any]]:
        """The stable and canary Services and the user's HTTPRoute (all on the stable)."""
        found = []
        for role in ("stable", "canary"):
            manifest = service(self.name)
            manifest["metadata"]["name"] = f"{self.name}-{role}"
            found.append(manifest)
        backends = [
            {"name": f"{self.name}-stable", "port": 80, "weight": 100},
            {"name": f"{self.name}-canary", "port": 80, "weight": 0},
        ]
        found.append(self.gateway.route(self.name, self.host, [{"backendRefs": backends}]))
        return found

    def template(self, prometheus_url: str) -> dict[str, Any]:
        return {
            "apiVersion": "ramp.dev/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "error-rate"},
            "spec": {
                "metrics": [
                    {
                        "name": "gateway-error-ratio",
                        "interval": "1s",
                        "count": 3,
                        "initialDelay": "6s",  # longer than the rate window and a scrape
                        "inconclusiveLimit": 8,
                        # no inconclusive band: v2's 0.4 % of 20 requests a second is
                        # sometimes one error in a 5 s window (1 %)
                        "successCondition": "result < 0.05",
                        "failureCondition": "result >= 0.05",
                        "prometheus": {
                            "address": prometheus_url,
                            "query": query(f"{self.name}-canary"),
                        },
                    }
                ]
            },
        }

    def shape(self, manifest: dict[str, Any]) -> dict[str, Any]:
        """The demo's Rollout, through the route: 3 replicas, finer steps than its pods."""
        manifest["spec"]["replicas"] = REPLICAS
        manifest["spec"]["strategy"]["canary"] = {
            "stableService": f"{self.name}-stable",
            "canaryService": f"{self.name}-canary",
            "httpRoutes": [self.name],
            "steps": STEPS,
        }
        return manifest

    def start_traffic(self) -> str:
        self.traffic = GatewayTraffic(
            self.gateway, self.host, seconds=1800, limit=500_000, rps=RPS
        ).start()
        return (
            f"traffic: {RPS:.0f} real requests/s through the gateway (Host {self.host}); "
            "each answer names the version that served it"
        )

    def observe(self, label: str, status: dict[str, Any], now: float) -> str | None:
        """Count what the gateway's users got at each weight it acknowledged; a line to
        print once a weight's answers are counted."""
        if self.traffic is None:
            return None
        routes = status.get("routes") or []
        revision = str(status.get("canaryRevision") or "")
        if routes and revision and all(r.get("acknowledged") == r.get("desired") for r in routes):
            acked = (revision, int(routes[0].get("acknowledged") or 0))
            if acked != self.acked:
                self.acked, self.since, self.mark = acked, now, None
        if self.acked is None or self.mark == -1:
            return None
        log = self.traffic.log
        start = self.mark or 0
        while start < len(log) and log[start][0] < self.since + SETTLE:
            start += 1  # the first answer after the gateway's routers followed
        self.mark = start
        if len(log) - start < SAMPLE:
            return None
        counts = self.traffic.since(start, start + SAMPLE)
        self.mark = -1  # counted
        weight = self.acked[1]
        got = share(counts, label)
        failed = sum(n for (_, code), n in counts.items() if code != 200)
        said = f"{weight}% -> {got:.1f}%"
        self.shares.setdefault(label, []).append(said)
        return (
            f"through the gateway at weight {weight} (acknowledged): {label} answered "
            f"{got:.1f}% of {SAMPLE} requests, {failed} not 200"
        )

    def summary(self) -> list[str]:
        lines = [
            f"{label} through the gateway (route weight -> share of requests, "
            f"{REPLICAS} replicas): {', '.join(said)}"
            for label, said in self.shares.items()
        ]
        if self.traffic is not None:
            log = self.traffic.log
            failed = sum(1 for _, _, code in log if code == 0)
            errors = sum(1 for _, _, code in log if code >= 500)
            lines.append(
                f"gateway traffic: {len(log)} requests, {errors} answered 5xx (the versions' "
                f"own errors), {failed} failed (no answer)"
            )
        return lines

    def stop(self) -> None:
        if self.traffic is not None:
            self.traffic.stop()
        self.gateway.stop()
