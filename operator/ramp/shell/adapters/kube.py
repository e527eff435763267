"""The adapter to the Kubernetes API: the only module that talks to the API server.

Everything here is synchronous (the official client); the handlers call it through
``asyncio.to_thread``. Writes are idempotent: deterministic names, create-if-absent,
patches that only send what differs, and the Rollout status patched with its
``resourceVersion`` so that a concurrent writer makes us re-plan instead of doubling a step.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException

from ramp import GROUP, VERSION
from ramp.api.labels import REVISION_LABEL, ROLLOUT_LABEL, TEMPLATE_ANNOTATION
from ramp.core.plan import Event, HistoryWrite
from ramp.shell.adapters.api_clock import ApiClock
from ramp.shell.adapters.events import EventCorrelator
from ramp.shell.adapters.expectations import Expectations
from ramp.shell.adapters.kube_children import ChildCalls
from ramp.shell.adapters.kube_client import (
    MIN_WRITE_BUDGET,
    PLURAL,
    TIMEOUT,
    ApiCounters,
    AppsApi,
    Conflict,
    EventsApi,
    NotLeader,
    client,
    discard,
    load_client,
)
from ramp.shell.adapters.kube_events import EventPoster, EventSink
from ramp.shell.adapters.kube_objects import (
    child_name,
    controller_uid,
    endpoint_pods,
    merge_patch,
    rollout_label,
    summarize_history,
)
from ramp.shell.adapters.manifests import history_manifest
from ramp.shell.adapters.traffic_io import traffic_adapter

log = logging.getLogger("ramp.kube")  # its name before the shell package


class Kube(ChildCalls):
    """Reads and writes of Rollouts, their Deployments, Services and Events."""

    _core: Any = None

    @property
    def core(self) -> Any:
        """The ``CoreV1Api``, built at its first use (see :class:`EventsApi`)."""
        if self._core is None:
            self._core = client.CoreV1Api(self.api_client)
        return self._core

    @core.setter
    def core(self, value: Any) -> None:
        self._core = value

    def __init__(self, api_client: Any, component: str = "ramp-operator") -> None:
        self.api_client = api_client
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.apps: Any = AppsApi(api_client)  # AppsV1Api for reads only, at their first use
        self.child_kind = "Deployment"
        """The kind of the children it creates (``--children``); either kind is scaled and
        deleted as what it is."""
        self._events = EventsApi(api_client)
        self.component = component
        self.counters = ApiCounters()
        self.poster = EventPoster(
            lambda: self._core if self._core is not None else self._events,
            self.counters,
            self._timeout,
            component,
        )
        self.sinks: list[EventSink] = []
        """What sees every Event posted and every status written (notifications)."""
        self.may_write: Callable[[], bool] = lambda: True
        """Whether this process may write now (the Lease; :class:`GuardedKube` checks it)."""
        self.expectations = Expectations()
        self.api_clock = ApiClock()
        """Seconds per thread spent in API requests (the benchmark's breakdown)."""
        self.api_clock.wrap(api_client)
        """What our creates and scales must make the watch show
        (see ramp.shell.adapters.expectations)."""
        self.write_budget: Callable[[], float] = lambda: float(TIMEOUT[1])
        """Seconds this process may still write for (the Lease's remaining time)."""

    @property
    def events(self) -> EventCorrelator:
        """Dedupe, aggregation and a per-Rollout rate limit of the Events we post."""
        return self.poster.events

    @events.setter
    def events(self, correlator: EventCorrelator) -> None:
        self.poster.events = correlator

    def _timeout(self, what: str) -> tuple[float, float]:
        """Request timeouts that end before the Lease could pass to another holder."""
        budget = self.write_budget()
        if budget < MIN_WRITE_BUDGET:
            raise NotLeader(f"{what}: not enough Lease time left ({budget:.1f}s)")
        return (min(float(TIMEOUT[0]), budget), min(float(TIMEOUT[1]), budget))

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

    def get_service_selector(self, namespace: str, service: str) -> dict[str, str] | None:
        """A Service's selector ({} when it has none); None when the Service is absent."""
        self.counters.reads += 1
        try:
            svc = self.core.read_namespaced_service(service, namespace, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return dict((svc.spec.selector if svc.spec else None) or {})

    def write_traffic(self, namespace: str, write: object) -> float | None:
        """A traffic router's write (an HTTPRoute's JSON patch), by the writer of its kind
        (:mod:`ramp.shell.adapters.traffic_io`); a delay to look again when it was refused."""
        adapter = traffic_adapter(write)
        self.counters.write(adapter.resource)
        return adapter.write(self.api_client, namespace, [write])

    def pin_service(self, namespace: str, service: str, selector: Mapping[str, str | None]) -> bool:
        """Set the selector keys Ramp owns (a merge patch leaves the others alone; a None
        value removes its key). False when the Service is absent."""
        self.counters.write("patch-service")
        try:
            discard(
                self.core.patch_namespaced_service(
                    service,
                    namespace,
                    {"spec": {"selector": dict(selector)}},
                    _request_timeout=self._timeout("patch Service"),
                    _preload_content=False,
                )
            )
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def list_pod_revisions(self, namespace: str) -> dict[str, str]:
        """Pod name -> ``ramp.dev/revision`` of every pod of Ramp's in a namespace (to tell
        a Service's endpoints apart by label, never by name prefix)."""
        self.counters.reads += 1
        items = self.core.list_namespaced_pod(
            namespace, label_selector=REVISION_LABEL, _request_timeout=TIMEOUT
        ).items
        return {
            str(p.metadata.name): str((p.metadata.labels or {}).get(REVISION_LABEL, ""))
            for p in items
        }

    # -- history ---------------------------------------------------------------------

    def list_endpoints(self, namespace: str, service: str) -> list[tuple[str, bool]]:
        self.counters.reads += 1
        items = (
            client.DiscoveryV1Api(self.api_client)
            .list_namespaced_endpoint_slice(
                namespace,
                label_selector=f"kubernetes.io/service-name={service}",
                _request_timeout=TIMEOUT,
            )
            .items
        )
        pods: list[tuple[str, bool]] = []
        for item in items:
            pods.extend(endpoint_pods(self.api_client.sanitize_for_serialization(item)))
        return pods

    def list_history(self, namespace: str, rollout: str) -> list[dict[str, Any]]:
        self.counters.reads += 1
        items = self.apps.list_namespaced_controller_revision(
            namespace,
            label_selector=f"{ROLLOUT_LABEL}={rollout_label(rollout)}",
            _request_timeout=TIMEOUT,
        ).items
        return [summarize_history(self.api_client.sanitize_for_serialization(i)) for i in items]

    def write_history(
        self,
        rollout: Mapping[str, Any],
        write: HistoryWrite,
        template: Mapping[str, Any] | None,
        number: int,
        exists: bool,
    ) -> None:
        """Create a revision's ControllerRevision (template as written), or set its marks."""
        meta = rollout["metadata"]
        name, namespace = child_name(meta["name"], write.revision), meta["namespace"]
        annotations = dict(write.annotations)
        if exists:
            self.counters.write("patch-history")
            try:
                discard(
                    self.apps.patch_namespaced_controller_revision(
                        name,
                        namespace,
                        {"metadata": {"annotations": annotations}},
                        _request_timeout=self._timeout("patch ControllerRevision"),
                        _preload_content=False,
                    )
                )
            except ApiException as exc:
                if exc.status != 404:
                    raise
                # The watch-fed index still showed a revision deleted meanwhile: not an
                # error, plan again from a fresh view (nothing else of this plan is sent).
                raise Conflict(f"ControllerRevision {name} is gone") from exc
            return
        if template is None:
            log.warning("no template for the history of revision %s of %s", write.revision, name)
            return
        body = history_manifest(rollout, write, template, number)
        self.counters.write("create-history")
        try:
            discard(
                self.apps.create_namespaced_controller_revision(
                    namespace,
                    body,
                    _request_timeout=self._timeout("create ControllerRevision"),
                    _preload_content=False,
                )
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
            existing = self.apps.read_namespaced_controller_revision(
                name, namespace, _request_timeout=TIMEOUT
            )
            owner = controller_uid(self.api_client.sanitize_for_serialization(existing)["metadata"])
            if owner != meta.get("uid"):
                # Someone else's (or an orphan not adopted yet): never written to.
                log.warning("ControllerRevision %s/%s is not this Rollout's", namespace, name)
                return
            self.apps.patch_namespaced_controller_revision(
                name,
                namespace,
                {"metadata": {"annotations": annotations}},
                _request_timeout=self._timeout("patch ControllerRevision"),
            )

    def delete_history(self, namespace: str, rollout: str, revision: str) -> None:
        self.counters.write("delete-history")
        try:
            self.apps.delete_namespaced_controller_revision(
                child_name(rollout, revision),
                namespace,
                _request_timeout=self._timeout("delete ControllerRevision"),
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    def get_recorded_template(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The pod template a child Deployment recorded as written (older history)."""
        self.counters.reads += 1
        try:
            dep = self.apps.read_namespaced_deployment(name, namespace, _request_timeout=TIMEOUT)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        raw = ((dep.metadata.annotations if dep.metadata else None) or {}).get(TEMPLATE_ANNOTATION)
        if not raw:
            return None
        value = json.loads(raw)
        return value if isinstance(value, dict) else None

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
        body = merge_patch(old, status)
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
                _request_timeout=self._timeout("patch Rollout status"),
            )
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(meta["name"]) from exc
            raise
        for sink in self.sinks:
            sink.status_written(rollout, status)
        return result

    def emit(self, rollout: Mapping[str, Any], event: Event) -> None:
        """Post an Event about the Rollout (never fails the reconcile;
        :class:`ramp.shell.adapters.kube_events.EventPoster`), then hand it to the event
        sinks (notifications) while this process may write."""
        self.poster.post(rollout, event)
        if self.sinks and self.may_write():
            for sink in self.sinks:
                sink.event(rollout, event)


__all__ = [
    "PLURAL",
    "TIMEOUT",
    "ApiCounters",
    "Conflict",
    "EventSink",
    "Kube",
    "NotLeader",
    "load_client",
]
