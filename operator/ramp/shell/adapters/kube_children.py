"""The child Deployments' and ReplicaSets' calls of :class:`ramp.shell.adapters.kube.Kube`:
list a Rollout's children, create one (the kind of ``--children``), scale, delete (as the
kind it is). Writes are idempotent: deterministic names, create-if-absent, patches that
only send what differs, and a write the watch has not shown yet is not sent again."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from ramp.api.labels import ROLE_LABEL, ROLLOUT_LABEL
from ramp.core.plan import Child, Role
from ramp.shell.adapters.expectations import Expectations
from ramp.shell.adapters.kube_client import TIMEOUT, ApiCounters, answer_version
from ramp.shell.adapters.kube_objects import (
    CHILD_CALLS,
    CHILD_KINDS,
    child_from_deployment,
    child_name,
    rollout_label,
)
from ramp.shell.adapters.manifests import deployment_manifest


class ChildCalls:
    """A mixin of :class:`ramp.shell.adapters.kube.Kube` (which sets these attributes)."""

    apps: Any
    api_client: Any
    counters: ApiCounters
    expectations: Expectations
    child_kind: str
    """The kind of the children it creates (``--children``); either kind is scaled and
    deleted as what it is."""

    def _timeout(self, what: str) -> tuple[float, float]:
        raise NotImplementedError

    def _child_call(self, verb: str, kind: str) -> Any:
        """``AppsV1Api``'s call of ``verb`` (list, create, patch, delete) for a child kind."""
        return getattr(self.apps, f"{verb}_namespaced_{CHILD_CALLS[kind]}")

    def list_children(self, namespace: str, rollout: str) -> list[Child]:
        """A Rollout's children of both kinds (a kind not served to Ramp: none of it)."""
        selector = f"{ROLLOUT_LABEL}={rollout_label(rollout)}"
        found: list[Child] = []
        for kind in CHILD_KINDS:
            self.counters.reads += 1
            try:
                items = self._child_call("list", kind)(
                    namespace, label_selector=selector, _request_timeout=TIMEOUT
                ).items
            except ApiException as exc:
                if kind == "Deployment" or exc.status not in (403, 404):
                    raise
                continue  # no ReplicaSets may be read here: the Deployments are all
            for item in items:
                body = self.api_client.sanitize_for_serialization(item)
                found.append(child_from_deployment({**body, "kind": kind}))
        return found

    # -- children ------------------------------------------------------------------

    def create_child(
        self,
        rollout: Mapping[str, Any],
        revision: str,
        template: Mapping[str, Any],
        replicas: int,
        role: Role,
    ) -> None:
        """Create a revision's child (a Deployment, or a ReplicaSet: ``child_kind``) if it
        does not exist yet."""
        meta = rollout["metadata"]
        name, namespace = meta["name"], meta["namespace"]
        kind = self.child_kind
        body = deployment_manifest(rollout, revision, template, replicas, role, kind)
        key = (namespace, child_name(name, revision))
        if self.expectations.pending(key) is not None:
            self.expectations.held_back += 1
            return  # created already; the watch has not shown it yet
        self.counters.write("create-deployment")
        try:
            version = answer_version(
                self._child_call("create", kind)(
                    namespace,
                    body,
                    _request_timeout=self._timeout(f"create {kind}"),
                    _preload_content=False,
                )
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
            version = 0  # it exists: any object of that name the watch shows will do
        # Met once the watch shows it (this new); until then the index is re-read around it.
        self.expectations.expect(key, version, rollout=name)

    def scale_child(
        self, namespace: str, child: Child, replicas: int | None, role: Role | None
    ) -> None:
        """Patch a child's replicas and role label, sending only what differs."""
        patch: dict[str, Any] = {}
        key = (namespace, child.name)
        # A write the watch has not caught up with explains a stale child: not sent again.
        exp = self.expectations.pending(key, child)
        if replicas is not None and replicas != child.replicas:
            if exp is not None and exp.replicas == replicas:
                self.expectations.held_back += 1
            else:
                patch["spec"] = {"replicas": replicas}
        if role is not None and role != child.role:
            if exp is not None and exp.role == role:
                self.expectations.held_back += 1
            else:
                patch["metadata"] = {"labels": {ROLE_LABEL: role}}
        if not patch:
            return
        self.counters.write("scale-deployment")
        version = answer_version(
            self._child_call("patch", child.kind)(
                child.name,
                namespace,
                patch,
                _request_timeout=self._timeout(f"scale {child.kind}"),
                _preload_content=False,
            )
        )
        # What the object holds now: this write, and a still-pending earlier one of ours.
        self.expectations.expect(
            key,
            version,
            replicas if "spec" in patch else (exp.replicas if exp else None),
            role if "metadata" in patch else (exp.role if exp else None),
        )

    def delete_child(self, namespace: str, name: str, kind: str = "Deployment") -> None:
        self.counters.write("delete-deployment")
        try:
            self._child_call("delete", kind)(
                name, namespace, _request_timeout=self._timeout(f"delete {kind}")
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
