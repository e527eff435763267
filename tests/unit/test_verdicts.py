"""Verdict accounting against each limit (acceptance 9), timing, and the aggregate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from ramp.api.analysis import Measurement, Metric, MetricPhase, MetricResult, Verdict
from ramp.core.verdicts import (
    GateAction,
    MetricState,
    analysis_state,
    format_time,
    metric_state,
    parse_time,
    record,
    tally,
    verdict_changed,
)

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
LETTERS = {"P": Verdict.PASS, "F": Verdict.FAIL, "I": Verdict.INCONCLUSIVE, "E": Verdict.ERROR}


def metric(**fields: Any) -> Metric:
    """A threshold metric with the given overrides (camelCase or snake_case)."""
    spec: dict[str, Any] = {
        "name": "error-ratio",
        "interval": "10s",
        "successCondition": "result < 0.01",
        "prometheus": {"address": "http://prom:9090", "query": "up"},
    }
    spec.update(fields)
    return Metric.model_validate(spec)


def measurements(verdicts: str, name: str = "error-ratio") -> list[Measurement]:
    """One measurement per letter (P, F, I, E), ten seconds apart from T0."""
    return [
        Measurement(
            metric=name,
            verdict=LETTERS[letter],
            time=format_time(T0 + timedelta(seconds=10 * i)),
            value="0.5",
            message=f"{letter} #{i}",
        )
        for i, letter in enumerate(verdicts)
    ]


def state_after(m: Metric, verdicts: str, *, continuous: bool = False) -> MetricState:
    """The metric's state right after the measurements of ``verdicts``."""
    result = tally(m, measurements(verdicts), continuous=continuous)
    now = T0 + timedelta(seconds=10 * len(verdicts))
    return metric_state(m, result, T0, now, continuous=continuous)


# (id, verdicts, metric fields, expected phase, expected action)
ACCOUNTING = [
    ("nothing-yet", "", {}, MetricPhase.RUNNING, GateAction.WAIT),
    ("one-pass-count-1", "P", {}, MetricPhase.PASSED, GateAction.PROCEED),
    ("one-pass-of-3", "P", {"count": 3}, MetricPhase.RUNNING, GateAction.WAIT),
    ("three-passes-of-3", "PPP", {"count": 3}, MetricPhase.PASSED, GateAction.PROCEED),
    # failureLimit: Fail verdicts tolerated
    ("first-fail-aborts", "F", {}, MetricPhase.FAILED, GateAction.ABORT),
    ("fail-within-limit", "F", {"failureLimit": 1}, MetricPhase.RUNNING, GateAction.WAIT),
    ("fail-over-limit", "FF", {"failureLimit": 1}, MetricPhase.FAILED, GateAction.ABORT),
    (
        "tolerated-fail-then-passes",
        "PFP",
        {"count": 2, "failureLimit": 1},
        MetricPhase.PASSED,
        GateAction.PROCEED,
    ),
    (
        "fails-count-over-whole-run",
        "FPF",
        {"count": 5, "failureLimit": 1},
        MetricPhase.FAILED,
        GateAction.ABORT,
    ),
    # inconclusiveLimit: pauses (by default), never a pass
    ("first-inconclusive-pauses", "I", {}, MetricPhase.INCONCLUSIVE, GateAction.PAUSE),
    (
        "inconclusive-within-limit",
        "I",
        {"inconclusiveLimit": 1},
        MetricPhase.RUNNING,
        GateAction.WAIT,
    ),
    (
        "inconclusive-over-limit",
        "II",
        {"inconclusiveLimit": 1},
        MetricPhase.INCONCLUSIVE,
        GateAction.PAUSE,
    ),
    (
        "inconclusives-not-consecutive",
        "IPI",
        {"count": 3, "inconclusiveLimit": 1},
        MetricPhase.INCONCLUSIVE,
        GateAction.PAUSE,
    ),
    (
        "inconclusive-policy-abort",
        "I",
        {"onInconclusive": "Abort"},
        MetricPhase.INCONCLUSIVE,
        GateAction.ABORT,
    ),
    (
        "inconclusive-never-counts-as-pass",
        "IIIP",
        {"count": 2, "inconclusiveLimit": 5},
        MetricPhase.RUNNING,
        GateAction.WAIT,
    ),
    # consecutiveErrorLimit (default 4): pauses (by default), reset by any answer
    ("four-errors-tolerated", "EEEE", {}, MetricPhase.RUNNING, GateAction.WAIT),
    ("fifth-error-pauses", "EEEEE", {}, MetricPhase.ERROR, GateAction.PAUSE),
    ("errors-reset-by-pass", "EEEEPEEEE", {"count": 2}, MetricPhase.RUNNING, GateAction.WAIT),
    (
        "errors-reset-by-inconclusive",
        "EEEEIEEEE",
        {"inconclusiveLimit": 1},
        MetricPhase.RUNNING,
        GateAction.WAIT,
    ),
    (
        "errors-reset-by-fail",
        "EEEEFEEEE",
        {"failureLimit": 1},
        MetricPhase.RUNNING,
        GateAction.WAIT,
    ),
    ("error-limit-zero", "E", {"consecutiveErrorLimit": 0}, MetricPhase.ERROR, GateAction.PAUSE),
    (
        "error-policy-abort",
        "E",
        {"consecutiveErrorLimit": 0, "onError": "Abort"},
        MetricPhase.ERROR,
        GateAction.ABORT,
    ),
    ("errors-never-count-as-pass", "EEEP", {"count": 2}, MetricPhase.RUNNING, GateAction.WAIT),
    # terminal phases are sticky within a run
    ("passed-stays-passed", "PF", {}, MetricPhase.PASSED, GateAction.PROCEED),
    ("failed-stays-failed", "FPPP", {"count": 3}, MetricPhase.FAILED, GateAction.ABORT),
    ("paused-stays-paused", "IP", {}, MetricPhase.INCONCLUSIVE, GateAction.PAUSE),
]


@pytest.mark.parametrize(
    ("verdicts", "fields", "phase", "action"),
    [case[1:] for case in ACCOUNTING],
    ids=[case[0] for case in ACCOUNTING],
)
def test_accounting(
    verdicts: str, fields: dict[str, Any], phase: MetricPhase, action: GateAction
) -> None:
    state = state_after(metric(**fields), verdicts)
    assert (state.phase, state.action) == (phase, action), state.message


# (id, verdicts, metric fields, expected phase) for background (continuous) analysis
CONTINUOUS = [
    ("passes-keep-running", "PPPP", {}, MetricPhase.RUNNING),
    ("fail-after-passes-fails", "PPPF", {}, MetricPhase.FAILED),
    ("errors-after-passes-pause", "PEEEEE", {}, MetricPhase.ERROR),
    ("inconclusive-accumulates", "PIPI", {"inconclusiveLimit": 1}, MetricPhase.INCONCLUSIVE),
]


@pytest.mark.parametrize(
    ("verdicts", "fields", "phase"),
    [case[1:] for case in CONTINUOUS],
    ids=[case[0] for case in CONTINUOUS],
)
def test_continuous_accounting(verdicts: str, fields: dict[str, Any], phase: MetricPhase) -> None:
    state = state_after(metric(**fields), verdicts, continuous=True)
    assert state.phase is phase, state.message


def test_counters() -> None:
    result = tally(metric(count=10, failureLimit=5, inconclusiveLimit=5), measurements("PFIEEP"))
    assert result is not None
    assert (result.passed, result.failed, result.inconclusive, result.errors) == (2, 1, 1, 2)
    assert result.consecutive_errors == 0
    assert result.measured == 6
    assert result.last_verdict is Verdict.PASS
    assert result.last_time == format_time(T0 + timedelta(seconds=50))


def test_tally_skips_other_metrics_and_is_none_without_measurements() -> None:
    m = metric()
    assert tally(m, measurements("FFF", name="other")) is None
    mixed = measurements("F", name="other") + measurements("P")
    result = tally(m, mixed)
    assert result is not None and result.passed == 1 and result.failed == 0


def test_record_refuses_another_metrics_measurement() -> None:
    with pytest.raises(ValueError, match="other"):
        record(metric(), None, measurements("P", name="other")[0])


# --- timing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "verdicts", "due_after"),
    [
        ({}, "", 0),
        ({"initialDelay": "30s"}, "", 30),
        ({"initialDelay": "1m30s"}, "", 90),
        ({"interval": "10s", "count": 3}, "P", 10),
        ({"interval": "1m", "count": 3}, "PP", 70),
        ({"interval": "10s"}, "EE", 20),
    ],
    ids=[
        "first-at-start",
        "initial-delay",
        "initial-delay-composite",
        "interval",
        "interval-1m",
        "errors-retry-at-interval",
    ],
)
def test_due_time(fields: dict[str, Any], verdicts: str, due_after: int) -> None:
    m = metric(**fields)
    result = tally(m, measurements(verdicts))
    state = metric_state(m, result, T0, T0)
    assert state.phase is MetricPhase.RUNNING
    assert state.due_at == T0 + timedelta(seconds=due_after)
    assert state.due_at is not None
    assert not state.is_due(state.due_at - timedelta(microseconds=1))
    assert state.is_due(state.due_at)


def test_finished_metric_is_never_due() -> None:
    state = state_after(metric(), "P")
    assert state.due_at is None and not state.is_due(T0 + timedelta(days=1))


# --- messages --------------------------------------------------------------------------


def test_failed_message_names_metric_value_condition_and_limit() -> None:
    m = metric(failureLimit=1)
    fail = Measurement(
        metric="error-ratio",
        verdict=Verdict.FAIL,
        time=format_time(T0),
        value="0.2",
        message="value 0.2 does not meet successCondition `result < 0.01`",
    )
    result = record(m, record(m, None, fail), fail.model_copy(update={"time": format_time(T0)}))
    state = metric_state(m, result, T0, T0)
    assert state.action is GateAction.ABORT
    for part in ("error-ratio", "0.2", "result < 0.01", "2 Fail", "failureLimit 1"):
        assert part in state.message


def test_error_limit_message_says_prometheus_is_unreachable() -> None:
    m = metric(consecutiveErrorLimit=1)
    result = None
    for i in range(2):
        result = record(
            m,
            result,
            Measurement(
                metric="error-ratio",
                verdict=Verdict.ERROR,
                time=format_time(T0 + timedelta(seconds=i)),
                message="Prometheus unreachable at http://prom:9090: connection refused",
            ),
        )
    state = metric_state(m, result, T0, T0)
    assert (state.phase, state.action) == (MetricPhase.ERROR, GateAction.PAUSE)
    assert "could not be measured" in state.message
    assert "Prometheus unreachable" in state.message
    assert "consecutiveErrorLimit 1" in state.message


def test_inconclusive_limit_message_says_which() -> None:
    state = state_after(metric(), "I")
    assert "inconclusive" in state.message and "inconclusiveLimit 0" in state.message


# --- several metrics -------------------------------------------------------------------


def _state(
    name: str, phase: MetricPhase, action: GateAction, due: int | None = None
) -> MetricState:
    due_at = None if due is None else T0 + timedelta(seconds=due)
    return MetricState(name, phase, action, f"{name} is {phase}", due_at, MetricResult(name=name))


RUN = MetricPhase.RUNNING, GateAction.WAIT
PASSED = MetricPhase.PASSED, GateAction.PROCEED
FAILED = MetricPhase.FAILED, GateAction.ABORT
ERROR_PAUSE = MetricPhase.ERROR, GateAction.PAUSE
INCONCLUSIVE_PAUSE = MetricPhase.INCONCLUSIVE, GateAction.PAUSE
INCONCLUSIVE_ABORT = MetricPhase.INCONCLUSIVE, GateAction.ABORT

AGGREGATE = [
    ("all-passed", [PASSED, PASSED], MetricPhase.PASSED, GateAction.PROCEED, ["a", "b"]),
    ("one-still-running", [PASSED, RUN], MetricPhase.RUNNING, GateAction.WAIT, ["b"]),
    ("failed-wins-over-error", [ERROR_PAUSE, FAILED], MetricPhase.FAILED, GateAction.ABORT, ["b"]),
    ("failed-wins-over-running", [RUN, FAILED], MetricPhase.FAILED, GateAction.ABORT, ["b"]),
    (
        "abort-policy-aborts",
        [RUN, INCONCLUSIVE_ABORT],
        MetricPhase.INCONCLUSIVE,
        GateAction.ABORT,
        ["b"],
    ),
    ("error-pauses", [PASSED, ERROR_PAUSE], MetricPhase.ERROR, GateAction.PAUSE, ["b"]),
    (
        "pause-names-all",
        [INCONCLUSIVE_PAUSE, ERROR_PAUSE],
        MetricPhase.ERROR,
        GateAction.PAUSE,
        ["a", "b"],
    ),
    (
        "pause-while-others-run",
        [RUN, INCONCLUSIVE_PAUSE],
        MetricPhase.INCONCLUSIVE,
        GateAction.PAUSE,
        ["b"],
    ),
]


@pytest.mark.parametrize(
    ("states", "phase", "action", "named"),
    [case[1:] for case in AGGREGATE],
    ids=[case[0] for case in AGGREGATE],
)
def test_analysis_state(
    states: list[tuple[MetricPhase, GateAction]],
    phase: MetricPhase,
    action: GateAction,
    named: list[str],
) -> None:
    built = [
        _state(name, p, a, due=5 if p is MetricPhase.RUNNING else None)
        for name, (p, a) in zip("ab", states, strict=True)
    ]
    result = analysis_state(built)
    assert (result.phase, result.action) == (phase, action)
    for name in named:
        assert name in result.message


def test_analysis_state_due_is_earliest_running_metric() -> None:
    result = analysis_state(
        [_state("a", *RUN, due=30), _state("b", *RUN, due=10), _state("c", *PASSED)]
    )
    assert result.due_at == T0 + timedelta(seconds=10)
    assert result.due_metrics(T0 + timedelta(seconds=10)) == ["b"]
    assert result.due_metrics(T0 + timedelta(seconds=30)) == ["a", "b"]


def test_analysis_without_metrics_never_passes() -> None:
    result = analysis_state([])
    assert result.action is GateAction.PAUSE and result.phase is not MetricPhase.PASSED


# --- helpers ---------------------------------------------------------------------------


def test_verdict_changed() -> None:
    m = metric(count=5, failureLimit=5)
    first = record(m, None, measurements("P")[0])
    same = record(m, first, measurements("PP")[1])
    other = record(m, same, measurements("PPF")[2])
    assert verdict_changed(None, first)
    assert not verdict_changed(first, same)
    assert verdict_changed(same, other)


@pytest.mark.parametrize(
    ("moment", "text"),
    [
        (datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC), "2024-05-01T12:00:30Z"),
        (datetime(2024, 5, 1, 12, 0, 30, 250000, tzinfo=UTC), "2024-05-01T12:00:30.250000Z"),
        (
            datetime(2024, 5, 1, 14, 0, 30, tzinfo=UTC).astimezone(timezone(timedelta(hours=2))),
            "2024-05-01T14:00:30Z",
        ),
    ],
    ids=["seconds", "microseconds", "offset-to-utc"],
)
def test_time_round_trip(moment: datetime, text: str) -> None:
    assert format_time(moment) == text
    assert parse_time(text) == moment


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        format_time(datetime(2024, 5, 1))
    with pytest.raises(ValueError):
        parse_time("2024-05-01T12:00:00")
