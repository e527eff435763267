"""What judges a live release, whatever the strategy: the progress deadline and the
analysis gates. Pure.

A release that waits for pods makes progress while a ready or existing pod more or less
shows on either side; ``progressDeadlineSeconds`` after the last progress it is aborted,
like a Deployment's. An analysis gate passes, holds the release while it runs, pauses it
(inconclusive, error) or aborts it (failed).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from ramp.api.analysis import AnalysisRef
from ramp.core.abort import abort, aborted
from ramp.core.draft import Draft
from ramp.core.gating import BACKGROUND, evaluate
from ramp.core.model import PROGRESS_GRAIN, Plan, iso, parse_iso
from ramp.core.status import counts_moved, finish


def progress_deadline(d: Draft) -> datetime:
    """When the progress deadline ends: ``progressDeadlineSeconds`` after the last
    progress (a ready or existing pod more or less on either side since the last
    written status, or the start of the wait; or a child's Deployment controller saw it
    progress)."""
    st = d.st
    canary, stable = d.child(st.canary_revision), d.child(st.stable_revision)
    moved = counts_moved(d)
    since = parse_iso(st.progressed_at)
    deadline = timedelta(seconds=d.spec.deadline_seconds)
    # Progress is recorded at most once per PROGRESS_GRAIN of the deadline: a pod
    # more or less within it is not worth a status write of its own. Such a move may
    # then be written with other counts and never recorded, so it happened before
    # ``since + grain`` at the latest: the deadline counts from there. It is never
    # early, and at most one grain late.
    grain = deadline * PROGRESS_GRAIN
    if since is None or (moved and d.now - since >= grain):
        since = d.now
        st.progressed_at = iso(d.now)
    elif moved:
        d.wake_in((since + grain - d.now).total_seconds())
    # The Deployments' own record of progress counts too: a move no status recorded (the
    # counts written came from a lagging index and are the same again) is still seen
    # (make fuzz-for, seed 957627271: a canary pod created 70 s late looked like none).
    theirs = [parse_iso(c.progressed) for c in (canary, stable) if c is not None and c.progressed]
    latest = max((t for t in theirs if t is not None), default=since)
    return max(since, min(latest, d.now)) + grain + deadline


def gate_outcome(
    d: Draft, run: str, ref: AnalysisRef, what: str, replicas: dict[str, int]
) -> Plan | None:
    st = d.st
    if run not in d.obs.analysis:
        d.measure.append(run)
    result = evaluate(run, d.obs.analysis.get(run), st, d.now)
    if result.outcome == "Passed":
        return None
    if result.outcome == "Running":
        if result.next_check_in is not None:
            d.wake_in(result.next_check_in)
        if run == BACKGROUND:
            return None
        st.message = f"{what}: {result.message}"
        return finish(d, replicas)
    if result.outcome == "Failed" or result.abort:
        abort(d, "AnalysisFailed", f"{what}: {result.message}")
        return aborted(d)
    d.paused_reason = f"Analysis{result.outcome}"
    st.message = (
        f"paused: {what} is {result.outcome.lower()}: {result.message}; nothing is "
        "promoted; fix the cause and retry (ramp.dev/retry) or promote"
    )
    return finish(d, replicas)
