"""The adapter for ``spec.workloadRef`` (part of the shell, beside :mod:`ramp.shell.adapters.kube`).

Reads the referenced Deployment into a :class:`~ramp.core.workload_model.Workload`
(its template, counts, pause, Ramp's annotations and which field manager last set
``spec.replicas`` / ``spec.paused``), and executes a plan's workload part: the give-back
finalizer on the Rollout and the merge patch of the Deployment. Ordering: the finalizer
is added before the Deployment is first touched, and removed only after it was released.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from ramp import GROUP, VERSION
from ramp.api.labels import ROLLOUT_LABEL
from ramp.core.workload_model import (
    GIVE_BACK_FINALIZER,
    MANAGED_ANNOTATION,
    ORIGINAL_ANNOTATION,
    SCALED_TO_ANNOTATION,
    WATCHED_VALUE,
    Workload,
    WorkloadPatch,
)
from ramp.shell.adapters.kube import PLURAL, TIMEOUT, Kube

log = logging.getLogger("ramp.kube_workload")  # its name before the shell package
FIELD_MANAGER = "ramp-operator"
MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def field_managers(managed: Any) -> tuple[str | None, str | None]:
    """Who last set ``spec.replicas`` and ``spec.paused`` (managedFields; None: unknown)."""
    replicas = paused = None
    for entry in managed or []:
        spec = ((entry or {}).get("fieldsV1") or {}).get("f:spec") or {}
        manager = entry.get("manager")
        if "f:replicas" in spec and manager != FIELD_MANAGER:
            replicas = manager
        if "f:paused" in spec and manager != FIELD_MANAGER:
            paused = manager
    return replicas, paused


def summarize_workload(body: Mapping[str, Any]) -> Workload:
    """A Deployment (as a dict) as the planner sees it."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    annotations = meta.get("annotations") or {}
    labels = meta.get("labels") or {}
    template = copy.deepcopy(spec.get("template") or {})
    tmeta = template.get("metadata")
    if isinstance(tmeta, dict) and tmeta.get("creationTimestamp") is None:
        tmeta.pop("creationTimestamp", None)
    replicas_manager, paused_manager = field_managers(meta.get("managedFields"))
    return Workload(
        name=str(meta.get("name", "")),
        template=template,
        selector=spec.get("selector"),
        replicas=int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1),
        ready=int(status.get("readyReplicas") or 0),
        current=int(status.get("replicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
        paused=bool(spec.get("paused")),
        generation=int(meta.get("generation") or 0),
        observed_generation=int(status.get("observedGeneration") or 0),
        managed_by=annotations.get(MANAGED_ANNOTATION),
        scaled_to=_int(annotations.get(SCALED_TO_ANNOTATION)),
        original=_int(annotations.get(ORIGINAL_ANNOTATION)),
        replicas_manager=replicas_manager,
        paused_manager=paused_manager,
        watched=labels.get(ROLLOUT_LABEL) == WATCHED_VALUE,
    )


class Workloads:
    """Reads and writes of adopted Deployments and the give-back finalizer."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    @staticmethod
    def held(body: Mapping[str, Any]) -> str | None:
        """The name of the Deployment a Rollout references or still holds (None: none, and
        :meth:`observe` reads nothing unless the give-back finalizer is on the Rollout)."""
        spec = body.get("spec") or {}
        ref = spec.get("workloadRef") or {}
        name = ref.get("name") or ((body.get("status") or {}).get("workload") or {}).get("name")
        return str(name) if name else None

    @staticmethod
    def holding(body: Mapping[str, Any]) -> bool:
        """Whether a Deployment may be held: one is named, or the give-back finalizer is on
        the Rollout (its ``workloadRef`` removed and its status lost: found by its mark)."""
        finalizers = (body.get("metadata") or {}).get("finalizers") or []
        return bool(Workloads.held(body)) or GIVE_BACK_FINALIZER in finalizers

    def marked(self, namespace: str, rollout: str) -> str | None:
        """The Deployment annotated as held by ``rollout`` (None: none)."""
        self.kube.counters.reads += 1
        found = self.kube.apps.list_namespaced_deployment(
            namespace, label_selector=f"{ROLLOUT_LABEL}={WATCHED_VALUE}", _request_timeout=TIMEOUT
        )
        for item in found.items:
            meta = self.kube.api_client.sanitize_for_serialization(item).get("metadata") or {}
            if (meta.get("annotations") or {}).get(MANAGED_ANNOTATION) == rollout:
                return str(meta.get("name"))
        return None

    def observe(self, body: dict[str, Any]) -> tuple[dict[str, Any], Workload | None]:
        """The referenced (or still held) Deployment; with workloadRef and no selector,
        a copy of the body whose selector is the Deployment's. A Rollout with the give-back
        finalizer that names none finds it by its annotation (nothing else would give it
        back: it would stay paused)."""
        spec = body.get("spec") or {}
        ref = spec.get("workloadRef") or {}
        namespace = body["metadata"]["namespace"]
        name = self.held(body)
        if not name and self.holding(body):
            name = self.marked(namespace, body["metadata"]["name"])
        if not name:
            return body, None
        self.kube.counters.reads += 1
        try:
            dep = self.kube.apps.read_namespaced_deployment(
                name, namespace, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            return body, Workload(name=name, found=False)
        workload = summarize_workload(self.kube.api_client.sanitize_for_serialization(dep))
        if ref and not spec.get("selector") and workload.selector:
            body = {**body, "spec": {**spec, "selector": copy.deepcopy(workload.selector)}}
        return body, workload

    def add_finalizer(self, body: dict[str, Any]) -> None:
        """Put the give-back finalizer on the Rollout (before the Deployment is touched)."""
        finalizers = list(body["metadata"].get("finalizers") or [])
        op = (
            {"op": "add", "path": "/metadata/finalizers/-", "value": GIVE_BACK_FINALIZER}
            if finalizers
            else {"op": "add", "path": "/metadata/finalizers", "value": [GIVE_BACK_FINALIZER]}
        )
        self._patch_rollout(body, [op])

    def remove_finalizer(self, body: dict[str, Any], index: int) -> None:
        """Take the give-back finalizer (at ``index``) off, if it is still there."""
        path = f"/metadata/finalizers/{index}"
        self._patch_rollout(
            body,
            [
                {"op": "test", "path": path, "value": GIVE_BACK_FINALIZER},
                {"op": "remove", "path": path},
            ],
        )

    def patch_deployment(self, namespace: str, patch: WorkloadPatch) -> None:
        spec: dict[str, Any] = {}
        if patch.replicas is not None:
            spec["replicas"] = patch.replicas
        if patch.paused is not None:
            spec["paused"] = patch.paused
        body: dict[str, Any] = {}
        if spec:
            body["spec"] = spec
        meta: dict[str, Any] = {}
        if patch.annotations:
            meta["annotations"] = dict(patch.annotations)
        if patch.labels:
            meta["labels"] = dict(patch.labels)
        if meta:
            body["metadata"] = meta
        self.kube.counters.write("patch-workload")
        try:
            self.kube.apps.patch_namespaced_deployment(
                patch.name,
                namespace,
                body,
                field_manager=FIELD_MANAGER,
                _content_type=MERGE,
                _request_timeout=self.kube._timeout("patch Deployment"),
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _patch_rollout(self, body: dict[str, Any], ops: list[dict[str, Any]]) -> None:
        meta = body["metadata"]
        self.kube.counters.write("patch-finalizer")
        try:
            self.kube.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                meta["namespace"],
                PLURAL,
                meta["name"],
                ops,
                _content_type=JSON_PATCH,
                _request_timeout=self.kube._timeout("patch Rollout finalizers"),
            )
        except ApiException as exc:
            if exc.status in (404, 422):  # gone, or the list changed under us (test op)
                log.info("finalizer patch of %s: %s", meta["name"], exc.reason)
                return
            raise


__all__ = ["Workloads", "field_managers", "summarize_workload"]
