"""Which watch events wake a reconcile (``ramp.shell.handlers``): a child Deployment's event
kicks its Rollout only when it changes something the planner reads, and another shard's
children are neither indexed nor kicked."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ramp.shell import handlers
from ramp.shell.runtime.shard import Shard


def deployment(**status: Any) -> dict[str, Any]:
    return {
        "metadata": {
            "name": "web-abc",
            "namespace": "ns",
            "resourceVersion": "10",
            "generation": 2,
            "labels": {"ramp.dev/rollout": "web", "ramp.dev/revision": "abc"},
            "ownerReferences": [{"uid": "u1", "controller": True}],
        },
        "spec": {"replicas": 3},
        "status": {"replicas": 3, "readyReplicas": 1, "observedGeneration": 2, **status},
    }


@pytest.fixture(autouse=True)
def _fresh_state() -> Any:
    handlers.State.seen, handlers.State.children, handlers.State.placed = {}, {}, {}
    yield
    handlers.State.seen, handlers.State.children, handlers.State.placed = {}, {}, {}


def later(body: dict[str, Any], **changes: Any) -> dict[str, Any]:
    new = copy.deepcopy(body)
    new["metadata"]["resourceVersion"] = str(int(new["metadata"]["resourceVersion"]) + 1)
    for path, value in changes.items():
        section, field = path.split("__")
        new[section][field] = value
    return new


IRRELEVANT = [
    ("updatedReplicas", {"status__updatedReplicas": 3}),
    ("availableReplicas", {"status__availableReplicas": 1}),
    ("conditions", {"status__conditions": [{"type": "Progressing", "status": "True"}]}),
    ("resourceVersion only", {}),
]
RELEVANT = [
    ("readyReplicas", {"status__readyReplicas": 2}),
    ("status.replicas", {"status__replicas": 4}),
    ("spec.replicas", {"spec__replicas": 5}),
    ("observedGeneration", {"status__observedGeneration": 1}),
]


@pytest.mark.parametrize("changes", [c for _, c in IRRELEVANT], ids=[i for i, _ in IRRELEVANT])
def test_an_event_the_planner_cannot_see_wakes_nothing(changes: dict[str, Any]) -> None:
    first = deployment()
    assert handlers.relevant("ADDED", "ns", first)  # the first sight always counts
    assert not handlers.relevant("MODIFIED", "ns", later(first, **changes))


@pytest.mark.parametrize("changes", [c for _, c in RELEVANT], ids=[i for i, _ in RELEVANT])
def test_an_event_the_planner_reads_wakes_the_rollout(changes: dict[str, Any]) -> None:
    first = deployment()
    assert handlers.relevant("ADDED", "ns", first)
    assert handlers.relevant("MODIFIED", "ns", later(first, **changes))


def test_a_deletion_always_wakes_and_is_forgotten() -> None:
    first = deployment()
    assert handlers.relevant(None, "ns", first)  # listed at start-up
    assert handlers.relevant("DELETED", "ns", first)
    assert handlers.State.seen == {}
    assert handlers.relevant("ADDED", "ns", first)  # re-created with the same name


def test_labels_and_deletion_marks_count() -> None:
    first = deployment()
    handlers.relevant("ADDED", "ns", first)
    relabelled = later(first)
    relabelled["metadata"]["labels"]["ramp.dev/role"] = "stable"
    assert handlers.relevant("MODIFIED", "ns", relabelled)
    deleting = later(relabelled)
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert handlers.relevant("MODIFIED", "ns", deleting)


class _Controller:
    def __init__(self, shard: Shard) -> None:
        self.owns = shard.owns
        self.queue = _Queue()
        self.bodies: dict[Any, Any] = {}


def test_another_shards_children_are_not_indexed() -> None:
    shard = Shard(0, 3)
    names = [f"r{i}" for i in range(12)]
    mine = {n for n in names if shard.owns("ns", n)}
    assert mine and mine != set(names)
    saved = handlers.State.controller
    handlers.State.controller = _Controller(shard)  # type: ignore[assignment]
    try:
        for n in names:
            labels = {"ramp.dev/rollout": n}
            assert handlers._owned_child(namespace="ns", labels=labels) == (n in mine)
    finally:
        handlers.State.controller = saved
    # Without a controller (or without shards) everything is indexed.
    assert handlers._owned_child(namespace="ns", labels={"ramp.dev/rollout": "r1"})


def test_kopf_needs_no_diff_base_because_ramp_has_no_changing_handlers() -> None:
    """The no-op diff base (``NoDiffBase``) is right only while no on.create / on.update /
    on.delete / on.resume handler or daemon is registered: such a handler would see every
    object as new. A handler added later must make this test fail first."""
    import kopf

    registry = kopf.get_default_registry()
    assert registry._changing.get_all_handlers() == []
    assert registry._spawning.get_all_handlers() == []
    storage = handlers.NoDiffBase(prefix="ramp.dev", key="last-handled-configuration")
    body = kopf.Body(deployment())
    assert storage.build(body=body) == {} and storage.fetch(body=body) is None


def test_another_shards_children_are_left_out_of_the_index() -> None:
    shard = Shard(1, 2)
    saved = handlers.State.controller
    handlers.State.controller = _Controller(shard)  # type: ignore[assignment]
    try:
        for n in (f"r{i}" for i in range(8)):
            body = kopf_body(n)
            body["metadata"]["name"] = f"{n}-abc"
            handlers.child_event("ADDED", body)
            entry = handlers.State.children.get(("ns", n))
            assert bool(entry) == shard.owns("ns", n), (n, entry)
            assert handlers.State.controller.queue.kicks == (  # type: ignore[union-attr]
                [(("ns", n), handlers.Cause.CHILD)] if shard.owns("ns", n) else []
            )
            handlers.State.controller.queue.kicks.clear()  # type: ignore[union-attr]
    finally:
        handlers.State.controller = saved


def kopf_body(rollout: str) -> Any:
    import kopf

    raw = deployment()
    raw["metadata"]["labels"]["ramp.dev/rollout"] = rollout
    return kopf.Body(raw)


class _Queue:
    def __init__(self) -> None:
        self.kicks: list[Any] = []

    def kick(self, key: Any, cause: Any) -> None:
        self.kicks.append((key, cause))


def test_a_deleted_rollouts_children_leave_the_filters_memory() -> None:
    import asyncio

    forgotten: list[Any] = []

    class _Forgetful(_Controller):
        def forget(self, key: Any) -> None:
            forgotten.append(key)

    handlers.relevant("ADDED", "ns", deployment())  # web-abc, a child of "web"
    other = deployment()
    other["metadata"]["name"] = "api-abc"
    handlers.relevant("ADDED", "ns", other)
    saved = handlers.State.controller
    handlers.State.controller = _Forgetful(Shard(0, 1))  # type: ignore[assignment]
    try:
        asyncio.run(
            handlers.rollout_changed(
                type="DELETED", namespace="ns", name="web", body=kopf_body("web")
            )
        )
    finally:
        handlers.State.controller = saved
    assert forgotten == [("ns", "web")]
    assert list(handlers.State.seen) == [("ns", "api-abc")]


def test_deployments_are_selected_on_the_api_server_and_an_adopted_one_is_no_child() -> None:
    """Every watch of the operator has a server-side label selector: the API server streams
    only Ramp's children and adopted Deployments, not every Deployment in scope. An adopted
    Deployment (``ramp.dev/rollout: Adopted``) is neither indexed nor kicked as a child (it
    kicks the Rollout holding it). The Deployments are watched by Ramp's own list+watch
    (``ramp.shell.runtime.child_watch``), not by kopf: no kopf handler is registered on
    them (a second watch of every Deployment event)."""
    import asyncio

    import kopf

    from ramp.core.workload_model import MANAGED_ANNOTATION, WATCHED_VALUE
    from ramp.shell.runtime import child_watch

    settings = kopf.OperatorSettings()
    handlers.configure(settings=settings)
    for plural in ("controllerrevisions",):
        resource = kopf.Resource("apps", "v1", plural)
        assert list(settings.watching.label_selectors.collect(resource)) == ["ramp.dev/rollout"]
    registry = kopf.get_default_registry()
    deployments = kopf.Resource("apps", "v1", "deployments")
    assert not any(
        h.selector is not None and h.selector.check(deployments)
        for h in registry._watching.get_all_handlers()
    )
    assert not any(
        h.selector is not None and h.selector.check(deployments)
        for h in registry._indexing.get_all_handlers()
    )
    calls: list[Any] = []

    async def fake_list_watch(*args: Any, **_: Any) -> None:
        calls.append(args)

    saved_lw = child_watch.list_watch
    child_watch.list_watch = fake_list_watch  # type: ignore[assignment]
    try:

        async def start() -> None:
            await child_watch.watch_one(None, "ns")  # type: ignore[arg-type]
            await child_watch.watch_one(None, None)  # type: ignore[arg-type]

        asyncio.run(start())
    finally:
        child_watch.list_watch = saved_lw  # type: ignore[assignment]
    # Deployments and ReplicaSets (--children=replicasets), each selected by the label
    assert [(c[1], c[2]) for c in calls] == [
        ("/apis/apps/v1/namespaces/ns/deployments", {"labelSelector": "ramp.dev/rollout"}),
        ("/apis/apps/v1/namespaces/ns/replicasets", {"labelSelector": "ramp.dev/rollout"}),
        ("/apis/apps/v1/deployments", {"labelSelector": "ramp.dev/rollout"}),
        ("/apis/apps/v1/replicasets", {"labelSelector": "ramp.dev/rollout"}),
    ]
    labels = {"ramp.dev/rollout": WATCHED_VALUE}
    assert not handlers._owned_child(namespace="ns", labels=labels)
    raw = deployment()
    raw["metadata"]["labels"] = labels
    raw["metadata"]["annotations"] = {MANAGED_ANNOTATION: "web"}
    saved = handlers.State.controller
    handlers.State.controller = _Controller(Shard(0, 1))  # type: ignore[assignment]
    try:
        handlers.child_event("MODIFIED", raw)
        assert handlers.State.children == {} and handlers.State.seen == {}
        kicks = handlers.State.controller.queue.kicks  # type: ignore[union-attr]
        assert kicks == [(("ns", "web"), handlers.Cause.WORKLOAD)]
    finally:
        handlers.State.controller = saved
