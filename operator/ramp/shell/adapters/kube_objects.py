"""What the adapter reads and writes, as plain data: pure conversions of API objects.

Summaries kept in the watch-fed indexes (a child Deployment, a ControllerRevision, an
EndpointSlice), their conversion into what the planner reads, the child and history
naming, and the status merge patch. No API calls here: :mod:`ramp.shell.adapters.kube` makes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ramp.api.labels import (
    ABORTED_ANNOTATION,
    PROMOTED_ANNOTATION,
    REVISION_LABEL,
    ROLE_LABEL,
    TEMPLATE_ANNOTATION,
)
from ramp.core.drift import template_drift
from ramp.core.names import child_name, rollout_label
from ramp.core.plan import Child, HistoryEntry

__all__ = ["child_name", "rollout_label"]


def summarize_deployment(body: Mapping[str, Any]) -> dict[str, Any]:
    """The few fields of a child Deployment that the planner reads (kept in the index:
    a whole Deployment per child would cost a lot of memory at a thousand Rollouts)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    labels = meta.get("labels") or {}
    return {
        "kind": child_kind(body),
        "metadata": {
            "name": meta.get("name"),
            "resourceVersion": meta.get("resourceVersion"),
            "generation": meta.get("generation"),
            "creationTimestamp": meta.get("creationTimestamp"),
            "labels": {k: labels[k] for k in (REVISION_LABEL, ROLE_LABEL) if k in labels},
            "ownerReferences": [
                {"uid": o.get("uid"), "controller": True}
                for o in meta.get("ownerReferences") or []
                if o.get("controller")
            ],
            "deletionTimestamp": meta.get("deletionTimestamp"),
        },
        "spec": {"replicas": spec.get("replicas")},
        "status": {k: status.get(k) for k in ("readyReplicas", "replicas", "observedGeneration")},
        DRIFT: deployment_drift(body),
        POD_LABELS: pod_template_labels(body),
        PROGRESSED: deployment_progressed(body),
    }


DRIFT = "rampDrift"
"""The key under which a summary keeps :func:`deployment_drift` (the template is not kept)."""
POD_LABELS = "rampPodLabels"
PROGRESSED = "rampProgressed"
"""The key under which a summary keeps :func:`deployment_progressed`."""
"""The key under which a summary keeps its pod template's labels (the template is not kept)."""


def pod_template_labels(body: Mapping[str, Any]) -> list[list[str]] | None:
    """The labels of a Deployment's pod template as sorted pairs (a summary's copy)."""
    spec = body.get("spec") or {}
    if "template" not in spec:
        kept = body.get(POD_LABELS)
        return [list(pair) for pair in kept] if kept is not None else None
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    return [[str(k), str(v)] for k, v in sorted(labels.items())]


def deployment_drift(body: Mapping[str, Any]) -> str | None:
    """Why a Deployment's pod template is not the revision's it is labelled with (someone
    edited it), or None; a summary carries the answer computed from the whole object."""
    if "template" not in (body.get("spec") or {}):
        drift = body.get(DRIFT)
        return str(drift) if drift else None
    meta = body.get("metadata") or {}
    revision = (meta.get("labels") or {}).get(REVISION_LABEL, "")
    written = decode_template((meta.get("annotations") or {}).get(TEMPLATE_ANNOTATION))
    return template_drift(written, (body.get("spec") or {}).get("template"), revision)


def deployment_progressed(body: Mapping[str, Any]) -> str:
    """When the Deployment controller last saw the Deployment progress (a pod of its
    template created, or one more ready or available): its ``Progressing`` condition's
    ``lastUpdateTime`` ("" when it has none)."""
    if PROGRESSED in body:
        return str(body.get(PROGRESSED) or "")
    for cond in (body.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Progressing":
            return str(cond.get("lastUpdateTime") or "")
    return ""


CHILD_KINDS = ("Deployment", "ReplicaSet")
"""The kinds a child can be (``--children``: which one Ramp creates)."""
CHILD_CALLS = {"Deployment": "deployment", "ReplicaSet": "replica_set"}
"""Each kind's name in ``AppsV1Api``'s calls (``patch_namespaced_replica_set``)."""
CHILD_PLURALS = {"Deployment": "deployments", "ReplicaSet": "replicasets"}
"""Each kind's collection (its watch's path)."""


def child_kind(body: Mapping[str, Any]) -> str:
    """A child object's ``kind`` (a list's items carry none: the lister sets it)."""
    kind = str(body.get("kind") or "Deployment")
    return kind if kind in CHILD_KINDS else "Deployment"


def child_from_deployment(body: Mapping[str, Any]) -> Child:
    """Summarise a child Deployment or ReplicaSet (as a dict) into what the planner needs."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    labels = meta.get("labels") or {}
    return Child(
        name=meta.get("name", ""),
        revision=labels.get(REVISION_LABEL, ""),
        role=labels.get(ROLE_LABEL),
        replicas=int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1),
        ready=int(status.get("readyReplicas") or 0),
        current=int(status.get("replicas") or 0),
        settled=int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0),
        created=str(meta.get("creationTimestamp") or ""),
        owner=controller_uid(meta),
        deleting=bool(meta.get("deletionTimestamp")),
        version=_version(meta.get("resourceVersion")),
        drift=deployment_drift(body),
        pod_labels=_pairs(pod_template_labels(body)),
        progressed=deployment_progressed(body),
        kind=child_kind(body),
    )


def _pairs(labels: list[list[str]] | None) -> tuple[tuple[str, str], ...] | None:
    return None if labels is None else tuple((k, v) for k, v in labels)


def _version(raw: Any) -> int:
    """A resourceVersion as a number (etcd's are integers; 0 when it is not one)."""
    try:
        return int(raw or 0)
    except (TypeError, ValueError):
        return 0


def controller_uid(meta: Mapping[str, Any]) -> str:
    """The uid of an object's controller ownerReference ("" when it has none)."""
    for ref in meta.get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid") or "")
    return ""


def summarize_history(body: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a ControllerRevision the planner reads (kept in the index)."""
    meta = body.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "labels": {k: labels[k] for k in (REVISION_LABEL,) if k in labels},
            "annotations": {
                k: annotations[k]
                for k in (PROMOTED_ANNOTATION, ABORTED_ANNOTATION, TEMPLATE_ANNOTATION)
                if k in annotations
            },
            "ownerReferences": [
                {"uid": o.get("uid"), "controller": True}
                for o in meta.get("ownerReferences") or []
                if o.get("controller")
            ],
        },
        "revision": body.get("revision"),
    }


def encode_template(template: Mapping[str, Any]) -> str:
    """A template as kept on its ControllerRevision: the JSON as written, in the
    ``ramp.dev/template`` annotation.

    Not in ``data``: ``data`` is immutable, and the API server compares it byte for byte
    after decoding and re-encoding the object, so an object written with this client's
    spacing would make every later patch of the revision's marks fail."""
    return json.dumps(template, sort_keys=True, separators=(",", ":"))


def decode_template(raw: Any) -> Mapping[str, Any] | None:
    """The template kept by :func:`encode_template` (None when unreadable)."""
    try:
        value = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def merge_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386) from ``old`` to ``new``: keys that disappeared, at any
    depth of nested objects, are sent as null (lists are replaced whole).

    >>> merge_patch({"a": {"x": 1, "y": 2}, "b": 1}, {"a": {"x": 1}})
    {'b': None, 'a': {'y': None}}
    """
    patch: dict[str, Any] = {k: None for k in old if k not in new}
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, Mapping) and isinstance(before, Mapping):
            nested = merge_patch(before, value)
            if nested:
                patch[key] = nested
        elif value != before:
            patch[key] = value
    return patch


def endpoint_pods(body: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(pod name, ready) of each endpoint of an EndpointSlice."""
    out = []
    for endpoint in body.get("endpoints") or []:
        ref = endpoint.get("targetRef") or {}
        if ref.get("kind") == "Pod" and ref.get("name"):
            ready = (endpoint.get("conditions") or {}).get("ready")
            out.append((str(ref["name"]), ready is not False))
    return out


def endpoints_by_revision(
    pods: list[tuple[str, bool]], revision_of: Mapping[str, str]
) -> dict[str, int]:
    """Ready endpoints per revision, the pods told apart by their ``ramp.dev/revision``
    label (``revision_of``: pod name -> label), never by a name prefix: the API server
    cuts generated pod names at 58 characters, so a long Rollout's pods do not start with
    their Deployment's name.

    >>> endpoints_by_revision([("p1", True), ("p2", True), ("p3", False), ("x", True)],
    ...                       {"p1": "a", "p2": "b", "p3": "a"})
    {'a': 1, 'b': 1}
    """
    counts: dict[str, int] = {}
    for pod, ready in pods:
        revision = revision_of.get(pod)
        if ready and revision:
            counts[revision] = counts.get(revision, 0) + 1
    return counts


def others_ready(pods: list[tuple[str, bool]], revision_of: Mapping[str, str]) -> int:
    """Ready endpoints whose pod has no ``ramp.dev/revision`` label (not Ramp's).

    >>> others_ready([("p1", True), ("x", True), ("y", False)], {"p1": "a"})
    1
    """
    return sum(1 for pod, ready in pods if ready and not revision_of.get(pod))


def history_entry(body: Mapping[str, Any], owner: str) -> HistoryEntry | None:
    """A ControllerRevision as a history entry; None when the Rollout does not own it."""
    meta = body.get("metadata") or {}
    if controller_uid(meta) != owner:
        return None
    annotations = meta.get("annotations") or {}
    template = decode_template(annotations.get(TEMPLATE_ANNOTATION))
    return HistoryEntry(
        revision=(meta.get("labels") or {}).get(REVISION_LABEL, ""),
        number=int(body.get("revision") or 0),
        template=template if isinstance(template, Mapping) else None,
        promoted_at=annotations.get(PROMOTED_ANNOTATION),
        aborted=annotations.get(ABORTED_ANNOTATION),
    )
