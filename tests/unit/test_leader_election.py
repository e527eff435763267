"""Leader election logic against an in-memory Lease with resourceVersion semantics.

The clocks are parameters: every case says exactly when each candidate acts. The real
Lease API is exercised by tests/e2e/test_leader.py.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from ramp.shell.runtime.leader import GuardedKube, LeaderElector, LeaseConflict, NotLeader


class MemoryLeaseStore:
    """One Lease, with the API server's optimistic concurrency (resourceVersion)."""

    def __init__(self) -> None:
        self.lease: dict[str, Any] | None = None
        self.rv = 0
        self.fail = False
        self.writes: list[str | None] = []

    def get(self) -> dict[str, Any] | None:
        if self.fail:
            raise ConnectionError("API server unreachable")
        return copy.deepcopy(self.lease)

    def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        if self.fail:
            raise ConnectionError("API server unreachable")
        if self.lease is not None:
            raise LeaseConflict("exists")
        self.rv += 1
        self.lease = {"metadata": {"resourceVersion": str(self.rv)}, "spec": dict(spec)}
        self.writes.append(spec.get("holderIdentity"))
        return copy.deepcopy(self.lease)

    def update(self, lease: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        if self.fail:
            raise ConnectionError("API server unreachable")
        assert self.lease is not None
        if lease["metadata"]["resourceVersion"] != self.lease["metadata"]["resourceVersion"]:
            raise LeaseConflict("stale resourceVersion")
        self.rv += 1
        self.lease = {"metadata": {"resourceVersion": str(self.rv)}, "spec": dict(spec)}
        self.writes.append(spec.get("holderIdentity"))
        return copy.deepcopy(self.lease)


@dataclass
class Clock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Candidate:
    elector: LeaderElector
    clock: Clock
    started: list[str] = field(default_factory=list)


def candidate(store: MemoryLeaseStore, name: str, clock: Clock | None = None) -> Candidate:
    clock = clock or Clock()
    c = Candidate(elector=None, clock=clock)  # type: ignore[arg-type]
    c.elector = LeaderElector(
        store,
        identity=name,
        lease_duration=15,
        renew_deadline=10,
        renew_period=5,
        retry_period=2,
        clock=clock,
        on_started_leading=lambda: c.started.append(name),
    )
    return c


def test_first_candidate_creates_the_lease_and_leads() -> None:
    store = MemoryLeaseStore()
    a = candidate(store, "a")
    assert not a.elector.is_leader()
    assert a.elector.try_acquire_or_renew()
    assert a.elector.is_leader()
    assert store.lease is not None
    spec = store.lease["spec"]
    assert spec["holderIdentity"] == "a" and spec["leaseDurationSeconds"] == 15
    assert spec["leaseTransitions"] == 0


def test_standby_waits_a_full_lease_duration_on_its_own_clock() -> None:
    store = MemoryLeaseStore()
    a, b = candidate(store, "a"), candidate(store, "b", Clock(now=-50_000.0))
    assert a.elector.try_acquire_or_renew()
    # b's clock is unrelated to a's: only the time b itself saw the record unchanged counts.
    assert not b.elector.try_acquire_or_renew()
    b.clock.now += 14.9
    assert not b.elector.try_acquire_or_renew()
    assert not b.elector.is_leader()
    b.clock.now += 0.2
    assert b.elector.try_acquire_or_renew()
    assert b.elector.is_leader()
    assert store.lease is not None
    assert store.lease["spec"]["holderIdentity"] == "b"
    assert store.lease["spec"]["leaseTransitions"] == 1


def test_a_renewed_lease_restarts_the_standby_wait() -> None:
    store = MemoryLeaseStore()
    clock = Clock()
    a, b = candidate(store, "a", clock), candidate(store, "b", clock)
    assert a.elector.try_acquire_or_renew()
    assert not b.elector.try_acquire_or_renew()
    for _ in range(6):  # 30 s of renewals every 5 s
        clock.now += 5
        assert a.elector.try_acquire_or_renew()
        assert not b.elector.try_acquire_or_renew()
    assert a.elector.is_leader() and not b.elector.is_leader()


def test_holder_that_cannot_renew_stops_acting_before_anyone_can_take_over() -> None:
    store = MemoryLeaseStore()
    clock = Clock()
    a, b = candidate(store, "a", clock), candidate(store, "b", clock)
    assert a.elector.try_acquire_or_renew()
    assert not b.elector.try_acquire_or_renew()
    store.fail = True  # a is cut off from the API server (b too, for now)
    clock.now += 9.9
    assert a.elector.is_leader(), "within the renew deadline the holder still acts"
    clock.now += 0.2
    assert not a.elector.is_leader(), "past the renew deadline it stops by itself"
    store.fail = False
    clock.now += 4.0  # 14.1 s after b saw the record: b must still wait
    assert not b.elector.try_acquire_or_renew()
    clock.now += 1.0
    assert b.elector.try_acquire_or_renew()
    assert b.elector.is_leader() and not a.elector.is_leader()


def test_frozen_holder_wakes_up_not_leading_and_finds_the_new_holder() -> None:
    """argo-rollouts #2117: the old leader kept acting after it lost the Lease."""
    store = MemoryLeaseStore()
    a_clock, b_clock = Clock(), Clock()
    a, b = candidate(store, "a", a_clock), candidate(store, "b", b_clock)
    assert a.elector.try_acquire_or_renew()
    assert not b.elector.try_acquire_or_renew()
    # a is frozen (SIGSTOP, GC pause): its clock runs on, it sends nothing.
    a_clock.now += 60
    b_clock.now += 16
    assert b.elector.try_acquire_or_renew()
    assert not a.elector.is_leader(), "the first thing a checks on waking says: stop"
    assert not a.elector.try_acquire_or_renew(), "and the Lease is b's"
    assert not a.elector.is_leader()
    assert store.lease is not None and store.lease["spec"]["holderIdentity"] == "b"


def test_two_candidates_racing_for_an_expired_lease_cannot_both_win() -> None:
    store = MemoryLeaseStore()
    clock = Clock()
    a = candidate(store, "a", clock)
    b, c = candidate(store, "b", clock), candidate(store, "c", clock)
    assert a.elector.try_acquire_or_renew()
    assert not b.elector.try_acquire_or_renew()
    assert not c.elector.try_acquire_or_renew()
    clock.now += 16
    # Both read the same expired record; the second update carries a stale resourceVersion.
    lease = store.get()
    assert lease is not None
    original_get = store.get
    store.get = lambda: copy.deepcopy(lease)  # type: ignore[method-assign]
    assert b.elector.try_acquire_or_renew()
    assert not c.elector.try_acquire_or_renew()
    store.get = original_get  # type: ignore[method-assign]
    assert b.elector.is_leader() and not c.elector.is_leader()


def test_released_lease_is_taken_at_once() -> None:
    store = MemoryLeaseStore()
    clock = Clock()
    a, b = candidate(store, "a", clock), candidate(store, "b", clock)
    assert a.elector.try_acquire_or_renew()
    assert not b.elector.try_acquire_or_renew()
    a.elector.release()
    assert not a.elector.is_leader()
    assert store.lease is not None and not store.lease["spec"].get("holderIdentity")
    clock.now += 0.1
    assert b.elector.try_acquire_or_renew()


def test_holder_losing_to_a_conflict_stops_at_once() -> None:
    store = MemoryLeaseStore()
    a = candidate(store, "a")
    assert a.elector.try_acquire_or_renew()
    assert store.lease is not None
    store.lease["spec"]["holderIdentity"] = "intruder"  # someone rewrote the record
    store.lease["metadata"]["resourceVersion"] = "999"
    assert not a.elector.try_acquire_or_renew()
    assert not a.elector.is_leader()


@pytest.mark.parametrize(
    ("renew", "deadline", "duration"),
    [(5, 5, 15), (5, 15, 15), (10, 5, 15), (0, 10, 15)],
    ids=["renew=deadline", "deadline=duration", "renew>deadline", "renew=0"],
)
def test_inconsistent_timings_are_refused(renew: float, deadline: float, duration: float) -> None:
    with pytest.raises(ValueError, match="renew period < renew deadline < lease duration"):
        LeaderElector(
            MemoryLeaseStore(),
            "a",
            lease_duration=duration,
            renew_deadline=deadline,
            renew_period=renew,
        )


def test_guarded_kube_refuses_writes_but_not_reads_when_not_leading() -> None:
    from kubernetes import client

    kube = GuardedKube(client.ApiClient())
    kube.may_write = lambda: False
    with pytest.raises(NotLeader):
        kube.patch_status({"metadata": {}, "status": {"a": 1}}, {"a": 2})
    with pytest.raises(NotLeader):
        kube.delete_child("ns", "x")
    kube.emit({"metadata": {"name": "x", "namespace": "ns"}}, None)  # type: ignore[arg-type]
    assert kube.counters.writes == 0


def test_every_write_of_the_adapter_is_guarded() -> None:
    """A write method added to ramp.shell.adapters.kube.Kube must be overridden by GuardedKube
    too."""
    import inspect

    from ramp.shell.adapters.kube import Kube

    public = {n for n, f in inspect.getmembers(Kube, inspect.isfunction) if not n.startswith("_")}
    writes = {n for n in public if not n.startswith(("get_", "list_"))}
    unguarded = {n for n in writes if GuardedKube.__dict__.get(n) is None}
    assert not unguarded, f"GuardedKube does not check the Lease before: {sorted(unguarded)}"
