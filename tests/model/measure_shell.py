"""The REAL shell's measurement path (:class:`ramp.shell.controller.gates.Gates`) inside the
simulated cluster, with measurements that take simulated time or never finish (issue 19, class 11).

:class:`RealGates` replaces :meth:`model.sim.Cluster.measure` (set it as the cluster's
``shell_measure``): every reconcile runs ``Gates.measure`` on a private event loop for a
bounded number of loop turns. A reconcile that is still waiting then is a violation:

(h) a reconcile never waits on a measurement (a slow or hung Prometheus holds no
    reconcile, so an abort or any other verb is planned at once).

Measurements answer when simulated time reaches their latency (``latency``: seconds, or
None for a Prometheus that never answers), with the verdict the cluster's ``verdicts``
chose for the revision.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from model.sim import Cluster, Violation
from ramp.analysis.kinds.base import Outcome
from ramp.analysis.prometheus import ProviderConfig
from ramp.analysis.promql import QueryContext
from ramp.analysis.run import Measurer
from ramp.api.analysis import Metric, Verdict
from ramp.api.rollout import Rollout
from ramp.core.plan import runs_in_play
from ramp.core.resolve import ResolvedAnalysis, resolve_analysis
from ramp.shell.controller.gates import Gates

LOOP_TURNS = 50
"""Event-loop turns a reconcile's measurement step may take (it awaits nothing slow)."""


@dataclass
class _Waiting:
    due: datetime | None
    future: asyncio.Future[Outcome]
    metric: Metric
    context: QueryContext


@dataclass
class SimProvider:
    """A metric provider (registered for every kind in the real
    :class:`~ramp.analysis.run.Measurer`) whose answers take simulated time, or never come."""

    shell: RealGates
    waiting: list[_Waiting] = field(default_factory=list)
    calls: int = 0

    def validate(self, metric: Metric, context: QueryContext) -> list[str]:
        return []

    async def measure(self, metric: Metric, context: QueryContext) -> Outcome:
        self.calls += 1
        loop = asyncio.get_running_loop()
        latency = self.shell.latency
        assert self.shell.cluster is not None
        due = None if latency is None else self.shell.cluster.now + timedelta(seconds=latency)
        waiting = _Waiting(due, loop.create_future(), metric, context)
        self.waiting.append(waiting)
        return await waiting.future

    def describe(self, metric: Metric, context: QueryContext) -> str:
        return f"simulated {metric.name}"

    async def close(self) -> None:
        pass


class RealGates:
    """``Cluster.measure`` through the real :class:`ramp.shell.controller.gates.Gates` and its
    :class:`~ramp.analysis.run.Measurer` (dispatch by kind, the decision record)."""

    def __init__(self, latency: float | None) -> None:
        self.latency = latency
        self.cluster: Cluster | None = None
        self.loop = asyncio.new_event_loop()
        config = ProviderConfig(allowed_addresses=("http://prometheus:9090",))
        self.gates = Gates(config, _none)
        self.provider = SimProvider(self)
        self.gates._provider = Measurer(
            config,
            clock=self._clock,
            providers={kind: lambda env: self.provider for kind in Metric.kinds()},
        )
        self.reconciles = 0

    def _clock(self) -> datetime:
        return self.cluster.now if self.cluster else datetime.now()

    def spin(self, turns: int = LOOP_TURNS) -> None:
        for _ in range(turns):
            self.loop.run_until_complete(asyncio.sleep(0))

    def answer_due(self) -> None:
        """Measurements whose latency has passed answer now."""
        assert self.cluster is not None
        for w in self.provider.waiting:
            if w.due is not None and w.due <= self.cluster.now and not w.future.done():
                verdict = self.cluster.verdicts.get(w.context.canary_revision or "", Verdict.PASS)
                value = "1" if verdict in (Verdict.PASS, Verdict.FAIL) else None
                w.future.set_result(Outcome(verdict, f"simulated {verdict.value}", value=value))
        self.provider.waiting = [w for w in self.provider.waiting if not w.future.done()]
        self.spin()

    def __call__(
        self, cluster: Cluster, rollout: Rollout
    ) -> tuple[Rollout, dict[str, ResolvedAnalysis | str]]:
        self.cluster = cluster
        self.reconciles += 1
        runs = runs_in_play(rollout)
        if not runs:
            return rollout, {}
        resolved: dict[str, ResolvedAnalysis | str] = {
            name: resolve_analysis(ref, {}) for name, ref in runs.items()
        }
        self.answer_due()
        task = self.loop.create_task(
            self.gates.measure(resolved, rollout, "ns", cluster.now)  # type: ignore[arg-type]
        )
        self.spin()
        if not task.done():
            task.cancel()
            self.spin()
            raise Violation(
                f"(h) reconcile {self.reconciles} still waits on a measurement after "
                f"{LOOP_TURNS} event-loop turns (latency {self.latency}): a slow or hung "
                "Prometheus holds the reconcile and its slot, aborts included"
            )
        status, _events, _taken = task.result()
        return rollout.model_copy(update={"status": status}), resolved

    def close(self) -> None:
        for w in self.provider.waiting:
            w.future.cancel()
        self.spin()
        self.loop.run_until_complete(self.gates.close())
        self.loop.close()


def _none(namespace: str, name: str) -> dict[str, Any] | None:
    return None
