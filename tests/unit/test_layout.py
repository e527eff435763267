"""The layout fence (``ramp.shell.runtime.layout``): one shard count acts at a time.

In-memory Leases with resourceVersion semantics and one clock for every candidate; the
model machines (tests/model/sim_shards.py) drive the same wiring at random, and
tests/e2e/test_shards.py runs two layouts side by side on the real cluster.
"""

from __future__ import annotations

import copy
from typing import Any

from ramp.shell.runtime.layout import SETTLING_ANNOTATION, SHARDS_ANNOTATION, elector_for
from ramp.shell.runtime.leader import LeaderElector, LeaseConflict
from ramp.shell.runtime.shard import Shard

LEASE, DEADLINE, RENEW, RETRY = 15.0, 10.0, 5.0, 2.0


class Leases:
    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.rv = 0

    def store(self, name: str) -> Store:
        return Store(self, name)

    def annotations(self, name: str) -> dict[str, str]:
        return dict(self.objects[name]["metadata"]["annotations"])


class Store:
    def __init__(self, leases: Leases, name: str) -> None:
        self.leases, self.name = leases, name

    def _put(self, meta: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        self.leases.rv += 1
        self.leases.objects[self.name] = {
            "metadata": {
                "resourceVersion": str(self.leases.rv),
                "annotations": dict(meta.get("annotations") or {}),
            },
            "spec": dict(spec),
        }
        return copy.deepcopy(self.leases.objects[self.name])

    def get(self) -> dict[str, Any] | None:
        return copy.deepcopy(self.leases.objects.get(self.name))

    def create(
        self, spec: dict[str, Any], annotations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        if self.name in self.leases.objects:
            raise LeaseConflict("exists")
        return self._put({"annotations": annotations}, spec)

    def update(self, lease: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        stored = self.leases.objects.get(self.name)
        if (
            stored is None
            or stored["metadata"]["resourceVersion"] != (lease["metadata"]["resourceVersion"])
        ):
            raise LeaseConflict("stale")
        return self._put(lease["metadata"], spec)


class World:
    def __init__(self) -> None:
        self.now = 1000.0
        self.leases = Leases()

    def candidate(self, name: str, shard: Shard | None) -> LeaderElector:
        elector, _ = elector_for(
            shard,
            "ramp",
            self.leases.store,
            name,
            lease_duration=LEASE,
            renew_deadline=DEADLINE,
            renew_period=RENEW,
            retry_period=RETRY,
            clock=lambda: self.now,
        )
        return elector


def test_shard_leases_keep_their_names_and_shard_0_also_holds_the_layout_lease() -> None:
    w = World()
    s0, s1 = w.candidate("a", Shard(0, 2)), w.candidate("b", Shard(1, 2))
    assert s0.try_acquire_or_renew() and s1.try_acquire_or_renew()
    assert sorted(w.leases.objects) == ["ramp", "ramp-shard-0", "ramp-shard-1"]
    assert w.leases.objects["ramp"]["spec"]["holderIdentity"] == "a"
    s0.release()
    assert not w.leases.objects["ramp"]["spec"].get("holderIdentity")
    assert not w.leases.objects["ramp-shard-0"]["spec"].get("holderIdentity")


def test_a_fresh_layout_acts_at_once_and_says_its_count() -> None:
    w = World()
    s0, s1 = w.candidate("a", Shard(0, 2)), w.candidate("b", Shard(1, 2))
    assert s1.try_acquire_or_renew() and not s1.is_leader()  # no layout Lease yet
    assert s0.try_acquire_or_renew() and s0.is_leader()
    assert w.leases.annotations("ramp") == {SHARDS_ANNOTATION: "2"}
    assert s1.try_acquire_or_renew() and s1.is_leader()


def test_a_failover_within_the_layout_acts_at_once() -> None:
    w = World()
    a = w.candidate("a", None)
    assert a.try_acquire_or_renew() and a.is_leader()
    a.release()
    b = w.candidate("b", None)
    assert b.try_acquire_or_renew() and b.is_leader()


def test_a_new_layout_waits_until_every_writer_of_the_old_one_has_stopped() -> None:
    w = World()
    old0, old1 = w.candidate("old0", Shard(0, 2)), w.candidate("old1", Shard(1, 2))
    for c in (old0, old1):
        assert c.try_acquire_or_renew() and c.is_leader()
    new = [w.candidate(f"new{j}", Shard(j, 3)) for j in range(3)]
    for c in new:
        c.try_acquire_or_renew()
        assert not c.is_leader()  # the layout Lease says 2
    assert "ramp-shard-2" not in w.leases.objects  # not even taken while 2 act
    old1_read = w.now
    w.now += 1
    old0.release()  # the old shard 0 goes: the new one takes the layout Lease
    assert new[0].try_acquire_or_renew() and not new[0].is_leader()
    changed = w.now
    notes = w.leases.annotations("ramp")
    assert notes == {SHARDS_ANNOTATION: "3", SETTLING_ANNOTATION: "true"}
    # old1 read "2" before the change: it stops within its renew deadline of that read...
    w.now = old1_read + DEADLINE
    assert not old1.is_leader()
    # ...and, reading "3" now, lets its shard's Lease go to the new layout's shard 1.
    assert not old1.try_acquire_or_renew() and not old1.is_leader()
    assert not w.leases.objects["ramp-shard-1"]["spec"].get("holderIdentity")
    # ...while the new layout waits a whole lease duration from the change.
    w.now = changed + LEASE - 0.1
    for c in new:
        c.try_acquire_or_renew()
        assert not c.is_leader()
    w.now = changed + LEASE
    assert new[0].try_acquire_or_renew() and new[0].is_leader()
    assert w.leases.annotations("ramp") == {SHARDS_ANNOTATION: "3"}
    for c in new[1:]:
        assert c.try_acquire_or_renew() and c.is_leader()


def test_a_reading_bounds_the_write_budget() -> None:
    w = World()
    s0, s1 = w.candidate("a", Shard(0, 2)), w.candidate("b", Shard(1, 2))
    s0.try_acquire_or_renew()
    s1.try_acquire_or_renew()
    w.now += 3
    assert s1.write_budget() == LEASE - 2.0 - 3
    w.now += DEADLINE
    assert not s1.is_leader() and s1.write_budget() == 0.0


def test_a_takeover_during_the_settling_waits_again() -> None:
    """The new shard 0 is replaced while settling (released): its successor does not
    inherit the wait, it starts its own."""
    w = World()
    old = w.candidate("old", None)
    old.try_acquire_or_renew()
    old.release()
    first = w.candidate("first", Shard(0, 2))
    first.try_acquire_or_renew()
    w.now += LEASE - 1
    first.release()
    second = w.candidate("second", Shard(0, 2))
    assert second.try_acquire_or_renew() and not second.is_leader()
    w.now += LEASE - 0.1
    second.try_acquire_or_renew()
    assert not second.is_leader()
    w.now += 0.1
    assert second.try_acquire_or_renew() and second.is_leader()
