"""Named examples of class 10 (issue 19): two controllers during a shard change.

Replayed through :mod:`model.sim_shards` (the real election wiring of
``ramp.shell.runtime.layout.elector_for`` on simulated Leases); each failed on f61a406, where the
Lease of shard ``i`` was ``<lease>-shard-<i>`` whatever the shard count, and nothing
fenced one layout from another.
"""

from __future__ import annotations

from datetime import timedelta

from model.sim import NAME, Cluster, Config, template
from model.sim_shards import LEASE, NAMESPACE, RENEW, RETRY, Fleet, Proc
from ramp.api.labels import revision_hash
from ramp.shell.runtime.shard import shard_of

V1, V2 = (revision_hash(template(i)) for i in (1, 2))


def steady() -> Cluster:
    c = Cluster(Config(replicas=4, steps=[{"setWeight": 50}, {"pause": {"duration": "5s"}}]))
    for _ in range(4):
        c.reconcile()
        c.advance(3, controller_acts=True)
    return c


def layout(fleet: Fleet, count: int) -> list[Proc]:
    procs = [fleet.start(count, i) for i in range(count)]
    for p in procs:
        fleet.attempt(p)
    return procs


def elapse(c: Cluster, fleet: Fleet, seconds: float, step: float = 1.0) -> None:
    """Time passes in small ticks; every live process campaigns on its schedule and the
    oracle checks, at every attempt, that at most one of them acts on the Rollout."""
    end = c.now + timedelta(seconds=seconds)
    while c.now < end:
        c.advance(step, controller_acts=True)
        fleet.sync()


def acting_owner(fleet: Fleet) -> list[str]:
    fleet.sync()
    return fleet.writers()


def test_class10_two_to_three_shards_the_new_shard_acts_while_the_old_one_still_does() -> None:
    """``shards: 2`` → ``3`` in a rolling update: the Rollout is shard 0 of 2 and shard 1
    of 3. The old shard-1 pod goes first (its Lease is released), the new shard-1 pod
    takes that Lease at once... while the old shard-0 leader still acts on the Rollout."""
    assert (shard_of(NAMESPACE, NAME, 2), shard_of(NAMESPACE, NAME, 3)) == (0, 1)
    c = steady()
    fleet = Fleet(c, 2, 3)
    old = layout(fleet, 2)
    assert acting_owner(fleet) == [old[0].name]
    fleet.stop(old[1])
    new = [fleet.start(3, i) for i in range(3)]
    for p in new:
        fleet.attempt(p)  # f61a406: two controllers act on the Rollout
    elapse(c, fleet, RENEW)
    # The old layout keeps the Rollout until its shard-0 leader goes; the new one waits.
    assert acting_owner(fleet) == [old[0].name]
    fleet.stop(old[0])
    elapse(c, fleet, LEASE + 2 * RENEW + RETRY)
    # Then the new layout (its shard 1) takes the Rollout over, alone.
    assert acting_owner(fleet) == [new[1].name]
    assert fleet.max_writers == 1


def test_class10_one_to_two_shards_an_unsharded_leader_and_a_shard_leader() -> None:
    """From no shards (``ramp``) to two: the unsharded leader acts on every Rollout; a
    shard-0-of-2 pod started beside it must not act too."""
    c = steady()
    fleet = Fleet(c, 1, 2)
    (alone,) = layout(fleet, 1)
    new = layout(fleet, 2)  # f61a406: p2-0of2 takes ramp-shard-0 and acts at once
    elapse(c, fleet, 3 * LEASE)
    assert acting_owner(fleet) == [alone.name]
    fleet.stop(alone)
    elapse(c, fleet, LEASE + 2 * RENEW + RETRY)
    assert acting_owner(fleet) == [new[shard_of(NAMESPACE, NAME, 2)].name]
    assert fleet.max_writers == 1


def test_class10_old_shard_frozen_through_the_change_wakes_up_fenced() -> None:
    """The old layout's leader of the Rollout is frozen (SIGSTOP, a partition) while the
    whole change happens; it wakes up believing it leads. It must not act beside the new
    layout: its last reading of the layout is older than its renew deadline."""
    c = steady()
    fleet = Fleet(c, 2, 3)
    old = layout(fleet, 2)
    old[0].frozen = True
    fleet.stop(old[1])
    new = layout(fleet, 3)
    elapse(c, fleet, 3 * LEASE)
    old[0].frozen = False
    fleet.attempt(old[0])
    elapse(c, fleet, LEASE)
    assert acting_owner(fleet) == [new[1].name]
    assert fleet.max_writers == 1


def test_class10_the_rollout_finishes_across_the_change() -> None:
    """Liveness: a rollout started under the old layout completes under the new one, and
    every reconcile was made by the one process that could act."""
    c = steady()
    fleet = Fleet(c, 2, 3)
    c.writer = lambda: len(acting_owner(fleet)) == 1
    old = layout(fleet, 2)
    c.spec["template"] = template(2)
    c.bump(spec=True)
    c.reconcile()
    for p in old:
        fleet.stop(p)
    layout(fleet, 3)
    for _ in range(40):
        c.advance(1, controller_acts=True)
        c.reconcile()
    assert c.status is not None and c.status["stableRevision"] == V2, c.status
    assert fleet.max_writers == 1
