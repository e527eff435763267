"""Named examples of the HTTPRoute router: a gateway that proxies a generation of the route
written between the last one it acknowledged and the current one.

Ramp writes two generations close together (the switch or a step, then an abort before
the first was acknowledged); the gateway reads the first, proxies it and reports that
generation, not the current one. The planner counted only the last acknowledged shares
and the weights it wanted: the revision the in-between generation sends everything to was
scaled to zero while the gateway sent it requests. Fixed by ``status.routes[].pending``
(the shares of the generations since the last acknowledged one count until the current
one is acknowledged, and a moment after). Both fail without it. And a header rule whose
removal the gateway has not acknowledged (the last example)."""

from __future__ import annotations

from model.sim_bluegreen_routes import PREVIEW_SVC, BlueGreenRouteWorld
from model.sim_routes import CANARY_SVC, RouteWorld, settle


def test_blue_green_abort_before_the_switch_was_acknowledged_keeps_green() -> None:
    w = BlueGreenRouteWorld(
        blue_green={"autoPromotionEnabled": False, "abortScaleDownDelaySeconds": 0}
    )
    settle(w, 3)
    w.release("v2")
    settle(w, 6)
    blue, green = w.status["stableRevision"], w.status["canaryRevision"]
    w.lag = True
    w.token("promote", "p")
    w.reconcile()  # the switch: preview 100
    w.tick(0.5)
    w.token("abort", "a")
    w.reconcile()  # the abort: active 100, before the switch was acknowledged
    w.lag = False
    w.ack_between()  # the gateway proxies the switch (the preview still lists green)
    assert w.shares() == {green: 100.0}
    for _ in range(4):
        w.tick(0.5)
        w.reconcile()  # check(): green keeps the pods its share needs
    assert w.children[green] == 3
    w.ack()
    settle(w, 6)
    assert w.children.get(green, 0) == 0 and w.shares() == {blue: 100.0}


def test_canary_abort_before_the_step_was_acknowledged_keeps_the_canary() -> None:
    w = RouteWorld(steps=[{"setWeight": 30}, {"pause": {}}])
    settle(w, 3)
    w.lag = True
    w.release("v2")
    for _ in range(4):
        w.reconcile()
        w.sync_endpoints()
        w.pods_ready()
        w.tick()
    assert w.route is not None
    canary = w.status["canaryRevision"]
    refs = {r["name"]: r["weight"] for r in w.route["spec"]["rules"][0]["backendRefs"]}
    assert refs[CANARY_SVC] == 30, "the step's weight written, not acknowledged"
    w.token("abort", "a")
    w.reconcile()  # weight 0 written before the 30 was acknowledged
    w.lag = False
    w.ack_between()  # the gateway proxies the 30
    assert w.canary_share() == 30
    for _ in range(4):
        w.tick(0.5)
        w.reconcile()  # check(): the canary keeps the pods its share needs
    assert w.children[canary] == 1
    w.ack()
    settle(w, 6)
    assert w.children.get(canary, 0) == 0


def test_a_header_rule_not_yet_removed_by_the_gateway_keeps_a_pod_of_its_revision() -> None:
    """Found by tests/model/test_model_bluegreen_gateway.py. The preview's header rule
    sends matching requests to green; the release is cancelled (the template back to
    blue's): the pass that removed the rule also scaled green to zero, while the gateway
    had not acknowledged the removal (and the preview's EndpointSlices still listed
    green): requests with the header reached a revision with no pod. The floors counted
    only the weights (``acknowledged``, also what a step compares with its weights, where
    a header rule must not count). Fixed by the routers' ``carried`` (the floors' view:
    1 % for each revision a rule of Ramp's reaches, kept in ``status.routes[].headers``
    until its removal is acknowledged)."""
    w = BlueGreenRouteWorld(
        blue_green={"autoPromotionEnabled": False, "abortScaleDownDelaySeconds": 0}
    )
    settle(w, 3)
    w.release("v2")
    settle(w, 6)
    green = w.status["canaryRevision"]
    assert w.header_rules() and w.accepted is not None
    w.lag = True
    w.release("v1")  # back to blue's template: the release is cancelled
    for _ in range(3):
        w.reconcile()
        w.tick(0.5)
    still = [r for r in w.accepted["rules"] if str(r.get("name", "")).startswith("ramp-")]
    assert still and w.slices.get(PREVIEW_SVC) == green, "the gateway still routes the header"
    assert w.children.get(green, 0) >= 1, "green keeps a pod for the header's requests"


def test_a_gitops_reset_before_ramp_read_its_own_write_keeps_the_canary_pods() -> None:
    """Found by ``make fuzz-for`` (round 2, seed 922425656): Ramp wrote 95/5 (generation 2)
    and the gateway acknowledged it, but before Ramp's next pass a GitOps tool set the
    weights back to 100/0 (generation 3, not acknowledged yet). Ramp had recorded only what
    it read (generation 1: all on the stable), so on an abort it scaled the canary to zero
    while the gateway still proxied 5 % to it. What a pass writes is now recorded as pending
    until a generation after it is acknowledged."""
    from model.test_model_routes import RouteMachine

    m = RouteMachine()
    m.stable_runs()
    m.release(passes=3, version="v2")
    m.gitops_resets_the_weights()
    m.token(verb="abort")  # the world's check: never below the pods the share needs


def test_a_completion_the_gateway_has_not_applied_keeps_the_preview_on_its_revision() -> None:
    """Found by a bounded fuzz of the blue-green route machine (issue 23 follow-up): v2
    completed (the weights back on the active Service, 100/0) but the gateway lagged and
    still proxied the switch's 0/100; the next release (v3) pinned the preview Service to
    its new green, and the gateway sent it every request before any switch was decided.
    The preview Service now keeps the revision it selects while a route may still send it
    requests (weights on it, or a change not yet acknowledged and settled)."""
    from model.test_model_bluegreen_routes import BlueGreenRouteMachine

    m = BlueGreenRouteMachine()
    m.stable_runs(auto=True, abort_delay=0, delay=0, post=False)
    m.release(passes=0, version="v1")
    m.token(verb="promote")
    m.release(passes=6, version="v2")
    m.gateway_lags(lag=True)
    m.release(passes=3, version="v3")
    m.holds()  # the world's check: no request to a green whose switch was not decided


def test_a_release_back_to_blue_while_the_gateway_lags_keeps_the_pods_of_its_share() -> None:
    """Found by the same fuzz: v2 completed, someone edited the route, the gateway lagged
    (the return to the active Service not applied: it proxied 0/100 to the preview); a
    release back to v1 pinned the preview to v1 at its preview size (1 pod) while the
    gateway sent it every request (it needs 3). Kept by the same rule."""
    from model.test_model_bluegreen_routes import BlueGreenRouteMachine

    m = BlueGreenRouteMachine()
    m.stable_runs(auto=True, delay=0, abort_delay=0, post=False)
    m.release(passes=0, version="v1")
    m.release(passes=0, version="v1")
    m.release(passes=6, version="v2")
    m.someone_edits_the_route()
    m.gateway_lags(lag=True)
    m.release(passes=1, version="v1")
    m.release(passes=0, version="v2")
    m.the_cluster_catches_up(ack=False, passes=1)
    m.holds()


def test_a_release_right_after_a_promotion_moves_the_weights_off_the_canary_service_first() -> None:
    """make fuzz-for, seed 954848776 (the route machine). R=3 through an HTTPRoute: v2
    promoted in full leaves the route at 0/100 (both Services pinned to v2, the stable's
    100 % through the canary Service), and v1 is released before the pass that would have
    moved it back. The new release's weights could not move (v1 had no Service of its
    own yet), and the canary Service was pinned to v1 (one pod) while the route sent it
    everything. Now the route first carries the shares through the stable Service (no
    revision's share changes), and the canary Service keeps v2 until that is
    acknowledged."""
    w = RouteWorld()
    settle(w, 3)
    w.release("v2")
    for _ in range(4):
        w.reconcile()
        w.sync_endpoints()
        w.pods_ready()
        w.tick()  # the gateway lags
    w.token("promote-full", "t1")
    w.reconcile()
    w.pods_ready(w.status.get("canaryRevision"))
    settle(w, 4)
    v2 = w.status["stableRevision"]
    assert w.status["phase"] == "Healthy" and w.shares() == {v2: 100.0}
    w.release("v1")
    settle(w, 2)  # the route's check fails here without the fix
    v1 = w.status["canaryRevision"]
    assert w.shares().get(v1, 0.0) <= 5.0
    settle(w, 8)
    assert w.status["stableRevision"] == v2 and w.status["canaryRevision"] == v1


def test_a_canary_service_moved_while_the_gateway_lags_keeps_its_new_pods() -> None:
    """make fuzz-for, seed 246751388. A canary (v3) runs at 5 %; the template goes back to
    an earlier canary (v2, its Deployment still there). The canary Service moves to v2
    (its pod is ready) in a pass whose new generation of the route the gateway does not
    acknowledge: the gateway keeps sending the canary Service 5 %, now v2's pod. The
    template then goes back to the stable: v2 was scaled to zero at once (the recorded
    acknowledged shares named the revision behind the Service when it was acknowledged,
    v3), while the gateway still sent it 5 %. The acknowledged split counts through the
    revisions the Services' endpoints list now; v2 goes once they list it no longer."""
    w = RouteWorld()
    settle(w, 3)
    stable = w.status["stableRevision"]
    w.tick(4.0)
    w.release("v2")
    lagging_pass(w)
    second = w.status["canaryRevision"]
    w.release("v3")
    settle(w, 4)
    assert w.canary_share() == 5.0 and w.status["canaryRevision"] != second
    w.release("v2")
    settle(w, 1)
    lagging_pass(w)  # the canary Service moves to v2's ready pod; the gateway lags
    assert w.pins[CANARY_SVC] == second and w.shares() == {stable: 95.0, second: 5.0}
    w.release("v1")
    w.reconcile()  # check(): v2 keeps its pod while the endpoints list it
    assert w.children[second] == 1
    w.sync_endpoints()  # the canary Service lists the stable's pods: v2 may go
    for _ in range(2):
        w.tick(0.5)
        w.reconcile()
    assert not w.children.get(second) and w.shares() == {stable: 100.0}


def lagging_pass(w: RouteWorld) -> None:
    """A reconcile with the endpoints and pods in step and the gateway acknowledging
    nothing."""
    w.reconcile()
    w.sync_endpoints()
    w.pods_ready()
    w.tick()


def test_a_route_deleted_while_it_sends_everything_to_the_preview_keeps_its_pin() -> None:
    """make fuzz-for, seed 669638058 (the blue-green route machine). v3 completed while
    the gateway proxied the switch (0/100: everything to the preview Service, which
    selects v3); the return to the active Service was written, not acknowledged. A release
    of v2 kept the preview Service on v3 (the route's weights may send it requests), until
    someone deleted the route: the pass (InvalidSpec, the route is gone) no longer read
    any weights and moved the preview Service to v2's green, which the gateway, still
    proxying what it last acknowledged, sent every request before any switch was decided.
    A route that is gone counts as one whose generation is not acknowledged."""
    from model.test_model_bluegreen_routes import BlueGreenRouteMachine

    m = BlueGreenRouteMachine()
    m.stable_runs(auto=False, delay=0, abort_delay=0, post=False)
    m.release(passes=0, version="v3")
    m.the_cluster_catches_up(ack=False, passes=3)
    m.token(verb="promote")
    m.release(passes=4, version="v3")
    m.reconcile()
    m.release(passes=0, version="v2")
    m.reconcile()
    m.the_cluster_catches_up(ack=False, passes=1)
    m.holds()
    m.someone_deletes_the_route()
    m.the_cluster_catches_up(ack=False, passes=1)
    assert m.world.status["phase"] == "Degraded"  # InvalidSpec: the route does not exist
    m.holds()  # failed here: the route sent 100% to v2's green, never switched to
