"""A simulated cluster with a Gateway API gateway, for the HTTPRoute router.

The REAL planner (:func:`ramp.core.plan.plan`) drives a canary whose strategy names an
HTTPRoute. The world can lie the way gateways and people do:

* the gateway acknowledges a route's new generation only when it gets to it (``lag``), and
  until then keeps proxying with the weights of the last generation it accepted; it may
  read a generation between that one and the current one (``ack_between``: two writes
  close together) and proxy it;
* someone edits a field of the route that is not Ramp's (a new generation to accept);
* a GitOps tool resets the weights to what its repository says;
* someone deletes the route (and creates it again).

Pods are ready as soon as they are planned (the replica side has its own machines); the
Services' endpoints are the ready pods of the revision their selector is pinned to.

The invariant (:meth:`RouteWorld.check`): **a revision the gateway still sends requests to
is never scaled below the pods its share needs**, and never a request to a Service with no
ready endpoint.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ramp.api.labels import REVISION_LABEL, revision_hash
from ramp.api.rollout import Rollout
from ramp.core.httproute import KIND, RoutePatch, apply_ops, backend_weights
from ramp.core.model import Child, HistoryEntry, Observed, Plan
from ramp.core.plan import plan

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NAME, NS, UID = "web", "shop", "uid-web"
STABLE_SVC, CANARY_SVC, ROUTE = "web-stable", "web-canary", "web"
SERVICES = (STABLE_SVC, CANARY_SVC)


def template(version: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": NAME}},
        "spec": {"containers": [{"name": "app", "image": f"app:{version}"}]},
    }


def user_route() -> dict[str, Any]:
    """A route of the user's: the Rollout's rule (a filter, a third backend), another path."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": ROUTE, "namespace": NS, "generation": 1, "resourceVersion": "1"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "filters": [{"type": "RequestHeaderModifier", "x": 1}],
                    "backendRefs": [
                        {"name": STABLE_SVC, "port": 80, "weight": 100},
                        {"name": CANARY_SVC, "port": 80, "weight": 0},
                    ],
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                    "backendRefs": [{"name": "static", "port": 80}],
                },
            ],
        },
    }


def user_fields(route: dict[str, Any]) -> Any:
    """The route without what Ramp may write (weights of its backends, its own rules)."""
    doc = copy.deepcopy(route["spec"])
    doc["rules"] = [r for r in doc["rules"] if not str(r.get("name", "")).startswith("ramp-")]
    for rule in doc["rules"]:
        for ref in rule.get("backendRefs") or []:
            if ref["name"] in SERVICES:
                ref.pop("weight", None)
    return doc


@dataclass
class RouteWorld:
    replicas: int = 3
    steps: list[dict[str, Any]] = field(
        default_factory=lambda: [{"setWeight": 5}, {"pause": {}}, {"setWeight": 30}, {"pause": {}}]
    )
    now: datetime = T0
    version: str = "v1"
    status: dict[str, Any] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    children: dict[str, int] = field(default_factory=dict)
    """Revision -> replicas."""
    ready: dict[str, int] = field(default_factory=dict)
    """Revision -> ready pods (:meth:`pods_ready` brings them up to the replicas)."""
    pins: dict[str, str] = field(default_factory=dict)
    """Service -> revision its selector is pinned to."""
    slices: dict[str, str] = field(default_factory=dict)
    """Service -> revision its EndpointSlices list (they follow the pins when
    :meth:`sync_endpoints` runs: the EndpointSlice controller lags)."""
    route: dict[str, Any] | None = field(default_factory=user_route)
    accepted: dict[str, Any] | None = None
    """The spec of the route's generation the gateway proxies with (None: none yet)."""
    lag: bool = False
    generations: dict[int, Any] = field(default_factory=dict)
    """The spec of each generation of the route written (what a gateway may read)."""
    accepted_generation: int = 0
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    last: Plan | None = None
    original: Any = None
    log: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.original = user_fields(self.route) if self.route else None
        self.ack()

    # -- the Rollout ---------------------------------------------------------------

    def body(self) -> dict[str, Any]:
        return {
            "apiVersion": "ramp.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": NAME, "namespace": NS, "generation": 1, "uid": UID},
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": {"app": NAME}},
                "template": template(self.version),
                "progressDeadlineSeconds": 600,
                "strategy": {
                    "canary": {
                        "stableService": STABLE_SVC,
                        "canaryService": CANARY_SVC,
                        "httpRoutes": [ROUTE],
                        "steps": self.steps,
                    }
                },
            },
            "status": self.status or None,
        }

    def endpoints(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = {}
        for svc in SERVICES:
            rev = self.slices.get(svc)
            pods = {rev: self.ready.get(rev, 0)} if rev else dict(self.ready)
            result[svc] = {r: n for r, n in pods.items() if n}
        return result

    def observed(self) -> Observed:
        tpl = template(self.version)
        self.templates[revision_hash(tpl)] = tpl
        children = tuple(
            Child(f"{NAME}-{rev}", rev, None, n, min(n, self.ready.get(rev, 0)), n, True, owner=UID)
            for rev, n in sorted(self.children.items())
        )
        history = tuple(
            HistoryEntry(rev, i + 1, self.templates[rev], **h)
            for i, (rev, h) in enumerate(self.history.items())
        )
        services = {
            svc: {"app": NAME, REVISION_LABEL: rev} if rev else {"app": NAME}
            for svc, rev in ((s, self.pins.get(s)) for s in SERVICES)
        }
        return Observed(
            rollout=Rollout.model_validate(self.body()),
            template=tpl,
            generation=1,
            annotations=dict(self.annotations),
            children=children,
            uid=UID,
            history=history,
            services=services,
            endpoints=self.endpoints(),
            traffic={KIND: {ROUTE: copy.deepcopy(self.route)}},
        )

    def reconcile(self) -> Plan:
        result = plan(self.observed(), self.now)
        self.last = result
        if result.status is not None:
            self.status = result.status.to_k8s()
        for write in result.history:
            entry = self.history.setdefault(write.revision, {})
            for key, value in write.annotations.items():
                if key.endswith("promoted-at") and value:
                    entry["promoted_at"] = value
                if key.endswith("aborted"):
                    entry["aborted"] = value
        for rev in result.creates:
            self.children.setdefault(rev, 0)
        for pin in result.services:
            self.pins[pin.service] = str(pin.selector.get(REVISION_LABEL) or "")
        for write in result.traffic:
            assert isinstance(write, RoutePatch)
            assert self.route is not None, "a patch planned for a route that does not exist"
            try:
                self.route = self.write(apply_ops(self.route, write.ops))
            except ValueError:
                self.log.append("patch refused (the route changed)")
        for rev, n in (result.replicas or {}).items():
            if rev in self.children or n:
                self.children[rev] = n
        for name in result.delete:
            self.children.pop(name.removeprefix(f"{NAME}-"), None)
        self.ready = {r: min(self.ready.get(r, 0), n) for r, n in self.children.items()}
        self.annotations = {}
        self.check()
        return result

    # -- the gateway and the other writers -------------------------------------------

    def write(self, route: dict[str, Any]) -> dict[str, Any]:
        """A write of the route: a new generation when its spec changed."""
        meta = route["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        old = self.route
        if old is None or old["spec"] != route["spec"]:
            meta["generation"] = int(meta["generation"]) + 1
        self.generations[meta["generation"]] = copy.deepcopy(route["spec"])
        return route

    def ack_between(self) -> None:
        """The gateway reads a generation written after the one it proxies but before the
        route's current one (two writes close together: it read the first), proxies it
        and says so; the route's current generation stays unacknowledged."""
        if self.route is None:
            return
        current = self.route["metadata"]["generation"]
        between = sorted(g for g in self.generations if self.accepted_generation < g < current)
        if not between:
            return
        self.accept(between[0], self.generations[between[0]])

    def sync_endpoints(self) -> None:
        """The EndpointSlice controller catches up with the Services' selectors."""
        self.slices = dict(self.pins)

    def pods_ready(self, revision: str | None = None) -> None:
        """The pods of a revision (or of all) become ready."""
        for rev, n in self.children.items():
            if revision in (None, rev):
                self.ready[rev] = n

    def ack(self) -> None:
        """The gateway accepts the route's current generation (unless it lags)."""
        if self.route is None or self.lag:
            return
        self.accept(self.route["metadata"]["generation"], self.route["spec"])

    def accept(self, gen: int, spec: dict[str, Any]) -> None:
        ok = [
            {"type": t, "status": "True", "observedGeneration": gen}
            for t in ("Accepted", "ResolvedRefs")
        ]
        assert self.route is not None
        self.route["status"] = {"parents": [{"parentRef": {"name": "gw"}, "conditions": ok}]}
        self.accepted = copy.deepcopy(spec)
        self.accepted_generation = gen
        self.check()

    def user_edit(self) -> None:
        """A field that is not Ramp's changes (a new generation)."""
        if self.route is None:
            return
        route = copy.deepcopy(self.route)
        route["spec"]["rules"][1]["matches"][0]["path"]["value"] += "x"
        self.route = self.write(route)
        self.original = user_fields(self.route)

    def gitops_reset(self) -> None:
        """A GitOps tool puts the weights of its repository back: all on the stable."""
        if self.route is None:
            return
        route = copy.deepcopy(self.route)
        for ref in route["spec"]["rules"][0]["backendRefs"]:
            ref["weight"] = 100 if ref["name"] == STABLE_SVC else 0
        self.route = self.write(route)

    def delete_route(self) -> None:
        self.route = None
        self.generations, self.accepted_generation = {}, 0  # a new object's generations

    def recreate_route(self) -> None:
        if self.route is None:
            self.route = user_route()
            self.original = user_fields(self.route)

    def release(self, version: str) -> None:
        self.version = version

    def token(self, verb: str, value: str) -> None:
        self.annotations[f"ramp.dev/{verb}"] = value

    def tick(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)

    # -- what the gateway does with requests -------------------------------------------

    def shares(self) -> dict[str, float]:
        """Percent of the Rollout rule's requests per revision, as the gateway proxies them
        now (the accepted generation's weights over the Services' EndpointSlices)."""
        if self.accepted is None:
            return {}
        rules = backend_weights(
            {"spec": self.accepted, "metadata": {"namespace": NS}}, SERVICES, NAME
        )
        result: dict[str, float] = {}
        if not rules:
            return result
        weights = rules[0]
        total = sum(weights.values())
        for svc, w in weights.items():
            if w and total:
                rev = self.slices.get(svc, "")
                result[rev] = result.get(rev, 0) + 100 * w / total
        return result

    def check(self) -> None:
        """A revision the gateway sends requests to is never scaled below the pods its
        share needs, and the gateway never proxies to a Service without a ready endpoint;
        the user's fields of the route stay as they were."""
        for rev, share in self.shares().items():
            if not rev:
                continue  # a Service Ramp has not pinned yet: what ran before Ramp
            need = max(1, math.ceil(self.replicas * share / 100 - 1e-9))
            have = self.children.get(rev, 0)
            ready = self.ready.get(rev, 0)
            assert have >= min(need, self.replicas), (
                f"revision {rev} gets {share:.0f}% of requests with {have} pods "
                f"(needs {need}); plan {self.last and self.last.replicas}; {self.log[-3:]}"
            )
            assert ready > 0 or self.replicas == 0, (
                f"revision {rev} gets {share:.0f}% of requests, no pod ready"
            )
        if self.route is not None and self.original is not None:
            assert user_fields(self.route) == self.original, "a field of the user's changed"

    def canary_share(self) -> float:
        canary = self.status.get("canaryRevision")
        return self.shares().get(canary, 0.0) if canary else 0.0


def settle(w: RouteWorld, passes: int = 6) -> None:
    """Reconciles with the endpoints, the pods and the gateway in step."""
    for _ in range(passes):
        w.reconcile()
        w.sync_endpoints()
        w.pods_ready()
        w.ack()
        w.tick()
