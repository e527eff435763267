"""Leader election with a ``coordination.k8s.io/v1`` Lease: only the holder acts.

The algorithm is client-go's (``k8s.io/client-go/tools/leaderelection``):

* a candidate reads the Lease every ``retry_period``; it takes it when it has no holder,
  or when the holder's record has not changed for ``leaseDurationSeconds`` *as observed on
  the candidate's own clock* (no comparison of clocks between machines);
* the holder renews every ``renew_period``; every write is an update guarded by the
  Lease's ``resourceVersion``, so two candidates can never both win the same record;
* the holder **acts only while its last successful renewal is younger than
  ``renew_deadline``** (< lease duration). The renewal's age is taken from the moment the
  request was *sent*, on the monotonic clock. A holder that cannot renew (API server
  unreachable, process frozen, network partition) therefore stops writing before any other
  candidate can see the Lease expire: :meth:`LeaderElector.is_leader` turns False by
  itself, without waiting for a failed request (the failure of argo-rollouts #2117);
* on a graceful stop the holder stops acting first, then releases the Lease so that a
  standby takes over within one ``retry_period`` instead of a lease duration.

The Lease API calls run in a dedicated thread with their own ``ApiClient``, so a busy
reconcile loop (which shares the default executor) cannot delay a renewal.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol

from ramp.shell.adapters.kube import Kube, NotLeader
from ramp.shell.runtime.lease import LeaseConflict, LeaseStore, Record, _micro_time

log = logging.getLogger("ramp.leader")  # its name before the shell package


class Fence(Protocol):
    """A second condition on acting besides the Lease (:mod:`ramp.shell.runtime.layout`)."""

    def allows(self) -> bool: ...

    def budget(self) -> float: ...


class LeaderElector:
    """Campaign for a Lease and keep it; ``is_leader()`` says whether to act now."""

    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        renew_period: float = 5.0,
        retry_period: float = 2.0,
        on_started_leading: Callable[[], None] | None = None,
        on_stopped_leading: Callable[[], None] | None = None,
        on_leading: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        fence: Fence | None = None,
    ) -> None:
        if not 0 < renew_period < renew_deadline < lease_duration:
            raise ValueError(
                "leader election needs 0 < renew period < renew deadline < lease duration "
                f"(got {renew_period}, {renew_deadline}, {lease_duration})"
            )
        if not 0 < retry_period < lease_duration:
            raise ValueError("leader election needs 0 < retry period < lease duration")
        self.store = store
        self.identity = identity
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.renew_period = renew_period
        self.retry_period = retry_period
        self.on_started_leading = on_started_leading
        self.on_stopped_leading = on_stopped_leading
        self.on_leading = on_leading
        """Called at every check that finds this process acting, as it was (after each
        attempt, about every 0.25 s while leading). A renewal that answers after the renew
        deadline passed was a pause no check saw (is_leader() false meanwhile): what
        asked then was refused, and is told here that it may act again."""
        self.clock = clock
        self.wall_clock = wall_clock
        self.fence = fence
        """Acting also needs ``fence.allows()`` (the layout of shards,
        :mod:`ramp.shell.runtime.layout`)."""
        self._renewed_at: float | None = None
        """Monotonic time at which the last successful acquire/renew request was sent."""
        self._observed: Record | None = None
        self._observed_at = 0.0
        self._leading = False
        """What the loop last told the callbacks."""
        self._stopping = False
        self.holder: str | None = None
        """The holder seen in the last read of the Lease."""
        self.transitions = 0
        self._executor: ThreadPoolExecutor | None = None

    # -- the answer the controller asks for ----------------------------------------

    def is_leader(self) -> bool:
        """True only while this process holds the Lease with a fresh enough renewal."""
        renewed = self._renewed_at
        return (
            not self._stopping
            and renewed is not None
            and self.clock() - renewed < self.renew_deadline
            and (self.fence is None or self.fence.allows())
        )

    def write_budget(self) -> float:
        """Seconds a request sent now may take and still land before another process
        could hold the Lease: the lease duration from the last renewal's send time, less
        a margin for clock rate differences. 0 when not the leader."""
        renewed = self._renewed_at
        if not self.is_leader() or renewed is None:
            return 0.0
        budget = max(0.0, renewed + self.lease_duration - WRITE_MARGIN - self.clock())
        return budget if self.fence is None else min(budget, self.fence.budget())

    # -- one attempt (synchronous; runs in the elector's thread) ----------------------

    def try_acquire_or_renew(self) -> bool:
        """Read the Lease and take or renew it if allowed. Returns whether we hold it."""
        sent = self.clock()
        now = self.wall_clock()
        lease = self.store.get()
        duration = max(1, round(self.lease_duration))
        if lease is None:
            spec = {
                "holderIdentity": self.identity,
                "leaseDurationSeconds": duration,
                "acquireTime": _micro_time(now),
                "renewTime": _micro_time(now),
                "leaseTransitions": 0,
            }
            try:
                self.store.create(spec)
            except LeaseConflict:
                return False
            self._won(sent, Record(self.identity, duration, None, None, 0))
            return True
        received = self.clock()
        record = Record.of(lease)
        if record != self._observed:
            # Expiry is measured from when *we* first saw this record (our clock only).
            self._observed = record
            self._observed_at = received
        self.holder = record.holder
        self.transitions = record.transitions
        mine = record.holder == self.identity
        expired = self._observed_at + (record.duration or self.lease_duration) <= received
        if record.holder and not mine and not expired:
            self._renewed_at = None
            return False
        spec = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": duration,
            "acquireTime": record.acquire_time if mine else _micro_time(now),
            "renewTime": _micro_time(now),
            "leaseTransitions": record.transitions if mine else record.transitions + 1,
        }
        try:
            updated = self.store.update(lease, spec)
        except LeaseConflict:
            self._renewed_at = None
            return False
        self._won(sent, Record.of(updated))
        return True

    def observe(self) -> None:
        """Read the Lease without taking it: its expiry clock starts now if it changed
        (a standby of shard 0 watches the layout Lease this way,
        :mod:`ramp.shell.runtime.layout`)."""
        lease = self.store.get()
        if lease is None:
            return
        record = Record.of(lease)
        if record != self._observed:
            self._observed = record
            self._observed_at = self.clock()
        self.holder = record.holder

    def _won(self, sent: float, record: Record) -> None:
        self._renewed_at = sent
        self._observed = record
        self._observed_at = sent
        self.holder = self.identity
        self.transitions = record.transitions

    def release(self) -> None:
        """Give the Lease up (synchronous): stop acting first, then clear the holder."""
        self._stopping = True
        held = self._renewed_at is not None
        self._renewed_at = None
        if not held:
            return
        lease = self.store.get()
        if lease is None or Record.of(lease).holder != self.identity:
            return
        record = Record.of(lease)
        spec = {
            "leaseDurationSeconds": 1,
            "renewTime": _micro_time(self.wall_clock()),
            "acquireTime": record.acquire_time,
            "leaseTransitions": record.transitions,
        }
        self.store.update(lease, spec)
        log.info("released the Lease (holder %s)", self.identity)

    # -- the loop ------------------------------------------------------------------

    async def _call(self, fn: Callable[[], Any]) -> Any:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ramp-lease")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def run(self) -> None:
        """Campaign until cancelled."""
        log.info(
            "leader election: identity %s, lease duration %ss, renew every %ss "
            "(deadline %ss), retry every %ss",
            self.identity,
            self.lease_duration,
            self.renew_period,
            self.renew_deadline,
            self.retry_period,
        )
        while not self._stopping:
            try:
                ok = bool(await self._call(self.try_acquire_or_renew))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                ok = False
                log.warning("leader election: could not read or write the Lease: %s", exc)
            self._transition()
            delay = self.renew_period if ok and self.is_leader() else self.retry_period
            if self._leading and not ok and self._renewed_at is not None:
                # Renewal failed: retry at once and often, before the deadline passes.
                left = self.renew_deadline - (self.clock() - self._renewed_at)
                delay = max(0.05, min(self.retry_period, left))
            await self._sleep_watching(delay)

    async def _sleep_watching(self, delay: float) -> None:
        """Sleep, waking to report a renewal deadline that passes meanwhile."""
        end = self.clock() + delay
        while True:
            left = end - self.clock()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.25) if self._leading else left)
            self._transition()

    def _transition(self) -> None:
        """Tell the callbacks when leadership starts or ends (on the event loop)."""
        leading = self.is_leader()
        if leading == self._leading:
            if leading and self.on_leading:
                self.on_leading()
            return
        self._leading = leading
        if leading:
            log.info(
                "leader election: %s acquired the Lease (transitions: %s); acting",
                self.identity,
                self.transitions,
            )
            if self.on_started_leading:
                self.on_started_leading()
        else:
            if self._stopping:
                log.info("leader election: %s is stopping; all writes stop", self.identity)
                if self.on_stopped_leading:
                    self.on_stopped_leading()
                return
            why = (
                f"now held by {self.holder}"
                if self.holder and self.holder != self.identity
                else f"not renewed within {self.renew_deadline}s"
            )
            if self.fence is not None and not self.fence.allows() and self._renewed_at:
                why = "another shard layout acts or is settling (the layout Lease)"
            log.warning(
                "leader election: %s lost the Lease (%s); all writes stop", self.identity, why
            )
            if self.on_stopped_leading:
                self.on_stopped_leading()

    async def stop(self) -> None:
        """Stop campaigning and release the Lease if held."""
        self._stopping = True
        self._transition()
        try:
            await asyncio.wait_for(self._call(self.release), timeout=5)
        except Exception as exc:
            log.warning("leader election: could not release the Lease: %s", exc)
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None


WRITE_MARGIN = 2.0
"""Seconds kept between the end of the longest request and the Lease's expiry."""


class GuardedKube(Kube):
    """:class:`Kube` whose every write first asks ``may_write`` (e.g. the Lease).

    ``Controller.apply`` checks once before a plan; this checks before *each* request, so a
    holder whose renewal deadline passes in the middle of a plan sends nothing more.
    A refused write raises :class:`NotLeader` (a :class:`Conflict`: the controller re-plans,
    sees that it may not write, and stops); a refused Event is dropped.
    """

    def __init__(self, api_client: Any, component: str = "ramp-operator") -> None:
        super().__init__(api_client, component)
        self.may_write: Callable[[], bool] = lambda: True
        self.held: dict[tuple[str, str], list[tuple[Any, Any]]] = {}
        """Events refused in a pause of the Lease (is_leader() false for a moment while
        this process held it), by Rollout: the pass that emitted them wrote its status, so
        no later pass emits them again; the Rollout's next pass posts them
        (:meth:`post_held`). Dropped when leadership changes hands (``held.clear()``)."""

    def _check(self, what: str) -> None:
        if not self.may_write():
            raise NotLeader(f"{what}: not the leader")

    def create_child(self, *args: Any, **kwargs: Any) -> None:
        self._check("create Deployment")
        super().create_child(*args, **kwargs)

    def scale_child(self, *args: Any, **kwargs: Any) -> None:
        self._check("scale Deployment")
        super().scale_child(*args, **kwargs)

    def delete_child(self, *args: Any, **kwargs: Any) -> None:
        self._check("delete Deployment")
        super().delete_child(*args, **kwargs)

    def write_history(self, *args: Any, **kwargs: Any) -> None:
        self._check("write ControllerRevision")
        super().write_history(*args, **kwargs)

    def delete_history(self, *args: Any, **kwargs: Any) -> None:
        self._check("delete ControllerRevision")
        super().delete_history(*args, **kwargs)

    def pin_service(self, *args: Any, **kwargs: Any) -> bool:
        self._check("patch Service")
        return super().pin_service(*args, **kwargs)

    def write_traffic(self, *args: Any, **kwargs: Any) -> float | None:
        self._check("write a traffic router's object")
        return super().write_traffic(*args, **kwargs)

    def patch_status(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        self._check("patch Rollout status")
        return super().patch_status(*args, **kwargs)

    def emit(self, rollout: Any, event: Any) -> None:
        if self.may_write():
            super().emit(rollout, event)
            return
        meta = rollout["metadata"]
        held = self.held.setdefault((str(meta["namespace"]), str(meta["name"])), [])
        if len(held) < HELD_EVENTS:
            held.append((rollout, event))

    def post_held(self, namespace: str, name: str) -> None:
        """Post the Events of a Rollout refused in a pause (see :attr:`held`)."""
        for rollout, event in self.held.pop((namespace, name), []):
            self.emit(rollout, event)


HELD_EVENTS = 16
"""Events kept per Rollout while a pause of the Lease refuses them."""


__all__ = [
    "HELD_EVENTS",
    "WRITE_MARGIN",
    "Fence",
    "GuardedKube",
    "LeaderElector",
    "LeaseConflict",
    "LeaseStore",
    "NotLeader",
    "Record",
]
