"""prometheus-adapter serving the External metrics API from the test Prometheus.

The binary is sigs.k8s.io/prometheus-adapter built from its Go module by
``tests/cluster/adapter/build.sh`` (``make test-tools-build``). :class:`MetricsAdapter` runs
it on 127.0.0.1 at a free port with a serving certificate of its own CA (``openssl``), and
registers it with the cluster's API aggregation layer: the APIService
``v1beta1.external.metrics.k8s.io`` points at a Service of type ExternalName that names
``localhost``. The local cluster has no kube-proxy, so a ClusterIP would lead nowhere, and
EndpointSlices may not hold loopback addresses; for an ExternalName Service
kube-apiserver dials the name and the APIService's port itself, and verifies the adapter
against the APIService's ``caBundle`` under the name ``<service>.<namespace>.svc``.

One metric is configured (see :data:`CONFIG`): ``http_requests_per_second``, the request
rate of the exporter's ``http_requests_total`` summed over the series that the HPA's
metric selector picks, in the HPA's namespace. The adapter authenticates and authorizes
the requests that kube-apiserver forwards (front-proxy client certificate, see
tests/cluster/launcher.py) with the admin kubeconfig.

``stop()`` removes the APIService before the adapter goes: an APIService left unavailable
would make the namespace controller stop deleting namespaces (discovery fails).
"""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path
from typing import Any

from cluster.fixtures import ClusterHandle, wait_for
from cluster.launcher import BIN_DIR, ClusterError, binary
from prometheus.fixtures import PrometheusServer, _die_with_parent, free_port

METRIC = "http_requests_per_second"
RATE_WINDOW = "4s"
CONFIG = f"""\
externalRules:
  - seriesQuery: 'http_requests_total{{namespace!="",rollout!=""}}'
    resources:
      overrides:
        namespace: {{resource: namespace}}
    name:
      matches: ^http_requests_total$
      as: {METRIC}
    metricsQuery: sum(rate(<<.Series>>{{<<.LabelMatchers>>}}[{RATE_WINDOW}]))
"""
NAMESPACE = "ramp-metrics"
SERVICE = "prometheus-adapter"
API_SERVICE = "v1beta1.external.metrics.k8s.io"


def _openssl(cwd: Path, *args: str) -> None:
    proc = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise ClusterError(f"openssl {' '.join(args)} failed:\n{proc.stderr.strip()}")


def serving_certificate(workdir: Path, dns_name: str) -> tuple[Path, Path, Path]:
    """A CA and a serving certificate for ``dns_name``, ``localhost`` and 127.0.0.1;
    returns (ca.crt, tls.crt, tls.key)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cnf = workdir / "openssl.cnf"
    cnf.write_text("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = adapter\n")
    common = ["-config", str(cnf), "-days", "30", "-nodes"]
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    _openssl(
        workdir, "req", "-x509", *common, *ec, "-keyout", "ca.key", "-out", "ca.crt",
        "-subj", "/CN=ramp-test-adapter-ca",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    )  # fmt: skip
    _openssl(
        workdir, "req", *common, *ec, "-CA", "ca.crt", "-CAkey", "ca.key",
        "-keyout", "tls.key", "-out", "tls.crt", "-subj", f"/CN={dns_name}",
        "-addext", "basicConstraints=critical,CA:FALSE",
        "-addext", "extendedKeyUsage=serverAuth",
        "-addext", f"subjectAltName=DNS:{dns_name},DNS:localhost,IP:127.0.0.1",
    )  # fmt: skip
    return workdir / "ca.crt", workdir / "tls.crt", workdir / "tls.key"


def registration(port: int, ca_bundle: bytes) -> list[dict[str, Any]]:
    """The Namespace, ExternalName Service and APIService that route
    external.metrics.k8s.io/v1beta1 to the adapter on 127.0.0.1:``port``."""
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": SERVICE, "namespace": NAMESPACE},
            "spec": {
                "type": "ExternalName",
                "externalName": "localhost",
                "ports": [{"name": "https", "port": port}],
            },
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": API_SERVICE},
            "spec": {
                "group": "external.metrics.k8s.io",
                "version": "v1beta1",
                "service": {"name": SERVICE, "namespace": NAMESPACE, "port": port},
                "caBundle": base64.b64encode(ca_bundle).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]


class MetricsAdapter:
    """A prometheus-adapter process serving External metrics from ``prometheus``."""

    def __init__(self, cluster: ClusterHandle, prometheus: PrometheusServer, workdir: Path) -> None:
        self.cluster = cluster
        self.prometheus = prometheus
        self.workdir = workdir
        self.port = free_port()
        self.log_file = workdir / "prometheus-adapter.log"
        self._process: subprocess.Popen[bytes] | None = None
        self.startup_seconds: float | None = None

    def start(self, timeout: float = 60.0) -> MetricsAdapter:
        """Start the adapter, register its APIService and wait until it is Available
        (``startup_seconds``)."""
        began = time.monotonic()
        exe = binary("prometheus-adapter", BIN_DIR)
        ca, cert, key = serving_certificate(self.workdir / "pki", f"{SERVICE}.{NAMESPACE}.svc")
        config = self.workdir / "adapter.yaml"
        config.write_text(CONFIG)
        kubeconfig = str(self.cluster.kubeconfig)
        with self.log_file.open("ab") as log:
            self._process = subprocess.Popen(
                [
                    str(exe),
                    f"--secure-port={self.port}",
                    "--bind-address=127.0.0.1",
                    f"--tls-cert-file={cert}",
                    f"--tls-private-key-file={key}",
                    f"--lister-kubeconfig={kubeconfig}",
                    f"--authentication-kubeconfig={kubeconfig}",
                    f"--authorization-kubeconfig={kubeconfig}",
                    f"--prometheus-url={self.prometheus.url}",
                    f"--config={config}",
                    # series are rediscovered every 2 s (a new namespace's series is
                    # known at once); the discovery looks back 10 minutes
                    "--metrics-relist-interval=2s",
                    "--metrics-max-age=10m",
                    "--v=2",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.workdir,
                preexec_fn=_die_with_parent,
            )
        try:
            manifests = registration(self.port, ca.read_bytes())
            self.cluster.kubectl("apply", "-f", "-", input=json.dumps({
                "apiVersion": "v1", "kind": "List", "items": manifests
            }))  # fmt: skip
            wait_for(
                "the External metrics APIService",
                self._available,
                timeout=timeout,
                retry=(Exception,),
            )
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _available(self) -> bool:
        if self._process is None or self._process.poll() is not None:
            raise ClusterError(f"prometheus-adapter exited:\n{self.log_tail()}")
        out = self.cluster.kubectl("get", "apiservice", API_SERVICE, "-o", "json").stdout
        conditions = json.loads(out).get("status", {}).get("conditions") or []
        return any(c["type"] == "Available" and c["status"] == "True" for c in conditions)

    def value(self, namespace: str, selector: str) -> float | None:
        """The metric as the External metrics API serves it (via kube-apiserver), summed
        over its items; None when it serves none (or not yet: the adapter discovers the
        series of Prometheus every 2 s)."""
        path = f"/apis/external.metrics.k8s.io/v1beta1/namespaces/{namespace}/{METRIC}"
        proc = self.cluster.kubectl("get", "--raw", f"{path}?labelSelector={selector}", check=False)
        if proc.returncode != 0:
            return None
        items = json.loads(proc.stdout).get("items") or []
        if not items:
            return None
        return sum(parse_quantity(item["value"]) for item in items)

    def stop(self) -> None:
        """Unregister the APIService (first), then stop the adapter."""
        self.cluster.kubectl("delete", "apiservice", API_SERVICE, "--ignore-not-found", check=False)
        self.cluster.kubectl(
            "delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false", check=False
        )
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_file.exists():
            return "(no log)"
        return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])


def parse_quantity(text: str) -> float:
    """A Kubernetes quantity as the metrics APIs write it (``750``, ``749500m``, ``1200k``)."""
    suffixes = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9}
    if text and text[-1] in suffixes:
        return float(text[:-1]) * suffixes[text[-1]]
    return float(text)
