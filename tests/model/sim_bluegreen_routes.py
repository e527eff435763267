"""Blue-green through a Gateway API HTTPRoute, in the simulated gateway of
:mod:`model.sim_routes`: the REAL planner switches a blue-green Rollout by the route's
weights (active Service 100, preview 0; flipped at once), while the gateway lags in
acknowledging, someone edits or deletes the route, a GitOps tool resets the weights.

The route's two backends are the active Service (``web-stable`` here) and the preview
Service (``web-canary``). What the oracle judges is the route as a user sees it: the
weights of the generation the gateway accepted, over the Services' EndpointSlices
(:meth:`model.sim_routes.RouteWorld.shares`). After every write and acknowledgement
(:meth:`BlueGreenRouteWorld.check`):

* a revision the route still sends requests to is never scaled below the pods its share
  needs, never a request to a Service without a ready endpoint, the user's fields of the
  route stay byte for byte (:class:`model.sim_routes.RouteWorld`);
* the route's weights send no request to a green whose switch was not decided
  (``Switched``): only the preview's header route reaches it before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from model.sim_routes import CANARY_SVC, NAME, NS, ROUTE, STABLE_SVC, RouteWorld, template
from ramp.core.httproute import rule_prefix
from ramp.core.model import Plan

ACTIVE_SVC, PREVIEW_SVC = STABLE_SVC, CANARY_SVC
PREVIEW_HEADER = [{"headerName": "X-Preview", "headerValue": {"exact": "1"}}]


@dataclass
class BlueGreenRouteWorld(RouteWorld):
    blue_green: dict[str, Any] = field(
        default_factory=lambda: {"autoPromotionEnabled": False, "scaleDownDelaySeconds": 30}
    )
    header: bool = True
    switched: set[str] = field(default_factory=set)
    """Greens whose switch a plan decided (the route may send them requests)."""

    def body(self) -> dict[str, Any]:
        bg = {
            "activeService": ACTIVE_SVC,
            "previewService": PREVIEW_SVC,
            "httpRoutes": [ROUTE],
            **self.blue_green,
        }
        if self.header:
            bg["previewHeaderRoute"] = PREVIEW_HEADER
        return {
            "apiVersion": "ramp.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": NAME, "namespace": NS, "generation": 1, "uid": "uid-web"},
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": {"app": NAME}},
                "template": template(self.version),
                "progressDeadlineSeconds": 600,
                "strategy": {"blueGreen": bg},
            },
            "status": self.status or None,
        }

    def reconcile(self) -> Plan:
        # the route's accepted weights and the EndpointSlices change outside a reconcile
        # (ack, sync_endpoints): a switch decided here is recorded before anyone can see it
        result = super().reconcile()
        for event in result.events:
            if event.reason == "Switched":
                self.switched.add(event.message.rsplit(" ", 1)[-1])
        return result

    def header_rules(self) -> list[dict[str, Any]]:
        rules = (self.route or {}).get("spec", {}).get("rules") or []
        return [r for r in rules if str(r.get("name", "")).startswith(rule_prefix(NAME))]

    def check(self) -> None:
        super().check()
        stable = self.status.get("stableRevision")
        for rev, share in self.shares().items():
            if not rev or share <= 0 or rev == stable:
                continue
            history = self.history.get(rev, {})
            if rev not in self.switched and not history.get("promoted_at"):
                raise AssertionError(
                    f"the route sends {share:.0f}% to {rev}, whose switch was never decided"
                )

    def green_share(self) -> float:
        green = self.status.get("canaryRevision")
        return self.shares().get(green, 0.0) if green else 0.0
