"""Wake once per thing that matters (issue 26).

- The work queue makes one reconcile of a Rollout's kicks that come together (a window,
  ``WorkQueue.window``, ``--coalesce-window``), never drops one (a kick during a
  reconcile wakes the next, which sees what the last kick brought) and never holds an
  idle Rollout's kick longer than the window (an abort).
- While a Rollout is Progressing, a child's event wakes it only when it can unblock the
  plan (``handlers.moves_the_plan``): not the echo of our own scale, not a pod created
  or gone unready. Checked against the real planner: in rollouts of several shapes every
  write follows a change that wakes.
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import pytest
from test_write_budget import Cluster, rollout_body

from ramp.__main__ import parse_args
from ramp.core.model import Child
from ramp.shell import handlers
from ramp.shell.adapters.expectations import Expectations
from ramp.shell.adapters.kube_objects import child_from_deployment
from ramp.shell.controller import workqueue
from ramp.shell.controller.workqueue import CAUSE, Cause, WorkQueue

KEY = ("ns", "web")


# -- the window ---------------------------------------------------------------------------


def test_a_burst_of_kicks_is_one_reconcile_that_sees_the_last() -> None:
    seen: list[int] = []
    state = {"n": 0}

    async def reconcile(namespace: str, name: str) -> float | None:
        seen.append(state["n"])
        return 3600.0

    async def scenario() -> None:
        queue = WorkQueue(reconcile)
        queue.window = 0.3
        for n in range(1, 6):  # the Rollout's status echo and its children's events
            state["n"] = n
            queue.kick(KEY, Cause.CHILD if n > 1 else Cause.ROLLOUT)
            await asyncio.sleep(0.02)
        for _ in range(300):
            if seen:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.4)  # nothing else comes
        await queue.stop()
        assert queue.wakes == {"rollout": 1}

    asyncio.run(scenario())
    assert seen == [5]


def test_without_a_window_each_kick_that_finds_the_worker_idle_reconciles() -> None:
    seen: list[int] = []

    async def reconcile(namespace: str, name: str) -> float | None:
        seen.append(1)
        return 3600.0

    async def scenario() -> None:
        queue = WorkQueue(reconcile)
        queue.window = 0
        for _ in range(5):
            queue.kick(KEY, Cause.CHILD)
            await asyncio.sleep(0.05)
        await queue.stop()

    asyncio.run(scenario())
    assert len(seen) == 5


def test_an_idle_rollouts_kick_waits_the_window_and_no_longer() -> None:
    """An abort (the Rollout's own event) on a Rollout at rest is reconciled once the
    window has passed: not at once (what comes with it joins), never much later."""
    window = 0.2
    started: list[float] = []

    async def reconcile(namespace: str, name: str) -> float | None:
        started.append(time.monotonic())
        return 3600.0

    async def scenario() -> float:
        queue = WorkQueue(reconcile)
        queue.window = window
        queue.kick(KEY, Cause.ROLLOUT)
        for _ in range(300):
            if started:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(1.0)  # at rest
        kicked = time.monotonic()
        queue.kick(KEY, Cause.ROLLOUT)  # the abort
        for _ in range(500):
            if len(started) == 2:
                break
            await asyncio.sleep(0.005)
        await queue.stop()
        return kicked

    kicked = asyncio.run(scenario())
    assert len(started) == 2
    assert window - 0.01 <= started[1] - kicked <= window + 0.5, started[1] - kicked


def test_a_kick_during_a_reconcile_is_never_dropped() -> None:
    """Kicks that come while a reconcile runs wake exactly one more, a window after it
    ended; that one sees what the last kick brought."""
    state = {"n": 0}
    seen: list[tuple[int, float]] = []
    ended: list[float] = []

    async def reconcile(namespace: str, name: str) -> float | None:
        seen.append((state["n"], time.monotonic()))
        if len(seen) == 1:
            for n in (1, 2, 3):  # our own writes' echoes, during the reconcile
                await asyncio.sleep(0.05)
                state["n"] = n
                queue.kick(KEY, Cause.CHILD)
        ended.append(time.monotonic())
        return 3600.0

    queue: WorkQueue

    async def scenario() -> None:
        nonlocal queue
        queue = WorkQueue(reconcile)
        queue.window = 0.1
        queue.kick(KEY, Cause.ROLLOUT)
        for _ in range(300):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        await queue.stop()

    asyncio.run(scenario())
    assert [n for n, _ in seen] == [0, 3]
    assert seen[1][1] - ended[0] >= 0.1 - 0.01


def test_timers_do_not_wait_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    times: list[tuple[Cause, float]] = []

    async def reconcile(namespace: str, name: str) -> float | None:
        times.append((CAUSE.get(), time.monotonic()))
        return 0.05 if len(times) == 1 else 3600.0

    async def scenario() -> None:
        queue = WorkQueue(reconcile)
        queue.window = 1.0
        queue.kick(KEY, Cause.ROLLOUT)
        for _ in range(300):
            if len(times) == 2:
                break
            await asyncio.sleep(0.01)
        await queue.stop()

    asyncio.run(scenario())
    assert [c for c, _ in times] == [Cause.ROLLOUT, Cause.REQUEUE]
    assert times[1][1] - times[0][1] < 0.9  # the requeue after 0.05 s, not a window later


def test_the_window_is_a_setting() -> None:
    assert workqueue.COALESCE_WINDOW == parse_args([]).coalesce_window == 0.075
    assert parse_args(["--coalesce-window", "0"]).coalesce_window == 0.0
    with pytest.raises(SystemExit):
        parse_args(["--coalesce-window", "5"])
    with pytest.raises(SystemExit):
        parse_args(["--coalesce-window", "-0.1"])


# -- which child events wake a Progressing Rollout -------------------------------------


def deployment(
    version: int, replicas: int, ready: int, current: int, gen: int = 2, progressed: str = ""
) -> Any:
    conditions = [{"type": "Progressing", "status": "True", "lastUpdateTime": progressed}]
    return {
        "metadata": {
            "name": "web-abc",
            "namespace": "ns",
            "resourceVersion": str(version),
            "generation": gen,
            "labels": {"ramp.dev/rollout": "web", "ramp.dev/revision": "abc"},
            "ownerReferences": [{"uid": "u1", "controller": True}],
        },
        "spec": {"replicas": replicas},
        "status": {
            "replicas": current,
            "readyReplicas": ready,
            "observedGeneration": 2,
            "conditions": conditions if progressed else [],
        },
    }


class _Kube:
    def __init__(self) -> None:
        self.expectations = Expectations()


class _Controller:
    def __init__(self) -> None:
        self.kube = _Kube()
        self.bodies: dict[tuple[str, str], dict[str, Any]] = {}


@pytest.fixture()
def controller(monkeypatch: pytest.MonkeyPatch) -> _Controller:
    stub = _Controller()
    monkeypatch.setattr(handlers.State, "controller", stub)
    monkeypatch.setattr(handlers.State, "seen", {})
    return stub


def test_the_echo_of_our_own_scale_wakes_nothing_while_progressing(
    controller: _Controller,
) -> None:
    assert handlers.relevant("ADDED", "ns", deployment(10, 1, 1, 1), progressing=True)
    # Our scale 1 -> 2 answered resourceVersion 11 (generation 3): its watch event.
    controller.kube.expectations.expect(("ns", "web-abc"), 11, replicas=2)
    echo = deployment(11, 2, 1, 1, gen=3)
    assert not handlers.relevant("MODIFIED", "ns", echo, progressing=True)
    # Someone else's scale of it (another resourceVersion) wakes it.
    handlers.State.seen = {}
    handlers.relevant("ADDED", "ns", deployment(10, 1, 1, 1), progressing=True)
    assert handlers.relevant("MODIFIED", "ns", deployment(12, 2, 1, 1, gen=3), progressing=True)


def test_at_rest_every_change_the_planner_reads_still_wakes(controller: _Controller) -> None:
    """Outside Progressing (at rest, paused, aborted) the filter is what it was: counts
    are written there (throttled), and an abort scales on its own terms."""
    controller.kube.expectations.expect(("ns", "web-abc"), 11, replicas=2)
    assert handlers.relevant("ADDED", "ns", deployment(10, 1, 1, 1))
    assert handlers.relevant("MODIFIED", "ns", deployment(11, 2, 1, 1, gen=3))  # our echo
    assert handlers.relevant("MODIFIED", "ns", deployment(12, 2, 1, 2, gen=3))  # a pod more
    assert handlers.relevant("MODIFIED", "ns", deployment(13, 2, 0, 2, gen=3))  # unready


@pytest.mark.parametrize(
    ("before", "after", "wakes"),
    [
        ((2, 1, 1), (2, 1, 2), False),  # a pod created for a scale-up: wait on
        ((2, 2, 2), (2, 1, 2), True),  # converged no more (a pod went unready)
        ((3, 1, 2), (3, 0, 2), False),  # unready, still short: wait on
        ((2, 1, 2), (2, 2, 2), True),  # ready: converged
        ((3, 1, 2), (3, 2, 3), True),  # a pod ready, still short (the stable may shrink)
        ((1, 1, 2), (1, 1, 1), True),  # an extra pod gone (room under maxSurge)
        ((2, 2, 2), (3, 2, 2), True),  # the spec changed
    ],
)
def test_while_progressing_a_pod_more_or_less_wakes_when_it_can_unblock_a_step(
    controller: _Controller,
    before: tuple[int, int, int],
    after: tuple[int, int, int],
    wakes: bool,
) -> None:
    first = deployment(10, *before)
    assert handlers.relevant("ADDED", "ns", first, progressing=True)
    assert handlers.relevant("MODIFIED", "ns", deployment(11, *after), progressing=True) is wakes


def test_the_progressing_conditions_time_alone_wakes_nothing(controller: _Controller) -> None:
    """The Deployment controller moves its Progressing condition's ``lastUpdateTime``
    with a pod created for a scale-up; the planner reads that time for its deadline
    (4a7c0f8) from the index, in the reconcile a count or a timer wakes."""
    first = deployment(10, 2, 1, 1, progressed="2026-01-01T00:00:00Z")
    assert handlers.relevant("ADDED", "ns", first, progressing=True)
    created = deployment(11, 2, 1, 2, progressed="2026-01-01T00:00:05Z")
    assert not handlers.relevant("MODIFIED", "ns", created, progressing=True)
    at_rest = deployment(12, 2, 1, 2, progressed="2026-01-01T00:00:09Z")
    assert not handlers.relevant("MODIFIED", "ns", at_rest)
    ready = deployment(13, 2, 2, 2, progressed="2026-01-01T00:00:09Z")
    assert handlers.relevant("MODIFIED", "ns", ready, progressing=True)


def test_the_rollouts_phase_says_progressing(controller: _Controller) -> None:
    assert not handlers.progressing("ns", "web")  # not seen yet
    controller.bodies[KEY] = {"status": {"phase": "Healthy"}}
    assert not handlers.progressing("ns", "web")
    controller.bodies[KEY] = {"status": {"phase": "Progressing"}}
    assert handlers.progressing("ns", "web")


def _writes_follow_a_wake(cluster: Cluster) -> tuple[list[Any], int]:
    """Roll ``cluster`` out pod by pod (the write-budget cluster: the real planner and
    executor); return the writes whose reconcile no waking change preceded (none may),
    and the reconciles a waking change would have run."""
    cluster.settle()
    cluster.set_image("app:2")
    unwoken: list[Any] = []
    woke, wakes = True, 1  # the new spec wakes it
    for _ in range(800):
        writes = cluster.reconcile()
        if writes and not woke:
            unwoken.append(writes)
        if writes:
            # The Rollout's own status echo wakes the next; a scale's echo does not.
            woke = any(kind == "status" for kind, _ in writes)
            wakes += woke
            continue
        before: dict[str, Child] = {c.name: c for c in cluster.children()}
        if not cluster.pods_progress():
            return unwoken, wakes
        after = {c.name: c for c in cluster.children()}
        woke = any(
            name not in before
            or name not in after
            or handlers.moves_the_plan(before[name], after[name])
            for name in set(before) | set(after)
            if before.get(name) != after.get(name)
        )
        wakes += woke
    raise AssertionError("did not settle")


SHAPES = [
    (5, [20, 40, 60, 80, 100], {}),
    (10, [20, 80, 100], {}),
    (20, [50, 100], {}),
    (10, [20, 80, 100], {"maxSurge": "50%", "maxUnavailable": 1}),
    (10, [20, 80, 100], {"maxSurge": 0, "maxUnavailable": 2}),
    (7, [10, 30, 100], {"maxSurge": 1, "maxUnavailable": 0}),
]


@pytest.mark.parametrize(("replicas", "weights", "canary"), SHAPES)
def test_every_write_of_a_rollout_follows_a_change_that_wakes(
    replicas: int, weights: list[int], canary: dict[str, Any]
) -> None:
    """The real planner never acts on a change ``moves_the_plan`` lets sleep: in each
    of these rollouts, every reconcile that writes was woken: by a pod change that
    wakes, or by the Rollout's own status echo after a reconcile that wrote the status
    (the echo of a scale wakes nothing)."""
    body = rollout_body([{"setWeight": w} for w in weights], replicas)
    body["spec"]["strategy"]["canary"].update(canary)
    cluster = Cluster(copy.deepcopy(body))
    unwoken, wakes = _writes_follow_a_wake(cluster)
    assert cluster.body["status"]["phase"] == "Healthy"
    assert unwoken == []
    # and the filter lets sleep a good share of the pod changes
    assert wakes < cluster.quiet


def test_a_child_view_keeps_what_the_filter_compares() -> None:
    view = child_from_deployment(deployment(10, 3, 2, 3))
    assert (view.replicas, view.ready, view.current, view.settled) == (3, 2, 3, True)
    assert not view.converged
