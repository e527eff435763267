"""The release clock (pure): when a release starts and ends, how long it was held; and
the operator's duration histograms it feeds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from ramp.api.rollout import Phase, ReleaseClock, RolloutStatus
from ramp.core.release_clock import ReleaseEnd, releasing, track_release
from ramp.shell.runtime.metrics_release import ReleaseHistograms

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def in_release(**changes: object) -> RolloutStatus:
    st = RolloutStatus(
        stable_revision="a",
        canary_revision="b",
        phase=Phase.PROGRESSING,
        release=ReleaseClock(revision="b", started_at="2026-01-01T00:00:00Z", paused_seconds=7),
    )
    for key, value in changes.items():
        setattr(st, key, value)
    return st


@pytest.mark.parametrize(
    ("changes", "outcome"),
    [
        ({"stable_revision": "b", "canary_revision": None}, "Completed"),
        ({"aborted_revision": "b", "phase": Phase.ABORTED}, "Aborted"),
        ({"canary_revision": "c"}, "Superseded"),
        ({"canary_revision": None}, "Superseded"),  # the template went back to the stable
    ],
    ids=["promoted", "aborted", "newer-template", "rolled-back"],
)
def test_a_release_ends_once_with_its_outcome(changes: dict[str, object], outcome: str) -> None:
    st = in_release(**changes)
    end = track_release(st, at(100), "canary")
    assert end == ReleaseEnd("b", "canary", outcome, 100.0, 7.0)
    assert end.progressing_seconds == 93.0
    # Planning again with the resulting status: nothing more ends.
    assert track_release(st, at(130), "canary") is None
    if changes.get("canary_revision") == "c":
        assert st.release == ReleaseClock(revision="c", started_at="2026-01-01T00:01:40Z")
    else:
        assert st.release is None


def test_holds_add_up_and_only_transitions_change_the_record() -> None:
    st = in_release(release=None)
    assert track_release(st, at(0), "blueGreen") is None
    assert st.release == ReleaseClock(revision="b", started_at="2026-01-01T00:00:00Z")
    st.phase = Phase.PAUSED
    for t in (10, 20, 50):  # held: the record says since when, and does not change
        assert track_release(st, at(t), "blueGreen") is None
        assert st.release.paused_since == "2026-01-01T00:00:10Z"
        assert st.release.paused_seconds == 0
    st.phase = Phase.PROGRESSING
    track_release(st, at(70), "blueGreen")
    assert (st.release.paused_seconds, st.release.paused_since) == (60, None)
    st.phase = Phase.PAUSED
    track_release(st, at(80), "blueGreen")
    # Aborted while held: the current hold counts up to the end.
    st.aborted_revision, st.phase = "b", Phase.ABORTED
    end = track_release(st, at(95), "blueGreen")
    assert end == ReleaseEnd("b", "blueGreen", "Aborted", 95.0, 75.0)
    assert end.progressing_seconds == 20.0


def test_a_retry_after_an_abort_is_a_new_release() -> None:
    st = in_release(release=None, aborted_revision="b", phase=Phase.ABORTED)
    assert releasing(st) is None
    assert track_release(st, at(0), "canary") is None and st.release is None
    st.aborted_revision, st.phase = None, Phase.PROGRESSING
    assert track_release(st, at(5), "canary") is None
    assert st.release == ReleaseClock(revision="b", started_at="2026-01-01T00:00:05Z")


def test_no_release_without_a_canary_of_its_own() -> None:
    for st in (RolloutStatus(stable_revision="a"), RolloutStatus()):
        assert track_release(st, at(0), "canary") is None and st.release is None


def test_histograms_prime_each_namespace_and_count_ends() -> None:
    registry = CollectorRegistry()
    histograms = ReleaseHistograms(registry)
    histograms.observe("shop", None)

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, {"namespace": "shop", **labels})

    zero = {"strategy": "canary", "outcome": "Completed"}
    assert sample("ramp_release_duration_seconds_count", **zero) == 0  # primed at zero
    assert sample("ramp_release_paused_seconds_count", strategy="blueGreen", outcome="Aborted") == 0
    histograms.observe("shop", ReleaseEnd("b", "canary", "Completed", 100.0, 60.0))
    assert sample("ramp_release_duration_seconds_sum", **zero) == 100.0
    assert sample("ramp_release_progression_seconds_sum", **zero) == 40.0
    assert sample("ramp_release_paused_seconds_sum", **zero) == 60.0
    assert sample("ramp_release_paused_seconds_bucket", le="30.0", **zero) == 0
    assert sample("ramp_release_paused_seconds_bucket", le="60.0", **zero) == 1
    assert sample("ramp_release_duration_seconds_count", strategy="canary", outcome="Aborted") == 0
