"""One reconcile's worth of analysis work for the shell: check metrics, take due measurements.

The shell calls :func:`check_metrics` once when an analysis run starts (to report a bad
spec at once instead of after several Error verdicts), then on every reconcile
:func:`measure_due`, stores the returned counters and measurements in the status, and
lets the pure core decide (:func:`ramp.core.verdicts.metric_state` /
:func:`~ramp.core.verdicts.analysis_state`).
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import TracebackType
from typing import Self

from ramp.analysis.cel import check_condition
from ramp.analysis.jobcheck import JobApi
from ramp.analysis.kinds import PROVIDERS
from ramp.analysis.kinds.base import MetricProvider, Outcome, ProviderFactory
from ramp.analysis.prometheus import PrometheusClient, ProviderConfig
from ramp.analysis.promql import QueryContext
from ramp.api.analysis import Measurement, Metric, MetricResult, Verdict
from ramp.core.verdicts import format_time, metric_state, record

log = logging.getLogger("ramp.analysis.run")


def _now() -> datetime:
    return datetime.now(UTC)


class Measurer:
    """Validates, measures and describes metrics of every kind through the registered
    providers (:mod:`ramp.analysis.kinds`). One per operator; use as an async context
    manager (or call :meth:`close`) so the providers' connections are closed.

    It is the providers' shared :class:`~ramp.analysis.kinds.base.Env`: ``config`` (the
    cluster admin's settings, replaced on a token rotation) and the Prometheus client.
    ``clock`` stamps measurements (UTC); tests pass their own.
    """

    def __init__(
        self,
        config: ProviderConfig,
        *,
        clock: Callable[[], datetime] = _now,
        providers: Mapping[str, ProviderFactory] = PROVIDERS,
    ) -> None:
        self._config = config
        self._clock = clock
        self._factories = providers
        self._providers: dict[str, MetricProvider] = {}
        self._prometheus = PrometheusClient(config)
        self.read_secret: Callable[[str, str, str], str] | None = None
        """``(namespace, name, key)``: a value of a Secret of a Rollout's namespace (the
        web checks' headers, the webhooks' signing keys); given by the runtime."""
        self.jobs: JobApi | None = None
        """Creates and reads the job checks' Jobs; given by the runtime."""

    @property
    def config(self) -> ProviderConfig:
        return self._config

    @property
    def prometheus(self) -> PrometheusClient:
        return self._prometheus

    def set_config(self, config: ProviderConfig) -> None:
        """Use another config from now on (e.g. a rotated token)."""
        self._config = config
        self._prometheus.set_config(config)

    def provider(self, metric: Metric) -> MetricProvider:
        """The provider of the metric's kind (built on first use)."""
        kind = metric.kind
        found = self._providers.get(kind)
        if found is None:
            factory = self._factories.get(kind)
            if factory is None:
                raise LookupError(f"no metric provider is registered for {kind!r}")
            found = self._providers[kind] = factory(self)
        return found

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every provider and the shared client (they reopen on the next use)."""
        for provider in self._providers.values():
            await provider.close()
        await self._prometheus.close()

    def check(self, metrics: Sequence[Metric], context: QueryContext) -> list[str]:
        """Problems that make metrics unusable, each naming its metric (empty when fine):
        conditions that are not valid CEL over ``result``, then what the metric's provider
        finds (queries that do not render, addresses not allowed, ...)."""
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
            try:
                found = self.provider(metric).validate(metric, context)
            except LookupError as error:
                found = [str(error)]
            problems += [f"metric {metric.name}: {problem}" for problem in found]
        return problems

    async def measure(
        self, metric: Metric, context: QueryContext, *, analysis: str | None = None
    ) -> Measurement:
        """Measure ``metric`` once and judge it; never raises for a measurement problem.

        ``analysis`` labels the run in the record (e.g. ``step-2``, ``background``).
        """
        try:
            outcome = await self.provider(metric).measure(metric, context)
        except Exception as error:  # the operator must survive any surprise
            trace = "".join(traceback.format_exception(error))
            log.error(
                "unexpected error measuring metric %s: %s", metric.name, self.config.redact(trace)
            )
            message = f"internal error while measuring ({type(error).__name__}; see the log)"
            outcome = Outcome(Verdict.ERROR, message, query=self.describe(metric, context))
        return self.record(metric, context, outcome, analysis)

    def record(
        self, metric: Metric, context: QueryContext, outcome: Outcome, analysis: str | None
    ) -> Measurement:
        """The decision record of ``outcome`` (secrets scrubbed)."""
        value = outcome.value
        return Measurement(
            metric=metric.name,
            verdict=outcome.verdict,
            time=format_time(self._clock()),
            value=None if value is None else self.config.redact(value),
            query=outcome.query,
            message=self.config.redact(f"{metric.name}: {outcome.message}"),
            revision=context.canary_revision,
            analysis=analysis,
        )

    def describe(self, metric: Metric, context: QueryContext) -> str | None:
        """What the metric asks, for a record without an outcome (None if unknown)."""
        try:
            return self.provider(metric).describe(metric, context)
        except Exception:  # a record must still be written
            log.exception("describing metric %s failed", metric.name)
            return None


def check_metrics(
    metrics: Sequence[Metric], context: QueryContext, config: ProviderConfig
) -> list[str]:
    """:meth:`Measurer.check` with ``config`` (no connection is opened)."""
    return Measurer(config).check(metrics, context)


@dataclass(frozen=True)
class MeasuredRun:
    """What :func:`measure_due` did: new measurements (oldest first) and all counters."""

    measurements: list[Measurement] = field(default_factory=list)
    results: dict[str, MetricResult] = field(default_factory=dict)


async def measure_due(
    provider: Measurer,
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
