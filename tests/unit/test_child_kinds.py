"""``--children=replicasets`` (issue 26): a new revision's child is a ReplicaSet; children of
both kinds are listed, watched, scaled and deleted as what they are (the adapter against a
fake ``AppsV1Api``; the watch-fed index with lists of each kind). The real cluster:
``tests/e2e/test_replicaset_children.py``; the model machines draw both kinds."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ramp.__main__ import parse_args
from ramp.core.plan import Child
from ramp.shell import handlers
from ramp.shell.adapters.kube import Kube
from ramp.shell.adapters.kube_objects import child_from_deployment, summarize_deployment
from ramp.shell.adapters.manifests import deployment_manifest
from ramp.shell.runtime.settings import Settings

ROLLOUT = {
    "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
    "spec": {"selector": {"matchLabels": {"app": "web"}}},
}
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "a"}]}}


class Answer:
    def __init__(self, obj: dict[str, Any]) -> None:
        self.data = json.dumps(obj).encode()

    def release_conn(self) -> None:
        pass


class Items:
    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items


class Apps:
    """Records each call; a ReplicaSet list may be refused (403) like a tenant's Role."""

    def __init__(self, refuse_replica_sets: bool = False) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.refuse = refuse_replica_sets

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args))
            if name.startswith("list_"):
                if self.refuse and name.endswith("replica_set"):
                    raise ApiException(status=403, reason="Forbidden")
                kind = "ReplicaSet" if name.endswith("replica_set") else "Deployment"
                return Items([child_body(f"web-{kind.lower()}", 2)])
            return Answer({"metadata": {"resourceVersion": "7"}})

        return call


def child_body(name: str, replicas: int, kind: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {
            "name": name,
            "namespace": "ns",
            "resourceVersion": "3",
            "generation": 1,
            "labels": {"ramp.dev/rollout": "web", "ramp.dev/revision": name[-3:]},
            "ownerReferences": [{"uid": "u1", "controller": True}],
        },
        "spec": {"replicas": replicas},
        "status": {"replicas": replicas, "readyReplicas": replicas, "observedGeneration": 1},
    }
    if kind:
        body["kind"] = kind
    return body


def kube(apps: Apps, kind: str = "Deployment") -> Kube:
    k = Kube(client.ApiClient())
    k.apps = apps
    k.child_kind = kind
    return k


def test_the_flag_sets_the_kind_a_new_child_is() -> None:
    assert Settings.from_args(parse_args([])).children == "Deployment"
    args = parse_args(["--children=replicasets"])
    assert Settings.from_args(args).children == "ReplicaSet"
    with pytest.raises(SystemExit):
        parse_args(["--children=statefulsets"])


def test_a_replica_set_child_is_the_same_child_without_a_deployments_fields() -> None:
    rs = deployment_manifest(ROLLOUT, "abc", TEMPLATE, 2, "canary", "ReplicaSet")
    dep = deployment_manifest(ROLLOUT, "abc", TEMPLATE, 2, "canary")
    assert rs["kind"] == "ReplicaSet" and dep["kind"] == "Deployment"
    assert "revisionHistoryLimit" not in rs["spec"] and dep["spec"]["revisionHistoryLimit"] == 1
    assert {k: v for k, v in dep["spec"].items() if k != "revisionHistoryLimit"} == rs["spec"]
    assert rs["metadata"] == dep["metadata"]
    # its kind survives the index's summary; a list's item (no kind) is a Deployment
    body = child_body("web-abc", 2, kind="ReplicaSet")
    assert child_from_deployment(summarize_deployment(body)).kind == "ReplicaSet"
    assert child_from_deployment(child_body("web-abc", 2)).kind == "Deployment"
    assert child_from_deployment(body).progressed == ""  # a ReplicaSet has no Progressing


def test_each_child_is_written_as_what_it_is_and_a_new_one_as_the_flag_says() -> None:
    apps = Apps()
    k = kube(apps, "ReplicaSet")
    k.create_child(ROLLOUT, "abc", TEMPLATE, 1, "canary")
    rs = Child("web-rs1", "rs1", "canary", 1, 1, 1, True, kind="ReplicaSet")
    dep = Child("web-de1", "de1", "stable", 4, 4, 4, True)
    k.scale_child("ns", rs, 2, None)
    k.scale_child("ns", dep, 3, None)
    k.delete_child("ns", "web-rs1", "ReplicaSet")
    k.delete_child("ns", "web-de1")
    assert [name for name, _ in apps.calls] == [
        "create_namespaced_replica_set",
        "patch_namespaced_replica_set",
        "patch_namespaced_deployment",
        "delete_namespaced_replica_set",
        "delete_namespaced_deployment",
    ]
    created = apps.calls[0][1][1]
    assert created["kind"] == "ReplicaSet" and created["spec"]["replicas"] == 1
    assert apps.calls[1][1][2] == {"spec": {"replicas": 2}}


def test_children_of_both_kinds_are_listed_and_a_refused_replica_set_list_is_none() -> None:
    found = kube(Apps()).list_children("ns", "web")
    assert sorted((c.name, c.kind) for c in found) == [
        ("web-deployment", "Deployment"),
        ("web-replicaset", "ReplicaSet"),
    ]
    found = kube(Apps(refuse_replica_sets=True)).list_children("ns", "web")
    assert [(c.name, c.kind) for c in found] == [("web-deployment", "Deployment")]


class Queue:
    def kick(self, key: Any, cause: Any) -> None:
        pass


class Stub:
    queue = Queue()
    bodies: dict[Any, Any] = {}
    kube = None

    def owns(self, namespace: str, name: str) -> bool:
        return True


@pytest.fixture
def _state(monkeypatch: pytest.MonkeyPatch) -> Stub:
    stub = Stub()
    monkeypatch.setattr(handlers.State, "controller", stub)
    for name in ("seen", "children", "placed", "listed_kinds"):
        monkeypatch.setattr(handlers.State, name, {})
    monkeypatch.setattr(handlers.State, "listed", set())
    return stub


def test_a_namespace_is_listed_once_both_kinds_are_and_a_list_drops_only_its_kind(
    _state: Stub,
) -> None:
    """A ReplicaSet list that does not hold a Deployment child does not make it gone (nor
    the other way round); a Rollout's children are known once both kinds are listed."""
    handlers.children_listed("ns", [child_body("web-de1", 4)])
    assert handlers.children_of("ns", "web") is None  # ReplicaSets not listed yet
    handlers.children_listed("ns", [child_body("web-rs1", 1)], kind="ReplicaSet")
    kinds = {c.name: c.kind for c in handlers.children_of("ns", "web") or []}
    assert kinds == {"web-de1": "Deployment", "web-rs1": "ReplicaSet"}
    handlers.children_listed("ns", [], kind="ReplicaSet")  # the ReplicaSet went meanwhile
    assert [c.name for c in handlers.children_of("ns", "web") or []] == ["web-de1"]
    handlers.children_listed("ns", [child_body("web-de1", 4)])
    handlers.children_listed("ns", [child_body("web-rs2", 1)], kind="ReplicaSet")
    assert sorted(c.name for c in handlers.children_of("ns", "web") or []) == [
        "web-de1",
        "web-rs2",
    ]
    handlers.children_unwatched("ns")
    assert handlers.children_of("ns", "web") is None
