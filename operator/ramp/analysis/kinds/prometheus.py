"""The ``prometheus`` kind: one instant query, judged by the metric's CEL conditions."""

from __future__ import annotations

from ramp.analysis.cel import judge
from ramp.analysis.kinds.base import Env, Outcome, QueryContext, source_of
from ramp.analysis.prometheus import ProviderError, check_queries
from ramp.analysis.promql import QueryTemplateError, render
from ramp.api.analysis import Metric, Verdict
from ramp.api.sources import PrometheusSource


class PrometheusMetric:
    """``prometheus: {address, query, timeout}``: ``result`` is the query's answer (a
    double for one sample, a list for several); an empty answer or NaN is Inconclusive."""

    def __init__(self, env: Env) -> None:
        self.env = env

    def validate(self, metric: Metric, context: QueryContext) -> list[str]:
        source = source_of(metric, PrometheusSource)
        queries = [(source.query, context, "prometheus.query")]
        return check_queries(self.env.config, source.address, queries, context.namespace)

    async def measure(self, metric: Metric, context: QueryContext) -> Outcome:
        source = source_of(metric, PrometheusSource)
        client = self.env.prometheus
        try:
            query = render(source.query, context)
        except QueryTemplateError as error:
            return Outcome(Verdict.ERROR, f"query template: {error}")
        try:
            query = client.scope(source.address, query, context.namespace, "prometheus.query")
        except ProviderError as error:
            return Outcome(Verdict.ERROR, error.message)
        try:
            answer = await client.query(
                source.address, query, metric.timeout_seconds, context.namespace
            )
        except ProviderError as error:
            return Outcome(Verdict.ERROR, error.message, query=query)
        judgement = judge(answer.result, metric.success_condition, metric.failure_condition)
        return Outcome(judgement.verdict, judgement.message, value=answer.text, query=query)

    def describe(self, metric: Metric, context: QueryContext) -> str:
        source = source_of(metric, PrometheusSource)
        try:
            return render(source.query, context)
        except QueryTemplateError:
            return source.query

    async def close(self) -> None:
        """Nothing of its own: the shared client is closed by the Measurer."""
