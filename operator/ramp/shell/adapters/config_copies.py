"""Tracked configuration, the shell: read what a template references, make the copies.

:meth:`ConfigTracker.observe` reads each ConfigMap and Secret a tracked Rollout's pod
template references and hands their digests to the pure
:func:`ramp.core.config_tracking.track`; the planner then plans with the rewritten
template (its hash is the revision). :meth:`ConfigTracker.ensure` runs after the plan's
history writes, before the Deployment of a new revision is created (the executor's
``before_create``): it makes that revision's copies, immutable, each owned by the
ControllerRevision of every revision that reads it, so the garbage
collector removes a copy with the last history entry that uses it (``revisionHistoryLimit``
prunes both). A Secret's copy is a Secret of the same type; its data is never logged,
never in an Event, the status or a metric (errors name the object and the status code).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from ramp.api.labels import ROLLOUT_LABEL, revision_hash
from ramp.core.config_tracking import (
    COPY_LABEL,
    SOURCE_ANNOTATION,
    ConfigCopy,
    ConfigRef,
    Tracked,
    data_digest,
    referenced,
    track,
)
from ramp.core.model import Observed
from ramp.core.names import child_name, rollout_label

log = logging.getLogger(__name__)

RECHECK = 10.0
"""Seconds between two reads of a tracked Rollout's configuration when nothing else wakes
it (a change of a referenced object's data shows within this)."""
TIMEOUT = (5.0, 15.0)
Key = tuple[str, str]


class CopyFailed(RuntimeError):
    """A copy could not be made (the message names it and the status, never data)."""


def _plain(obj: Any, api_client: Any) -> dict[str, Any]:
    if isinstance(obj, dict):
        return obj
    return dict(api_client.sanitize_for_serialization(obj))


class ConfigTracker:
    """Reads and copies the configuration of tracked Rollouts through ``kube``
    (:class:`ramp.kube.Kube`: its ``core``/``apps`` clients and write counters)."""

    def __init__(self, kube: Any) -> None:
        self.kube = kube
        self._read: dict[Key, tuple[Tracked, dict[ConfigRef, dict[str, Any]]]] = {}
        self._owned: set[tuple[str, str, str, str]] = set()
        """(namespace, kind, copy, ControllerRevision uid) known to be in place."""

    # -- observe ---------------------------------------------------------------------

    def observe(self, namespace: str, rollout: str, template: Mapping[str, Any]) -> Tracked:
        """The template to plan with (rewritten to the copies), or the template as written
        with the problem of a missing referenced object."""
        digests: dict[ConfigRef, str | None] = {}
        bodies: dict[ConfigRef, dict[str, Any]] = {}
        for ref in referenced(template):
            body = self._get(namespace, ref)
            if body is None:
                digests[ref] = None
                continue
            bodies[ref] = body
            digests[ref] = _digest(ref.kind, body)
        tracked = track(template, digests)
        self._read[(namespace, rollout)] = (tracked, bodies)
        return tracked

    def rewrite(self, observed: Observed, namespace: str, rollout: str) -> Observed:
        """``observed`` with the template to plan with; a missing referenced object is an
        invalid spec naming it (the template as written: nothing changes)."""
        tracked = self.observe(namespace, rollout, observed.template)
        problem = f"spec.template: {tracked.problem}" if tracked.problem else None
        return dataclasses.replace(
            observed,
            template=tracked.template,
            spec_problem=observed.spec_problem or problem,
        )

    def _get(self, namespace: str, ref: ConfigRef) -> dict[str, Any] | None:
        core = self.kube.core
        read = (
            core.read_namespaced_config_map
            if ref.kind == "ConfigMap"
            else core.read_namespaced_secret
        )
        self.kube.counters.reads += 1
        try:
            obj = read(ref.name, namespace, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise CopyFailed(f"reading {ref.kind} {ref.name}: {exc.status} {exc.reason}") from None
        return _plain(obj, core.api_client)

    # -- apply -----------------------------------------------------------------------

    def ensure(self, rollout: Mapping[str, Any], revision: str) -> None:
        """Before the Deployment of ``revision`` is created: the copies of the template
        last observed for ``rollout`` (when it is that revision's), owned by the
        revision's ControllerRevision (the plan writes that first)."""
        meta = rollout["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        tracked, bodies = self._read.get((namespace, name), (None, {}))
        if tracked is None or tracked.problem or not tracked.copies:
            return
        if revision_hash(tracked.template) != revision:
            return  # e.g. a stable recreated from its history: its copies exist
        history = child_name(name, revision)
        owner: dict[str, Any] | None = None
        for copy in tracked.copies:
            if owner is None:
                owner = self._history_owner(namespace, history)
                if owner is None:
                    return  # no history entry yet: the next pass makes the copies
            if (namespace, copy.kind, copy.name, owner["uid"]) in self._owned:
                continue
            source = bodies.get(ConfigRef(copy.kind, copy.source))
            if source is None:
                continue
            self._make(namespace, copy, source, owner, rollout_label(name))
            self._owned.add((namespace, copy.kind, copy.name, owner["uid"]))

    def _history_owner(self, namespace: str, history: str) -> dict[str, Any] | None:
        self.kube.counters.reads += 1
        try:
            found = self.kube.apps.read_namespaced_controller_revision(
                history, namespace, _request_timeout=TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        meta = _plain(found, self.kube.apps.api_client)["metadata"]
        return {
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "name": meta["name"],
            "uid": meta["uid"],
        }

    def _make(
        self,
        namespace: str,
        copy: ConfigCopy,
        source: Mapping[str, Any],
        owner: dict[str, Any],
        label: str,
    ) -> None:
        body: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": copy.kind,
            "metadata": {
                "name": copy.name,
                "namespace": namespace,
                "labels": {COPY_LABEL: "true", ROLLOUT_LABEL: label},
                "annotations": {SOURCE_ANNOTATION: copy.source},
                "ownerReferences": [owner],
            },
            "immutable": True,
        }
        for key in ("data", "binaryData", "type"):
            if source.get(key) is not None:
                body[key] = source[key]
        core = self.kube.core
        create, read, patch = (
            (
                core.create_namespaced_config_map,
                core.read_namespaced_config_map,
                core.patch_namespaced_config_map,
            )
            if copy.kind == "ConfigMap"
            else (
                core.create_namespaced_secret,
                core.read_namespaced_secret,
                core.patch_namespaced_secret,
            )
        )
        what = f"{copy.kind} {copy.name} (copy of {copy.source})"
        try:
            self.kube.counters.write("create-config-copy")
            create(namespace, body, _request_timeout=TIMEOUT, _preload_content=False)
            log.info("%s/%s: created %s", namespace, owner["name"], what)
            return
        except ApiException as exc:
            if exc.status != 409:
                raise CopyFailed(f"creating {what}: {exc.status} {exc.reason}") from None
        # There already (another revision reads the same data): add this owner.
        try:
            existing = _plain(read(copy.name, namespace, _request_timeout=TIMEOUT), core.api_client)
            owners = list(existing["metadata"].get("ownerReferences") or [])
            if any(o.get("uid") == owner["uid"] for o in owners):
                return
            self.kube.counters.write("patch-config-copy")
            patch(
                copy.name,
                namespace,
                {"metadata": {"ownerReferences": [*owners, owner]}},
                _request_timeout=TIMEOUT,
                _preload_content=False,
            )
        except ApiException as exc:
            raise CopyFailed(f"owning {what}: {exc.status} {exc.reason}") from None

    def forget(self, namespace: str, rollout: str) -> None:
        self._read.pop((namespace, rollout), None)


def _digest(kind: str, body: Mapping[str, Any]) -> str:
    """A ConfigMap's digest is its content's; a Secret's is keyed with its uid, so the
    short digest in a pod spec tells nothing about a guessable value."""
    if kind == "Secret":
        content = {"type": body.get("type"), "data": body.get("data") or {}}
        return data_digest(content, str((body.get("metadata") or {}).get("uid") or ""))
    content = {"data": body.get("data") or {}, "binaryData": body.get("binaryData") or {}}
    return data_digest(content)


__all__ = ["RECHECK", "ConfigTracker", "CopyFailed"]
