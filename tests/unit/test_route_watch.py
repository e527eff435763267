"""The HTTPRoutes' list+watch (``ramp.shell.runtime.route_watch``), against a real HTTP server
playing the API server: it starts only once a Rollout names a route, a route's change
kicks the Rollouts naming it (``Cause.ROUTE``), and without the Gateway API or the
permission (404, 403) it says so once and looks again only after ``absent`` seconds:
no failure, no warning, no busy loop."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from kopf._cogs.structs.references import Insights, NamespaceName
from test_kube_watch import FakeApi, serve, until
from test_route_index import rollout, route

from ramp.shell.adapters.kube_watch import list_watch
from ramp.shell.controller.route_index import RouteIndex
from ramp.shell.runtime import route_watch


def test_routes_not_served_are_said_once_and_looked_at_after_absent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """404 (no such CRD), 404, 403 (no permission), then served: one INFO line, nothing
    listed meanwhile, each attempt ``absent`` after the last (a plain error would retry
    after ``backoff``, ten times as often here)."""
    api = FakeApi(
        lists=[404, 404, 403, {"items": [route("shop")], "metadata": {"resourceVersion": "5"}}],
        watches=[[]],
    )
    listed: list[list[Any]] = []

    async def scenario() -> float:
        runner, kube, _ = await serve(api)
        loop = asyncio.get_running_loop()
        began = loop.time()
        task = asyncio.create_task(
            list_watch(
                kube,
                route_watch.routes_path("ns"),
                {},
                listed.append,
                lambda kind, obj: None,
                backoff=(0.01,),
                absent=0.2,
            )
        )
        try:
            await until(lambda: bool(listed))
            return loop.time() - began
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            api.stop.set()
            await kube.close()
            await runner.cleanup()

    with caplog.at_level(logging.DEBUG, logger="ramp.watch"):
        took = asyncio.run(scenario())
    paths = [p for p, q, _ in api.requests if q.get("watch") != "true"]
    assert paths == ["/apis/gateway.networking.k8s.io/v1/namespaces/ns/httproutes"] * 4
    assert took >= 0.6, took  # three waits of `absent`, not of `backoff`
    said = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "ramp.watch"]
    assert [level for level, _ in said if level >= logging.INFO] == [logging.INFO], said
    assert "not served to Ramp (404)" in said[0][1], said
    assert [len(items) for items in listed] == [1]


def test_the_watch_starts_once_a_rollout_names_a_route_then_a_change_kicks_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(route_watch, "WAKE_SECONDS", 0.02)
    api = FakeApi(
        lists=[{"items": [route("shop", 1, 4)], "metadata": {"resourceVersion": "4"}}],
        watches=[
            [
                {"type": "MODIFIED", "object": route("shop", 1, 5, labels={"a": "b"})},
                {"type": "MODIFIED", "object": route("shop", 2, 6)},
            ]
        ],
    )
    kicks: list[tuple[str, str]] = []
    index = RouteIndex(kicks.append)

    async def scenario() -> None:
        runner, kube, _ = await serve(api)
        insights = Insights()
        insights.namespaces.add(NamespaceName("ns"))
        insights.ready_namespaces.set()
        task = asyncio.create_task(route_watch.watch_routes(kube, insights, index))
        try:
            await asyncio.sleep(0.3)
            assert api.requests == []  # no Rollout names a route: nothing is watched
            index.remember("ns", "web", rollout(["shop"]))
            await until(lambda: bool(kicks))
            await asyncio.sleep(0.1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            api.stop.set()
            await runner.cleanup()

    asyncio.run(scenario())
    assert kicks == [("ns", "web")]  # the new generation; not the label, not the list
    assert index.listed == {"ns"}
