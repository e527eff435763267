"""Every reconcile is counted with its cause (issue 26): the kick that woke it (the
Rollout's own event, a child's, a finished measurement, ...) or the timer that ran out (the
plan's requeue, the resync, the retry after a failure). The work queue names it
(``workqueue.CAUSE``), the controller counts the reconciles that planned by it (its
``summary``, which the benchmark prints per step), and ``/metrics`` serves them as
``ramp_reconciles_total{cause}``."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from test_write_budget import Cluster, healthy_cluster

from ramp.core.workload_model import MANAGED_ANNOTATION, WATCHED_VALUE
from ramp.shell import handlers
from ramp.shell.adapters.kube_objects import summarize_history
from ramp.shell.controller import workqueue
from ramp.shell.controller.route_index import RouteIndex
from ramp.shell.controller.workqueue import CAUSE, Cause, WorkQueue
from ramp.shell.runtime.metrics import OperatorMetrics


def test_each_reconcile_is_named_by_what_woke_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workqueue, "RESYNC_SECONDS", 0.02)
    monkeypatch.setattr(workqueue, "ERROR_BACKOFF", 0.01)
    seen: list[Cause] = []

    async def reconcile(namespace: str, name: str) -> float | None:
        seen.append(CAUSE.get())
        n = len(seen)
        if n == 1:
            return 0.01  # the plan asks to be looked at again
        if n == 2:
            raise RuntimeError("the API server went away")  # retried after a backoff
        if n == 3:
            return None  # at rest: the resync looks again
        return 3600.0

    async def scenario() -> WorkQueue:
        queue = WorkQueue(reconcile)
        queue.window = 0  # every kick that finds the worker idle is a reconcile of its own
        queue.kick(("ns", "r"), Cause.ROLLOUT)
        for _ in range(200):
            if len(seen) >= 4:
                break
            await asyncio.sleep(0.01)
        # Two kicks before the worker runs: one reconcile, named by the first.
        queue.kick(("ns", "r"), Cause.CHILD)
        queue.kick(("ns", "r"), Cause.ROLLOUT)
        await asyncio.sleep(0.05)
        queue.kick(("ns", "r"), Cause.MEASUREMENT)
        await asyncio.sleep(0.05)
        await queue.stop()
        return queue

    queue = asyncio.run(scenario())
    assert seen == [
        Cause.ROLLOUT,
        Cause.REQUEUE,
        Cause.RETRY,
        Cause.RESYNC,
        Cause.CHILD,
        Cause.MEASUREMENT,
    ]
    assert queue.wakes == {
        "rollout": 1,
        "requeue": 1,
        "retry": 1,
        "resync": 1,
        "child": 1,
        "measurement": 1,
    }
    assert CAUSE.get() == Cause.KICK  # outside a worker: the default, nothing leaked


def _drive(cluster: Cluster) -> dict[str, Any]:
    """Roll ``cluster`` out through the real controller and its work queue: the Rollout's
    new spec kicks it as the Rollout's event, each pod that moves as a child's."""
    controller = cluster.controller
    controller.children = lambda namespace, name: cluster.children()
    controller.reader.history_source = lambda namespace, name: [
        summarize_history(h) for h in cluster.history.values()
    ]
    key = ("ns", "web")

    async def idle() -> None:
        for _ in range(2000):  # 10 s at most on a loaded machine
            await asyncio.sleep(0.005)
            task = controller.queue._tasks.get(key)
            if not controller.queue._wakeups[key].is_set() and controller.reconciles > done:
                return
            assert task is not None and not task.done()

    async def scenario() -> None:
        nonlocal done
        controller.remember(copy.deepcopy(cluster.body))
        controller.queue.kick(key, Cause.ROLLOUT)
        await idle()
        for _ in range(100):
            done = controller.reconciles
            if not cluster.pods_progress():
                break
            controller.queue.kick(key, Cause.CHILD)
            await idle()
        await controller.queue.stop()

    done = 0
    asyncio.run(scenario())
    controller.pool.shutdown()
    return controller.summary()


def test_the_controller_counts_the_reconciles_that_planned_by_cause() -> None:
    cluster = healthy_cluster()
    cluster.set_image("app:2")
    summary = _drive(cluster)
    assert cluster.body["status"]["phase"] == "Healthy", cluster.body["status"]
    by_cause = summary["reconciles_by_cause"]
    assert sum(by_cause.values()) == summary["reconciles"] > 5
    assert by_cause["rollout"] == 1  # the one spec change
    assert by_cause["child"] >= 5  # at least one pod per step
    assert set(by_cause) <= {"rollout", "child", "requeue"}, by_cause
    assert sum(summary["wakes_by_cause"].values()) >= summary["reconciles"]


def test_metrics_serve_the_reconciles_by_cause() -> None:
    metrics = OperatorMetrics()
    assert b"ramp_reconciles_total" not in metrics.exposition()  # no controller wired
    counts = {"child": 3, "rollout": 1}
    metrics.reconciles_by_cause = counts
    counts["requeue"] = 2  # read at scrape time
    text = metrics.exposition().decode()
    assert 'ramp_reconciles_total{cause="child"} 3.0' in text
    assert 'ramp_reconciles_total{cause="rollout"} 1.0' in text
    assert 'ramp_reconciles_total{cause="requeue"} 2.0' in text


class _Queue:
    def __init__(self) -> None:
        self.kicks: list[tuple[tuple[str, str], Cause]] = []

    def kick(self, key: tuple[str, str], cause: Cause = Cause.KICK) -> None:
        self.kicks.append((key, cause))


class _Controller:
    def __init__(self) -> None:
        self.queue = _Queue()
        self.bodies: dict[tuple[str, str], dict[str, Any]] = {}
        self.routes = RouteIndex(lambda key: self.queue.kick(key, Cause.ROUTE))

    def owns(self, namespace: str, name: str) -> bool:
        return True

    def remember(self, body: dict[str, Any]) -> None:
        pass


def test_watch_events_kick_with_their_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    stub = _Controller()
    monkeypatch.setattr(handlers.State, "controller", stub)
    monkeypatch.setattr(handlers.State, "seen", {})
    monkeypatch.setattr(handlers.State, "children", {})
    monkeypatch.setattr(handlers.State, "placed", {})
    child = {
        "metadata": {
            "name": "web-abc",
            "namespace": "ns",
            "resourceVersion": "10",
            "generation": 1,
            "labels": {"ramp.dev/rollout": "web", "ramp.dev/revision": "abc"},
        },
        "spec": {"replicas": 1},
        "status": {"observedGeneration": 1},
    }
    rollout = {
        "metadata": {"name": "web", "namespace": "ns", "resourceVersion": "3"},
        "spec": {"strategy": {"canary": {"httpRoutes": ["shop"]}}},
    }
    route = {"metadata": {"name": "shop", "namespace": "ns", "generation": 2}}
    adopted = {
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "labels": {"ramp.dev/rollout": WATCHED_VALUE},
            "annotations": {MANAGED_ANNOTATION: "web"},
        }
    }

    async def events() -> None:
        handlers.child_event("ADDED", child)
        await handlers.rollout_changed(type="MODIFIED", namespace="ns", name="web", body=rollout)
        handlers.child_event("MODIFIED", adopted)
        stub.routes.event("MODIFIED", route)  # the route watch's event

    asyncio.run(events())
    assert stub.queue.kicks == [
        (("ns", "web"), Cause.CHILD),
        (("ns", "web"), Cause.ROLLOUT),
        (("ns", "web"), Cause.WORKLOAD),
        (("ns", "web"), Cause.ROUTE),
    ]
