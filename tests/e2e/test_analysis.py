"""Prometheus analysis gates on the real cluster with the real Prometheus.

The exporter serves ``http_requests_total{namespace,rollout,revision,code}``. The tests that
judge a canary's errors drive it with EndpointSlice traffic
(:class:`~prometheus.traffic.ServiceTraffic`): a Service selects the Rollout's pods, requests
are spread over its ready endpoints, and each pod answers with the error ratio of the
annotation ``demo.ramp.dev/error-ratio`` in its template. The canary gets traffic only once
Ramp has made it a ready endpoint, so those gates wait ``initialDelay`` for a rate window
of data. The tests about Prometheus itself (down, no traffic, allow-list, token) set fixed
per-revision rates instead; the revision of a template is known in advance
(``revision_hash``), so that traffic can start before the canary does.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from ramp_e2e import PROMETHEUS_TOKEN, Rollouts, condition, rollout_manifest, wait_for

from cluster.fixtures import ClusterHandle
from prometheus.fixtures import PrometheusServer
from prometheus.traffic import ERROR_ANNOTATION, REVISION_LABEL, ServiceTraffic
from ramp.api.labels import revision_hash

FIRST_DATA = "4s"
"""``initialDelay`` of the gates on EndpointSlice traffic: the canary's requests start when
its pod is a ready endpoint, and a 4s rate window needs a few 1s scrapes of them."""

ERROR_RATIO = (
    'sum(rate(http_requests_total{{namespace="{{{{namespace}}}}",rollout="{{{{rollout}}}}",'
    'revision="{{{{canaryRevision}}}}",code=~"5.."}}[{w}])) / '
    'sum(rate(http_requests_total{{namespace="{{{{namespace}}}}",rollout="{{{{rollout}}}}",'
    'revision="{{{{canaryRevision}}}}"}}[{w}]))'
)


def error_metric(
    url: str, window: str = "4s", interval: str = "1s", count: int = 3, **extra: Any
) -> dict[str, Any]:
    return {
        "name": "error-ratio",
        "interval": interval,
        "count": count,
        "successCondition": "result < 0.01",
        "failureCondition": "result >= 0.05",
        "prometheus": {"address": url, "query": ERROR_RATIO.format(w=window)},
        **extra,
    }


def next_revision(rollouts: Rollouts, name: str, image: str) -> str:
    template = copy.deepcopy(rollouts.get(name)["spec"]["template"])
    template["spec"]["containers"][0]["image"] = image
    return revision_hash(template)


def served_manifest(
    name: str,
    replicas: int,
    steps: list[dict[str, Any]],
    error_ratio: float,
    **canary: Any,
) -> dict[str, Any]:
    """A Rollout whose pods answer ``error_ratio`` of their requests with errors."""
    manifest = rollout_manifest(name, replicas=replicas, steps=steps, **canary)
    manifest["spec"]["template"]["metadata"]["annotations"] = {ERROR_ANNOTATION: str(error_ratio)}
    return manifest


def release(rollouts: Rollouts, name: str, image: str, error_ratio: float) -> str:
    """A new template (``image``, its pods answering ``error_ratio`` with errors), in one
    patch; returns the revision it gets."""
    template = copy.deepcopy(rollouts.get(name)["spec"]["template"])
    template["spec"]["containers"][0]["image"] = image
    template["metadata"].setdefault("annotations", {})[ERROR_ANNOTATION] = str(error_ratio)
    rollouts.patch(
        name,
        {
            "spec": {
                "template": {
                    "metadata": {"annotations": {ERROR_ANNOTATION: str(error_ratio)}},
                    "spec": {"containers": template["spec"]["containers"]},
                }
            }
        },
    )
    return revision_hash(template)


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {
            "selector": {"app": name},
            "ports": [{"port": 80, "targetPort": 8080}],
        },
    }


Serve = Callable[[str, float], ServiceTraffic]


@pytest.fixture
def serve(cluster: ClusterHandle, rollouts: Rollouts, prom: PrometheusServer) -> Iterator[Serve]:
    """``serve(name, rps)``: a Service for Rollout ``name``'s pods and ``rps`` requests a
    second over its ready endpoints (stopped at the end of the test)."""
    started: list[ServiceTraffic] = []

    def start(name: str, rps: float) -> ServiceTraffic:
        rollouts.core.create_namespaced_service(rollouts.ns, service(name))
        traffic = ServiceTraffic(cluster.client, prom.exporter, rollouts.ns, name, name, rps=rps)
        started.append(traffic.start())
        return traffic

    try:
        yield start
    finally:
        for traffic in started:
            traffic.stop()


def gated_rollout(
    rollouts: Rollouts,
    prom: PrometheusServer,
    serve: Serve,
    name: str,
    error_ratio: float,
) -> tuple[str, ServiceTraffic]:
    """A Rollout of 4 whose second step is an error-ratio analysis, its pods answering
    ``error_ratio`` with errors, served by a Service; Healthy on its first revision, the
    traffic over all 4 pods. Returns (stable revision, traffic); 800 rps over 4 pods is
    200 rps for the canary at weight 25."""
    steps = [
        {"setWeight": 25},
        {"analysis": {"metrics": [error_metric(prom.url, initialDelay=FIRST_DATA)]}},
        {"setWeight": 100},
    ]
    rollouts.create(served_manifest(name, 4, steps, error_ratio))
    stable = rollouts.wait_healthy(name, 4)["stableRevision"]
    traffic = serve(name, 800)

    def endpoints() -> dict[str, int]:
        return {revision: share.endpoints for revision, share in traffic.current.items()}

    wait_for("the 4 stable pods as ready endpoints", lambda: endpoints() == {stable: 4})
    return stable, traffic


def test_good_canary_passes_every_gate_and_completes(
    rollouts: Rollouts, prom: PrometheusServer, serve: Serve
) -> None:
    stable, _ = gated_rollout(rollouts, prom, serve, "good", 0.001)
    canary = release(rollouts, "good", "ramp-test/app:v2", 0.001)
    rollouts.wait("good", "promoted", lambda s: s.get("stableRevision") == canary, timeout=90)
    final = rollouts.wait_healthy("good", 4, timeout=30)
    assert final["stableRevision"] == canary != stable
    passes = [m for m in final["measurements"] if m["verdict"] == "Pass"]
    assert len(passes) >= 3, final["measurements"]
    assert all(m["verdict"] == "Pass" for m in final["measurements"]), final["measurements"]
    assert canary in passes[0]["query"]


def test_bad_canary_aborts_at_its_first_analysis(
    rollouts: Rollouts, prom: PrometheusServer, serve: Serve
) -> None:
    stable, traffic = gated_rollout(rollouts, prom, serve, "bad", 0.0)
    breach = time.monotonic()
    canary = release(rollouts, "bad", "ramp-test/app:v3", 0.2)
    errors = f'sum(rate(http_requests_total{{revision="{canary}",code=~"5.."}}[4s]))'
    moments: dict[str, float] = {}

    def canary_gone() -> bool:
        now = time.monotonic()
        if "endpoint" not in moments and canary in traffic.current:
            moments["endpoint"] = now
        if "seen" not in moments:
            samples = prom.query(errors)
            if samples and samples[0][1] > 0:
                moments["seen"] = now
        deps = rollouts.deployments("bad")
        s = rollouts.status("bad")
        return s.get("phase") == "Aborted" and canary in deps and deps[canary].spec.replicas == 0

    wait_for("the canary at zero after the abort", canary_gone, timeout=90, interval=0.1)
    done = time.monotonic()
    assert "seen" in moments and "endpoint" in moments, "the canary served no traffic"
    endpoint, seen = moments["endpoint"], moments["seen"]
    print(
        f"\nbad canary: bad release up to canary at zero in {done - breach:.1f}s "
        f"({endpoint - breach:.1f}s until the canary was a ready endpoint, "
        f"{seen - breach:.1f}s until Prometheus had its errors, {done - seen:.1f}s after; "
        f"initialDelay {FIRST_DATA})"
    )
    status = rollouts.status("bad")
    assert status["abortReason"] == "AnalysisFailed"
    fails = [m for m in status["measurements"] if m["verdict"] == "Fail"]
    assert len(fails) == 1 and len(status["measurements"]) == 1, status["measurements"]
    assert "error-ratio" in status["message"] and "0.2" in status["message"], status["message"]
    assert "result < 0.01" in status["message"] or "result >= 0.05" in status["message"]
    # The canary's Deployment is at zero; its pod goes once the ReplicaSet controller acts.
    wait_for(
        "only the stable's 4 pods ready",
        lambda: rollouts.ready_pods("bad") == {stable: 4},
        timeout=15,
        describe=lambda: str(rollouts.ready_pods("bad")),
    )
    assert rollouts.wait_events("bad", "AnalysisFail", 1)


def test_background_analysis_aborts_during_a_pause(
    rollouts: Rollouts, prom: PrometheusServer, serve: Serve
) -> None:
    steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 100}]
    # The error ratio ramps through the band between pass and fail while the pods' new
    # ratio reaches Prometheus' window: tolerate a few Inconclusive measurements there.
    metric = error_metric(prom.url, window="2s", initialDelay=FIRST_DATA, inconclusiveLimit=5)
    # From the pause on: the canary is then a ready endpoint (traffic starts with it).
    background = {"metrics": [metric], "startingStep": 1}
    rollouts.create(served_manifest("bg", 4, steps, 0.0, analysis=background))
    rollouts.wait_healthy("bg", 4)
    serve("bg", 800)
    canary = release(rollouts, "bg", "ramp-test/app:v2", 0.0)
    rollouts.wait(
        "bg",
        "paused with passing background analysis",
        lambda s: (
            s.get("phase") == "Paused"
            and sum(m["verdict"] == "Pass" for m in s.get("measurements") or []) >= 2
        ),
        timeout=60,
    )

    # The running canary goes bad (a dependency of its own failing, say): its pods answer
    # a fifth of their requests with errors; the template, hence the revision, is unchanged.
    breach = time.monotonic()
    for pod in rollouts.core.list_namespaced_pod(
        rollouts.ns, label_selector=f"{REVISION_LABEL}={canary}"
    ).items:
        rollouts.core.patch_namespaced_pod(
            pod.metadata.name,
            rollouts.ns,
            {"metadata": {"annotations": {ERROR_ANNOTATION: "0.2"}}},
        )

    def canary_gone() -> bool:
        deps = rollouts.deployments("bg")
        return rollouts.status("bg").get("phase") == "Aborted" and deps[canary].spec.replicas == 0

    wait_for("background analysis to abort", canary_gone, timeout=60, interval=0.1)
    elapsed = time.monotonic() - breach
    print(f"\nbreach-to-abort (background, scrape 1s, interval 1s, window 2s): {elapsed:.1f}s")
    status = rollouts.status("bg")
    assert status["abortReason"] == "AnalysisFailed"
    assert "background analysis" in status["message"]


def test_prometheus_outage_pauses_then_retry_completes(
    rollouts: Rollouts, prom: PrometheusServer
) -> None:
    metric = error_metric(prom.url, count=4, consecutiveErrorLimit=1)
    steps = [{"setWeight": 25}, {"analysis": {"metrics": [metric]}}, {"setWeight": 100}]
    rollouts.create(rollout_manifest("out", replicas=4, steps=steps))
    stable = rollouts.wait_healthy("out", 4)["stableRevision"]
    canary = next_revision(rollouts, "out", "ramp-test/app:v2")
    prom.exporter.set_rate(rollouts.ns, "out", canary, rps=200, error_ratio=0.0)
    time.sleep(3)
    rollouts.set_image("out", "ramp-test/app:v2")
    rollouts.wait(
        "out",
        "a first Pass",
        lambda s: any(m["verdict"] == "Pass" for m in s.get("measurements") or []),
        timeout=60,
    )
    prom.stop()
    try:
        status = rollouts.wait_phase("out", "Paused", timeout=60)
        assert "unreachable" in status["message"], status["message"]
        assert condition(status, "Paused")["reason"] == "AnalysisError"
        errors = [m for m in status["measurements"] if m["verdict"] == "Error"]
        assert len(errors) == 2, status["measurements"]
        time.sleep(2)
        held = rollouts.status("out")
        assert held["stableRevision"] == stable and held["currentStepIndex"] == 1
        assert rollouts.ready_pods("out") == {canary: 1, stable: 3}, "nothing promoted"
    finally:
        prom.start()
    rollouts.request("out", "retry")
    rollouts.wait("out", "promoted", lambda s: s.get("stableRevision") == canary, timeout=90)
    final = rollouts.wait_healthy("out", 4, timeout=30)
    assert final["stableRevision"] == canary


def test_no_traffic_is_inconclusive_never_a_pass(
    rollouts: Rollouts, prom: PrometheusServer
) -> None:
    steps = [{"setWeight": 25}, {"analysis": {"metrics": [error_metric(prom.url)]}}]
    rollouts.create(rollout_manifest("idle", replicas=4, steps=steps))
    rollouts.wait_healthy("idle", 4)
    canary = next_revision(rollouts, "idle", "ramp-test/app:v2")
    prom.exporter.set_rate(rollouts.ns, "idle", canary, rps=0, error_ratio=0.0)
    rollouts.set_image("idle", "ramp-test/app:v2")
    status = rollouts.wait_phase("idle", "Paused", timeout=60)
    assert condition(status, "Paused")["reason"] == "AnalysisInconclusive"
    assert [m["verdict"] for m in status["measurements"]] == ["Inconclusive"]
    assert "inconclusive" in status["message"]


def test_address_outside_allow_list_is_refused_and_token_never_leaks(
    rollouts: Rollouts, prom: PrometheusServer, operator: Any
) -> None:
    outside = error_metric("http://127.0.0.1:9")  # nothing listens there; not allowed
    steps = [{"setWeight": 25}, {"analysis": {"metrics": [outside]}}]
    rollouts.create(rollout_manifest("far", replicas=2, steps=steps))
    rollouts.wait_healthy("far", 2)
    rollouts.set_image("far", "ramp-test/app:v2")
    status = rollouts.wait_phase("far", "Paused", timeout=60)
    assert "allow" in status["message"] and "127.0.0.1:9" in status["message"], status["message"]
    assert not status.get("measurements"), "no request was made to a refused address"

    # The token the operator sends to Prometheus appears nowhere a user can read.
    for name in ("far",):
        assert PROMETHEUS_TOKEN not in str(rollouts.get(name))
        assert PROMETHEUS_TOKEN not in str(rollouts.events(name))
    assert PROMETHEUS_TOKEN not in operator.log_text()


RATIO_BY_REVISION = (
    'sum(rate(http_requests_total{namespace="{{namespace}}",rollout="{{rollout}}",'
    'revision="{{revision}}",code=~"5.."}[4s])) / '
    'sum(rate(http_requests_total{namespace="{{namespace}}",rollout="{{rollout}}",'
    'revision="{{revision}}"}[4s]))'
)
COUNT_BY_REVISION = (
    'sum(increase(http_requests_total{namespace="{{namespace}}",rollout="{{rollout}}",'
    'revision="{{revision}}"}[4s]))'
)


def versus_stable_template(url: str, min_count: int) -> dict[str, Any]:
    return {
        "apiVersion": "ramp.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "versus-stable"},
        "spec": {
            "args": [{"name": "margin"}],
            "metrics": [
                {
                    "name": "versus-stable",
                    "interval": "1s",
                    "initialDelay": FIRST_DATA,
                    "count": 2,
                    "compare": {
                        "prometheus": {
                            "address": url,
                            "query": RATIO_BY_REVISION,
                            "countQuery": COUNT_BY_REVISION,
                        },
                        "maxIncrease": 0.02,
                        "minCount": min_count,
                    },
                }
            ],
        },
    }


def _compare_rollout(
    rollouts: Rollouts,
    prom: PrometheusServer,
    serve: Serve,
    name: str,
    canary_err: float,
    stable_err: float,
) -> tuple[str, str]:
    """Canary (``canary_err``) against stable (``stable_err``) at weight 50 of 4 pods,
    served 200 rps: 100 rps for each revision."""
    rollouts.custom.create_namespaced_custom_object(
        "ramp.dev",
        "v1alpha1",
        rollouts.ns,
        "analysistemplates",
        versus_stable_template(prom.url, min_count=50),
    )
    analysis = {
        "templates": [{"templateName": "versus-stable"}],
        "args": [{"name": "margin", "value": "0.02"}],
    }
    steps = [{"setWeight": 50}, {"analysis": analysis}, {"setWeight": 100}]
    rollouts.create(served_manifest(name, 4, steps, stable_err))
    stable = rollouts.wait_healthy(name, 4)["stableRevision"]
    serve(name, 200)
    canary = release(rollouts, name, "ramp-test/app:v2", canary_err)
    return stable, canary


def test_canary_versus_stable_same_error_rate_passes(
    rollouts: Rollouts, prom: PrometheusServer, serve: Serve
) -> None:
    _, canary = _compare_rollout(rollouts, prom, serve, "same", canary_err=0.03, stable_err=0.03)
    rollouts.wait("same", "promoted", lambda s: s.get("stableRevision") == canary, timeout=60)
    final = rollouts.status("same")
    assert [m["verdict"] for m in final["measurements"]] == ["Pass", "Pass"]


def test_canary_worse_than_stable_by_more_than_the_margin_aborts(
    rollouts: Rollouts, prom: PrometheusServer, serve: Serve
) -> None:
    stable, _ = _compare_rollout(rollouts, prom, serve, "worse", canary_err=0.06, stable_err=0.01)
    status = rollouts.wait_phase("worse", "Aborted", timeout=60)
    assert status["abortReason"] == "AnalysisFailed"
    assert "versus-stable" in status["message"]
    assert status["stableRevision"] == stable
