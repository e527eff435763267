"""The HTTPRoutes' list+watch: a route's change wakes the Rollouts that name it.

Started once a Rollout names an HTTPRoute (an operator whose Rollouts name none watches
nothing more), one list+watch per namespace kopf watches, as the child watch
(:func:`ramp.shell.runtime.child_watch.follow_namespaces`,
:func:`ramp.shell.adapters.kube_watch.list_watch`), feeding
:class:`ramp.shell.controller.route_index.RouteIndex`. Without the Gateway API in the
cluster, or without the chart's ``rbac.httpRoutes`` (list and watch of ``httproutes``),
the API server answers 404 or 403: said once, looked at again every
:data:`ABSENT_SECONDS`; the Rollouts' routes are then read at each of their passes only
(a change is seen at the Rollout's next event or resync).
"""

from __future__ import annotations

import asyncio
import functools

from kopf._cogs.structs.references import Insights

from ramp.core.httproute import GROUP, PLURAL, VERSION
from ramp.shell.adapters.kube_watch import AsyncKube, list_watch
from ramp.shell.controller.route_index import RouteIndex
from ramp.shell.runtime.child_watch import follow_namespaces

ABSENT_SECONDS = 60.0
"""After a 403 or 404 of the HTTPRoutes (no Gateway API, no permission): look again then."""
WAKE_SECONDS = 1.0
"""How often the watch looks whether a Rollout names a route yet (before it starts)."""


def routes_path(namespace: str | None) -> str:
    """The HTTPRoutes collection of a namespace (None: of every namespace)."""
    if namespace is None:
        return f"/apis/{GROUP}/{VERSION}/{PLURAL}"
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{PLURAL}"


def watch_one(kube: AsyncKube, index: RouteIndex, namespace: str | None) -> asyncio.Task[None]:
    """The list+watch of one namespace's HTTPRoutes (None: every namespace)."""
    return asyncio.create_task(
        list_watch(
            kube,
            routes_path(namespace),
            {},
            functools.partial(index.routes_listed, namespace),
            index.event,
            absent=ABSENT_SECONDS,
        ),
        name=f"routes in {namespace or 'every namespace'}",
    )


async def watch_routes(kube: AsyncKube, insights: Insights, index: RouteIndex) -> None:
    """Once a Rollout names a route: keep one route watch per namespace kopf watches,
    until cancelled."""
    try:
        while not index:
            await asyncio.sleep(WAKE_SECONDS)
        await follow_namespaces(
            insights, functools.partial(watch_one, kube, index), index.unwatched, "route"
        )
    finally:
        await kube.close()
