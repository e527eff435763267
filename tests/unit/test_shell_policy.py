"""The shell's own policy, with a recording adapter: the order a plan is executed in,
the status throttle, a refused create planned by the next pass, measurements counted once their
status is written, write timeouts bounded by the Lease, the bodies cache."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime
from typing import Any

import pytest

from ramp.api.rollout import RolloutStatus
from ramp.core.plan import Child, HistoryWrite, Observed, Plan, ServicePin
from ramp.core.throttle import volatile_only
from ramp.shell.adapters.kube import Conflict, Kube, NotLeader
from ramp.shell.controller.controller import Controller
from ramp.shell.runtime.leader import LeaderElector

T0 = datetime(2026, 1, 1, tzinfo=UTC)


class Recorder(Kube):
    """A Kube whose writes are recorded instead of sent."""

    def __init__(self) -> None:
        from kubernetes import client

        super().__init__(client.ApiClient())
        self.calls: list[tuple[str, Any]] = []
        self.refuse_create: bool | int = False
        self.refuse_status = False
        self.conflict = False

    def write_history(self, rollout: Any, write: HistoryWrite, *args: Any) -> None:
        self.calls.append(("history", write.revision))

    def create_child(self, rollout: Any, revision: str, *args: Any) -> None:
        if self.refuse_create:
            from kubernetes.client.exceptions import ApiException

            code = 422 if self.refuse_create is True else int(self.refuse_create)
            raise ApiException(status=code, reason="Refused")
        self.calls.append(("create", revision))

    def patch_status(self, rollout: Any, status: dict[str, Any]) -> dict[str, Any] | None:
        if self.conflict:
            raise Conflict("x")
        if self.refuse_status:
            from kubernetes.client.exceptions import ApiException

            raise ApiException(status=422, reason="status.x: Too long")
        self.calls.append(("status", status.get("phase")))
        return None

    def scale_child(self, namespace: str, child: Child, replicas: Any, role: Any) -> None:
        self.calls.append(("scale", (child.revision, replicas)))

    def delete_child(self, namespace: str, name: str, kind: str = "Deployment") -> None:
        self.calls.append(("delete", name))

    def delete_history(self, namespace: str, rollout: str, revision: str) -> None:
        self.calls.append(("delete-history", revision))

    def pin_service(self, namespace: str, service: str, selector: Any) -> bool:
        self.calls.append(("pin", service))
        return True

    def emit(self, rollout: Any, event: Any) -> None:
        self.calls.append(("event", event.reason))


def child(revision: str, replicas: int) -> Child:
    return Child(f"web-{revision}", revision, None, replicas, replicas, replicas, True)


BODY: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "ns", "uid": "", "resourceVersion": "1"},
    "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {}},
    "status": {},
}


def observed(*children: Child) -> Observed:
    return Observed(rollout=None, template={}, generation=1, annotations={}, children=children)


def test_a_plan_runs_history_creates_status_pins_scales_deletes_events_in_order() -> None:
    kube = Recorder()
    plan = Plan(
        status=RolloutStatus(phase="Progressing"),
        replicas={"a": 2, "b": 8, "new": 1},
        scales=[("b", 8), ("a", 2)],
        creates={"new": {}},
        delete=["web-old"],
        history=[HistoryWrite("new", {}, {})],
        delete_history=["old"],
        services=[ServicePin("web-stable", {"app": "web"}, "a")],
    )
    Controller(kube).apply(BODY, observed(child("a", 5), child("b", 5)), plan)
    kinds = [k for k, _ in kube.calls]
    assert kinds == [
        "history",
        "create",
        "status",
        "pin",
        "scale",
        "scale",
        "delete",
        "delete-history",
    ]
    assert [v for k, v in kube.calls if k == "scale"] == [("b", 8), ("a", 2)]


def test_children_not_owned_are_never_scaled_by_the_shell() -> None:
    kube = Recorder()
    foreign = Child("web-b", "b", None, 5, 5, 5, True, owner="someone-else")
    plan = Plan(status=RolloutStatus(), replicas={"b": 0}, scales=[])
    Controller(kube).apply(BODY, observed(foreign), plan)
    assert not [c for c in kube.calls if c[0] == "scale"]


def test_a_refused_create_is_the_next_pass_input_and_scales_nothing() -> None:
    """A create refused for its spec (422) stops the pass there: no status, no scale.
    The next pass (at once) plans with the refusal, reported as an invalid spec, once."""
    import dataclasses

    from ramp.api.rollout import Rollout
    from ramp.core.plan import plan as make_plan

    kube = Recorder()
    kube.refuse_create = True
    body = {
        **BODY,
        "metadata": {**BODY["metadata"], "generation": 1},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "a", "image": "x"}]},
            },
            "strategy": {"canary": {"steps": []}},
        },
    }
    obs = Observed(
        rollout=Rollout.model_validate(body),
        template=body["spec"]["template"],
        generation=1,
        annotations={},
        children=(),
    )
    plan = Plan(
        status=RolloutStatus(phase="Progressing"),
        replicas={"x": 2, "a": 1},
        creates={"x": {}},
        scales=[("a", 1)],
    )
    controller = Controller(kube)
    outcome = controller.apply(body, dataclasses.replace(obs, children=(child("a", 5),)), plan)
    assert outcome is not None and outcome.refused is not None
    assert "revision x was refused" in outcome.refused
    assert plan.requeue_after is None
    assert kube.calls == []  # no status, no scale: the next pass plans with the refusal
    refused = controller.executor.take_refusal(("ns", "web"), 1)
    assert refused == outcome.refused
    assert controller.executor.take_refusal(("ns", "web"), 1) is None  # used once
    replacement = make_plan(dataclasses.replace(obs, refused=refused), T0)
    assert replacement.status.phase == "Degraded"
    controller.apply(body, obs, replacement)
    assert ("status", "Degraded") in kube.calls
    assert not [c for c in kube.calls if c[0] == "scale"]


@pytest.mark.parametrize(
    "code", [429, 500, 503, 403], ids=["throttled", "webhook-down", "unavailable", "quota"]
)
def test_a_create_refused_for_now_applies_nothing_more_and_backs_off(code: int) -> None:
    """Issue 19, class 7: a refusal that is not the spec's (429, 5xx, a webhook down, a
    quota) is no invalid spec: the rest of the plan goes on without that child (as when
    the watch has not shown it yet), a Warning Event says why, and the reconcile looks
    again after a backoff that doubles up to a minute."""
    kube = Recorder()
    kube.refuse_create = code
    controller = Controller(kube)
    plan = Plan(
        status=RolloutStatus(phase="Progressing"),
        replicas={"x": 2, "a": 3},
        creates={"x": {}},
        scales=[("a", 3)],
        history=[HistoryWrite("x", {}, {})],
    )
    delays = []
    for _ in range(8):
        kube.calls.clear()
        plan.requeue_after = None
        outcome = controller.apply(BODY, observed(child("a", 5)), plan)
        assert outcome is not None and outcome.refused is None
        assert kube.calls == [
            ("history", "x"),
            ("event", "CreateRefused"),
            ("status", "Progressing"),
            ("scale", ("a", 3)),
        ]
        delays.append(plan.requeue_after)
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
    kube.refuse_create = False
    kube.calls.clear()
    controller.apply(BODY, observed(child("a", 5)), plan)
    assert ("create", "x") in kube.calls
    assert controller.executor.refusals == {}


def test_a_refused_status_moves_nothing_and_says_so_once() -> None:
    """Nothing moves without its intent recorded: a 422 on the status stops the apply
    before any pin or scale, and a Warning Event names the refusal (once per message)."""
    from kubernetes.client.exceptions import ApiException

    kube = Recorder()
    kube.refuse_status = True
    controller = Controller(kube)
    plan = Plan(status=RolloutStatus(phase="Progressing"), replicas={"a": 2}, scales=[("a", 2)])
    for _ in range(3):
        with pytest.raises(ApiException):
            controller.apply(BODY, observed(child("a", 5)), plan)
    assert [k for k, _ in kube.calls] == ["event"]
    assert kube.calls[0] == ("event", "StatusRefused")


@pytest.mark.parametrize(
    ("old", "new", "volatile"),
    [
        (
            {"phase": "Progressing", "readyReplicas": 1},
            {"phase": "Progressing", "readyReplicas": 2},
            True,
        ),
        ({"phase": "Progressing", "message": "a"}, {"phase": "Progressing", "message": "b"}, True),
        ({"phase": "Progressing"}, {"phase": "Paused"}, False),
        ({"progressedAt": "x"}, {"progressedAt": "y"}, False),
        ({"currentStepIndex": 1}, {"currentStepIndex": 2}, False),
        ({"a": 1}, {"a": 1}, False),
    ],
    ids=["counts", "wording", "phase", "progress-clock", "step", "unchanged"],
)
def test_status_throttle_delays_only_counts_and_wording(
    old: dict[str, Any], new: dict[str, Any], volatile: bool
) -> None:
    assert volatile_only(old, new) is volatile


def test_measurements_are_reported_only_after_their_status_is_written() -> None:
    from ramp.api.analysis import Measurement, Verdict

    kube = Recorder()
    controller = Controller(kube)
    seen: list[Any] = []
    controller.gates.observers.append(seen.append)
    m = Measurement(metric="m", analysis="background", verdict=Verdict.PASS, time="t")
    kube.conflict = True
    with pytest.raises(Conflict):
        controller.apply(BODY, observed(), Plan(status=RolloutStatus(phase="Paused")))
    assert seen == []  # reconcile() reports only after apply returned
    controller.gates.report([m])
    assert seen == [m]


def test_writes_are_bounded_by_the_lease_and_refused_without_time_left() -> None:
    from kubernetes import client

    kube = Kube(client.ApiClient())
    kube.write_budget = lambda: 7.5
    assert kube._timeout("x") == (5.0, 7.5)
    kube.write_budget = lambda: 0.4
    with pytest.raises(NotLeader):
        kube._timeout("x")
    with pytest.raises(NotLeader):
        kube.delete_child("ns", "web-a")
    assert kube.counters.writes == 1  # counted, never sent


def test_the_lease_write_budget_ends_before_a_standby_could_take_over() -> None:
    now = [100.0]
    elector = LeaderElector(
        store=None,  # type: ignore[arg-type]
        identity="a",
        lease_duration=15,
        renew_deadline=10,
        renew_period=5,
        clock=lambda: now[0],
    )
    assert elector.write_budget() == 0.0
    elector._renewed_at = 100.0
    now[0] = 104.0
    assert elector.write_budget() == pytest.approx(15 - 2 - 4)
    now[0] = 111.0  # past the renew deadline: not the leader, nothing to write
    assert elector.write_budget() == 0.0


def test_the_bodies_cache_never_goes_backwards_across_threads() -> None:
    controller = Controller(Recorder())

    def body(rv: int) -> dict[str, Any]:
        return {"metadata": {"namespace": "ns", "name": "web", "resourceVersion": str(rv)}}

    threads = [threading.Thread(target=controller.remember, args=(body(rv),)) for rv in range(200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert controller.bodies[("ns", "web")]["metadata"]["resourceVersion"] == "199"
    controller.forget(("ns", "web"))
    assert ("ns", "web") not in controller.bodies


def test_kept_bodies_are_compact_copies() -> None:
    controller = Controller(Recorder())
    last = "kubectl.kubernetes.io/last-applied-configuration"
    body = {
        "metadata": {
            "namespace": "ns",
            "name": "web",
            "resourceVersion": "7",
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            "annotations": {last: "{...}", "ramp.dev/promote": "t1"},
        },
        "spec": {"replicas": 3},
    }
    controller.remember(body)
    kept = controller.bodies[("ns", "web")]
    assert kept["metadata"] == {
        "namespace": "ns",
        "name": "web",
        "resourceVersion": "7",
        "annotations": {"ramp.dev/promote": "t1"},
    }
    assert kept["spec"] == {"replicas": 3}
    kept["spec"]["replicas"] = 4  # a copy: the event's body is left as it was
    assert body["spec"] == {"replicas": 3} and last in body["metadata"]["annotations"]


def test_unknown_status_fields_are_ignored_after_a_downgrade() -> None:
    status = RolloutStatus.model_validate({"phase": "Healthy", "fieldFromTheFuture": 1})
    assert status.phase == "Healthy"


def test_the_token_secret_is_read_again_when_due() -> None:
    from ramp.shell.controller.gates import Gates

    tokens = iter(["one", "two"])
    gates = Gates(None, lambda ns, n: None, token_source=lambda: next(tokens))
    gates._token_read_at -= 3600
    gates.refresh_token()
    assert gates.config.token == "one"
    gates.refresh_token()  # not due yet
    assert gates.config.token == "one"
    gates._token_read_at -= 3600
    gates.refresh_token()
    assert gates.config.token == "two"
    asyncio.run(gates.close())


def test_status_patches_remove_nested_fields_that_disappeared() -> None:
    from ramp.shell.adapters.kube_objects import merge_patch

    old = {"blueGreen": {"activeRevision": "a", "warmRevision": "b"}, "phase": "Healthy"}
    new = {"blueGreen": {"activeRevision": "c"}, "phase": "Healthy"}
    assert merge_patch(old, new) == {"blueGreen": {"activeRevision": "c", "warmRevision": None}}
    assert merge_patch(new, new) == {}
