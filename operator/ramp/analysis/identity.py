"""The identity of the next measurement of a metric (:class:`~ramp.analysis.promql.
MeasurementId`), from the Rollout and the run's counters in its status alone: an operator
that restarts (or a new leader) computes the same one, so a check finds the Job, or sends
the idempotency key, of the measurement in flight instead of starting another."""

from __future__ import annotations

from dataclasses import replace

from ramp.analysis.promql import MeasurementId, QueryContext
from ramp.api.analysis import MetricResult
from ramp.api.rollout import AnalysisRun, Rollout


def services(rollout: Rollout) -> dict[str, str]:
    """The Service names a check is handed, by role (``canary``, ``stable``, ``active``,
    ``preview``), from the Rollout's strategy."""
    strategy = rollout.spec.strategy
    canary, bluegreen = strategy.canary, strategy.blue_green
    found = {
        "canary": canary.canary_service if canary else None,
        "stable": canary.stable_service if canary else None,
        "active": bluegreen.active_service if bluegreen else None,
        "preview": bluegreen.preview_service if bluegreen else None,
    }
    return {role: name for role, name in found.items() if name}


def identified(
    context: QueryContext, rollout: Rollout, run: AnalysisRun, result: MetricResult | None
) -> QueryContext:
    """``context`` with the identity of the metric's next measurement in ``run``."""
    measured = result.measured if result is not None else 0
    return replace(
        context,
        run=MeasurementId(
            uid=str(rollout.metadata.get("uid") or ""),
            analysis=run.name,
            started=run.started_at,
            attempt=measured + 1,
            services=services(rollout),
        ),
    )
