"""The step planner, driven against a simulated cluster (pure: no API server)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from ramp.api.labels import revision_hash
from ramp.api.rollout import Phase, Rollout
from ramp.core.model import iso
from ramp.core.plan import Child, Observed, Plan, plan
from ramp.shell.adapters.kube_objects import child_from_deployment, summarize_deployment

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rollout_body(
    image: str = "app:1",
    replicas: int = 10,
    steps: list[dict[str, Any]] | None = None,
    **canary: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "ramp.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "ns", "generation": 1, "annotations": {}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "progressDeadlineSeconds": 60,
            "strategy": {
                "canary": {
                    "steps": steps
                    if steps is not None
                    else [
                        {"setWeight": 20},
                        {"pause": {"duration": "2s"}},
                        {"setWeight": 50},
                        {"pause": {"duration": "2s"}},
                        {"setWeight": 100},
                    ],
                    **canary,
                }
            },
        },
    }


@dataclass
class Sim:
    """A tiny cluster: Deployments whose pods become ready one tick after they are asked
    for, except revisions listed in ``never_ready``."""

    body: dict[str, Any]
    now: datetime = T0
    children: dict[str, Child] = field(default_factory=dict)
    never_ready: set[str] = field(default_factory=set)
    events: list[str] = field(default_factory=list)
    history: list[tuple[int, int]] = field(default_factory=list)
    max_total: int = 0

    def observe(self) -> Observed:
        return Observed(
            rollout=Rollout.model_validate(self.body),
            template=self.body["spec"]["template"],
            generation=self.body["metadata"]["generation"],
            annotations=self.body["metadata"]["annotations"],
            children=tuple(self.children.values()),
        )

    def tick(self, seconds: float = 0.5) -> Plan:
        result = plan(self.observe(), self.now)
        if result.replicas is not None:
            if result.create and result.create not in self.children:
                self.children[result.create] = Child(
                    f"web-{result.create}", result.create, None, 0, 0, 0, True
                )
            for rev, n in result.replicas.items():
                c = self.children[rev]
                self.children[rev] = replace(c, role=result.roles.get(rev), replicas=n)
            for name in result.delete:
                self.children = {k: v for k, v in self.children.items() if v.name != name}
        self.body["status"] = result.status.to_k8s()
        self.events += [e.reason for e in result.events]
        self.now += timedelta(seconds=seconds)
        # Pods converge: ready follows desired (except never-ready revisions).
        for rev, c in list(self.children.items()):
            ready = 0 if rev in self.never_ready else c.replicas
            self.children[rev] = replace(c, ready=ready, current=c.replicas, settled=True)
        self.max_total = max(self.max_total, sum(c.replicas for c in self.children.values()))
        return result

    def status(self) -> dict[str, Any]:
        return dict(self.body.get("status") or {})

    def run_until(self, predicate: Any, limit: int = 400) -> None:
        for _ in range(limit):
            self.tick()
            if predicate(self.status()):
                return
        raise AssertionError(f"condition not reached; status: {self.status()}")

    def set_image(self, image: str) -> str:
        self.body["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self.body["metadata"]["generation"] += 1
        return revision_hash(self.body["spec"]["template"])

    def annotate(self, verb: str, token: str) -> None:
        self.body["metadata"]["annotations"][f"ramp.dev/{verb}"] = token


def healthy(s: dict[str, Any]) -> bool:
    return s.get("phase") == Phase.HEALTHY and s.get("readyReplicas") == 10


def test_first_revision_is_stable_at_once_without_steps() -> None:
    sim = Sim(rollout_body())
    sim.run_until(healthy)
    status = sim.status()
    assert status["stableRevision"] == revision_hash(sim.body["spec"]["template"])
    assert "canaryRevision" not in status
    assert "StepCompleted" not in sim.events
    assert sim.events[0] == "Initialized"


def test_healthy_rollout_shows_all_weight_on_the_stable_revision() -> None:
    """No release: the weights are the stable's, 100 / 100 (not 0 / 0); during the
    release they are the canary's again, and after the promotion the new stable's."""
    sim = Sim(rollout_body(replicas=3, steps=[{"setWeight": 50}, {"pause": {}}]))
    sim.tick()  # the first revision is created, no pod ready yet
    assert sim.status()["weights"] == {"desired": 100, "actual": 0}
    sim.run_until(lambda s: s.get("phase") == Phase.HEALTHY and s.get("readyReplicas") == 3)
    assert sim.status()["weights"] == {"desired": 100, "actual": 100}
    sim.set_image("app:2")
    sim.run_until(lambda s: s.get("phase") == Phase.PAUSED)
    assert sim.status()["weights"] == {"desired": 50, "actual": 67}
    sim.annotate("promote", "t1")
    sim.run_until(lambda s: s.get("phase") == Phase.HEALTHY and not s.get("canaryRevision"))
    assert sim.status()["weights"] == {"desired": 100, "actual": 100}


def test_image_change_walks_every_step_and_promotes_by_scaling() -> None:
    sim = Sim(rollout_body())
    sim.run_until(healthy)
    old = sim.status()["stableRevision"]
    new = sim.set_image("app:2")
    seen: list[tuple[int, int, int]] = []
    for _ in range(200):
        result = sim.tick()
        s = sim.status()
        if s.get("canaryRevision"):
            c, st = sim.children[new], sim.children[old]
            seen.append((s["currentStepIndex"], c.ready, st.ready))
        if healthy(s) and s["stableRevision"] == new:
            break
        assert result.status.phase in (Phase.PROGRESSING, Phase.HEALTHY)
    else:
        pytest.fail(f"not promoted: {sim.status()}")
    steps_seen = sorted({i for i, _, _ in seen})
    assert steps_seen == [0, 1, 2, 3, 4]
    # At each setWeight step, once its pause starts the split is exact.
    assert (1, 2, 8) in seen and (3, 5, 5) in seen
    assert sim.events.count("StepCompleted") == 5
    assert sim.max_total <= 10 + 3
    assert sim.children[new].replicas == 10
    assert all(c.replicas == 0 for r, c in sim.children.items() if r != new)


def test_never_ready_canary_aborts_at_deadline_stable_first() -> None:
    sim = Sim(rollout_body())
    sim.run_until(healthy)
    old = sim.status()["stableRevision"]
    new = sim.set_image("app:bad")
    sim.never_ready.add(new)
    sim.run_until(lambda s: s.get("phase") == Phase.ABORTED, limit=300)
    status = sim.status()
    assert status["abortReason"] == "ProgressDeadlineExceeded"
    assert "progressDeadlineSeconds=60" in status["message"]
    cond = {c["type"]: c for c in status["conditions"]}
    assert cond["Aborted"]["status"] == "True"
    assert cond["Aborted"]["reason"] == "ProgressDeadlineExceeded"
    # Stable back at 10 before the canary reaches 0.
    for _ in range(20):
        sim.tick()
        if sim.children[new].replicas == 0:
            break
        assert sim.children[old].replicas == 10
    assert sim.children[new].replicas == 0
    assert sim.children[old].ready == 10
    # Staying aborted: nothing retries by itself.
    for _ in range(20):
        sim.tick(seconds=5)
    assert sim.status()["phase"] == Phase.ABORTED
    # retry restarts at step 0, no template change
    sim.never_ready.discard(new)
    sim.annotate("retry", "r1")
    sim.tick()
    assert sim.status()["phase"] == Phase.PROGRESSING
    assert sim.status()["currentStepIndex"] == 0
    assert "Retried" in sim.events
    sim.run_until(lambda s: s.get("stableRevision") == new and healthy(s))


def test_rollback_to_stable_template_needs_no_steps() -> None:
    sim = Sim(rollout_body())
    sim.run_until(healthy)
    old = sim.status()["stableRevision"]
    sim.set_image("app:2")
    sim.run_until(lambda s: s.get("currentStepIndex") == 1)
    sim.set_image("app:1")
    sim.run_until(healthy)
    assert sim.status()["stableRevision"] == old
    assert "RolledBack" in sim.events


def test_indefinite_pause_waits_for_promote_and_tokens_act_once() -> None:
    sim = Sim(
        rollout_body(steps=[{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {}}])
    )
    sim.run_until(healthy)
    new = sim.set_image("app:2")
    sim.run_until(lambda s: s.get("phase") == Phase.PAUSED)
    assert sim.status()["currentStepIndex"] == 1
    for _ in range(10):
        sim.tick(seconds=30)
    assert sim.status()["currentStepIndex"] == 1
    sim.annotate("promote", "p1")
    sim.run_until(lambda s: s.get("phase") == Phase.PAUSED and s.get("currentStepIndex") == 3)
    # The same token again changes nothing.
    for _ in range(5):
        sim.tick()
    assert sim.status()["currentStepIndex"] == 3
    sim.annotate("promote-full", "f1")
    sim.run_until(lambda s: s.get("stableRevision") == new and healthy(s))


def test_user_abort_and_new_template_mid_rollout() -> None:
    sim = Sim(rollout_body(steps=[{"setWeight": 50}, {"pause": {}}]))
    sim.run_until(healthy)
    first = sim.set_image("app:2")
    sim.run_until(lambda s: s.get("phase") == Phase.PAUSED)
    second = sim.set_image("app:3")
    sim.tick()
    assert sim.status()["canaryRevision"] == second
    assert sim.status()["currentStepIndex"] == 0
    assert "CanaryReplaced" in sim.events
    sim.run_until(lambda s: s.get("phase") == Phase.PAUSED)
    assert sim.children[first].replicas == 0
    sim.annotate("abort", "a1")
    sim.run_until(lambda s: s.get("phase") == Phase.ABORTED and s.get("canaryReadyReplicas") == 0)
    assert sim.status()["abortReason"] == "UserAbort"


def test_spec_paused_holds_and_resumes() -> None:
    sim = Sim(rollout_body())
    sim.run_until(healthy)
    sim.set_image("app:2")
    sim.run_until(lambda s: s.get("currentStepIndex") == 1)
    sim.body["spec"]["paused"] = True
    sim.tick()
    held = copy.deepcopy({r: c.replicas for r, c in sim.children.items()})
    for _ in range(20):
        sim.tick(seconds=5)
    assert sim.status()["phase"] == Phase.PAUSED
    assert {r: c.replicas for r, c in sim.children.items()} == held
    sim.body["spec"]["paused"] = False
    sim.run_until(lambda s: s.get("phase") == Phase.HEALTHY and not s.get("canaryRevision"))


def test_unrepresentable_weight_warns() -> None:
    sim = Sim(rollout_body(replicas=3, steps=[{"setWeight": 10}, {"pause": {}}]))
    sim.run_until(lambda s: s.get("phase") == Phase.HEALTHY and s.get("readyReplicas") == 3)
    sim.set_image("app:2")
    sim.run_until(lambda s: s.get("phase") == Phase.PAUSED)
    assert sim.status()["weights"] == {"desired": 10, "actual": 33}
    assert "UnrepresentableWeight" in sim.events


def test_reserved_label_is_invalid_spec_and_children_untouched() -> None:
    sim = Sim(rollout_body())
    sim.run_until(healthy)
    sim.body["spec"]["template"]["metadata"]["labels"]["ramp.dev/revision"] = "x"
    result = sim.tick()
    assert not result.scales and not result.creates and not result.delete
    assert sim.status()["phase"] == Phase.DEGRADED
    assert "reserved" in sim.status()["message"]


def test_plan_is_idempotent() -> None:
    sim = Sim(rollout_body())
    sim.run_until(healthy)
    sim.set_image("app:2")
    sim.run_until(lambda s: s.get("currentStepIndex") == 2)
    obs = sim.observe()
    first = plan(obs, sim.now)
    second = plan(obs, sim.now)
    assert first.status == second.status
    assert first.replicas == second.replicas


def test_work_queue_replaces_a_worker_that_ended() -> None:
    import asyncio

    from ramp.shell.controller.controller import WorkQueue

    calls: list[str] = []

    async def reconcile(namespace: str, name: str) -> float | None:
        calls.append(name)
        if len(calls) == 1:
            raise asyncio.CancelledError  # a worker dying for a reason nobody planned
        return None

    async def scenario() -> None:
        queue = WorkQueue(reconcile)
        queue.kick(("ns", "a"))
        await asyncio.sleep(0.3)  # past the coalescing window
        queue.kick(("ns", "a"))
        await asyncio.sleep(0.3)
        await queue.stop()

    asyncio.run(scenario())
    assert calls == ["a", "a"]


def test_index_summary_keeps_what_the_planner_reads() -> None:
    from ramp.shell.adapters.kube_objects import child_from_deployment, summarize_deployment

    body = {
        "metadata": {
            "name": "web-abc",
            "generation": 3,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"ramp.dev/revision": "abc", "ramp.dev/role": "canary", "app": "web"},
            "annotations": {"ramp.dev/template": "{}"},
        },
        "spec": {"replicas": 4, "template": {"spec": {"containers": []}}},
        "status": {"readyReplicas": 2, "replicas": 4, "observedGeneration": 2},
    }
    summary = summarize_deployment(body)
    assert child_from_deployment(summary) == child_from_deployment(body)
    assert "template" not in summary["spec"] and "annotations" not in summary["metadata"]


def test_a_childs_own_record_of_progress_moves_the_deadline() -> None:
    """The Deployment controller's ``Progressing`` ``lastUpdateTime`` counts as progress
    (a pod created that no status of Ramp's recorded); a child that reports none since
    is still aborted a deadline later."""
    sim = Sim(rollout_body())
    sim.run_until(healthy)
    new = sim.set_image("app:bad")
    sim.never_ready.add(new)
    sim.run_until(lambda s: s.get("canaryRevision") == new)
    started = sim.now
    while sim.now < started + timedelta(seconds=50):
        sim.tick()
    seen = sim.now
    sim.children[new] = replace(sim.children[new], progressed=iso(seen))
    sim.run_until(lambda s: s.get("phase") == Phase.ABORTED, limit=300)
    assert sim.now - seen >= timedelta(seconds=60), "the deadline counts from the child's"
    assert sim.now - seen <= timedelta(seconds=60 * 1.1 + 1)


def test_a_deployments_progress_survives_the_index_summary() -> None:
    body = {
        "metadata": {"name": "web-a", "labels": {"ramp.dev/revision": "a"}},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {}}, "spec": {}}},
        "status": {
            "conditions": [
                {"type": "Available", "lastUpdateTime": "2026-01-01T00:00:01Z"},
                {"type": "Progressing", "lastUpdateTime": "2026-01-01T00:00:09Z"},
            ]
        },
    }
    assert child_from_deployment(body).progressed == "2026-01-01T00:00:09Z"
    assert child_from_deployment(summarize_deployment(body)).progressed == "2026-01-01T00:00:09Z"
    assert child_from_deployment({"metadata": {}, "spec": {}}).progressed == ""
