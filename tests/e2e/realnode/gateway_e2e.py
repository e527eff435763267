"""A real Gateway API gateway for the real-node tests: Traefik (tests/cluster/gateway) in the
cluster's network namespace, serving the HTTPRoutes of every namespace on one listener, and
real HTTP traffic through it (docs/gateway-api.md).

Traefik runs outside any pod, like the control plane, with the cluster's kubeconfig: it
reads Gateways, HTTPRoutes and EndpointSlices from the API server and proxies to the pod
addresses of the ready endpoints on the node's bridge. Its listener, its metrics and every
request live in the cluster's namespace: nothing leaves it.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client
from ramp_e2e import Rollouts, stop_group, wait_for
from realnode_e2e import RealCluster, demo_rollout, service

from cluster import realnode
from cluster.launcher import ClusterError, wait_established
from prometheus.fixtures import free_port

BIN = Path(__file__).resolve().parents[2] / "cluster" / "bin"
TRAEFIK = BIN / "traefik"
GATEWAY_CRDS = BIN / "gateway-api-crds.yaml"
GW_GROUP, GW_VERSION = "gateway.networking.k8s.io", "v1"
GATEWAY_NS = "ramp-gateway"
GATEWAY = "web"
CLASS = "ramp-traefik"


class RealGateway:
    """Traefik as the controller of GatewayClass ``ramp-traefik`` and of the Gateway
    ``ramp-gateway/web`` (HTTP on ``port``, routes from all namespaces); Prometheus
    metrics per service and code on ``metrics_port``."""

    def __init__(self, real: RealCluster, workdir: Path) -> None:
        if not TRAEFIK.exists() or not GATEWAY_CRDS.exists():
            raise ClusterError("traefik is not built: run `make gateway-build`")
        self.real = real
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.metrics_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.custom = client.CustomObjectsApi(real.handle.client)

    def start(self) -> None:
        handle = self.real.handle
        handle.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(GATEWAY_CRDS))
        wait_established(
            handle.kubeconfig,
            [f"{p}.{GW_GROUP}" for p in ("gatewayclasses", "gateways", "httproutes")],
        )
        core = client.CoreV1Api(handle.client)
        core.create_namespace({"metadata": {"name": GATEWAY_NS}})
        self.custom.create_cluster_custom_object(
            GW_GROUP,
            GW_VERSION,
            "gatewayclasses",
            {
                "apiVersion": f"{GW_GROUP}/{GW_VERSION}",
                "kind": "GatewayClass",
                "metadata": {"name": CLASS},
                "spec": {"controllerName": "traefik.io/gateway-controller"},
            },
        )
        self.custom.create_namespaced_custom_object(
            GW_GROUP,
            GW_VERSION,
            GATEWAY_NS,
            "gateways",
            {
                "apiVersion": f"{GW_GROUP}/{GW_VERSION}",
                "kind": "Gateway",
                "metadata": {"name": GATEWAY},
                "spec": {
                    "gatewayClassName": CLASS,
                    "listeners": [
                        {
                            "name": "http",
                            "protocol": "HTTP",
                            "port": self.port,
                            "allowedRoutes": {"namespaces": {"from": "All"}},
                        }
                    ],
                },
            },
        )
        log = (self.workdir / "traefik.log").open("wb")
        self.proc = subprocess.Popen(
            [
                str(TRAEFIK),
                "--global.checkNewVersion=false",
                "--global.sendAnonymousUsage=false",
                "--log.level=INFO",
                "--providers.kubernetesgateway=true",
                # the default 2 s throttle would delay every weight change
                "--providers.providersThrottleDuration=0s",
                f"--entryPoints.web.address=127.0.0.1:{self.port}",
                f"--entryPoints.metrics.address=127.0.0.1:{self.metrics_port}",
                "--metrics.prometheus=true",
                "--metrics.prometheus.entryPoint=metrics",
                "--metrics.prometheus.addServicesLabels=true",
                "--ping=true",
                "--ping.entryPoint=metrics",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "KUBECONFIG": str(handle.kubeconfig)},
            preexec_fn=self.real.preexec(),
        )
        log.close()
        wait_for("traefik's /ping", lambda: self.get(self.metrics_port, "/ping")[0] == 200, 60)
        wait_for("the Gateway Programmed", self.programmed, timeout=60)

    def programmed(self) -> bool:
        gw = self.custom.get_namespaced_custom_object(
            GW_GROUP, GW_VERSION, GATEWAY_NS, "gateways", GATEWAY
        )
        conditions = (gw.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Programmed" and c["status"] == "True" for c in conditions)

    def stop(self) -> None:
        stop_group(self.proc, 15, 10)
        self.proc = None

    def get(
        self, port: int, path: str, host: str = "", headers: dict[str, str] | None = None
    ) -> tuple[int, str]:
        """One request from the cluster's namespace: (status, body); 0 when it failed."""

        def fetch() -> tuple[int, str]:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
                conn.request("GET", path, headers={"Host": host or "x", **(headers or {})})
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace")
                conn.close()
                return resp.status, body
            except OSError:
                return 0, ""

        return self.real.pool.run(fetch)

    def log_tail(self, lines: int = 30) -> str:
        path = self.workdir / "traefik.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    # -- routes -------------------------------------------------------------------

    def route(self, name: str, host: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
        """An HTTPRoute of ``host`` on this gateway."""
        return {
            "apiVersion": f"{GW_GROUP}/{GW_VERSION}",
            "kind": "HTTPRoute",
            "metadata": {"name": name},
            "spec": {
                "parentRefs": [{"name": GATEWAY, "namespace": GATEWAY_NS}],
                "hostnames": [host],
                "rules": rules,
            },
        }

    def create_route(self, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GW_GROUP, GW_VERSION, namespace, "httproutes", manifest
        )
        return obj

    def read_route(self, namespace: str, name: str) -> dict[str, Any]:
        obj: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GW_GROUP, GW_VERSION, namespace, "httproutes", name
        )
        return obj


def accepted(gateway: RealGateway, ns: str, name: str) -> bool:
    """The gateway accepted the route's current generation with its references resolved."""
    route = gateway.read_route(ns, name)
    generation = route["metadata"]["generation"]
    parents = (route.get("status") or {}).get("parents") or []
    return bool(parents) and all(
        c["status"] == "True" and c.get("observedGeneration") == generation
        for p in parents
        for c in p.get("conditions") or []
        if c["type"] in ("Accepted", "ResolvedRefs")
    )


def routed(
    gateway: RealGateway,
    rollouts: Rollouts,
    name: str,
    steps: list[dict[str, Any]],
    rules: list[dict[str, Any]] | None = None,
    replicas: int = 3,
) -> tuple[str, dict[str, Any]]:
    """Stable and canary Services, the user's HTTPRoute (all on the stable), a Rollout of
    ``replicas`` naming them, Healthy; returns the route's host and the route as created."""
    core = rollouts.core
    for svc in (f"{name}-stable", f"{name}-canary"):
        manifest = service(name)
        manifest["metadata"]["name"] = svc
        core.create_namespaced_service(rollouts.ns, manifest)
    host = f"{name}.{rollouts.ns}.test"
    backends = [
        {"name": f"{name}-stable", "port": 80, "weight": 100},
        {"name": f"{name}-canary", "port": 80, "weight": 0},
    ]
    route = gateway.route(name, host, rules or [{"backendRefs": backends}])
    created = gateway.create_route(rollouts.ns, route)
    manifest = demo_rollout(
        name,
        replicas,
        steps,
        deadline=120,
        stableService=f"{name}-stable",
        canaryService=f"{name}-canary",
        httpRoutes=[name],
    )
    rollouts.create(manifest)
    rollouts.wait_healthy(name, replicas, timeout=120)

    def served() -> bool:
        """The gateway has the stable's endpoints: 20 answers in a row with 200 (a
        Healthy Rollout's pods can reach Traefik's EndpointSlice watch a moment later)."""
        return accepted(gateway, rollouts.ns, name) and all(
            gateway.get(gateway.port, "/", host)[0] == 200 for _ in range(20)
        )

    wait_for("the gateway serving the stable", waiting(served), timeout=60)
    return host, created


def acknowledged(rollouts: Rollouts, name: str, index: int, weight: int) -> bool:
    """Paused at step ``index`` with ``weight`` desired and acknowledged on every route."""
    status = rollouts.status(name)
    routes = status.get("routes") or [{}]
    return (
        status.get("phase") == "Paused"
        and status.get("currentStepIndex") == index
        and all(r.get("acknowledged") == weight and r.get("desired") == weight for r in routes)
    )


def weights_of(route: dict[str, Any]) -> list[dict[str, int]]:
    """The weight of each backendRef, rule by rule (for the tests' reading)."""
    return [
        {str(ref["name"]): int(ref.get("weight", 1)) for ref in rule.get("backendRefs") or []}
        for rule in route["spec"]["rules"]
    ]


class GatewayTraffic:
    """Real requests through the gateway over ``workers`` kept-alive connections, at most
    ``rps`` a second in all (bounded by ``seconds`` and ``limit``): each answer recorded as
    (monotonic time, body, code); code 0 is a failed request (no answer, a reset, a
    timeout)."""

    def __init__(
        self,
        gateway: RealGateway,
        host: str,
        workers: int = 4,
        seconds: float = 240,
        limit: int = 150000,
        headers: dict[str, str] | None = None,
        rps: float = 300,
    ) -> None:
        self.gateway, self.host = gateway, host
        self.pause = workers / rps
        self.seconds, self.limit = seconds, limit
        self.headers = {"Host": host, **(headers or {})}
        self.log: list[tuple[float, str, int]] = []
        self.errors: Counter[str] = Counter()
        """Why requests failed (the exception's type and message, or the status code)."""
        self._stop = threading.Event()
        path = realnode.netns_path(gateway.real.netns_pid)
        self._threads = [
            threading.Thread(target=self._run, args=(path,), name=f"gw-traffic-{i}", daemon=True)
            for i in range(workers)
        ]

    def start(self) -> GatewayTraffic:
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(10)

    def _run(self, netns: str) -> None:
        realnode.setns(netns)
        began = time.monotonic()
        conn: http.client.HTTPConnection | None = None
        due = time.monotonic()
        while not self._stop.is_set() and len(self.log) < self.limit:
            now = time.monotonic()
            if now - began > self.seconds:
                break
            if due > now:
                time.sleep(due - now)
            due = max(due, now - 1) + self.pause
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.gateway.port, timeout=5)
            code, body = 0, ""
            try:
                conn.request("GET", "/", headers=self.headers)
                resp = conn.getresponse()
                body = resp.read().decode(errors="replace").strip()
                code = resp.status
                if code != 200:
                    self.errors[f"{code} {body[:80]}"] += 1
            except (OSError, http.client.HTTPException) as exc:
                self.errors[f"{type(exc).__name__}: {exc}"[:120]] += 1
                conn.close()
                conn = None
            self.log.append((time.monotonic(), body, code))
        if conn is not None:
            conn.close()

    def mark(self) -> int:
        return len(self.log)

    def since(self, mark: int, until: int | None = None) -> Counter[tuple[str, int]]:
        return Counter((body, code) for _, body, code in self.log[mark:until])

    def wait_count(self, mark: int, n: int, timeout: float = 120) -> Counter[tuple[str, int]]:
        """Wait for ``n`` answers after ``mark``; their (body, code) counts."""
        wait_for(f"{n} requests through the gateway", lambda: self.mark() - mark >= n, timeout)
        return self.since(mark, mark + n)

    def failed(self) -> list[tuple[float, str, int]]:
        return [entry for entry in self.log if entry[2] != 200]

    def last(self, body: str) -> float | None:
        """When the last answer with ``body`` came (None: never)."""
        return next((t for t, b, _ in reversed(self.log) if b == body), None)


def share(counts: Counter[tuple[str, int]], body: str) -> float:
    total = sum(counts.values())
    return 100.0 * sum(n for (b, _), n in counts.items() if b == body) / max(total, 1)


def waiting(fn: Callable[[], bool]) -> Callable[[], bool]:
    def safe() -> bool:
        try:
            return fn()
        except Exception:
            return False

    return safe
