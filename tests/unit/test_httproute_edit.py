"""The pure editing of a user's HTTPRoute (ramp.core.httproute): only the weights of the
backendRefs naming the Rollout's Services and the rules Ramp marked as its own are ever
written; acknowledgement from status.parents."""

from __future__ import annotations

import copy
import doctest
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ramp.core.httproute as hr
from ramp.core.httproute import HeaderMatch, HeaderRule

ROLLOUT = "checkout"
SERVICES = ("checkout-stable", "checkout-canary")


def user_route(**extra_rules: Any) -> dict[str, Any]:
    """A route with rules of the user's: the Rollout's (a filter, a third backend), another
    path, a timeout."""
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "shop", "namespace": "shop", "resourceVersion": "7", "generation": 3},
        "spec": {
            "parentRefs": [{"name": "web", "namespace": "gw"}],
            "hostnames": ["shop.example"],
            "rules": [
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/api"}}],
                    "filters": [
                        {
                            "type": "RequestHeaderModifier",
                            "requestHeaderModifier": {"add": [{"name": "X-Via", "value": "gw"}]},
                        }
                    ],
                    "backendRefs": [
                        {"name": "checkout-stable", "port": 80, "weight": 100},
                        {"name": "checkout-canary", "port": 80, "weight": 0},
                        {"name": "legacy", "port": 8080, "weight": 10},
                    ],
                    "timeouts": {"request": "10s"},
                },
                {
                    "matches": [{"path": {"type": "PathPrefix", "value": "/static"}}],
                    "backendRefs": [{"name": "static", "port": 80}],
                },
            ],
        },
        **extra_rules,
    }


def test_doctests() -> None:
    failures, _ = doctest.testmod(hr)
    assert failures == 0


def test_weights_only_the_rollouts_backends_other_fields_untouched() -> None:
    route = user_route()
    before = copy.deepcopy(route)
    ops = hr.weight_ops(route, {"checkout-stable": 95, "checkout-canary": 5}, ROLLOUT)
    paths = [op["path"] for op in ops if op["op"] != "test"]
    assert paths == ["/spec/rules/0/backendRefs/0/weight", "/spec/rules/0/backendRefs/1/weight"]
    after = hr.apply_ops(route, ops)
    assert route == before, "the observed route is not mutated"
    assert hr.backend_weights(after, SERVICES, ROLLOUT) == [
        {"checkout-stable": 95, "checkout-canary": 5}
    ]
    # field by field, everything but those two weights is as it was
    after["spec"]["rules"][0]["backendRefs"][0]["weight"] = 100
    after["spec"]["rules"][0]["backendRefs"][1]["weight"] = 0
    assert after == before


def test_weights_in_place_write_nothing() -> None:
    route = user_route()
    assert hr.weight_ops(route, {"checkout-stable": 100, "checkout-canary": 0}, ROLLOUT) == []
    assert hr.route_patch(route, []) is None


def test_absent_weight_is_added_not_replaced() -> None:
    route = user_route()
    del route["spec"]["rules"][0]["backendRefs"][1]["weight"]  # default weight 1
    ops = hr.weight_ops(route, {"checkout-stable": 100, "checkout-canary": 0}, ROLLOUT)
    assert ops[-1] == {"op": "add", "path": "/spec/rules/0/backendRefs/1/weight", "value": 0}
    assert hr.backend_weights(route, SERVICES, ROLLOUT) == [
        {"checkout-stable": 100, "checkout-canary": 1}
    ]


def test_a_rule_to_one_of_the_services_only_is_the_users_split() -> None:
    route = user_route()
    route["spec"]["rules"].append({"backendRefs": [{"name": "checkout-stable", "weight": 7}]})
    ops = hr.weight_ops(route, {"checkout-stable": 70, "checkout-canary": 30}, ROLLOUT)
    assert {op["path"] for op in ops if op["op"] != "test"} == {
        "/spec/rules/0/backendRefs/0/weight",
        "/spec/rules/0/backendRefs/1/weight",
    }
    # read for what it sends (the stable Service's revisions), never written
    assert hr.backend_weights(route, SERVICES, ROLLOUT)[-1] == {"checkout-stable": 7}
    assert len(hr.backend_weights(route, SERVICES, ROLLOUT, complete=True)) == 1


def test_backend_of_another_namespace_or_kind_is_not_the_rollouts() -> None:
    route = user_route()
    refs = route["spec"]["rules"][0]["backendRefs"]
    refs.append({"name": "checkout-canary", "namespace": "other", "port": 80, "weight": 3})
    refs.append({"name": "checkout-canary", "kind": "Backend", "group": "x.io", "weight": 4})
    ops = hr.weight_ops(route, {"checkout-stable": 50, "checkout-canary": 50}, ROLLOUT)
    assert {op["path"] for op in ops if op["op"] != "test"} == {
        "/spec/rules/0/backendRefs/0/weight",
        "/spec/rules/0/backendRefs/1/weight",
    }


def test_patch_is_guarded_by_resource_version_and_names() -> None:
    route = user_route()
    ops = hr.weight_ops(route, {"checkout-stable": 70, "checkout-canary": 30}, ROLLOUT)
    patch = hr.route_patch(route, ops)
    assert patch is not None and patch.router == "httproute" and patch.route == "shop"
    assert patch.ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "7"}
    moved = copy.deepcopy(route)
    moved["metadata"]["resourceVersion"] = "8"  # someone wrote in between
    with pytest.raises(ValueError, match="resourceVersion"):
        hr.apply_ops(moved, patch.ops)
    reordered = copy.deepcopy(route)
    refs = reordered["spec"]["rules"][0]["backendRefs"]
    refs[0], refs[2] = refs[2], refs[0]
    with pytest.raises(ValueError, match="name"):
        hr.apply_ops(reordered, ops)


@pytest.mark.parametrize(
    ("parents", "generation", "acknowledged", "reason"),
    [
        ([], 3, False, "status.parents is empty"),
        ([{"Accepted": ("True", 2), "ResolvedRefs": ("True", 2)}], 3, False, "not seen yet"),
        ([{"Accepted": ("True", 3)}], 3, False, "no ResolvedRefs"),
        (
            [{"Accepted": ("True", 3), "ResolvedRefs": ("False", 3)}],
            3,
            False,
            "ResolvedRefs is False",
        ),
        ([{"Accepted": ("False", 3), "ResolvedRefs": ("True", 3)}], 3, False, "Accepted is False"),
        ([{"Accepted": ("True", 3), "ResolvedRefs": ("True", 3)}], 3, True, ""),
        (
            [
                {"Accepted": ("True", 3), "ResolvedRefs": ("True", 3)},
                {"Accepted": ("True", 2), "ResolvedRefs": ("True", 2)},
            ],
            3,
            False,
            "not seen yet",
        ),
    ],
    ids=["no-parents", "stale", "no-resolved", "refs-unresolved", "refused", "ok", "one-lags"],
)
def test_acknowledgement(
    parents: list[dict[str, tuple[str, int]]], generation: int, acknowledged: bool, reason: str
) -> None:
    route = {
        "metadata": {"generation": generation},
        "status": {
            "parents": [
                {
                    "parentRef": {"name": "web"},
                    "conditions": [
                        {"type": t, "status": s, "observedGeneration": g}
                        for t, (s, g) in conds.items()
                    ],
                }
                for conds in parents
            ]
        },
    }
    ack = hr.acknowledgement(route)
    assert ack.acknowledged is acknowledged
    assert reason in ack.reason


@pytest.mark.parametrize(
    ("weights", "served", "expected"),
    [
        ({"s": 95, "c": 5}, {"st": {"s": 3}, "ca": {"c": 1}}, {"st": 95, "ca": 5}),
        ({"s": 100}, {"st": {"s": 3}, "ca": {"c": 1}}, {"st": 100, "ca": 0}),
        # the canary Service still lists the stable's pods: wait, write nothing
        ({"s": 95, "c": 5}, {"st": {"s": 3}, "ca": {"s": 3}}, None),
        # a Service listing both revisions serves neither alone
        ({"s": 70, "c": 30}, {"st": {"s": 3}, "ca": {"s": 1, "c": 1}}, None),
        # after promotion both Services serve the new stable: its share on the stable one
        ({"c": 100}, {"st": {"c": 3}, "ca": {"c": 3}}, {"st": 100, "ca": 0}),
        # promotion while the stable Service still lists the old pods: via the canary one
        ({"c": 100}, {"st": {"s": 3}, "ca": {"c": 3}}, {"st": 0, "ca": 100}),
    ],
    ids=["step", "abort", "pin-pending", "mixed", "promoted", "promoting"],
)
def test_assign(
    weights: dict[str, int], served: dict[str, dict[str, int]], expected: dict[str, int] | None
) -> None:
    order = (
        [("st", "s"), ("ca", "c")]
        if "c" not in weights or "s" in weights
        else [
            ("st", "c"),
            ("ca", "c"),
        ]
    )
    assert hr.assign(weights, order, served) == expected


def test_revision_shares_follow_endpoints() -> None:
    served = {"st": {"s": 3}, "ca": {"c": 1}}
    assert hr.revision_shares([{"st": 95, "ca": 5}], served) == {"s": 95, "c": 5}
    # a Service still listing both revisions sends each its part, rounded up
    mixed = {"st": {"s": 2, "c": 1}, "ca": {"c": 1}}
    assert hr.revision_shares([{"st": 100, "ca": 0}], mixed) == {"s": 67, "c": 34}
    # the largest share over several rules
    assert hr.revision_shares([{"st": 100, "ca": 0}, {"st": 50, "ca": 50}], served) == {
        "s": 100,
        "c": 50,
    }


HEADERS = (HeaderMatch("X-Canary", "yes"), HeaderMatch("User-Agent", "Moz", "Prefix"))


def test_header_rule_added_then_in_place_then_removed() -> None:
    route = user_route()
    before = copy.deepcopy(route)
    wanted = [HeaderRule("beta", "checkout-canary", HEADERS)]
    ops = hr.header_ops(route, wanted, SERVICES, ROLLOUT)
    assert [op["op"] for op in ops] == ["add"]
    added = hr.apply_ops(route, ops)
    rule = added["spec"]["rules"][-1]
    assert rule["name"] == hr.rule_name(ROLLOUT, "beta")
    assert rule["backendRefs"] == [{"name": "checkout-canary", "weight": 1, "port": 80}]
    assert rule["matches"] == [
        {
            "path": {"type": "PathPrefix", "value": "/api"},
            "headers": [
                {"type": "Exact", "name": "X-Canary", "value": "yes"},
                {"type": "RegularExpression", "name": "User-Agent", "value": "^Moz"},
            ],
        }
    ]
    assert rule["filters"] == before["spec"]["rules"][0]["filters"]
    assert added["spec"]["rules"][:2] == before["spec"]["rules"]
    assert hr.header_ops(added, wanted, SERVICES, ROLLOUT) == []
    # the Ramp rule does not count as the user's for weights
    assert hr.backend_weights(added, SERVICES, ROLLOUT) == [
        {"checkout-stable": 100, "checkout-canary": 0}
    ]
    removed = hr.apply_ops(added, hr.header_ops(added, [], SERVICES, ROLLOUT))
    assert removed == before


def test_header_rules_of_another_rollout_or_the_user_are_never_removed() -> None:
    route = user_route()
    theirs = {"name": hr.rule_name("other", "beta"), "backendRefs": [{"name": "x"}]}
    users = {"name": "ramp-mine", "backendRefs": [{"name": "y"}]}
    route["spec"]["rules"] += [theirs, users]
    assert hr.header_ops(route, [], SERVICES, ROLLOUT) == []
    ops = hr.header_ops(route, [HeaderRule("b", "checkout-canary", HEADERS)], SERVICES, ROLLOUT)
    after = hr.apply_ops(route, ops)
    assert after["spec"]["rules"][:4] == route["spec"]["rules"]


def test_changed_header_rule_is_replaced_last_first() -> None:
    route = user_route()
    two = [HeaderRule("a", "checkout-canary", HEADERS), HeaderRule("b", "checkout-canary", HEADERS)]
    route = hr.apply_ops(route, hr.header_ops(route, two, SERVICES, ROLLOUT))
    one = [HeaderRule("b", "checkout-canary", (HeaderMatch("X-B", "1"),))]
    ops = hr.header_ops(route, one, SERVICES, ROLLOUT)
    assert [op["path"] for op in ops if op["op"] == "remove"] == ["/spec/rules/3", "/spec/rules/2"]
    after = hr.apply_ops(route, ops)
    assert [r.get("name") for r in after["spec"]["rules"]] == [
        None,
        None,
        hr.rule_name(ROLLOUT, "b"),
    ]


@pytest.mark.parametrize(
    ("route", "problem"),
    [
        (None, "'shop' does not exist"),
        ({"metadata": {"namespace": "shop"}, "spec": {"rules": []}}, "no rule with backendRefs"),
        (
            {"spec": {"rules": [{"backendRefs": [{"name": "checkout-stable"}]}]}},
            "to both Services",
        ),
    ],
    ids=["missing", "no-backends", "stable-only"],
)
def test_problems(route: dict[str, Any] | None, problem: str) -> None:
    found = hr.problems(route, "shop", SERVICES)
    assert found is not None and problem in found
    assert hr.problems(user_route(), "shop", SERVICES) is None


SECTION = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@given(st.text(min_size=1, max_size=253), st.text(min_size=1, max_size=120))
def test_rule_names_always_fit(rollout: str, header: str) -> None:
    name = hr.rule_name(rollout, header)
    assert len(name) <= 63 and SECTION.match(name), name
    assert name.startswith(hr.rule_prefix(rollout))


json_leaf = st.one_of(st.integers(-5, 5), st.text(max_size=5), st.booleans())
user_field = st.dictionaries(
    st.sampled_from(["x", "y", "timeouts", "sessionPersistence"]), json_leaf
)
backend = st.fixed_dictionaries(
    {"name": st.sampled_from([*SERVICES, "legacy", "other"])},
    optional={"weight": st.integers(0, 1000), "port": st.integers(1, 65535), "extra": json_leaf},
)
user_rule = st.fixed_dictionaries(
    {"backendRefs": st.lists(backend, max_size=4)},
    optional={
        "matches": st.lists(user_field, max_size=2),
        "filters": st.lists(user_field, max_size=2),
    },
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(user_rule, min_size=1, max_size=5),
    st.integers(0, 100),
    st.lists(st.sampled_from(["a", "b", "c"]), max_size=3, unique=True),
    st.lists(st.sampled_from(["a", "b", "c"]), max_size=3, unique=True),
)
def test_any_user_route_keeps_every_field_but_ramps(
    rules: list[dict[str, Any]], weight: int, first: list[str], second: list[str]
) -> None:
    route = {"metadata": {"name": "r", "namespace": "shop", "resourceVersion": "1"}}
    route["spec"] = {"rules": rules, "hostnames": ["h"]}
    original = copy.deepcopy(route)
    wanted = {"checkout-stable": 100 - weight, "checkout-canary": weight}
    current = route
    for headers in (first, second, []):
        header_rules = [HeaderRule(h, "checkout-canary", HEADERS) for h in headers]
        ops = hr.weight_ops(current, wanted, ROLLOUT)
        ops += hr.header_ops(current, header_rules, SERVICES, ROLLOUT)
        current = hr.apply_ops(current, ops)
        owned = [r for r in current["spec"]["rules"] if hr.owned_rule(r, ROLLOUT)]
        assert sorted(r["name"] for r in owned) == sorted(hr.rule_name(ROLLOUT, h) for h in headers)
        # again: nothing left to write
        assert hr.weight_ops(current, wanted, ROLLOUT) == []
        assert hr.header_ops(current, header_rules, SERVICES, ROLLOUT) == []
    # every field but the weights of the Rollout's backends is as it was
    assert len(current["spec"]["rules"]) == len(original["spec"]["rules"])
    for got, was in zip(current["spec"]["rules"], original["spec"]["rules"], strict=True):
        for g, w in zip(got["backendRefs"], was["backendRefs"], strict=True):
            if g["name"] in SERVICES:
                g = {k: v for k, v in g.items() if k != "weight"}
                w = {k: v for k, v in w.items() if k != "weight"}
            assert g == w
        assert {k: v for k, v in got.items() if k != "backendRefs"} == {
            k: v for k, v in was.items() if k != "backendRefs"
        }
    assert {k: v for k, v in current.items() if k != "spec"} == {
        k: v for k, v in original.items() if k != "spec"
    }
    for weights in hr.backend_weights(current, SERVICES, ROLLOUT, complete=True):
        assert weights["checkout-canary"] in (weight, 0)  # 0: a second backendRef of it
