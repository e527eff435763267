"""Namespaces the framework missed: a re-list that repairs kopf's view of the cluster.

With namespace patterns (``--namespace 'team-*'``), kopf 1.45 lists the namespaces once,
then starts a watch whose own initial list it ignores (events of type ``None``). A
namespace created between the two lists (the operator's first second, when a test or a
GitOps sync creates it together with its Rollouts) or while that watch re-lists after a
"410 Gone" is never watched: its Rollouts are never reconciled, until the next restart.
Seen once in CI: a namespace created right after the operator started stayed unwatched.

Ramp lists the namespaces itself a few times shortly after start and then every
:data:`PERIOD` seconds, and adds each matching one kopf lacks to kopf's ``Insights`` (the
structure kopf's own observer revises; kopf then starts its watch). It only adds: a
namespace that is gone is kopf's to drop (its watch sees the deletion).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection, Iterable

from kopf._cogs.structs.references import Insights, NamespaceName, match_namespace

log = logging.getLogger("ramp.runtime")

RESCANS = (1.0, 3.0, 10.0)
"""Seconds after kopf's first listing for the first re-lists (the start-up window)."""
PERIOD = 60.0
"""Seconds between the re-lists after those (a watch that re-listed after 410 Gone)."""


def missing(insights: Insights, names: Iterable[str], patterns: Collection[str]) -> set[str]:
    """The listed namespaces matching ``patterns`` that kopf does not watch.

    >>> seen = Insights(); seen.namespaces.update({"team-a"})
    >>> sorted(missing(seen, ["team-a", "team-b", "ops"], ["team-*"]))
    ['team-b']
    """
    have = insights.namespaces
    return {
        n
        for n in names
        if n not in have and any(match_namespace(NamespaceName(n), p) for p in patterns)
    }


async def revise(insights: Insights, names: Iterable[str], patterns: Collection[str]) -> set[str]:
    """Add the matching namespaces kopf lacks and wake its orchestrator; returns them."""
    async with insights.revised:
        added = missing(insights, names, patterns)
        if added:
            insights.namespaces.update(NamespaceName(n) for n in added)
            insights.revised.notify_all()
    if added:
        log.warning(
            "watching %d namespace(s) the framework's namespace watch missed: %s",
            len(added),
            ", ".join(sorted(added)),
        )
    return added


async def keep_namespaces(
    insights: Insights,
    patterns: Collection[str],
    list_names: Callable[[], list[str]],
    *,
    rescans: Iterable[float] = RESCANS,
    period: float = PERIOD,
) -> None:
    """Re-list the namespaces (``list_names`` runs in a thread) after kopf's first listing,
    at ``rescans`` and then every ``period`` seconds; never raises (an API error waits for
    the next turn)."""
    await insights.ready_namespaces.wait()
    began = asyncio.get_running_loop().time()
    delays = list(rescans)
    while True:
        at = delays.pop(0) if delays else None
        if at is None:
            await asyncio.sleep(period)
        else:
            await asyncio.sleep(max(0.0, began + at - asyncio.get_running_loop().time()))
        try:
            names = await asyncio.to_thread(list_names)
        except Exception as exc:  # an API error: the next turn lists again
            log.debug("namespace re-list failed: %s", exc)
            continue
        await revise(insights, names, patterns)
