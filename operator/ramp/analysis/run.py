"""One reconcile's worth of analysis work for the shell: check metrics, take due measurements.

The shell calls :func:`check_metrics` once when an analysis run starts (to report a bad
spec at once instead of after several Error verdicts), then on every reconcile
:func:`measure_due`, stores the returned counters and measurements in the status, and
lets the pure core decide (:func:`ramp.core.verdicts.metric_state` /
:func:`~ramp.core.verdicts.analysis_state`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ramp.analysis.cel import check_condition
from ramp.analysis.prometheus import PrometheusProvider, ProviderConfig, ProviderError, scope_query
from ramp.analysis.promql import QueryContext, QueryTemplateError, render
from ramp.api.analysis import Measurement, Metric, MetricResult
from ramp.core.verdicts import metric_state, record


def check_metrics(
    metrics: Sequence[Metric], context: QueryContext, config: ProviderConfig
) -> list[str]:
    """Problems that make metrics unusable, each naming its metric (empty when fine).

    Conditions must be valid CEL over ``result``, queries must render with the context
    (unknown placeholders, unsafe values), and addresses must be on the allow-list.
    """
    problems: list[str] = []
    for metric in metrics:
        for field_name, condition in (
            ("successCondition", metric.success_condition),
            ("failureCondition", metric.failure_condition),
        ):
            if condition is not None:
                problem = check_condition(condition)
                if problem is not None:
                    problems.append(f"metric {metric.name}: {field_name}: {problem}")
        queries: list[tuple[str, QueryContext, str]] = []
        if metric.prometheus is not None:
            queries.append((metric.prometheus.query, context, "prometheus.query"))
        if metric.compare is not None:
            for revision in (context.canary_revision, context.stable_revision):
                bound = context.with_revision(revision or "revision")
                queries += [
                    (metric.compare.prometheus.query, bound, "compare.prometheus.query"),
                    (metric.compare.prometheus.count_query, bound, "compare.prometheus.countQuery"),
                ]
        refusal = config.refusal(metric.address, context.namespace)
        for query, bound, where in queries:
            try:
                rendered = render(query, bound)
                if refusal is None:  # scoped to the namespace where the address enforces it
                    scope_query(config, metric.address, rendered, context.namespace, where)
            except QueryTemplateError as error:
                problems.append(f"metric {metric.name}: query: {error}")
                break
            except ProviderError as error:
                problems.append(f"metric {metric.name}: {error.message}")
                break
        if refusal is not None:
            problems.append(f"metric {metric.name}: {refusal}")
    return problems


@dataclass(frozen=True)
class MeasuredRun:
    """What :func:`measure_due` did: new measurements (oldest first) and all counters."""

    measurements: list[Measurement] = field(default_factory=list)
    results: dict[str, MetricResult] = field(default_factory=dict)


async def measure_due(
    provider: PrometheusProvider,
    metrics: Sequence[Metric],
    results: Mapping[str, MetricResult],
    started_at: datetime,
    now: datetime,
    context: QueryContext,
    *,
    analysis: str,
    continuous: bool = False,
) -> MeasuredRun:
    """Measure, concurrently, every metric that is still running and due at ``now``.

    ``results`` are the run's counters from the status (by metric name); the returned
    ``results`` hold every metric's counters, updated with the new measurements.
    """
    due = due_metrics(metrics, results, started_at, now, continuous=continuous)
    taken = await asyncio.gather(
        *(provider.measure(metric, context, analysis=analysis) for metric in due)
    )
    return fold(metrics, results, list(zip(due, taken, strict=True)), continuous=continuous)


def due_metrics(
    metrics: Sequence[Metric],
    results: Mapping[str, MetricResult],
    started_at: datetime,
    now: datetime,
    *,
    continuous: bool = False,
) -> list[Metric]:
    """The metrics that are still running and due for a measurement at ``now``."""
    return [
        metric
        for metric in metrics
        if metric_state(
            metric, results.get(metric.name), started_at, now, continuous=continuous
        ).is_due(now)
    ]


def fold(
    metrics: Sequence[Metric],
    results: Mapping[str, MetricResult],
    taken: Sequence[tuple[Metric, Measurement]],
    *,
    continuous: bool = False,
) -> MeasuredRun:
    """Every metric's counters (by name) with the ``taken`` measurements recorded."""
    updated = {m.name: results[m.name] for m in metrics if m.name in results}
    for metric, measurement in taken:
        updated[metric.name] = record(
            metric, updated.get(metric.name), measurement, continuous=continuous
        )
    return MeasuredRun([m for _, m in taken], updated)
