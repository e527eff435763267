"""What a reconcile observes besides the Rollout: its children's history, its Services'
selectors and endpoints (from the watch-fed indexes, else from the API), in one
:class:`~ramp.core.model.Observed`."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Mapping
from typing import Any

from ramp.api.rollout import Rollout
from ramp.core.model import Child, HistoryEntry, Observed
from ramp.core.workload_model import Workload
from ramp.shell.adapters.kube import Kube
from ramp.shell.adapters.kube_objects import endpoints_by_revision, history_entry, others_ready
from ramp.shell.adapters.traffic_io import read_traffic
from ramp.shell.controller.adopt import adopt_orphans

ChildSource = Callable[[str, str], list[Child] | None]
"""Children of a Rollout from the watch-fed index; None when the index is not ready."""
HistorySource = Callable[[str, str], list[dict[str, Any]] | None]
"""ControllerRevisions of a Rollout (summaries) from the watch-fed index; None: not ready."""
EndpointSource = Callable[[str, str], list[tuple[str, bool]] | None]
"""(pod, ready) of a Service's EndpointSlices from the watch-fed index; None: not ready."""

SERVICE_TTL = 30.0
"""Seconds a Service's selector is trusted without reading it again (our own pins update
it at once; a change by someone else is corrected within this time)."""
POD_CACHE = 100_000
"""Pods whose revision is remembered (the cache starts over beyond)."""
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def compact_rollout(body: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of a Rollout without what no reconcile reads: ``managedFields`` (one
    entry per writer, as large as the spec) and kubectl's copy of the last applied spec."""
    meta = {k: v for k, v in (body.get("metadata") or {}).items() if k != "managedFields"}
    annotations = meta.get("annotations")
    if annotations and LAST_APPLIED in annotations:
        meta["annotations"] = {k: v for k, v in annotations.items() if k != LAST_APPLIED}
    return copy.deepcopy({**body, "metadata": meta})


class Reader:
    """Reads what a plan needs besides the Rollout and its children (blocking calls: run
    on the controller's API threads)."""

    def __init__(
        self,
        kube: Kube,
        history: HistorySource | None = None,
        endpoints: EndpointSource | None = None,
    ) -> None:
        self.kube = kube
        self.history_source = history
        self.endpoint_source = endpoints
        self.services: dict[tuple[str, str], tuple[dict[str, str] | None, float]] = {}
        self.pod_revision: dict[tuple[str, str], str] = {}
        """(namespace, pod) -> its ``ramp.dev/revision`` ("": not Ramp's), for endpoints."""

    def pinned(self, namespace: str, service: str, selector: dict[str, str] | None) -> None:
        """Our own pin changed a Service's selector (None: the Service is gone)."""
        self.services[(namespace, service)] = (selector, time.monotonic())

    def forget(self, namespace: str) -> None:
        for svc in [k for k in self.services if k[0] == namespace]:
            self.services.pop(svc, None)

    def history(
        self, namespace: str, name: str, uid: str, body: dict[str, Any] | None = None
    ) -> tuple[HistoryEntry, ...]:
        raw = self.history_source(namespace, name) if self.history_source else None
        if raw is None:
            raw = self.kube.list_history(namespace, name)
        if body is not None:  # orphaned entries of this Rollout (orphan-delete, re-apply)
            _, raw = adopt_orphans(self.kube, body, [], raw)
        entries = (history_entry(b, uid) for b in raw)
        return tuple(e for e in entries if e is not None)

    def selectors(self, namespace: str, names: list[str]) -> dict[str, dict[str, str] | None]:
        out: dict[str, dict[str, str] | None] = {}
        for name in names:
            cached = self.services.get((namespace, name))
            if cached is None or time.monotonic() - cached[1] > SERVICE_TTL:
                cached = (self.kube.get_service_selector(namespace, name), time.monotonic())
                self.services[(namespace, name)] = cached
            out[name] = cached[0]
        return out

    def pod_revisions(self, namespace: str, pods: list[tuple[str, bool]]) -> dict[str, str]:
        """``ramp.dev/revision`` of each endpoint's pod, from a cache that a pod not seen
        before refreshes with one list of the namespace's Ramp pods (a pod's name is never
        reused, and it exists before it is an endpoint: one list finds it, or it is not
        Ramp's)."""
        cache = self.pod_revision
        if any((namespace, pod) not in cache for pod, _ in pods):
            if len(cache) > POD_CACHE:
                cache.clear()
            fresh = self.kube.list_pod_revisions(namespace)
            for pod, _ in pods:
                cache[(namespace, pod)] = fresh.get(pod, "")
        return {pod: cache.get((namespace, pod), "") for pod, _ in pods}

    def observe(
        self,
        body: dict[str, Any],
        rollout: Rollout,
        children: list[Child],
        workload: Workload | None = None,
        refused: str | None = None,
    ) -> Observed:
        meta = body["metadata"]
        namespace = meta["namespace"]
        strategy = rollout.spec.strategy
        names: list[str] = []
        if strategy.canary is not None:
            names = [
                n for n in (strategy.canary.stable_service, strategy.canary.canary_service) if n
            ]
        endpoints: dict[str, dict[str, int]] = {}
        others: dict[str, int] = {}
        traffic = read_traffic(self.kube.api_client, namespace, rollout.spec)
        if strategy.blue_green is not None:
            bg = strategy.blue_green
            names = [n for n in (bg.active_service, bg.preview_service) if n]
        if strategy.blue_green is not None or traffic:  # a router's shares: endpoints
            for service in names:
                pods = self.endpoint_source(namespace, service) if self.endpoint_source else None
                if pods is None:
                    pods = self.kube.list_endpoints(namespace, service)
                revisions = self.pod_revisions(namespace, pods)
                endpoints[service] = endpoints_by_revision(pods, revisions)
                others[service] = others_ready(pods, revisions)
        return Observed(
            rollout=rollout,
            template=body["spec"].get("template") or (workload and workload.template) or {},
            generation=int(meta.get("generation") or 0),
            annotations=meta.get("annotations") or {},
            children=tuple(children),
            uid=str(meta.get("uid") or ""),
            deleting=bool(meta.get("deletionTimestamp")),
            history=self.history(namespace, meta["name"], str(meta.get("uid") or ""), body),
            services=self.selectors(namespace, names),
            endpoints=endpoints,
            others=others,
            traffic=traffic,
            workload=workload,
            deleted_at=meta.get("deletionTimestamp"),
            refused=refused,
        )


__all__ = ["ChildSource", "EndpointSource", "HistorySource", "Reader", "compact_rollout"]
