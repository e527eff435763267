"""Two tenants on the real cluster with the real Prometheus (issue 20; issue 19 class 11).

Namespaces ``tenant-a`` and ``tenant-b`` belong to two users, ``alice`` and ``bob``, who may
edit Rollouts and AnalysisTemplates in their own namespace only (RBAC); every object of a
tenant is written through impersonation of that user. The operator runs cluster-wide, as a
shared install does (namespace enforcement is then on by default), allowed to query the
session's Prometheus and an address that accepts connections and never answers (a hung
Prometheus), plus a provider configured for ``tenant-b`` only.

Alice tries to read Bob's metrics (a query naming his namespace, a query built to fail
with "duplicate series", a query over every series, the address configured for Bob, the
hung address); each fails with a clear message in her Rollout, nothing of Bob's series
(his Rollout's name, his revision) appears in her status or Events, and Bob's rollout,
gated by his own analysis, completes while hers run.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from ramp_e2e import OperatorProcess, Rollouts, condition, rollout_manifest, wait_for
from test_dashboard import DashboardProcess

from cluster.fixtures import ClusterHandle
from prometheus.fixtures import PrometheusServer, free_port
from ramp.api.labels import revision_hash

A, B = "tenant-a", "tenant-b"
USERS = {A: "alice", B: "bob"}
B_APP = "bravo-payments"
"""Bob's Rollout: its name is a label value of his series, never to be seen in Alice's."""

RATIO = (
    'sum(rate(http_requests_total{{namespace="{{{{namespace}}}}",rollout="{{{{rollout}}}}",'
    'revision="{{{{canaryRevision}}}}",code=~"5.."}}[{w}])) / '
    'sum(rate(http_requests_total{{namespace="{{{{namespace}}}}",rollout="{{{{rollout}}}}",'
    'revision="{{{{canaryRevision}}}}"}}[{w}]))'
).format(w="4s")


class HungServer:
    """Accepts TCP connections and never answers (a hung Prometheus)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1024)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.accepted = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


@dataclass
class Tenants:
    cluster: ClusterHandle
    prom: PrometheusServer
    hung: HungServer
    b_only: str
    operator: OperatorProcess

    def as_user(self, namespace: str) -> Rollouts:
        """Rollout verbs in ``namespace`` as its owner (impersonated)."""
        api = self.cluster.api_client()
        api.set_default_header("Impersonate-User", USERS[namespace])
        return Rollouts(api, namespace)

    def admin(self, namespace: str) -> Rollouts:
        return Rollouts(self.cluster.client, namespace)


def _rbac(cluster: ClusterHandle) -> None:
    rbac = client.RbacAuthorizationV1Api(cluster.client)
    core = client.CoreV1Api(cluster.client)
    rbac.create_cluster_role(
        {
            "metadata": {"name": "ramp-e2e-tenant"},
            "rules": [
                {
                    "apiGroups": ["ramp.dev"],
                    "resources": ["rollouts", "analysistemplates"],
                    "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
                },
                {"apiGroups": [""], "resources": ["events"], "verbs": ["get", "list"]},
            ],
        }
    )
    for namespace, user in USERS.items():
        core.create_namespace({"metadata": {"name": namespace}})
        rbac.create_namespaced_role_binding(
            namespace,
            {
                "metadata": {"name": "owner"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "ramp-e2e-tenant",
                },
                "subjects": [
                    {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}
                ],
            },
        )


@pytest.fixture(scope="module")
def tenants(cluster: ClusterHandle, crds: None, prometheus: PrometheusServer) -> Iterator[Tenants]:
    _rbac(cluster)
    hung = HungServer()
    b_only = f"http://127.0.0.1:{free_port()}"
    providers = [{"address": b_only, "namespaces": [B]}]
    proc = OperatorProcess(
        cluster.kubeconfig,
        cluster.workdir / "operator-tenants.log",
        # Cluster-wide (no --namespace): the shared install, where namespaces are tenants.
        ["--prometheus-allow", prometheus.url, "--prometheus-allow", hung.url],
        env={"RAMP_PROMETHEUS_PROVIDERS": json.dumps(providers)},
    )
    proc.start()
    wait_for("the operator to start", lambda: "watching" in proc.log_text(), timeout=30)
    try:
        yield Tenants(cluster, prometheus, hung, b_only, proc)
    finally:
        proc.stop()
        hung.close()


def analysis(*metrics: dict[str, Any]) -> dict[str, Any]:
    return {"analysis": {"metrics": list(metrics)}}


def metric(name: str, address: str, query: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "interval": "1s",
        "count": 2,
        "consecutiveErrorLimit": 0,
        "successCondition": "result >= 0",
        "prometheus": {"address": address, "query": query, **extra.pop("prometheus", {})},
        **extra,
    }


def next_revision(rollouts: Rollouts, name: str, image: str) -> str:
    template = rollouts.get(name)["spec"]["template"]
    template["spec"]["containers"][0]["image"] = image
    return revision_hash(template)


def start(rollouts: Rollouts, name: str, steps: list[dict[str, Any]], replicas: int = 1) -> None:
    """Create ``name`` (v1 becomes stable at once), then release v2 into ``steps``."""
    rollouts.create(rollout_manifest(name, replicas=replicas, steps=steps))
    rollouts.wait_healthy(name, replicas, timeout=60)
    rollouts.set_image(name, "ramp-test/app:v2")


def text_of(rollouts: Rollouts, name: str) -> str:
    """Everything a tenant sees of a Rollout: its status and its Events."""
    return json.dumps(rollouts.status(name)) + json.dumps(rollouts.events(name))


def wait_text(rollouts: Rollouts, name: str, *words: str, timeout: float = 45) -> str:
    def probe() -> str | None:
        seen = text_of(rollouts, name)
        return seen if all(w in seen for w in words) else None

    found: str = wait_for(
        f"{name} to say {words}",
        probe,
        timeout=timeout,
        describe=lambda: json.dumps(rollouts.status(name))[:1500],
    )
    return found


def dashboard_texts(board: DashboardProcess, names: list[str]) -> str:
    """What the dashboard serves of ``names`` (its list and each detail, as JSON text)."""
    headers = {"Cookie": f"ramp_dashboard={board.token}"}
    paths = ["/api/rollouts"] + [f"/api/rollouts/{A}/{name}" for name in names]
    texts = []
    for path in paths:
        request = urllib.request.Request(board.base + path, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as response:
            texts.append(response.read().decode())
    return "\n".join(texts)


def bob_releases(t: Tenants, name: str = B_APP) -> tuple[Rollouts, str]:
    """Bob's Rollout, gated by an analysis of his own error ratio, is released (v2)."""
    bob = t.as_user(B)
    gate = metric("errors", t.prom.url, RATIO, successCondition="result < 0.01")
    bob.create(rollout_manifest(name, replicas=2, steps=[{"setWeight": 50}, analysis(gate)]))
    bob.wait_healthy(name, 2, timeout=60)
    canary = next_revision(bob, name, "ramp-test/app:v2")
    t.prom.exporter.set_rate(B, name, canary, rps=100, error_ratio=0.001)
    t.prom.wait_for(
        f'sum(rate(http_requests_total{{namespace="{B}",rollout="{name}",'
        f'revision="{canary}"}}[4s]))',
        lambda s: len(s) == 1 and s[0][1] > 10,
    )
    bob.set_image(name, "ramp-test/app:v2")
    return bob, canary


def test_tenant_a_cannot_read_tenant_b_and_b_completes_meanwhile(tenants: Tenants) -> None:
    t = tenants
    alice = t.as_user(A)
    # The identities are real: Alice cannot write in Bob's namespace.
    with pytest.raises(ApiException) as denied:
        t.as_user(A).custom.create_namespaced_custom_object(
            "ramp.dev", "v1alpha1", B, "rollouts", rollout_manifest("x", replicas=1)
        )
    assert denied.value.status == 403

    # Alice's own series, two revisions (so a one-to-one match finds duplicates).
    for revision in ("r1", "r2"):
        t.prom.exporter.set_rate(A, "alpha", revision, rps=10, error_ratio=0.1)
    bob, b_canary = bob_releases(t)

    # A heavy query with an hour's timeout is refused at admission, naming the field.
    with pytest.raises(ApiException) as heavy:
        alice.create(
            rollout_manifest(
                "heavy-timeout",
                replicas=1,
                steps=[analysis(metric("all", t.prom.url, "up", prometheus={"timeout": "1h"}))],
            )
        )
    assert heavy.value.status == 422 and "timeout must be between 100ms and 60s" in str(
        heavy.value.body
    )

    steal = f'sum(rate(http_requests_total{{namespace="{B}"}}[1m]))'
    dupes = "http_requests_total / on() group_left http_requests_total"
    attacks = {
        "steal": metric("steal", t.prom.url, steal),
        "dupes": metric("dupes", t.prom.url, dupes),
        "heavy": metric("heavy", t.prom.url, 'count({__name__=~".+"})'),
        "borrow": metric("borrow", t.b_only, "up"),
        "hung": metric("hung", t.hung.url, "up", prometheus={"timeout": "2s"}),
    }
    for name, attack in attacks.items():
        alice.create(rollout_manifest(name, replicas=1, steps=[analysis(attack)]))
    for name in attacks:
        alice.wait_healthy(name, 1, timeout=60)
        alice.set_image(name, "ramp-test/app:v2")

    seen = {
        # The query names Bob's namespace: refused before any request, the field named.
        "steal": wait_text(
            alice, "steal", "prometheus.query", f'namespace=\\"{B}\\"', f"outside namespace {A}"
        ),
        # Prometheus' 422 "duplicate series" text (label sets) is never copied.
        "dupes": wait_text(alice, "dupes", "HTTP 422", "could not evaluate the query"),
        # A query over every series runs scoped to Alice's namespace: a number of hers.
        "heavy": wait_text(alice, "heavy", f'namespace=\\"{A}\\"', '"verdict": "Pass"'),
        # An address the admin gave Bob only: not available, and no list of what is.
        "borrow": wait_text(alice, "borrow", f"is not available to namespace {A}"),
        # A hung Prometheus: an Error after the metric's timeout, the rollout paused.
        "hung": wait_text(alice, "hung", "did not answer within 2s"),
    }
    assert t.prom.url not in seen["borrow"] and t.hung.url not in seen["borrow"]

    # Bob's rollout completes, gated by his own analysis, while Alice's run.
    bob.wait(
        B_APP,
        "v2 promoted by its analysis",
        lambda s: s.get("stableRevision") == b_canary and not s.get("canaryRevision"),
        timeout=60,
    )

    # Nothing of Bob's series in anything Alice can read of her Rollouts: status, Events
    # and `kubectl ramp get` (for the two that asked Prometheus about Bob).
    plugin = Path(sys.executable).with_name("kubectl-ramp")
    for name in attacks:
        text = text_of(alice, name)
        if name in ("steal", "dupes"):
            text += subprocess.run(
                [str(plugin), "--kubeconfig", str(t.cluster.kubeconfig), "-n", A, "get", name],
                capture_output=True, text=True, timeout=60, check=True,
            ).stdout  # fmt: skip
        assert B_APP not in text and b_canary not in text, (name, text[:2000])
    assert "prometheus.query" in text_of(alice, "steal")
    # And the dashboard of Alice's namespace: its list and each Rollout's detail.
    board = DashboardProcess(
        t.cluster.kubeconfig, A, Path(tempfile.mkdtemp(prefix="ramp-dash-")) / "dashboard-a.log"
    )
    try:
        seen_by_board = dashboard_texts(board, ["steal", "dupes"])
    finally:
        board.stop()
    assert "steal" in seen_by_board and "prometheus.query" in seen_by_board
    assert B_APP not in seen_by_board and b_canary not in seen_by_board, seen_by_board[:2000]
    # And Prometheus' own query log: every query that read anything of tenant-b was
    # Bob's; Alice's query over every series was sent scoped to her namespace.
    log = t.prom.query_log()
    assert all('rollout="bravo-' in q for q in log if f'namespace="{B}"' in q)
    over_all = [q for q in log if "__name__" in q]
    assert over_all and all(f'namespace="{A}"' in q for q in over_all), over_all


def test_a_hung_metric_delays_no_other_namespace_nor_an_abort(tenants: Tenants) -> None:
    """Issue 19, class 11: Alice's Rollouts measure 48 metrics against a Prometheus that
    never answers (20 s timeouts); Bob's rollout completes meanwhile and Alice's abort is
    carried out at once. On f61a406 the 48 hung queries held the operator's one connection
    pool (32) and each Rollout's reconcile for 20 s."""
    t = tenants
    alice = t.as_user(A)
    hung = [
        metric(f"m{i}", t.hung.url, "up", prometheus={"timeout": "20s"}, consecutiveErrorLimit=4)
        for i in range(16)
    ]
    names = [f"stuck-{i}" for i in range(3)]
    for name in names:
        alice.create(rollout_manifest(name, replicas=1, steps=[analysis(*hung)]))
    for name in names:
        alice.wait_healthy(name, 1, timeout=60)
        alice.set_image(name, "ramp-test/app:v2")
    wait_for("Alice's measurements to hang", lambda: t.hung.accepted >= 4, timeout=30)

    started = time.monotonic()
    bob, b_canary = bob_releases(t, "bravo-ledger")
    bob.wait(
        "bravo-ledger",
        "v2 promoted by its analysis",
        lambda s: s.get("stableRevision") == b_canary and not s.get("canaryRevision"),
        timeout=40,
    )
    bob_seconds = time.monotonic() - started

    asked = time.monotonic()
    alice.request(names[0], "abort")
    alice.wait(
        names[0],
        "aborted",
        lambda s: condition(s, "Aborted").get("status") == "True",
        timeout=5,
    )
    abort_seconds = time.monotonic() - asked
    print(f"bob's rollout {bob_seconds:.1f}s, alice's abort {abort_seconds:.1f}s")
