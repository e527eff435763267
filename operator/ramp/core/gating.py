"""Analysis gates as data: which runs are in play, and their state from the counters. Pure.

The shell resolves the runs :func:`ramp.core.plan.runs_in_play` names (templates,
allow-list), takes the measurements that are due and folds them into the status *before*
planning; the planner then judges each run with :func:`evaluate` from that data alone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from ramp.api.analysis import MetricPhase
from ramp.api.rollout import AnalysisRun, RolloutStatus
from ramp.core.model import GateResult
from ramp.core.resolve import ResolvedAnalysis
from ramp.core.verdicts import GateAction, analysis_state, metric_state, parse_time

BACKGROUND = "background"
PRE, POST = "pre-promotion", "post-promotion"

_OUTCOME: dict[MetricPhase, Any] = {
    MetricPhase.PASSED: "Passed",
    MetricPhase.RUNNING: "Running",
    MetricPhase.FAILED: "Failed",
    MetricPhase.INCONCLUSIVE: "Inconclusive",
    MetricPhase.ERROR: "Error",
}


def step_run(index: int) -> str:
    """The run name of the analysis step at ``index`` (counting from 0)."""
    return f"step-{index + 1}"


def run_record(status: RolloutStatus, name: str) -> AnalysisRun | None:
    for run in status.analysis_runs or []:
        if run.name == name and run.revision == status.canary_revision:
            return run
    return None


def evaluate(
    name: str,
    resolved: ResolvedAnalysis | str | None,
    status: RolloutStatus,
    now: datetime,
) -> GateResult:
    """The state of run ``name`` from its resolved metrics and the counters in status."""
    if resolved is None:
        return GateResult("Running", "starting analysis", next_check_in=0.0)
    if isinstance(resolved, str):
        return GateResult("Error", resolved)
    run = run_record(status, name)
    started = parse_time(run.started_at) if run else now
    results = {m.name: m for m in run.metrics} if run else {}
    states = [
        metric_state(metric, results.get(metric.name), started, now, continuous=name == BACKGROUND)
        for metric in resolved.metrics
    ]
    state = analysis_state(states)
    due = max((state.due_at - now).total_seconds(), 0.0) if state.due_at is not None else None
    return GateResult(
        _OUTCOME[state.phase],
        state.message,
        next_check_in=due,
        abort=state.action is GateAction.ABORT,
    )
