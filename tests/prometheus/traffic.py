"""Traffic that follows the real split: what kube-proxy would send to a Service's pods.

The demo's and the tests' pods are simulated by kwok: they are scheduled, get an IP and
become Ready (so the EndpointSlice controller lists them as ready endpoints of a Service),
but nothing in them answers. :class:`ServiceTraffic` stands in for the clients and the
pods: a few times a second it reads the Service's EndpointSlices, spreads ``rps`` requests
evenly over the **ready endpoints** (kube-proxy's random choice, without its noise), and
lets each endpoint's pod answer with the error behaviour of its revision — the pod
annotation ``demo.ramp.dev/error-ratio`` (0 when absent), set in the Rollout's pod
template like any other application setting. The requests are counted per revision by the
:class:`~prometheus.exporter.Exporter` (``http_requests_total{namespace, rollout,
revision, code}``), which Prometheus scrapes.

So the error ratio a gate sees is not configured anywhere: it emerges from the split Ramp
actually made. With a 25 % bad canary at 2 of 10 ready pods, the Service's overall error
ratio is 0.2 * 0.25 = 5 %, and the canary's own is 25 %.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from kubernetes import client

from prometheus.exporter import Exporter

ERROR_ANNOTATION = "demo.ramp.dev/error-ratio"
REVISION_LABEL = "ramp.dev/revision"
SERVICE_LABEL = "kubernetes.io/service-name"


@dataclass(frozen=True)
class Share:
    """The traffic of one revision: its ready endpoints and its pods' error ratio."""

    endpoints: int
    error_ratio: float


def split(slices: list[Any], pods: dict[str, Any]) -> dict[str, Share]:
    """Ready endpoints per revision, and the mean error ratio of their pods (pure).

    ``slices`` are EndpointSlices (client models), ``pods`` the Pods by name. An endpoint
    is ready unless its ``ready`` condition is false (the API's own rule); an address listed
    by two slices counts once.
    """
    seen: set[str] = set()
    counts: dict[str, list[float]] = {}
    for endpoint_slice in slices:
        for endpoint in endpoint_slice.endpoints or []:
            conditions = endpoint.conditions
            if conditions is not None and conditions.ready is False:
                continue
            ref = endpoint.target_ref
            if ref is None or ref.kind != "Pod" or ref.name in seen:
                continue
            seen.add(ref.name)
            pod = pods.get(ref.name)
            if pod is None:
                continue
            labels = pod.metadata.labels or {}
            annotations = pod.metadata.annotations or {}
            try:
                ratio = min(1.0, max(0.0, float(annotations.get(ERROR_ANNOTATION, "0"))))
            except ValueError:
                ratio = 0.0
            counts.setdefault(labels.get(REVISION_LABEL, ""), []).append(ratio)
    return {rev: Share(len(r), sum(r) / len(r)) for rev, r in counts.items() if rev}


class ServiceTraffic:
    """``rps`` requests a second to a Service, over its ready endpoints, into ``exporter``."""

    def __init__(
        self,
        api_client: Any,
        exporter: Exporter,
        namespace: str,
        service: str,
        rollout: str,
        rps: float = 200.0,
        interval: float = 0.25,
    ) -> None:
        self.discovery = client.DiscoveryV1Api(api_client)
        self.core = client.CoreV1Api(api_client)
        self.exporter = exporter
        self.namespace, self.service, self.rollout = namespace, service, rollout
        self.rps, self.interval = rps, interval
        self.current: dict[str, Share] = {}
        self.error: str | None = None
        self._known: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"traffic-{service}", daemon=True)

    def start(self) -> ServiceTraffic:
        self.tick()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for revision in self._known:
            self.exporter.set_rate(self.namespace, self.rollout, revision, 0, 0)

    def expected_error_ratio(self) -> float | None:
        """The Service's overall error ratio for the split now (None: no ready endpoint)."""
        total = sum(s.endpoints for s in self.current.values())
        if not total:
            return None
        return sum(s.endpoints * s.error_ratio for s in self.current.values()) / total

    def tick(self) -> None:
        slices = self.discovery.list_namespaced_endpoint_slice(
            self.namespace, label_selector=f"{SERVICE_LABEL}={self.service}"
        ).items
        pods = {p.metadata.name: p for p in self.core.list_namespaced_pod(self.namespace).items}
        shares = split(slices, pods)
        total = sum(s.endpoints for s in shares.values())
        for revision in self._known - set(shares):
            self.exporter.set_rate(self.namespace, self.rollout, revision, 0, 0)
        for revision, share in shares.items():
            rps = self.rps * share.endpoints / total
            self.exporter.set_rate(self.namespace, self.rollout, revision, rps, share.error_ratio)
        self._known |= set(shares)
        self.current = shares

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.tick()
                self.error = None
            except Exception as exc:  # the API server restarting, say: keep the last split
                self.error = str(exc)
