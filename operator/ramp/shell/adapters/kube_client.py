"""The Kubernetes client as the adapters use it: the API client with its connection
pool, timeouts, the errors a write raises besides the API's, and answers read cheaply."""

from __future__ import annotations

import json
from collections.abc import Mapping
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


class _Requests:
    """Requests sent through an ``ApiClient`` (connection pool, auth, timing) without the
    generated API classes: importing one builds the classes of its calls and of the models
    they name (``CoreV1Api`` about 20 MB of the operator's memory, ``AppsV1Api`` about 10).
    The answer is the undecoded response (``_preload_content=False``) or plain JSON."""

    def __init__(self, api_client: Any) -> None:
        self.api_client = api_client

    def _send(
        self,
        method: str,
        path: str,
        body: Any,
        content_type: str | None,
        timeout: Any,
        preload: bool,
        query: list[tuple[str, str]] | None = None,
    ) -> Any:
        api = self.api_client
        headers = {"Accept": "application/json"}
        if content_type:
            headers["Content-Type"] = content_type
        request = api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
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


def _patch_type(body: Any, content_type: str | None) -> str:
    """The generated client's choice: a list is a JSON patch, an object a strategic merge."""
    if content_type:
        return content_type
    return "application/json-patch+json" if isinstance(body, list) else STRATEGIC


STRATEGIC = "application/strategic-merge-patch+json"


class EventsApi(_Requests):
    """The two Event calls of ``CoreV1Api`` Ramp makes on every Rollout's path (create,
    bump a count), with the same signatures and requests. ``CoreV1Api`` is built only
    when a Rollout needs something else of core/v1 (Services, pods, Secrets)."""

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
            STRATEGIC,
            _request_timeout,
            _preload_content,
        )


class Listed:
    """A list's answer as :class:`AppsApi` gives it: ``items`` are plain JSON objects
    (what ``ApiClient.sanitize_for_serialization`` makes of the models' items)."""

    def __init__(self, answer: Mapping[str, Any] | None) -> None:
        self.items: list[dict[str, Any]] = list((answer or {}).get("items") or [])


class AppsApi(_Requests):
    """``AppsV1Api``'s calls on every Rollout's path (a child Deployment created, scaled,
    deleted, its Rollout's children listed; a ControllerRevision created, marked, deleted,
    listed) with the same signatures and requests, answering plain JSON instead of models
    (what the callers make of the models). Any other call (the reads of one object, which
    answer models) goes to ``AppsV1Api``, built at its first use."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        full = self.__dict__.get("_full")
        if full is None:
            full = self.__dict__["_full"] = client.AppsV1Api(self.api_client)
        return getattr(full, name)

    def _path(self, namespace: str, plural: str, name: str | None = None) -> str:
        path = f"/apis/apps/v1/namespaces/{quote(namespace)}/{plural}"
        return f"{path}/{quote(name)}" if name is not None else path

    def _create(self, plural: str, namespace: str, body: Any, timeout: Any, preload: bool) -> Any:
        path = self._path(namespace, plural)
        return self._send("POST", path, body, None, timeout, preload)

    def _patch(
        self,
        plural: str,
        name: str,
        namespace: str,
        body: Any,
        field_manager: str | None,
        content_type: str | None,
        timeout: Any,
        preload: bool,
    ) -> Any:
        query = [("fieldManager", field_manager)] if field_manager is not None else []
        path = self._path(namespace, plural, name)
        content = _patch_type(body, content_type)
        return self._send("PATCH", path, body, content, timeout, preload, query)

    def _delete(self, plural: str, name: str, namespace: str, timeout: Any) -> Any:
        path = self._path(namespace, plural, name)
        return self._send("DELETE", path, None, None, timeout, True)

    def _list(
        self, plural: str, namespace: str, label_selector: str | None, timeout: Any
    ) -> Listed:
        query = [("labelSelector", label_selector)] if label_selector is not None else []
        path = self._path(namespace, plural)
        return Listed(self._send("GET", path, None, None, timeout, True, query))

    def list_namespaced_deployment(
        self, namespace: str, label_selector: str | None = None, _request_timeout: Any = None
    ) -> Listed:
        return self._list("deployments", namespace, label_selector, _request_timeout)

    # A ReplicaSet child (``--children=replicasets``): the same calls as a Deployment's.
    def list_namespaced_replica_set(
        self, namespace: str, label_selector: str | None = None, _request_timeout: Any = None
    ) -> Listed:
        return self._list("replicasets", namespace, label_selector, _request_timeout)

    def create_namespaced_replica_set(
        self, namespace: str, body: Any, _request_timeout: Any = None, _preload_content: bool = True
    ) -> Any:
        return self._create("replicasets", namespace, body, _request_timeout, _preload_content)

    def patch_namespaced_replica_set(
        self,
        name: str,
        namespace: str,
        body: Any,
        _request_timeout: Any = None,
        _preload_content: bool = True,
    ) -> Any:
        return self._patch(
            "replicasets", name, namespace, body, None, None, _request_timeout, _preload_content
        )

    def delete_namespaced_replica_set(
        self, name: str, namespace: str, _request_timeout: Any = None
    ) -> Any:
        return self._delete("replicasets", name, namespace, _request_timeout)

    def list_namespaced_controller_revision(
        self, namespace: str, label_selector: str | None = None, _request_timeout: Any = None
    ) -> Listed:
        return self._list("controllerrevisions", namespace, label_selector, _request_timeout)

    def create_namespaced_deployment(
        self, namespace: str, body: Any, _request_timeout: Any = None, _preload_content: bool = True
    ) -> Any:
        return self._create("deployments", namespace, body, _request_timeout, _preload_content)

    def patch_namespaced_deployment(
        self,
        name: str,
        namespace: str,
        body: Any,
        field_manager: str | None = None,
        _content_type: str | None = None,
        _request_timeout: Any = None,
        _preload_content: bool = True,
    ) -> Any:
        return self._patch(
            "deployments",
            name,
            namespace,
            body,
            field_manager,
            _content_type,
            _request_timeout,
            _preload_content,
        )

    def delete_namespaced_deployment(
        self, name: str, namespace: str, _request_timeout: Any = None
    ) -> Any:
        return self._delete("deployments", name, namespace, _request_timeout)

    def create_namespaced_controller_revision(
        self, namespace: str, body: Any, _request_timeout: Any = None, _preload_content: bool = True
    ) -> Any:
        return self._create(
            "controllerrevisions", namespace, body, _request_timeout, _preload_content
        )

    def patch_namespaced_controller_revision(
        self,
        name: str,
        namespace: str,
        body: Any,
        field_manager: str | None = None,
        _content_type: str | None = None,
        _request_timeout: Any = None,
        _preload_content: bool = True,
    ) -> Any:
        return self._patch(
            "controllerrevisions",
            name,
            namespace,
            body,
            field_manager,
            _content_type,
            _request_timeout,
            _preload_content,
        )

    def delete_namespaced_controller_revision(
        self, name: str, namespace: str, _request_timeout: Any = None
    ) -> Any:
        return self._delete("controllerrevisions", name, namespace, _request_timeout)


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
    "AppsApi",
    "Conflict",
    "EventsApi",
    "Listed",
    "NotLeader",
    "answer_version",
    "client",
    "config",
    "discard",
    "load_client",
]
