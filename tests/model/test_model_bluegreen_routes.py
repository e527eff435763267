"""The blue-green model machine with an HTTPRoute: the REAL planner switches by the
route's weights (active 100 / preview 0, flipped at once) through a gateway that lags in
acknowledging, a route edited or deleted by someone, weights reset by a GitOps tool
(:mod:`model.sim_bluegreen_routes`). After every write and every acknowledgement: a
revision the route still sends traffic to is never scaled below the pods its share needs,
no request goes to a Service without a ready endpoint, the route's weights send nothing to
a green whose switch was not decided, the user's fields of the route stay.

CI runs a fixed, derandomized budget; ``make fuzz`` a long random one
(``RAMP_MODEL_ROUTE_EXAMPLES``)."""

from __future__ import annotations

import copy
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from model.sim_bluegreen_routes import ACTIVE_SVC, PREVIEW_SVC, BlueGreenRouteWorld
from model.sim_routes import settle
from model.test_model_routes import RouteMachine

FUZZ = os.environ.get("RAMP_FUZZ") == "1"


class BlueGreenRouteMachine(RouteMachine):
    @initialize(
        auto=st.booleans(),
        delay=st.sampled_from([0, 30]),
        abort_delay=st.sampled_from([0, 30]),
        post=st.booleans(),
    )
    def stable_runs(self, auto: bool, delay: int, abort_delay: int, post: bool) -> None:
        bg = {
            "autoPromotionEnabled": auto,
            "scaleDownDelaySeconds": delay,
            "abortScaleDownDelaySeconds": abort_delay,
        }
        if post:  # a post-promotion analysis holds the release after the switch
            bg["postPromotionAnalysis"] = {"templates": [{"templateName": "never-measured"}]}
        self.world = BlueGreenRouteWorld(blue_green=bg)
        super().stable_runs()

    @rule(verb=st.sampled_from(["promote", "promote-full", "abort", "retry", "rollback"]))
    def token(self, verb: str) -> None:
        super().token(verb)


BlueGreenRouteMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("RAMP_MODEL_ROUTE_EXAMPLES", "20000" if FUZZ else "60")),
    stateful_step_count=30,
    derandomize=not FUZZ,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBlueGreenRouteMachine = BlueGreenRouteMachine.TestCase


def ready_to_switch(**bg: object) -> BlueGreenRouteWorld:
    w = BlueGreenRouteWorld(blue_green={"autoPromotionEnabled": False, **bg})
    settle(w, 3)
    w.release("v2")
    settle(w)
    assert w.status["phase"] == "Paused"
    return w


def weights(w: BlueGreenRouteWorld) -> dict[str, int]:
    assert w.route is not None
    refs = w.route["spec"]["rules"][0]["backendRefs"]
    return {r["name"]: r["weight"] for r in refs}


def ramp_rules(w: BlueGreenRouteWorld) -> list[dict[str, object]]:
    return w.header_rules()


def test_the_switch_flips_the_weights_and_counts_once_acknowledged() -> None:
    """Promoted: the weights flip at once (active 0, preview 100) while the active Service
    stays on blue; a gateway that does not acknowledge holds the switch with a reason, blue
    at full size (scaleDownDelaySeconds 0 notwithstanding); once acknowledged the release
    completes, the preview's header rule goes, and blue goes after the proxy's moment."""
    w = ready_to_switch(scaleDownDelaySeconds=0)
    blue, green = w.status["stableRevision"], w.status["canaryRevision"]
    assert weights(w) == {ACTIVE_SVC: 100, PREVIEW_SVC: 0}
    w.lag = True
    w.token("promote", "p")
    for _ in range(10):
        w.reconcile()
        w.sync_endpoints()
        w.tick()
    assert weights(w) == {ACTIVE_SVC: 0, PREVIEW_SVC: 100}
    assert w.pins[ACTIVE_SVC] == blue, "the active Service stays on blue: an abort flips back"
    assert w.status["phase"] == "Progressing"
    assert "acknowledge the route's switch" in w.status["message"]
    assert w.children == {blue: 3, green: 3} and w.green_share() == 0
    assert w.status["routes"][0]["desired"] == 100 and w.status["routes"][0]["acknowledged"] == 0
    w.lag = False
    w.ack()
    assert w.green_share() == 100
    w.reconcile()
    assert w.children[blue] == 3, "the proxy may still use the old weights for a moment"
    settle(w, 6)
    assert w.status["phase"] == "Healthy" and w.status["stableRevision"] == green
    assert w.children.get(blue, 0) == 0 and w.shares() == {green: 100.0}
    assert not ramp_rules(w), "the preview's header rule goes at completion"
    assert weights(w) == {ACTIVE_SVC: 100, PREVIEW_SVC: 0}, "back on the active Service"
    assert w.pins == {ACTIVE_SVC: green, PREVIEW_SVC: green}


def test_the_preview_header_route_reaches_green_before_the_switch() -> None:
    w = ready_to_switch()
    rules = ramp_rules(w)
    assert len(rules) == 1
    assert rules[0]["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/"},
            "headers": [{"type": "Exact", "name": "X-Preview", "value": "1"}],
        }
    ]
    assert rules[0]["backendRefs"] == [{"name": PREVIEW_SVC, "weight": 1, "port": 80}]
    assert w.pins[PREVIEW_SVC] == w.status["canaryRevision"] and w.green_share() == 0
    w.token("abort", "a")
    settle(w, 3)
    assert w.status["phase"] == "Aborted" and not ramp_rules(w)


def test_abort_after_the_switch_flips_the_weights_back_first_green_goes_after() -> None:
    """The post-promotion analysis runs (green has all the requests); an abort flips the
    weights back to the active Service (still on blue) in the same pass; green keeps its
    pods until the gateway acknowledged and its proxy had its moment, even with
    abortScaleDownDelaySeconds 0."""
    w = ready_to_switch(
        abortScaleDownDelaySeconds=0,
        postPromotionAnalysis={"templates": [{"templateName": "slow"}]},
    )
    blue, green = w.status["stableRevision"], w.status["canaryRevision"]
    w.token("promote", "p")
    settle(w, 4)
    assert w.status["phase"] == "Progressing" and w.green_share() == 100
    w.lag = True
    w.token("abort", "a")
    w.reconcile()
    assert w.status["phase"] == "Aborted"
    assert weights(w) == {ACTIVE_SVC: 100, PREVIEW_SVC: 0}
    assert w.pins[ACTIVE_SVC] == blue
    for _ in range(5):
        w.tick()
        w.reconcile()
        w.sync_endpoints()
        assert w.children[green] == 3, "green keeps its pods until its 0 is acknowledged"
    w.lag = False
    settle(w, 5)
    assert w.children.get(green, 0) == 0 and w.shares() == {blue: 100.0}


def test_rollback_in_the_warm_window_flips_back_to_blue() -> None:
    w = ready_to_switch(scaleDownDelaySeconds=60)
    blue, green = w.status["stableRevision"], w.status["canaryRevision"]
    w.token("promote", "p")
    settle(w, 6)
    assert w.status["phase"] == "Healthy" and w.shares() == {green: 100.0}
    assert w.children[blue] == 3, "blue stays warm"
    w.token("rollback", "r")
    settle(w, 6)
    assert w.status["stableRevision"] == blue and w.shares() == {blue: 100.0}


def test_a_route_without_the_preview_is_invalid_spec_route_and_workload_unchanged() -> None:
    """A route whose rule does not name the preview Service: InvalidSpec naming the field;
    the route stays as it was, the workload too."""
    w = BlueGreenRouteWorld(blue_green={"autoPromotionEnabled": False})
    settle(w, 3)
    assert w.route is not None
    route = copy.deepcopy(w.route)
    route["spec"]["rules"][0]["backendRefs"] = [{"name": ACTIVE_SVC, "port": 80, "weight": 100}]
    w.route = w.write(route)
    w.original = None  # the user's own edit
    w.ack()
    before_route, before = copy.deepcopy(w.route["spec"]), dict(w.children)
    w.release("v2")
    settle(w, 4)
    conditions = {c["type"]: c for c in w.status["conditions"]}
    message = conditions["InvalidSpec"]["message"]
    assert "spec.strategy.blueGreen.httpRoutes[0]" in message and PREVIEW_SVC in message
    assert w.route["spec"] == before_route and w.children == before
    w.delete_route()
    settle(w, 2)
    conditions = {c["type"]: c for c in w.status["conditions"]}
    assert "HTTPRoute 'web' does not exist" in conditions["InvalidSpec"]["message"]
    assert w.children == before


def test_a_green_replaced_after_the_switch_gives_the_weights_back_to_blue() -> None:
    """Found by the machine: green switched to (the weights on the preview), then a new
    template replaced it before completion. The drain kept the switched release's weight
    (100 for green) for the new green, so the preview Service moved to the new, never
    switched, green while the route still sent it everything. The weights go back to blue
    first (the active Service, still on blue); the new green's switch is its own."""
    w = BlueGreenRouteWorld(
        blue_green={"scaleDownDelaySeconds": 0, "abortScaleDownDelaySeconds": 0}
    )
    settle(w, 3)
    blue = w.status["stableRevision"]
    w.release("v2")
    settle(w, 1)
    w.release("v3")
    settle(w, 4)
    v3 = w.status["canaryRevision"]
    assert w.shares() == {v3: 100.0} and w.status["phase"] == "Progressing"
    w.release("v2")
    w.reconcile()
    assert weights(w) == {ACTIVE_SVC: 100, PREVIEW_SVC: 0}
    w.sync_endpoints()
    w.pods_ready()
    w.ack()  # check(): the route sends nothing to the new green
    assert w.shares() == {blue: 100.0}


def test_rollback_in_the_warm_window_moves_the_requests_by_the_weights_first() -> None:
    """A rollback in the warm window with a route (issue 23, follow-up): the route sends
    everything to the active Service, which selects green. The active Service's selector
    no longer flips at once (the gateway would follow the EndpointSlices, with nothing to
    acknowledge): the preview Service selects blue, the route sends it everything (0/100),
    and only once the gateway acknowledged that does the active Service move back to blue,
    the weights coming back to it once it lists blue. Green keeps its pods until that
    return is acknowledged too (the gateway may read the active Service's endpoints late:
    a real gateway answered 503 once when green went in the pass that wrote it)."""
    w = ready_to_switch(scaleDownDelaySeconds=60, abortScaleDownDelaySeconds=0)
    blue, green = w.status["stableRevision"], w.status["canaryRevision"]
    w.token("promote", "p")
    settle(w, 6)
    assert w.status["phase"] == "Healthy" and w.shares() == {green: 100.0}
    assert weights(w) == {ACTIVE_SVC: 100, PREVIEW_SVC: 0}
    assert w.pins == {ACTIVE_SVC: green, PREVIEW_SVC: green} and w.children[blue] == 3
    w.lag = True
    w.token("rollback", "r")
    w.reconcile()
    assert w.status["phase"] == "Aborted" and w.status["stableRevision"] == blue
    for _ in range(4):  # the preview takes blue (once the completion's return settled)
        assert w.pins[ACTIVE_SVC] == green, "the active Service stays on green meanwhile"
        w.pods_ready()
        w.sync_endpoints()
        w.tick()
        w.reconcile()
    assert w.pins == {ACTIVE_SVC: green, PREVIEW_SVC: blue}, "the preview takes blue first"
    assert weights(w) == {ACTIVE_SVC: 0, PREVIEW_SVC: 100}
    for _ in range(5):  # the gateway does not acknowledge: the active Service stays
        w.tick()
        w.reconcile()
        w.sync_endpoints()
        assert w.pins[ACTIVE_SVC] == green and w.children[green] == 3
        assert w.shares() == {green: 100.0}
    w.lag = False
    w.ack()
    assert w.shares() == {blue: 100.0}
    for _ in range(6):
        w.reconcile()
        if weights(w) == {ACTIVE_SVC: 100, PREVIEW_SVC: 0}:
            # the gateway may still read the active Service's old endpoints (green's)
            assert w.pins[ACTIVE_SVC] == blue and w.children[green] == 3, "green kept"
            break
        w.sync_endpoints()
        w.ack()
        w.tick()
    settle(w, 6)
    assert w.pins == {ACTIVE_SVC: blue, PREVIEW_SVC: blue}
    assert weights(w) == {ACTIVE_SVC: 100, PREVIEW_SVC: 0}, "back on the active Service"
    assert w.shares() == {blue: 100.0} and w.children.get(green, 0) == 0
