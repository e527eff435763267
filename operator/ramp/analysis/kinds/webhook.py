"""The ``webhook`` kind: a signed CloudEvent POSTed to a hook; its JSON answer is the
verdict, and "accepted, later" (202) is not one (:mod:`ramp.analysis.webhook`)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from ramp.analysis.kinds.base import Outcome, QueryContext, source_of
from ramp.analysis.kinds.http import HttpKind
from ramp.analysis.webhook import check_webhook, measure_webhook
from ramp.api.analysis import Metric, Verdict
from ramp.api.sources import WebhookSource
from ramp.core.verdicts import format_time


class WebhookMetric(HttpKind):
    """``webhook: {url, signingSecret, data, timeout}``."""

    def validate(self, metric: Metric, context: QueryContext) -> list[str]:
        return check_webhook(source_of(metric, WebhookSource), context, self.env.config)

    async def measure(self, metric: Metric, context: QueryContext) -> Outcome:
        source = source_of(metric, WebhookSource)
        run = context.run
        if run is None:
            return Outcome(Verdict.ERROR, "webhook: no measurement identity (operator bug)")
        url, event_id, verdict, message = await measure_webhook(
            self.http,
            metric,
            source,
            context,
            getattr(self.env, "read_secret", None),
            analysis=run.analysis,
            uid=run.uid,
            attempt=run.attempt,
            now=format_time(datetime.now(UTC)),
            timestamp=str(int(time.time())),
        )
        suffix = f" (event {event_id})" if event_id else ""
        return Outcome(verdict, message + suffix, query=url)

    def describe(self, metric: Metric, context: QueryContext) -> str:
        source = source_of(metric, WebhookSource)
        return self.described("POST", source.url, context)
