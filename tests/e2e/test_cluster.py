"""Acceptance of the local control plane (issue 2): the real kube-controller-manager,
scheduler, API server and kwok behave as Ramp's tests need them to. Every wait is bounded."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from cluster.fixtures import (
    EXTERNAL_ENV,
    FAULT_LABEL,
    ClusterHandle,
    KubectlError,
    deployment_manifest,
    wait_for,
)
from cluster.launcher import BIN_DIR, COMPONENTS, Cluster, ClusterError, pid_alive

pytestmark = pytest.mark.cluster

LAUNCHER = Path(__file__).resolve().parents[1] / "cluster" / "launcher.py"
local_binaries = pytest.mark.skipif(
    bool(os.environ.get(EXTERNAL_ENV)) and not (BIN_DIR / "kube-apiserver").exists(),
    reason="launcher tests need the locally built control plane (make cluster-build)",
)


def _deployment(cluster: ClusterHandle, namespace: str, name: str) -> Any:
    return client.AppsV1Api(cluster.client).read_namespaced_deployment_status(name, namespace)


def _pods(cluster: ClusterHandle, namespace: str, selector: str) -> list[Any]:
    core = client.CoreV1Api(cluster.client)
    return list(core.list_namespaced_pod(namespace, label_selector=selector).items)


def _ready(pod: Any) -> bool:
    return any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or [])


def _converged(cluster: ClusterHandle, namespace: str, name: str, replicas: int) -> bool:
    d = _deployment(cluster, namespace, name)
    pods = _pods(cluster, namespace, f"app={name}")
    return (
        d.status.observed_generation == d.metadata.generation
        and (d.status.ready_replicas or 0) == replicas
        and (d.status.replicas or 0) == replicas
        and len(pods) == replicas
        and all(_ready(p) and p.spec.node_name for p in pods)
    )


def test_deployment_becomes_ready_and_scales(cluster: ClusterHandle, namespace: str) -> None:
    """Acceptance 1: ReplicaSet, scheduling and kwok's kubelet stand-in make pods Ready."""
    cluster.apply(deployment_manifest("web", replicas=3), namespace)
    wait_for(
        "3 ready replicas",
        lambda: _converged(cluster, namespace, "web", 3),
        30,
        retry=(Exception,),
    )
    rs = client.AppsV1Api(cluster.client).list_namespaced_replica_set(namespace).items
    assert len(rs) == 1 and rs[0].metadata.owner_references[0].name == "web"

    cluster.kubectl("scale", "deployment/web", "--replicas=5", namespace=namespace)
    wait_for(
        "5 ready replicas",
        lambda: _converged(cluster, namespace, "web", 5),
        30,
        retry=(Exception,),
    )
    cluster.kubectl("scale", "deployment/web", "--replicas=1", namespace=namespace)
    wait_for(
        "scale down to 1",
        lambda: _converged(cluster, namespace, "web", 1),
        30,
        retry=(Exception,),
    )
    if cluster.launcher is not None:
        # the benchmarks read the controller manager's queues (bench/rollouts.py): its
        # /metrics answers without credentials and counts the Deployment's syncs
        metrics = cluster.launcher.component_metrics("kube-controller-manager")
        synced = [ln for ln in metrics.splitlines() if ln.startswith("workqueue_adds_total")]
        for queue in ("deployment", "replicaset"):
            line = next(ln for ln in synced if f'name="{queue}"' in ln)
            assert float(line.rsplit(" ", 1)[1]) >= 3, line  # created, scaled up, down


def test_fault_labels_keep_pods_unready(cluster: ClusterHandle, namespace: str) -> None:
    """Acceptance 2: `never-ready` pods run but stay unready until the progress deadline
    passes; `crash` pods restart in a loop and are never Ready."""
    cluster.apply(
        [
            deployment_manifest(
                "stuck", replicas=2, fault="never-ready", progress_deadline_seconds=3
            ),
            deployment_manifest("crashy", replicas=2, fault="crash"),
        ],
        namespace,
    )
    seen_ready: list[str] = []

    def settled() -> bool:
        pods = _pods(cluster, namespace, FAULT_LABEL)
        seen_ready.extend(p.metadata.name for p in pods if _ready(p))
        stuck = _deployment(cluster, namespace, "stuck")
        progressing = {c.type: c for c in stuck.status.conditions or []}.get("Progressing")
        crashy = [p for p in pods if p.metadata.labels["app"] == "crashy"]
        restarted = len(crashy) == 2 and all(
            p.status.phase == "Failed"
            or any((s.restart_count or 0) >= 2 for s in p.status.container_statuses or [])
            for p in crashy
        )
        return bool(
            progressing is not None
            and progressing.reason == "ProgressDeadlineExceeded"
            and progressing.status == "False"
            and restarted
        )

    wait_for(
        "ProgressDeadlineExceeded and crash restarts",
        settled,
        45,
        interval=0.25,
        retry=(Exception,),
    )
    assert seen_ready == [], f"fault pods became Ready: {seen_ready}"
    for name in ("stuck", "crashy"):
        assert not _deployment(cluster, namespace, name).status.ready_replicas
    stuck_pods = _pods(cluster, namespace, "app=stuck")
    assert len(stuck_pods) == 2 and all(p.status.phase == "Running" for p in stuck_pods)
    crash_state = _pods(cluster, namespace, "app=crashy")[0].status.container_statuses[0]
    assert crash_state.last_state.terminated.exit_code == 1


WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.e2e.ramp.dev"},
    "spec": {
        "group": "e2e.ramp.dev",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["replicas"],
                                "properties": {
                                    "replicas": {"type": "integer", "minimum": 0},
                                    "minReplicas": {"type": "integer", "minimum": 0},
                                },
                                "x-kubernetes-validations": [
                                    {
                                        "rule": "!has(self.minReplicas) || "
                                        "self.replicas >= self.minReplicas",
                                        "message": "replicas must not be below minReplicas",
                                    }
                                ],
                            },
                            "status": {
                                "type": "object",
                                "properties": {
                                    "replicas": {"type": "integer"},
                                    "selector": {"type": "string"},
                                },
                            },
                        },
                    }
                },
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.replicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
            }
        ],
    },
}


def _widget(name: str, replicas: Any, min_replicas: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "e2e.ramp.dev/v1",
        "kind": "Widget",
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "minReplicas": min_replicas},
    }


def test_crd_validation_status_and_scale(cluster: ClusterHandle, namespace: str) -> None:
    """Acceptance 3: OpenAPI schema and CEL rules are enforced by the API server; the status
    and scale subresources of a CRD work, including `kubectl scale`."""
    cluster.apply(WIDGET_CRD, None)
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/widgets.e2e.ramp.dev", "--timeout=30s"
    )
    try:
        with pytest.raises(KubectlError) as bad:
            cluster.apply(_widget("bad", 1, min_replicas=3), namespace)
        assert "replicas must not be below minReplicas" in bad.value.stderr
        with pytest.raises(KubectlError) as typed:
            cluster.apply(_widget("typed", "two"), namespace)
        assert "spec.replicas" in typed.value.stderr

        cluster.apply(_widget("w", 2), namespace)
        w = "widgets.e2e.ramp.dev/w"
        status = '{"status": {"replicas": 2, "selector": "app=w"}}'
        cluster.kubectl(
            "patch", w, "--subresource=status", "--type=merge", "-p", status, namespace=namespace
        )
        # the main resource ignores status; the status subresource ignores spec
        cluster.kubectl(
            "patch", w, "--type=merge", "-p", '{"status": {"replicas": 9}}', namespace=namespace
        )
        cluster.kubectl(
            "patch",
            w,
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"spec": {"replicas": 7}}',
            namespace=namespace,
        )
        obj = cluster.get_json(w, namespace=namespace)
        assert obj["status"] == {"replicas": 2, "selector": "app=w"}
        assert obj["spec"]["replicas"] == 2

        cluster.kubectl("scale", w, "--replicas=4", namespace=namespace)
        scale = cluster.get_json(w, "--subresource=scale", namespace=namespace)
        assert scale["kind"] == "Scale"
        assert scale["spec"]["replicas"] == 4
        assert scale["status"] == {"replicas": 2, "selector": "app=w"}
        assert cluster.get_json(w, namespace=namespace)["spec"]["replicas"] == 4
        # the CEL rule also guards writes through the scale subresource
        with pytest.raises(KubectlError) as low:
            cluster.kubectl("scale", w, "--replicas=0", namespace=namespace)
        assert "replicas must not be below minReplicas" in low.value.stderr
    finally:
        cluster.kubectl("delete", "crd/widgets.e2e.ramp.dev", "--wait=false", check=False)


def test_owner_reference_garbage_collection(cluster: ClusterHandle, namespace: str) -> None:
    """Acceptance 4: deleting an owner removes its owned Deployment (and that one's pods)."""
    core = client.CoreV1Api(cluster.client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    dep = deployment_manifest("owned", replicas=2)
    dep["metadata"]["ownerReferences"] = [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid}
    ]
    cluster.apply(dep, namespace)
    wait_for(
        "owned Deployment",
        lambda: _converged(cluster, namespace, "owned", 2),
        30,
        retry=(Exception,),
    )
    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")
    apps = client.AppsV1Api(cluster.client)

    def gone() -> bool:
        return not apps.list_namespaced_deployment(namespace).items and not _pods(
            cluster, namespace, "app=owned"
        )

    wait_for(
        "garbage collection of the owned Deployment and its pods",
        gone,
        60,
        retry=(Exception,),
    )


CHART = {
    "Chart.yaml": {
        "apiVersion": "v2",
        "name": "tiny",
        "description": "A tiny chart for the cluster acceptance test",
        "version": "0.1.0",
        "appVersion": "1.0.0",
        "kubeVersion": ">=1.36.0-0 <1.37.0-0",
    },
    "values.yaml": {"replicas": 2, "image": "ramp-test/app:v1"},
    "templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-tiny
  labels:
    app.kubernetes.io/name: tiny
  annotations:
    ramp.dev/kube-version: {{ .Capabilities.KubeVersion.Version | quote }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/name: tiny
  template:
    metadata:
      labels:
        app.kubernetes.io/name: tiny
    spec:
      containers:
        - name: app
          image: {{ .Values.image | quote }}
""",
}


def test_helm_lint_and_template(cluster: ClusterHandle, tmp_path: Path) -> None:
    """Acceptance 5a: the built helm lints and renders a chart, seeing Kubernetes v1.36."""
    chart = tmp_path / "tiny"
    for rel, content in CHART.items():
        path = chart / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    assert cluster.helm("version", "--short").stdout.startswith("v3.")
    lint = cluster.helm("lint", str(chart))
    assert "1 chart(s) linted, 0 chart(s) failed" in lint.stdout
    rendered = cluster.helm("template", "demo", str(chart), "--set", "replicas=3").stdout
    (dep,) = [d for d in yaml.safe_load_all(rendered) if d]
    assert dep["kind"] == "Deployment" and dep["metadata"]["name"] == "demo-tiny"
    assert dep["spec"]["replicas"] == 3
    if not cluster.external:
        assert dep["metadata"]["annotations"]["ramp.dev/kube-version"].startswith("v1.36.")
        # --validate renders against the live server's version and OpenAPI schemas
        cluster.helm("template", "demo", str(chart), "--validate")


def test_kubectl_and_server_versions(cluster: ClusterHandle) -> None:
    """Acceptance 5b: `kubectl version` reports the server (and client) as v1.36.x."""
    versions = json.loads(cluster.kubectl("version", "-o", "json").stdout)
    server = versions["serverVersion"]["gitVersion"]
    if not cluster.external:
        assert server.startswith("v1.36."), versions
        assert versions["clientVersion"]["gitVersion"].startswith("v1.36."), versions
    else:
        assert server.startswith("v1."), versions


def test_rbac_applies_to_service_account_tokens(
    cluster: ClusterHandle, namespace: str, tmp_path: Path
) -> None:
    """RBAC authorization is on: a ServiceAccount token (kubeconfig_for_token) is denied
    until a RoleBinding grants it access."""
    cluster.kubectl("create", "serviceaccount", "probe", namespace=namespace)
    token = cluster.kubectl("create", "token", "probe", namespace=namespace).stdout.strip()
    kc = cluster.kubeconfig_for_token(token, tmp_path / "probe.kubeconfig", namespace=namespace)
    whoami = json.loads(cluster.kubectl("auth", "whoami", "-o", "json", kubeconfig=kc).stdout)
    assert whoami["status"]["userInfo"]["username"] == f"system:serviceaccount:{namespace}:probe"
    denied = cluster.kubectl("get", "pods", kubeconfig=kc, check=False)
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower()
    cluster.kubectl(
        "create", "role", "pod-reader", "--verb=get,list", "--resource=pods", namespace=namespace
    )
    cluster.kubectl(
        "create",
        "rolebinding",
        "probe-reads",
        "--role=pod-reader",
        f"--serviceaccount={namespace}:probe",
        namespace=namespace,
    )
    wait_for(
        "the RoleBinding to take effect",
        lambda: cluster.kubectl("get", "pods", kubeconfig=kc, check=False).returncode == 0,
        15,
        retry=(Exception,),
    )


def _launcher(*args: str, timeout: float = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAUNCHER), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@local_binaries
def test_launcher_up_down_leaves_no_process(tmp_path: Path) -> None:
    """Acceptance 6: `launcher.py up` runs detached; `down` leaves none of its processes."""
    d = tmp_path / "c"
    up = _launcher("up", "--dir", str(d))
    assert up.returncode == 0, up.stderr
    try:
        state = json.loads((d / "cluster.json").read_text())
        pids = state["pids"]
        assert sorted(pids) == sorted(COMPONENTS)
        assert all(pid_alive(p) for p in pids.values())
        assert (d / "logs" / "kube-apiserver.log").exists()
        assert Path(state["etcd_data"]).is_dir()
        again = _launcher("up", "--dir", str(d))
        assert again.returncode == 0 and "already running" in again.stdout
        status = _launcher("status", "--dir", str(d))
        assert status.returncode == 0 and json.loads(status.stdout)["ready"] is True
        nodes = subprocess.run(
            [str(BIN_DIR / "kubectl"), "--kubeconfig", str(d / "kubeconfig"), "get", "nodes"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert " Ready " in nodes.stdout
    finally:
        down = _launcher("down", "--dir", str(d), timeout=60)
    assert down.returncode == 0, down.stderr
    left = {name: pid for name, pid in pids.items() if pid_alive(pid)}
    assert left == {}, f"processes left behind: {left}"
    assert not Path(state["etcd_data"]).exists()
    assert not (d / "kubeconfig").exists()
    assert "no cluster was running" in _launcher("down", "--dir", str(d)).stdout


def _our_processes(prefix: Path) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0].decode()
            except OSError:
                continue
            if argv0.startswith(str(prefix)) and pid_alive(int(proc.name)):
                found.append(int(proc.name))
    return found


@local_binaries
def test_launcher_errors_are_clear_and_leave_nothing(tmp_path: Path) -> None:
    """Missing binaries, a taken port and a component that exits early each give one clear
    error, and no half-started cluster stays behind."""
    with pytest.raises(ClusterError, match=r"missing control-plane binaries.*make cluster-build"):
        Cluster(tmp_path / "a", bin_dir=tmp_path / "empty").start()

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ClusterError, match=f"port {port} .* already in use"):
            Cluster(tmp_path / "b", apiserver_port=port).start()

    fake = tmp_path / "bin"
    fake.mkdir()
    for name in COMPONENTS:
        (fake / name).symlink_to(BIN_DIR / name)
    (fake / "kube-scheduler").unlink()
    (fake / "kube-scheduler").write_text(
        "#!/bin/sh\nsleep 0.5\necho 'scheduler: simulated failure' >&2\nexit 3\n"
    )
    (fake / "kube-scheduler").chmod(0o755)
    broken = Cluster(tmp_path / "c", bin_dir=fake)
    started = time.monotonic()
    with pytest.raises(ClusterError, match=r"(?s)kube-scheduler exited early.*simulated failure"):
        broken.start()
    assert time.monotonic() - started < 30
    assert _our_processes(fake) == []
    assert not (tmp_path / "c" / "cluster.json").exists()
