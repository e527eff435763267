"""A Gateway API gateway in the lying cluster of :mod:`model.sim`, for blue-green through
an HTTPRoute under the blue-green machine's chaos (refused writes, operator restarts that
cut a reconcile, a lagging index, stale bodies, children deleted or scaled by someone,
pods going unready, the HPA).

The Rollout names the route ``web`` (``strategy.blueGreen.httpRoutes``) and a header route
to the preview. The gateway (:class:`Gateway`) proxies with the weights of the generation
it last accepted over the Services' published EndpointSlices (``Cluster.endpoints``, a
tick behind the selectors); it acknowledges the route's current generation when the
cluster advances unless it lags, and may read a generation in between (two writes close
together). The REAL executor writes the route through :meth:`Gateway.patch` (JSON patch
with its ``test`` guards; refused like the API server when they fail).

:class:`GatewayOracle` adds to :class:`model.sim_bluegreen.BlueGreenOracle`, after every
reconcile: (r) **a revision the gateway still sends requests to is never scaled by the
planner below the pods its share needs**, and the user's fields of the route stay.
"""

from __future__ import annotations

import copy
import math
from typing import Any

from model.sim import NAME, Cluster, Config, Observed, View
from model.sim_bluegreen import ACTIVE, PREVIEW, BlueGreenOracle
from ramp.api.labels import REVISION_LABEL
from ramp.core.httproute import KIND, RoutePatch, apply_ops, backend_weights, rule_prefix
from ramp.core.model import Plan

ROUTE = "web"
SERVICES = (ACTIVE, PREVIEW)
RETRY = 0.5


def user_route() -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": ROUTE, "namespace": "ns", "generation": 1, "resourceVersion": "1"},
        "spec": {
            "parentRefs": [{"name": "gw"}],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                    "backendRefs": [
                        {"name": ACTIVE, "port": 80, "weight": 100},
                        {"name": PREVIEW, "port": 80, "weight": 0},
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
    doc = copy.deepcopy(route["spec"])
    doc["rules"] = [r for r in doc["rules"] if not str(r.get("name", "")).startswith("ramp-")]
    for rule in doc["rules"]:
        for ref in rule.get("backendRefs") or []:
            if ref["name"] in SERVICES:
                ref.pop("weight", None)
    return doc


class Gateway:
    def __init__(self) -> None:
        self.route: dict[str, Any] = user_route()
        self.original = user_fields(self.route)
        self.generations: dict[int, Any] = {1: copy.deepcopy(self.route["spec"])}
        self.accepted: Any = None
        self.accepted_generation = 0
        self.lag = False
        self.accept(1)

    def observe(self) -> dict[str, Any]:
        return {KIND: {ROUTE: copy.deepcopy(self.route)}}

    def patch(self, write: RoutePatch) -> float | None:
        """The API server applies a JSON patch (refused when a ``test`` fails)."""
        assert write.route == ROUTE
        try:
            route = apply_ops(self.route, write.ops)
        except ValueError:
            return RETRY  # 422: the route changed in between
        meta = route["metadata"]
        meta["resourceVersion"] = str(int(meta["resourceVersion"]) + 1)
        if route["spec"] != self.route["spec"]:
            meta["generation"] += 1
            self.generations[meta["generation"]] = copy.deepcopy(route["spec"])
        self.route = route
        return None

    def accept(self, gen: int) -> None:
        ok = [
            {"type": t, "status": "True", "observedGeneration": gen}
            for t in ("Accepted", "ResolvedRefs")
        ]
        self.route["status"] = {"parents": [{"parentRef": {"name": "gw"}, "conditions": ok}]}
        self.accepted = copy.deepcopy(self.generations[gen])
        self.accepted_generation = gen

    def ack(self) -> None:
        if not self.lag:
            self.accept(self.route["metadata"]["generation"])

    def ack_between(self) -> None:
        current = self.route["metadata"]["generation"]
        between = sorted(g for g in self.generations if self.accepted_generation < g < current)
        if between:
            self.accept(between[0])

    def gitops_reset(self) -> None:
        """A GitOps tool puts the weights of its repository back (100 / 0)."""
        route = copy.deepcopy(self.route)
        for ref in route["spec"]["rules"][0]["backendRefs"]:
            ref["weight"] = 100 if ref["name"] == ACTIVE else 0
        if route["spec"] != self.route["spec"]:
            route["metadata"]["generation"] += 1
            route["metadata"]["resourceVersion"] = str(
                int(route["metadata"]["resourceVersion"]) + 1
            )
            self.generations[route["metadata"]["generation"]] = copy.deepcopy(route["spec"])
            self.route = route

    def service_shares(self) -> dict[str, float]:
        """Percent of the Rollout rule's requests per Service, by the accepted weights."""
        accepted = {"spec": self.accepted, "metadata": {"namespace": "ns"}}
        rules = backend_weights(accepted, SERVICES, NAME)
        total = sum(rules[0].values()) if rules else 0
        return {svc: 100 * w / total for svc, w in rules[0].items() if w} if total else {}

    def header_routed(self) -> bool:
        """Whether the accepted generation has Ramp's header rule."""
        return any(
            str(rule.get("name", "")).startswith(rule_prefix(NAME))
            for rule in self.accepted["rules"]
        )

    def shares(
        self, endpoints: dict[str, dict[str, int]], headers: bool = True
    ) -> dict[str, float]:
        """Percent of the Rollout rule's requests per revision, as the gateway proxies them
        (the accepted weights over the published EndpointSlices); ``headers``: Ramp's
        header rule counts as 1 % of the preview's revisions (matching requests need a
        pod)."""
        accepted = {"spec": self.accepted, "metadata": {"namespace": "ns"}}
        rules = backend_weights(accepted, SERVICES, NAME)
        result: dict[str, float] = {}
        if rules:
            total = sum(rules[0].values())
            for svc, w in rules[0].items():
                pods = endpoints.get(svc) or {}
                ready = sum(pods.values())
                for rev, n in pods.items():
                    if w and total and ready:
                        result[rev] = result.get(rev, 0.0) + 100 * w / total * n / ready
        for rule in self.accepted["rules"] if headers else []:
            if str(rule.get("name", "")).startswith(rule_prefix(NAME)):
                for rev in endpoints.get(PREVIEW) or {}:
                    result[rev] = max(result.get(rev, 0.0), 1.0)
        return result


class GatewayCluster(Cluster):
    """The blue-green cluster of :func:`model.sim_bluegreen.bg_cluster` with a gateway."""

    def __init__(self, cfg: Config) -> None:
        super().__init__(cfg)
        self.gateway = Gateway()
        self.oracle = GatewayOracle(self)

    def advance(self, seconds: float, controller_acts: bool) -> None:
        super().advance(seconds, controller_acts)
        self.gateway.ack()


def routed_config(bg: dict[str, Any]) -> dict[str, Any]:
    return {
        **bg,
        "previewService": PREVIEW,
        "httpRoutes": [ROUTE],
        "previewHeaderRoute": [{"headerName": "X-Preview", "headerValue": {"exact": "1"}}],
    }


class GatewayOracle(BlueGreenOracle):
    revision_of: dict[str, str] = {}

    def before_apply(self, observed: Observed, view: View, result: Plan) -> None:
        super().before_apply(observed, view, result)
        self.revision_of = {d.name: d.revision for d in self.c.owned()}

    def handing_over(self) -> bool:
        """The active Service moves through the route (``through_the_route``): the preview
        Service selects, with ready pods, the revision the active Service moves to; the
        route's weights go to it (0/100) and, once the gateway is seen to have applied
        them, the active Service moves. It keeps what it selects until then (make
        fuzz-for, seed 956072036: an abort whose blue became ready while the gateway
        lagged)."""
        c = self.c
        assert isinstance(c, GatewayCluster)
        preview = (c.services.get(PREVIEW) or {}).get(REVISION_LABEL)
        ready = sum(self.ready_pods(d) for d in c.owned() if d.revision == preview)
        return preview is not None and preview not in self.aborted and ready > 0

    def after_apply(self, observed: Observed, view: View, result: Plan, done: set[str]) -> None:
        super().after_apply(observed, view, result, done)
        c = self.c
        assert isinstance(c, GatewayCluster)
        gateway = c.gateway
        if user_fields(gateway.route) != gateway.original:
            self.fail("(r) a field of the user's route changed")
        total = int(c.spec.get("replicas", 1) or 0)
        scaled: dict[str, int] = {}
        for name, (before, _) in self.before.items():
            dep = c.deps.get(name)
            after = dep.replicas if dep is not None and not dep.deleting else 0
            if after < before:
                scaled[self.revision_of.get(name, "")] = after
        # The endpoints the slices list whose pods still exist (the adopted Deployment's
        # as listed): a pod gone serves nothing, although the slices a tick behind still
        # list it, as (j) reads them (make fuzz-for, seed 839727882: blue's pods replaced
        # by an edit of its template, then the release completed and blue went).
        live = c.shell_endpoints()
        endpoints: dict[str, dict[str, int]] = {}
        for service, pods in c.endpoints.items():
            kept = {
                rev: n if rev == "plain" else min(n, live.get(service, {}).get(rev, 0))
                for rev, n in pods.items()
            }
            endpoints[service] = {rev: n for rev, n in kept.items() if n}
        for revision, after in scaled.items():
            share = carried(revision, scaled, gateway, endpoints)
            need = min(total, max(1, math.ceil(total * share / 100 - 1e-9))) if share else 0
            if after < need:
                self.fail(
                    f"(r) {revision} scaled to {after} while the gateway sends it "
                    f"{share:.0f}% of the requests (needs {need}): "
                    f"{gateway.shares(endpoints)} over {endpoints}"
                )


def carried(
    revision: str, scaled: dict[str, int], gateway: Gateway, endpoints: dict[str, dict[str, int]]
) -> float:
    """Percent of the Rollout rule's requests ``revision`` carries once the pass's
    scale-downs (``scaled``: revision -> replicas left) take its pods out of the
    EndpointSlices: each Service's accepted share spread over the ready endpoints it keeps
    (a Service that keeps none puts its whole share on the revision that emptied it).
    Ramp's header rule counts as 1 % of the preview's. Beside a revision pinned alone this
    is its share as the gateway proxies it; a Service that also selects other pods (the
    adopted Deployment's, unpinned at a give-back) hands them the requests (make fuzz-for,
    seed 945596145)."""

    def kept(service: str) -> tuple[int, int]:
        pods = endpoints.get(service) or {}
        left = {rev: min(n, scaled[rev]) if rev in scaled else n for rev, n in pods.items()}
        return left.get(revision, 0), sum(left.values())

    share = 0.0
    for service, percent in gateway.service_shares().items():
        if revision in (endpoints.get(service) or {}):
            mine, remaining = kept(service)
            share += percent * mine / remaining if remaining else percent
    if gateway.header_routed() and revision in (endpoints.get(PREVIEW) or {}):
        mine, remaining = kept(PREVIEW)
        if mine or not remaining:
            share = max(share, 1.0)
    return share
