"""Ramp's own list+watch of the child Deployments (``ramp.shell.adapters.kube_watch``,
``ramp.shell.runtime.child_watch``), against a real HTTP server that plays the API server:
a watch cut by "410 Gone" lists again and the children deleted meanwhile are noticed
(their Rollout kicked), an API error is retried, a line longer than the stream reader's
limit is read, the token is asked of the configuration on each request, and the watches
follow the namespaces kopf watches (a namespace dropped forgets its children)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from kopf._cogs.structs.references import Insights, NamespaceName
from kubernetes.client import Configuration

from ramp.shell import handlers
from ramp.shell.adapters.kube_watch import AsyncKube, list_watch
from ramp.shell.controller.route_index import RouteIndex
from ramp.shell.controller.workqueue import Cause
from ramp.shell.runtime import child_watch


def child(
    name: str, rv: int, ready: int = 1, namespace: str = "ns", big: int = 0
) -> dict[str, Any]:
    rollout = name.split("-")[0]
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "resourceVersion": str(rv),
            "generation": 1,
            "labels": {"ramp.dev/rollout": rollout, "ramp.dev/revision": "abc"},
            "annotations": {"padding": "x" * big} if big else {},
        },
        "spec": {"replicas": 2},
        "status": {"replicas": 2, "readyReplicas": ready, "observedGeneration": 1},
    }


class FakeApi:
    """Plays the API server's Deployments collection: each list and watch request is
    answered by the next entry of a script (its ReplicaSets collection holds none)."""

    def __init__(self, lists: list[Any], watches: list[Any]) -> None:
        self.lists = lists
        self.watches = watches
        self.requests: list[tuple[str, dict[str, str], str]] = []
        self.replica_sets: list[str] = []
        """The paths of the requests for ReplicaSets (answered apart from the script)."""
        self.stop = asyncio.Event()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        params = dict(request.query)
        if "/replicasets" in request.path:  # none of Ramp's: a list of none, a quiet watch
            self.replica_sets.append(request.path)
            if params.get("watch") != "true":
                return web.json_response({"items": [], "metadata": {"resourceVersion": "1"}})
            response = web.StreamResponse()
            await response.prepare(request)
            await asyncio.wait_for(self.stop.wait(), 30)
            return response
        self.requests.append((request.path, params, request.headers.get("Authorization", "")))
        if params.get("watch") != "true":
            answer = self.lists.pop(0) if self.lists else {"items": [], "metadata": {}}
            if isinstance(answer, int):
                return web.Response(status=answer, text="refused")
            return web.json_response(answer)
        script = self.watches.pop(0) if self.watches else []
        if isinstance(script, int):
            return web.Response(status=script, text="refused")
        response = web.StreamResponse()
        await response.prepare(request)
        for event in script:
            await response.write(json.dumps(event).encode() + b"\n")
        if not self.watches:
            await asyncio.wait_for(self.stop.wait(), 30)  # the last watch stays open
        return response


class Queue:
    def __init__(self) -> None:
        self.kicks: list[Any] = []

    def kick(self, key: Any, cause: Any) -> None:
        self.kicks.append((key, cause))


class Controller:
    def __init__(self) -> None:
        self.queue = Queue()
        self.bodies: dict[Any, Any] = {}
        self.routes = RouteIndex(lambda key: self.queue.kick(key, Cause.ROUTE))

    def owns(self, namespace: str, name: str) -> bool:
        return True


@pytest.fixture(autouse=True)
def _state(monkeypatch: pytest.MonkeyPatch) -> Controller:
    stub = Controller()
    monkeypatch.setattr(handlers.State, "controller", stub)
    for name in ("seen", "children", "placed"):
        monkeypatch.setattr(handlers.State, name, {})
    monkeypatch.setattr(handlers.State, "listed", set())
    monkeypatch.setattr(handlers.State, "listed_kinds", {})
    return stub


async def serve(api: FakeApi) -> tuple[web.AppRunner, AsyncKube, list[int]]:
    app = web.Application()
    app.router.add_get("/{tail:.*}", api.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    config = Configuration(host=f"http://127.0.0.1:{port}")
    config.api_key = {"authorization": "t0"}
    tokens = [0]

    def refresh(cfg: Any) -> None:  # as the in-cluster configuration's hook does
        tokens[0] += 1
        cfg.api_key["authorization"] = f"t{tokens[0]}"
        cfg.api_key_prefix["authorization"] = "Bearer"

    config.refresh_api_key_hook = refresh
    return runner, AsyncKube(config), tokens


async def until(check: Any, seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("not reached in time")


def test_gone_lists_again_and_a_child_deleted_meanwhile_kicks(_state: Controller) -> None:
    """The watch is cut by 410 Gone after one event; the child web-b was deleted while no
    watch ran (no DELETED event will ever come): the re-list leaves it out, the index
    drops it and its Rollout is kicked; web-a's readiness change kicks too."""
    api = FakeApi(
        lists=[
            {
                "items": [child("web-a", 10), child("api-b", 11)],
                "metadata": {"resourceVersion": "11"},
            },
            {"items": [child("web-a", 12, ready=2)], "metadata": {"resourceVersion": "20"}},
        ],
        watches=[
            [
                {"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "15"}}},
                {"type": "ERROR", "object": {"code": 410, "message": "too old"}},
            ],
            [],
        ],
    )

    async def scenario() -> None:
        runner, kube, _ = await serve(api)
        path = child_watch.deployments_path("ns")
        handlers.children_listed("ns", [], kind="ReplicaSet")  # none: only Deployments here
        task = asyncio.create_task(
            list_watch(
                kube,
                path,
                {"labelSelector": "ramp.dev/rollout"},
                lambda items: handlers.children_listed("ns", items),  # ReplicaSets: below
                handlers.child_event,
                backoff=(0.01,),
            )
        )
        try:
            await until(lambda: len(api.requests) >= 4)
            await until(lambda: ("ns", "api-b") not in handlers.State.placed)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            api.stop.set()
            await kube.close()
            await runner.cleanup()

    asyncio.run(scenario())
    paths = [(p, q.get("watch"), q.get("resourceVersion")) for p, q, _ in api.requests]
    assert paths[:4] == [
        ("/apis/apps/v1/namespaces/ns/deployments", None, None),
        ("/apis/apps/v1/namespaces/ns/deployments", "true", "11"),
        ("/apis/apps/v1/namespaces/ns/deployments", None, None),  # 410: listed again
        ("/apis/apps/v1/namespaces/ns/deployments", "true", "20"),
    ]
    assert all(q["labelSelector"] == "ramp.dev/rollout" for _, q, _ in api.requests)
    assert handlers.children_of("ns", "web") is not None
    assert [c.ready for c in handlers.children_of("ns", "web") or []] == [2]
    assert handlers.children_of("ns", "api") == []
    kicks = _state.queue.kicks
    assert kicks[:2] == [(("ns", "web"), Cause.CHILD), (("ns", "api"), Cause.CHILD)]
    assert set(kicks[2:]) == {(("ns", "web"), Cause.CHILD), (("ns", "api"), Cause.CHILD)}


def test_errors_are_retried_and_long_lines_read_and_the_token_asked_each_time(
    _state: Controller,
) -> None:
    """The API server refuses (503) the first list and the first watch (a restart); both
    are retried. An event of 200 KB (beyond the reader's 64 KB line limit) is read. Each
    request carries the token the configuration's refresh hook gives at that moment."""
    api = FakeApi(
        lists=[503, {"items": [], "metadata": {"resourceVersion": "5"}}],
        watches=[
            500,
            [
                {"type": "ADDED", "object": child("web-a", 6, big=200_000)},
                {"type": "MODIFIED", "object": child("web-a", 7, ready=2)},
            ],
        ],
    )

    async def scenario() -> None:
        runner, kube, _ = await serve(api)
        handlers.children_listed(None, [], kind="ReplicaSet")  # none: only Deployments here
        task = asyncio.create_task(
            list_watch(
                kube,
                child_watch.deployments_path(None),
                {"labelSelector": "ramp.dev/rollout"},
                lambda items: handlers.children_listed(None, items),  # ReplicaSets: below
                handlers.child_event,
                backoff=(0.01,),
            )
        )
        try:
            await until(lambda: [c.ready for c in handlers.children_of("ns", "web") or []] == [2])
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            api.stop.set()
            await kube.close()
            await runner.cleanup()

    asyncio.run(scenario())
    assert [p for p, _, _ in api.requests] == ["/apis/apps/v1/deployments"] * 4
    tokens = [t for _, _, t in api.requests]
    assert tokens == [f"Bearer t{i}" for i in range(1, 5)]
    assert _state.queue.kicks == [(("ns", "web"), Cause.CHILD)] * 2


def test_the_watches_follow_the_namespaces_kopf_watches(
    _state: Controller, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One watch per namespace kopf watches; a namespace kopf stops watching (deleted,
    no longer matching) has its watch stopped and its children forgotten; one it starts
    watching gets a watch. A Rollout's first event waits for its namespace's list."""
    started: list[str | None] = []
    stopped: list[str | None] = []

    async def fake(
        kube: Any, path: str, params: Any, on_list: Any, on_event: Any, **_: Any
    ) -> None:
        if path.endswith("/replicasets"):  # none of Ramp's there
            on_list([])
            await asyncio.sleep(60)
            return
        namespace = path.split("/")[5] if "/namespaces/" in path else None
        started.append(namespace)
        try:
            on_list([child(f"web-{namespace}", 1, namespace=str(namespace))])
            await asyncio.sleep(60)
        finally:
            stopped.append(namespace)

    monkeypatch.setattr(child_watch, "list_watch", fake)

    class Kube:
        async def close(self) -> None:
            pass

    async def scenario() -> None:
        insights = Insights()
        insights.namespaces.update({NamespaceName("a"), NamespaceName("b")})
        insights.ready_namespaces.set()
        task = asyncio.create_task(child_watch.watch_children(Kube(), insights))  # type: ignore[arg-type]
        await until(lambda: handlers.State.listed == {"a", "b"})
        assert handlers.State.watching
        async with insights.revised:
            insights.namespaces.discard(NamespaceName("a"))
            insights.namespaces.add(NamespaceName("c"))
            insights.revised.notify_all()
        await until(lambda: handlers.State.listed == {"b", "c"})
        assert handlers.children_of("a", "web") is None
        assert [c.name for c in handlers.children_of("c", "web") or []] == ["web-c"]
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        assert not handlers.State.watching

    asyncio.run(scenario())
    assert sorted(map(str, started)) == ["a", "b", "c"]
    assert sorted(map(str, stopped)) == ["a", "b", "c"]
    assert ("a", "web-a") not in handlers.State.placed


def test_a_rollouts_first_event_waits_for_its_namespaces_list(
    _state: Controller, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(handlers.State, "watching", True)
    body = {"metadata": {"name": "web", "namespace": "ns", "resourceVersion": "1"}}
    remembered: list[Any] = []
    _state.remember = remembered.append  # type: ignore[attr-defined]

    async def scenario() -> None:
        event = asyncio.create_task(
            handlers.rollout_changed(type="ADDED", namespace="ns", name="web", body=body)  # type: ignore[arg-type]
        )
        await asyncio.sleep(0.2)
        assert not event.done() and _state.queue.kicks == []
        handlers.children_listed("ns", [])
        await asyncio.sleep(0.2)
        assert not event.done()  # the ReplicaSets (--children=replicasets) are not listed yet
        handlers.children_listed("ns", [], kind="ReplicaSet")
        await asyncio.wait_for(event, 5)

    asyncio.run(scenario())
    assert _state.queue.kicks == [(("ns", "web"), Cause.ROLLOUT)]


def test_a_graceful_stop_stops_the_child_watches_with_the_workers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The child watch starts its namespaces' watches after kopf started: at exit kopf waits
    up to 5 s for such tasks before cancelling them. The cleanup (``stop_workers``) stops
    them, so a SIGTERM (a Lease handed over) takes no such wait (seen before: every stop
    took 5 s more, a graceful Lease handover 6.4 s under load)."""
    from kopf._core.reactor.running import run_tasks

    stopped: list[str | None] = []

    async def fake(
        kube: Any, path: str, params: Any, on_list: Any, on_event: Any, **_: Any
    ) -> None:
        namespace = path.split("/")[5] if "/namespaces/" in path else None
        try:
            on_list([])
            await asyncio.sleep(60)
        finally:
            stopped.append(namespace)

    monkeypatch.setattr(child_watch, "list_watch", fake)
    monkeypatch.setattr(handlers.State, "controller", None)

    class Kube:
        async def close(self) -> None:
            pass

    async def scenario() -> float:
        insights = Insights()
        insights.namespaces.update({NamespaceName("a"), NamespaceName("b")})
        insights.ready_namespaces.set()
        # As ramp.shell.runtime.run: the child watch exists before kopf starts.
        watch = asyncio.create_task(child_watch.watch_children(Kube(), insights))  # type: ignore[arg-type]
        monkeypatch.setattr(handlers.State, "stopped_with_workers", [watch], raising=False)
        existing = asyncio.all_tasks()

        async def operator() -> None:  # kopf's root tasks: started, then the cleanup
            await until(lambda: handlers.State.listed == {"a", "b"})
            await handlers.stop_workers()
            # each namespace's two watches (Deployments, ReplicaSets)
            assert sorted(map(str, stopped)) == ["a", "a", "b", "b"], "a watch outlived the cleanup"
            assert watch.done() and not handlers.State.watching

        began = asyncio.get_running_loop().time()
        await run_tasks([asyncio.create_task(operator())], ignored=existing)
        return asyncio.get_running_loop().time() - began

    took = asyncio.run(scenario())
    assert took < 2.5, f"kopf waited {took:.1f}s for tasks left running after the cleanup"
