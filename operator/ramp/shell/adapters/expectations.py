"""Expectations: what our own writes to child Deployments must make the watch show.

The index of children is fed by a watch, which lags behind our writes (by seconds when
the API server is busy). After a create or a scale, the answer's ``resourceVersion`` is
remembered by child name; until the watch shows that object at least that new, a
difference between the index and what we wrote is the watch's lag, not a change: the same
write is not sent again (a create never twice). Once the watch has caught up the
expectation is dropped and the index is trusted again, so a child deleted or scaled by
someone else afterwards is corrected. An expectation the watch never meets (a missed
event, an object deleted before the watch showed it) expires after ``EXPECTATION_SECONDS``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

from ramp.core.model import Child

EXPECTATION_SECONDS = 60.0
"""Safety net: how long an expectation the watch never meets holds back a write."""
MAX_KEPT = 4096
"""Above this many expectations, expired ones are swept on the next write."""

Key = tuple[str, str]
"""(namespace, child Deployment name)."""


@dataclass(frozen=True)
class Expectation:
    """What a write of ours answered: the watch must show this object at least this new."""

    version: int
    """The answer's ``resourceVersion`` (0: unknown, e.g. a create answered 409)."""
    replicas: int | None
    """``spec.replicas`` written (None: not written)."""
    role: str | None
    """Role label written (None: not written)."""
    at: float
    """When it was written (the clock of :class:`Expectations`)."""
    rollout: str | None = None
    """The Rollout a create was for (None: a scale). See :meth:`Expectations.unshown`."""

    def met_by(self, child: Child) -> bool:
        """Whether the watch's view of the child is at least as new as this write.

        With both resourceVersions known, it is a comparison of them (etcd's are integers;
        the same assumption as the Rollout body cache). Without them, the watch is
        believed once it shows what was written (any object, for a create)."""
        if self.version and child.version:
            return child.version >= self.version
        return (self.replicas is None or child.replicas == self.replicas) and (
            self.role is None or child.role == self.role
        )


class Expectations:
    """Pending writes to child Deployments, keyed by (namespace, name); thread-safe
    enough for the controller's API threads (single dict operations, no iteration while
    another thread writes except the sweep, which copies first)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, ttl: float = EXPECTATION_SECONDS
    ) -> None:
        self.clock = clock
        self.ttl = ttl
        self._pending: dict[Key, Expectation] = {}
        self.held_back = 0
        """Writes not sent because an expectation was pending (for the benchmark)."""
        self.expired = 0
        """Expectations the watch never met within ``ttl``."""

    def expect(
        self,
        key: Key,
        version: int,
        replicas: int | None = None,
        role: str | None = None,
        rollout: str | None = None,
    ) -> None:
        """Remember a write's answer (a newer write of the same child replaces it)."""
        now = self.clock()
        if len(self._pending) > MAX_KEPT:
            for old, exp in list(self._pending.items()):
                if now - exp.at > self.ttl:
                    self._pending.pop(old, None)
        self._pending[key] = Expectation(version, replicas, role, now, rollout)

    def pending(self, key: Key, child: Child | None = None) -> Expectation | None:
        """The expectation on ``key`` the watch has not met yet (None: trust the index).

        ``child`` is the watch's view of it (None: the watch does not show it)."""
        exp = self._pending.get(key)
        if exp is None:
            return None
        if self.clock() - exp.at > self.ttl:
            self._pending.pop(key, None)
            self.expired += 1
            return None
        if child is not None and exp.met_by(child):
            self._pending.pop(key, None)
            return None
        return exp

    def echo(self, key: Key, version: int) -> bool:
        """Whether ``version`` of a child is exactly the answer of our last write to it:
        its watch event shows what that write made, nothing else."""
        exp = self._pending.get(key)
        return exp is not None and exp.version != 0 and exp.version == version

    def unshown(self, namespace: str, rollout: str, shown: Iterable[str]) -> bool:
        """Whether a Deployment we created for the Rollout is missing from the watch's
        view (``shown``: the names it has): the index is behind our own create, and a plan
        made from it would not count that child's pods (it would create the next revision
        beside it, above maxSurge). The shell then reads the children from the API."""
        names = set(shown)
        now = self.clock()
        for key, exp in list(self._pending.items()):
            if exp.rollout != rollout or key[0] != namespace or key[1] in names:
                continue
            if now - exp.at <= self.ttl:
                return True
        return False

    def overlay(self, namespace: str, children: Iterable[Child]) -> list[Child]:
        """The children as the planner must see them: one the watch shows older than a
        scale of ours carries the replicas (and role) we wrote, not yet settled. Without
        it a plan counts the ready pods of a child we have just scaled to zero and takes
        the last ready pods of another away (issue 19 fuzz, seed 986322198)."""
        seen = []
        for child in children:
            exp = self.pending((namespace, child.name), child)
            if exp is not None and exp.replicas is not None and exp.replicas != child.replicas:
                child = replace(
                    child,
                    replicas=exp.replicas,
                    role=exp.role if exp.role is not None else child.role,
                    settled=False,
                )
            seen.append(child)
        return seen

    def observe(self, namespace: str, children: Iterable[Child]) -> None:
        """The watch shows these children: drop the expectations they meet."""
        for child in children:
            self.pending((namespace, child.name), child)

    def __len__(self) -> int:
        return len(self._pending)
