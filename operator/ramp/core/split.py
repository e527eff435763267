"""Replica arithmetic for replica-ratio canaries. Pure functions, no I/O.

Two questions are answered here:

* :func:`split_replicas` — where a step wants to be: how many canary and stable pods
  a weight means for a given total.
* :func:`next_replicas` — how to get there safely from where we are: one move of the
  rolling shift that respects ``maxSurge`` (total pods never above ``R + surge``) and
  ``maxUnavailable`` (ready pods never below ``R - unavailable``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_PERCENT = re.compile(r"^(\d{1,3})%$")


@dataclass(frozen=True)
class Split:
    """The replica counts a weight means for a total of ``total`` replicas."""

    canary: int
    stable: int
    weight: int
    """The weight that was asked for (0..100)."""

    @property
    def actual_weight(self) -> int:
        """The weight these counts really give, in percent (rounded)."""
        total = self.canary + self.stable
        if total == 0:
            return self.weight
        return round(100 * self.canary / total)

    @property
    def representable(self) -> bool:
        """Whether the counts give exactly the weight that was asked for."""
        total = self.canary + self.stable
        return total == 0 or self.canary * 100 == self.weight * total


def split_replicas(total: int, weight: int) -> Split:
    """Split ``total`` replicas between canary and stable for ``weight`` percent.

    The canary gets ``ceil(total * weight / 100)`` replicas, at least one when the weight
    is above zero; the stable gets the rest. Worked examples:

    >>> split_replicas(10, 10)
    Split(canary=1, stable=9, weight=10)
    >>> split_replicas(10, 25)      # 2.5 rounds up
    Split(canary=3, stable=7, weight=25)
    >>> s = split_replicas(3, 10)   # 0.3 rounds up to 1: really 33 %
    >>> (s.canary, s.stable, s.actual_weight, s.representable)
    (1, 2, 33, False)
    >>> split_replicas(4, 100)
    Split(canary=4, stable=0, weight=100)
    >>> split_replicas(5, 0)
    Split(canary=0, stable=5, weight=0)
    >>> split_replicas(0, 50)       # nothing to split
    Split(canary=0, stable=0, weight=50)
    """
    if total < 0:
        raise ValueError(f"total replicas must be >= 0, got {total}")
    if not 0 <= weight <= 100:
        raise ValueError(f"weight must be within 0..100, got {weight}")
    canary = math.ceil(total * weight / 100)
    if weight > 0 and total > 0:
        canary = max(canary, 1)
    canary = min(canary, total)
    return Split(canary=canary, stable=total - canary, weight=weight)


def resolve_int_or_percent(value: int | str, total: int, *, round_up: bool) -> int:
    """Resolve ``maxSurge``/``maxUnavailable``: an absolute count or a percent of ``total``.

    >>> resolve_int_or_percent("25%", 10, round_up=True)
    3
    >>> resolve_int_or_percent("25%", 10, round_up=False)
    2
    >>> resolve_int_or_percent(2, 10, round_up=True)
    2
    """
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"must be >= 0, got {value}")
        return value
    match = _PERCENT.match(value.strip())
    if not match:
        raise ValueError(f"must be an integer or a percentage like '25%', got {value!r}")
    percent = int(match.group(1))
    if percent > 100:
        raise ValueError(f"percentage must be within 0..100, got {value!r}")
    exact = total * percent / 100
    return math.ceil(exact) if round_up else math.floor(exact)


@dataclass(frozen=True)
class Limits:
    """The resolved shifting limits for a total of ``total`` replicas."""

    total: int
    surge: int
    unavailable: int

    @classmethod
    def resolve(cls, total: int, max_surge: int | str, max_unavailable: int | str) -> Limits:
        """Resolve both limits like a Deployment does (surge rounds up, unavailable down).

        When both resolve to zero the surge becomes one, otherwise nothing could move.

        >>> Limits.resolve(10, "25%", 0)
        Limits(total=10, surge=3, unavailable=0)
        >>> Limits.resolve(10, 0, 0)
        Limits(total=10, surge=1, unavailable=0)
        """
        surge = resolve_int_or_percent(max_surge, total, round_up=True)
        unavailable = resolve_int_or_percent(max_unavailable, total, round_up=False)
        if surge == 0 and unavailable == 0:
            surge = 1
        return cls(total=total, surge=surge, unavailable=unavailable)


@dataclass(frozen=True)
class Side:
    """One side of the shift as observed: its desired replicas and its ready pods."""

    desired: int
    ready: int

    @property
    def counted_ready(self) -> int:
        """Ready pods that will survive: never more than the desired count."""
        return min(self.ready, self.desired)


def next_replicas(
    limits: Limits,
    target: Split,
    canary: Side,
    stable: Side,
    *,
    stable_first: bool = False,
) -> tuple[int, int]:
    """One safe move from the current counts towards ``target``: ``(canary, stable)``.

    The side that grows is scaled up first, but only as far as ``maxSurge`` allows
    (``canary + stable <= R + surge``); the side that shrinks is scaled down only as
    the growing side's pods become ready (``ready >= R - unavailable``). Called again
    after pods become ready, it makes the next move, until the target is reached.

    ``stable_first`` is the abort mode: the stable is scaled back to its target at once,
    beyond ``maxSurge`` if need be, because restoring the known-good version comes first.

    Worked example, R=10, maxSurge 25 % (3), maxUnavailable 0, from 10/0 to weight 50:

    >>> lim = Limits.resolve(10, "25%", 0)
    >>> next_replicas(lim, split_replicas(10, 50), Side(0, 0), Side(10, 10))
    (3, 10)
    >>> next_replicas(lim, split_replicas(10, 50), Side(3, 3), Side(10, 10))   # 3 ready
    (5, 7)
    >>> next_replicas(lim, split_replicas(10, 50), Side(5, 5), Side(7, 7))
    (5, 5)

    Abort from 5/5 (canary never ready) back to 0/10: stable first, canary after.

    >>> next_replicas(lim, split_replicas(10, 0), Side(5, 0), Side(5, 5), stable_first=True)
    (5, 10)
    >>> next_replicas(lim, split_replicas(10, 0), Side(5, 0), Side(10, 10), stable_first=True)
    (0, 10)
    """
    total = limits.total
    floor = total - limits.unavailable
    ceiling = total + limits.surge
    grow_canary = target.canary > canary.desired
    grow_stable = target.stable > stable.desired
    shrink_canary = target.canary < canary.desired
    shrink_stable = target.stable < stable.desired
    if not (shrink_canary or shrink_stable) or (grow_canary and grow_stable):
        # Nothing shrinks (already there, or R went up): no availability to protect.
        return target.canary, target.stable

    new_canary, new_stable = canary.desired, stable.desired
    # Shrink first, by what the other side has ready now; then grow into the room left.
    if shrink_canary:
        keep = floor - stable.counted_ready
        new_canary = max(target.canary, min(canary.desired, keep))
    if shrink_stable:
        keep = floor - canary.counted_ready
        new_stable = max(target.stable, min(stable.desired, keep))
    if grow_stable:
        new_stable = (
            target.stable
            if stable_first
            else min(target.stable, max(stable.desired, ceiling - new_canary))
        )
    if grow_canary:
        new_canary = min(target.canary, max(canary.desired, ceiling - new_stable))
    return new_canary, new_stable
