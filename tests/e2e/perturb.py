"""Helpers for the perturbation tests: what the cluster really holds, and watches that
check a safety property the whole time a test pushes back on a rollout."""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from kubernetes.client.exceptions import ApiException
from ramp_e2e import GROUP, PLURAL, VERSION, Rollouts, wait_for

from cluster.fixtures import ClusterHandle
from cluster.launcher import Cluster
from ramp.core.names import rollout_label

ROLLOUT_LABEL = "ramp.dev/rollout"
REVISION_LABEL = "ramp.dev/revision"


def controller_uid(obj: Any) -> str | None:
    """The uid of an object's controller ownerReference (None when it has none)."""
    for ref in obj.metadata.owner_references or []:
        if ref.controller:
            return str(ref.uid)
    return None


def uid(rollouts: Rollouts, name: str) -> str:
    return str(rollouts.get(name)["metadata"]["uid"])


def owned(rollouts: Rollouts, name: str, owner: str | None = None) -> dict[str, Any]:
    """The Deployments the Rollout (or the uid ``owner``) controls, by revision."""
    owner = owner or uid(rollouts, name)
    return {rev: d for rev, d in rollouts.deployments(name).items() if controller_uid(d) == owner}


def replicas(rollouts: Rollouts, name: str) -> dict[str, int]:
    """spec.replicas of every Deployment labelled for the Rollout, by revision."""
    return {rev: d.spec.replicas for rev, d in rollouts.deployments(name).items()}


def history(rollouts: Rollouts, name: str) -> dict[str, Any]:
    """The Rollout's ControllerRevisions by revision."""
    items = rollouts.apps.list_namespaced_controller_revision(
        rollouts.ns, label_selector=f"{ROLLOUT_LABEL}={rollout_label(name)}"
    ).items
    return {c.metadata.labels[REVISION_LABEL]: c for c in items}


def scale(rollouts: Rollouts, name: str, count: int) -> None:
    """``kubectl scale`` through the scale subresource (as an HPA does)."""
    rollouts.custom.patch_namespaced_custom_object_scale(
        GROUP, VERSION, rollouts.ns, PLURAL, name, {"spec": {"replicas": count}}
    )


def delete_rollout(rollouts: Rollouts, name: str, propagation: str = "Background") -> None:
    rollouts.custom.delete_namespaced_custom_object(
        GROUP, VERSION, rollouts.ns, PLURAL, name, propagation_policy=propagation
    )


def wait_gone(rollouts: Rollouts, name: str, timeout: float = 30) -> None:
    def gone() -> bool:
        try:
            rollouts.get(name)
        except ApiException as exc:
            return exc.status == 404
        return False

    wait_for(f"rollout {name} deleted", gone, timeout=timeout)


def wait_split(
    rollouts: Rollouts, name: str, want: dict[str, int], timeout: float = 60
) -> dict[str, int]:
    """Wait until the ready pods per revision are exactly ``want``."""
    result: dict[str, int] = wait_for(
        f"ready pods of {name} = {want}",
        lambda: rollouts.ready_pods(name) if rollouts.ready_pods(name) == want else None,
        timeout=timeout,
        describe=lambda: (
            f"ready pods {rollouts.ready_pods(name)}, replicas "
            f"{replicas(rollouts, name)}, status {rollouts.status(name).get('message')!r}"
        ),
    )
    return result


def ready_selected(rollouts: Rollouts, service: str) -> tuple[dict[str, str], int]:
    """A Service's selector and how many ready pods it selects."""
    selector = rollouts.core.read_namespaced_service(service, rollouts.ns).spec.selector or {}
    text = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
    pods = rollouts.core.list_namespaced_pod(rollouts.ns, label_selector=text).items
    ready = sum(
        1
        for p in pods
        if not p.metadata.deletion_timestamp
        and any(c.type == "Ready" and c.status == "True" for c in p.status.conditions or [])
    )
    return dict(selector), ready


def ready_endpoints(rollouts: Rollouts, service: str) -> int:
    """Ready endpoints of a Service, from its EndpointSlices (the endpoint controller)."""
    from kubernetes import client

    slices = client.DiscoveryV1Api(rollouts.custom.api_client).list_namespaced_endpoint_slice(
        rollouts.ns, label_selector=f"kubernetes.io/service-name={service}"
    )
    return sum(
        1
        for s in slices.items
        for e in s.endpoints or []
        if e.conditions is None or e.conditions.ready is not False
    )


def create_service(rollouts: Rollouts, service: str, app: str) -> None:
    rollouts.core.create_namespaced_service(
        rollouts.ns,
        {
            "metadata": {"name": service},
            "spec": {"selector": {"app": app}, "ports": [{"port": 80}]},
        },
    )


class Watch:
    """Checks a safety property every ``interval`` seconds in a background thread and
    records each violation (with the state seen); :meth:`check` raises if any happened."""

    def __init__(self, what: str, probe: Callable[[], str | None], interval: float = 0.2) -> None:
        self.what = what
        self.probe = probe
        self.interval = interval
        self.violations: list[str] = []
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name=f"watch {what}")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                problem = self.probe()
            except ApiException as exc:  # e.g. the API server is down on purpose
                problem = None if exc.status in (0, 500, 503, 504) else f"API error {exc}"
            except Exception:
                problem = None if self._transient() else traceback.format_exc(limit=2)
            self.samples += 1
            if problem:
                self.violations.append(f"{time.strftime('%H:%M:%S')} {problem}")
            self._stop.wait(self.interval)

    @staticmethod
    def _transient() -> bool:
        import sys

        exc = sys.exc_info()[1]
        text = repr(exc)
        return any(s in text for s in ("Connection refused", "MaxRetryError", "RemoteDisconnected"))

    def start(self) -> Watch:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def check(self) -> None:
        assert self.samples > 0, f"the watch of {self.what} never ran"
        assert not self.violations, (
            f"{self.what} violated {len(self.violations)} times in {self.samples} samples:\n"
            + "\n".join(self.violations[:10])
        )


@contextmanager
def watching(what: str, probe: Callable[[], str | None], interval: float = 0.2) -> Iterator[Watch]:
    """``with watching("...", probe) as w: ...`` — the property is checked on exit."""
    w = Watch(what, probe, interval).start()
    try:
        yield w
    finally:
        w.stop()
    w.check()


def launcher_of(cluster: ClusterHandle) -> Cluster:
    """The launcher of the test cluster: the fixture's own, or (RAMP_TEST_KUBECONFIG set to
    a cluster started with ``launcher.py up --dir DIR``) the one whose DIR holds it."""
    if cluster.launcher is not None:
        return cluster.launcher
    folder = Path(cluster.kubeconfig).resolve().parent
    if not (folder / "cluster.json").exists():
        raise AssertionError(
            f"{cluster.kubeconfig} is not a cluster of tests/cluster/launcher.py: its "
            "components cannot be restarted"
        )
    return Cluster(folder)
