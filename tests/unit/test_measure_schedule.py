"""Measurements off the reconcile path, shared fairly per namespace (issue 19 class 11)."""

from __future__ import annotations

import asyncio
import time

from ramp.analysis.schedule import MeasurementScheduler
from ramp.api.analysis import Measurement, Verdict


def measurement(name: str, verdict: Verdict = Verdict.PASS) -> Measurement:
    return Measurement(metric=name, verdict=verdict, time="2026-01-01T00:00:00Z")


def key(namespace: str, metric: str) -> tuple[str, str, str, str, str]:
    return (namespace, "web", "step-1", metric, "rev")


async def hang() -> Measurement:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


def test_a_namespace_full_of_hung_measurements_does_not_delay_another() -> None:
    async def run() -> float:
        woken: list[tuple[str, str]] = []
        scheduler = MeasurementScheduler(per_namespace=2)
        scheduler.on_done = lambda ns, name: woken.append((ns, name))
        for i in range(20):  # team-a: a hung Prometheus, far more than its capacity
            scheduler.submit(key("team-a", f"m{i}"), hang, 30, lambda: measurement("late"))
        started = time.monotonic()

        async def quick() -> Measurement:
            await asyncio.sleep(0.01)
            return measurement("fast")

        assert scheduler.submit(key("team-b", "m"), quick, 30, lambda: measurement("late"))
        while scheduler.busy(key("team-b", "m")):
            await asyncio.sleep(0.005)
        elapsed = time.monotonic() - started
        taken = scheduler.take(key("team-b", "m"))
        assert taken is not None and taken.metric == "fast"
        assert woken == [("team-b", "web")]
        assert scheduler.in_flight("team-a") == 20
        await scheduler.close()
        return elapsed

    assert asyncio.run(run()) < 1.0


def test_a_hung_measurement_frees_its_slot_at_the_deadline() -> None:
    async def run() -> None:
        scheduler = MeasurementScheduler(per_namespace=1)
        scheduler.submit(key("ns", "a"), hang, 0.1, lambda: measurement("a", Verdict.ERROR))
        scheduler.submit(key("ns", "b"), hang, 0.1, lambda: measurement("b", Verdict.ERROR))
        for _ in range(200):
            if not scheduler.in_flight():
                break
            await asyncio.sleep(0.01)
        a, b = scheduler.take(key("ns", "a")), scheduler.take(key("ns", "b"))
        assert a is not None and a.verdict is Verdict.ERROR
        assert b is not None and b.verdict is Verdict.ERROR
        assert scheduler.take(key("ns", "a")) is None  # taken once

    asyncio.run(run())


def test_a_key_is_measured_once_at_a_time_and_forget_cancels() -> None:
    async def run() -> None:
        scheduler = MeasurementScheduler()
        assert scheduler.submit(key("ns", "a"), hang, 30, lambda: measurement("a"))
        assert not scheduler.submit(key("ns", "a"), hang, 30, lambda: measurement("a"))
        await asyncio.sleep(0)
        assert scheduler.pending("ns", "web") == 1
        scheduler.forget("ns", "web")
        await asyncio.sleep(0)
        assert scheduler.pending("ns", "web") == 0 and scheduler.in_flight() == 0
        assert scheduler.take(key("ns", "a")) is None

    asyncio.run(run())


def test_unclaimed_results_expire() -> None:
    now = [0.0]

    async def run() -> None:
        scheduler = MeasurementScheduler(keep_seconds=10, clock=lambda: now[0])

        async def fine() -> Measurement:
            return measurement("a")

        scheduler.submit(key("ns", "a"), fine, 30, lambda: measurement("a"))
        await asyncio.sleep(0.01)
        now[0] = 11.0
        scheduler.submit(key("ns", "b"), fine, 30, lambda: measurement("b"))  # expires "a"
        assert scheduler.take(key("ns", "a")) is None
        await scheduler.close()

    asyncio.run(run())
