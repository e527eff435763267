"""Verdict accounting: from a metric's measurements to a decision. Pure, clock injected.

The shell (``ramp.analysis``) takes measurements; this module only counts them. For one
metric in one analysis run it keeps a :class:`~ramp.api.analysis.MetricResult` (counters,
folded with :func:`record`) and turns it into a :class:`MetricState` with
:func:`metric_state`; :func:`analysis_state` combines the metrics of a run.

The rules, precisely (``P``, ``F``, ``I`` = Pass, Fail, Inconclusive verdicts so far in
the run; ``CE`` = Error verdicts since the last non-Error verdict):

1. ``F > failureLimit`` → **Failed**, action Abort. (``failureLimit`` is the number of
   Fail verdicts *tolerated*: with the default 0, the first Fail aborts.)
2. ``CE > consecutiveErrorLimit`` → **Error**, action ``onError`` (Pause by default).
   Any Pass, Fail or Inconclusive verdict resets ``CE``: Prometheus answered.
3. ``I > inconclusiveLimit`` → **Inconclusive**, action ``onInconclusive`` (Pause by
   default). Inconclusive verdicts are counted over the whole run, not consecutively.
4. ``P >= count`` → **Passed**, action Proceed. Only Pass verdicts count toward ``count``;
   an Inconclusive or Error measurement is never a pass. In a *continuous* (background)
   run, reaching ``count`` does not end the metric: it keeps measuring until the rollout
   ends, and rules 1-3 keep applying.
5. Otherwise **Running**, action Wait: the next measurement is due ``initialDelay`` after
   the run started (first measurement), then ``interval`` after the previous one (Error
   measurements included: an outage is retried at the metric's own pace).

The rules are checked in this order, so if a counter set satisfies several (it cannot
when the counters were built with :func:`record`, which stops at the first terminal
phase), the most severe wins. A run always ends: every non-Error measurement increments
``P``, ``F`` or ``I``, each bounded by its limit, and Error runs are bounded by
``consecutiveErrorLimit``.

Policy summary (the issue's contract): reaching the failure limit aborts; reaching the
inconclusive or error limit pauses with a message that says which, unless the metric
says ``onInconclusive: Abort`` / ``onError: Abort``. "Prometheus is down" (Error) and "no
data" (Inconclusive) are therefore never mistaken for "the canary is bad" (Fail), and
neither ever counts as a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from ramp.api.analysis import (
    Measurement,
    Metric,
    MetricPhase,
    MetricResult,
    OnLimit,
    Verdict,
)


class GateAction(StrEnum):
    """What the rollout should do about a metric (or a whole analysis)."""

    WAIT = "Wait"
    """Not decided yet: keep measuring at the metric's interval."""
    PROCEED = "Proceed"
    """Passed: the gate is open."""
    PAUSE = "Pause"
    """Hold the rollout and say why (inconclusive or error limit reached)."""
    ABORT = "Abort"
    """Roll back to stable (failure limit reached, or a limit whose policy is Abort)."""


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with a ``Z`` suffix (microseconds kept when present).

    >>> format_time(datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC))
    '2024-05-01T12:00:30Z'
    """
    if moment.tzinfo is None:
        raise ValueError("format_time needs an aware datetime")
    moment = moment.astimezone(UTC)
    spec = "seconds" if moment.microsecond == 0 else "microseconds"
    return moment.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def parse_time(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (``Z`` or an offset) into an aware UTC datetime."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no time zone")
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class MetricState:
    """The decision for one metric at a given moment."""

    metric: str
    phase: MetricPhase
    action: GateAction
    message: str
    """Why, in words: names the metric, the last value and the condition or limit."""
    due_at: datetime | None
    """When the next measurement is due (Running only; may be in the past)."""
    result: MetricResult

    def is_due(self, now: datetime) -> bool:
        """Whether a measurement should be taken now."""
        return self.due_at is not None and now >= self.due_at


@dataclass(frozen=True)
class AnalysisState:
    """The decision for a whole analysis run (all its metrics)."""

    phase: MetricPhase
    """Failed if any metric failed; else Error/Inconclusive if one reached such a limit
    (the one that decides the action); Passed when all passed; else Running."""
    action: GateAction
    message: str
    due_at: datetime | None
    """The earliest time a running metric is due, if any."""
    metrics: tuple[MetricState, ...] = field(default=())

    def due_metrics(self, now: datetime) -> list[str]:
        """Names of the metrics whose next measurement is due at ``now``."""
        return [m.metric for m in self.metrics if m.is_due(now)]


def record(
    metric: Metric,
    result: MetricResult | None,
    measurement: Measurement,
    *,
    continuous: bool = False,
) -> MetricResult:
    """Fold one measurement into the metric's counters and recompute its phase.

    ``result`` is ``None`` for the first measurement of a run. A measurement taken after
    the metric reached a terminal phase is still counted (the record stays truthful) but
    the phase does not move back: terminal phases are sticky within a run.
    """
    if measurement.metric != metric.name:
        raise ValueError(
            f"measurement of metric {measurement.metric!r} recorded under {metric.name!r}"
        )
    base = result if result is not None else MetricResult(name=metric.name)
    verdict = measurement.verdict
    updated = base.model_copy(
        update={
            "passed": base.passed + (verdict is Verdict.PASS),
            "failed": base.failed + (verdict is Verdict.FAIL),
            "inconclusive": base.inconclusive + (verdict is Verdict.INCONCLUSIVE),
            "errors": base.errors + (verdict is Verdict.ERROR),
            "consecutive_errors": base.consecutive_errors + 1 if verdict is Verdict.ERROR else 0,
            "last_time": measurement.time,
            "last_verdict": verdict,
            "last_value": measurement.value,
            "message": measurement.message,
        }
    )
    if base.phase is not MetricPhase.RUNNING and not (
        continuous and base.phase is MetricPhase.PASSED
    ):
        return updated
    return updated.model_copy(update={"phase": _phase(metric, updated, continuous=continuous)})


def tally(
    metric: Metric, measurements: Iterable[Measurement], *, continuous: bool = False
) -> MetricResult | None:
    """Counters built from a list of measurements of a run (oldest first).

    Measurements of other metrics are skipped. Use this only when the list holds the
    whole run: the status keeps a bounded list, so long runs should persist the
    :class:`MetricResult` and fold new measurements with :func:`record` instead.
    """
    result: MetricResult | None = None
    for measurement in measurements:
        if measurement.metric == metric.name:
            result = record(metric, result, measurement, continuous=continuous)
    return result


def _phase(metric: Metric, r: MetricResult, *, continuous: bool) -> MetricPhase:
    if r.failed > metric.failure_limit:
        return MetricPhase.FAILED
    if r.consecutive_errors > metric.consecutive_error_limit:
        return MetricPhase.ERROR
    if r.inconclusive > metric.inconclusive_limit:
        return MetricPhase.INCONCLUSIVE
    if r.passed >= metric.count and not continuous:
        return MetricPhase.PASSED
    return MetricPhase.RUNNING


def _last(r: MetricResult) -> str:
    """The last measurement, in words, for messages."""
    if r.message:
        return r.message
    return f"last value {r.last_value}" if r.last_value is not None else "no value"


def metric_state(
    metric: Metric,
    result: MetricResult | None,
    started_at: datetime,
    now: datetime,
    *,
    continuous: bool = False,
) -> MetricState:
    """Decide what one metric means for the rollout at ``now``.

    ``started_at`` is when the analysis run started (the analysis step began, or the
    background analysis reached its starting step); ``result`` holds the run's counters
    (``None`` before the first measurement). ``continuous`` is for background analysis:
    the metric never passes, it keeps measuring until the rollout ends.
    """
    r = result if result is not None else MetricResult(name=metric.name)
    phase = (
        r.phase if r.phase is not MetricPhase.RUNNING else _phase(metric, r, continuous=continuous)
    )
    if continuous and phase is MetricPhase.PASSED:
        phase = MetricPhase.RUNNING
    name = metric.name

    if phase is MetricPhase.FAILED:
        message = (
            f"metric {name} failed: {_last(r)} "
            f"({r.failed} Fail verdicts, failureLimit {metric.failure_limit})"
        )
        return MetricState(name, phase, GateAction.ABORT, message, None, r)
    if phase is MetricPhase.ERROR:
        message = (
            f"metric {name} could not be measured: {r.consecutive_errors} consecutive errors "
            f"(consecutiveErrorLimit {metric.consecutive_error_limit}); last: {_last(r)}"
        )
        return MetricState(name, phase, _policy(metric.on_error), message, None, r)
    if phase is MetricPhase.INCONCLUSIVE:
        message = (
            f"metric {name} is inconclusive: {r.inconclusive} Inconclusive verdicts "
            f"(inconclusiveLimit {metric.inconclusive_limit}); last: {_last(r)}"
        )
        return MetricState(name, phase, _policy(metric.on_inconclusive), message, None, r)
    if phase is MetricPhase.PASSED:
        message = f"metric {name} passed: {r.passed} of {metric.count} Pass verdicts"
        return MetricState(name, phase, GateAction.PROCEED, message, None, r)

    if r.last_time is None:
        due = started_at + timedelta(seconds=metric.initial_delay_seconds)
        message = f"metric {name}: first measurement due at {format_time(due)}"
    else:
        due = parse_time(r.last_time) + timedelta(seconds=metric.interval_seconds)
        goal = "measuring continuously" if continuous else f"{r.passed} of {metric.count} Pass"
        message = f"metric {name}: {goal}; last {r.last_verdict}: {_last(r)}"
    return MetricState(name, MetricPhase.RUNNING, GateAction.WAIT, message, due, r)


def _policy(policy: OnLimit) -> GateAction:
    return GateAction.ABORT if policy is OnLimit.ABORT else GateAction.PAUSE


_SEVERITY = {
    MetricPhase.FAILED: 0,
    MetricPhase.ERROR: 1,
    MetricPhase.INCONCLUSIVE: 2,
}


def analysis_state(states: Sequence[MetricState]) -> AnalysisState:
    """Combine the metrics of one analysis run into one decision.

    * Abort if any metric says Abort (a Failed metric is named first, then one whose
      limit policy is Abort);
    * else Pause if any metric reached its error or inconclusive limit (all of them are
      named: "Prometheus is down" and "no data" are both reported);
    * else Proceed when every metric passed;
    * else Wait, due at the earliest due time of the running metrics.

    A run without metrics pauses: an analysis that checks nothing never passes.
    """
    ordered = tuple(states)
    if not ordered:
        return AnalysisState(
            MetricPhase.INCONCLUSIVE, GateAction.PAUSE, "analysis has no metrics", None, ordered
        )
    decided = sorted((s for s in ordered if s.phase in _SEVERITY), key=lambda s: _SEVERITY[s.phase])
    aborting = [s for s in decided if s.action is GateAction.ABORT]
    if aborting:
        first = aborting[0]
        return AnalysisState(first.phase, GateAction.ABORT, first.message, None, ordered)
    if decided:
        message = "; ".join(s.message for s in decided)
        return AnalysisState(decided[0].phase, GateAction.PAUSE, message, None, ordered)
    running = [s for s in ordered if s.phase is MetricPhase.RUNNING]
    if not running:
        names = ", ".join(s.metric for s in ordered)
        return AnalysisState(
            MetricPhase.PASSED, GateAction.PROCEED, f"all metrics passed: {names}", None, ordered
        )
    due = min(s.due_at for s in running if s.due_at is not None)
    message = "; ".join(s.message for s in running)
    return AnalysisState(MetricPhase.RUNNING, GateAction.WAIT, message, due, ordered)


def verdict_changed(before: MetricResult | None, after: MetricResult) -> bool:
    """Whether the last verdict differs from the previous one (worth an Event)."""
    previous = before.last_verdict if before is not None else None
    return previous != after.last_verdict
