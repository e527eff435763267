"""The CLI's shell: every call ``kubectl ramp`` makes to the API server is in this module.

Connection like kubectl: ``--kubeconfig`` (else ``$KUBECONFIG``, else ``~/.kube/config``,
else the in-cluster service account), ``--context``, and the namespace from
``-n/--namespace`` or else from the context.

Writes: one-shot requests are annotations with a fresh token (merge patch); pause and
resume patch ``spec.paused``; template changes (``set image``, ``undo``) are read, change,
replace with the object's ``resourceVersion``, retried on a conflict, so a concurrent
writer is never overwritten.

:class:`RolloutWatch` keeps a Rollout, its child Deployments and its Events up to date
from watches (list, then watch from the list's resourceVersion; relist on 410 Gone) and
signals each change: the live view redraws on change instead of polling.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client as _client
from kubernetes import config as _config
from kubernetes import watch as _watch
from kubernetes.client.exceptions import ApiException

from ramp import GROUP, PREFIX, VERSION
from ramp.api.labels import ROLLOUT_LABEL
from ramp.core.names import rollout_label

client: Any = _client
config: Any = _config
watch: Any = _watch
PLURAL = "rollouts"
_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

Obj = dict[str, Any]


class CliError(Exception):
    """A failure to report to the user in one line (exit status 1)."""


class NotFound(CliError):
    """The Rollout does not exist."""


def new_token() -> str:
    """A unique request token: time-ordered and random."""
    return f"{time.strftime('%Y%m%d%H%M%S', time.gmtime())}-{secrets.token_hex(3)}"


def connect(kubeconfig: str | None, context: str | None, namespace: str | None) -> tuple[Any, str]:
    """An ApiClient and the namespace to use, resolved the way kubectl does."""
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except (config.ConfigException, OSError) as exc:
        if kubeconfig or context:
            raise CliError(f"cannot read the kubeconfig: {exc}") from exc
        try:
            config.load_incluster_config()
        except config.ConfigException:
            raise CliError(
                f"no kubeconfig found ({exc}); use --kubeconfig or set KUBECONFIG"
            ) from exc
        default_ns = _SA_NAMESPACE.read_text().strip() if _SA_NAMESPACE.exists() else "default"
        return client.ApiClient(), namespace or default_ns
    chosen = active
    if context:
        chosen = next((c for c in contexts or [] if c.get("name") == context), None)
        if chosen is None:
            names = ", ".join(c.get("name", "?") for c in contexts or [])
            raise CliError(f"context {context!r} is not in the kubeconfig (contexts: {names})")
    context_ns = ((chosen or {}).get("context") or {}).get("namespace")
    try:
        api_client = config.new_client_from_config(config_file=kubeconfig, context=context)
    except (config.ConfigException, OSError) as exc:
        raise CliError(f"cannot load the kubeconfig: {exc}") from exc
    return api_client, namespace or context_ns or "default"


def api_error(exc: ApiException) -> str:
    """The message of an API error, as the API server put it."""
    import json

    try:
        body = json.loads(exc.body or "{}")
    except ValueError:
        body = {}
    return str(body.get("message") or exc.reason or exc)


class Kube:
    """Rollouts, their Deployments and Events in one namespace."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.api_client = api_client
        self.namespace = namespace
        self.custom: Any = client.CustomObjectsApi(api_client)
        self.apps: Any = client.AppsV1Api(api_client)
        self.core: Any = client.CoreV1Api(api_client)

    def _dict(self, obj: Any) -> Obj:
        data: Obj = self.api_client.sanitize_for_serialization(obj)
        return data

    # -- reads --------------------------------------------------------------------------

    def get(self, name: str) -> Obj:
        try:
            obj: Obj = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL, name
            )
        except ApiException as exc:
            if exc.status == 404:
                raise NotFound(
                    f"rollout {name!r} not found in namespace {self.namespace!r}"
                ) from exc
            raise
        return obj

    def list_rollouts(self, all_namespaces: bool = False) -> list[Obj]:
        if all_namespaces:
            result = self.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
        else:
            result = self.custom.list_namespaced_custom_object(
                GROUP, VERSION, self.namespace, PLURAL
            )
        items: list[Obj] = result.get("items") or []
        return sorted(
            items, key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"])
        )

    def deployments(self, name: str) -> list[Obj]:
        """The Rollout's children: its Deployments, and its ReplicaSets (an operator run
        with ``--children=replicasets``) when this user may list them."""
        selector = f"{ROLLOUT_LABEL}={rollout_label(name)}"
        items = list(
            self.apps.list_namespaced_deployment(self.namespace, label_selector=selector).items
        )
        try:
            items += self.apps.list_namespaced_replica_set(
                self.namespace, label_selector=selector
            ).items
        except ApiException as exc:
            if exc.status != 403:
                raise
        return [self._dict(d) for d in items]

    def events(self, name: str, uid: str | None = None) -> list[Obj]:
        """Events about the Rollout (of this incarnation, when ``uid`` is given)."""
        items = self.core.list_namespaced_event(
            self.namespace,
            field_selector=f"involvedObject.kind=Rollout,involvedObject.name={name}",
        ).items
        events = [self._dict(e) for e in items]
        return [e for e in events if not uid or (e.get("involvedObject") or {}).get("uid") == uid]

    # -- writes -------------------------------------------------------------------------

    def patch(self, name: str, body: Obj) -> Obj:
        """A JSON merge patch of the Rollout."""
        self.get(name)  # a clear "not found" before the patch
        obj: Obj = self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, PLURAL, name, body
        )
        return obj

    def request(self, name: str, verb: str) -> str:
        """Annotate a one-shot request (``promote``, ``promote-full``, ``abort``, ``retry``)."""
        token = new_token()
        self.patch(name, {"metadata": {"annotations": {f"{PREFIX}/{verb}": token}}})
        return token

    def update(self, name: str, change: Callable[[Obj], bool], attempts: int = 5) -> Obj | None:
        """Read, change (``change`` returns False when there is nothing to do), replace.

        The replace carries the resourceVersion that was read: on a conflict the change is
        applied again to a fresh read. Returns the new object, or None when unchanged.
        """
        for attempt in range(attempts):
            obj = self.get(name)
            if not change(obj):
                return None
            try:
                result: Obj = self.custom.replace_namespaced_custom_object(
                    GROUP, VERSION, self.namespace, PLURAL, name, obj
                )
            except ApiException as exc:
                if exc.status == 409 and attempt < attempts - 1:
                    continue
                raise
            return result
        raise AssertionError("unreachable")


class RolloutWatch:
    """A Rollout with its Deployments and Events, kept current by watches.

    ``changed`` is set whenever something arrives; :meth:`snapshot` returns copies.
    """

    def __init__(
        self,
        kube: Kube,
        name: str,
        *,
        deployments: bool = True,
        events: bool = True,
        rollout: Obj | None = None,
    ) -> None:
        self.kube = kube
        self.name = name
        self.changed = threading.Event()
        self.stopped = threading.Event()
        self.error: str | None = None
        self._lock = threading.Lock()
        self._rollout: Obj | None = rollout  # as read before the watch (its list may lag)
        self._deployments: dict[str, Obj] = {}
        self._replica_sets: dict[str, Obj] = {}
        """Children that are ReplicaSets (``--children=replicasets``)."""
        self._events: dict[str, Obj] = {}
        self._threads: list[threading.Thread] = []
        self._watches: list[Any] = []
        ns = kube.namespace
        self._streams: list[tuple[str, Callable[..., Any], dict[str, Any]]] = [
            (
                "rollout",
                kube.custom.list_namespaced_custom_object,
                {
                    "group": GROUP,
                    "version": VERSION,
                    "namespace": ns,
                    "plural": PLURAL,
                    "field_selector": f"metadata.name={name}",
                },
            )
        ]
        if deployments:
            self._streams.append(
                (
                    "deployments",
                    kube.apps.list_namespaced_deployment,
                    {"namespace": ns, "label_selector": f"{ROLLOUT_LABEL}={rollout_label(name)}"},
                )
            )
            self._streams.append(
                (
                    "replicasets",
                    kube.apps.list_namespaced_replica_set,
                    {"namespace": ns, "label_selector": f"{ROLLOUT_LABEL}={rollout_label(name)}"},
                )
            )
        if events:
            self._streams.append(
                (
                    "events",
                    kube.core.list_namespaced_event,
                    {
                        "namespace": ns,
                        "field_selector": (
                            f"involvedObject.kind=Rollout,involvedObject.name={name}"
                        ),
                    },
                )
            )

    def start(self) -> RolloutWatch:
        for kind, func, kwargs in self._streams:
            thread = threading.Thread(
                target=self._run, args=(kind, func, kwargs), name=f"watch-{kind}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop the watches (their sockets are shut down) and wait briefly for the threads."""
        self.stopped.set()
        self.changed.set()
        with self._lock:
            streams = list(self._watches)
        for stream in streams:
            with contextlib.suppress(Exception):
                stream.stop()
        for thread in self._threads:
            thread.join(timeout=2)

    def snapshot(self) -> tuple[Obj | None, list[Obj], list[Obj]]:
        with self._lock:
            rollout = self._rollout
            uid = (rollout or {}).get("metadata", {}).get("uid")
            deployments = [*self._deployments.values(), *self._replica_sets.values()]
            events = [
                e
                for e in self._events.values()
                if not uid or (e.get("involvedObject") or {}).get("uid") == uid
            ]
        return rollout, deployments, events

    # -- the watch loops ---------------------------------------------------------------

    def _store(self, kind: str, event_type: str, obj: Obj) -> None:
        key = str((obj.get("metadata") or {}).get("name"))
        with self._lock:
            if kind == "rollout":
                self._rollout = None if event_type == "DELETED" else obj
            else:
                store = self._store_of(kind)
                if event_type == "DELETED":
                    store.pop(key, None)
                else:
                    store[key] = obj
        self.changed.set()

    def _store_of(self, kind: str) -> dict[str, Obj]:
        if kind == "deployments":
            return self._deployments
        return self._replica_sets if kind == "replicasets" else self._events

    def _relist(self, kind: str, func: Callable[..., Any], kwargs: dict[str, Any]) -> str:
        result = func(**kwargs)
        if isinstance(result, dict):
            items = result.get("items") or []
            version = str((result.get("metadata") or {}).get("resourceVersion") or "")
        else:
            items = [self.kube._dict(i) for i in result.items]
            version = str(result.metadata.resource_version or "")
        with self._lock:
            if kind == "rollout":
                self._rollout = items[0] if items else None
            else:
                store = {str(i["metadata"]["name"]): i for i in items}
                if kind == "deployments":
                    self._deployments = store
                elif kind == "replicasets":
                    self._replica_sets = store
                else:
                    self._events = store
        self.changed.set()
        return version

    def _run(self, kind: str, func: Callable[..., Any], kwargs: dict[str, Any]) -> None:
        version = ""
        while not self.stopped.is_set():
            try:
                if not version:
                    version = self._relist(kind, func, kwargs)
                stream = watch.Watch()
                with self._lock:
                    self._watches.append(stream)
                for event in stream.stream(
                    func, resource_version=version, timeout_seconds=60, deserialize=False, **kwargs
                ):
                    if self.stopped.is_set():
                        break
                    data: Obj = event["object"]
                    if event["type"] == "BOOKMARK":
                        continue
                    version = str((data.get("metadata") or {}).get("resourceVersion") or version)
                    self._store(kind, event["type"], data)
                self.error = None
            except ApiException as exc:
                version = ""  # 410 Gone (or another error): list again
                if kind == "replicasets" and exc.status == 403:
                    return  # this user may not list ReplicaSets: the Deployments are all
                if exc.status != 410 and not self.stopped.is_set():
                    self.error = f"{kind}: {api_error(exc)}"
                    self.changed.set()
                    self.stopped.wait(2)
            except Exception as exc:  # the network: say so in the view, retry
                version = ""
                if not self.stopped.is_set():
                    self.error = f"{kind}: {exc}"
                    self.changed.set()
                    self.stopped.wait(2)
