"""The operator's metrics registry, fed with plans as the controller's observer feeds it,
and the JSON log format."""

from __future__ import annotations

import json
import logging

from prometheus_client.parser import text_string_to_metric_families

from ramp.api.rollout import Phase, RolloutStatus, Weights
from ramp.core.plan import Event, Plan
from ramp.shell.runtime.logs import JsonFormatter
from ramp.shell.runtime.metrics import OperatorMetrics


def samples(metrics: OperatorMetrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = metrics.exposition().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(metrics: OperatorMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics).get((name, frozenset(labels.items())))


def plan(phase: Phase, events: list[tuple[str, str]] = (), **status: object) -> Plan:  # type: ignore[assignment]
    return Plan(
        status=RolloutStatus(phase=phase, **status),  # type: ignore[arg-type]
        events=[Event("Normal", reason, message) for reason, message in events],
    )


def test_a_rollout_then_an_abort_shows_in_every_series() -> None:
    m = OperatorMetrics()
    m.observe("shop", "web", plan(Phase.HEALTHY, [("Initialized", "")], stable_revision="a"), 0.01)
    m.observe(
        "shop",
        "web",
        plan(
            Phase.PROGRESSING,
            [("RolloutStarted", ""), ("StepCompleted", ""), ("StepCompleted", "")],
            stable_revision="a",
            canary_revision="b",
            weights=Weights(desired=50, actual=40),
        ),
        0.02,
    )
    assert value(m, "ramp_rollout_phase", namespace="shop", rollout="web", phase="Progressing")
    assert value(m, "ramp_rollout_phase", namespace="shop", rollout="web", phase="Healthy") == 0
    info = {"namespace": "shop", "rollout": "web", "stable_revision": "a", "canary_revision": "b"}
    assert value(m, "ramp_rollout_info", **info) == 1
    assert value(m, "ramp_rollout_weight_percent", namespace="shop", rollout="web", kind="desired")
    m.observe(
        "shop",
        "web",
        plan(Phase.HEALTHY, [("StepCompleted", ""), ("RolloutCompleted", "")], stable_revision="b"),
        0.03,
    )
    assert value(m, "ramp_step_transitions_total", namespace="shop", rollout="web") == 3
    assert value(m, "ramp_rollouts_completed_total", namespace="shop", rollout="web") == 1
    m.observe(
        "shop",
        "web",
        plan(
            Phase.ABORTED,
            [("RolloutStarted", ""), ("Aborted", "")],
            stable_revision="b",
            canary_revision="c",
            abort_reason="ProgressDeadlineExceeded",
        ),
        0.04,
    )
    aborts = {"namespace": "shop", "rollout": "web", "reason": "ProgressDeadlineExceeded"}
    assert value(m, "ramp_aborts_total", **aborts) == 1
    assert value(m, "ramp_rollout_phase", namespace="shop", rollout="web", phase="Aborted") == 1
    assert value(m, "ramp_reconcile_duration_seconds_count") == 4
    assert abs((value(m, "ramp_reconcile_duration_seconds_sum") or 0) - 0.1) < 1e-9
    # Exactly one info series per Rollout: the old revision pair is gone.
    infos = [k for k in samples(m) if k[0] == "ramp_rollout_info"]
    assert len(infos) == 1


def test_gate_measurements_by_verdict_start_at_zero() -> None:
    m = OperatorMetrics()
    for verdict in ("Pass", "Fail", "Inconclusive", "Error"):
        assert value(m, "ramp_gate_measurements_total", verdict=verdict) == 0
    m.record_measurement("Pass")
    m.record_measurement("Pass")
    m.record_measurement("Error")
    assert value(m, "ramp_gate_measurements_total", verdict="Pass") == 2
    assert value(m, "ramp_gate_measurements_total", verdict="Error") == 1


def test_module_level_record_measurement_counts_in_the_served_registry() -> None:
    from ramp.shell.runtime import metrics

    before = value(metrics.METRICS, "ramp_gate_measurements_total", verdict="Inconclusive") or 0
    metrics.record_measurement("Inconclusive")
    after = value(metrics.METRICS, "ramp_gate_measurements_total", verdict="Inconclusive")
    assert after == before + 1


def test_a_process_that_may_not_act_reports_no_rollouts() -> None:
    m = OperatorMetrics()
    m.observe("shop", "web", plan(Phase.HEALTHY, stable_revision="a"), 0.01)
    acting = [True]
    m.acting = lambda: acting[0]
    assert value(m, "ramp_leader") == 1
    assert value(m, "ramp_rollout_info", namespace="shop", rollout="web", stable_revision="a",
                 canary_revision="") == 1  # fmt: skip
    acting[0] = False
    assert value(m, "ramp_leader") == 0
    assert not [k for k in samples(m) if k[0] in ("ramp_rollout_info", "ramp_rollout_phase")]


def test_deleted_rollouts_lose_their_series() -> None:
    m = OperatorMetrics()
    live = {("shop", "web"), ("shop", "api")}
    m.live_keys = lambda: live
    m.observe("shop", "web", plan(Phase.ABORTED, [("Aborted", "")], abort_reason="UserAbort"), 0)
    m.observe("shop", "api", plan(Phase.HEALTHY, [("StepCompleted", "")]), 0)
    live.discard(("shop", "web"))
    names = {(k[0], dict(k[1]).get("rollout")) for k in samples(m)}
    assert ("ramp_rollout_phase", "api") in names
    assert ("ramp_rollout_phase", "web") not in names
    assert ("ramp_aborts_total", "web") not in names
    assert ("ramp_step_transitions_total", "api") in names


def test_json_log_lines() -> None:
    formatter = JsonFormatter()
    record = logging.LogRecord("kopf.objects", logging.WARNING, __file__, 1, "hi %s", ("x",), None)
    record.k8s_ref = {"namespace": "shop", "name": "web", "kind": "Rollout", "uid": "u"}
    line = json.loads(formatter.format(record))
    assert line["level"] == "warning" and line["message"] == "hi x"
    assert line["logger"] == "kopf.objects"
    assert line["object"] == {"namespace": "shop", "name": "web", "kind": "Rollout"}
    assert line["time"].endswith("Z")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord("ramp", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    line = json.loads(formatter.format(record))
    assert "RuntimeError: boom" in line["exception"]


def bg_plan(active: str, preview: str | None, events: list[tuple[str, str]] = ()) -> Plan:  # type: ignore[assignment]
    from ramp.api.rollout import BlueGreenStatus

    p = plan(Phase.PROGRESSING, events, stable_revision="a", canary_revision="b")
    p.status.blue_green = BlueGreenStatus(active_revision=active, preview_revision=preview)
    return p


def test_blue_green_switches_and_flip_backs_are_counted() -> None:
    m = OperatorMetrics()
    m.observe("shop", "web", bg_plan("a", None), 0.01)
    labels = {"namespace": "shop", "rollout": "web"}
    assert value(m, "ramp_bluegreen_info", active_revision="a", preview_revision="", **labels)
    m.observe("shop", "web", bg_plan("a", "b"), 0.01)
    m.observe("shop", "web", bg_plan("b", "b", [("Switched", "")]), 0.01)
    assert value(m, "ramp_bluegreen_switches_total", **labels) == 1
    assert not value(m, "ramp_bluegreen_flipbacks_total", **labels)
    m.observe("shop", "web", bg_plan("a", "b", [("Aborted", "")]), 0.01)  # flipped back
    m.observe("shop", "web", bg_plan("a", "b"), 0.01)  # nothing new
    assert value(m, "ramp_bluegreen_flipbacks_total", **labels) == 1
    assert value(m, "ramp_bluegreen_info", active_revision="a", preview_revision="b", **labels)
    # a canary Rollout has no blue-green series
    m.observe("shop", "can", plan(Phase.HEALTHY, stable_revision="x"), 0.01)
    assert not any(
        dict(k[1]).get("rollout") == "can" for k in samples(m) if k[0] == "ramp_bluegreen_info"
    )
