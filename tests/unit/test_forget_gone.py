"""A Rollout whose namespace was deleted is forgotten, not retried forever (issue 19).

kopf stops watching a deleted namespace before the Rollout's DELETED event arrives, so the
controller keeps the last body it cached and reconciles it again and again: every write
answered 404 (seen in CI runs' operator logs: one failed status patch a minute for ever;
a child's create answered 404 retried as refused for now, a Warning Event each time,
which failed too). The controller now reads the Rollout again on a 404 and forgets it
when it is gone; a 404 for anything else still fails the reconcile (retried with back-off).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from test_write_budget import healthy_cluster

KEY = ("ns", "web")


def _gone(cluster: Any, rollout_gone: bool) -> list[str]:
    """Every call after the namespace's deletion: 404; the calls made."""
    calls: list[str] = []
    request = cluster.request

    def refuse(name: str, args: tuple[Any, ...]) -> Any:
        calls.append(name)
        if name == "get_namespaced_custom_object" and not rollout_gone:
            return copy.deepcopy(cluster.body)
        if name == "create_namespaced_controller_revision":
            return request(name, args)  # the history entry goes in: the create comes next
        raise ApiException(status=404, reason="Not Found")

    cluster.request = refuse
    return calls


def _reconcile(cluster: Any) -> float | None:
    controller = cluster.controller
    controller.children = lambda namespace, name: cluster.children()
    controller.reader.history_source = lambda namespace, name: []

    async def once() -> float | None:
        result: float | None = await controller._reconcile(*KEY, _timing())
        return result

    try:
        return asyncio.run(once())
    finally:
        controller.pool.shutdown()


def _timing() -> Any:
    from ramp.shell.controller.timing import StepTiming

    return StepTiming(None, 0.0)


def test_a_rollout_gone_with_its_namespace_is_forgotten() -> None:
    cluster = healthy_cluster()
    cluster.set_image("app:2")  # a plan that writes
    cluster.controller.remember(copy.deepcopy(cluster.body))  # the body the watch left
    calls = _gone(cluster, rollout_gone=True)
    assert _reconcile(cluster) is None
    assert "create_namespaced_deployment" in calls  # the canary's create: 404
    assert not any("event" in call for call in calls), calls  # no CreateRefused, no retry
    assert "get_namespaced_custom_object" in calls  # read again after the 404
    assert KEY not in cluster.controller.bodies  # forgotten: no retry


def test_a_404_for_something_else_still_fails_the_reconcile() -> None:
    cluster = healthy_cluster()
    cluster.set_image("app:2")
    cluster.controller.remember(copy.deepcopy(cluster.body))
    _gone(cluster, rollout_gone=False)
    with pytest.raises(ApiException):
        _reconcile(cluster)
    assert KEY in cluster.controller.bodies
