"""Expectations instead of a time-based write memory (issue 12): the real reconcile
(``Controller.reconcile``) and the real adapter's write logic against a fake API server
whose answers carry resourceVersions, and a watch-fed index that lags behind it.

- a watch that does not show a created child for 10 s causes no second create;
- a child the watch has shown and someone then deletes is created again;
- an expectation the watch never meets expires, and the create sent again then (answered
  409: it exists) is no error;
- a scale is not repeated while the watch shows the child older than the scale's answer,
  and a change by someone else after the watch caught up is corrected.
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any

from kubernetes.client.exceptions import ApiException

from ramp.core.plan import Child
from ramp.shell.adapters.expectations import EXPECTATION_SECONDS, Expectations
from ramp.shell.adapters.kube import Kube
from ramp.shell.adapters.kube_objects import child_from_deployment, summarize_history
from ramp.shell.controller.controller import Controller

BODY: dict[str, Any] = {
    "apiVersion": "ramp.dev/v1alpha1",
    "kind": "Rollout",
    "metadata": {
        "name": "web",
        "namespace": "ns",
        "uid": "u1",
        "generation": 1,
        "resourceVersion": "1",
        "annotations": {},
    },
    "spec": {
        "replicas": 5,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "app:1"}]},
        },
        "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
    },
}


class Answer:
    """An undecoded answer (``_preload_content=False``): raw JSON bytes."""

    def __init__(self, obj: dict[str, Any]) -> None:
        self.data = json.dumps(obj).encode()
        self.released = False

    def release_conn(self) -> None:
        self.released = True


class Server:
    """A fake API server (Deployments, ControllerRevisions, the Rollout's status, Events)
    and a watch of Deployments that shows only what :meth:`sync` last copied."""

    def __init__(self) -> None:
        self.rv = 1
        self.body = copy.deepcopy(BODY)
        self.deployments: dict[str, dict[str, Any]] = {}
        self.watched: dict[str, dict[str, Any]] = {}
        self.history: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str]] = []
        self.now = 1000.0
        self.kube = Kube(_fake_client())
        self.kube.apps = self.kube.custom = self.kube.core = _Group(self)
        self.kube.expectations.clock = lambda: self.now
        self.controller = Controller(
            self.kube,
            children=lambda ns, name: [child_from_deployment(d) for d in self.watched.values()],
            history=lambda ns, name: [summarize_history(h) for h in self.history.values()],
        )

    def _bump(self, obj: dict[str, Any]) -> None:
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)

    def request(self, name: str, args: tuple[Any, ...]) -> Any:
        if name == "create_namespaced_deployment":
            dep = copy.deepcopy(args[1])
            self.calls.append(("create", dep["metadata"]["name"]))
            if dep["metadata"]["name"] in self.deployments:
                raise ApiException(status=409, reason="AlreadyExists")
            dep["metadata"].update(generation=1, creationTimestamp="2026-01-01T00:00:00Z")
            dep["status"] = {"replicas": 0, "readyReplicas": 0, "observedGeneration": 1}
            self._bump(dep)
            self.deployments[dep["metadata"]["name"]] = dep
            return Answer(dep)
        if name == "patch_namespaced_deployment":
            dep, patch = self.deployments[args[0]], args[2]
            self.calls.append(("scale" if "spec" in patch else "label", args[0]))
            if "spec" in patch:
                dep["spec"].update(patch["spec"])
            if "metadata" in patch:
                dep["metadata"]["labels"].update(patch["metadata"]["labels"])
            self._bump(dep)
            return Answer(dep)
        if name == "patch_namespaced_custom_object_status":
            self.body["status"] = _merge(self.body.get("status") or {}, args[5]["status"])
            self._bump(self.body)
            return copy.deepcopy(self.body)
        if name == "list_namespaced_deployment":
            self.calls.append(("list", ""))
            return _Items(copy.deepcopy(list(self.deployments.values())))
        if name == "list_namespaced_replica_set":
            return _Items([])  # no ReplicaSet children here
        if name == "create_namespaced_controller_revision":
            self.history[args[1]["metadata"]["name"]] = copy.deepcopy(args[1])
        elif name == "patch_namespaced_controller_revision":
            meta = self.history[args[0]]["metadata"]
            meta.setdefault("annotations", {}).update(args[2]["metadata"]["annotations"])
        elif name not in ("create_namespaced_event", "patch_namespaced_event"):
            raise AssertionError(f"unexpected API call {name}")
        return None

    def sync(self) -> None:
        """The watch catches up with the server."""
        self.watched = copy.deepcopy(self.deployments)

    def reconcile(self, seconds: float = 1.0) -> None:
        """One reconcile from the newest Rollout body, then ``seconds`` pass."""
        self.controller.remember(self.body)
        asyncio.run(self.controller.reconcile("ns", "web"))
        self.now += seconds

    def creates(self) -> list[str]:
        return [n for kind, n in self.calls if kind == "create"]


class _Items:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items


class _Group:
    def __init__(self, server: Server) -> None:
        self._server = server

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._server.request(name, args)

        return call


def _fake_client() -> Any:
    from kubernetes import client

    return client.ApiClient()


def _merge(old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(old)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


def test_a_watch_lagging_10s_behind_a_create_causes_no_second_create() -> None:
    server = Server()
    server.reconcile()
    assert len(server.creates()) == 1
    name = server.creates()[0]
    for _ in range(10):  # the watch does not show the child for 10 s of reconciles
        server.reconcile()
    assert server.creates() == [name]
    # The index lags behind our own create: the children are read from the API instead.
    assert len([k for k, _ in server.calls if k == "list"]) >= 10
    server.sync()  # the watch catches up: the expectation is met and dropped
    server.reconcile()
    assert server.creates() == [name]
    assert len(server.kube.expectations) == 0


def test_a_child_deleted_after_the_watch_showed_it_is_created_again() -> None:
    server = Server()
    server.reconcile()
    server.sync()
    server.reconcile()  # the watch shows it: trusted from now on
    [name] = server.creates()
    del server.deployments[name]  # someone deletes it, and the watch shows that
    server.sync()
    server.reconcile()
    assert server.creates() == [name, name]
    assert name in server.deployments


def test_an_expectation_the_watch_never_meets_expires_and_a_409_is_no_error() -> None:
    server = Server()
    server.reconcile()
    [name] = server.creates()
    server.now += EXPECTATION_SECONDS - 2
    server.reconcile()
    assert server.creates() == [name]  # still within the bound
    server.now += 2
    server.reconcile()  # past it: the create is sent again, answered 409
    assert server.creates() == [name, name]
    assert server.kube.expectations.expired == 1
    assert server.kube.counters.writes_by_kind["create-deployment"] == 2
    server.reconcile()  # and the 409 is remembered like a create: not sent a third time
    assert server.creates() == [name, name]


def test_a_scale_is_not_repeated_while_the_watch_shows_an_older_child() -> None:
    kube = Kube(_fake_client())
    server = Server()
    kube.apps = _Group(server)
    server.rv = 5
    server.deployments["web-a"] = {
        "metadata": {"name": "web-a", "labels": {}, "resourceVersion": "5"},
        "spec": {"replicas": 5},
    }
    stale = Child("web-a", "a", None, 5, 5, 5, True, version=5)
    kube.scale_child("ns", stale, 2, None)
    kube.scale_child("ns", stale, 2, None)  # the watch still shows rv 5: lag, not a change
    assert [k for k, _ in server.calls] == ["scale"]
    caught_up = Child("web-a", "a", None, 2, 5, 5, True, version=server.rv)
    kube.expectations.observe("ns", [caught_up])
    assert len(kube.expectations) == 0
    changed = Child("web-a", "a", None, 4, 5, 5, True, version=server.rv + 1)  # by someone
    kube.scale_child("ns", changed, 2, None)
    assert [k for k, _ in server.calls] == ["scale", "scale"]


def test_an_older_object_of_the_same_name_does_not_meet_a_create() -> None:
    expectations = Expectations(clock=lambda: 0.0)
    expectations.expect(("ns", "web-a"), version=10)
    old = Child("web-a", "a", None, 5, 5, 5, True, deleting=True, version=7)
    expectations.observe("ns", [old])
    assert expectations.pending(("ns", "web-a")) is not None
    expectations.observe("ns", [Child("web-a", "a", None, 5, 0, 0, True, version=10)])
    assert expectations.pending(("ns", "web-a")) is None


def test_step_timing_splits_a_reconcile_into_queue_observe_plan_apply() -> None:
    import time
    from concurrent.futures import ThreadPoolExecutor

    from ramp.shell.adapters.api_clock import ApiClock
    from ramp.shell.controller.timing import StepTiming

    class Client:
        def call_api(self) -> str:
            time.sleep(0.02)
            return "ok"

    api, clock = Client(), ApiClock()
    clock.wrap(api)
    timing = StepTiming(kicked=time.monotonic() - 0.05, started=time.monotonic())
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(timing.timed(api.call_api, clock)).result() == "ok"
        timing.mark("observe")
        timing.mark("plan")
        pool.submit(timing.timed(api.call_api, clock)).result()
        timing.mark("apply")
    parts = timing.parts()
    assert parts["queue"] >= 0.05
    assert parts["observe_api"] >= 0.02 and parts["apply_api"] >= 0.02
    assert parts["apply"] >= parts["apply_api"] + parts["apply_pool"] - 0.001
    whole = parts["queue"] + parts["observe"] + parts["plan"] + parts["apply"]
    assert abs(whole - parts["total"]) < 0.001


def test_a_new_template_is_not_created_beside_a_child_the_index_has_not_shown() -> None:
    """Issue 19 (found by the canary machine): a create of ours the watch has not shown
    yet, then a new template. Planned from the lagging index, the new revision was
    created beside the unseen one (R=1: 3 pods specified, R + maxSurge is 2). The shell
    reads the children from the API while a create of ours is missing from the index."""
    server = Server()
    server.body["spec"]["replicas"] = 1
    server.body["spec"]["strategy"]["canary"]["maxSurge"] = 1
    server.reconcile()
    server.sync()
    server.reconcile()
    server.body["spec"]["template"]["spec"]["containers"][0]["image"] = "app:2"
    server.body["metadata"]["generation"] += 1
    server._bump(server.body)
    server.reconcile()  # creates the canary; the watch does not show it
    server.body["spec"]["template"]["spec"]["containers"][0]["image"] = "app:3"
    server.body["metadata"]["generation"] += 1
    server._bump(server.body)
    server.reconcile()
    specified = sum(d["spec"]["replicas"] for d in server.deployments.values())
    assert specified <= 2, {n: d["spec"]["replicas"] for n, d in server.deployments.items()}


def test_a_child_the_watch_shows_older_than_our_scale_is_planned_as_we_scaled_it() -> None:
    """Issue 19 (make fuzz-for, seed 986322198): a scale to 0 of ours the watch has not
    shown, then a plan from the index counted that child's ready pods as serving and took
    the last ready pods of the other revision away. The planner sees what we wrote (its
    replicas, not settled) until the watch shows the scale; then the watch again."""
    expectations = Expectations(clock=lambda: 0.0)
    expectations.expect(("ns", "web-a"), version=10, replicas=0, role="previous")
    stale = Child("web-a", "a", "stable", 1, 1, 1, True, version=9)
    other = Child("web-b", "b", "canary", 1, 1, 1, True, version=8)
    seen = expectations.overlay("ns", [stale, other])
    assert seen[0].replicas == 0 and seen[0].serving == 0
    assert seen[0].role == "previous" and not seen[0].settled
    assert seen[1] == other  # no write of ours pending on it
    shown = Child("web-a", "a", "previous", 0, 1, 1, True, version=10)
    expectations.observe("ns", [shown])
    assert expectations.overlay("ns", [shown]) == [shown]
    someone = Child("web-a", "a", "previous", 3, 1, 1, True, version=11)  # scaled by hand
    assert expectations.overlay("ns", [someone]) == [someone]
