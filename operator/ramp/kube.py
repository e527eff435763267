"""The adapter to the Kubernetes API: the only module that talks to the API server.

Everything here is synchronous (the official client); the handlers call it through
``asyncio.to_thread``. Writes are idempotent: deterministic names, create-if-absent,
patches that only send what differs, and the Rollout status patched with its
``resourceVersion`` so that a concurrent writer makes us re-plan instead of doubling a step.
"""

from __future__ import annotations

import copy
import json
import logging
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client as _client
from kubernetes import config as _config
from kubernetes.client.exceptions import ApiException

from ramp import GROUP, VERSION
from ramp.core.plan import (
    REVISION_LABEL,
    ROLE_LABEL,
    ROLLOUT_LABEL,
    TEMPLATE_ANNOTATION,
    Child,
    Event,
    Role,
)

log = logging.getLogger(__name__)
client: Any = _client
config: Any = _config
PLURAL = "rollouts"
TIMEOUT = (5, 30)
"""Connect and read timeouts of every API call: a stalled connection must not stall a
Rollout's worker."""


class Conflict(Exception):
    """The Rollout changed since it was read: plan again from a fresh read."""


class ApiCounters:
    """Counts of API calls, for the benchmark and the operator's metrics."""

    def __init__(self) -> None:
        self.reads = 0
        self.writes = 0
        self.writes_by_kind: dict[str, int] = {}

    def write(self, kind: str) -> None:
        self.writes += 1
        self.writes_by_kind[kind] = self.writes_by_kind.get(kind, 0) + 1


WRITE_MEMORY_SECONDS = 5.0
"""How long a write of ours explains a stale index (see :meth:`Kube._recent`)."""
POOL_SIZE = 32
"""HTTP connections kept to the API server: as many as the controller's API threads, so
that no call pays for a new TLS handshake."""


def load_client(kubeconfig: str | None = None) -> Any:
    """An ApiClient from a kubeconfig, or the in-cluster service account."""
    configuration = client.Configuration()
    if kubeconfig:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    configuration.connection_pool_maxsize = POOL_SIZE
    return client.ApiClient(configuration)


def summarize_deployment(body: Mapping[str, Any]) -> dict[str, Any]:
    """The few fields of a child Deployment that the planner reads (kept in the index:
    a whole Deployment per child would cost a lot of memory at a thousand Rollouts)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    labels = meta.get("labels") or {}
    return {
        "metadata": {
            "name": meta.get("name"),
            "generation": meta.get("generation"),
            "creationTimestamp": meta.get("creationTimestamp"),
            "labels": {k: labels[k] for k in (REVISION_LABEL, ROLE_LABEL) if k in labels},
        },
        "spec": {"replicas": spec.get("replicas")},
        "status": {k: status.get(k) for k in ("readyReplicas", "replicas", "observedGeneration")},
    }


def child_name(rollout: str, revision: str) -> str:
    """The name of a revision's Deployment: ``<rollout>-<hash>``."""
    return f"{rollout}-{revision}"


def child_from_deployment(body: Mapping[str, Any]) -> Child:
    """Summarise a Deployment (as a dict) into what the planner needs."""
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
    )


class Kube:
    """Reads and writes of Rollouts, their Deployments, Services and Events."""

    def __init__(self, api_client: Any, component: str = "ramp-operator") -> None:
        self.api_client = api_client
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.apps: Any = client.AppsV1Api(api_client)
        self.core: Any = client.CoreV1Api(api_client)
        self.component = component
        self.counters = ApiCounters()
        self._created: dict[tuple[str, str], tuple[Any, float]] = {}
        self._scaled: dict[tuple[str, str], tuple[Any, float]] = {}
        self._roles: dict[tuple[str, str], tuple[Any, float]] = {}

    # -- reads ---------------------------------------------------------------------

    def get_rollout(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.counters.reads += 1
        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, PLURAL, name, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    def get_analysis_template(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.counters.reads += 1
        try:
            obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, namespace, "analysistemplates", name, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return obj

    def list_children(self, namespace: str, rollout: str) -> list[Child]:
        self.counters.reads += 1
        items = self.apps.list_namespaced_deployment(
            namespace, label_selector=f"{ROLLOUT_LABEL}={rollout}", _request_timeout=TIMEOUT
        ).items
        return [child_from_deployment(self.api_client.sanitize_for_serialization(d)) for d in items]

    # -- children ------------------------------------------------------------------

    def create_child(
        self,
        rollout: Mapping[str, Any],
        revision: str,
        template: Mapping[str, Any],
        replicas: int,
        role: Role,
    ) -> None:
        """Create a revision's Deployment if it does not exist yet."""
        meta = rollout["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        selector = copy.deepcopy(rollout["spec"]["selector"])
        selector.setdefault("matchLabels", {})[REVISION_LABEL] = revision
        pod_template = copy.deepcopy(dict(template))
        pod_meta = pod_template.setdefault("metadata", {})
        pod_meta.setdefault("labels", {})[REVISION_LABEL] = revision
        body = {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": child_name(name, revision),
                "namespace": namespace,
                "labels": {ROLLOUT_LABEL: name, REVISION_LABEL: revision, ROLE_LABEL: role},
                "annotations": {
                    TEMPLATE_ANNOTATION: json.dumps(template, sort_keys=True, separators=(",", ":"))
                },
                "ownerReferences": [
                    {
                        "apiVersion": f"{GROUP}/{VERSION}",
                        "kind": "Rollout",
                        "name": name,
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {
                "replicas": replicas,
                "selector": selector,
                "template": pod_template,
                "revisionHistoryLimit": 1,
            },
        }
        key = (namespace, child_name(name, revision))
        if self._recent(self._created, key, None):
            return  # created a moment ago; the watch has not shown it yet
        self.counters.write("create-deployment")
        try:
            self.apps.create_namespaced_deployment(namespace, body, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status != 409:
                raise
        self._created[key] = (None, time.monotonic())

    def scale_child(
        self, namespace: str, child: Child, replicas: int | None, role: Role | None
    ) -> None:
        """Patch a child's replicas and role label, sending only what differs."""
        patch: dict[str, Any] = {}
        key = (namespace, child.name)
        if (
            replicas is not None
            and replicas != child.replicas
            and not self._recent(self._scaled, key, replicas)
        ):
            patch["spec"] = {"replicas": replicas}
        if role is not None and role != child.role and not self._recent(self._roles, key, role):
            patch["metadata"] = {"labels": {ROLE_LABEL: role}}
        if not patch:
            return
        self.counters.write("scale-deployment")
        self.apps.patch_namespaced_deployment(
            child.name, namespace, patch, _request_timeout=TIMEOUT
        )
        now = time.monotonic()
        if len(self._scaled) > 4096:  # forget what can no longer matter
            for memory in (self._scaled, self._roles, self._created):
                for old in [k for k, (_, at) in list(memory.items()) if now - at > 60]:
                    memory.pop(old, None)
        if "spec" in patch:
            self._scaled[key] = (replicas, now)
        if "metadata" in patch:
            self._roles[key] = (role, now)

    @staticmethod
    def _recent(
        memory: dict[tuple[str, str], tuple[Any, float]], key: tuple[str, str], value: Any
    ) -> bool:
        """Whether ``value`` was written to ``key`` within the last few seconds.

        The index of children is fed by a watch and lags behind our own writes; within
        this window a difference between it and what we wrote is that lag, not a change,
        so the same write is not sent again. After it, the index is trusted again (and a
        change made by someone else is corrected)."""
        seen = memory.get(key)
        if seen is None:
            return False
        written, at = seen
        if time.monotonic() - at > WRITE_MEMORY_SECONDS:
            memory.pop(key, None)
            return False
        return bool(written == value)

    def delete_child(self, namespace: str, name: str) -> None:
        self.counters.write("delete-deployment")
        try:
            self.apps.delete_namespaced_deployment(name, namespace, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                raise

    def pin_service(
        self, namespace: str, service: str, selector: Mapping[str, str], revision: str
    ) -> bool:
        """Point a Service's selector at one revision. False when the Service is absent."""
        self.counters.reads += 1
        try:
            svc = self.core.read_namespaced_service(service, namespace, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        want = {**selector, REVISION_LABEL: revision}
        if ((svc.spec.selector if svc.spec else None) or {}) != want:
            self.counters.write("patch-service")
            self.core.patch_namespaced_service(
                service, namespace, {"spec": {"selector": want}}, _request_timeout=TIMEOUT
            )
        return True

    # -- the Rollout -----------------------------------------------------------------

    def patch_status(
        self, rollout: Mapping[str, Any], status: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Write the status if it changed, guarded by the Rollout's resourceVersion.

        Fields that disappeared are sent as null (merge patch). Raises :class:`Conflict`
        when someone else changed the Rollout in between.
        """
        old = rollout.get("status") or {}
        if old == status:
            return None
        body: dict[str, Any] = {k: None for k in old if k not in status}
        body.update(status)
        meta = rollout["metadata"]
        self.counters.write("patch-status")
        try:
            result: dict[str, Any] = self.custom.patch_namespaced_custom_object_status(
                GROUP,
                VERSION,
                meta["namespace"],
                PLURAL,
                meta["name"],
                {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": body},
                _request_timeout=TIMEOUT,
            )
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(meta["name"]) from exc
            raise
        return result

    def emit(self, rollout: Mapping[str, Any], event: Event) -> None:
        """Post an Event about the Rollout (never fails the reconcile)."""
        meta = rollout["metadata"]
        now = datetime.now(UTC)
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": f"{meta['name']}.{uuid.uuid4().hex[:12]}",
                "namespace": meta["namespace"],
            },
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "Rollout",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.component,
            "firstTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "lastTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "count": 1,
        }
        self.counters.write("event")
        try:
            self.core.create_namespaced_event(meta["namespace"], body, _request_timeout=TIMEOUT)
        except ApiException as exc:
            log.warning("could not post event %s on %s: %s", event.reason, meta["name"], exc.reason)
