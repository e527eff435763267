"""Issue 19, class 5: long Rollout names in the shell — children found by label value and
owner, endpoints told apart by their pods' labels (one list per unknown pod)."""

from __future__ import annotations

from typing import Any

from ramp.core.names import child_name, rollout_label
from ramp.shell import handlers
from ramp.shell.adapters.kube_objects import endpoints_by_revision
from ramp.shell.controller.observe import Reader

LONG = "a" * 100 + ".b" * 76  # 252 characters


def _child(owner: str, label: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": child_name(owner, "abc"),
            "labels": {"ramp.dev/rollout": label, "ramp.dev/revision": "abc"},
            "ownerReferences": [{"kind": "Rollout", "name": owner, "controller": True}],
        }
    }


def test_a_child_is_kicked_under_its_owners_name_and_indexed_under_its_label() -> None:
    body = _child(LONG, rollout_label(LONG))
    assert handlers.rollout_of(body["metadata"]["labels"], body) == LONG
    body["metadata"]["namespace"] = "ns"
    saved = handlers.State.children, handlers.State.placed, handlers.State.seen
    handlers.State.children, handlers.State.placed, handlers.State.seen = {}, {}, {}
    try:
        handlers.child_event("ADDED", body)
        assert list(handlers.State.children) == [("ns", rollout_label(LONG))]
        assert handlers.State.placed == {
            ("ns", child_name(LONG, "abc")): (rollout_label(LONG), LONG)
        }
    finally:
        handlers.State.children, handlers.State.placed, handlers.State.seen = saved
    # An owner whose name does not give the label (someone else's) does not rename it.
    stray = _child("other", "web")
    assert handlers.rollout_of(stray["metadata"]["labels"], stray) == "web"


def test_endpoints_are_counted_by_the_pods_label_not_their_name() -> None:
    # A 47-character Rollout: the API server cut the pod names before the revision.
    cut = f"{'r' * 47}-5fd2c6b0bc-7d9f8b6c5"[:58]
    pods = [(f"{cut}aaaaa", True), (f"{cut}bbbbb", True), (f"{cut}ccccc", False)]
    labels = {f"{cut}aaaaa": "5fd2c6b0bc", f"{cut}bbbbb": "5fd2c6b0bc", f"{cut}ccccc": "x"}
    assert endpoints_by_revision(pods, labels) == {"5fd2c6b0bc": 2}


class _Kube:
    def __init__(self) -> None:
        self.lists = 0
        self.pods = {"p1": "r1", "p2": "r2"}

    def list_pod_revisions(self, namespace: str) -> dict[str, str]:
        self.lists += 1
        return dict(self.pods)


def test_pod_revisions_are_listed_once_per_unknown_pod() -> None:
    kube = _Kube()
    reader = Reader(kube)  # type: ignore[arg-type]
    assert reader.pod_revisions("ns", [("p1", True), ("p2", True)]) == {"p1": "r1", "p2": "r2"}
    assert reader.pod_revisions("ns", [("p1", True)]) == {"p1": "r1"}
    assert kube.lists == 1
    # A pod that is not Ramp's is remembered as such: not listed again.
    assert reader.pod_revisions("ns", [("foreign", True)]) == {"foreign": ""}
    assert reader.pod_revisions("ns", [("foreign", True), ("p2", True)])["p2"] == "r2"
    assert kube.lists == 2


def test_a_mark_on_a_revision_deleted_meanwhile_plans_again() -> None:
    """The index can still show a ControllerRevision that the last plan deleted: the 404
    of its marks patch is a Conflict (plan again from a fresh view), not a failed
    reconcile with a ReconcileError."""
    import pytest
    from kubernetes.client.exceptions import ApiException

    from ramp.core.model import HistoryWrite
    from ramp.shell.adapters.kube import Conflict, Kube

    class _Apps:
        def patch_namespaced_controller_revision(self, *args: Any, **kw: Any) -> None:
            raise ApiException(status=404, reason="Not Found")

    kube = Kube.__new__(Kube)
    kube.apps = _Apps()
    kube.counters = type("C", (), {"write": lambda self, what: None})()
    kube.write_budget = lambda: 30.0  # type: ignore[method-assign]
    rollout = {"metadata": {"name": LONG, "namespace": "ns", "uid": "u"}}
    write = HistoryWrite(revision="abc", template=None, annotations={"ramp.dev/aborted": None})
    with pytest.raises(Conflict):
        kube.write_history(rollout, write, None, 1, exists=True)


def test_an_api_error_reads_the_same_on_every_retry() -> None:
    """The Event of a failed reconcile is posted once per distinct error: an API error's
    words leave out its response headers (an Audit-Id differs on every request)."""
    from kubernetes.client.exceptions import ApiException

    from ramp.shell.controller.controller import error_message

    body = '{"message": "controllerrevisions.apps \\"x\\" is forbidden: exceeded quota"}'
    first, second = (ApiException(status=403, reason="Forbidden") for _ in range(2))
    for exc, audit in ((first, "a1"), (second, "b2")):
        exc.body = body
        exc.headers = {"Audit-Id": audit}
    assert error_message(first) == error_message(second)
    assert error_message(first) == (
        'ApiException: 403 Forbidden: controllerrevisions.apps "x" is forbidden: exceeded quota'
    )
    assert error_message(OverflowError("date value out of range")).startswith("OverflowError")
