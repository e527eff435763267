"""The Lease: its store (``coordination.k8s.io/v1``, read and guarded updates on a
thread of its own) and the record elections compare (:mod:`ramp.shell.runtime.leader`)."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

log = logging.getLogger("ramp.leader")  # its name before the shell package

DEFAULT_LEASE_NAME = "ramp-operator"
SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def default_identity() -> str:
    """``$POD_NAME`` in a cluster, else host name and a random suffix (unique per process)."""
    pod = os.environ.get("POD_NAME")
    if pod:
        return pod
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


def default_namespace() -> str:
    """``$POD_NAMESPACE``, else the in-cluster service account's namespace, else default."""
    ns = os.environ.get("POD_NAMESPACE")
    if ns:
        return ns
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE) as f:
            return f.read().strip() or "default"
    except OSError:
        return "default"


class LeaseConflict(Exception):
    """The Lease changed since it was read (409), or was created by someone else."""


class LeaseStore(Protocol):
    """Reads and resourceVersion-guarded writes of one Lease (synchronous)."""

    def get(self) -> dict[str, Any] | None: ...

    def create(
        self, spec: dict[str, Any], annotations: dict[str, str] | None = None
    ) -> dict[str, Any]: ...

    def update(self, lease: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]: ...


class KubeLeaseStore:
    """:class:`LeaseStore` over the Kubernetes API (``coordination.k8s.io/v1``)."""

    def __init__(
        self, api_client: Any, namespace: str, name: str, request_timeout: float = 5.0
    ) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.api: Any = client.CoordinationV1Api(api_client)
        self.namespace = namespace
        self.name = name
        self.timeout = request_timeout

    def _dict(self, obj: Any) -> dict[str, Any]:
        result: dict[str, Any] = self.api_client.sanitize_for_serialization(obj)
        return result

    def get(self) -> dict[str, Any] | None:
        from kubernetes.client.exceptions import ApiException

        try:
            obj = self.api.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.timeout
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return self._dict(obj)

    def create(
        self, spec: dict[str, Any], annotations: dict[str, str] | None = None
    ) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        meta: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if annotations:
            meta["annotations"] = annotations
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": meta,
            "spec": spec,
        }
        try:
            obj = self.api.create_namespaced_lease(
                self.namespace, body, _request_timeout=self.timeout
            )
        except ApiException as exc:
            if exc.status == 409:
                raise LeaseConflict("the Lease was created by another candidate") from exc
            raise
        return self._dict(obj)

    def update(self, lease: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
        from kubernetes.client.exceptions import ApiException

        meta = lease["metadata"]
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "resourceVersion": meta["resourceVersion"],
                "labels": meta.get("labels"),
                "annotations": meta.get("annotations"),
            },
            "spec": spec,
        }
        try:
            obj = self.api.replace_namespaced_lease(
                self.name, self.namespace, body, _request_timeout=self.timeout
            )
        except ApiException as exc:
            if exc.status == 409:
                raise LeaseConflict("the Lease changed since it was read") from exc
            raise
        return self._dict(obj)


def _micro_time(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Record:
    """The part of a Lease's spec that elections compare."""

    holder: str | None
    duration: int
    renew_time: str | None
    acquire_time: str | None
    transitions: int

    @classmethod
    def of(cls, lease: dict[str, Any]) -> Record:
        spec = lease.get("spec") or {}
        return cls(
            holder=spec.get("holderIdentity") or None,
            duration=int(spec.get("leaseDurationSeconds") or 0),
            renew_time=spec.get("renewTime"),
            acquire_time=spec.get("acquireTime"),
            transitions=int(spec.get("leaseTransitions") or 0),
        )


__all__ = [
    "DEFAULT_LEASE_NAME",
    "KubeLeaseStore",
    "LeaseConflict",
    "LeaseStore",
    "Record",
    "default_identity",
    "default_namespace",
]
