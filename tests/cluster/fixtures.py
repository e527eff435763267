"""pytest fixtures: a real Kubernetes control plane (tests/cluster/launcher.py) per session.

``cluster`` (session-scoped) starts a fresh local control plane in a temporary folder under
/tmp, or uses the cluster of ``$RAMP_TEST_KUBECONFIG`` when that is set (the end-to-end
suite runs unchanged against any kubeconfig, e.g. a kind cluster). It yields a
:class:`ClusterHandle`: ``.kubeconfig``, ``.kubectl(...)``, ``.helm(...)``,
``.api_client()``, ``.apply(...)``, ``.kubeconfig_for_token(...)``.

``namespace`` (function-scoped) is a fresh namespace per test (its ``default``
ServiceAccount exists when the test starts), deleted afterwards.

Tests that use either fixture get the ``cluster`` marker. When such a test fails, the
report gets a dump of its namespace (``kubectl get all,rollouts.ramp.dev,events``) and the
tail of each component's log.

Nothing is skipped: without the built binaries the fixture fails and says to run
``make cluster-build``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from cluster.launcher import (
    BIN_DIR,
    COMPONENTS,
    Cluster,
    ClusterError,
    kubeconfig_for_token,
    rss_bytes,
)
from cluster.waiting import wait_for

FAULT_LABEL = "ramp.dev/test-fault"
"""Pod label read by the kwok stages: ``never-ready`` or ``crash`` (see kwok.yaml)."""
READY_DELAY_ANNOTATION = "ramp.dev/test-ready-delay"
"""Pod annotation read by the kwok stages: how long until a pod is Ready (e.g. ``"5s"``)."""
TEST_IMAGE = os.environ.get("RAMP_TEST_IMAGE", "ramp-test/app:v1")
"""Image for test pods; kwok never pulls it (set RAMP_TEST_IMAGE for a real cluster)."""
EXTERNAL_ENV = "RAMP_TEST_KUBECONFIG"

T = TypeVar("T")


class KubectlError(subprocess.CalledProcessError):
    """A kubectl/helm call failed; the message carries its output."""

    def __str__(self) -> str:
        return (
            f"`{' '.join(map(str, self.cmd))}` exited with {self.returncode}\n"
            f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )


def deployment_manifest(
    name: str,
    replicas: int = 1,
    *,
    fault: str | None = None,
    ready_delay: str | None = None,
    labels: Mapping[str, str] | None = None,
    progress_deadline_seconds: int | None = None,
    image: str = TEST_IMAGE,
) -> dict[str, Any]:
    """A minimal Deployment; `fault` sets the kwok test fault label on its pods."""
    pod_labels = {"app": name, **(labels or {})}
    if fault:
        pod_labels[FAULT_LABEL] = fault
    template: dict[str, Any] = {
        "metadata": {"labels": pod_labels},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }
    if ready_delay:
        template["metadata"]["annotations"] = {READY_DELAY_ANNOTATION: ready_delay}
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": template,
    }
    if progress_deadline_seconds is not None:
        spec["progressDeadlineSeconds"] = progress_deadline_seconds
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": spec,
    }


def _tool(name: str, external: bool) -> str:
    built = BIN_DIR / name
    if built.is_file():
        return str(built)
    if external and shutil.which(name):
        return str(shutil.which(name))
    raise ClusterError(
        f"{name} is missing ({built} does not exist): run `make test-tools-build` "
        "(tests/cluster/build.sh) to build the local control plane and the tests' tools"
    )


class ClusterHandle:
    """What the ``cluster`` fixture yields: one reachable cluster and its tools."""

    def __init__(self, kubeconfig: Path, workdir: Path, launcher: Cluster | None) -> None:
        self.kubeconfig = Path(kubeconfig)
        self.workdir = Path(workdir)
        self.launcher = launcher
        self.external = launcher is None
        self.kubectl_bin = _tool("kubectl", self.external)
        self.helm_bin = _tool("helm", self.external)
        self._client: Any = None

    @property
    def env(self) -> dict[str, str]:
        """Environment for kubectl/helm/operator subprocesses aimed at this cluster."""
        return {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "KUBECACHEDIR": str(self.workdir / "kube-cache"),
            "HELM_CACHE_HOME": str(self.workdir / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(self.workdir / "helm" / "config"),
            "HELM_DATA_HOME": str(self.workdir / "helm" / "data"),
        }

    def _run(
        self,
        cmd: Sequence[str],
        check: bool,
        input: str | None,
        timeout: float,
        env: Mapping[str, str] | None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            list(cmd),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**self.env, **(env or {})},
            check=False,
        )
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc

    def kubectl(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        namespace: str | None = None,
        timeout: float = 60,
        env: Mapping[str, str] | None = None,
        kubeconfig: str | os.PathLike[str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built kubectl against this cluster (text output captured); with
        ``check=True`` a failure raises :class:`KubectlError` showing stdout/stderr.
        `kubeconfig` replaces the admin kubeconfig (e.g. one from kubeconfig_for_token)."""
        ns = ["--namespace", namespace] if namespace else []
        kc = str(kubeconfig or self.kubeconfig)
        cmd = [self.kubectl_bin, "--kubeconfig", kc, *ns, *args]
        return self._run(cmd, check, input, timeout, env)

    def helm(
        self,
        *args: str,
        check: bool = True,
        input: str | None = None,
        namespace: str | None = None,
        timeout: float = 120,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run the built helm against this cluster."""
        ns = ["--namespace", namespace] if namespace else []
        cmd = [self.helm_bin, "--kubeconfig", str(self.kubeconfig), *ns, *args]
        return self._run(cmd, check, input, timeout, env)

    def apply(
        self, manifest: str | Mapping[str, Any] | Sequence[Mapping[str, Any]], namespace: str | None
    ) -> subprocess.CompletedProcess[str]:
        """``kubectl apply`` of YAML text, one object or a list of objects."""
        if isinstance(manifest, str):
            text = manifest
        elif isinstance(manifest, Mapping):
            text = yaml.safe_dump(dict(manifest))
        else:
            text = yaml.safe_dump_all([dict(m) for m in manifest])
        return self.kubectl("apply", "-f", "-", input=text, namespace=namespace)

    def get_json(self, *args: str, namespace: str | None = None) -> Any:
        """``kubectl get ... -o json`` decoded."""
        out = self.kubectl("get", *args, "-o", "json", namespace=namespace).stdout
        return json.loads(out)

    def api_client(self) -> Any:
        """A new kubernetes.client.ApiClient for this cluster (as the admin)."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    @property
    def client(self) -> Any:
        """One shared ApiClient (for the fixtures; tests may use it too)."""
        if self._client is None:
            self._client = self.api_client()
        return self._client

    def kubeconfig_for_token(
        self, token: str, path: str | os.PathLike[str], namespace: str | None = None
    ) -> Path:
        """A kubeconfig for this cluster that authenticates with a bearer token (e.g. a
        ServiceAccount's, from ``kubectl create token``)."""
        return kubeconfig_for_token(self.kubeconfig, token, path, namespace=namespace)

    def logs_tail(self, lines: int = 20) -> str:
        """Last lines of every component's log ('' for an external cluster)."""
        return self.launcher.logs_tail(lines) if self.launcher else ""

    def dump(self, namespace: str | None) -> str:
        """Human-readable state of a namespace for failure reports (never raises)."""
        parts = []
        queries: list[tuple[str, ...]] = [("get", "all,configmaps,leases", "-o", "wide")]
        queries += [("get", "rollouts.ramp.dev,analysistemplates.ramp.dev", "-o", "yaml")]
        queries += [("get", "events", "--sort-by=.lastTimestamp")]
        for args in queries:
            if namespace is None:
                break
            try:
                proc = self.kubectl(*args, namespace=namespace, check=False, timeout=20)
                out = (proc.stdout + proc.stderr).strip()
            except Exception as e:  # a dump must not hide the test's own failure
                out = f"({e})"
            parts.append(f"$ kubectl -n {namespace} {' '.join(args)}\n{out}")
        if self.launcher is not None:
            parts.append(f"component logs ({self.launcher.logs_dir}):\n{self.logs_tail(20)}")
        return "\n\n".join(parts)


_active: ClusterHandle | None = None
_summary: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _summary:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[ClusterHandle]:
    """A ready cluster for the whole session (see the module docstring)."""
    global _active
    external = os.environ.get(EXTERNAL_ENV)
    workdir = Path(tempfile.mkdtemp(prefix="ramp-cluster-", dir="/tmp"))
    launcher: Cluster | None = None
    try:
        if external:
            if not Path(external).is_file():
                raise ClusterError(f"{EXTERNAL_ENV}={external} is not a file")
            handle = ClusterHandle(Path(external), workdir, None)
        else:
            launcher = Cluster(workdir / "cluster", die_with_parent=True)
            launcher.start()
            handle = ClusterHandle(launcher.kubeconfig, workdir, launcher)
    except ClusterError as e:
        if launcher is not None:
            launcher.stop()
        pytest.fail(f"the test cluster is not available: {e}", pytrace=False)
    _active = handle
    try:
        yield handle
    finally:
        _active = None
        if launcher is not None:
            pids = launcher.alive().values()
            now, peak = rss_bytes(pids) / 2**20, rss_bytes(pids, "VmHWM") / 2**20
            launcher.stop()
            _summary.append(
                f"ramp: test cluster started in {launcher.startup_seconds or 0:.1f}s; memory at "
                f"the end {now:.0f} MiB RSS (sum of the components' peaks {peak:.0f} MiB)"
            )
        if request.session.testsfailed:
            _summary.append(f"ramp: the test cluster's logs are kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def _label_value(text: str) -> str:
    """A valid label value made from free text (test ids carry brackets and spaces)."""
    value = re.sub(r"[^A-Za-z0-9_.-]+", "-", text)[:63]
    return value.strip("-_.") or "test"


def _namespace_name(test_name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")
    base = base.removeprefix("test-")[:40].strip("-") or "t"
    return f"t-{base}-{secrets.token_hex(3)}"


@pytest.fixture
def namespace(cluster: ClusterHandle, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace for one test, deleted afterwards (unless RAMP_TEST_KEEP_NAMESPACES
    is set)."""
    from kubernetes import client

    core = client.CoreV1Api(cluster.client)
    name = _namespace_name(request.node.name)
    core.create_namespace(
        {"metadata": {"name": name, "labels": {"ramp.dev/test": _label_value(request.node.name)}}}
    )
    wait_for(
        f"the default ServiceAccount of namespace {name}",
        lambda: core.read_namespaced_service_account("default", name),
        timeout=30,
        retry=(Exception,),
    )
    try:
        yield name
    finally:
        if not os.environ.get("RAMP_TEST_KEEP_NAMESPACES"):
            try:
                core.delete_namespace(name, propagation_policy="Background")
            except Exception as e:  # the cluster may be gone; do not mask the test result
                print(f"ramp: could not delete namespace {name}: {e}")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if {"cluster", "namespace"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.cluster)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None] | Any:
    report = yield
    if report.failed and report.when in ("call", "setup") and _active is not None:
        funcargs = getattr(item, "funcargs", {})
        if "cluster" in funcargs or "namespace" in funcargs:
            ns = funcargs.get("namespace")
            title = f"ramp cluster state (namespace {ns})" if ns else "ramp cluster state"
            report.sections.append((title, _active.dump(ns if isinstance(ns, str) else None)))
    return report


__all__ = [
    "COMPONENTS",
    "EXTERNAL_ENV",
    "FAULT_LABEL",
    "READY_DELAY_ANNOTATION",
    "TEST_IMAGE",
    "ClusterHandle",
    "KubectlError",
    "cluster",
    "deployment_manifest",
    "namespace",
    "wait_for",
]
