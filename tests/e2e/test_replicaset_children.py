"""``--children=replicasets`` (issue 26): a new revision's child is a ReplicaSet that Ramp
scales itself, on the real API server and controller manager.

An operator of its own watches ``d-rschildren-*``. The first revision is made while it runs
with Deployments as children (the default); then it is restarted with
``--children=replicasets`` and the image changes: the canary is a ReplicaSet beside the
stable Deployment, each step's split is exact by the pods' own labels, the promotion leaves
the ReplicaSet with every pod and the old Deployment with none; a second release is a
ReplicaSet beside a ReplicaSet, and a canary whose pods never become ready is aborted at the
progress deadline with the stable serving every pod (a ReplicaSet has no Progressing
condition: the deadline is Ramp's own count of progress)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from kubernetes import client
from ramp_chart import scratch_namespace
from ramp_e2e import OperatorProcess, Rollouts, rollout_manifest, wait_for

from cluster.fixtures import ClusterHandle

STEPS = [{"setWeight": 25}, {"pause": {"duration": "5s"}}, {"setWeight": 100}]


def children(apps: Any, ns: str) -> dict[str, dict[str, int]]:
    """Each child's kind and replicas by name, of both kinds."""
    selector = "ramp.dev/rollout"
    out: dict[str, dict[str, int]] = {}
    for kind, items in (
        ("Deployment", apps.list_namespaced_deployment(ns, label_selector=selector).items),
        ("ReplicaSet", apps.list_namespaced_replica_set(ns, label_selector=selector).items),
    ):
        for item in items:
            out.setdefault(kind, {})[item.metadata.name] = item.spec.replicas or 0
    return out


def start(cluster: ClusterHandle, log: Path, ns: str, *extra: str) -> OperatorProcess:
    operator = OperatorProcess(cluster.kubeconfig, log, ["--namespace", ns, *extra])
    operator.start()
    wait_for("the operator to start", lambda: "watching" in operator.log_text(), 30)
    return operator


def test_replicaset_children_take_over_from_deployments_and_abort_safely(
    cluster: ClusterHandle, crds: None, tmp_path: Path
) -> None:
    apps = client.AppsV1Api(cluster.client)
    with scratch_namespace(cluster, "rschildren") as ns:
        rollouts = Rollouts(cluster.client, ns)
        operator = start(cluster, tmp_path / "deployments.log", ns)
        try:
            rollouts.create(rollout_manifest("web", replicas=4, steps=STEPS, deadline=8))
            first = rollouts.wait_healthy("web", 4)["stableRevision"]
        finally:
            operator.stop()
        assert list(children(apps, ns)) == ["Deployment"]

        operator = start(cluster, tmp_path / "replicasets.log", ns, "--children=replicasets")
        try:
            rollouts.set_image("web", "ramp-test/app:v2")
            canary = rollouts.wait("web", "a canary", lambda s: bool(s.get("canaryRevision")))[
                "canaryRevision"
            ]
            wait_for(
                "the 25% step's pause",
                lambda: rollouts.status("web").get("currentStepIndex") == 1,
                timeout=60,
            )
            # the canary is a ReplicaSet beside the stable Deployment; the pods say the split
            kinds = children(apps, ns)
            assert kinds["Deployment"] == {f"web-{first}": 3}, kinds
            assert kinds["ReplicaSet"] == {f"web-{canary}": 1}, kinds
            assert rollouts.ready_pods("web") == {canary: 1, first: 3}
            second = rollouts.wait_healthy("web", 4)
            assert second["stableRevision"] == canary
            kinds = children(apps, ns)
            assert kinds["ReplicaSet"] == {f"web-{canary}": 4}, kinds
            assert not any(kinds.get("Deployment", {}).values()), kinds
            assert rollouts.ready_pods("web") == {canary: 4}

            # a second release: a ReplicaSet beside a ReplicaSet, all the way
            rollouts.set_image("web", "ramp-test/app:v3")
            third = rollouts.wait(
                "web", "the third revision", lambda s: s.get("canaryRevision") not in (None, canary)
            )["canaryRevision"]
            assert rollouts.wait_healthy("web", 4, timeout=90)["stableRevision"] == third
            assert rollouts.ready_pods("web") == {third: 4}
            assert children(apps, ns)["ReplicaSet"][f"web-{third}"] == 4

            # pods that never become ready: aborted at the deadline, the stable untouched
            rollouts.set_template_labels("web", {"ramp.dev/test-fault": "never-ready"})
            status = rollouts.wait(
                "web", "the abort", lambda s: s.get("phase") == "Aborted", timeout=90
            )
            assert status["stableRevision"] == third
            assert status["abortReason"] == "ProgressDeadlineExceeded", status
            wait_for(
                "the canary scaled down",
                lambda: (
                    rollouts.ready_pods("web") == {third: 4}
                    and not [
                        n
                        for n, r in children(apps, ns)["ReplicaSet"].items()
                        if r and n != f"web-{third}"
                    ]
                ),
                timeout=30,
            )
            time.sleep(1)
            assert rollouts.ready_pods("web") == {third: 4}
        finally:
            operator.stop()
