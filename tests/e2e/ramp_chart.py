"""Helpers for tests of the Helm chart on the real cluster: scratch namespaces outside the
shared operator's ``t-*``, installs, the chart ServiceAccount's own kubeconfig, and the
operator run exactly with the arguments the chart gives its container."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from ramp_e2e import REPO, wait_for

from cluster.fixtures import ClusterHandle

CHART = REPO / "charts" / "ramp"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
THIRD_PARTY_CRDS = Path(__file__).resolve().parent / "thirdparty" / "prometheus-operator"
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}


@contextlib.contextmanager
def scratch_namespace(
    cluster: ClusterHandle, prefix: str, labels: dict[str, str] | None = None
) -> Iterator[str]:
    """A namespace named ``d-<prefix>-<hex>`` (not ``t-*``: the shared operator ignores
    it), deleted afterwards."""
    from kubernetes import client

    core = client.CoreV1Api(cluster.client)
    name = f"d-{prefix}-{secrets.token_hex(3)}"
    core.create_namespace({"metadata": {"name": name, "labels": labels or {}}})
    wait_for(
        f"the default ServiceAccount of {name}",
        lambda: (
            core.list_namespaced_service_account(name, field_selector="metadata.name=default").items
        ),
        timeout=30,
    )
    try:
        yield name
    finally:
        with contextlib.suppress(Exception):
            core.delete_namespace(name, propagation_policy="Background")


def helm_install(
    cluster: ClusterHandle, release: str, namespace: str, *args: str
) -> dict[str, Any]:
    """``helm install`` the chart; returns the rendered objects by ``Kind/name``."""
    out = cluster.helm(
        "install", release, str(CHART), "--namespace", namespace, *args, timeout=180
    ).stdout
    assert "NOTES:" in out and f"installed as release {release}" in out, out
    manifest = cluster.helm("get", "manifest", release, "--namespace", namespace).stdout
    return {
        f"{o['kind']}/{o['metadata']['name']}": o
        for o in yaml.safe_load_all(manifest)
        if isinstance(o, dict)
    }


def helm_uninstall(cluster: ClusterHandle, release: str, namespace: str) -> None:
    cluster.helm("uninstall", release, "--namespace", namespace, check=False)


def service_account_kubeconfig(
    cluster: ClusterHandle, namespace: str, service_account: str, path: Path
) -> Path:
    """A kubeconfig that authenticates as the ServiceAccount (a bound token)."""
    token = cluster.kubectl(
        "create", "token", service_account, "--namespace", namespace, "--duration", "1h"
    ).stdout.strip()
    return cluster.kubeconfig_for_token(token, path, namespace=namespace)


def container_args(objects: dict[str, Any], deployment: str) -> list[str]:
    """The operator container's arguments as the chart renders them."""
    spec = objects[f"Deployment/{deployment}"]["spec"]["template"]["spec"]
    (container,) = [c for c in spec["containers"] if c["name"] == "operator"]
    return list(container["args"])


def local_args(args: list[str], *extra: str) -> list[str]:
    """The chart's arguments for a process on this machine: serve on a free loopback port
    (several tests and engineers share the machine), everything else unchanged."""
    out = []
    for arg in args:
        if arg.startswith("--metrics-port="):
            arg = "--metrics-port=0"
        elif arg.startswith("--health-port="):
            arg = "--health-port=0"
        elif arg.startswith(("--metrics-bind-address=", "--health-bind-address=")):
            arg = arg.split("=", 1)[0] + "=127.0.0.1"
        out.append(arg)
    return [*out, *extra]


def can_i(
    cluster: ClusterHandle,
    service_account: str,
    verb: str,
    resource: str,
    namespace: str | None = None,
    subresource: str | None = None,
) -> bool:
    """``kubectl auth can-i`` as ``system:serviceaccount:NS:SA`` (``NS/SA`` given)."""
    ns_args = ["--namespace", namespace] if namespace else ["--all-namespaces"]
    sub = ["--subresource", subresource] if subresource else []
    proc = cluster.kubectl(
        "auth",
        "can-i",
        verb,
        resource,
        *ns_args,
        *sub,
        f"--as=system:serviceaccount:{service_account.replace('/', ':')}",
        check=False,
    )
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), proc.stdout + proc.stderr
    return answer == "yes"
