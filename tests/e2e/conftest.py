"""End-to-end fixtures: the CRDs installed and the operator running against the cluster."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import ramp_e2e
from ramp_e2e import CRDS, PROMETHEUS_TOKEN, OperatorProcess, Rollouts, wait_for

from cluster.fixtures import ClusterHandle
from cluster.launcher import wait_established
from prometheus.fixtures import PrometheusServer

TEST_NAMESPACES = "t-*"
"""The shared operator watches the per-test namespaces (``namespace`` fixture names them
``t-...``); tests that run an operator of their own use other namespaces."""

_operator: OperatorProcess | None = None


def install_crds(cluster: ClusterHandle) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    wait_established(cluster.kubeconfig, ["rollouts.ramp.dev", "analysistemplates.ramp.dev"])


@pytest.fixture(scope="session")
def crds(cluster: ClusterHandle) -> None:
    install_crds(cluster)


TOKEN_SECRET = ("ramp-system", "prometheus-token")


@pytest.fixture(scope="session")
def operator(
    cluster: ClusterHandle, crds: None, prometheus: PrometheusServer
) -> Iterator[OperatorProcess]:
    """The operator (``python -m ramp``) watching the test namespaces, allowed to query the
    session's Prometheus with a bearer token from a Secret."""
    global _operator
    ns, name = TOKEN_SECRET
    cluster.kubectl("create", "namespace", ns, check=False)
    secret = cluster.kubectl(
        "create",
        "secret",
        "generic",
        name,
        f"--from-literal=token={PROMETHEUS_TOKEN}",
        "--dry-run=client",
        "-o",
        "yaml",
        namespace=ns,
    ).stdout
    cluster.kubectl("apply", "-f", "-", input=secret, namespace=ns)
    proc = OperatorProcess(
        cluster.kubeconfig,
        cluster.workdir / "operator.log",
        [
            "--namespace",
            TEST_NAMESPACES,
            "--prometheus-allow",
            prometheus.url,
            "--prometheus-token-secret",
            f"{ns}/{name}",
        ],
    )
    proc.start()
    wait_for("the operator to start", lambda: "watching" in proc.log_text(), timeout=30)
    _operator = proc
    try:
        yield proc
    finally:
        _operator = None
        proc.stop()


@pytest.fixture(autouse=True)
def _admin_kubeconfig(request: pytest.FixtureRequest) -> None:
    """Tests on the cluster: its admin kubeconfig for ramp_e2e's helpers (the /metrics
    reader's token)."""
    if "cluster" in request.fixturenames:
        ramp_e2e.ADMIN_KUBECONFIG = request.getfixturevalue("cluster").kubeconfig


@pytest.fixture
def rollouts(cluster: ClusterHandle, namespace: str, operator: OperatorProcess) -> Rollouts:
    """Rollout verbs in this test's namespace, with the operator running."""
    if not operator.alive:
        operator.start()
    return Rollouts(cluster.client, namespace)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and _operator is not None:
        report.sections.append(("ramp operator log (tail)", _operator.tail(80)))
    return report
