"""Analysis gates in the shell: resolve templates, take due measurements, feed the core.

A reconcile plans once with a :class:`Gates` view that only *notes* which analysis runs
the planner consults (``step-N`` for an analysis step, ``background``); the shell then
resolves those runs (AnalysisTemplates from the API, the allow-list check), takes the
measurements that are due (async HTTP to Prometheus), folds them into the run counters
kept in the status, and plans again with the updated status. The decision itself —
pass, wait, pause or abort — is the pure core's (:mod:`ramp.core.verdicts`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ramp.analysis.prometheus import PrometheusProvider, ProviderConfig
from ramp.analysis.promql import QueryContext
from ramp.analysis.run import check_metrics, measure_due
from ramp.api.analysis import (
    AnalysisRef,
    AnalysisTemplateSpec,
    Measurement,
    MetricPhase,
    Verdict,
)
from ramp.api.rollout import AnalysisRun, Rollout, RolloutStatus
from ramp.core.plan import Event, GateResult
from ramp.core.resolve import AnalysisSpecError, ResolvedAnalysis, resolve_analysis
from ramp.core.verdicts import (
    GateAction,
    analysis_state,
    format_time,
    metric_state,
    parse_time,
    verdict_changed,
)

log = logging.getLogger(__name__)

MAX_MEASUREMENTS = 64
BACKGROUND = "background"

_OUTCOME: dict[MetricPhase, Any] = {
    MetricPhase.PASSED: "Passed",
    MetricPhase.RUNNING: "Running",
    MetricPhase.FAILED: "Failed",
    MetricPhase.INCONCLUSIVE: "Inconclusive",
    MetricPhase.ERROR: "Error",
}

TemplateReader = Callable[[str, str], dict[str, Any] | None]
"""``read(namespace, name)``: an AnalysisTemplate object, or None when absent."""


@dataclass
class GateView:
    """The planner's window on analysis for one reconcile (pure once resolved)."""

    rollout: Rollout
    now: datetime
    resolved: dict[str, ResolvedAnalysis | str] = field(default_factory=dict)
    requested: dict[str, AnalysisRef] = field(default_factory=dict)

    def run_record(self, name: str) -> AnalysisRun | None:
        status = self.rollout.status or RolloutStatus()
        for run in status.analysis_runs or []:
            if run.name == name and run.revision == status.canary_revision:
                return run
        return None

    def __call__(self, name: str, ref: AnalysisRef) -> GateResult:
        self.requested[name] = ref
        resolved = self.resolved.get(name)
        if resolved is None:
            return GateResult("Running", "starting analysis", next_check_in=0.0)
        if isinstance(resolved, str):
            return GateResult("Error", resolved)
        run = self.run_record(name)
        started = parse_time(run.started_at) if run else self.now
        results = {m.name: m for m in run.metrics} if run else {}
        states = [
            metric_state(
                metric, results.get(metric.name), started, self.now, continuous=name == BACKGROUND
            )
            for metric in resolved.metrics
        ]
        state = analysis_state(states)
        due = (
            max((state.due_at - self.now).total_seconds(), 0.0)
            if state.due_at is not None
            else None
        )
        return GateResult(
            _OUTCOME[state.phase],
            state.message,
            next_check_in=due,
            abort=state.action is GateAction.ABORT,
        )


class Gates:
    """Resolves and measures the analysis runs a plan consults."""

    def __init__(self, config: ProviderConfig | None, read_template: TemplateReader) -> None:
        self.config = config or ProviderConfig()
        self.read_template = read_template
        self._provider: PrometheusProvider | None = None
        self.observers: list[Callable[[Measurement], None]] = []
        """Called for every measurement taken (the operator's metrics)."""

    @property
    def provider(self) -> PrometheusProvider:
        if self._provider is None:
            self._provider = PrometheusProvider(self.config)
        return self._provider

    async def close(self) -> None:
        if self._provider is not None:
            await self._provider.close()

    def resolve(self, view: GateView, namespace: str) -> None:
        """Resolve every requested run (blocking API reads: call from a thread)."""
        for name, ref in view.requested.items():
            templates: dict[str, AnalysisTemplateSpec] = {}
            try:
                for tref in ref.templates:
                    obj = self.read_template(namespace, tref.template_name)
                    if obj is not None:
                        templates[tref.template_name] = AnalysisTemplateSpec.model_validate(
                            obj.get("spec") or {}
                        )
                resolved = resolve_analysis(ref, templates)
            except AnalysisSpecError as exc:
                view.resolved[name] = f"analysis {name}: {exc}"
                continue
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                view.resolved[name] = (
                    f"analysis {name}: AnalysisTemplate spec.{where}: {err['msg']}"
                )
                continue
            context = self.context(view.rollout, namespace, resolved.args)
            problems = check_metrics(resolved.metrics, context, self.config)
            if problems:
                view.resolved[name] = f"analysis {name} refused: " + "; ".join(problems)
            else:
                view.resolved[name] = resolved

    @staticmethod
    def context(rollout: Rollout, namespace: str, args: Mapping[str, str]) -> QueryContext:
        status = rollout.status or RolloutStatus()
        return QueryContext(
            rollout=str(rollout.metadata.get("name", "")),
            namespace=namespace,
            canary_revision=status.canary_revision,
            stable_revision=status.stable_revision,
            args=dict(args),
        )

    async def measure(self, view: GateView, namespace: str) -> tuple[RolloutStatus, list[Event]]:
        """Take what is due; return the status with updated runs and measurements."""
        status = (view.rollout.status or RolloutStatus()).model_copy(deep=True)
        runs = {
            r.name: r for r in status.analysis_runs or [] if r.revision == status.canary_revision
        }
        new_measurements: list[Measurement] = []
        events: list[Event] = []
        for name, resolved in view.resolved.items():
            if isinstance(resolved, str):
                continue
            run = runs.get(name) or AnalysisRun(
                name=name,
                revision=status.canary_revision or "",
                started_at=format_time(view.now),
            )
            before = {m.name: m for m in run.metrics}
            measured = await measure_due(
                self.provider,
                resolved.metrics,
                before,
                parse_time(run.started_at),
                view.now,
                self.context(view.rollout, namespace, resolved.args),
                analysis=name,
                continuous=name == BACKGROUND,
            )
            run.metrics = [
                measured.results[m.name] for m in resolved.metrics if m.name in measured.results
            ]
            runs[name] = run
            for measurement in measured.measurements:
                new_measurements.append(measurement)
                for observer in self.observers:
                    observer(measurement)
                after = measured.results[measurement.metric]
                if verdict_changed(before.get(measurement.metric), after):
                    bad = measurement.verdict is not Verdict.PASS
                    value = measurement.value if measurement.value is not None else "no value"
                    events.append(
                        Event(
                            "Warning" if bad else "Normal",
                            f"Analysis{measurement.verdict.value}",
                            f"{name} metric {measurement.metric}: {measurement.verdict.value} "
                            f"(value {value}): {measurement.message or ''}",
                        )
                    )
        status.analysis_runs = list(runs.values()) or None
        if new_measurements:
            kept = [*(status.measurements or []), *new_measurements]
            status.measurements = kept[-MAX_MEASUREMENTS:]
        return status, events


def provider_config(
    allow: list[str], token_secret: str | None, read_secret: Callable[[str, str], Any]
) -> ProviderConfig:
    """The Prometheus settings from the operator's flags and environment.

    ``token_secret`` is ``NAMESPACE/NAME`` of a Secret whose ``token`` key holds the
    bearer token; ``read_secret(namespace, name)`` returns the Secret (its ``data``).
    Errors name the flag and the Secret, never the token.
    """
    from ramp.analysis.prometheus import parse_secret_ref, token_from_secret_data

    token = None
    if token_secret:
        namespace, name = parse_secret_ref(token_secret)
        try:
            secret = read_secret(namespace, name)
        except Exception as exc:
            raise SystemExit(
                f"--prometheus-token-secret {namespace}/{name}: cannot read the Secret "
                f"({getattr(exc, 'reason', type(exc).__name__)})"
            ) from None
        try:
            token = token_from_secret_data(getattr(secret, "data", None))
        except ValueError as exc:
            raise SystemExit(f"--prometheus-token-secret {namespace}/{name}: {exc}") from None
    try:
        return ProviderConfig.from_env_and_args(allow, token=token)
    except ValueError as exc:
        raise SystemExit(f"--prometheus-allow: {exc}") from None
