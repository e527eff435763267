"""Adoption of orphaned children and history (the shell, before planning).

A Rollout deleted with ``propagationPolicy=Orphan`` and applied again (from a backup, to
change an immutable field, by a GitOps tool that replaces) finds its Deployments and
ControllerRevisions still there but without an owner: garbage collection removed the
ownerReferences. Like a Deployment adopting its ReplicaSets (Kubernetes'
``ControllerRefManager``), the Rollout adopts them — and only them: objects with no
controller at all, labelled for this Rollout and named ``<rollout>-<revision>`` as Ramp
names them. Objects controlled by anyone else (another uid) stay foreign: never touched,
never trusted. Without adoption the new Rollout would take its template as the first
revision: an aborted or unproven template would become stable, and its Deployment name
would collide with the orphan that still serves.

Each adoption re-reads the object and patches the ownerReference with its
``resourceVersion`` as a precondition, so an object changed meanwhile is left for the
next pass.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

from kubernetes.client.exceptions import ApiException

from ramp.api.labels import REVISION_LABEL, ROLLOUT_LABEL, TEMPLATE_ANNOTATION, revision_hash
from ramp.core.plan import Child, Event
from ramp.shell.adapters.kube import Kube
from ramp.shell.adapters.kube_objects import (
    child_name,
    controller_uid,
    decode_template,
    deployment_drift,
    rollout_label,
)
from ramp.shell.adapters.manifests import owner_ref

log = logging.getLogger("ramp.adopt")  # its name before the shell package


def _orphan(meta: dict[str, Any], rollout: str) -> bool:
    labels = meta.get("labels") or {}
    revision = labels.get(REVISION_LABEL) or ""
    return (
        bool(revision)
        and labels.get(ROLLOUT_LABEL) == rollout_label(rollout)
        and meta.get("name") == child_name(rollout, revision)
        and not controller_uid(meta)
        and not meta.get("deletionTimestamp")
    )


def _revisions(obj: dict[str, Any], kind: str) -> bool:
    """Whether an orphan holds its revision's template (issue 19): a Deployment whose pod
    template is the one its revision was made from (no drift), a ControllerRevision whose
    template hashes to its revision. A look-alike named like a revision, or one someone
    edited, is not adopted: it stays foreign (condition ForeignChildren), never touched."""
    meta = obj.get("metadata") or {}
    revision = (meta.get("labels") or {}).get(REVISION_LABEL, "")
    if kind == "Deployment":
        drift = deployment_drift(obj)
        if drift is not None:
            log.warning("not adopting Deployment %s: %s", meta.get("name"), drift)
        return drift is None
    template = decode_template((meta.get("annotations") or {}).get(TEMPLATE_ANNOTATION))
    return template is not None and revision_hash(template) == revision


def _adopt(kube: Kube, rollout: dict[str, Any], kind: str, name: str) -> bool:
    """Set the Rollout as controller of one orphan; False when it is no orphan (any more)."""
    meta = rollout["metadata"]
    namespace = meta["namespace"]
    read, patch = {
        "Deployment": (
            kube.apps.read_namespaced_deployment,
            kube.apps.patch_namespaced_deployment,
        ),
        "ControllerRevision": (
            kube.apps.read_namespaced_controller_revision,
            kube.apps.patch_namespaced_controller_revision,
        ),
    }[kind]
    try:
        obj = kube.api_client.sanitize_for_serialization(read(name, namespace))
        if not _orphan(obj.get("metadata") or {}, meta["name"]) or not _revisions(obj, kind):
            return False
        body = {
            "metadata": {
                "ownerReferences": [owner_ref(meta)],
                "resourceVersion": obj["metadata"]["resourceVersion"],
            }
        }
        kube.counters.write(f"adopt-{kind.lower()}")
        patch(name, namespace, body)
    except ApiException as exc:
        if exc.status in (404, 409):
            return False  # gone, or changed meanwhile: the next pass looks again
        raise
    log.info("adopted orphaned %s %s/%s", kind, namespace, name)
    kube.emit(
        rollout,
        Event("Normal", "Adopted", f"orphaned {kind} {name} adopted (it had no owner)"),
    )
    return True


def adopt_orphans(
    kube: Kube, rollout: dict[str, Any], children: list[Child], history: list[dict[str, Any]]
) -> tuple[list[Child], list[dict[str, Any]]]:
    """Adopt this Rollout's orphaned children and history entries; returns both lists as
    they are once adopted (a Rollout being deleted adopts nothing)."""
    meta = rollout["metadata"]
    uid, name = str(meta.get("uid") or ""), meta["name"]
    if not uid or meta.get("deletionTimestamp"):
        return children, history
    if not rollout.get("status"):
        # New or re-applied: the watch-fed index may still show the ownerReferences that
        # garbage collection has just removed. Read afresh: planning without a status
        # from objects wrongly seen as foreign would take the template as stable.
        if any(c.owner != uid for c in children):
            children = kube.list_children(meta["namespace"], name)
        if any(controller_uid(h.get("metadata") or {}) != uid for h in history):
            history = kube.list_history(meta["namespace"], name)
    adopted_children = []
    for child in children:
        orphan = (
            not child.owner
            and not child.deleting
            and not child.drift
            and child.name == child_name(name, child.revision)
        )
        if orphan and _adopt(kube, rollout, "Deployment", child.name):
            child = dataclasses.replace(child, owner=uid)
        adopted_children.append(child)
    adopted_history = []
    for entry in history:
        entry_meta = entry.get("metadata") or {}
        labels = {**(entry_meta.get("labels") or {}), ROLLOUT_LABEL: name}
        if _orphan({**entry_meta, "labels": labels}, name) and _adopt(
            kube, rollout, "ControllerRevision", entry_meta["name"]
        ):
            entry = {
                **entry,
                "metadata": {**entry_meta, "ownerReferences": [{"uid": uid, "controller": True}]},
            }
        adopted_history.append(entry)
    return adopted_children, adopted_history
