"""The ``web`` kind: an HTTP(S) request; the JSON answer at ``jsonPath`` is ``result`` for
the metric's CEL conditions (:mod:`ramp.analysis.web` has the verdict table)."""

from __future__ import annotations

from ramp.analysis.checkhttp import CheckHttp, render_url
from ramp.analysis.kinds.base import Env, Outcome, QueryContext, source_of
from ramp.analysis.promql import QueryTemplateError
from ramp.analysis.web import check_web, measure_web
from ramp.api.analysis import Metric
from ramp.api.sources import WebSource


class WebMetric:
    """``web: {url, method, headers, body, jsonPath, timeout}``."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self._http: CheckHttp | None = None

    @property
    def http(self) -> CheckHttp:
        if self._http is None:
            self._http = CheckHttp(self.env.config)
        self._http.config = self.env.config
        return self._http

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
        try:
            url = render_url(source.url, context)
        except QueryTemplateError:
            url = source.url
        return f"{source.method} {url.split('?', 1)[0]}"

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
