"""The model machine of the HTTPRoute router: the REAL planner through a gateway that lags in
acknowledging, a route edited or deleted by someone, weights reset by a GitOps tool
(:mod:`model.sim_routes`). After every write and every acknowledgement: a revision the
route still sends traffic to is never scaled below the pods its share needs, no request
goes to a Service without a ready endpoint, the user's fields of the route stay.

CI runs a fixed, derandomized budget; ``make fuzz`` a long random one
(``RAMP_MODEL_ROUTE_EXAMPLES``)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from model.sim_routes import RouteWorld, settle

FUZZ = os.environ.get("RAMP_FUZZ") == "1"


class RouteMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = RouteWorld()
        self.tokens = 0

    @initialize()
    def stable_runs(self) -> None:
        w = self.world
        for _ in range(3):
            w.reconcile()
            w.sync_endpoints()
            w.pods_ready()
            w.ack()
            w.tick()

    @rule(passes=st.integers(1, 4), ack=st.booleans())
    def the_cluster_catches_up(self, passes: int, ack: bool) -> None:
        """A few reconciles with the endpoints, pods and (unless it lags) gateway in step."""
        w = self.world
        for _ in range(passes):
            w.reconcile()
            w.sync_endpoints()
            w.pods_ready()
            if ack:
                w.ack()
            w.tick()

    @rule()
    def endpoints_follow_the_selectors(self) -> None:
        self.world.sync_endpoints()

    @rule()
    def reconcile(self) -> None:
        self.world.reconcile()

    @rule(all_pods=st.booleans())
    def pods_ready(self, all_pods: bool) -> None:
        w = self.world
        canary = w.status.get("canaryRevision")
        w.pods_ready(None if all_pods or not canary else canary)

    @rule()
    def gateway_acknowledges(self) -> None:
        self.world.ack()

    @rule()
    def gateway_reads_a_generation_in_between(self) -> None:
        self.world.ack_between()

    @rule(lag=st.booleans())
    def gateway_lags(self, lag: bool) -> None:
        self.world.lag = lag

    @rule()
    def someone_edits_the_route(self) -> None:
        self.world.user_edit()

    @rule()
    def gitops_resets_the_weights(self) -> None:
        self.world.gitops_reset()

    @rule()
    def someone_deletes_the_route(self) -> None:
        self.world.delete_route()

    @rule()
    def someone_creates_the_route_again(self) -> None:
        self.world.recreate_route()

    @rule(version=st.sampled_from(["v1", "v2", "v3"]), passes=st.integers(0, 6))
    def release(self, version: str, passes: int) -> None:
        """A new template, and the cluster catching up with it for a while."""
        self.world.release(version)
        self.the_cluster_catches_up(passes, True)

    @rule(verb=st.sampled_from(["promote", "promote-full", "abort", "retry"]))
    def token(self, verb: str) -> None:
        """A request, and the reconcile that acts on it."""
        self.tokens += 1
        self.world.token(verb, f"t{self.tokens}")
        self.world.reconcile()

    @rule(seconds=st.sampled_from([0.5, 5.0, 120.0]))
    def time_passes(self, seconds: float) -> None:
        self.world.tick(seconds)

    @invariant()
    def holds(self) -> None:
        self.world.check()


RouteMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("RAMP_MODEL_ROUTE_EXAMPLES", "20000" if FUZZ else "80")),
    stateful_step_count=30,
    derandomize=not FUZZ,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRouteMachine = RouteMachine.TestCase


def started() -> RouteWorld:
    w = RouteWorld()
    settle(w, 3)
    return w


@pytest.mark.parametrize("weight", [5, 30])
def test_exact_weight_with_three_replicas(weight: int) -> None:
    w = RouteWorld(steps=[{"setWeight": weight}, {"pause": {}}])
    settle(w, 3)
    w.release("v2")
    settle(w)
    assert w.status["phase"] == "Paused"
    assert w.canary_share() == weight
    canary = w.status["canaryRevision"]
    assert w.children == {w.status["stableRevision"]: 3, canary: 1}
    assert w.status["routes"][0]["acknowledged"] == weight


def test_a_gateway_that_never_acknowledges_holds_the_step_with_a_reason() -> None:
    w = started()
    w.lag = True
    w.release("v2")
    settle(w, 8)
    assert w.status["phase"] == "Progressing"
    assert w.status["currentStepIndex"] == 0
    route = w.status["routes"][0]
    assert route["desired"] == 5 and route["acknowledged"] == 0
    assert "not seen yet" in route["message"]
    assert w.canary_share() == 0


def test_abort_moves_the_weight_first_pods_after_the_acknowledgement() -> None:
    w = started()
    w.release("v2")
    settle(w)
    canary = w.status["canaryRevision"]
    assert w.canary_share() == 5
    w.lag = True
    w.token("abort", "a1")
    w.reconcile()
    assert w.status["phase"] == "Aborted"
    assert w.status["routes"][0]["desired"] == 0
    assert w.children[canary] == 1, "the canary keeps its pod until its 0 is acknowledged"
    settle(w, 3)
    assert w.children[canary] == 1
    w.lag = False
    settle(w, 2)
    assert w.children[canary] == 1, "the proxy may still use the old weights for a moment"
    settle(w, 3)
    assert w.children.get(canary, 0) == 0


def test_gitops_reset_is_reported_once_left_alone_then_written_again() -> None:
    w = started()
    w.release("v2")
    settle(w)
    assert w.canary_share() == 5
    w.gitops_reset()
    w.ack()
    assert w.canary_share() == 0
    settle(w, 3)
    assert w.canary_share() == 0, "no fight: the reset weights are left alone for a while"
    route = w.status["routes"][0]
    assert route["conflicts"] == 1 and "someone else" in route["message"]
    w.tick(61)
    settle(w, 3)
    assert w.canary_share() == 5, "after the back-off Ramp writes its weights once more"


def test_gitops_reset_raises_one_event() -> None:
    w = started()
    w.release("v2")
    settle(w)
    w.gitops_reset()
    w.ack()
    reasons = []
    for _ in range(4):
        result = w.reconcile()
        reasons += [e.reason for e in result.events]
        w.ack()
        w.tick()
    assert reasons.count("RouteConflict") == 1


def test_a_deleted_route_is_invalid_spec_naming_the_field_workload_as_it_was() -> None:
    w = started()
    w.release("v2")
    settle(w)
    before = dict(w.children)
    w.delete_route()
    settle(w, 3)
    assert w.children == before
    conditions = {c["type"]: c for c in w.status["conditions"]}
    assert "spec.strategy.canary.httpRoutes[0]" in conditions["InvalidSpec"]["message"]
    w.recreate_route()
    settle(w, 4)
    assert "InvalidSpec" not in {c["type"] for c in w.status["conditions"] if c["status"] == "True"}


def test_header_route_added_at_its_step_removed_at_promotion() -> None:
    steps = [
        {
            "setHeaderRoute": {
                "name": "beta",
                "match": [{"headerName": "X-Beta", "headerValue": {"exact": "1"}}],
            }
        },
        {"setWeight": 0},
        {"pause": {}},
    ]
    w = RouteWorld(steps=steps)
    settle(w, 3)
    w.release("v2")
    settle(w)
    assert w.route is not None
    rules = [r for r in w.route["spec"]["rules"] if str(r.get("name", "")).startswith("ramp-")]
    assert len(rules) == 1
    assert rules[0]["matches"][0]["headers"] == [{"type": "Exact", "name": "X-Beta", "value": "1"}]
    assert rules[0]["backendRefs"][0]["name"] == "web-canary"
    w.token("promote-full", "p")
    settle(w, 8)
    assert w.status["phase"] == "Healthy"
    assert not [r for r in w.route["spec"]["rules"] if str(r.get("name", "")).startswith("ramp-")]


def test_weights_reset_after_each_of_ramps_writes_one_event_condition_pods_kept() -> None:
    """A GitOps tool puts its weights back after each of Ramp's writes, before Ramp saw
    them acknowledged: Ramp writes its weights again after each back-off (no fight in
    between), says it with one Event in all, the RouteConflict condition stays True (with
    the ignoreDifferences of the route's weights), and a revision the route still sends
    traffic to keeps the pods its share needs throughout (``check`` after every write and
    acknowledgement). Within the progress deadline (it aborts a rollout that cannot hold
    its weight: then Ramp's 0 is written at once, back-off or not)."""
    w = started()
    w.release("v2")
    settle(w)
    assert w.canary_share() == 5
    events: list[str] = []
    writes = resets = 0
    for _ in range(110):  # 550 s: resets at 14, 74, 199, 504 s
        result = w.reconcile()
        events += [e.reason for e in result.events]
        w.sync_endpoints()
        w.pods_ready()
        w.ack()
        if result.traffic:
            writes += 1
        if w.canary_share() == 5:  # Ramp's weights are in: the tool puts its own back
            w.gitops_reset()
            w.ack()
            resets += 1
        w.tick(5.0)
    assert (writes, resets) == (3, 4), "Ramp writes its weights again after each back-off"
    assert events == ["RouteConflict"]
    assert w.status["phase"] != "Aborted"
    conditions = {c["type"]: c for c in w.status["conditions"]}
    cond = conditions["RouteConflict"]
    assert cond["status"] == "True" and cond["reason"] == "WeightsFoughtOver"
    assert (
        "group: gateway.networking.k8s.io, kind: HTTPRoute, name: web, jsonPointers: "
        "[/spec/rules/0/backendRefs/0/weight, /spec/rules/0/backendRefs/1/weight]"
    ) in cond["message"]
    assert w.status["routes"][0]["conflicts"] == resets
    # an abort within the back-off: Ramp's 0 is written at once (the tool's weights had 0)
    w.token("abort", "a1")
    settle(w, 6)
    assert w.status["phase"] == "Aborted" and w.canary_share() == 0
    assert w.status["routes"][0]["desired"] == 0
