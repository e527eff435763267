"""The layout fence: one shard layout acts at a time (issue 19, class 10).

Each shard's Lease (``<lease>-shard-<i>``) makes one writer per shard *within* a layout.
Changing the number of shards (``--shard i/2`` → ``--shard i/3``) runs two layouts side
by side for a while (a rolling update), and a Rollout of shard 0 of 2 may be shard 1 of
3: the leaders of two different Leases would both act on it. So the layout is fenced:

* the **layout Lease** ``<lease>`` (the Lease of an operator without shards) is held by
  that operator, or with shards by shard 0's leader (which takes it only while it holds
  ``<lease>-shard-0``). Its annotation ``ramp.dev/shards`` says which shard count acts;
* a leader acts only while its last reading of the layout Lease, sent less than
  ``renew_deadline`` ago, showed its own count, settled (shard 0 reads it as it renews
  it; the other shards read it before each renewal of their own Lease);
* a holder that finds *another* count there writes its own with
  ``ramp.dev/shards-settling``, and clears that mark only ``lease_duration`` after the
  write was answered. Every writer of the old layout read the old count before that
  write, so it stopped ``renew_deadline`` (< ``lease_duration``) after its reading: the
  new layout acts only once the old one has stopped. Writes are bounded the same way as
  the Lease's (:meth:`Layout.budget`).

The same count taking the layout Lease over (a failover, a rolling update that keeps the
count) acts at once, as does a holder that creates the Lease or finds it without a count
(written by an operator before this fence: without shards it was fenced by this very
Lease, with shards it used other Leases). Shard Lease names are those of earlier
versions, so an upgrade that keeps the shard count keeps one writer per shard.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from typing import Any

from ramp.shell.runtime.leader import WRITE_MARGIN, LeaderElector, LeaseConflict, LeaseStore
from ramp.shell.runtime.shard import Shard

log = logging.getLogger("ramp.layout")  # its name before the shell package

SHARDS_ANNOTATION = "ramp.dev/shards"
"""On the layout Lease: the shard count whose leaders act (``"1"`` without shards)."""
SETTLING_ANNOTATION = "ramp.dev/shards-settling"
"""On the layout Lease: the count changed; nobody acts until the old layout has stopped."""


def _annotations(lease: dict[str, Any] | None) -> dict[str, str]:
    if lease is None:
        return {}
    return dict((lease.get("metadata") or {}).get("annotations") or {})


class Layout:
    """This process's reading of the layout Lease: whether its layout may act now."""

    def __init__(
        self,
        count: int,
        lease_duration: float,
        renew_deadline: float,
        clock: Callable[[], float],
    ) -> None:
        self.count = count
        self.lease_duration = lease_duration
        self.renew_deadline = renew_deadline
        self.clock = clock
        self.confirmed_at: float | None = None
        """Send time of the last reading that showed this layout's count, settled."""
        self.settle_until: float | None = None
        """(Layout Lease holder only) when the settling mark may be cleared."""

    def allows(self) -> bool:
        at = self.confirmed_at
        return at is not None and self.clock() - at < self.renew_deadline

    def budget(self) -> float:
        """Seconds a write sent now may take and still land before another layout may
        act (see :meth:`LeaderElector.write_budget`)."""
        at = self.confirmed_at
        if at is None or not self.allows():
            return 0.0
        return max(0.0, at + self.lease_duration - WRITE_MARGIN - self.clock())

    def read(self, lease: dict[str, Any] | None, sent: float) -> bool:
        """A reading of the layout Lease by a shard that does not hold it. Returns
        whether another count is there (this layout is not, or no longer, the one)."""
        notes = _annotations(lease)
        count = notes.get(SHARDS_ANNOTATION)
        ours = count == str(self.count)
        self.confirmed_at = sent if ours and SETTLING_ANNOTATION not in notes else None
        return count is not None and not ours


class HoldingStore:
    """The layout Lease as its holder writes it: with this layout's count, settling
    when it was another one."""

    def __init__(self, store: LeaseStore, layout: Layout, identity: str) -> None:
        self.store = store
        self.layout = layout
        self.identity = identity
        self._sent = 0.0

    def get(self) -> dict[str, Any] | None:
        self._sent = self.layout.clock()
        return self.store.get()

    def create(
        self, spec: dict[str, Any], annotations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        layout = self.layout
        layout.confirmed_at = None
        notes = {**(annotations or {}), SHARDS_ANNOTATION: str(layout.count)}
        created = self.store.create(spec, notes)
        layout.settle_until, layout.confirmed_at = None, self._sent
        return created

    def update(self, lease: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        layout = self.layout
        layout.confirmed_at = None
        if not spec.get("holderIdentity"):  # a release: the marks stay as they are
            return self.store.update(lease, spec)
        notes = _annotations(lease)
        mine = ((lease.get("spec") or {}).get("holderIdentity") or None) == self.identity
        count = notes.get(SHARDS_ANNOTATION)
        if not mine:
            layout.settle_until = None  # a wait is never inherited from an earlier hold
        due = layout.settle_until is not None and layout.clock() >= layout.settle_until
        settling = SETTLING_ANNOTATION in notes and not due
        if count not in (None, str(layout.count)):
            settling = True
            log.warning(
                "shard layout: the layout Lease says %s shard(s), this process runs %d: "
                "nothing acts for %ss, until the old layout has stopped",
                count,
                layout.count,
                layout.lease_duration,
            )
        notes[SHARDS_ANNOTATION] = str(layout.count)
        if settling:
            notes[SETTLING_ANNOTATION] = "true"
        else:
            notes.pop(SETTLING_ANNOTATION, None)
        meta = {**(lease.get("metadata") or {}), "annotations": notes}
        updated = self.store.update({**lease, "metadata": meta}, spec)
        if not settling:
            layout.settle_until = None
            layout.confirmed_at = self._sent
        elif layout.settle_until is None:
            layout.settle_until = layout.clock() + layout.lease_duration  # from the answer
        return updated


class ReadingStore:
    """The Lease store of shard ``i > 0``: every attempt first reads the layout Lease.
    While that names another shard count, this process neither takes its shard's Lease
    nor keeps it (it releases it): the Lease of shard ``i`` is left to the layout that
    acts (an old layout's shard ``i`` during a change, the new one's after it)."""

    def __init__(self, own: LeaseStore, layout_lease: LeaseStore, layout: Layout) -> None:
        self.own = own
        self.layout_lease = layout_lease
        self.layout = layout
        self._other = False

    def get(self) -> dict[str, Any] | None:
        sent = self.layout.clock()
        self._other = self.layout.read(self.layout_lease.get(), sent)
        return self.own.get()

    def create(
        self, spec: dict[str, Any], annotations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        if self._other:
            raise LeaseConflict("another shard layout acts (the layout Lease)")
        return self.own.create(spec, annotations)

    def update(self, lease: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        holder = spec.get("holderIdentity")
        if not self._other or not holder:
            return self.own.update(lease, spec)
        if (lease.get("spec") or {}).get("holderIdentity") == holder:
            released = {**(lease.get("spec") or {}), "holderIdentity": None}
            released.update(leaseDurationSeconds=1, renewTime=spec.get("renewTime"))
            self.own.update(lease, released)
            log.warning("shard layout: another shard count acts; released the shard's Lease")
        raise LeaseConflict("another shard layout acts (the layout Lease)")


class LeadingStore:
    """The Lease store of shard 0 of several: its own Lease ``<lease>-shard-0``; each
    time it holds that one, it also takes or renews the layout Lease (its own election,
    :class:`HoldingStore`), and releases both on a graceful stop."""

    def __init__(self, own: LeaseStore, layout_elector: LeaderElector) -> None:
        self.own = own
        self.layout_elector = layout_elector

    def get(self) -> dict[str, Any] | None:
        with contextlib.suppress(Exception):  # the expiry clock starts on a standby too
            self.layout_elector.observe()
        return self.own.get()

    def _hold_layout(self) -> None:
        try:
            self.layout_elector.try_acquire_or_renew()
        except Exception as exc:  # not acting until a reading succeeds (the fence)
            log.warning("shard layout: could not take or renew the layout Lease: %s", exc)

    def create(
        self, spec: dict[str, Any], annotations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        created = self.own.create(spec, annotations)
        self._hold_layout()
        return created

    def update(self, lease: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        updated = self.own.update(lease, spec)
        if spec.get("holderIdentity"):
            self._hold_layout()
        else:
            self.layout_elector.release()
        return updated


def elector_for(
    shard: Shard | None,
    base: str,
    store_for: Callable[[str], LeaseStore],
    identity: str,
    *,
    lease_duration: float,
    renew_deadline: float,
    renew_period: float,
    retry_period: float,
    clock: Callable[[], float],
    **kwargs: Any,
) -> tuple[LeaderElector, Layout]:
    """The elector of one operator process, fenced by the layout Lease: what
    :func:`ramp.shell.runtime.run.build_elector` runs (``store_for(name)`` opens a Lease)."""
    layout = Layout(shard.count if shard else 1, lease_duration, renew_deadline, clock)
    timings: dict[str, Any] = {
        "lease_duration": lease_duration,
        "renew_deadline": renew_deadline,
        "renew_period": renew_period,
        "retry_period": retry_period,
        "clock": clock,
    }
    store: LeaseStore
    if shard is None:
        store = HoldingStore(store_for(base), layout, identity)
    elif shard.index == 0:
        wall = {"wall_clock": kwargs["wall_clock"]} if "wall_clock" in kwargs else {}
        holder = LeaderElector(
            HoldingStore(store_for(base), layout, identity), identity, **timings, **wall
        )
        store = LeadingStore(store_for(shard.lease_name(base)), holder)
    else:
        store = ReadingStore(store_for(shard.lease_name(base)), store_for(base), layout)
    elector = LeaderElector(store, identity=identity, fence=layout, **timings, **kwargs)
    return elector, layout


__all__ = [
    "SETTLING_ANNOTATION",
    "SHARDS_ANNOTATION",
    "HoldingStore",
    "Layout",
    "LeadingStore",
    "ReadingStore",
    "elector_for",
]
