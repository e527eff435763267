"""A real HorizontalPodAutoscaler on a Rollout, fed by the real Prometheus.

kube-controller-manager's HPA controller (evaluating every 2 s, see the launcher) scales
the Rollout through its scale subresource. Its metric is the External metric
``http_requests_per_second`` served by prometheus-adapter (built from its Go module,
tests/cluster/adapter) from Prometheus, which scrapes the exporter whose request rate the
test sets. With a target of 100 requests per second per replica (``AverageValue``), 300 rps
asks for 3 (the HPA's minimum 4 holds) and 750 rps for 8.

During a canary pause at weight 25 the HPA scales the Rollout 4 → 8 → 4: Ramp re-splits
at the same weight (1+3 → 2+6 → 1+3), nothing aborts, and the ready pods never drop below
the floor (maxUnavailable 0: the count that was asked for before each change).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from ramp_e2e import Rollouts, Sampling, rollout_manifest, wait_for

from cluster.fixtures import ClusterHandle
from prometheus.adapter import METRIC, MetricsAdapter, parse_quantity
from prometheus.fixtures import PrometheusServer
from ramp.core.split import split_replicas

TARGET_RPS_PER_REPLICA = 100
LOW_RPS = 300.0
HIGH_RPS = 750.0
WEIGHT = 25


@pytest.fixture(scope="module")
def adapter(
    cluster: ClusterHandle,
    prometheus: PrometheusServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MetricsAdapter]:
    """prometheus-adapter registered as external.metrics.k8s.io for this module only."""
    prometheus.start()
    adapter = MetricsAdapter(cluster, prometheus, tmp_path_factory.mktemp("adapter"))
    adapter.start()
    try:
        yield adapter
    finally:
        adapter.stop()


@dataclass
class Sample:
    at: float
    spec_replicas: int
    canary: int
    stable: int
    canary_ready: int
    stable_ready: int
    ready_pods: int
    phase: str
    aborted: str | None
    selector: str


class Sampler(Sampling[Sample]):
    """Every 0.25 s: the Rollout's spec.replicas and split, and its ready pods counted
    from the Pods themselves."""

    def __init__(self, rollouts: Rollouts, name: str) -> None:
        super().__init__()
        self.rollouts, self.name = rollouts, name

    def sample(self) -> Sample:
        obj = self.rollouts.get(self.name)
        ready = sum(self.rollouts.ready_pods(self.name).values())
        st = obj.get("status") or {}
        return Sample(
            time.monotonic(),
            int(obj["spec"]["replicas"]),
            int(st.get("canaryReplicas") or 0),
            int(st.get("stableReplicas") or 0),
            int(st.get("canaryReadyReplicas") or 0),
            int(st.get("stableReadyReplicas") or 0),
            ready,
            str(st.get("phase")),
            st.get("abortedRevision"),
            str(st.get("selector")),
        )

    def first(self, since: float, pred: Any) -> Sample | None:
        return next((s for s in self.samples if s.at >= since and pred(s)), None)


def hpa_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "ramp.dev/v1alpha1", "kind": "Rollout", "name": name},
            "minReplicas": 4,
            "maxReplicas": 8,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {
                            "name": METRIC,
                            "selector": {"matchLabels": {"rollout": name}},
                        },
                        "target": {
                            "type": "AverageValue",
                            "averageValue": str(TARGET_RPS_PER_REPLICA),
                        },
                    },
                }
            ],
            # react at once in both directions (the defaults wait 300 s before a scale-down)
            "behavior": {
                "scaleUp": {"stabilizationWindowSeconds": 0},
                "scaleDown": {"stabilizationWindowSeconds": 0},
            },
        },
    }


def split_reached(replicas: int) -> Any:
    want = split_replicas(replicas, WEIGHT)

    def pred(s: Sample) -> bool:
        return (
            s.spec_replicas == replicas
            and (s.canary, s.stable) == (want.canary, want.stable)
            and (s.canary_ready, s.stable_ready) == (want.canary, want.stable)
        )

    return pred


def hpa_status(cluster: ClusterHandle, namespace: str, name: str) -> dict[str, Any]:
    out = cluster.kubectl("get", "hpa", name, "-o", "json", namespace=namespace).stdout
    status: dict[str, Any] = json.loads(out).get("status") or {}
    return status


def hpa_metric(cluster: ClusterHandle, namespace: str, name: str) -> float | None:
    """The External metric's current average value as the HPA reports it."""
    for m in hpa_status(cluster, namespace, name).get("currentMetrics") or []:
        current = (m.get("external") or {}).get("current") or {}
        if "averageValue" in current:
            return parse_quantity(current["averageValue"])
    return None


def hpa_table(cluster: ClusterHandle, namespace: str, name: str, replicas: int) -> str | None:
    """``kubectl get hpa NAME`` once its TARGETS column shows a value over the target of
    100 per replica (e.g. ``750/100 (avg)``) and its REPLICAS column ``replicas``."""
    table = cluster.kubectl("get", "hpa", name, namespace=namespace).stdout
    row = table.strip().splitlines()[-1]
    targets = re.search(r"\s(\d+(\.\d+)?[mk]?)/100 \(avg\)\s", row)
    columns = row.split()
    if "<unknown>" in row or targets is None or columns[-2] != str(replicas):
        return None
    return table


def test_hpa_scales_a_paused_canary_and_the_split_follows(
    cluster: ClusterHandle,
    rollouts: Rollouts,
    prom: PrometheusServer,
    adapter: MetricsAdapter,
) -> None:
    name, ns = "web", rollouts.ns
    steps: list[dict[str, Any]] = [{"setWeight": WEIGHT}, {"pause": {}}]
    rollouts.create(rollout_manifest(name, replicas=4, steps=steps))
    rollouts.wait_healthy(name, 4)
    stable = rollouts.status(name)["stableRevision"]
    prom.exporter.set_rate(ns, name, stable, LOW_RPS, 0.0)

    rollouts.set_image(name, "ramp-test/app:v2")
    paused = rollouts.wait(
        name,
        "paused at weight 25 with 1 + 3 ready",
        lambda s: (
            s.get("phase") == "Paused"
            and (s.get("canaryReadyReplicas"), s.get("stableReadyReplicas")) == (1, 3)
        ),
    )
    # status.selector (the scale subresource's labelSelectorPath) selects what serves:
    # both revisions' pods, so the HPA counts 4 and not only the canary's 1
    scale = rollouts.custom.get_namespaced_custom_object_scale(
        "ramp.dev", "v1alpha1", ns, "rollouts", name
    )
    assert (scale["spec"]["replicas"], scale["status"]["replicas"]) == (4, 4), scale
    selector = scale["status"]["selector"]
    selected = rollouts.core.list_namespaced_pod(ns, label_selector=selector).items
    revisions = {p.metadata.labels["ramp.dev/revision"] for p in selected}
    assert len(selected) == 4 and revisions == {stable, paused["canaryRevision"]}, selector

    # the metric flows Prometheus → adapter → kube-apiserver's aggregation layer
    wait_for(
        "the adapter to serve the request rate",
        lambda: (v := adapter.value(ns, f"rollout={name}")) is not None and v > LOW_RPS * 0.9,
        timeout=30,
    )
    cluster.kubectl("apply", "-f", "-", input=json.dumps(hpa_manifest(name)), namespace=ns)
    wait_for(
        "the HPA to read the metric",
        lambda: (v := hpa_metric(cluster, ns, name)) is not None and v > 0,
        timeout=30,
        describe=lambda: json.dumps(hpa_status(cluster, ns, name)),
    )
    assert rollouts.get(name)["spec"]["replicas"] == 4  # 300 rps asks for 3: min 4 holds

    with Sampler(rollouts, name) as sampler:
        raised = time.monotonic()
        prom.exporter.set_rate(ns, name, stable, HIGH_RPS, 0.0)
        wait_for(
            "the HPA to scale to 8 and Ramp to split 2 + 6",
            lambda: sampler.first(raised, split_reached(8)),
            timeout=60,
            describe=lambda: json.dumps(hpa_status(cluster, ns, name)),
        )
        # `kubectl get hpa` shows the current metric (not <unknown>) and the 8 replicas
        table = wait_for(
            "`kubectl get hpa` to show the metric and 8 replicas",
            lambda: hpa_table(cluster, ns, name, replicas=8),
            timeout=10,
            describe=lambda: cluster.kubectl("get", "hpa", name, namespace=ns).stdout,
        )
        print(f"\n{table}")

        lowered = time.monotonic()
        prom.exporter.set_rate(ns, name, stable, LOW_RPS, 0.0)
        wait_for(
            "the HPA to scale back to 4 and Ramp to split 1 + 3",
            lambda: sampler.first(lowered, split_reached(4)),
            timeout=60,
            describe=lambda: json.dumps(hpa_status(cluster, ns, name)),
        )
        time.sleep(1.0)  # a few samples at the new count

    samples = sampler.samples
    up_spec = sampler.first(raised, lambda s: s.spec_replicas == 8)
    up_split = sampler.first(raised, split_reached(8))
    down_spec = sampler.first(lowered, lambda s: s.spec_replicas == 4)
    down_split = sampler.first(lowered, split_reached(4))
    assert up_spec and up_split and down_spec and down_split

    # no abort, the canary held at its pause the whole time
    assert all(s.aborted is None for s in samples), [s for s in samples if s.aborted]
    assert {s.phase for s in samples} <= {"Paused", "Progressing"}, {s.phase for s in samples}
    assert rollouts.status(name).get("phase") == "Paused"
    # the canary share is kept at every count the Rollout was split at
    for s in samples:
        if s.canary + s.stable == s.spec_replicas:
            want = split_replicas(s.spec_replicas, WEIGHT)
            assert (s.canary, s.stable) == (want.canary, want.stable), s
    # no floor breach: 4 ready throughout, 8 from the scaled-up split until the metric fell
    assert min(s.ready_pods for s in samples) >= 4, min(s.ready_pods for s in samples)
    held = [s.ready_pods for s in samples if up_split.at <= s.at < lowered]
    assert held and min(held) >= 8, held
    table = wait_for(
        "`kubectl get hpa` to show the metric and 4 replicas",
        lambda: hpa_table(cluster, ns, name, replicas=4),
        timeout=10,
        describe=lambda: cluster.kubectl("get", "hpa", name, namespace=ns).stdout,
    )
    print(f"\n{table}")
    counts = [s.spec_replicas for s in samples]
    steps_seen = [c for i, c in enumerate(counts) if i == 0 or c != counts[i - 1]]

    print(
        f"\nHPA reaction (metric change → new split ready, sync period 2 s, rate window 4 s):"
        f" up {up_spec.at - raised:.1f}s to spec 8, {up_split.at - raised:.1f}s to 2+6 ready;"
        f" down {down_spec.at - lowered:.1f}s to spec 4, {down_split.at - lowered:.1f}s to 1+3;"
        f" spec.replicas went {' → '.join(map(str, steps_seen))};"
        f" adapter Available {adapter.startup_seconds or 0:.1f}s after start"
    )
