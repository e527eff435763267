"""Events correlated and rate-limited per Rollout (issue 20, floods).

On f61a406 a condition that alternates Pass and Error posted a new Event on every flip: 60
API writes a minute per metric, for as long as the analysis ran. Now repeats are counted on
one Event, similar messages are combined, and each Rollout has a budget of Event writes,
while aborts always get through.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import pytest

from ramp.core.model import Event
from ramp.shell.adapters.events import (
    ALWAYS,
    BURST,
    COMBINED,
    REFILL,
    SIMILAR,
    Action,
    EventCorrelator,
)

TENANT_A = ("team-a", "web", "uid-a")
TENANT_B = ("team-b", "api", "uid-b")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _names() -> Any:
    counter = itertools.count()
    return lambda: f"event-{next(counter)}"


def flap(
    correlator: EventCorrelator, clock: Clock, seconds: int, key: Any = TENANT_A
) -> Counter[Action]:
    """A metric measured every second, alternating Pass and Error (the Events the gate posts
    on every verdict change)."""
    actions: Counter[Action] = Counter()
    name = _names()
    for second in range(seconds):
        clock.now += 1
        reason, message = (
            ("AnalysisPass", "step-1 metric m: Pass (value 1): value 1 meets successCondition")
            if second % 2 == 0
            else ("AnalysisError", "step-1 metric m: Error (value no value): no answer")
        )
        actions[correlator.observe(key, "Normal", reason, message, name).action] += 1
    return actions


def test_a_flapping_metric_makes_a_bounded_number_of_event_writes_per_minute() -> None:
    clock = Clock()
    correlator = EventCorrelator(clock)
    first = flap(correlator, clock, 60)
    assert first[Action.CREATE] == 2  # one Event per verdict, then counts
    assert first[Action.CREATE] + first[Action.UPDATE] <= BURST + 60 / REFILL + 1
    later = flap(correlator, clock, 600)
    writes = later[Action.CREATE] + later[Action.UPDATE]
    assert writes <= 600 / REFILL + 1, later  # 6 a minute once the burst is spent
    assert later[Action.DROP] >= 600 - writes


def test_repeats_update_one_event_with_its_count() -> None:
    clock = Clock()
    correlator = EventCorrelator(clock)
    name = _names()
    decisions = [
        correlator.observe(TENANT_A, "Warning", "AnalysisFail", "too many errors", name)
        for _ in range(3)
    ]
    assert [d.action for d in decisions] == [Action.CREATE, Action.UPDATE, Action.UPDATE]
    assert [d.count for d in decisions] == [1, 2, 3]
    assert len({d.name for d in decisions}) == 1
    clock.now += 601  # past the window: a new Event
    again = correlator.observe(TENANT_A, "Warning", "AnalysisFail", "too many errors", name)
    assert again.action is Action.CREATE and again.name != decisions[0].name


def test_similar_messages_are_combined_into_one_event() -> None:
    clock = Clock()
    correlator = EventCorrelator(clock)
    name = _names()
    decisions = []
    for value in range(SIMILAR + 5):
        clock.now += 1
        decisions.append(
            correlator.observe(TENANT_A, "Warning", "AnalysisFail", f"value {value}", name)
        )
    separate = decisions[: SIMILAR - 1]
    combined = decisions[SIMILAR - 1 :]
    assert all(d.action is Action.CREATE for d in separate)
    assert all(d.message.startswith(COMBINED) for d in combined)
    assert len({d.name for d in combined}) == 1
    assert [d.count for d in combined] == list(range(1, len(combined) + 1))
    assert combined[-1].message == f"{COMBINED}value {SIMILAR + 4}"


def test_aborts_always_pass_and_other_rollouts_keep_their_budget() -> None:
    clock = Clock()
    correlator = EventCorrelator(clock)
    flap(correlator, clock, 120)  # A's budget is spent
    assert (
        correlator.observe(TENANT_A, "Normal", "AnalysisPass", "something new", _names()).action
        is Action.DROP
    )
    for reason in sorted(ALWAYS):
        decision = correlator.observe(TENANT_A, "Warning", reason, f"{reason} now", _names())
        assert decision.action is Action.CREATE
    other = correlator.observe(TENANT_B, "Normal", "RolloutStarted", "v2", _names())
    assert other.action is Action.CREATE


def test_state_is_bounded() -> None:
    clock = Clock()
    correlator = EventCorrelator(clock, max_objects=50)
    for i in range(500):
        for value in range(30):
            correlator.observe(("ns", f"r{i}", "u"), "Normal", "R", f"m{value}", _names())
    assert len(correlator.objects) == 50
    assert all(len(o.seen) <= SIMILAR + 1 for o in correlator.objects.values())


class _Core:
    """Records Event creates and patches (a fake API server for Kube.emit only)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def create_namespaced_event(self, namespace: str, body: dict[str, Any], **_: Any) -> None:
        self.calls.append(("create", body["metadata"]["name"], body))

    def patch_namespaced_event(
        self, name: str, namespace: str, body: dict[str, Any], **_: Any
    ) -> None:
        self.calls.append(("patch", name, body))


@pytest.mark.parametrize("seconds", [60, 300], ids=["one-minute", "five-minutes"])
def test_kube_emit_counts_repeats_and_limits_writes(seconds: int) -> None:
    from kubernetes import client

    from ramp.shell.adapters.kube import Kube

    kube = Kube(client.ApiClient())
    clock = Clock()
    kube.events = EventCorrelator(clock)
    core = _Core()
    kube.core = core
    rollout = {"metadata": {"namespace": "team-a", "name": "web", "uid": "u1"}}
    for second in range(seconds):
        clock.now += 1
        verdict = "Pass" if second % 2 == 0 else "Error"
        kube.emit(rollout, Event("Normal", f"Analysis{verdict}", f"metric m: {verdict}"))
    kube.emit(rollout, Event("Warning", "Aborted", "metric m failed"))
    creates = [c for c in core.calls if c[0] == "create"]
    assert [c[2]["reason"] for c in creates] == ["AnalysisPass", "AnalysisError", "Aborted"]
    assert len(core.calls) <= BURST + seconds / REFILL + 2
    patches = [c for c in core.calls if c[0] == "patch"]
    assert patches and patches[-1][2]["count"] > 2
    assert {c[1] for c in patches} <= {c[1] for c in creates}
