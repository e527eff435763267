"""The operator's timing samples (``ramp.shell.controller.timing.Samples``): the last N kept in
order, in memory taken once at start — a soak must not see the diagnostics grow."""

from __future__ import annotations

import tracemalloc

from ramp.shell.controller import timing
from ramp.shell.controller.timing import PARTS, Samples, StepTiming


def test_the_last_samples_are_kept_oldest_first() -> None:
    s = Samples(3, ("a", "b"))
    assert len(s) == 0 and s.rows() == []
    for i in range(5):
        s.append((i, 10 * i))
    assert len(s) == 3
    assert s.rows() == [(2.0, 20.0), (3.0, 30.0), (4.0, 40.0)]
    assert s.dicts()[0] == {"a": 2.0, "b": 20.0}
    assert s.values() == [2.0, 3.0, 4.0]


def test_samples_take_no_more_memory_as_they_arrive() -> None:
    s = Samples(10_000, PARTS)
    only_timing = [tracemalloc.Filter(True, timing.__file__)]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot().filter_traces(only_timing)
        for i in range(20_000):
            s.append([i * 0.001] * len(PARTS))
        after = tracemalloc.take_snapshot().filter_traces(only_timing)
    finally:
        tracemalloc.stop()
    # Counted only where the Samples code allocates: another thread of the test process (CI
    # under load saw 11 KB from elsewhere in the window) is not the ring's growth.
    grown = sum(d.size_diff for d in after.compare_to(before, "filename"))
    assert grown < 10_000, grown  # bytes: nothing per sample (a dict each took ~500)
    assert len(s) == 10_000


def test_a_step_timing_gives_every_part_in_order() -> None:
    t = StepTiming(kicked=1.0, started=1.5)
    for phase in ("observe", "plan", "apply"):
        t.mark(phase)
    parts = t.parts()
    assert tuple(parts) == PARTS
    assert parts["queue"] == 0.5
