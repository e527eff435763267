"""The child Deployments' and ReplicaSets' list+watches: one pair per namespace the operator
watches.

kopf keeps the set of watched namespaces (``Insights.namespaces``: ``None`` for every
namespace, the ``--namespace`` names, or the namespaces matching its patterns as they
come and go, with :mod:`ramp.shell.runtime.namespaces`' repairs); the child watch follows
it, so it lists and watches exactly where kopf watches the Rollouts and needs no more
permissions than they do (a tenant's Role in its namespace). Each watch is
:func:`ramp.shell.adapters.kube_watch.list_watch` (re-lists on 410 Gone, retries on API
errors) feeding :func:`ramp.shell.handlers.child_event`; a namespace no longer watched
drops its children (:func:`ramp.shell.handlers.children_unwatched`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from typing import Any

from kopf._cogs.structs.references import Insights

from ramp.api.labels import ROLLOUT_LABEL
from ramp.shell import handlers
from ramp.shell.adapters.kube_objects import CHILD_PLURALS
from ramp.shell.adapters.kube_watch import AsyncKube, list_watch

log = logging.getLogger("ramp.runtime")


def deployments_path(namespace: str | None, kind: str = "Deployment") -> str:
    """The Deployments (or ReplicaSets: ``kind``) collection of a namespace (None: of
    every namespace)."""
    plural = CHILD_PLURALS[kind]
    if namespace is None:
        return f"/apis/apps/v1/{plural}"
    return f"/apis/apps/v1/namespaces/{namespace}/{plural}"


ABSENT_SECONDS = 60.0
"""Seconds between two looks at ReplicaSets Ramp may not read (a tenant's Role without
them): until then there are none of Ramp's there."""


def watch_one(kube: AsyncKube, namespace: str | None) -> asyncio.Task[None]:
    """The list+watches of one namespace's labelled Deployments and ReplicaSets (None:
    every namespace). Server-side label selector: the API server streams nothing else (an
    adopted Deployment carries the label too, with a value no Rollout name can have; the
    ReplicaSets of a Deployment carry its pod template's labels, not this one)."""

    async def both() -> None:
        listed = functools.partial(handlers.children_listed, namespace)
        await asyncio.gather(
            list_watch(
                kube,
                deployments_path(namespace),
                {"labelSelector": ROLLOUT_LABEL},
                listed,
                handlers.child_event,
            ),
            list_watch(
                kube,
                deployments_path(namespace, "ReplicaSet"),
                {"labelSelector": ROLLOUT_LABEL},
                functools.partial(listed, kind="ReplicaSet"),
                replica_set_event,
                absent=ABSENT_SECONDS,
                on_absent=functools.partial(listed, [], kind="ReplicaSet"),
            ),
        )

    return asyncio.create_task(both(), name=f"children in {namespace or 'every namespace'}")


def replica_set_event(type: str | None, body: dict[str, Any]) -> None:
    """A labelled ReplicaSet's event (a watch's objects carry their kind; made sure)."""
    handlers.child_event(type, {**body, "kind": "ReplicaSet"})


async def follow_namespaces(
    insights: Insights,
    start: Callable[[str | None], asyncio.Task[None]],
    unwatched: Callable[[str | None], None],
    what: str,
) -> None:
    """Keep one task per namespace kopf watches (``start``), until cancelled; a namespace
    no longer watched has its task cancelled and ``unwatched`` called."""
    watches: dict[str | None, asyncio.Task[None]] = {}
    try:
        await insights.ready_namespaces.wait()
        while True:
            async with insights.revised:
                wanted = set(insights.namespaces)
                for namespace in [n for n in watches if n not in wanted]:
                    watches.pop(namespace).cancel()
                    unwatched(namespace)
                for namespace in wanted - watches.keys():
                    watches[namespace] = start(namespace)
                log.debug("%s watches: %s", what, sorted(str(n) for n in watches))
                await insights.revised.wait()
    finally:
        for task in watches.values():
            task.cancel()
        for task in watches.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def watch_children(kube: AsyncKube, insights: Insights) -> None:
    """Keep one child watch per namespace kopf watches, until cancelled."""
    handlers.State.watching = True
    try:
        await follow_namespaces(
            insights, functools.partial(watch_one, kube), handlers.children_unwatched, "child"
        )
    finally:
        handlers.State.watching = False
        await kube.close()
