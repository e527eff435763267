"""Helpers of the real-node tests: threads in the cluster's network namespace, real traffic
over a Service's ready endpoints, a clock on the pods, and Rollouts of the demo app."""

from __future__ import annotations

import contextlib
import ctypes
import http.client
import json
import shutil
import signal
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, watch
from ramp_e2e import Rollouts, Sampling, rollout_manifest, wait_for

from cluster import realnode
from cluster.fixtures import ClusterHandle
from cluster.launcher import Cluster, ClusterError
from prometheus.fixtures import free_port
from ramp.api.labels import revision_hash

T = TypeVar("T")
PORT = 8080
SHUTDOWN_DELAY = "2s"
"""How long the demo app keeps serving after SIGTERM before it drains and exits 0."""


class NetnsPool:
    """Worker threads that live in the cluster's network namespace: what they connect to
    is what a pod or a client inside the cluster would reach (pod IPs, the namespace's
    127.0.0.1)."""

    def __init__(self, path: str, workers: int = 8) -> None:
        self._ex = ThreadPoolExecutor(
            workers, thread_name_prefix="netns", initializer=realnode.setns, initargs=(path,)
        )

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return self._ex.submit(fn, *args)

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        return self._ex.submit(fn, *args).result()

    def shutdown(self) -> None:
        self._ex.shutdown(wait=False, cancel_futures=True)


def demo_rollout(
    name: str,
    replicas: int,
    steps: list[dict[str, Any]],
    env: dict[str, str] | None = None,
    deadline: int = 60,
    **canary: Any,
) -> dict[str, Any]:
    """A Rollout of the demo app on the real node: its image imported into containerd
    (``imagePullPolicy: Never``), a real readiness probe on ``/ready`` every second, scraped
    by Prometheus, on the real node only (its label and taint)."""
    manifest = rollout_manifest(
        name, replicas=replicas, steps=steps, image=realnode.DEMO_IMAGE, deadline=deadline, **canary
    )
    template = manifest["spec"]["template"]
    template["metadata"]["annotations"] = {"prometheus.io/scrape": "true"}
    template["spec"] = {
        "containers": [container({"VERSION": "v1", **(env or {})})],
        "nodeSelector": {realnode.NODE_LABEL: "true"},
        "tolerations": [{"key": realnode.NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}],
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": 15,
        "enableServiceLinks": False,
    }
    return manifest


def container(env: dict[str, str]) -> dict[str, Any]:
    return {
        "name": "app",
        "image": realnode.DEMO_IMAGE,
        "imagePullPolicy": "Never",
        "env": [
            {"name": k, "value": v}
            for k, v in sorted({"SHUTDOWN_DELAY": SHUTDOWN_DELAY, **env}.items())
        ],
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {
            "httpGet": {"path": "/ready", "port": PORT},
            "periodSeconds": 1,
            # a loaded machine can miss a 1 s probe: a ready pod is not dropped for one miss
            "timeoutSeconds": 2,
            "failureThreshold": 3,
            "successThreshold": 1,
        },
    }


def release(rollouts: Rollouts, name: str, env: dict[str, str]) -> str:
    """A new version: the demo app's container with this environment (one patch); returns
    the revision Ramp gives it."""
    rollouts.patch(name, {"spec": {"template": {"spec": {"containers": [container(env)]}}}})
    return revision_hash(rollouts.get(name)["spec"]["template"])


def service(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": PORT}]},
    }


class Traffic:
    """Real requests to a Service's pods, as kube-proxy would spread them: ``rps`` a second
    in turn over the **ready endpoints** of its EndpointSlices (refreshed twice a second),
    sent from the cluster's namespace to the pod IPs. Bounded: it stops by itself after
    ``seconds`` or ``limit`` requests. ``counts[(revision, code)]``; code 0 is a failed
    connection; ``first[(revision, code)]`` the monotonic time of the first such answer."""

    def __init__(
        self,
        pool: NetnsPool,
        api: Any,
        namespace: str,
        service: str,
        rps: float = 40,
        seconds: float = 150,
        limit: int = 6000,
    ) -> None:
        self.pool = pool
        self.core = client.CoreV1Api(api)
        self.discovery = client.DiscoveryV1Api(api)
        self.ns, self.service = namespace, service
        self.rps, self.seconds, self.limit = rps, seconds, limit
        self.counts: Counter[tuple[str, int]] = Counter()
        self.first: dict[tuple[str, int], float] = {}
        self.sent = 0
        self._endpoints: list[tuple[str, str]] = []  # (ip, revision)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"traffic-{service}", daemon=True)

    def start(self) -> Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def endpoints(self) -> list[tuple[str, str]]:
        return list(self._endpoints)

    def _refresh(self) -> None:
        slices = self.discovery.list_namespaced_endpoint_slice(
            self.ns, label_selector=f"kubernetes.io/service-name={self.service}"
        ).items
        pods = {p.metadata.name: p for p in self.core.list_namespaced_pod(self.ns).items}
        found = []
        for s in slices:
            for ep in s.endpoints or []:
                if ep.conditions is not None and ep.conditions.ready is False:
                    continue
                ref = ep.target_ref
                pod = pods.get(ref.name) if ref is not None else None
                rev = (pod.metadata.labels or {}).get("ramp.dev/revision", "") if pod else ""
                found.extend((addr, rev) for addr in ep.addresses)
        self._endpoints = sorted(set(found))

    def _request(self, ip: str, revision: str) -> None:
        code = 0
        try:
            conn = http.client.HTTPConnection(ip, PORT, timeout=3)
            conn.request("GET", "/")
            resp = conn.getresponse()
            resp.read()
            code = resp.status
            conn.close()
        except OSError:
            pass
        with self._lock:
            self.counts[(revision, code)] += 1
            self.first.setdefault((revision, code), time.monotonic())

    def _run(self) -> None:
        began = time.monotonic()
        next_refresh = 0.0
        turn = 0
        while not self._stop.is_set() and self.sent < self.limit:
            now = time.monotonic()
            if now - began > self.seconds:
                break
            if now >= next_refresh:
                with contextlib.suppress(Exception):  # API busy: keep the last endpoints
                    self._refresh()
                next_refresh = now + 0.5
            endpoints = self._endpoints
            if endpoints:
                ip, rev = endpoints[turn % len(endpoints)]
                turn += 1
                self.pool.submit(self._request, ip, rev)
                self.sent += 1
            self._stop.wait(1 / self.rps)

    def by_revision(self, revision: str) -> dict[int, int]:
        with self._lock:
            return {code: n for (rev, code), n in self.counts.items() if rev == revision}


@dataclass
class PodTimes:
    """What the watch saw of one pod (monotonic seconds)."""

    name: str
    revision: str
    seen: float
    ready: float | None = None
    deleting: float | None = None
    gone: float | None = None
    terminated: dict[str, Any] = field(default_factory=dict)


class PodClock:
    """Watches a namespace's pods: when each appeared, became Ready, got its deletion and
    was gone, and how its container ended (exit code, reason, message)."""

    def __init__(self, api: Any, namespace: str) -> None:
        self.core = client.CoreV1Api(api)
        self.ns = namespace
        self.pods: dict[str, PodTimes] = {}
        self._watch = watch.Watch()
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-clock", daemon=True)

    def start(self) -> PodClock:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._watch.stop()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                for event in self._watch.stream(
                    self.core.list_namespaced_pod, self.ns, timeout_seconds=300
                ):
                    self._see(event["type"], event["object"])
            except Exception:  # a dropped watch: watch again
                time.sleep(0.2)

    def _see(self, kind: str, pod: Any) -> None:
        now = time.monotonic()
        uid = pod.metadata.uid
        times = self.pods.get(uid)
        if times is None:
            rev = (pod.metadata.labels or {}).get("ramp.dev/revision", "")
            times = self.pods[uid] = PodTimes(pod.metadata.name, rev, now)
        ready = any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])
        if ready and times.ready is None:
            times.ready = now
        if pod.metadata.deletion_timestamp and times.deleting is None:
            times.deleting = now
        for status in pod.status.container_statuses or []:
            term = status.state.terminated if status.state else None
            if term is not None:
                times.terminated = {
                    "exit_code": term.exit_code,
                    "reason": term.reason,
                    "message": term.message or "",
                }
        if kind == "DELETED":
            times.gone = now

    def of(self, revision: str) -> list[PodTimes]:
        return [t for t in list(self.pods.values()) if t.revision == revision]


class ReadySampler(Sampling[dict[str, int]]):
    """Samples the ready pods per revision every ``interval`` seconds (from the Pods)."""

    def __init__(self, rollouts: Rollouts, name: str, interval: float = 0.25) -> None:
        super().__init__()
        self.rollouts, self.name, self.interval = rollouts, name, interval

    def sample(self) -> dict[str, int]:
        return self.rollouts.ready_pods(self.name)

    def minimum(self, revision: str) -> int:
        return min((s.get(revision, 0) for s in self.samples), default=0)


def stats(values: list[float]) -> str:
    if not values:
        return "n/a"
    values = sorted(values)
    return (
        f"n={len(values)} min {values[0]:.2f}s median {values[len(values) // 2]:.2f}s "
        f"max {values[-1]:.2f}s"
    )


FIGURES: list[str] = []
"""Figures the real-node tests measured, printed at the end of the session."""


class RealCluster:
    """The session's cluster with a real node: its handle, launcher and namespace."""

    def __init__(self, handle: ClusterHandle, launcher: Cluster) -> None:
        self.handle = handle
        self.launcher = launcher
        self.netns_pid = int(launcher.load_state()["netns_pid"])
        self.pool = NetnsPool(realnode.netns_path(self.netns_pid))

    def preexec(self) -> Callable[[], None]:
        """For a subprocess of the tests: into the cluster's namespace, and SIGTERM when the
        test process dies."""
        enter = realnode.preexec_in(self.netns_pid)

        def run() -> None:
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
            enter()

        return run


class RealPrometheus:
    """Debian's Prometheus in the cluster's namespace: 1 s scrapes of the annotated pods."""

    def __init__(self, real: RealCluster, workdir: Path) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise ClusterError("prometheus is not installed: run `make prometheus-install`")
        self.real = real
        self.port = free_port()  # free here; the namespace has its own ports anyway
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        # Debian's Prometheus has no Kubernetes discovery: the pods are discovered here
        # (from the API, every 0.5 s) into a file it watches; the scrapes are its own.
        self.targets = workdir / "targets.json"
        self.targets.write_text("[]")
        config = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "scrape_configs": [
                {
                    "job_name": "pods",
                    "file_sd_configs": [{"files": [str(self.targets)], "refresh_interval": "1s"}],
                }
            ],
        }
        self.core = client.CoreV1Api(real.handle.client)
        self._stop = threading.Event()
        self._discovery = threading.Thread(target=self._discover, name="pod-sd", daemon=True)
        self.config: dict[str, Any] = config
        (workdir / "prometheus.yml").write_text(json.dumps(config, indent=2))
        self.binary = binary
        self.proc: subprocess.Popen[bytes] | None = None

    def _discover(self) -> None:
        """Scrape targets: the pods annotated ``prometheus.io/scrape: "true"`` that have an
        IP, labelled with their namespace, name, rollout (``app``) and revision."""
        last = ""
        while not self._stop.wait(0.5):
            try:
                pods = self.core.list_pod_for_all_namespaces().items
            except Exception:  # the API may be busy: keep the last targets
                continue
            groups = []
            for pod in pods:
                annotations = pod.metadata.annotations or {}
                if annotations.get("prometheus.io/scrape") != "true" or not pod.status.pod_ip:
                    continue
                labels = pod.metadata.labels or {}
                groups.append(
                    {
                        "targets": [f"{pod.status.pod_ip}:{PORT}"],
                        "labels": {
                            "namespace": pod.metadata.namespace,
                            "pod": pod.metadata.name,
                            "rollout": labels.get("app", ""),
                            "revision": labels.get("ramp.dev/revision", ""),
                        },
                    }
                )
            text = json.dumps(sorted(groups, key=lambda g: g["labels"]["pod"]))
            if text != last:
                tmp = self.targets.with_suffix(".tmp")
                tmp.write_text(text)
                tmp.replace(self.targets)
                last = text

    def scrape(
        self, job: str, address: str, metric_relabel: list[dict[str, Any]] | None = None
    ) -> None:
        """Scrape ``address`` (host:port, ``/metrics``) every second too, as job ``job`` with
        these ``metric_relabel_configs`` (replacing a job of that name): the configuration is
        written again and Prometheus reloads it (SIGHUP)."""
        jobs = [j for j in self.config["scrape_configs"] if j["job_name"] != job]
        jobs.append(
            {
                "job_name": job,
                "static_configs": [{"targets": [address]}],
                "metric_relabel_configs": metric_relabel or [],
            }
        )
        self.config["scrape_configs"] = jobs
        path = self.workdir / "prometheus.yml"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.config, indent=2))
        tmp.replace(path)
        if self.proc is not None:
            self.proc.send_signal(signal.SIGHUP)

    def start(self) -> None:
        if not self._discovery.is_alive():
            self._discovery.start()
        log = (self.workdir / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                self.binary,
                f"--config.file={self.workdir / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=self.real.preexec(),
        )
        log.close()
        wait_for("Prometheus ready", lambda: self._get("/-/ready") is not None, timeout=60)

    def stop(self) -> None:
        self._stop.set()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def _get(self, path: str) -> bytes | None:
        def get() -> bytes | None:
            try:
                with urllib.request.urlopen(self.url + path, timeout=3) as resp:
                    return bytes(resp.read())
            except OSError:
                return None

        return self.real.pool.run(get)

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        body = self._get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        if body is None:
            return []
        result = json.loads(body)["data"]["result"]
        return [(r["metric"], float(r["value"][1])) for r in result]

    def log_tail(self, lines: int = 20) -> str:
        path = self.workdir / "prometheus.log"
        return (
            "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
            if path.exists()
            else ""
        )
