"""Fixtures of the real-node tests: a cluster with a real kubelet (tests/cluster/realnode.py),
the real Prometheus scraping the real pods, the operator, all in the cluster's own network
namespace; see docs/real-node.md.

``real_cluster`` (session) starts its own local cluster with a real node beside kwok's;
``real_prometheus`` (session) runs Prometheus in that namespace, discovering the pods
through the API server and scraping those annotated ``prometheus.io/scrape`` every second;
``real_operator`` (session) runs ``python -m ramp`` there; ``real_rollouts`` gives Rollout
verbs in a fresh namespace. Tests using them get the ``realnode`` marker. Nothing is
skipped: without the node's pieces the fixture fails and says what to build.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_e2e import RealGateway
from ramp_e2e import CRDS, OperatorProcess, Rollouts, wait_for
from realnode_e2e import FIGURES, RealCluster, RealPrometheus

from cluster.fixtures import ClusterHandle
from cluster.launcher import Cluster, ClusterError, wait_established

NAMESPACES = "rn-*"
_running: list[OperatorProcess] = []


@pytest.fixture(scope="session")
def real_cluster(request: pytest.FixtureRequest) -> Iterator[RealCluster]:
    workdir = Path(tempfile.mkdtemp(prefix="ramp-realnode-", dir="/tmp"))
    launcher = Cluster(workdir / "cluster", die_with_parent=True, real_node=True)
    began = time.monotonic()
    try:
        launcher.start(timeout=240)
    except ClusterError as e:
        launcher.stop()
        pytest.fail(f"the cluster with a real node is not available: {e}", pytrace=False)
    print(f"ramp: cluster with a real node ready in {time.monotonic() - began:.1f}s")
    handle = ClusterHandle(launcher.kubeconfig, workdir, launcher)
    handle.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    wait_established(handle.kubeconfig, ["rollouts.ramp.dev", "analysistemplates.ramp.dev"])
    real = RealCluster(handle, launcher)
    try:
        yield real
    finally:
        real.pool.shutdown()
        launcher.stop()
        if not request.session.testsfailed:
            shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture(scope="session")
def real_prometheus(real_cluster: RealCluster) -> Iterator[RealPrometheus]:
    prom = RealPrometheus(real_cluster, real_cluster.handle.workdir / "prometheus")
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


@pytest.fixture(scope="session")
def real_gateway(real_cluster: RealCluster) -> Iterator[RealGateway]:
    """Traefik serving the Gateway API in the cluster's namespace (tests/e2e/realnode/
    gateway_e2e.py); without its binary the fixture fails and says what to build."""
    try:
        gateway = RealGateway(real_cluster, real_cluster.handle.workdir / "gateway")
        gateway.start()
    except ClusterError as e:
        pytest.fail(f"the gateway is not available: {e}", pytrace=False)
    try:
        yield gateway
    finally:
        gateway.stop()


@pytest.fixture(scope="session")
def real_operator(
    real_cluster: RealCluster, real_prometheus: RealPrometheus
) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(
        real_cluster.handle.kubeconfig,
        real_cluster.handle.workdir / "operator.log",
        ["--namespace", NAMESPACES, "--prometheus-allow", real_prometheus.url],
        preexec_fn=real_cluster.preexec(),
    )
    proc.start()
    wait_for("the operator to start", lambda: "watching" in proc.log_text(), timeout=60)
    readyz = proc.probes_url() + "/readyz"  # in the cluster's namespace, like the operator

    def ready() -> bool:
        try:
            with urllib.request.urlopen(readyz, timeout=2) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    wait_for("the operator's /readyz", lambda: real_cluster.pool.run(ready), timeout=60)
    _running.append(proc)
    try:
        yield proc
    finally:
        _running.remove(proc)
        proc.stop()


@pytest.fixture
def real_rollouts(real_cluster: RealCluster, request: pytest.FixtureRequest) -> Iterator[Rollouts]:
    """Rollout verbs in a fresh namespace of the real-node cluster (deleted afterwards), with
    the operator running. The namespace exists before the operator starts: one created
    while its namespace watch starts was once never watched (a Rollout left without
    status for 90 s)."""
    from kubernetes import client

    core = client.CoreV1Api(real_cluster.handle.client)
    base = request.node.name.removeprefix("test_")[:30].replace("_", "-").strip("-")
    name = f"rn-{base}-{secrets.token_hex(2)}"
    core.create_namespace({"metadata": {"name": name}})
    wait_for(
        "the namespace's default ServiceAccount",
        lambda: core.list_namespaced_service_account(name).items,
        timeout=30,
    )
    real_operator: OperatorProcess = request.getfixturevalue("real_operator")
    if not real_operator.alive:
        real_operator.start()
    try:
        yield Rollouts(real_cluster.handle.client, name)
    finally:
        if request.session.testsfailed == 0:
            core.delete_namespace(name, propagation_policy="Background")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if any(f.startswith("real_") for f in getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.realnode)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    funcargs = getattr(item, "funcargs", {})
    if report.failed and "real_cluster" in funcargs:
        real: RealCluster = funcargs["real_cluster"]
        rollouts = funcargs.get("real_rollouts")
        ns = rollouts.ns if rollouts is not None else None
        report.sections.append(("real-node cluster state", real.handle.dump(ns)))
        for operator in _running:
            report.sections.append(("ramp operator log (tail)", operator.tail(60)))
        gateway = funcargs.get("real_gateway")
        if gateway is not None:
            report.sections.append(("traefik log (tail)", gateway.log_tail()))
        prom = funcargs.get("real_prometheus")
        if prom is not None:
            report.sections.append(("prometheus log (tail)", prom.log_tail()))
    return report


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in FIGURES:
        terminalreporter.write_line(f"ramp real node: {line}")
