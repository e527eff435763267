"""The workloadRef adapter (``ramp.shell.adapters.kube_workload``): what it reads off an adopted
Deployment and the one merge patch it sends for a plan's workload part."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from ramp.api.rollout import RolloutStatus
from ramp.core.plan import Plan
from ramp.core.workload_model import MANAGED_ANNOTATION, WATCHED_VALUE, WorkloadPatch
from ramp.shell.adapters.kube import Kube
from ramp.shell.adapters.kube_workload import Workloads, summarize_workload


def deployment(labels: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web",
            "generation": 4,
            "labels": labels,
            "annotations": {MANAGED_ANNOTATION: "web"},
        },
        "spec": {"replicas": 3, "paused": True, "template": {"metadata": {}}},
        "status": {"readyReplicas": 3, "replicas": 3, "observedGeneration": 4},
    }


def test_the_watch_label_is_read_off_the_deployment() -> None:
    assert summarize_workload(deployment({"ramp.dev/rollout": WATCHED_VALUE})).watched
    assert not summarize_workload(deployment({"app": "web"})).watched
    assert summarize_workload(deployment({})).managed_by == "web"


class _Apps:
    def __init__(self) -> None:
        self.patches: list[tuple[str, str, dict[str, Any]]] = []

    def patch_namespaced_deployment(self, name: str, ns: str, body: Any, **_: Any) -> None:
        self.patches.append((name, ns, body))


def test_labels_and_annotations_travel_in_one_merge_patch() -> None:
    kube = Kube(client.ApiClient())
    apps = _Apps()
    kube.apps = apps
    result = Plan(RolloutStatus())
    result.workload = WorkloadPatch(
        "web",
        paused=True,
        annotations={MANAGED_ANNOTATION: "web"},
        labels={"ramp.dev/rollout": WATCHED_VALUE},
    )
    Workloads(kube).patch_deployment("ns", result.workload)
    result.workload = WorkloadPatch(
        "web", annotations={MANAGED_ANNOTATION: None}, labels={"ramp.dev/rollout": None}
    )
    Workloads(kube).patch_deployment("ns", result.workload)
    assert apps.patches == [
        (
            "web",
            "ns",
            {
                "spec": {"paused": True},
                "metadata": {
                    "annotations": {MANAGED_ANNOTATION: "web"},
                    "labels": {"ramp.dev/rollout": WATCHED_VALUE},
                },
            },
        ),
        (
            "web",
            "ns",
            {
                "metadata": {
                    "annotations": {MANAGED_ANNOTATION: None},
                    "labels": {"ramp.dev/rollout": None},
                }
            },
        ),
    ]
