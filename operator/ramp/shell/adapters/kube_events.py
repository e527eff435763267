"""Posting the operator's Events (``events.k8s.io`` core/v1 Events on the Rollout), and
the sinks that see every Event the operator posts (notifications)."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from kubernetes.client.exceptions import ApiException

from ramp import GROUP, VERSION
from ramp.core.model import Event
from ramp.core.names import event_name
from ramp.shell.adapters.events import Action, Decision, EventCorrelator
from ramp.shell.adapters.kube_client import ApiCounters, NotLeader, discard

log = logging.getLogger("ramp.kube")  # its name before the shell package


class EventSink(Protocol):
    """Sees what the operator tells about a Rollout
    (:attr:`ramp.shell.adapters.kube.Kube.sinks`)."""

    def event(self, rollout: Mapping[str, Any], event: Event) -> None:
        """An Event the operator posted (or would have: ``post=False``, rate-limited)."""

    def status_written(self, rollout: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """The operator wrote ``status`` over the Rollout's (``rollout``) old one."""


class EventPoster:
    """Posts Events: repeats counted on one Event, a per-Rollout rate limit
    (:class:`ramp.shell.adapters.events.EventCorrelator`)."""

    def __init__(
        self,
        core: Callable[[], Any],
        counters: ApiCounters,
        timeout: Callable[[str], tuple[float, float]],
        component: str,
    ) -> None:
        self.core = core
        """The CoreV1Api to post with (read at each post: the adapter's own)."""
        self.counters = counters
        self.timeout = timeout
        self.component = component
        self.events = EventCorrelator()
        """Dedupe, aggregation and a per-Rollout rate limit of the Events we post."""
        self._drop_logged: dict[tuple[str, str], float] = {}

    def post(self, rollout: Mapping[str, Any], event: Event) -> None:
        """Post an Event about the Rollout (never fails the reconcile). An event marked
        ``post=False`` (a step completed: the status records it) is not sent. Repeats are
        counted on one Event and a Rollout's Event writes are rate-limited
        (:class:`ramp.shell.adapters.events.EventCorrelator`)."""
        if not getattr(event, "post", True):
            return
        meta = rollout["metadata"]
        key = (str(meta["namespace"]), str(meta["name"]), str(meta.get("uid") or ""))
        decision = self.events.observe(
            key,
            event.type,
            event.reason,
            event.message[:1024],
            lambda: event_name(meta["name"], uuid.uuid4().hex[:12]),
        )
        if decision.action is Action.DROP:
            self._dropped_event(meta, event.reason)
            return
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            if decision.action is Action.UPDATE and self._count_event(meta, decision, now):
                return
            self._create_event(meta, event, decision, now)
        except NotLeader:
            return
        except ApiException as exc:
            log.warning("could not post event %s on %s: %s", event.reason, meta["name"], exc.reason)

    def _count_event(self, meta: Mapping[str, Any], decision: Decision, now: str) -> bool:
        """Bump the count of an earlier Event; False when it is gone (create it anew)."""
        self.counters.write("event")
        try:
            discard(
                self.core().patch_namespaced_event(
                    decision.name,
                    meta["namespace"],
                    {"count": decision.count, "lastTimestamp": now, "message": decision.message},
                    _request_timeout=self.timeout("update Event"),
                    _preload_content=False,
                )
            )
        except ApiException as exc:
            if exc.status != 404:
                raise
            self.events.forget(decision.name)
            return False
        return True

    def _create_event(
        self, meta: Mapping[str, Any], event: Event, decision: Decision, now: str
    ) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": decision.name, "namespace": meta["namespace"]},
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
            "message": decision.message,
            "source": {"component": self.component},
            "reportingComponent": self.component,
            "reportingInstance": self.component,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": decision.count,
        }
        self.counters.write("event")
        try:
            discard(
                self.core().create_namespaced_event(
                    meta["namespace"],
                    body,
                    _request_timeout=self.timeout("post Event"),
                    _preload_content=False,
                )
            )
        except ApiException as exc:
            if exc.status != 409:
                raise
            # The name exists (an earlier run of the operator): a fresh name next time.
            self.events.forget(decision.name)
            raise

    def _dropped_event(self, meta: Mapping[str, Any], reason: str) -> None:
        """Say once a minute per Rollout that its Events are being dropped."""
        key = (str(meta["namespace"]), str(meta["name"]))
        now = time.monotonic()
        if now - self._drop_logged.get(key, -60.0) >= 60.0:
            self._drop_logged[key] = now
            log.warning(
                "Events of Rollout %s/%s are rate-limited; %s and others dropped "
                "(%d dropped by the operator so far)",
                key[0],
                key[1],
                reason,
                self.events.dropped,
            )


__all__ = ["EventPoster", "EventSink"]
