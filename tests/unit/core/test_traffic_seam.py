"""The traffic-router seam: floors from acknowledged weights, and the planner asking every
router of the Rollout (a router that carries weights keeps the pods its share needs)."""

from __future__ import annotations

import doctest
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from ramp.api.labels import REVISION_LABEL, revision_hash
from ramp.api.rollout import Rollout
from ramp.core import traffic as traffic_module
from ramp.core.draft import Draft
from ramp.core.model import Child, HistoryEntry, Observed, Plan
from ramp.core.plan import plan
from ramp.core.split import Split
from ramp.core.traffic import TrafficIntent, floors, hold_floors, routed_split
from ramp.core.traffic_services import SERVICE_PINS

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_doctests() -> None:
    failures, tried = doctest.testmod(traffic_module)
    assert tried and not failures


@pytest.mark.parametrize(
    ("acknowledged", "wanted", "total", "expected"),
    [
        ({"a": 100}, {"a": 100}, 4, {"a": 4}),
        ({"a": 100}, {"a": 0, "b": 100}, 4, {"a": 4, "b": 4}),  # 0 not acknowledged yet
        ({"b": 100}, {"a": 0, "b": 100}, 4, {"b": 4}),  # acknowledged: a may go
        ({"a": 99, "b": 1}, {"a": 99, "b": 1}, 10, {"a": 10, "b": 1}),  # one pod at least
        ({"a": 50, "b": 50}, {}, 0, {"a": 0, "b": 0}),  # no replicas: nothing to keep
    ],
)
def test_floors(
    acknowledged: dict[str, int], wanted: dict[str, int], total: int, expected: dict[str, int]
) -> None:
    assert floors(acknowledged, wanted, total) == expected


def test_hold_floors_never_lowers_nor_adds() -> None:
    assert hold_floors({"a": 5, "b": 0}, {"a": 2, "b": 3, "c": 9}) == {"a": 5, "b": 3}


TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"image": "x:2"}]}}
OLD = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"image": "x:1"}]}}
NEW, STABLE = revision_hash(TEMPLATE), revision_hash(OLD)


def observed(services: Mapping[str, Any] | None = None, weight: int = 100) -> Observed:
    """A canary at its last step (weight 100): the planner takes the stable to zero."""
    body = {
        "apiVersion": "ramp.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "ns", "generation": 1},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "web"}},
            "template": TEMPLATE,
            "strategy": {
                "canary": {
                    "stableService": "web-stable",
                    "canaryService": "web-canary",
                    "steps": [{"setWeight": weight}] + ([{"pause": {}}] if weight < 100 else []),
                }
            },
        },
        "status": {
            "stableRevision": STABLE,
            "canaryRevision": NEW,
            "currentStepIndex": 0,
            "stepStartedAt": "2026-01-01T00:00:00Z",
        },
    }
    children = tuple(
        Child(f"web-{rev}", rev, role, 4, 4, 4, True, owner="u")
        for rev, role in ((STABLE, "stable"), (NEW, "canary"))
    )
    return Observed(
        rollout=Rollout.model_validate(body),
        template=TEMPLATE,
        generation=1,
        annotations={},
        children=children,
        uid="u",
        history=(HistoryEntry(STABLE, 1, OLD, promoted_at="2026-01-01T00:00:00Z"),),
        services=services or {},
    )


@dataclass
class WeightedRouter:
    """A router that carries weights (a route): what its data plane acknowledged."""

    seen: Mapping[str, int]
    kind: str = "test-route"
    intents: list[TrafficIntent] | None = None
    problem: str | None = None
    exact: bool = False

    def describe(self) -> str:
        return "test route r1"

    def exact_split(self, draft: Draft, weight: int) -> Split | None:
        return routed_split(draft.total, weight) if self.exact else None

    def problems(self, draft: Draft) -> str | None:
        return self.problem

    def acknowledged(self, draft: Draft) -> Mapping[str, int] | None:
        return self.seen

    def carried(self, draft: Draft) -> Mapping[str, int] | None:
        return self.seen

    def route(self, draft: Draft, intent: TrafficIntent, plan: Plan) -> None:
        if self.intents is not None:
            self.intents.append(intent)

    def release(self, draft: Draft, services: tuple[str, ...], plan: Plan) -> bool:
        return False


def with_routers(monkeypatch: pytest.MonkeyPatch, *extra: Any) -> None:
    """The Rollout's routers: the Service pins and ``extra`` (every module that asks)."""
    import ramp.core.routers as routers
    import ramp.core.status as status
    import ramp.core.workload as workload

    for module in (routers, status, workload):
        monkeypatch.setattr(module, "routers_for", lambda spec: (SERVICE_PINS, *extra))


def test_service_pins_alone_scale_the_stable_down_at_weight_100() -> None:
    result = plan(observed(), T0)
    assert result.replicas == {STABLE: 0, NEW: 4}


def test_a_revision_the_router_still_sends_to_keeps_its_pods(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    intents: list[TrafficIntent] = []
    with_routers(monkeypatch, WeightedRouter({STABLE: 100}, intents=intents))
    result = plan(observed(), T0)
    assert result.replicas == {STABLE: 4, NEW: 4}  # weight 0 not acknowledged yet
    assert intents and intents[-1].weights == {STABLE: 0, NEW: 100}
    with_routers(monkeypatch, WeightedRouter({NEW: 100}))
    result = plan(observed(), T0)
    assert result.replicas == {STABLE: 0, NEW: 4}  # acknowledged: the stable goes


def test_service_pins_follow_the_intent(monkeypatch: pytest.MonkeyPatch) -> None:
    """At weight 100 the stable Service follows the canary as the stable goes to zero; a
    Service known to be absent gets no pin."""
    intents: list[TrafficIntent] = []
    with_routers(monkeypatch, WeightedRouter({}, intents=intents))
    services = {"web-stable": {"app": "web", REVISION_LABEL: STABLE}, "web-canary": None}
    result = plan(observed(services), T0)
    targets = {t.service: t.revision for t in intents[-1].targets}
    assert targets == {"web-stable": NEW, "web-canary": NEW}
    assert [(p.service, p.revision) for p in result.services] == [("web-stable", NEW)]


def test_a_step_is_reached_only_once_its_weights_are_acknowledged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stable already at zero, the canary at full size: promotion waits until the
    router confirmed weight 100 on the canary (the progress deadline runs meanwhile)."""
    obs = observed()
    stable, canary = obs.children
    obs = replace(obs, children=(replace(stable, replicas=0, ready=0, current=0), canary))
    with_routers(monkeypatch, WeightedRouter({STABLE: 5, NEW: 95}))
    held = plan(obs, T0)
    assert held.status.stable_revision == STABLE and held.status.canary_revision == NEW
    assert held.replicas == {STABLE: 1, NEW: 4}  # 5 % of the requests still need a pod
    assert held.requeue_after is not None
    with_routers(monkeypatch, WeightedRouter({NEW: 100}))
    done = plan(obs, T0)
    assert done.status.stable_revision == NEW and done.status.canary_revision is None


def test_a_router_problem_is_an_invalid_spec_and_nothing_moves(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    problem = "spec.strategy.canary.trafficRouting: route web not found"
    with_routers(monkeypatch, WeightedRouter({STABLE: 100}, problem=problem))
    result = plan(observed(), T0)
    invalid = {c.type: c for c in result.status.conditions or []}["InvalidSpec"]
    assert invalid.status == "True" and invalid.message == problem
    assert not result.scales  # the workload is left as it is


def test_a_router_that_gives_weights_exactly_sets_the_step_replicas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second weighted router needs no line in the canary's steps nor in the preview:
    they ask the routers (``exact``, ``exact_split``, ``describe``)."""
    from ramp.cli.preview import plan_rollout

    acked = {STABLE: 75, NEW: 25}
    with_routers(monkeypatch, WeightedRouter(acked))
    assert plan(observed(weight=25), T0).replicas == {STABLE: 3, NEW: 1}  # replica ratio
    with_routers(monkeypatch, WeightedRouter(acked, exact=True))
    assert plan(observed(weight=25), T0).replicas == {STABLE: 4, NEW: 1}  # exact: stable whole
    first = plan_rollout(observed(weight=5).rollout).steps[0]
    assert (first.canary, first.stable, first.actual_weight) == (1, 4, 5)
    assert "of test route r1, once acknowledged" in first.note


def test_a_key_of_a_pruned_revisions_pods_is_ramps_to_take_out() -> None:
    """make fuzz-for, seed 217938708 ((f)): ``track: x`` was added to the selector and the
    template, then taken out of both; the revision that had it still served, but its
    history entry was pruned. Moving the Services to the stable (whose pods lack it), the
    pin kept ``track: x`` as if it were the user's own key: they selected none of its
    pods. The label keys of a live child's pods are Ramp's too."""
    from ramp.core.plan import strategy_of
    from ramp.core.traffic_services import pins

    obs = observed({"web-stable": {"app": "web", REVISION_LABEL: STABLE, "track": "x"}})
    tracked = (("app", "web"), ("track", "x"))
    children = tuple(
        replace(c, pod_labels=tracked) if c.revision == STABLE else c for c in obs.children
    )
    obs = replace(obs, children=children, history=())
    draft = Draft(obs, T0, strategy_of(obs.rollout.spec))
    [pin] = pins(draft, [("web-stable", NEW)])
    assert pin.selector == {"app": "web", REVISION_LABEL: NEW, "track": None}
