"""Adoption of orphaned children and history (ramp.shell.controller.adopt): only objects
with no owner at all, labelled for this Rollout and named as Ramp names them; never while
the Rollout is being deleted; the ownerReference is patched with the resourceVersion read."""

from __future__ import annotations

import copy
import json
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ramp.api.labels import revision_hash
from ramp.core.plan import Child, Event
from ramp.shell.adapters.kube import Kube
from ramp.shell.controller.adopt import adopt_orphans

UID = "new-uid"
TEMPLATES = {
    image: {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"image": image}]}}
    for image in ("a", "b")
}
A, B = (revision_hash(TEMPLATES[i]) for i in ("a", "b"))
ROLLOUT: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "ns", "uid": UID},
    "status": {"phase": "Aborted"},
}


def obj(
    name: str, revision: str, owner: str | None = None, rollout: str = "web", image: str = ""
) -> Any:
    """A Deployment (or ControllerRevision) as Ramp made it for ``revision``: the template
    recorded, and the pod template (``image`` set: someone edited it)."""
    refs = [{"uid": owner, "controller": True}] if owner else []
    written = TEMPLATES["a" if revision == A else "b"]
    pod = copy.deepcopy(written)
    pod["metadata"]["labels"]["ramp.dev/revision"] = revision
    if image:
        pod["spec"]["containers"][0]["image"] = image
    return {
        "metadata": {
            "name": name,
            "resourceVersion": "7",
            "labels": {"ramp.dev/rollout": rollout, "ramp.dev/revision": revision},
            "annotations": {"ramp.dev/template": json.dumps(written)},
            "ownerReferences": refs,
        },
        "spec": {"template": pod},
    }


class FakeApps:
    def __init__(self, objects: dict[str, Any]) -> None:
        self.objects = objects
        self.patches: list[tuple[str, Any]] = []

    def _read(self, name: str, namespace: str) -> Any:
        if name not in self.objects:
            raise ApiException(status=404)
        return self.objects[name]

    def _patch(self, name: str, namespace: str, body: Any) -> None:
        self.patches.append((name, body))

    read_namespaced_deployment = read_namespaced_controller_revision = _read
    patch_namespaced_deployment = patch_namespaced_controller_revision = _patch


class FakeKube(Kube):
    def __init__(self, objects: dict[str, Any]) -> None:
        super().__init__(client.ApiClient())
        self.apps = FakeApps(objects)
        self.events: list[Event] = []

    def emit(self, rollout: Any, event: Event) -> None:
        self.events.append(event)


def child(name: str, revision: str, owner: str = "") -> Child:
    return Child(name, revision, "stable", 4, 4, 4, True, "", owner=owner)


def test_orphans_named_and_labelled_for_the_rollout_are_adopted() -> None:
    kube = FakeKube({f"web-{A}": obj(f"web-{A}", A), f"web-{B}": obj(f"web-{B}", B)})
    children = [child(f"web-{A}", A), child(f"web-{B}", B, owner="someone-else")]
    kube.apps.objects[f"web-{B}"] = obj(f"web-{B}", B, owner="someone-else")
    history: list[dict[str, Any]] = [
        {"metadata": {"name": f"web-{A}", "labels": {"ramp.dev/revision": A}}},
        {
            "metadata": {
                "name": f"web-{B}",
                "labels": {"ramp.dev/revision": B},
                "ownerReferences": [{"uid": "someone-else", "controller": True}],
            }
        },
    ]
    got_children, got_history = adopt_orphans(kube, ROLLOUT, children, history)
    assert [c.owner for c in got_children] == [UID, "someone-else"]
    owners = [h["metadata"].get("ownerReferences") for h in got_history]
    assert owners[0] == [{"uid": UID, "controller": True}]
    assert owners[1] == [{"uid": "someone-else", "controller": True}]
    assert [name for name, _ in kube.apps.patches] == [f"web-{A}", f"web-{A}"]
    ref = kube.apps.patches[0][1]["metadata"]
    assert ref["resourceVersion"] == "7"
    assert ref["ownerReferences"][0]["uid"] == UID and ref["ownerReferences"][0]["controller"]
    assert [e.reason for e in kube.events] == ["Adopted", "Adopted"]


def test_look_alikes_and_deleting_rollouts_adopt_nothing() -> None:
    kube = FakeKube({"look-alike": obj("look-alike", A), f"web-{A}": obj(f"web-{A}", A)})
    # Another name than <rollout>-<revision>: a look-alike stays foreign.
    got, _ = adopt_orphans(kube, ROLLOUT, [child("look-alike", A)], [])
    assert got[0].owner == "" and not kube.apps.patches
    # Owned by someone meanwhile (the fresh read decides): not adopted.
    kube.apps.objects[f"web-{A}"] = obj(f"web-{A}", A, owner="other")
    got, _ = adopt_orphans(kube, ROLLOUT, [child(f"web-{A}", A)], [])
    assert got[0].owner == "" and not kube.apps.patches
    # A Rollout being deleted adopts nothing.
    kube.apps.objects[f"web-{A}"] = obj(f"web-{A}", A)
    deleting = {
        **ROLLOUT,
        "metadata": {**ROLLOUT["metadata"], "deletionTimestamp": "2026-01-01T00:00:00Z"},
    }
    got, _ = adopt_orphans(kube, deleting, [child(f"web-{A}", A)], [])
    assert got[0].owner == "" and not kube.apps.patches


def test_a_conflict_leaves_the_orphan_for_the_next_pass() -> None:
    kube = FakeKube({f"web-{A}": obj(f"web-{A}", A)})

    def conflict(name: str, namespace: str, body: Any) -> None:
        raise ApiException(status=409)

    kube.apps.patch_namespaced_deployment = conflict
    got, _ = adopt_orphans(kube, ROLLOUT, [child(f"web-{A}", A)], [])
    assert got[0].owner == "" and not kube.events


def test_without_a_status_stale_owners_in_the_index_are_read_afresh() -> None:
    """Re-applied after an orphan-delete: the index may still show the old owner; the
    fresh read shows the orphan, which is adopted before anything is planned."""
    kube = FakeKube({f"web-{A}": obj(f"web-{A}", A)})
    fresh = [child(f"web-{A}", A)]
    fresh_history = [{"metadata": {"name": f"web-{A}", "labels": {"ramp.dev/revision": A}}}]
    kube.list_children = lambda namespace, rollout: fresh  # type: ignore[method-assign]
    kube.list_history = lambda namespace, rollout: fresh_history  # type: ignore[method-assign]
    stale = [child(f"web-{A}", A, owner="old-uid")]
    stale_history: list[dict[str, Any]] = [
        {
            "metadata": {
                "name": f"web-{A}",
                "labels": {"ramp.dev/revision": A},
                "ownerReferences": [{"uid": "old-uid", "controller": True}],
            }
        }
    ]
    restored = {"metadata": ROLLOUT["metadata"]}  # no status
    got, _ = adopt_orphans(kube, restored, stale, [])
    assert got[0].owner == UID
    _, history = adopt_orphans(kube, restored, [], stale_history)
    assert history[0]["metadata"]["ownerReferences"] == [{"uid": UID, "controller": True}]
    # With a status, the index is trusted: an object of another owner stays foreign.
    got, _ = adopt_orphans(kube, ROLLOUT, stale, [])
    assert got[0].owner == "old-uid"


def test_history_of_another_owner_is_never_written_to() -> None:
    """A ControllerRevision with this Rollout's name but another owner (a create answered
    409): its marks are not patched."""
    from ramp.core.plan import HistoryWrite

    kube = FakeKube({f"web-{A}": obj(f"web-{A}", A, owner="old-uid")})

    def exists(namespace: str, body: Any, **_: Any) -> None:
        raise ApiException(status=409)

    kube.apps.create_namespaced_controller_revision = exists
    kube.apps.read_namespaced_controller_revision = lambda name, namespace, **_: kube.apps.objects[
        name
    ]
    kube.apps.patch_namespaced_controller_revision = lambda name, namespace, body, **_: (
        kube.apps.patches.append((name, body))
    )
    write = HistoryWrite(A, {"metadata": {}}, {"ramp.dev/promoted-at": "now"})
    kube.write_history(ROLLOUT, write, {"metadata": {}}, 1, False)
    assert not kube.apps.patches
    kube.apps.objects[f"web-{A}"] = obj(f"web-{A}", A, owner=UID)
    kube.write_history(ROLLOUT, write, {"metadata": {}}, 1, False)
    assert [name for name, _ in kube.apps.patches] == [f"web-{A}"]


def test_an_orphan_whose_template_is_not_its_revisions_is_not_adopted() -> None:
    """Issue 19, class 9: an unowned look-alike named like a revision, or an orphan
    someone edited (``kubectl set image``), is adopted whatever its template on f61a406.
    Only a child whose pod template is the revision's is adopted; the rest stays foreign
    (never touched, named by the ForeignChildren condition)."""
    edited = obj(f"web-{A}", A, image="evil:1")
    kube = FakeKube({f"web-{A}": edited})
    # The index saw it before the edit (no drift yet): the fresh read decides.
    got, _ = adopt_orphans(kube, ROLLOUT, [child(f"web-{A}", A)], [])
    assert got[0].owner == "" and not kube.apps.patches
    # A look-alike recording another revision's template under this revision's name.
    forged = obj(f"web-{A}", A)
    forged["metadata"]["annotations"]["ramp.dev/template"] = json.dumps(TEMPLATES["b"])
    kube.apps.objects[f"web-{A}"] = forged
    got, history = adopt_orphans(
        kube,
        ROLLOUT,
        [child(f"web-{A}", A)],
        [{"metadata": {"name": f"web-{A}", "labels": {"ramp.dev/revision": A}}}],
    )
    assert got[0].owner == "" and not kube.apps.patches
    assert not history[0]["metadata"].get("ownerReferences")
    # The same, seen edited by the index: not even read.
    drifted = Child(f"web-{A}", A, "stable", 4, 4, 4, True, drift="spec.containers[0].image")
    got, _ = adopt_orphans(kube, ROLLOUT, [drifted], [])
    assert got[0].owner == "" and not kube.apps.patches
