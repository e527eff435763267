"""How long a release takes: in all, progressing, and held. Pure.

A *release* is a canary (or a blue-green green) revision on its way: it starts when the
revision becomes the canary (a new template, a retry after an abort) and ends when it is
promoted (``Completed``), aborted (``Aborted``) or replaced by another template, a newer
one or the stable's own (``Superseded``). The time it spends in the phase ``Paused``
(held by ``spec.paused``, an indefinite pause step, an inconclusive gate...) is its
paused time; the rest, timed pauses included, is its progression.

The record lives in the status (``status.release``), so a restarted operator or a new
leader measures the same release; a release whose record was lost (a status restored
from a backup) counts from when the record was made again.

>>> from datetime import UTC, datetime, timedelta
>>> from ramp.api.rollout import Phase, RolloutStatus
>>> t0 = datetime(2026, 1, 1, tzinfo=UTC)
>>> st = RolloutStatus(stable_revision="a", canary_revision="b", phase=Phase.PROGRESSING)
>>> track_release(st, t0, "canary") is None
True
>>> st.phase = Phase.PAUSED
>>> track_release(st, t0 + timedelta(seconds=10), "canary")  # held from t0+10 s
>>> st.phase = Phase.PROGRESSING
>>> track_release(st, t0 + timedelta(seconds=70), "canary")  # 60 s held
>>> st.stable_revision, st.canary_revision = "b", None  # promoted
>>> end = track_release(st, t0 + timedelta(seconds=100), "canary")
>>> (end.outcome, end.total_seconds, end.paused_seconds, end.progressing_seconds)
('Completed', 100.0, 60.0, 40.0)
>>> st.release is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ramp.api.rollout import Phase, ReleaseClock, RolloutStatus

OUTCOMES = ("Completed", "Aborted", "Superseded")
"""How a release ends (the ``outcome`` label of the duration histograms)."""


@dataclass(frozen=True)
class ReleaseEnd:
    """A release that ended in this pass."""

    revision: str
    strategy: str
    """``canary`` or ``blueGreen``."""
    outcome: str
    """One of :data:`OUTCOMES`."""
    total_seconds: float
    paused_seconds: float

    @property
    def progressing_seconds(self) -> float:
        return max(0.0, self.total_seconds - self.paused_seconds)


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")  # as ramp.core.model.iso (which imports this)


def _parse(s: str | None) -> datetime | None:
    return datetime.fromisoformat(s.replace("Z", "+00:00")) if s else None


def releasing(st: RolloutStatus) -> str | None:
    """The revision being released, if any (a canary that is not aborted)."""
    canary = st.canary_revision
    if not canary or canary == st.aborted_revision or canary == st.stable_revision:
        return None
    return canary


def _held(clock: ReleaseClock, now: datetime) -> float:
    since = _parse(clock.paused_since)
    extra = max(0.0, (now - since).total_seconds()) if since is not None else 0.0
    return clock.paused_seconds + extra


def track_release(st: RolloutStatus, now: datetime, strategy: str) -> ReleaseEnd | None:
    """Bring ``st.release`` up to date with the status just planned (its phase decided);
    return the release that ended in this pass, if one did. Idempotent: planning again
    with the resulting status changes nothing more."""
    clock, current = st.release, releasing(st)
    ended: ReleaseEnd | None = None
    if clock is not None and clock.revision != current:
        if st.aborted_revision == clock.revision:
            outcome = "Aborted"
        elif st.stable_revision == clock.revision:
            outcome = "Completed"
        else:
            outcome = "Superseded"
        started = _parse(clock.started_at) or now
        ended = ReleaseEnd(
            revision=clock.revision,
            strategy=strategy,
            outcome=outcome,
            total_seconds=max(0.0, (now - started).total_seconds()),
            paused_seconds=_held(clock, now),
        )
        clock = None
    if current is not None and clock is None:
        clock = ReleaseClock(revision=current, started_at=_iso(now))
    if clock is not None:
        held = st.phase == Phase.PAUSED
        if held and clock.paused_since is None:
            clock.paused_since = _iso(now)
        elif not held and clock.paused_since is not None:
            clock.paused_seconds = round(_held(clock, now))
            clock.paused_since = None
    st.release = clock
    return ended


__all__ = ["OUTCOMES", "ReleaseEnd", "releasing", "track_release"]
