"""A GitOps tool resets the weights of a canary's HTTPRoute on the real API server, with the
real gateway serving it (issue 23, ``ramp.core.route_conflict``): Ramp reports it like a
``workloadRef`` conflict (the ``RouteConflict`` condition with the ``ignoreDifferences``
of the weights, one Event) and does not fight over the weights; an abort still takes the
canary out of the route at once. Every write to the route is seen by a watch (its
generation), every answer through the gateway counted: what the users saw.

Ramp reads the routes on each pass of the Rollout, and its route watch makes a pass of each
change of them (``test_gateway_watch.py``); the test gives it more passes still by
annotating the Rollout (``kick``): however often it looks, it does not fight.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

import pytest
from gateway_e2e import (
    GW_GROUP,
    GW_VERSION,
    GatewayTraffic,
    RealGateway,
    accepted,
    acknowledged,
    routed,
    share,
    weights_of,
)
from kubernetes import watch
from ramp_e2e import Rollouts, condition, wait_for
from realnode_e2e import FIGURES, RealCluster, release

pytestmark = pytest.mark.realnode

GITOPS = "argocd-controller"
"""The field manager of the test's resets (Argo CD's application controller's)."""


class RouteWrites:
    """Every generation of a route, as a watch sees it: (monotonic time, generation,
    resourceVersion, weights of its rules)."""

    def __init__(self, gateway: RealGateway, namespace: str, name: str) -> None:
        self.gateway, self.ns, self.name = gateway, namespace, name
        self.seen: list[tuple[float, int, str, list[dict[str, int]]]] = []
        self._watch = watch.Watch()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="route-writes", daemon=True)

    def start(self) -> RouteWrites:
        self._thread.start()
        wait_for("the route watched", lambda: bool(self.seen), timeout=30)
        return self

    def stop(self) -> None:
        self._stop.set()
        self._watch.stop()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for event in self._watch.stream(
                    self.gateway.custom.list_namespaced_custom_object,
                    GW_GROUP,
                    GW_VERSION,
                    self.ns,
                    "httproutes",
                    field_selector=f"metadata.name={self.name}",
                    timeout_seconds=120,
                ):
                    route = event["object"]
                    meta = route["metadata"]
                    generation = int(meta["generation"])
                    if not self.seen or self.seen[-1][1] != generation:
                        self.seen.append(
                            (
                                time.monotonic(),
                                generation,
                                meta["resourceVersion"],
                                weights_of(route),
                            )
                        )
            except Exception:  # a dropped watch: watch again (a generation is never lost:
                time.sleep(0.2)  # the next event carries the latest)

    def since(self, moment: float, but: set[int] | frozenset[int] = frozenset()) -> list[Any]:
        """The generations written after ``moment``, but those in ``but`` (the test's)."""
        return [s for s in self.seen if s[0] > moment and s[1] not in but]


def kick(rollouts: Rollouts, name: str) -> None:
    """An event of the Rollout: Ramp looks at it (and reads its routes) now."""
    rollouts.patch(name, {"metadata": {"annotations": {"test/kick": secrets.token_hex(3)}}})


def conflict_events(rollouts: Rollouts, name: str) -> list[tuple[str, int]]:
    """The Rollout's RouteConflict Events: (message, count)."""
    items = rollouts.core.list_namespaced_event(
        rollouts.ns, field_selector=f"involvedObject.name={name},involvedObject.kind=Rollout"
    ).items
    return [(e.message, e.count or 1) for e in items if e.reason == "RouteConflict"]


def test_gitops_weight_reset_reported_once_not_fought_abort_still_at_once(
    real_cluster: RealCluster, real_gateway: RealGateway, real_rollouts: Rollouts
) -> None:
    """At weight 30 a GitOps tool's self-heal puts its repository's weights (80/20) back
    with a JSON patch: the RouteConflict condition says so with the ignoreDifferences of the
    two weights, one Event; Ramp leaves the weights to it however often it looks (no write
    of Ramp's to the route), the gateway's users get the GitOps weights; an abort then
    writes the canary's 0 at once, back-off or not: its share is 0 within 1 s."""
    rollouts, name = real_rollouts, "gitops"
    host, _ = routed(real_gateway, rollouts, name, [{"setWeight": 30}, {"pause": {}}], replicas=2)
    traffic = GatewayTraffic(real_gateway, host, seconds=180, rps=200).start()
    writes = RouteWrites(real_gateway, rollouts.ns, name)
    moments = {"traffic": time.monotonic()}
    try:
        traffic.wait_count(traffic.mark(), 100, timeout=60)
        moments["release"] = time.monotonic()
        release(rollouts, name, {"VERSION": "v2"})
        wait_for("weight 30 acknowledged", lambda: acknowledged(rollouts, name, 1, 30), 120)
        time.sleep(2.0)  # the gateway's routers follow its status a moment later
        at_30 = traffic.wait_count(traffic.mark(), 1000, timeout=60)
        writes.start()
        # Argo CD's self-heal: the weights of its repository, by a JSON patch
        reset = real_gateway.custom.patch_namespaced_custom_object(
            GW_GROUP,
            GW_VERSION,
            rollouts.ns,
            "httproutes",
            name,
            [
                {"op": "replace", "path": "/spec/rules/0/backendRefs/0/weight", "value": 80},
                {"op": "replace", "path": "/spec/rules/0/backendRefs/1/weight", "value": 20},
            ],
            field_manager=GITOPS,
            _content_type="application/json-patch+json",
        )
        reset_at = moments["reset"] = time.monotonic()
        ours = {int(reset["metadata"]["generation"])}
        kick(rollouts, name)
        status = rollouts.wait(
            name,
            "the RouteConflict condition",
            lambda s: condition(s, "RouteConflict").get("status") == "True",
            timeout=30,
        )
        reported = time.monotonic()
        wait_for("the reset accepted", lambda: accepted(real_gateway, rollouts.ns, name), 30)
        time.sleep(2.0)
        # Ramp looks again and again meanwhile (every second, for 10 s): it leaves them
        window = time.monotonic()
        reset_mark = traffic.mark()
        for _ in range(10):
            kick(rollouts, name)
            time.sleep(1.0)
        after_reset = traffic.since(reset_mark)
        # (after its back-off, 60 s, Ramp writes its weights once more: not in this window)
        fought = [w for w in writes.since(reset_at, but=ours) if w[0] < reset_at + 55]
        held = rollouts.status(name)
        events = conflict_events(rollouts, name)
        route = real_gateway.read_route(rollouts.ns, name)
        window = time.monotonic() - window
        # the abort: the canary's 0 written at once, whatever the back-off
        moments["abort"] = time.monotonic()
        rollouts.request(name, "abort")
        decided = wait_for(
            "the abort decided",
            lambda: time.monotonic() if rollouts.status(name).get("phase") == "Aborted" else 0,
            timeout=30,
            interval=0.05,
        )
        wait_for(
            "the canary's 0 on the route",
            lambda: (
                weights_of(real_gateway.read_route(rollouts.ns, name))[0].get(f"{name}-canary") == 0
            ),
            timeout=10,
            interval=0.05,
        )
        time.sleep(max(0.0, decided + 1.0 - time.monotonic()))  # 1 s after the decision:
        after = traffic.mark()  # the canary has no share left
        traffic.wait_count(after, 1000, timeout=60)
        aborted = writes.since(decided - 5.0, but=ours)
    finally:
        traffic.stop()
        writes.stop()
    last = traffic.last("v2") or 0.0
    FIGURES.append(
        f"gateway GitOps reset at weight 30 (80/20 by a JSON patch): RouteConflict "
        f"{reported - reset_at:.2f}s after the reset (kicked), {len(events)} Event; users saw "
        f"{share(at_30, 'v2'):.1f}% canary before, {share(after_reset, 'v2'):.1f}% of "
        f"{sum(after_reset.values())} after; Ramp's writes to the route: {len(fought)} in "
        f"{window:.0f}s of passes (kicked each second) before the abort, {len(aborted)} "
        f"for the abort; last canary answer {last - decided:+.2f}s after the abort decided; "
        f"{len(traffic.log)} requests, {len(traffic.failed())} failed"
    )
    cond = condition(held, "RouteConflict")
    assert cond["status"] == "True" and cond["reason"] == "WeightsFoughtOver", cond
    for pointer in ("/spec/rules/0/backendRefs/0/weight", "/spec/rules/0/backendRefs/1/weight"):
        assert pointer in cond["message"], cond["message"]
    assert "ignoreDifferences" in cond["message"] and "kind: HTTPRoute" in cond["message"]
    assert condition(status, "RouteConflict")["reason"] == "WeightsFoughtOver"
    assert len(events) == 1 and events[0][1] == 1, events
    assert "ignoreDifferences" in events[0][0], events
    assert not fought, f"Ramp wrote the route back during the back-off: {fought}"
    assert weights_of(route)[0] == {f"{name}-stable": 80, f"{name}-canary": 20}, route
    assert abs(share(after_reset, "v2") - 20) <= 3, after_reset
    assert abs(share(at_30, "v2") - 30) <= 3, at_30
    assert len(aborted) == 1, f"the abort is one write of the route: {aborted}"
    assert aborted[0][3][0] == {f"{name}-stable": 100, f"{name}-canary": 0}, aborted
    assert last - decided <= 1.0, "the canary's share is 0 within 1 s of the decision"
    assert share(traffic.since(after), "v2") == 0.0
    failed = traffic.failed()
    assert not failed, (
        f"{len(failed)} failed ({dict(traffic.errors)}), from "
        + ", ".join(f"{failed[0][0] - t:+.2f}s" for t in moments.values())
        + " to "
        + ", ".join(f"{failed[-1][0] - t:+.2f}s" for t in moments.values())
        + f" after {', '.join(moments)}"
    )
