"""The Kubernetes client as the adapters use it: the API client with its connection
pool, timeouts, the errors a write raises besides the API's, and answers read cheaply."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from kubernetes import client as _client
from kubernetes import config as _config

client: Any = _client
config: Any = _config
PLURAL = "rollouts"
TIMEOUT = (5, 30)
"""Connect and read timeouts of every API call: a stalled connection must not stall a
Rollout's worker."""


class Conflict(Exception):
    """The Rollout changed since it was read: plan again from a fresh read."""


class NotLeader(Conflict):
    """This process may not write now (its Lease is not fresh enough to cover a request)."""


MIN_WRITE_BUDGET = 1.0
"""Seconds of Lease left below which no write is sent at all."""


class ApiCounters:
    """Counts of API calls, for the benchmark and the operator's metrics."""

    def __init__(self) -> None:
        self.reads = 0
        self.writes = 0
        self.writes_by_kind: dict[str, int] = {}

    def write(self, kind: str) -> None:
        self.writes += 1
        self.writes_by_kind[kind] = self.writes_by_kind.get(kind, 0) + 1


POOL_SIZE = 32
"""HTTP connections kept to the API server: as many as the controller's API threads, so
that no call pays for a new TLS handshake."""


def answer_version(response: Any) -> int:
    """The ``resourceVersion`` in a write's undecoded answer (0 when there is none),
    read with ``json`` alone (a fraction of what the client's models cost), then the
    connection is given back like :func:`discard` does."""
    data = getattr(response, "data", None)
    version = 0
    if isinstance(data, bytes | str) and data:
        try:
            meta = json.loads(data).get("metadata") or {}
            version = int(meta.get("resourceVersion") or 0)
        except (ValueError, AttributeError):
            version = 0
    release = getattr(response, "release_conn", None)
    if release is not None:
        release()
    return version


def discard(response: Any) -> None:
    """Give back the connection of a write whose answer is not needed. Such writes are
    sent with ``_preload_content=False``: the client does not decode the answer into its
    models (for a Deployment, most of the CPU a scale costs the operator)."""
    drain = getattr(response, "drain_conn", None)
    if drain is not None:
        drain()
        response.release_conn()


class EventsApi:
    """The two Event calls of ``CoreV1Api`` Ramp makes on every Rollout's path (create,
    bump a count), with the same signatures, sent through the same ``ApiClient``
    (connection pool, auth, timing). Importing ``CoreV1Api`` builds the class of every
    core/v1 call and most core/v1 models: about 20 MB of the operator's memory, paid
    here only when a Rollout needs something else of core/v1 (Services, pods, Secrets)."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client

    def _send(
        self, method: str, path: str, body: Any, content_type: str, timeout: Any, preload: bool
    ) -> Any:
        api = self.api_client
        headers = {"Accept": "application/json", "Content-Type": content_type}
        request = api.param_serialize(
            method=method,
            resource_path=path,
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = api.call_api(*request, _request_timeout=timeout)
        if not 200 <= response.status <= 299:
            response.read()
            raise client.ApiException.from_response(http_resp=response, body=None, data=None)
        if not preload:
            return response.response
        response.read()
        return json.loads(response.data) if response.data else None

    def create_namespaced_event(
        self,
        namespace: str,
        body: Any,
        _request_timeout: Any = None,
        _preload_content: bool = True,
    ) -> Any:
        return self._send(
            "POST",
            f"/api/v1/namespaces/{quote(namespace)}/events",
            body,
            "application/json",
            _request_timeout,
            _preload_content,
        )

    def patch_namespaced_event(
        self,
        name: str,
        namespace: str,
        body: Any,
        _request_timeout: Any = None,
        _preload_content: bool = True,
    ) -> Any:
        return self._send(
            "PATCH",
            f"/api/v1/namespaces/{quote(namespace)}/events/{quote(name)}",
            body,
            "application/strategic-merge-patch+json",
            _request_timeout,
            _preload_content,
        )


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


__all__ = [
    "MIN_WRITE_BUDGET",
    "PLURAL",
    "POOL_SIZE",
    "TIMEOUT",
    "ApiCounters",
    "Conflict",
    "EventsApi",
    "NotLeader",
    "answer_version",
    "client",
    "config",
    "discard",
    "load_client",
]
