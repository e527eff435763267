"""The ``web`` kind: an HTTP(S) request; the JSON answer at ``jsonPath`` is ``result`` for
the metric's CEL conditions (:mod:`ramp.analysis.web` has the verdict table)."""

from __future__ import annotations

from ramp.analysis.kinds.base import Outcome, QueryContext, source_of
from ramp.analysis.kinds.http import HttpKind
from ramp.analysis.web import check_web, measure_web
from ramp.api.analysis import Metric
from ramp.api.sources import WebSource


class WebMetric(HttpKind):
    """``web: {url, method, headers, body, jsonPath, timeout}``."""

    def validate(self, metric: Metric, context: QueryContext) -> list[str]:
        return check_web(source_of(metric, WebSource), context, self.env.config)

    async def measure(self, metric: Metric, context: QueryContext) -> Outcome:
        source = source_of(metric, WebSource)
        secrets = getattr(self.env, "read_secret", None)
        url, value, verdict, message = await measure_web(
            self.http, metric, source, context, secrets
        )
        return Outcome(verdict, message, value=value, query=url)

    def describe(self, metric: Metric, context: QueryContext) -> str:
        source = source_of(metric, WebSource)
        return self.described(source.method, source.url, context)
