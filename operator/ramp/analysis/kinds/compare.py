"""The ``compare`` kind: the canary's ratio against the stable revision's, no threshold."""

from __future__ import annotations

import asyncio
import math

from ramp.analysis.cel import missing_data
from ramp.analysis.kinds.base import Env, Outcome, QueryContext, source_of
from ramp.analysis.prometheus import ProviderError, QueryResult, check_queries, show, single
from ramp.analysis.promql import QueryTemplateError, render
from ramp.api.analysis import Metric, Verdict
from ramp.api.sources import Compare

_QUERY = "compare.prometheus.query"
_COUNT = "compare.prometheus.countQuery"


class CompareMetric:
    """``compare: {prometheus: {address, query, countQuery}, maxIncrease, minCount}``.

    Three queries at once: the ratio for the canary and for the stable revision
    (``{{revision}}`` bound to each), the canary's request count. Fail when
    ``canary - stable > maxIncrease``; Inconclusive below ``minCount`` or without data.
    """

    def __init__(self, env: Env) -> None:
        self.env = env

    def validate(self, metric: Metric, context: QueryContext) -> list[str]:
        source = source_of(metric, Compare).prometheus
        queries = []
        for revision in (context.canary_revision, context.stable_revision):
            bound = context.with_revision(revision or "revision")
            queries += [(source.query, bound, _QUERY), (source.count_query, bound, _COUNT)]
        return check_queries(self.env.config, source.address, queries, context.namespace)

    async def measure(self, metric: Metric, context: QueryContext) -> Outcome:
        compare = source_of(metric, Compare)
        source, client = compare.prometheus, self.env.prometheus
        if not context.canary_revision or not context.stable_revision:
            return Outcome(Verdict.ERROR, "compare needs both a canary and a stable revision")
        try:
            canary_q = render(source.query, context.with_revision(context.canary_revision))
            stable_q = render(source.query, context.with_revision(context.stable_revision))
            count_q = render(source.count_query, context.with_revision(context.canary_revision))
        except QueryTemplateError as error:
            return Outcome(Verdict.ERROR, f"query template: {error}")
        ns, address = context.namespace, source.address
        try:
            canary_q = client.scope(address, canary_q, ns, _QUERY)
            stable_q = client.scope(address, stable_q, ns, _QUERY)
            count_q = client.scope(address, count_q, ns, _COUNT)
        except ProviderError as error:
            return Outcome(Verdict.ERROR, error.message)
        timeout = metric.timeout_seconds
        answers = await asyncio.gather(
            client.query(address, canary_q, timeout, ns),
            client.query(address, stable_q, timeout, ns),
            client.query(address, count_q, timeout, ns),
            return_exceptions=True,
        )
        for answer in answers:
            if isinstance(answer, ProviderError):
                return Outcome(Verdict.ERROR, answer.message, query=canary_q)
            if isinstance(answer, BaseException):
                raise answer
        canary_a, stable_a, count_a = (a for a in answers if isinstance(a, QueryResult))
        try:
            canary = single(canary_a, "canary ratio")
            stable = single(stable_a, "stable ratio")
            count = single(count_a, "canary count")
        except ProviderError as error:
            return Outcome(Verdict.ERROR, error.message, query=canary_q)
        return _judge(compare, canary, stable, count, canary_q)

    def describe(self, metric: Metric, context: QueryContext) -> str:
        source = source_of(metric, Compare).prometheus
        try:
            return render(source.query, context.with_revision(context.canary_revision or ""))
        except QueryTemplateError:
            return source.query

    async def close(self) -> None:
        """Nothing of its own: the shared client is closed by the Measurer."""


def _judge(
    compare: Compare, canary: float | None, stable: float | None, count: float | None, query: str
) -> Outcome:
    shown = f"canary={show(canary)} stable={show(stable)} count={show(count)}"
    if count is None or math.isnan(count) or count < compare.min_count:
        seen = "no data" if count is None else show(count)
        message = f"canary count {seen} is below minCount {compare.min_count:g}"
        return Outcome(Verdict.INCONCLUSIVE, message, value=shown, query=query)
    for name, value in (("canary", canary), ("stable", stable)):
        reason = "query returned no data" if value is None else missing_data(value)
        if reason is not None:
            return Outcome(Verdict.INCONCLUSIVE, f"{name} ratio: {reason}", shown, query)
    assert canary is not None and stable is not None
    increase = canary - stable
    if increase > compare.max_increase:
        message = (
            f"canary {show(canary)} exceeds stable {show(stable)} by {show(increase)} "
            f"> maxIncrease {compare.max_increase:g}"
        )
        return Outcome(Verdict.FAIL, message, value=shown, query=query)
    message = (
        f"canary {show(canary)} vs stable {show(stable)}: increase {show(increase)} "
        f"<= maxIncrease {compare.max_increase:g}"
    )
    return Outcome(Verdict.PASS, message, value=shown, query=query)
