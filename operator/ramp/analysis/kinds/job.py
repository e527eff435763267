"""The ``job`` kind: a Job per measurement; how it ended is the verdict, and nothing the
infrastructure did is ever a Pass (:mod:`ramp.analysis.jobcheck` has the table)."""

from __future__ import annotations

from datetime import UTC, datetime

from ramp.analysis.jobcheck import job_name, run_job
from ramp.analysis.kinds.base import Env, Outcome, QueryContext, source_of
from ramp.api.analysis import Metric, Verdict
from ramp.api.sources import JobSource


class JobMetric:
    """``job: {activeDeadlineSeconds, template}``."""

    def __init__(self, env: Env) -> None:
        self.env = env

    def validate(self, metric: Metric, context: QueryContext) -> list[str]:
        source_of(metric, JobSource)  # the API's rules are the whole check
        return []

    async def measure(self, metric: Metric, context: QueryContext) -> Outcome:
        source = source_of(metric, JobSource)
        jobs = getattr(self.env, "jobs", None)
        if jobs is None:
            return Outcome(Verdict.ERROR, "job checks need the operator's access to Jobs")
        if context.run is None:
            return Outcome(Verdict.ERROR, "job: no measurement identity (operator bug)")
        name, value, verdict, message = await run_job(
            jobs, source, context, context.run, metric.name, lambda: datetime.now(UTC)
        )
        return Outcome(verdict, message, value=value, query=f"job {name}")

    def describe(self, metric: Metric, context: QueryContext) -> str:
        run = context.run
        if run is None:
            return "job"
        name = job_name(
            context.rollout,
            run.uid,
            context.canary_revision or "",
            run.analysis,
            metric.name,
            run.attempt,
            run.started,
        )
        return f"job {name}"

    async def close(self) -> None:
        """Nothing held: the Jobs are the API server's."""
