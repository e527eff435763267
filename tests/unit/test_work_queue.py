"""The reconcile queue (``ramp.shell.controller.workqueue.WorkQueue``): a bounded number of
reconciles in flight when a fleet wakes at once, every Rollout served, and resyncs spread in
time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ramp.shell.controller import workqueue
from ramp.shell.controller.workqueue import RECONCILE_SLOTS, WorkQueue


def test_a_fleet_kicked_at_once_runs_at_most_the_slots_and_every_rollout_once() -> None:
    running = 0
    most = 0
    done: list[str] = []

    async def reconcile(namespace: str, name: str) -> float | None:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.005)  # an API call
        running -= 1
        done.append(name)
        return 3600.0

    async def scenario() -> None:
        queue = WorkQueue(reconcile)
        for i in range(4 * RECONCILE_SLOTS):
            queue.kick(("ns", f"r{i}"))
        for _ in range(400):
            if len(done) == 4 * RECONCILE_SLOTS:
                break
            await asyncio.sleep(0.01)
        await queue.stop()

    asyncio.run(scenario())
    assert most == RECONCILE_SLOTS
    assert sorted(done) == sorted(f"r{i}" for i in range(4 * RECONCILE_SLOTS))


def test_a_slow_reconcile_holds_only_its_own_slot() -> None:
    done: list[str] = []

    async def reconcile(namespace: str, name: str) -> float | None:
        if name == "slow":
            await asyncio.sleep(10)  # e.g. a Prometheus that does not answer
        done.append(name)
        return 3600.0

    async def scenario() -> None:
        queue = WorkQueue(reconcile)
        queue.kick(("ns", "slow"))
        for i in range(20):
            queue.kick(("ns", f"r{i}"))
        await asyncio.sleep(0.2)
        await queue.stop()

    asyncio.run(scenario())
    assert len(done) == 20 and "slow" not in done


def test_resyncs_are_spread(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workqueue, "RESYNC_SECONDS", 0.2)
    times: dict[str, list[float]] = {}

    async def reconcile(namespace: str, name: str) -> float | None:
        times.setdefault(name, []).append(asyncio.get_running_loop().time())
        return None  # at rest: look again after the resync period

    async def scenario() -> None:
        queue = WorkQueue(reconcile)
        for i in range(30):
            queue.kick(("ns", f"r{i}"))
        await asyncio.sleep(0.45)  # the first after the coalescing window, then one resync
        await queue.stop()

    asyncio.run(scenario())
    gaps: list[Any] = [t[1] - t[0] for t in times.values() if len(t) > 1]
    assert len(gaps) == 30
    # Never early; late by at most what a loaded machine's event loop adds (CI saw 0.27 s+).
    assert all(0.2 * 0.9 - 0.01 <= g <= 0.2 * 1.1 + 0.25 for g in gaps), gaps
    assert max(gaps) - min(gaps) > 0.005  # not all in the same instant


def test_a_failing_reconcile_is_reported_and_backs_off_to_a_ceiling() -> None:
    """Issue 19: a reconcile that raises is told to ``on_error`` (the controller shows it
    as a condition and an Event) each time, and retried after 2, 4, 8 ... seconds up to
    MAX_ERROR_BACKOFF; a success resets the count."""
    delays: list[float] = []
    failing = True

    async def reconcile(namespace: str, name: str) -> float | None:
        if failing:
            raise OverflowError("date value out of range")
        return 3600.0

    reported: list[str] = []

    async def on_error(key: tuple[str, str], exc: Exception) -> None:
        reported.append(f"{key[1]}: {exc}")
        if len(reported) == 2:
            raise RuntimeError("the report itself failed")  # never stops the worker

    async def scenario() -> None:
        nonlocal failing
        queue = WorkQueue(reconcile)
        queue.on_error = on_error
        for _ in range(8):
            delays.append(await queue._failed(("ns", "r"), OverflowError("x")))
        assert queue.failures[("ns", "r")] == 8
        queue.kick(("ns", "r"))
        await asyncio.sleep(0.3)  # past the coalescing window
        failing = False
        queue.failures.pop(("ns", "r"))
        queue.kick(("ns", "r"))
        await asyncio.sleep(0.3)
        assert ("ns", "r") not in queue.failures
        await queue.stop()

    asyncio.run(scenario())
    assert delays == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    assert workqueue.MAX_ERROR_BACKOFF == 60.0
    assert len(reported) == 9 and reported[-1] == "r: date value out of range"
