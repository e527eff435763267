"""Canaries on the real node: real containers, real readiness probes, real requests, the real
Prometheus scraping the real pods every second (docs/real-node.md).

The demo app (tests/cluster/node/demoapp) answers ``GET /`` with the error ratio of its
``ERROR_RATIO`` and serves ``http_requests_total{code}``; Prometheus adds the pod's
namespace, rollout (``app`` label) and revision. Traffic goes from the cluster's network
namespace to the pod IPs of the Service's ready endpoints, as kube-proxy would send it.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from ramp_e2e import Rollouts, condition, wait_for
from realnode_e2e import (
    FIGURES,
    PodClock,
    ReadySampler,
    RealCluster,
    RealPrometheus,
    Traffic,
    demo_rollout,
    release,
    service,
    stats,
)

pytestmark = pytest.mark.realnode

ERROR_RATIO = (
    '(sum(rate(http_requests_total{namespace="{{namespace}}",rollout="{{rollout}}",'
    'revision="{{canaryRevision}}",code=~"5.."}[4s])) or vector(0)) / '
    'sum(rate(http_requests_total{namespace="{{namespace}}",rollout="{{rollout}}",'
    'revision="{{canaryRevision}}"}[4s]))'
)
"""The canary's share of 5xx answers. A real app has no 5xx series until its first error:
``or vector(0)`` makes a clean canary 0 instead of no data (inconclusive); with no requests
at all the ratio is still no data."""


def error_gate(url: str) -> dict[str, Any]:
    return {
        "name": "error-ratio",
        "interval": "1s",
        "count": 3,
        # the canary's first requests reach Prometheus 2-4 s after it is Ready (endpoint
        # refresh, discovery, two 1 s scrapes for a rate); a loaded machine adds more
        "initialDelay": "6s",
        "inconclusiveLimit": 5,
        "successCondition": "result < 0.05",
        "failureCondition": "result >= 0.2",
        "prometheus": {"address": url, "query": ERROR_RATIO},
    }


def serve(real: RealCluster, rollouts: Rollouts, name: str, rps: float) -> Traffic:
    rollouts.core.create_namespaced_service(rollouts.ns, service(name))
    return Traffic(real.pool, real.handle.client, rollouts.ns, name, rps=rps).start()


def test_canary_failing_its_readiness_probe_aborts_at_the_deadline_stable_serves(
    real_cluster: RealCluster, real_rollouts: Rollouts
) -> None:
    rollouts = real_rollouts
    clock = PodClock(real_cluster.handle.client, rollouts.ns).start()
    steps = [{"setWeight": 25}, {"pause": {"duration": "60s"}}, {"setWeight": 100}]
    manifest = demo_rollout("probe", 4, steps, deadline=8, maxSurge=1, maxUnavailable=0)
    rollouts.create(manifest)
    stable = rollouts.wait_healthy("probe", 4, timeout=90)["stableRevision"]
    traffic = serve(real_cluster, rollouts, "probe", rps=30)
    wait_for("4 ready endpoints", lambda: len(traffic.endpoints()) == 4, timeout=30)
    sampler = ReadySampler(rollouts, "probe").start()
    try:
        canary = release(rollouts, "probe", {"VERSION": "v2", "READY_FAIL": "true"})
        wait_for(
            "the canary's pod running, its readiness probe failing",
            lambda: any(t.revision == canary for t in clock.pods.values()),
            timeout=30,
        )
        status = rollouts.wait("probe", "Aborted", lambda s: s.get("phase") == "Aborted", 90)
        wait_for("the canary scaled to 0", lambda: not clock_live(clock, canary), timeout=60)
        time.sleep(1)  # a little more traffic after the abort
    finally:
        sampler.stop()
        traffic.stop()
        clock.stop()
    assert status["abortReason"] == "ProgressDeadlineExceeded", status
    assert condition(status, "Aborted")["status"] == "True"
    assert all(t.ready is None for t in clock.of(canary)), "the failing canary became Ready"
    # the stable kept serving: never under its 4 ready pods, every request answered 200
    assert sampler.samples and sampler.minimum(stable) == 4, sampler.samples
    assert traffic.by_revision(canary) == {}, "a never-ready pod got traffic"
    assert set(traffic.by_revision(stable)) == {200}, traffic.counts
    assert traffic.by_revision(stable)[200] >= 30
    started = [t.ready - t.seen for t in clock.of(stable) if t.ready is not None]
    FIGURES.append(f"real pod start -> Ready (stable of 'probe'): {stats(started)}")
    FIGURES.append(
        f"readiness-probe canary: {len(sampler.samples)} samples, stable ready min "
        f"{sampler.minimum(stable)}/4; {traffic.by_revision(stable)[200]} requests, all 200"
    )


def clock_live(clock: PodClock, revision: str) -> bool:
    return any(t.gone is None for t in clock.of(revision))


def test_canary_answering_real_errors_aborts_on_real_metrics_a_good_one_completes(
    real_cluster: RealCluster, real_rollouts: Rollouts, real_prometheus: RealPrometheus
) -> None:
    rollouts = real_rollouts
    clock = PodClock(real_cluster.handle.client, rollouts.ns).start()
    steps = [
        {"setWeight": 25},
        {"analysis": {"metrics": [error_gate(real_prometheus.url)]}},
        {"setWeight": 100},
    ]
    rollouts.create(demo_rollout("web", 4, steps, maxSurge=1, maxUnavailable=0))
    v1 = rollouts.wait_healthy("web", 4, timeout=90)["stableRevision"]
    traffic = serve(real_cluster, rollouts, "web", rps=40)
    wait_for("4 ready endpoints", lambda: len(traffic.endpoints()) == 4, timeout=30)
    wait_for(
        "Prometheus scraping the 4 real pods",
        lambda: len(real_prometheus.query(f'up{{namespace="{rollouts.ns}"}} == 1')) == 4,
        timeout=60,
    )
    sampler = ReadySampler(rollouts, "web").start()
    try:
        # a bad version: half of its real answers are errors
        v2 = release(rollouts, "web", {"VERSION": "v2", "ERROR_RATIO": "0.5"})
        errors = f'sum(rate(http_requests_total{{revision="{v2}",code=~"5.."}}[4s]))'
        moments: dict[str, float] = {}

        def canary_at_zero() -> bool:
            if "seen" not in moments:
                samples = real_prometheus.query(errors)
                if samples and samples[0][1] > 0:
                    moments["seen"] = time.monotonic()
            deps = rollouts.deployments("web")
            aborted = rollouts.status("web").get("phase") == "Aborted"
            return aborted and v2 in deps and deps[v2].spec.replicas == 0

        wait_for("the bad canary aborted, at zero", canary_at_zero, timeout=120, interval=0.1)
        zero = time.monotonic()
        status = rollouts.status("web")
        wait_for("the bad canary's pods gone", lambda: not clock_live(clock, v2), timeout=60)
        gone = time.monotonic()
        breach = traffic.first.get((v2, 500))
        bad_samples = len(sampler.samples)
        # a good version completes
        v3 = release(rollouts, "web", {"VERSION": "v3"})
        final = rollouts.wait(
            "web",
            "v3 Healthy",
            lambda s: s.get("phase") == "Healthy" and s.get("stableRevision") == v3,
            120,
        )
        wait_for("v1's pods gone", lambda: not clock_live(clock, v1), timeout=60)
        time.sleep(1)
    finally:
        sampler.stop()
        traffic.stop()
        clock.stop()

    assert status["abortReason"] == "AnalysisFailed", status
    assert "error-ratio" in status["message"], status["message"]
    answered = traffic.by_revision(v2).get(500, 0)
    assert breach is not None and answered > 0 and "seen" in moments, (traffic.counts, moments)
    # Prometheus scraped the real errors of the real pods (over time: the canary's pods are
    # gone, so their series are stale now)
    seen = real_prometheus.query(
        f'sum(max_over_time(http_requests_total{{namespace="{rollouts.ns}",revision="{v2}",'
        f'code="500"}}[10m]))'
    )
    assert seen and seen[0][1] > 0, seen
    # the stable (v1) never went below its floor until v3 took over; 4 ready in all
    assert min(s.get(v1, 0) for s in sampler.samples[:bad_samples]) >= 3, sampler.samples
    assert all(sum(s.values()) >= 4 for s in sampler.samples), sampler.samples
    assert final["stableRevision"] == v3
    assert set(traffic.by_revision(v3)) == {200}, traffic.counts
    # graceful termination: the aborted canary's pods got SIGTERM, kept serving, drained and
    # exited 0, and no request to any pod ever failed to connect
    ended = clock.of(v2) + clock.of(v1)
    assert ended and all(t.gone is not None for t in ended)
    for t in ended:
        assert t.terminated.get("exit_code") == 0, (t.name, t.terminated)
        assert t.terminated.get("message", "").startswith("graceful"), (t.name, t.terminated)
        # the app wrote that it drained 2 s after SIGTERM; the watch may see the deletion
        # late on a loaded machine, so the pod's observed end is only bounded loosely
        assert t.deleting is not None and t.gone - t.deleting >= 1.0, t
    failed = {rev: n for (rev, code), n in traffic.counts.items() if code == 0}
    assert not failed, f"requests that could not connect: {failed}"
    drain = [t.gone - t.deleting for t in ended if t.gone and t.deleting]
    started = [t.ready - t.seen for t in clock.pods.values() if t.ready is not None]
    FIGURES.append(f"real pod start -> Ready ('web', all versions): {stats(started)}")
    FIGURES.append(
        f"real errors: first 500 of the canary -> in Prometheus {moments['seen'] - breach:.1f}s "
        f"-> canary at zero {zero - breach:.1f}s -> its pods gone {gone - breach:.1f}s "
        f"(gate: initialDelay 6s, 1s interval, 4s rate window; 1s scrape); the canary "
        f"answered {answered} errors of {sum(traffic.by_revision(v2).values())} requests"
    )
    FIGURES.append(f"graceful termination (SIGTERM -> gone, drain 2s): {stats(drain)}")
    FIGURES.append(
        f"stable v1 ready min during the bad canary "
        f"{min(s.get(v1, 0) for s in sampler.samples[:bad_samples])}/4 "
        f"({bad_samples} samples); {traffic.sent} requests, none failed to connect"
    )
