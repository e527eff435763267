"""Which Rollouts name which HTTPRoutes, and a route's watch event to kicks
(``ramp.shell.controller.route_index``): a change of what a pass reads (the spec's
generation, the gateway's status) kicks every Rollout naming the route, nothing else does
(metadata alone, a route no Rollout names, the echo of Ramp's own patch); the index
follows the Rollouts' specs (renamed, dropped, deleted)."""

from __future__ import annotations

from typing import Any

from ramp.shell.controller.route_index import RouteIndex, route_names


def rollout(routes: list[Any] | None, strategy: str = "canary") -> dict[str, Any]:
    spec: dict[str, Any] = {} if routes is None else {"httpRoutes": routes}
    return {"spec": {"strategy": {strategy: spec}}}


def route(
    name: str,
    generation: int = 1,
    rv: int = 1,
    ack: int | None = None,
    namespace: str = "ns",
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    status = {}
    if ack is not None:
        status = {"parents": [{"conditions": [{"type": "Accepted", "observedGeneration": ack}]}]}
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "generation": generation,
            "resourceVersion": str(rv),
            "labels": labels or {},
        },
        "spec": {"rules": []},
        "status": status,
    }


def index() -> tuple[RouteIndex, list[tuple[str, str]], dict[tuple[str, str], str]]:
    kicks: list[tuple[str, str]] = []
    echoes: dict[tuple[str, str], str] = {}
    return RouteIndex(kicks.append, echoes), kicks, echoes


def test_route_names_of_the_strategy_it_runs() -> None:
    assert route_names(rollout(["a", "b", "a"])) == ("a", "b")
    assert route_names(rollout(["c"], "blueGreen")) == ("c",)
    assert route_names(rollout(None)) == ()
    assert route_names({"spec": {"strategy": {"canary": {"httpRoutes": [1, "", "d"]}}}}) == ("d",)
    assert route_names({"spec": None}) == ()
    assert route_names({}) == ()


def test_a_change_of_generation_or_status_kicks_every_rollout_naming_the_route() -> None:
    idx, kicks, _ = index()
    idx.remember("ns", "web", rollout(["shop"]))
    idx.remember("ns", "api", rollout(["shop", "other"]))
    idx.remember("ns", "lone", rollout(None))
    idx.remember("other-ns", "web", rollout(["shop"]))
    assert idx and idx.rollouts[("ns", "shop")] == {"web", "api"}
    idx.routes_listed("ns", [route("shop", 1, 1, ack=1), route("unnamed")])
    assert kicks == []  # the first list only records (each Rollout's first pass reads)
    idx.event("MODIFIED", route("shop", 2, 2, ack=1))  # a GitOps reset: a new generation
    assert kicks == [("ns", "api"), ("ns", "web")]
    idx.event("MODIFIED", route("shop", 2, 3, ack=2))  # the gateway acknowledges it
    assert kicks[2:] == [("ns", "api"), ("ns", "web")]
    del kicks[:]
    idx.event("MODIFIED", route("shop", 2, 4, ack=2, labels={"argocd": "x"}))  # metadata only
    idx.event("MODIFIED", route("unnamed", 5, 5))  # named by no Rollout
    idx.event("MODIFIED", route("other", 1, 6))  # first seen: someone's change
    assert kicks == [("ns", "api")]
    idx.event("DELETED", route("shop", 2, 7))
    assert kicks[1:] == [("ns", "api"), ("ns", "web")]
    assert ("ns", "shop") not in idx.seen


def test_the_echo_of_rampss_own_patch_kicks_nothing_the_next_change_does() -> None:
    idx, kicks, echoes = index()
    idx.remember("ns", "web", rollout(["shop"]))
    idx.routes_listed("ns", [route("shop", 1, 1, ack=1)])
    echoes[("ns", "shop")] = "2"  # the answer of Ramp's patch (its watch event follows)
    idx.event("MODIFIED", route("shop", 2, 2, ack=1))
    assert kicks == [] and ("ns", "shop") not in echoes
    idx.event("MODIFIED", route("shop", 2, 3, ack=2))  # the gateway's acknowledgement
    assert kicks == [("ns", "web")]
    echoes[("ns", "shop")] = "9"  # a patch whose answer came after its watch event
    idx.event("MODIFIED", route("shop", 3, 4, ack=2))
    assert kicks[1:] == [("ns", "web")]


def test_a_list_again_kicks_for_the_routes_changed_or_gone_meanwhile() -> None:
    idx, kicks, _ = index()
    idx.remember("ns", "web", rollout(["a"]))
    idx.remember("ns", "api", rollout(["b"]))
    idx.remember("ns", "db", rollout(["c"]))
    idx.routes_listed("ns", [route("a"), route("b"), route("c")])
    idx.routes_listed("ns", [route("a"), route("b", 2, 2)])  # after 410 Gone: c went, b moved
    assert sorted(kicks) == [("ns", "api"), ("ns", "db")]
    idx.unwatched("ns")
    assert idx.seen == {} and idx.listed == set()


def test_the_index_follows_the_rollouts_specs() -> None:
    idx, kicks, _ = index()
    idx.remember("ns", "web", rollout(["a"]))
    idx.routes_listed("ns", [route("a"), route("b")])
    idx.remember("ns", "web", rollout(["b"], "blueGreen"))  # now names b only
    assert idx.rollouts == {("ns", "b"): {"web"}} and ("ns", "a") not in idx.seen
    idx.event("MODIFIED", route("a", 2, 2))
    assert kicks == []
    idx.event("MODIFIED", route("b", 2, 3))
    assert kicks == [("ns", "web")]
    idx.forget(("ns", "web"))  # deleted
    assert not idx and idx.rollouts == {} and idx.seen == {}
    idx.event("MODIFIED", route("b", 3, 4))
    assert kicks == [("ns", "web")]
