"""The reconcile queue (``ramp.workqueue.WorkQueue``): a bounded number of reconciles in
flight when a fleet wakes at once, every Rollout served, and resyncs spread in time."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from ramp import workqueue
from ramp.workqueue import RECONCILE_SLOTS, WorkQueue


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
        await asyncio.sleep(0.35)
        await queue.stop()

    asyncio.run(scenario())
    gaps: list[Any] = [t[1] - t[0] for t in times.values() if len(t) > 1]
    assert len(gaps) == 30
    assert all(0.2 * 0.9 - 0.01 <= g <= 0.2 * 1.1 + 0.05 for g in gaps), gaps
    assert max(gaps) - min(gaps) > 0.005  # not all in the same instant
