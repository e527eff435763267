"""The manifests the adapter creates: a revision's Deployment and its ControllerRevision,
owned by the Rollout (pure: no API call here)."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from ramp import GROUP, VERSION
from ramp.api.labels import REVISION_LABEL, ROLE_LABEL, ROLLOUT_LABEL, TEMPLATE_ANNOTATION
from ramp.core.names import child_name, rollout_label
from ramp.core.plan import HistoryWrite, Role
from ramp.shell.adapters.kube_objects import encode_template


def owner_ref(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Rollout",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def deployment_manifest(
    rollout: Mapping[str, Any],
    revision: str,
    template: Mapping[str, Any],
    replicas: int,
    role: Role,
    kind: str = "Deployment",
) -> dict[str, Any]:
    """A revision's Deployment (or ReplicaSet: ``kind``): the Rollout's selector and pod
    template, each with the revision label, and the template as written in an annotation.
    A ReplicaSet has no rollout of its own to configure: replicas, selector, template."""
    meta = rollout["metadata"]
    name, namespace = meta["name"], meta["namespace"]
    selector = copy.deepcopy(rollout["spec"]["selector"])
    selector.setdefault("matchLabels", {})[REVISION_LABEL] = revision
    pod_template = copy.deepcopy(dict(template))
    pod_meta = pod_template.setdefault("metadata", {})
    pod_meta.setdefault("labels", {})[REVISION_LABEL] = revision
    spec: dict[str, Any] = {"replicas": replicas, "selector": selector, "template": pod_template}
    if kind == "Deployment":
        spec["revisionHistoryLimit"] = 1
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": {
            "name": child_name(name, revision),
            "namespace": namespace,
            "labels": {
                ROLLOUT_LABEL: rollout_label(name),
                REVISION_LABEL: revision,
                ROLE_LABEL: role,
            },
            "annotations": {
                TEMPLATE_ANNOTATION: json.dumps(template, sort_keys=True, separators=(",", ":"))
            },
            "ownerReferences": [owner_ref(meta)],
        },
        "spec": spec,
    }


def history_manifest(
    rollout: Mapping[str, Any],
    write: HistoryWrite,
    template: Mapping[str, Any],
    number: int,
) -> dict[str, Any]:
    """A revision's ControllerRevision: its template as written, its marks."""
    meta = rollout["metadata"]
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": child_name(meta["name"], write.revision),
            "namespace": meta["namespace"],
            "labels": {
                ROLLOUT_LABEL: rollout_label(meta["name"]),
                REVISION_LABEL: write.revision,
            },
            "annotations": {
                **{k: v for k, v in write.annotations.items() if v is not None},
                TEMPLATE_ANNOTATION: encode_template(template),
            },
            "ownerReferences": [owner_ref(meta)],
        },
        "data": {},
        "revision": number,
    }


__all__ = ["deployment_manifest", "history_manifest", "owner_ref"]
