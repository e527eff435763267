"""The shell's reader and writer of Gateway API HTTPRoutes (the router of
:mod:`ramp.core.traffic_httproute`): the routes a Rollout names, read whole, and the JSON
patches the core planned, sent as they are (each guarded by the route's resourceVersion
and the names of what it edits: a route someone changed in between is refused, read again
at the next pass, never overwritten). The answer of each patch is kept in :data:`ECHOES`:
the route watch knows its echo (:mod:`ramp.shell.controller.route_index`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from ramp.core.httproute import GROUP, KIND, PLURAL, VERSION, RoutePatch

log = logging.getLogger("ramp.gateway")
RETRY = 0.2
"""After a patch the API server refused (the route changed in between): look again this
soon (seconds)."""
ECHOES: dict[tuple[str, str], str] = {}
"""(namespace, route) -> the resourceVersion of Ramp's last patch's answer (one per route
written: its watch event shows what that patch made, nothing new)."""


def read_routes(
    api_client: Any, namespace: str, names: Iterable[str]
) -> dict[str, Mapping[str, Any] | None]:
    """Each named HTTPRoute of ``namespace`` (None: it does not exist). Any other error
    (no Gateway API in the cluster, no permission) is raised: the reconcile reports it."""
    custom = client.CustomObjectsApi(api_client)
    found: dict[str, Mapping[str, Any] | None] = {}
    for name in names:
        try:
            route = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)
            found[name] = route if isinstance(route, dict) else None
        except ApiException as exc:
            if exc.status != 404:
                raise
            found[name] = None
    return found


def write_routes(api_client: Any, namespace: str, writes: Iterable[object]) -> float | None:
    """Send the route patches of a plan; a delay to look again when one was refused."""
    custom = client.CustomObjectsApi(api_client)
    again: float | None = None
    for write in writes:
        if not isinstance(write, RoutePatch) or write.router != KIND:
            continue
        try:
            answer = custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                namespace,
                PLURAL,
                write.route,
                [dict(op) for op in write.ops],
                _content_type="application/json-patch+json",
            )
            meta = answer.get("metadata") if isinstance(answer, dict) else None
            version = meta.get("resourceVersion") if isinstance(meta, dict) else None
            if version:
                ECHOES[(namespace, write.route)] = str(version)
        except ApiException as exc:
            if exc.status not in (404, 409, 422):
                raise
            log.info(
                "HTTPRoute %s/%s changed while Ramp wrote its weights (%s): read again",
                namespace,
                write.route,
                exc.status,
            )
            again = RETRY
    return again
