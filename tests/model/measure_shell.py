"""The REAL shell's measurement path (:class:`ramp.gates.Gates`) inside the simulated
cluster, with measurements that take simulated time or never finish (issue 19, class 11).

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
from ramp.analysis.prometheus import ProviderConfig
from ramp.analysis.promql import QueryContext
from ramp.api.analysis import Measurement, Metric, Verdict
from ramp.api.rollout import Rollout
from ramp.core.gating import runs_in_play
from ramp.core.resolve import ResolvedAnalysis, resolve_analysis
from ramp.core.verdicts import format_time
from ramp.gates import Gates

LOOP_TURNS = 50
"""Event-loop turns a reconcile's measurement step may take (it awaits nothing slow)."""


@dataclass
class _Waiting:
    due: datetime | None
    future: asyncio.Future[Measurement]
    metric: Metric
    context: QueryContext
    analysis: str | None


@dataclass
class SimProvider:
    """A Prometheus whose answers take simulated time (or never come)."""

    shell: RealGates
    waiting: list[_Waiting] = field(default_factory=list)
    calls: int = 0

    def _clock(self) -> datetime:
        return self.shell.cluster.now if self.shell.cluster else datetime.now()

    async def measure(
        self, metric: Metric, context: QueryContext, *, analysis: str | None = None
    ) -> Measurement:
        self.calls += 1
        loop = asyncio.get_running_loop()
        latency = self.shell.latency
        assert self.shell.cluster is not None
        due = None if latency is None else self.shell.cluster.now + timedelta(seconds=latency)
        waiting = _Waiting(due, loop.create_future(), metric, context, analysis)
        self.waiting.append(waiting)
        return await waiting.future

    async def close(self) -> None:
        pass


class RealGates:
    """``Cluster.measure`` through the real :class:`ramp.gates.Gates`."""

    def __init__(self, latency: float | None) -> None:
        self.latency = latency
        self.cluster: Cluster | None = None
        self.loop = asyncio.new_event_loop()
        self.gates = Gates(ProviderConfig(allowed_addresses=("http://prometheus:9090",)), _none)
        self.provider = SimProvider(self)
        self.gates._provider = self.provider  # type: ignore[assignment]
        self.reconciles = 0

    def spin(self, turns: int = LOOP_TURNS) -> None:
        for _ in range(turns):
            self.loop.run_until_complete(asyncio.sleep(0))

    def answer_due(self) -> None:
        """Measurements whose latency has passed answer now."""
        assert self.cluster is not None
        for w in self.provider.waiting:
            if w.due is not None and w.due <= self.cluster.now and not w.future.done():
                verdict = self.cluster.verdicts.get(w.context.canary_revision or "", Verdict.PASS)
                w.future.set_result(
                    Measurement(
                        metric=w.metric.name,
                        verdict=verdict,
                        time=format_time(self.cluster.now),
                        value="1" if verdict in (Verdict.PASS, Verdict.FAIL) else None,
                        message=f"simulated {verdict.value}",
                        revision=w.context.canary_revision,
                        analysis=w.analysis,
                    )
                )
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
