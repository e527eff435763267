"""The model-based machine with check metrics (issue 24): web, job and webhook metrics whose
measurements are slow, hang, answer any of the four verdicts, and an operator that restarts
while a check is in flight.

:class:`SlowMeasurementMachine` (every rule of the canary machine, the REAL shell's
measurement path with drawn latencies) with the Rollout's metrics turned into checks (a
``job`` with its deadline, a ``web`` request, a signed ``webhook``), and one rule more:
``restart_during_check`` replaces the shell (a new operator: its scheduler and everything
in flight are gone). Besides the oracle's invariants, after every step:

(q) no check outcome other than Pass lets a step complete: every Pass in the status is
    one the checks answered (none invented from a slow, hung, Inconclusive, Error or lost
    measurement), and the oracle's (a) holds: an analysis step is passed only with a
    Passed run;
(r) a restarted operator measures the check that was in flight under the same identity
    (:class:`~ramp.analysis.promql.MeasurementId`: the same Job name, the same idempotency
    key), so it finds the same Job and never starts a second one.
"""

from __future__ import annotations

import copy
import os
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, invariant, rule

from model.measure_shell import RealGates, SimProvider
from model.sim import Cluster, Config, Violation, metric, template
from model.test_model_based import VERDICTS, configs
from model.test_model_measure import LATENCIES, SlowMeasurementMachine
from model.test_regressions import drive, roll_to, steady
from ramp.analysis.jobcheck import job_name
from ramp.analysis.kinds.base import Outcome
from ramp.analysis.promql import MeasurementId, QueryContext
from ramp.api.analysis import Metric, Verdict
from ramp.api.labels import revision_hash

CHECKS: dict[str, dict[str, Any]] = {
    "job": {
        "job": {
            "activeDeadlineSeconds": 20,
            "template": {"spec": {"containers": [{"name": "smoke", "image": "smoke:1"}]}},
        }
    },
    "web": {
        "web": {"url": "http://prometheus:9090/health", "jsonPath": "ok"},
        "successCondition": "result == 1.0",
    },
    "webhook": {
        "webhook": {
            "url": "http://prometheus:9090/hook",
            "signingSecret": {"name": "hook", "key": "key"},
        }
    },
}


def as_check(metric: dict[str, Any], kind: str) -> dict[str, Any]:
    """The same metric (schedule, limits, policies) reading a check instead of Prometheus."""
    out = {
        k: v
        for k, v in metric.items()
        if k not in ("prometheus", "successCondition", "failureCondition")
    }
    return {**out, **copy.deepcopy(CHECKS[kind])}


def with_checks(cfg: Config, kind: str) -> Config:
    steps = [
        {"analysis": {"metrics": [as_check(m, kind) for m in s["analysis"]["metrics"]]}}
        if "analysis" in s
        else s
        for s in cfg.steps
    ]
    background = cfg.background
    if background is not None:
        background = {**background, "metrics": [as_check(m, kind) for m in background["metrics"]]}
    return replace(cfg, steps=steps, background=background)


def install(shell: RealGates, provider: SimProvider) -> None:
    """``provider`` answers every kind in the shell's real Measurer (built on first use)."""
    shell.provider = provider
    shell.gates.provider._providers.clear()


class CheckProvider(SimProvider):
    """The simulated checks: :class:`SimProvider`'s latencies and verdicts, with a log of
    what was asked (the identities) and answered (the Pass verdicts)."""

    def __init__(self, shell: RealGates, machine: CheckMachine) -> None:
        super().__init__(shell)
        self.machine = machine

    async def measure(self, metric: Metric, context: QueryContext) -> Outcome:
        self.machine.asked(metric, context)
        outcome = await super().measure(metric, context)
        if outcome.verdict is Verdict.PASS and context.run is not None:
            key = (context.canary_revision, context.run.analysis, metric.name)
            self.machine.passes[key] += 1
        return outcome


class CheckMachine(SlowMeasurementMachine):
    kind: str = "job"

    @initialize(
        cfg=configs(),
        start_rollout=st.sampled_from([True, True, True, False]),
        verdict=VERDICTS,
        delay=st.sampled_from([2.0, 2.0, 15.0, None]),
        latency=LATENCIES,
        kind=st.sampled_from(list(CHECKS)),
    )
    def start(  # replaces the parent's initialize rule
        self,
        cfg: Config,
        start_rollout: bool,
        verdict: Verdict,
        delay: float | None,
        latency: float | None,
        kind: str = "job",
    ) -> None:
        self.kind = kind
        self.passes: Counter[tuple[str | None, str | None, str]] = Counter()
        self.in_flight: dict[tuple[str, str, str], MeasurementId] = {}
        """Before a restart: the identity of each check then in flight."""
        SlowMeasurementMachine.start(
            self, with_checks(cfg, kind), start_rollout, verdict, delay, latency
        )
        self._install(self.shell)

    def _install(self, shell: RealGates | None) -> None:
        assert shell is not None
        install(shell, CheckProvider(shell, self))

    def asked(self, metric: Metric, context: QueryContext) -> None:
        """(r): a check in flight at a restart is asked again under the same identity."""
        run = context.run
        if run is None:
            raise Violation(f"(r) check {metric.name} measured without an identity")
        key = (context.canary_revision or "", run.analysis, metric.name)
        before = self.in_flight.pop(key, None)
        if before is not None and before.started == run.started and before != run:
            raise Violation(
                f"(r) after a restart, check {metric.name} of {run.analysis} is measured as "
                f"{self._job(context, metric, run)} instead of "
                f"{self._job(context, metric, before)}: a second Job"
            )

    @staticmethod
    def _job(context: QueryContext, metric: Metric, run: MeasurementId) -> str:
        return job_name(
            context.rollout,
            run.uid,
            context.canary_revision or "",
            run.analysis,
            metric.name,
            run.attempt,
            run.started,
        )

    @rule()
    def restart_during_check(self) -> None:
        """The operator restarts: a new shell, nothing in flight survives."""
        old = self.shell
        assert old is not None
        for waiting in old.provider.waiting:
            run = waiting.context.run
            if run is not None and not waiting.future.done():
                key = (waiting.context.canary_revision or "", run.analysis, waiting.metric.name)
                self.in_flight[key] = run
        old.close()
        self.shell = RealGates(old.latency)
        self._install(self.shell)
        self.cluster.shell_measure = self.shell  # type: ignore[attr-defined]

    @invariant()
    def no_pass_but_answered(self) -> None:
        """(q) every Pass in the status is one a check answered."""
        cluster = getattr(self, "cluster", None)
        status = cluster.status if cluster is not None else None
        if not status:
            return
        recorded: Counter[tuple[str | None, str | None, str]] = Counter(
            (m.get("revision"), m.get("analysis"), str(m.get("metric")))
            for m in status.get("measurements") or []
            if m.get("verdict") == Verdict.PASS.value
        )
        for key, count in recorded.items():
            if count > self.passes[key]:
                raise Violation(
                    f"(q) {count} Pass verdicts recorded for {key}, {self.passes[key]} answered"
                )


CheckMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("RAMP_MODEL_CHECK_EXAMPLES", "40")),
    stateful_step_count=20,
    derandomize=not os.environ.get("RAMP_FUZZ"),
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
TestCheckMachine = CheckMachine.TestCase


# -- named examples ---------------------------------------------------------------------

V1, V2 = (revision_hash(template(i)) for i in (1, 2))


def check_steps(kind: str) -> list[dict[str, Any]]:
    return [
        {"setWeight": 50},
        {"analysis": {"metrics": [as_check(metric("m"), kind)]}},
        {"setWeight": 100},
    ]


class Recording(SimProvider):
    """:class:`SimProvider` that keeps the identity of every measurement it is asked for."""

    def __init__(self, shell: RealGates) -> None:
        super().__init__(shell)
        self.asked: list[MeasurementId | None] = []

    async def measure(self, metric: Metric, context: QueryContext) -> Outcome:
        self.asked.append(context.run)
        return await super().measure(metric, context)


def recording_shell(c: Cluster, latency: float | None) -> RealGates:
    shell = RealGates(latency)
    install(shell, Recording(shell))
    c.shell_measure = shell  # type: ignore[attr-defined]
    return shell


@pytest.mark.parametrize("kind", list(CHECKS))
def test_a_check_in_flight_at_a_restart_is_measured_again_as_the_same_job(kind: str) -> None:
    """(r) A check hangs (a Job still running); the operator restarts; the new one asks
    for the same measurement: the same identity, so the same Job name and event id."""
    c = steady(Config(replicas=2, steps=check_steps(kind)))
    first = recording_shell(c, latency=None)
    roll_to(c, 2)
    drive(c, 6)
    assert isinstance(first.provider, Recording) and first.provider.asked, "no check asked"
    before = first.provider.asked[-1]
    first.close()
    second = recording_shell(c, latency=None)
    try:
        drive(c, 3)
        assert isinstance(second.provider, Recording) and second.provider.asked
        assert second.provider.asked[0] == before, (before, second.provider.asked[0])
        assert before is not None and before.attempt == 1 and before.analysis == "step-2"
    finally:
        second.close()


@pytest.mark.parametrize(
    "verdict",
    [Verdict.FAIL, Verdict.INCONCLUSIVE, Verdict.ERROR, None],
    ids=["fail", "inconclusive", "error", "hung"],
)
def test_no_check_outcome_but_pass_completes_the_step(verdict: Verdict | None) -> None:
    """(q) A job check that fails, is inconclusive, errs or never ends: the canary is
    never promoted and the step never completes; a passing one completes."""
    c = steady(Config(replicas=2, steps=check_steps("job")))
    shell = recording_shell(c, latency=None if verdict is None else 1.0)
    try:
        if verdict is not None:
            c.verdicts[V2] = verdict
        roll_to(c, 2)
        drive(c, 30, seconds=5)
        assert c.status is not None
        assert c.status["stableRevision"] == V1, c.status
        assert c.status.get("currentStepIndex", 0) <= 1, c.status
    finally:
        shell.close()
    passing = steady(Config(replicas=2, steps=check_steps("job")))
    shell = recording_shell(passing, latency=1.0)
    try:
        roll_to(passing, 2)
        drive(passing, 30, seconds=5)
        assert passing.status is not None and passing.status["stableRevision"] == V2
    finally:
        shell.close()
