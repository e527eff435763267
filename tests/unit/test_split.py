"""The replica split and the rolling move: named cases and invariants."""

from __future__ import annotations

import doctest

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import ramp.core.split as split_module
from ramp.core.split import Limits, Side, next_replicas, split_replicas

SPLIT_CASES = [
    # (id, total, weight, canary, stable, actual, representable)
    ("10 replicas at 10% -> 1/9", 10, 10, 1, 9, 10, True),
    ("3 replicas at 10% -> 1/2, really 33%", 3, 10, 1, 2, 33, False),
    ("10 replicas at 25% rounds up to 3", 10, 25, 3, 7, 30, False),
    ("10 replicas at 50% -> 5/5", 10, 50, 5, 5, 50, True),
    ("4 replicas at 100% -> all canary", 4, 100, 4, 0, 100, True),
    ("5 replicas at 0% -> all stable", 5, 0, 0, 5, 0, True),
    ("1 replica at 1% -> the canary takes it", 1, 1, 1, 0, 100, False),
    ("0 replicas -> nothing to split", 0, 50, 0, 0, 50, True),
    ("200 replicas at 1% -> 2/198", 200, 1, 2, 198, 1, True),
]


@pytest.mark.parametrize(
    ("total", "weight", "canary", "stable", "actual", "representable"),
    [c[1:] for c in SPLIT_CASES],
    ids=[c[0] for c in SPLIT_CASES],
)
def test_split(
    total: int, weight: int, canary: int, stable: int, actual: int, representable: bool
) -> None:
    s = split_replicas(total, weight)
    assert (s.canary, s.stable) == (canary, stable)
    assert s.actual_weight == actual
    assert s.representable is representable


@pytest.mark.parametrize(("total", "weight"), [(-1, 10), (10, 101), (10, -1)])
def test_split_rejects_out_of_range(total: int, weight: int) -> None:
    with pytest.raises(ValueError):
        split_replicas(total, weight)


MOVE_CASES = [
    # (id, R, surge, unavail, weight, (canary desired, ready), (stable desired, ready), expected)
    ("surge 25% lets 3 canary pods in first", 10, "25%", 0, 50, (0, 0), (10, 10), (3, 10)),
    ("stable shrinks only by ready canary pods", 10, "25%", 0, 50, (3, 1), (10, 10), (4, 9)),
    ("nothing ready: stable holds", 10, "25%", 0, 50, (3, 0), (10, 10), (3, 10)),
    ("surge 1 moves one pod at a time", 10, 1, 0, 50, (0, 0), (10, 10), (1, 10)),
    ("zero surge and zero unavailable still moves one", 10, 0, 0, 20, (0, 0), (10, 10), (1, 10)),
    ("unavailable 2 lets stable go first", 10, 0, 2, 20, (0, 0), (10, 10), (2, 8)),
    (
        "unavailable 2, 50%: stable down 2, canary into the room",
        10,
        0,
        2,
        50,
        (0, 0),
        (10, 10),
        (2, 8),
    ),
    ("weight down: stable grows first", 10, "25%", 0, 20, (5, 5), (5, 5), (5, 8)),
    ("weight down: canary shrinks as stable is ready", 10, "25%", 0, 20, (5, 5), (8, 8), (2, 8)),
    ("R scaled up: both grow at once", 6, "25%", 0, 50, (2, 2), (2, 2), (3, 3)),
    ("R scaled down: both shrink within the floor", 6, "25%", 0, 50, (5, 5), (5, 5), (3, 3)),
    ("already there: no move", 10, "25%", 0, 20, (2, 2), (8, 8), (2, 8)),
]


@pytest.mark.parametrize(
    ("total", "surge", "unavail", "weight", "canary", "stable", "expected"),
    [c[1:] for c in MOVE_CASES],
    ids=[c[0] for c in MOVE_CASES],
)
def test_next_replicas(
    total: int,
    surge: int | str,
    unavail: int | str,
    weight: int,
    canary: tuple[int, int],
    stable: tuple[int, int],
    expected: tuple[int, int],
) -> None:
    limits = Limits.resolve(total, surge, unavail)
    got = next_replicas(limits, split_replicas(total, weight), Side(*canary), Side(*stable))
    assert got == expected


def test_abort_restores_stable_before_canary_goes() -> None:
    limits = Limits.resolve(10, "25%", 0)
    target = split_replicas(10, 0)
    first = next_replicas(limits, target, Side(5, 0), Side(5, 5), stable_first=True)
    assert first == (5, 10), "stable back to R at once, canary kept until stable is ready"
    half = next_replicas(limits, target, Side(5, 0), Side(10, 7), stable_first=True)
    assert half == (3, 10)
    done = next_replicas(limits, target, Side(5, 0), Side(10, 10), stable_first=True)
    assert done == (0, 10)


def test_docstring_examples() -> None:
    failures, _ = doctest.testmod(split_module)
    assert failures == 0


@settings(max_examples=400, deadline=None)
@given(
    total=st.integers(min_value=1, max_value=60),
    w_from=st.integers(min_value=0, max_value=100),
    w_to=st.integers(min_value=0, max_value=100),
    surge=st.one_of(st.integers(0, 5), st.sampled_from(["0%", "10%", "25%", "50%", "100%"])),
    unavail=st.one_of(st.integers(0, 3), st.sampled_from(["0%", "10%", "25%"])),
    readiness=st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=200),
)
def test_shift_invariants(
    total: int,
    w_from: int,
    w_to: int,
    surge: int | str,
    unavail: int | str,
    readiness: list[float],
) -> None:
    """From any split to any other, with pods becoming ready at random speed:
    total pods <= R + maxSurge, ready pods >= R - maxUnavailable, and the target is reached."""
    limits = Limits.resolve(total, surge, unavail)
    start, target = split_replicas(total, w_from), split_replicas(total, w_to)
    canary, stable = Side(start.canary, start.canary), Side(start.stable, start.stable)
    floor = total - limits.unavailable
    for step in range(400):
        c, s = next_replicas(limits, target, canary, stable)
        assert c + s <= total + limits.surge, (c, s)
        # Scale-downs remove pods; a Deployment removes not-ready pods first.
        ready_after = min(canary.ready, c) + min(stable.ready, s)
        assert ready_after >= min(floor, canary.ready + stable.ready), (c, s, canary, stable)
        if (c, s) == (target.canary, target.stable) and canary.ready >= c and stable.ready >= s:
            break
        # Some of the new pods become ready (a fraction picked by hypothesis).
        frac = readiness[step % len(readiness)]
        c_ready = min(c, canary.ready + max(1, round((c - canary.ready) * frac)))
        s_ready = min(s, stable.ready + max(1, round((s - stable.ready) * frac)))
        canary, stable = Side(c, min(c_ready, c)), Side(s, min(s_ready, s))
    else:
        pytest.fail(f"did not reach {target} from {start}")
    assert (c, s) == (target.canary, target.stable)


@settings(max_examples=200, deadline=None)
@given(
    total=st.integers(min_value=1, max_value=40),
    weights=st.lists(st.integers(1, 100), min_size=1, max_size=6),
)
def test_completed_rollout_ends_with_new_revision_only(total: int, weights: list[int]) -> None:
    """Walking any list of weights and then 100: the canary ends at R, the stable at 0."""
    limits = Limits.resolve(total, "25%", 0)
    canary, stable = Side(0, 0), Side(total, total)
    for weight in [*sorted(weights), 100]:
        target = split_replicas(total, weight)
        for _ in range(200):
            c, s = next_replicas(limits, target, canary, stable)
            canary, stable = Side(c, c), Side(s, s)
            if (c, s) == (target.canary, target.stable):
                break
    assert (canary.desired, stable.desired) == (total, 0)
