"""The shell's measurement fold for the simulated clusters: what ``Gates.measure`` does with
the real ``due_metrics`` and ``fold`` (``ramp.analysis.run``), minus the scheduler and the
providers; the measurement a due metric gets is the caller's."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime

from ramp.analysis.run import due_metrics, fold
from ramp.api.analysis import Measurement, Metric
from ramp.api.rollout import AnalysisRun, Rollout, RolloutStatus
from ramp.core.gating import BACKGROUND
from ramp.core.resolve import ResolvedAnalysis
from ramp.core.status import MAX_MEASUREMENTS
from ramp.core.verdicts import format_time, parse_time

Measure = Callable[[Metric, str, str], Measurement]
"""``measure(metric, analysis, revision)``: the measurement a due metric gets now."""


def measure_due_now(
    rollout: Rollout,
    resolved: Mapping[str, ResolvedAnalysis | str],
    now: datetime,
    measure: Measure,
) -> Rollout:
    """``rollout`` with every due metric of every resolved run measured and folded into
    its run's counters and the status' latest measurements."""
    status = (rollout.status or RolloutStatus()).model_copy(deep=True)
    canary = status.canary_revision or ""
    by_name = {r.name: r for r in status.analysis_runs or [] if r.revision == canary}
    taken: list[Measurement] = []
    for name, analysis in resolved.items():
        if not isinstance(analysis, ResolvedAnalysis):
            continue
        run = by_name.get(name) or AnalysisRun(
            name=name, revision=canary, started_at=format_time(now)
        )
        before = {m.name: m for m in run.metrics}
        continuous = name == BACKGROUND
        due = due_metrics(
            analysis.metrics, before, parse_time(run.started_at), now, continuous=continuous
        )
        measured = fold(
            analysis.metrics, before, [(m, measure(m, name, canary)) for m in due],
            continuous=continuous,
        )  # fmt: skip
        run.metrics = [
            measured.results[m.name] for m in analysis.metrics if m.name in measured.results
        ]
        by_name[name] = run
        taken += measured.measurements
    status.analysis_runs = list(by_name.values()) or None
    if taken:
        status.measurements = [*(status.measurements or []), *taken][-MAX_MEASUREMENTS:]
    return rollout.model_copy(update={"status": status})
