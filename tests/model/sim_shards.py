"""Two controllers during a shard change (issue 19, class 10): the model's vocabulary.

Operator processes of two shard layouts (``--shard i/a`` and ``--shard i/b``, or no
shards) run side by side, as in a rolling update of the chart's ``shards``: each runs
the REAL election of :func:`ramp.shell.runtime.layout.elector_for` (what ``runtime.build_elector``
wires: which Lease, which fence) against simulated Leases with the API server's
optimistic concurrency, on the cluster's clock. Processes start, stop (releasing their
Lease), are killed (not releasing it), or freeze (paused, or cut off from the API server:
no renewal gets through, and they wake up still believing what they last knew).

The oracle: at every moment, at most one process both owns the Rollout (its shard) and
may write (``is_leader()``, what gates every write of ``GuardedKube``). A reconcile of
the machine is carried out only while exactly one process may act on the Rollout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import invariant, rule

from model.crd_schema import json_copy
from model.sim import NAME, STATS, T0, Cluster, Violation
from ramp.shell.runtime.leader import LeaderElector, LeaseConflict
from ramp.shell.runtime.shard import Shard

NAMESPACE = "ns"
BASE = "ramp"
LEASE, DEADLINE, RENEW, RETRY = 15.0, 10.0, 5.0, 2.0
"""The operator's default timings (seconds)."""


class Leases:
    """The API server's Leases in the operator's namespace (resourceVersion-guarded)."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.rv = 0

    def _stored(self, name: str, meta: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        self.rv += 1
        annotations = dict(meta.get("annotations") or {})
        self.objects[name] = {
            "metadata": {"name": name, "resourceVersion": str(self.rv), "annotations": annotations},
            "spec": {k: v for k, v in spec.items() if v is not None},
        }
        return json_copy(self.objects[name])


class LeaseStore:
    """One process's view of one Lease (:class:`ramp.shell.runtime.lease.KubeLeaseStore`'s
    contract); every request fails while the process is frozen."""

    def __init__(self, leases: Leases, name: str, proc: Proc) -> None:
        self.leases = leases
        self.name = name
        self.proc = proc

    def _reach(self) -> None:
        if self.proc.frozen:
            raise ConnectionError("the API server is out of reach")

    def get(self) -> dict[str, Any] | None:
        self._reach()
        found = self.leases.objects.get(self.name)
        return json_copy(found) if found is not None else None

    def create(
        self, spec: dict[str, Any], annotations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        self._reach()
        if self.name in self.leases.objects:
            raise LeaseConflict("exists")
        return self.leases._stored(self.name, {"annotations": annotations}, spec)

    def update(self, lease: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        self._reach()
        stored = self.leases.objects.get(self.name)
        rv = lease["metadata"]["resourceVersion"]
        if stored is None or stored["metadata"]["resourceVersion"] != rv:
            raise LeaseConflict("stale resourceVersion")
        return self.leases._stored(self.name, lease["metadata"], spec)


@dataclass
class Proc:
    """One operator process."""

    name: str
    shard: Shard | None
    elector: LeaderElector = None  # type: ignore[assignment]
    next_try: float = 0.0
    alive: bool = True
    frozen: bool = False

    @property
    def count(self) -> int:
        return self.shard.count if self.shard else 1

    def owns(self, namespace: str, name: str) -> bool:
        return self.shard is None or self.shard.owns(namespace, name)

    def acting(self) -> bool:
        return self.alive and self.elector.is_leader()


def elector_for(proc: Proc, leases: Leases, clock: Callable[[], float]) -> LeaderElector:
    """The process's elector as the operator wires it (``runtime.build_elector``)."""
    timings: dict[str, Any] = {
        "lease_duration": LEASE,
        "renew_deadline": DEADLINE,
        "renew_period": RENEW,
        "retry_period": RETRY,
        "wall_clock": lambda: T0 + timedelta(seconds=clock()),
    }
    try:
        from ramp.shell.runtime.layout import elector_for as wire
    except ImportError:  # before issue 19 (f61a406): Lease <base>-shard-<i>, no fence
        name = f"{BASE}-shard-{proc.shard.index}" if proc.shard else BASE
        return LeaderElector(
            LeaseStore(leases, name, proc),  # type: ignore[arg-type]
            identity=proc.name,
            clock=clock,
            **timings,
        )
    elector, _ = wire(
        proc.shard,
        BASE,
        lambda name: LeaseStore(leases, name, proc),
        proc.name,
        clock=clock,
        **timings,
    )
    return elector


class Fleet:
    """The operator processes of a shard change, on the cluster's clock."""

    def __init__(self, cluster: Cluster, old: int, new: int) -> None:
        self.cluster = cluster
        self.layouts = (old, new)
        self.leases = Leases()
        self.procs: dict[str, Proc] = {}
        self.t = self.now()
        self.started = 0
        self.max_writers = 0

    def now(self) -> float:
        return (self.cluster.now - T0).total_seconds()

    def start(self, count: int, index: int) -> Proc:
        self.started += 1
        shard = Shard(index % count, count) if count > 1 else None
        proc = Proc(f"p{self.started}-{index % count}of{count}", shard, next_try=self.t)
        proc.elector = elector_for(proc, self.leases, lambda: self.t)
        self.procs[proc.name] = proc
        return proc

    def live(self) -> list[Proc]:
        return [p for p in self.procs.values() if p.alive]

    def writers(self) -> list[str]:
        return [p.name for p in self.live() if p.owns(NAMESPACE, NAME) and p.acting()]

    def check(self) -> None:
        writers = self.writers()
        self.max_writers = max(self.max_writers, len(writers))
        for name in writers:
            STATS[
                f"shards:acting:{'new' if self.procs[name].count == self.layouts[1] else 'old'}"
            ] += 1
        if len(writers) > 1:
            self.fail(f"two controllers act on the Rollout at t={self.t:.1f}s: {writers}")

    def fail(self, what: str) -> None:
        leases = {
            n: (o["spec"], o["metadata"]["annotations"]) for n, o in self.leases.objects.items()
        }
        raise Violation(f"(class 10) {what}; Leases {leases}")

    def attempt(self, proc: Proc) -> None:
        """One turn of the process's election loop (``LeaderElector.run``)."""
        try:
            ok = proc.elector.try_acquire_or_renew()
        except ConnectionError:
            ok = False
        leading = ok and proc.elector.is_leader()
        proc.next_try = self.t + (RENEW if leading else RETRY)
        self.check()

    def run_until(self, end: float) -> None:
        """Time passes: every live process that is not frozen campaigns on schedule."""
        while True:
            due = [p for p in self.live() if not p.frozen and p.next_try <= end]
            if not due:
                break
            proc = min(due, key=lambda p: (p.next_try, p.name))
            self.t = max(self.t, proc.next_try)
            self.attempt(proc)
        self.t = max(self.t, end)
        self.check()

    def sync(self) -> None:
        self.run_until(self.now())

    def stop(self, proc: Proc) -> None:
        """SIGTERM: stop acting, release the Lease (if the API server answers)."""
        with contextlib.suppress(ConnectionError):
            proc.elector.release()
        proc.alive = False


class ShardChangeRules:
    """The machine's vocabulary for two layouts overlapping (mixed into a machine that
    has ``self.cluster``)."""

    cluster: Cluster
    fleet: Fleet | None = None

    @rule(
        data=st.data(),
        action=st.sampled_from(
            ["start", "start", "stop", "kill", "freeze", "campaign", "rolled", "rolled"]
        ),
    )
    def shard_change(self, data: st.DataObject, action: str) -> None:
        """Operators of two shard layouts overlap: start, stop, kill, freeze or thaw one;
        or the rolling update completes (a new-layout process per shard, the others stop)."""
        if self.fleet is None:
            old = data.draw(st.sampled_from([1, 2, 2, 3]), label="old shards")
            new = data.draw(st.sampled_from([n for n in (1, 2, 3, 4) if n != old]), label="new")
            self.fleet = Fleet(self.cluster, old, new)
            for index in range(old):
                self.fleet.attempt(self.fleet.start(old, index))
            self.cluster.writer = lambda: self._one_writer()
            return
        fleet = self.fleet
        fleet.sync()
        if action == "rolled":
            new = fleet.layouts[1]
            running = {p.shard.index if p.shard else 0 for p in fleet.live() if p.count == new}
            for index in sorted(set(range(new)) - running):
                fleet.attempt(fleet.start(new, index))
            for proc in fleet.live():
                if proc.count != new:
                    fleet.stop(proc)
            fleet.check()
            return
        live = sorted(p.name for p in fleet.live())
        if action == "start" or not live:
            count = data.draw(st.sampled_from([fleet.layouts[1]] * 3 + [fleet.layouts[0]]))
            fleet.attempt(fleet.start(count, data.draw(st.integers(0, count - 1))))
            return
        proc = fleet.procs[data.draw(st.sampled_from(live))]
        if action == "stop":
            fleet.stop(proc)
        elif action == "kill":
            proc.alive = False
        elif action == "freeze":
            proc.frozen = not proc.frozen
            proc.next_try = max(proc.next_try, fleet.t)
        else:
            fleet.attempt(proc)
        fleet.check()

    def _one_writer(self) -> bool:
        assert self.fleet is not None
        self.fleet.sync()
        return len(self.fleet.writers()) == 1

    @invariant()
    def at_most_one_writer(self) -> None:
        if self.fleet is not None:
            self.fleet.sync()
