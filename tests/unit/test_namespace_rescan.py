"""Namespaces kopf's namespace watch misses are watched after a re-list (CI failure of
test_checks: a namespace created in the operator's first second was never reconciled)."""

from __future__ import annotations

import asyncio

import pytest
from kopf._cogs.structs.references import Insights, NamespaceName
from kopf._core.reactor.observation import process_discovered_namespace_event

from ramp.shell.runtime.namespaces import keep_namespaces, missing, revise


def test_kopf_ignores_the_namespaces_its_watch_lists_at_start() -> None:
    """The gap Ramp repairs: kopf's namespace watch drops the objects of its own initial
    list (type None). If kopf starts handling them, this fails and the re-list can go."""
    insights = Insights()

    async def go() -> None:
        event = {"type": None, "object": {"metadata": {"name": "team-late"}}}
        await process_discovered_namespace_event(
            raw_event=event,  # type: ignore[arg-type]
            namespaces=["team-*"],
            insights=insights,
        )

    asyncio.run(go())
    assert NamespaceName("team-late") not in insights.namespaces


@pytest.mark.parametrize(
    ("patterns", "names", "want"),
    [
        (["team-*"], ["team-a", "team-b", "ops"], {"team-b"}),
        (["team-*,!team-b"], ["team-a", "team-b", "team-c"], {"team-c"}),
        (["ops", "ck-*"], ["ops", "ck-1", "kube-system"], {"ops", "ck-1"}),
        (["team-*"], [], set()),
    ],
)
def test_only_matching_namespaces_kopf_lacks_are_added(
    patterns: list[str], names: list[str], want: set[str]
) -> None:
    insights = Insights()
    insights.namespaces.add(NamespaceName("team-a"))
    assert missing(insights, names, patterns) == want

    async def go() -> tuple[set[str], bool]:
        woken = asyncio.Event()

        async def waiter() -> None:
            async with insights.revised:
                await insights.revised.wait()
                woken.set()

        task = asyncio.create_task(waiter())
        await asyncio.sleep(0)
        added = await revise(insights, names, patterns)
        await asyncio.sleep(0.01)
        task.cancel()
        return added, woken.is_set()

    added, woken = asyncio.run(go())
    assert added == want
    assert woken == bool(want), "kopf's orchestrator is woken exactly when something changed"
    assert want <= insights.namespaces
    assert NamespaceName("kube-system") not in insights.namespaces


def test_the_relist_starts_after_kopfs_listing_survives_errors_and_repeats() -> None:
    insights = Insights()
    calls: list[int] = []
    names = [["ck-a"], ["ck-a", "ck-b"]]

    def list_names() -> list[str]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the API server is away")
        return names[min(len(calls) - 2, 1)]

    async def go() -> None:
        task = asyncio.create_task(
            keep_namespaces(insights, ["ck-*"], list_names, rescans=(0.0, 0.01), period=0.01)
        )
        await asyncio.sleep(0.05)
        assert not calls, "nothing is listed before kopf's own first listing"
        insights.ready_namespaces.set()
        for _ in range(200):
            if {"ck-a", "ck-b"} <= insights.namespaces:
                break
            await asyncio.sleep(0.01)
        assert not task.done(), "an API error never ends the loop"
        task.cancel()

    asyncio.run(go())
    assert {"ck-a", "ck-b"} <= insights.namespaces
    assert len(calls) >= 3
