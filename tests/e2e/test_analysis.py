"""Prometheus analysis gates on the real cluster with the real Prometheus.

The exporter serves ``http_requests_total{namespace,rollout,revision,code}`` at rates each
test sets per revision; the revision of a template is known in advance
(``revision_hash``), so traffic for the canary can start before the canary does.
"""

from __future__ import annotations

import copy
import time
from typing import Any

from ramp_e2e import PROMETHEUS_TOKEN, Rollouts, condition, rollout_manifest, wait_for

from prometheus.fixtures import PrometheusServer
from ramp.core.plan import revision_hash

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


def gated_rollout(
    rollouts: Rollouts, prom: PrometheusServer, name: str, image: str
) -> tuple[str, str]:
    """A Rollout of 4 whose second step is an error-ratio analysis; Healthy on its first
    revision. Returns (stable revision, the revision ``image`` will get)."""
    steps = [
        {"setWeight": 25},
        {"analysis": {"metrics": [error_metric(prom.url)]}},
        {"setWeight": 100},
    ]
    rollouts.create(rollout_manifest(name, replicas=4, steps=steps))
    stable = rollouts.wait_healthy(name, 4)["stableRevision"]
    return stable, next_revision(rollouts, name, image)


def test_good_canary_passes_every_gate_and_completes(
    rollouts: Rollouts, prom: PrometheusServer
) -> None:
    stable, canary = gated_rollout(rollouts, prom, "good", "ramp-test/app:v2")
    prom.exporter.set_rate(rollouts.ns, "good", canary, rps=200, error_ratio=0.001)
    prom.exporter.set_rate(rollouts.ns, "good", stable, rps=200, error_ratio=0.001)
    time.sleep(3)  # a few scrapes, so the rate window has data
    rollouts.set_image("good", "ramp-test/app:v2")
    rollouts.wait("good", "promoted", lambda s: s.get("stableRevision") == canary, timeout=90)
    final = rollouts.wait_healthy("good", 4, timeout=30)
    assert final["stableRevision"] == canary
    passes = [m for m in final["measurements"] if m["verdict"] == "Pass"]
    assert len(passes) >= 3, final["measurements"]
    assert all(m["verdict"] == "Pass" for m in final["measurements"]), final["measurements"]
    assert canary in passes[0]["query"]


def test_bad_canary_aborts_at_its_first_analysis(
    rollouts: Rollouts, prom: PrometheusServer
) -> None:
    stable, canary = gated_rollout(rollouts, prom, "bad", "ramp-test/app:v3")
    breach = time.monotonic()
    prom.exporter.set_rate(rollouts.ns, "bad", canary, rps=200, error_ratio=0.2)
    prom.wait_for(
        f'sum(rate(http_requests_total{{revision="{canary}",code=~"5.."}}[4s]))',
        lambda samples: bool(samples) and samples[0][1] > 0,
    )
    seen = time.monotonic()
    rollouts.set_image("bad", "ramp-test/app:v3")

    def canary_gone() -> bool:
        deps = rollouts.deployments("bad")
        s = rollouts.status("bad")
        return s.get("phase") == "Aborted" and canary in deps and deps[canary].spec.replicas == 0

    wait_for("the canary at zero after the abort", canary_gone, timeout=90, interval=0.1)
    done = time.monotonic()
    print(
        f"\nbad canary: error rate up to canary at zero in {done - breach:.1f}s "
        f"({seen - breach:.1f}s until Prometheus had the rate, {done - seen:.1f}s after)"
    )
    status = rollouts.status("bad")
    assert status["abortReason"] == "AnalysisFailed"
    fails = [m for m in status["measurements"] if m["verdict"] == "Fail"]
    assert len(fails) == 1 and len(status["measurements"]) == 1, status["measurements"]
    assert "error-ratio" in status["message"] and "0.2" in status["message"], status["message"]
    assert "result < 0.01" in status["message"] or "result >= 0.05" in status["message"]
    assert rollouts.ready_pods("bad") == {stable: 4}
    assert rollouts.wait_events("bad", "AnalysisFail", 1)


def test_background_analysis_aborts_during_a_pause(
    rollouts: Rollouts, prom: PrometheusServer
) -> None:
    steps = [{"setWeight": 25}, {"pause": {}}, {"setWeight": 100}]
    background = {"metrics": [error_metric(prom.url, window="2s")], "startingStep": 0}
    rollouts.create(rollout_manifest("bg", replicas=4, steps=steps, analysis=background))
    rollouts.wait_healthy("bg", 4)
    canary = next_revision(rollouts, "bg", "ramp-test/app:v2")
    prom.exporter.set_rate(rollouts.ns, "bg", canary, rps=200, error_ratio=0.0)
    time.sleep(3)
    rollouts.set_image("bg", "ramp-test/app:v2")
    rollouts.wait(
        "bg",
        "paused with passing background analysis",
        lambda s: (
            s.get("phase") == "Paused"
            and sum(m["verdict"] == "Pass" for m in s.get("measurements") or []) >= 2
        ),
        timeout=60,
    )

    breach = time.monotonic()
    prom.exporter.set_rate(rollouts.ns, "bg", canary, rps=200, error_ratio=0.2)

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
    rollouts: Rollouts, prom: PrometheusServer, name: str, canary_err: float, stable_err: float
) -> tuple[str, str]:
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
    rollouts.create(rollout_manifest(name, replicas=4, steps=steps))
    stable = rollouts.wait_healthy(name, 4)["stableRevision"]
    canary = next_revision(rollouts, name, "ramp-test/app:v2")
    prom.exporter.set_rate(rollouts.ns, name, stable, rps=100, error_ratio=stable_err)
    prom.exporter.set_rate(rollouts.ns, name, canary, rps=100, error_ratio=canary_err)
    time.sleep(4)
    rollouts.set_image(name, "ramp-test/app:v2")
    return stable, canary


def test_canary_versus_stable_same_error_rate_passes(
    rollouts: Rollouts, prom: PrometheusServer
) -> None:
    _, canary = _compare_rollout(rollouts, prom, "same", canary_err=0.03, stable_err=0.03)
    rollouts.wait("same", "promoted", lambda s: s.get("stableRevision") == canary, timeout=60)
    final = rollouts.status("same")
    assert [m["verdict"] for m in final["measurements"]] == ["Pass", "Pass"]


def test_canary_worse_than_stable_by_more_than_the_margin_aborts(
    rollouts: Rollouts, prom: PrometheusServer
) -> None:
    stable, _ = _compare_rollout(rollouts, prom, "worse", canary_err=0.06, stable_err=0.01)
    status = rollouts.wait_phase("worse", "Aborted", timeout=60)
    assert status["abortReason"] == "AnalysisFailed"
    assert "versus-stable" in status["message"]
    assert status["stableRevision"] == stable
