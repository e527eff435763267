"""Which Rollouts name which HTTPRoutes, and the route watch's events turned into kicks.

Ramp reads the HTTPRoutes a Rollout names on each of its passes
(:mod:`ramp.shell.adapters.traffic_io`); the route watch
(:mod:`ramp.shell.runtime.route_watch`) makes a pass happen when a route changes, instead
of at the Rollout's next event or resync (a GitOps tool setting the weights back on a
Rollout at rest, a user editing or deleting the route). :class:`RouteIndex` is kept from
the Rollouts' specs as their watch events come (``spec.strategy.canary.httpRoutes``, or
``spec.strategy.blueGreen.httpRoutes``: the strategy the Rollout runs) and maps a route's
event to the Rollouts that name it; each is kicked with :attr:`Cause.ROUTE` through the
same work queue as the child Deployments' events (kicks that come together coalesce).

Only a change of what a pass reads kicks: the route's ``generation`` (its spec) or its
``status`` (the gateway acknowledging a generation); metadata alone (a GitOps tool's
tracking label) does not. Nor does the echo of Ramp's own patch (the route exactly as the
patch answered, :data:`ramp.shell.adapters.gateway_routes.ECHOES`): the pass that wrote it
knew all of it. The first list of a namespace kicks nothing (each Rollout's own first pass
reads its routes); a list again (after "410 Gone") kicks the Rollouts of the routes that
changed or went meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any

Key = tuple[str, str]
"""(namespace, name): of a Rollout, or of an HTTPRoute."""
View = tuple[object, str]
"""What a pass reads of a route: its generation and its status (canonical JSON)."""


def route_names(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The HTTPRoutes a Rollout's body names (its strategy's ``httpRoutes``; blue-green's
    when it runs blue-green, as :attr:`ramp.api.rollout.RolloutSpec.http_routes`). A
    body the API would refuse names what it can: only strings count.

    >>> route_names({"spec": {"strategy": {"canary": {"httpRoutes": ["a", "b"]}}}})
    ('a', 'b')
    >>> route_names({"spec": {"strategy": {"blueGreen": {"httpRoutes": ["c"]},
    ...                                     "canary": {"httpRoutes": ["a"]}}}})
    ('c',)
    >>> route_names({"spec": {"strategy": {"canary": {"httpRoutes": "a"}}}})
    ()
    """
    spec = body.get("spec")
    strategy = spec.get("strategy") if isinstance(spec, Mapping) else None
    if not isinstance(strategy, Mapping):
        return ()
    chosen = strategy.get("blueGreen")
    if not isinstance(chosen, Mapping):
        chosen = strategy.get("canary")
    names = chosen.get("httpRoutes") if isinstance(chosen, Mapping) else None
    if not isinstance(names, list):
        return ()
    return tuple(dict.fromkeys(n for n in names if isinstance(n, str) and n))


def view(route: Mapping[str, Any]) -> View:
    """What a pass reads of a route that can change its plan."""
    meta = route.get("metadata") or {}
    status = json.dumps(route.get("status") or {}, sort_keys=True, separators=(",", ":"))
    return (meta.get("generation"), status)


class RouteIndex:
    """Rollouts by the routes they name; the views of the named routes as watched."""

    def __init__(
        self,
        kick: Callable[[Key], None],
        echoes: MutableMapping[Key, str] | None = None,
    ) -> None:
        self.kick = kick
        self.echoes: MutableMapping[Key, str] = echoes if echoes is not None else {}
        """(namespace, route) -> resourceVersion of Ramp's last patch's answer."""
        self.names: dict[Key, tuple[str, ...]] = {}
        """Rollout -> the routes it names (only Rollouts naming some)."""
        self.rollouts: dict[Key, set[str]] = {}
        """Route -> the Rollouts of its namespace naming it."""
        self.seen: dict[Key, View] = {}
        """Route -> its view as last watched (named routes only)."""
        self.listed: set[str | None] = set()
        """The namespaces whose routes are listed (None: every namespace)."""

    def __bool__(self) -> bool:
        """Whether any Rollout names a route (the watch starts then)."""
        return bool(self.names)

    # -- the Rollouts' side -----------------------------------------------------------

    def remember(self, namespace: str, rollout: str, body: Mapping[str, Any]) -> None:
        """A Rollout's body as watched: keep which routes it names."""
        names = route_names(body)
        key = (namespace, rollout)
        if self.names.get(key, ()) == names:
            return
        self.forget(key)
        if names:
            self.names[key] = names
            for name in names:
                self.rollouts.setdefault((namespace, name), set()).add(rollout)

    def forget(self, key: Key) -> None:
        """A Rollout is gone (or names other routes now)."""
        namespace, rollout = key
        for name in self.names.pop(key, ()):
            route = (namespace, name)
            named = self.rollouts.get(route)
            if named is not None:
                named.discard(rollout)
                if not named:
                    del self.rollouts[route]
                    self.seen.pop(route, None)

    # -- the routes' side -------------------------------------------------------------

    def event(self, type: str | None, body: Mapping[str, Any]) -> None:
        """A watch event of an HTTPRoute (None: listed, see :meth:`listed_again`)."""
        meta = body.get("metadata") or {}
        route = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
        if route not in self.rollouts:
            return  # named by no Rollout of ours
        if type == "DELETED":
            self.seen.pop(route, None)
            self._kick(route)
            return
        new, old = view(body), self.seen.get(route)
        self.seen[route] = new
        if new == old:
            return
        echo = self.echoes.get(route)
        if echo is not None and echo == str(meta.get("resourceVersion") or ""):
            self.echoes.pop(route, None)  # our own patch's answer: its pass knew it
            return
        self._kick(route)

    def routes_listed(self, scope: str | None, items: Iterable[Mapping[str, Any]]) -> None:
        """A (re-)list of a namespace's HTTPRoutes (None: every namespace): the first one
        only records them; another kicks the Rollouts whose routes changed or went."""
        again = scope in self.listed
        present = set()
        for body in items:
            meta = body.get("metadata") or {}
            route = (str(meta.get("namespace") or ""), str(meta.get("name") or ""))
            present.add(route)
            if again:
                self.event(None, body)
            elif route in self.rollouts:
                self.seen[route] = view(body)
        for route in [r for r in self.seen if (scope is None or r[0] == scope)]:
            if route not in present:
                del self.seen[route]
                if again:
                    self._kick(route)
        self.listed.add(scope)

    def unwatched(self, scope: str | None) -> None:
        """A namespace is no longer watched (None: all): forget its routes' views."""
        self.listed.discard(scope)
        for route in [r for r in self.seen if scope is None or r[0] == scope]:
            del self.seen[route]

    def _kick(self, route: Key) -> None:
        for rollout in sorted(self.rollouts.get(route, ())):
            self.kick((route[0], rollout))


__all__ = ["RouteIndex", "route_names", "view"]
