"""Given/When/Then helpers for end-to-end tests of Rollouts on the real cluster."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Generic, Self, TypeVar

from kubernetes import client

from cluster.waiting import wait_for
from ramp.core.names import rollout_label

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
T = TypeVar("T")
GROUP, VERSION, PLURAL = "ramp.dev", "v1alpha1", "rollouts"
PROMETHEUS_TOKEN = "ramp-e2e-bearer-7f3c9d2a41"
"""The bearer token the shared operator sends to Prometheus (from a Secret); tests check
that it never shows up in a Rollout's status, its Events or the operator's log."""


def stop_group(proc: subprocess.Popen[bytes] | None, sig: int, timeout: float) -> None:
    """Signal a process started with ``start_new_session`` and its group; SIGKILL the
    group when it has not exited within ``timeout`` seconds."""
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


class OperatorProcess:
    """The operator as a subprocess (``python -m ramp``), with its log in a file."""

    def __init__(
        self,
        kubeconfig: Path,
        log_path: Path,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        preexec_fn: Callable[[], None] | None = None,
    ) -> None:
        self.preexec_fn = preexec_fn
        """Run in the child before exec (the real-node tests enter the cluster's namespace)."""
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.args = list(args)
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        log.write(f"--- start {time.strftime('%H:%M:%S')} {self.args}\n".encode())
        log.flush()
        self._log_offset = self.log_path.stat().st_size
        # Tests run side by side on one machine: serve /metrics on a free loopback port
        # (see metrics_url) unless the test chose one.
        serving = [] if "--metrics-port" in self.args else ["--metrics-port", "0"]
        if not any(a.startswith("--health-port") for a in self.args):
            serving += ["--health-port", "0"]
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ramp",
                "--kubeconfig",
                str(self.kubeconfig),
                *serving,
                *self.args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            cwd=REPO,
            start_new_session=True,
            preexec_fn=self.preexec_fn,
        )
        log.close()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        stop_group(self.proc, sig, timeout)
        self.proc = None

    def kill(self) -> None:
        self.stop(signal.SIGKILL)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def current_log(self) -> str:
        """The log of the current run only (the file keeps earlier runs too)."""
        text = self.log_path.read_bytes()[self._log_offset :] if self.log_path.exists() else b""
        return text.decode(errors="replace")

    def metrics_url(self, timeout: float = 30) -> str:
        """``http://127.0.0.1:PORT`` of this run's /metrics server (from its log)."""

        def find() -> str | None:
            found = re.findall(r"serving /metrics\S* .*?on (http://[\d.]+:\d+)", self.current_log())
            return found[-1] if found else None

        url: str = wait_for("the operator's metrics server", find, timeout=timeout)
        return url

    def probes_url(self, timeout: float = 30) -> str:
        """``http://127.0.0.1:PORT`` of this run's /healthz and /readyz (from its log)."""

        def find() -> str | None:
            found = re.findall(r"serving /healthz\S* .*?on (http://[\d.]+:\d+)", self.current_log())
            return found[-1] if found else None

        url: str = wait_for("the operator's probes server", find, timeout=timeout)
        return url

    def scrape(self, path: str = "/metrics", timeout: float = 5) -> str:
        """GET a path of the operator's HTTP servers (raises on a non-2xx answer): the
        probes on theirs, /metrics with the bearer token of a reader RBAC allows."""
        if path in ("/healthz", "/readyz"):
            request = urllib.request.Request(self.probes_url() + path)
        else:
            request = urllib.request.Request(
                self.metrics_url() + path,
                headers={"Authorization": f"Bearer {metrics_reader_token()}"},
            )
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            return str(resp.read().decode())


ADMIN_KUBECONFIG: Path | None = None
"""The cluster's admin kubeconfig (set by conftest for every test that uses ``cluster``)."""
METRICS_READER = ("default", "ramp-e2e-metrics-reader")
_reader_tokens: dict[str, tuple[float, str]] = {}


def metrics_reader_token(allowed: bool = True) -> str:
    """A bearer token of a ServiceAccount that may ``get`` the non-resource URL /metrics
    (``allowed=False``: of one that may not), as Prometheus' would be; cached 30 min."""
    assert ADMIN_KUBECONFIG is not None, "no cluster: metrics_reader_token needs the admin"
    namespace, name = METRICS_READER
    if not allowed:
        name += "-denied"
    key = f"{ADMIN_KUBECONFIG}:{name}"
    cached = _reader_tokens.get(key)
    if cached is not None and cached[0] > time.monotonic():
        return cached[1]
    from kubernetes import config
    from kubernetes.client.exceptions import ApiException

    api = config.new_client_from_config(config_file=str(ADMIN_KUBECONFIG))
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)

    def ensure(create: Callable[..., Any], *args: Any) -> None:
        try:
            create(*args)
        except ApiException as exc:
            if exc.status != 409:
                raise

    ensure(core.create_namespaced_service_account, namespace, {"metadata": {"name": name}})
    if allowed:
        ensure(
            rbac.create_cluster_role,
            {
                "metadata": {"name": name},
                "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}],
            },
        )
        ensure(
            rbac.create_cluster_role_binding,
            {
                "metadata": {"name": name},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": name,
                },
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}],
            },
        )
    review = core.create_namespaced_service_account_token(
        name, namespace, {"spec": {"expirationSeconds": 3600}}
    )
    token = str(review.status.token)
    _reader_tokens[key] = (time.monotonic() + 1800, token)
    api.close()
    return token


def rollout_manifest(
    name: str,
    replicas: int = 10,
    steps: list[dict[str, Any]] | None = None,
    image: str = "ramp-test/app:v1",
    labels: dict[str, str] | None = None,
    deadline: int = 60,
    **canary: Any,
) -> dict[str, Any]:
    pod_labels = {"app": name, **(labels or {})}
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "progressDeadlineSeconds": deadline,
            "strategy": {"canary": {"steps": steps if steps is not None else [], **canary}},
        },
    }


class Rollouts:
    """Verbs on Rollouts of one namespace, through the API (as a user would)."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.ns = namespace
        self.custom = client.CustomObjectsApi(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.core = client.CoreV1Api(api_client)

    def create(self, manifest: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, manifest
        )
        return obj

    def get(self, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.ns, PLURAL, name
        )
        return obj

    def status(self, name: str) -> dict[str, Any]:
        return dict(self.get(name).get("status") or {})

    def patch(self, name: str, body: dict[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name, body)

    def set_image(self, name: str, image: str) -> None:
        obj = self.get(name)
        containers = obj["spec"]["template"]["spec"]["containers"]
        containers[0]["image"] = image
        self.patch(name, {"spec": {"template": {"spec": {"containers": containers}}}})

    def set_template_labels(self, name: str, labels: dict[str, str | None]) -> None:
        self.patch(name, {"spec": {"template": {"metadata": {"labels": labels}}}})

    def request(self, name: str, verb: str, token: str | None = None) -> str:
        """Annotate a one-shot request (promote, promote-full, abort, retry)."""
        token = token or secrets.token_hex(4)
        self.patch(name, {"metadata": {"annotations": {f"ramp.dev/{verb}": token}}})
        return token

    def deployments(self, name: str) -> dict[str, Any]:
        """Child Deployments by revision."""
        items = self.apps.list_namespaced_deployment(
            self.ns, label_selector=f"ramp.dev/rollout={rollout_label(name)}"
        ).items
        return {d.metadata.labels["ramp.dev/revision"]: d for d in items}

    def ready_pods(self, name: str) -> dict[str, int]:
        """Ready pods per revision, counted from the Pods themselves."""
        pods = self.core.list_namespaced_pod(self.ns, label_selector=f"app={name}").items
        counts: dict[str, int] = {}
        for pod in pods:
            if pod.metadata.deletion_timestamp:
                continue
            ready = any(
                c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []
            )
            if ready:
                rev = pod.metadata.labels.get("ramp.dev/revision", "")
                counts[rev] = counts.get(rev, 0) + 1
        return counts

    def pod_uids(self, name: str, revision: str) -> set[str]:
        pods = self.core.list_namespaced_pod(
            self.ns, label_selector=f"app={name},ramp.dev/revision={revision}"
        ).items
        return {p.metadata.uid for p in pods if not p.metadata.deletion_timestamp}

    def events(self, name: str) -> list[tuple[str, str, str]]:
        items = self.core.list_namespaced_event(
            self.ns, field_selector=f"involvedObject.name={name},involvedObject.kind=Rollout"
        ).items
        items.sort(key=lambda e: (e.first_timestamp or e.event_time or 0, e.metadata.name))
        return [(e.type, e.reason, e.message) for e in items]

    def step_history(self, name: str) -> list[int]:
        """Indices of the steps the Rollout's current (or last) rollout completed by
        themselves, from ``status.stepHistory`` (no Event is posted per step)."""
        status = self.get(name).get("status") or {}
        return [int(h["index"]) for h in status.get("stepHistory") or []]

    def wait_events(
        self, name: str, reason: str, count: int, timeout: float = 15
    ) -> list[tuple[str, str, str]]:
        """The Rollout's Events of ``reason`` once at least ``count`` exist (they are posted
        just after the status that they describe, so a test may see the status first)."""

        def probe() -> list[tuple[str, str, str]] | None:
            found = [e for e in self.events(name) if e[1] == reason]
            return found if len(found) >= count else None

        result: list[tuple[str, str, str]] = wait_for(
            f"{count} {reason} Events of {name}",
            probe,
            timeout=timeout,
            describe=lambda: str(self.events(name)),
        )
        return result

    def wait(
        self, name: str, what: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            status = self.status(name)
            return status if predicate(status) else None

        def describe() -> str:
            s = self.status(name)
            return (
                f"last status: phase={s.get('phase')} step={s.get('currentStepIndex')} "
                f"message={s.get('message')!r}"
            )

        result: dict[str, Any] = wait_for(
            f"rollout {name}: {what}", probe, timeout=timeout, describe=describe
        )
        return result

    def wait_phase(self, name: str, phase: str, timeout: float = 60) -> dict[str, Any]:
        return self.wait(name, f"phase {phase}", lambda s: s.get("phase") == phase, timeout)

    def wait_healthy(self, name: str, replicas: int, timeout: float = 60) -> dict[str, Any]:
        return self.wait(
            name,
            f"Healthy with {replicas} ready",
            lambda s: (
                s.get("phase") == "Healthy"
                and s.get("readyReplicas") == replicas
                and s.get("replicas") == replicas
                and not s.get("canaryRevision")
            ),
            timeout,
        )


class Sampling(Generic[T]):
    """Calls :meth:`sample` every ``interval`` seconds in a thread while open (``with``) and
    keeps what it returns in ``samples``; an exception (a transient API error) is a missing
    sample."""

    interval = 0.25

    def __init__(self) -> None:
        self.samples: list[T] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=type(self).__name__, daemon=True)

    def sample(self) -> T:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                self.samples.append(self.sample())
            self._stop.wait(self.interval)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def condition(status: dict[str, Any], ctype: str) -> dict[str, Any]:
    for c in status.get("conditions") or []:
        if c["type"] == ctype:
            return dict(c)
    return {}
