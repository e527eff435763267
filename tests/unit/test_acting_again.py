"""A Rollout whose reconcile ran while this process could not write is reconciled again
as soon as it can, not a resync (a minute) later.

``is_leader()`` is false from the moment the renew deadline passes until a renewal is
answered; a renewal sent in time but answered after that deadline (an API server slow
under load, shard 0 renewing two Leases) makes a pause no check of the election loop sees:
no "lost"/"acquired" transition, so no ``kick_all``. A reconcile that ran in that pause
(or whose write was refused as not the leader, then re-planned) returned "nothing to do"
and its worker slept until the resync: a shard leader taking over mid-rollout had
Rollouts parked for ~60 s, past their progressDeadlineSeconds (tests/e2e/test_shards.py
saw two of them aborted with "stable 1/0 ready" while their pods were long gone).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from test_leader_election import MemoryLeaseStore, candidate
from test_write_budget import healthy_cluster

from ramp.shell.adapters.kube_objects import summarize_history
from ramp.shell.controller.workqueue import Cause


def test_a_renewal_answered_past_the_deadline_tells_on_leading() -> None:
    store = MemoryLeaseStore()
    a = candidate(store, "a")
    told: list[str] = []
    a.elector.on_leading = lambda: told.append("acting")
    assert a.elector.try_acquire_or_renew()
    a.elector._transition()
    assert a.started == ["a"] and told == []  # the start is on_started_leading's
    a.elector._transition()
    assert told == ["acting"]
    a.clock.now += 10.5  # a renewal sent 5 s after the last one, answered 5.5 s later:
    assert not a.elector.is_leader()  # past the renew deadline (10 s) meanwhile: refusals
    a.clock.now -= 5.5
    assert a.elector.try_acquire_or_renew()  # (its send time counts)
    a.clock.now += 5.5
    assert a.elector.is_leader()
    a.elector._transition()  # no transition was seen: leading before, leading now
    assert a.started == ["a"]
    assert told == ["acting", "acting"]


def releasing() -> Any:
    """The write-budget cluster mid-release, its controller reading its children and
    history from it (the watch indexes' part)."""
    cluster = healthy_cluster()
    cluster.set_image("app:2")
    controller = cluster.controller
    controller.children = lambda namespace, name: cluster.children()
    controller.reader.history_source = lambda namespace, name: [
        summarize_history(h) for h in cluster.history.values()
    ]
    return cluster


def test_a_rollout_left_alone_while_not_acting_is_reconciled_once_acting() -> None:
    cluster = releasing()
    controller = cluster.controller
    acting = False
    controller.may_write = lambda: acting
    key = ("ns", "web")

    async def settle(done: int, rounds: int = 2000) -> bool:
        for _ in range(rounds):  # 10 s at most on a loaded machine
            await asyncio.sleep(0.005)
            if controller.reconciles > done and not controller.queue._wakeups[key].is_set():
                return True
        return False

    async def scenario() -> tuple[bool, bool]:
        nonlocal acting
        controller.remember(copy.deepcopy(cluster.body))
        controller.queue.kick(key, Cause.CHILD)  # in the pause: nothing done
        await asyncio.sleep(0.3)
        assert controller.reconciles == 0 and key in controller.deferred
        acting = True  # the renewal answered: no transition, the worker sleeps (resync)
        slept = not await settle(0, rounds=60)
        controller.kick_deferred()
        woke = await settle(0)
        await controller.queue.stop()
        return slept, woke

    slept, woke = asyncio.run(scenario())
    controller.pool.shutdown()
    assert slept  # without kick_deferred the Rollout would wait for its resync
    assert woke and not controller.deferred
    assert controller.summary()["reconciles_by_cause"] == {"leader": 1}
    assert cluster.body["status"]["phase"] == "Progressing", cluster.body["status"]


def test_events_refused_in_a_pause_are_posted_by_the_next_pass() -> None:
    """The pass that wrote ``Healthy`` emits ``RolloutCompleted`` after its status: an
    Event refused in a pause was lost for good (no later pass emits it again; the chart
    test waited for it in vain). It is held and posted once acting again."""
    from kubernetes import client

    from ramp.core.model import Event
    from ramp.shell.runtime.leader import HELD_EVENTS, GuardedKube

    kube = GuardedKube(client.ApiClient())
    posted: list[str] = []
    kube.poster.post = lambda rollout, event: posted.append(event.reason)  # type: ignore[method-assign]
    acting = False
    kube.may_write = lambda: acting
    rollout = {"metadata": {"name": "web", "namespace": "ns", "uid": "u"}}
    kube.emit(rollout, Event("Normal", "RolloutCompleted", "done"))
    for i in range(HELD_EVENTS + 5):
        kube.emit(rollout, Event("Normal", f"Other{i}", "more"))
    assert posted == [] and ("ns", "web") in kube.held
    kube.post_held("ns", "web")  # still not acting: kept
    assert posted == [] and len(kube.held[("ns", "web")]) == HELD_EVENTS
    acting = True
    kube.post_held("ns", "web")
    assert posted[0] == "RolloutCompleted" and len(posted) == HELD_EVENTS
    assert not kube.held


def test_a_pass_that_planned_writes_as_the_lease_paused_is_reconciled_once_acting() -> None:
    """The pass found this process acting, then the Lease paused while it planned (the
    renew deadline passed under load): its writes were skipped and the plan, a step's
    transition with no timer of its own, slept until the resync. CI (2026-12-07,
    ``test_leader.py``, the frozen holder thawed): the Rollout stood at its last pause's
    "1.2s left" for the test's whole minute. It is deferred like a pass in the pause."""
    cluster = releasing()
    controller = cluster.controller
    answers = [True]  # acting when the pass starts, then the pause
    controller.may_write = lambda: answers.pop(0) if answers else acting
    acting = False
    key = ("ns", "web")
    before = copy.deepcopy(cluster.body.get("status"))

    async def scenario() -> None:
        nonlocal acting
        controller.remember(copy.deepcopy(cluster.body))
        await controller.reconcile(*key)
        assert key in controller.deferred and cluster.body.get("status") == before
        acting = True
        controller.kick_deferred()
        for _ in range(2000):  # 10 s at most on a loaded machine
            await asyncio.sleep(0.005)
            if controller.reconciles and not controller.queue._wakeups[key].is_set():
                break
        await controller.queue.stop()

    asyncio.run(scenario())
    controller.pool.shutdown()
    assert not controller.deferred
    assert cluster.body["status"]["phase"] == "Progressing", cluster.body["status"]
