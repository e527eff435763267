"""The write budget of a reconcile, pinned: the real planner and the real shell
(``Controller.apply`` and the adapter's write logic) against fake API clients that record
every request.

- a reconcile of an unchanged Rollout writes nothing;
- a reconcile whose only news is a count (a pod became ready) writes nothing;
- a step transition writes at most one status patch and one scale per moving side;
- Events only for start, completion, pause, abort and verdict changes (the step history
  is in the status: ``currentStepIndex``, ``stepStartedAt``);
- a whole 5-step rollout writes 20 times (3 per step + 5 per rollout), and role labels
  travel with scales (no label patch of their own while a rollout moves).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ramp.api.labels import ROLE_LABEL
from ramp.api.rollout import Rollout
from ramp.core.plan import Child, HistoryEntry, Observed, plan
from ramp.shell.adapters.kube import Kube
from ramp.shell.adapters.kube_objects import (
    child_from_deployment,
    history_entry,
    merge_patch,
    summarize_history,
)
from ramp.shell.controller.controller import Controller

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ALLOWED_EVENTS = {
    "Initialized",
    "RolloutStarted",
    "RolloutCompleted",
    "Paused",
    "Resumed",
    "Aborted",
    "AnalysisPassed",
    "AnalysisFailed",
    "AnalysisInconclusive",
}


def rollout_body(steps: list[dict[str, Any]], replicas: int = 5) -> dict[str, Any]:
    return {
        "apiVersion": "ramp.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {
            "name": "web",
            "namespace": "ns",
            "uid": "u1",
            "generation": 1,
            "resourceVersion": "1",
            "annotations": {},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            },
            "progressDeadlineSeconds": 600,
            "strategy": {"canary": {"steps": steps}},
        },
    }


class _Calls:
    """A fake API group: every method call is recorded; a few answer like the server."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            return self._cluster.request(name, args)

        return call


@dataclass
class Cluster:
    """Deployments whose pods become ready one at a time (one per tick)."""

    body: dict[str, Any]
    now: datetime = T0
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: list[tuple[str, Any]] = field(default_factory=list)
    """Writes of the current reconcile: (kind, detail)."""
    quiet: int = 0
    """Reconciles whose plan has no action (:meth:`Executor.actions`) found to write
    nothing."""

    def __post_init__(self) -> None:
        from kubernetes import client

        self.kube = Kube(client.ApiClient())
        self.kube.apps = self.kube.custom = self.kube.core = _Calls(self)
        self.controller = Controller(self.kube, clock=lambda: self.now)

    # -- the fake API server -------------------------------------------------------

    def request(self, name: str, args: tuple[Any, ...]) -> Any:
        if name == "create_namespaced_deployment":
            dep = copy.deepcopy(args[1])
            dep["metadata"]["generation"] = 1
            dep["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
            dep["status"] = {"replicas": 0, "readyReplicas": 0, "observedGeneration": 1}
            self.deployments[dep["metadata"]["name"]] = dep
            self.writes.append(("create", dep["metadata"]["name"]))
        elif name == "patch_namespaced_deployment":
            dep = self.deployments[args[0]]
            patch = args[2]
            if "spec" in patch:
                dep["spec"].update(patch["spec"])
                dep["metadata"]["generation"] += 1  # seen by its controller on the next tick
            if "metadata" in patch:
                dep["metadata"]["labels"].update(patch["metadata"]["labels"])
            self.writes.append(("scale" if "spec" in patch else "label", args[0]))
        elif name == "delete_namespaced_deployment":
            self.deployments.pop(args[0], None)
            self.writes.append(("delete", args[0]))
        elif name == "patch_namespaced_custom_object_status":
            patch = args[5]
            status = _merge(self.body.get("status") or {}, patch["status"])
            self.body["status"] = status
            rv = int(self.body["metadata"]["resourceVersion"]) + 1
            self.body["metadata"]["resourceVersion"] = str(rv)
            self.writes.append(("status", status.get("currentStepIndex")))
            return copy.deepcopy(self.body)
        elif name == "create_namespaced_event":
            self.writes.append(("event", args[1]["reason"]))
        elif name == "create_namespaced_controller_revision":
            self.history[args[1]["metadata"]["name"]] = copy.deepcopy(args[1])
            self.writes.append(("history", args[1]["metadata"]["name"]))
        elif name == "patch_namespaced_controller_revision":
            meta = self.history[args[0]]["metadata"]
            annotations = meta.setdefault("annotations", {})
            for k, v in args[2]["metadata"]["annotations"].items():
                if v is None:
                    annotations.pop(k, None)
                else:
                    annotations[k] = v
            self.writes.append(("history", args[0]))
        elif name == "delete_namespaced_controller_revision":
            self.history.pop(args[0], None)
            self.writes.append(("delete-history", args[0]))
        else:
            raise AssertionError(f"unexpected API call {name}")
        return None

    # -- one reconcile ------------------------------------------------------------

    def children(self) -> list[Child]:
        return [child_from_deployment(d) for d in self.deployments.values()]

    def reconcile(self) -> list[tuple[str, Any]]:
        self.writes = []
        body = copy.deepcopy(self.body)
        entries = (history_entry(summarize_history(h), "u1") for h in self.history.values())
        observed = Observed(
            rollout=Rollout.model_validate(body),
            template=body["spec"]["template"],
            generation=body["metadata"]["generation"],
            annotations=body["metadata"]["annotations"],
            children=tuple(self.children()),
            uid="u1",
            history=tuple(e for e in entries if isinstance(e, HistoryEntry)),
        )
        result = plan(observed, self.now)
        silent = not self.controller.executor.actions(body, observed, result).steps
        self.controller.apply(body, observed, result)
        # The controller skips apply (and its thread) for a quiet plan: it must write nothing.
        assert not (silent and self.writes), (self.writes, result)
        self.quiet += silent
        self.now += timedelta(seconds=1)
        return self.writes

    def pods_progress(self) -> bool:
        """Each Deployment's controller sees its spec (observedGeneration), or else one of
        its pods moves towards it (created or removed, then ready); True when something
        changed."""
        changed = False
        for dep in self.deployments.values():
            want, st = dep["spec"]["replicas"], dep["status"]
            if st["observedGeneration"] != dep["metadata"]["generation"]:
                st["observedGeneration"] = dep["metadata"]["generation"]
                changed = True
            elif st["replicas"] != want:
                st["replicas"] += 1 if st["replicas"] < want else -1
                changed = True
            elif st["readyReplicas"] != want:
                st["readyReplicas"] += 1 if st["readyReplicas"] < want else -1
                changed = True
            st["readyReplicas"] = min(st["readyReplicas"], st["replicas"])
        return changed

    def settle(self, limit: int = 400) -> list[list[tuple[str, Any]]]:
        """Reconcile after every change until nothing changes; the writes of each."""
        log = []
        for _ in range(limit):
            writes = self.reconcile()
            log.append(writes)
            if not writes and not self.pods_progress():
                return log
        raise AssertionError(f"did not settle: {self.body.get('status')}")

    def set_image(self, image: str) -> None:
        self.body["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self.body["metadata"]["generation"] += 1


def _merge(old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(old)
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v)
        else:
            out[k] = v
    return out


STEPS = [{"setWeight": w} for w in (20, 40, 60, 80, 100)]


def healthy_cluster(steps: list[dict[str, Any]] | None = None) -> Cluster:
    cluster = Cluster(rollout_body(STEPS if steps is None else steps))
    cluster.settle()
    assert cluster.body["status"]["phase"] == "Healthy", cluster.body["status"]
    return cluster


def test_merge_patch_helper_agrees_with_the_fake_server() -> None:
    old = {"a": {"x": 1, "y": 2}, "b": 1}
    new = {"a": {"x": 1}, "c": 3}
    assert _merge(old, merge_patch(old, new)) == new


def test_a_reconcile_of_an_unchanged_rollout_writes_nothing() -> None:
    cluster = healthy_cluster()
    quiet_before = cluster.quiet
    for _ in range(3):
        assert cluster.reconcile() == []
    assert cluster.quiet == quiet_before + 3  # and needs no API thread


def test_most_reconciles_of_a_rollout_are_quiet() -> None:
    """Reconciles woken by a pod becoming ready plan nothing to write: the controller
    runs them without a thread hop; every plan found quiet wrote nothing (checked in
    ``Cluster.reconcile``)."""
    cluster = healthy_cluster()
    cluster.set_image("app:2")
    cluster.quiet = 0
    log = cluster.settle()
    assert cluster.quiet == sum(1 for w in log if not w) > len(log) / 2, (cluster.quiet, len(log))


def test_a_step_transition_writes_one_status_patch_and_one_scale_per_moving_side() -> None:
    cluster = healthy_cluster()
    cluster.set_image("app:2")
    log = cluster.settle()
    assert cluster.body["status"]["phase"] == "Healthy"
    steps_seen = 0
    previous: Any = None
    for writes in log:
        kinds = [k for k, _ in writes]
        statuses = [v for k, v in writes if k == "status"]
        assert kinds.count("status") <= 1, writes
        scaled = [v for k, v in writes if k == "scale"]
        assert len(scaled) == len(set(scaled)) <= 2, writes  # one per side that moves
        events = {v for k, v in writes if k == "event"}
        if "label" in kinds:  # roles travel with a scale, or change at promotion only
            assert "RolloutCompleted" in events, writes
        assert events <= ALLOWED_EVENTS, writes
        if statuses and statuses[0] != previous:
            steps_seen += 1
            previous = statuses[0]
    assert steps_seen >= len(STEPS)


def test_a_reconcile_whose_only_news_is_a_count_writes_nothing() -> None:
    cluster = healthy_cluster()
    cluster.set_image("app:2")
    cluster.reconcile()  # the rollout starts
    quiet = 0
    for _ in range(200):
        before = copy.deepcopy(cluster.body.get("status"))
        if not cluster.pods_progress():
            break
        writes = cluster.reconcile()
        after = cluster.body.get("status")
        if writes and before is not None and after is not None:
            if before.get("currentStepIndex") == after.get("currentStepIndex") and before.get(
                "phase"
            ) == after.get("phase"):
                # Same step and phase: only a scale may have been due, never a count.
                assert [k for k, _ in writes if k == "status"] == [] or before.get(
                    "canaryRevision"
                ) != after.get("canaryRevision"), writes
        else:
            quiet += 1
    assert quiet > 0


def test_a_whole_five_step_rollout_writes_twenty_times() -> None:
    """The budget of the benchmark's rollout (5 replicas, 20/40/60/80/100), pinned by
    kind: per step the step's status patch and one scale per side (the canary's first
    "scale" is its create, at the first step's count); per rollout the start (its
    ControllerRevision, status, Event) and the promotion (history mark, status, Event).
    Role labels travel with the last scales: no label patch of their own."""
    cluster = healthy_cluster()
    cluster.set_image("app:2")
    log = cluster.settle()
    kinds: dict[str, int] = {}
    for writes in log:
        for kind, _ in writes:
            kinds[kind] = kinds.get(kind, 0) + 1
    assert kinds == {"status": 6, "scale": 9, "create": 1, "history": 2, "event": 2}, kinds
    assert sum(kinds.values()) == 3 * len(STEPS) + 5 == 20
    assert not [w for w in log if ("event", "StepCompleted") in w]
    history = cluster.body["status"]["stepHistory"]
    assert [h["index"] for h in history] == list(range(len(STEPS)))


def _roles(cluster: Cluster) -> dict[str, str | None]:
    return {
        name: d["metadata"]["labels"].get(ROLE_LABEL) for name, d in cluster.deployments.items()
    }


def test_role_labels_travel_with_the_last_scales_and_end_right() -> None:
    cluster = healthy_cluster()
    for n in range(2):
        cluster.set_image(f"app:{n + 2}")
        log = cluster.settle()
        assert [w for w in log if any(k == "label" for k, _ in w)] == [], log
        status = cluster.body["status"]
        stable = next(d for d in cluster.deployments.values() if d["spec"]["replicas"] == 5)
        assert stable["metadata"]["labels"]["ramp.dev/revision"] == status["stableRevision"]
        roles = _roles(cluster)
        assert roles[stable["metadata"]["name"]] == "stable", roles
        assert sorted(roles.values()) == sorted(["stable"] + ["previous"] * (len(roles) - 1))


def test_a_wrong_role_label_is_corrected_at_rest_on_its_own() -> None:
    cluster = healthy_cluster()
    (name,) = cluster.deployments
    cluster.deployments[name]["metadata"]["labels"][ROLE_LABEL] = "canary"
    assert cluster.reconcile() == [("label", name)]
    assert cluster.reconcile() == []


def test_an_abort_at_weight_100_puts_the_roles_back() -> None:
    cluster = healthy_cluster(steps=[{"setWeight": 100}, {"pause": {}}])
    old = next(iter(cluster.deployments))
    cluster.set_image("app:2")
    log = cluster.settle()
    assert cluster.body["status"]["phase"] == "Paused"
    roles = _roles(cluster)
    assert roles[old] == "previous" and sorted(roles.values()) == ["previous", "stable"], roles
    cluster.body["metadata"]["annotations"]["ramp.dev/abort"] = "t1"
    log = cluster.settle()
    assert cluster.body["status"]["phase"] == "Aborted", cluster.body["status"]
    # Aborted is not Progressing: the canary's label is put back at once, on its own.
    labels = [v for w in log for k, v in w if k == "label"]
    assert labels == [n for n in cluster.deployments if n != old], log
    roles = _roles(cluster)
    assert roles[old] == "stable" and sorted(roles.values()) == ["canary", "stable"], roles
