"""The dashboard's view of every Rollout in scope: one list-then-watch in a thread."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

from kubernetes import watch as _watch
from kubernetes.client.exceptions import ApiException

from ramp import GROUP, VERSION
from ramp.cli.client import PLURAL, Kube, Obj, api_error

watch: Any = _watch


class RolloutsWatch:
    """Every Rollout in scope (one namespace or all), kept current by a watch in a thread."""

    def __init__(self, kube: Kube, all_namespaces: bool, on_change: Callable[[], None]) -> None:
        self.kube = kube
        self.all_namespaces = all_namespaces
        self.on_change = on_change
        self.synced = threading.Event()
        self.stopped = threading.Event()
        self.error: str | None = None
        self.lock = threading.Lock()
        self.items: dict[tuple[str, str], Obj] = {}
        self._stream: Any = None
        self._thread = threading.Thread(target=self._run, name="watch-rollouts", daemon=True)

    def start(self) -> RolloutsWatch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        with contextlib.suppress(Exception):
            if self._stream is not None:
                self._stream.stop()
        self._thread.join(timeout=2)

    def snapshot(self) -> list[Obj]:
        with self.lock:
            return list(self.items.values())

    def _call(self) -> tuple[Callable[..., Any], dict[str, Any]]:
        if self.all_namespaces:
            return self.kube.custom.list_cluster_custom_object, {
                "group": GROUP,
                "version": VERSION,
                "plural": PLURAL,
            }
        return self.kube.custom.list_namespaced_custom_object, {
            "group": GROUP,
            "version": VERSION,
            "plural": PLURAL,
            "namespace": self.kube.namespace,
        }

    @staticmethod
    def _key(obj: Obj) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        return str(meta.get("namespace", "")), str(meta.get("name", ""))

    def _run(self) -> None:
        func, kwargs = self._call()
        version = ""
        while not self.stopped.is_set():
            try:
                if not version:
                    result = func(**kwargs)
                    with self.lock:
                        self.items = {self._key(o): o for o in result.get("items") or []}
                    version = str((result.get("metadata") or {}).get("resourceVersion") or "")
                    self.error = None
                    self.synced.set()
                    self.on_change()
                self._stream = watch.Watch()
                for event in self._stream.stream(
                    func, resource_version=version, timeout_seconds=60, deserialize=False, **kwargs
                ):
                    if self.stopped.is_set():
                        return
                    obj: Obj = event["object"]
                    if event["type"] == "BOOKMARK":
                        continue
                    if event["type"] == "ERROR":
                        version = ""
                        break
                    version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                    with self.lock:
                        if event["type"] == "DELETED":
                            self.items.pop(self._key(obj), None)
                        else:
                            self.items[self._key(obj)] = obj
                    self.on_change()
            except ApiException as exc:
                version = ""
                if exc.status != 410 and not self.stopped.is_set():
                    self.error = api_error(exc)
                    self.synced.set()
                    self.on_change()
                    self.stopped.wait(2)
            except Exception as exc:  # the network: say so on the page, retry
                version = ""
                if not self.stopped.is_set():
                    self.error = str(exc)
                    self.synced.set()
                    self.on_change()
                    self.stopped.wait(2)
