"""A GitOps tool resetting an HTTPRoute's weights: one Event per episode, the condition, the
ignoreDifferences snippet, no flapping (ramp.core.route_conflict)."""

from __future__ import annotations

import doctest
from datetime import UTC, datetime, timedelta
from typing import Any

from ramp.api.routes import RouteStatus
from ramp.core import route_conflict
from ramp.core.httproute import rule_name
from ramp.core.model import iso
from ramp.core.route_conflict import (
    CONDITION,
    QUIET_SECONDS,
    backoff,
    condition,
    ignore_differences,
    judge,
    weight_pointers,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def held(
    desired: int = 30,
    conflicts: int | None = None,
    conflict_at: str | None = None,
    message: str | None = None,
) -> RouteStatus:
    """Ramp's weight written and acknowledged (and an episode's count so far)."""
    return RouteStatus(
        name="shop",
        desired=desired,
        acknowledged=desired,
        conflicts=conflicts,
        conflict_at=conflict_at,
        message=message,
    )


def test_doctests() -> None:
    assert doctest.testmod(route_conflict).failed == 0


def test_no_reset_no_conflict() -> None:
    v = judge(held(), 30, 30, T0)
    assert (v.conflicts, v.hold, v.event) == (None, False, None)


def test_a_weight_ramp_moves_itself_is_no_reset() -> None:
    v = judge(held(), 30, 60, T0)  # the next step: Ramp wants another weight
    assert (v.conflicts, v.hold, v.event) == (None, False, None)


def test_not_acknowledged_yet_is_no_reset() -> None:
    """A stale read right after Ramp's write looks the same: only weights the gateway
    acknowledged count as held."""
    old = RouteStatus(name="shop", desired=30, acknowledged=5, message="writing weight 30")
    assert judge(old, 5, 30, T0).event is None


def test_first_reset_says_it_and_holds_for_the_backoff() -> None:
    v = judge(held(), 0, 30, T0)
    assert v.event == CONDITION and v.hold and v.conflicts == 1
    assert v.conflict_at == iso(T0) and v.wake == backoff(1) == 60
    assert v.until == iso(T0 + timedelta(seconds=60))


def test_within_the_backoff_the_weights_are_left_alone_silently() -> None:
    old = held(conflicts=1, conflict_at=iso(T0), message="left alone")
    v = judge(old, 0, 30, T0 + timedelta(seconds=30))
    assert v.hold and v.event is None and v.conflicts == 1 and v.wake == 30


def test_within_the_backoff_an_aborts_weight_is_written_at_once() -> None:
    old = held(conflicts=1, conflict_at=iso(T0), message="left alone")
    v = judge(old, 50, 0, T0 + timedelta(seconds=30))
    assert not v.hold and v.event is None and v.conflicts == 1


def test_a_reset_right_after_ramps_write_before_it_saw_it_acknowledged() -> None:
    """Ramp wrote at generation 7 (its write made 8); generation 9 without its weights is
    someone else's; generation 7 or 8 without them is a stale read or Ramp's write still
    on its way."""
    old = RouteStatus(name="shop", desired=30, acknowledged=5, message="writing", written=7)
    assert judge(old, 5, 30, T0, generation=7).event is None
    assert judge(old, 5, 30, T0, generation=8).event is None
    v = judge(old, 5, 30, T0, generation=9)
    assert v.event == CONDITION and v.hold


def test_after_the_backoff_ramp_writes_again() -> None:
    old = held(0, conflicts=1, conflict_at=iso(T0), message="left alone")
    v = judge(old, 0, 30, T0 + timedelta(seconds=61))
    assert not v.hold and v.event is None and v.conflicts == 1


def test_resets_again_and_again_count_without_a_new_event() -> None:
    """Reset after each of Ramp's writes: every reset counts, the back-off grows, one Event
    in all (the first)."""
    now, old = T0, held()
    events: list[str | None] = []
    for _ in range(6):
        v = judge(old, 0, 30, now)  # the reset is seen
        assert v.hold
        events.append(v.event)
        now += timedelta(seconds=v.wake or 0)
        # the back-off is over: Ramp writes, the gateway acknowledges, it holds a moment
        old = held(conflicts=v.conflicts, conflict_at=v.conflict_at)
        assert not judge(old, 30, 30, now).hold
        now += timedelta(seconds=5)
    assert events == [CONDITION] + [None] * 5
    assert old.conflicts == 6
    assert [backoff(n) for n in range(1, 7)] == [60, 120, 300, 600, 600, 600]


def test_the_episode_ends_when_ramps_weights_hold_quietly() -> None:
    old = held(conflicts=2, conflict_at=iso(T0))
    end = T0 + timedelta(seconds=backoff(2) + QUIET_SECONDS)
    early = judge(old, 30, 30, end - timedelta(seconds=1))
    assert early.conflicts == 2 and early.event is None and not early.hold
    done = judge(old, 30, 30, end)
    assert done.conflicts is None and done.event == "RouteConflictResolved"


def test_condition_names_the_route_and_the_snippet() -> None:
    assert condition([(held(), ["/p"])]) == (False, "NoConflict", "")
    fought = held(conflicts=3, conflict_at=iso(T0))
    pointers = ["/spec/rules/0/backendRefs/0/weight", "/spec/rules/0/backendRefs/1/weight"]
    value, reason, message = condition([(held(), []), (fought, pointers)])
    assert value and reason == "WeightsFoughtOver"
    assert "HTTPRoute shop" in message and "3 time(s)" in message
    assert ignore_differences("shop", pointers) in message
    assert "group: gateway.networking.k8s.io, kind: HTTPRoute" in message


def test_pointers_skip_ramps_own_rules_and_other_services() -> None:
    route: dict[str, Any] = {
        "metadata": {"namespace": "ns"},
        "spec": {
            "rules": [
                {"backendRefs": [{"name": "other"}, {"name": "shop-stable"}]},
                {"name": "ramp-0000-beta", "backendRefs": [{"name": "shop-canary"}]},
                {"backendRefs": [{"name": "shop-canary", "namespace": "elsewhere"}]},
                {"backendRefs": [{"name": "shop-stable"}, {"name": "shop-canary"}]},
            ]
        },
    }
    route["spec"]["rules"][1]["name"] = rule_name("shop", "beta")
    assert weight_pointers(route, ["shop-stable", "shop-canary"], "shop") == [
        "/spec/rules/0/backendRefs/1/weight",
        "/spec/rules/3/backendRefs/0/weight",
        "/spec/rules/3/backendRefs/1/weight",
    ]
