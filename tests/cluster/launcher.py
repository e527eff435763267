#!/usr/bin/env python3
"""Ramp's local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (standing in for kubelets), built from Go modules by build.sh.

Standard library and PyYAML only; the PKI is made with the ``openssl`` command.

    launcher.py up --dir .cluster      # start in the background, return once ready
    launcher.py status --dir .cluster  # what runs, is the API server ready
    launcher.py down --dir .cluster    # stop everything, leave no process behind

From Python::

    with Cluster("/tmp/x") as c:       # or c = Cluster(dir).start() ... c.stop()
        c.kubeconfig                   # admin kubeconfig (system:masters)

Everything binds 127.0.0.1 on free ports. DIR holds kubeconfig, pki/, logs/<component>.log
and cluster.json (ports, pids); etcd keeps its data on /dev/shm.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
BIN_DIR = Path(os.environ.get("RAMP_CLUSTER_BIN_DIR") or HERE / "bin")
KWOK_CONFIG = HERE / "kwok.yaml"
KUBECTL = BIN_DIR / "kubectl"
HELM = BIN_DIR / "helm"
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
SERVICE_CIDR = "10.0.0.0/24"
SERVICE_IP = "10.0.0.1"
NODE_PREFIX = "kwok-node-"
HOST = "127.0.0.1"
STATE_FILE = "cluster.json"
FRONT_PROXY_CLIENT = "front-proxy-client"
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node=fake"
"""Set on the kwok Nodes; beside a real node kwok manages only the Nodes that have it."""

__all__ = [
    "BIN_DIR",
    "COMPONENTS",
    "HELM",
    "KUBECTL",
    "Cluster",
    "ClusterError",
    "binary",
    "kubeconfig_for_token",
    "pid_alive",
    "rss_bytes",
]


class ClusterError(RuntimeError):
    """The local control plane could not be built, started, reached or stopped."""


class _PortRace(ClusterError):
    """A component could not bind its port (taken since it was picked)."""


def binary(name: str, bin_dir: Path = BIN_DIR) -> Path:
    """Path of a built binary (etcd, kube-apiserver, ..., kubectl, helm); a clear error if
    it has not been built."""
    path = Path(bin_dir) / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ClusterError(
            f"{name} is missing ({path} does not exist): run `make cluster-build` "
            "(tests/cluster/build.sh) to build the local control plane"
        )
    return path


def pid_alive(pid: int) -> bool:
    """True when the process exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    # the state follows the parenthesised command name, which may contain spaces
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _pid_runs(pid: int, exe: str) -> bool:
    """The process is alive and still runs `exe` (guards against reuse of the pid)."""
    if not pid_alive(pid):
        return False
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except OSError:
        return False
    return argv0 == exe


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((HOST, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _b64file(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 256 * lines))
            data = f.read().decode(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(data.splitlines()[-lines:])


def wait_established(
    kubeconfig: str | os.PathLike[str], crds: Iterable[str], timeout: float = 60.0
) -> None:
    """Wait until CRDs are Established. ``kubectl wait`` alone fails while a new CRD has no
    status conditions yet ("accessor error: <nil>"), so it is retried until the deadline."""
    names = [f"crd/{name}" for name in crds]
    deadline = time.monotonic() + timeout
    while True:
        proc = subprocess.run(
            [
                str(KUBECTL),
                "--kubeconfig",
                str(kubeconfig),
                "wait",
                "--for=condition=Established",
                "--timeout=10s",
                *names,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise ClusterError(f"CRDs not Established after {timeout:.0f}s: {proc.stderr.strip()}")
        time.sleep(0.5)


def kubeconfig_for_token(
    base_kubeconfig: str | os.PathLike[str],
    token: str,
    path: str | os.PathLike[str],
    *,
    namespace: str | None = None,
    user: str = "token-user",
) -> Path:
    """Write a kubeconfig at `path` that reaches the cluster of `base_kubeconfig`'s current
    context with a bearer token (e.g. of a ServiceAccount, from `kubectl create token`)."""
    base_path = Path(base_kubeconfig)
    base = yaml.safe_load(base_path.read_text())
    ctx_name = base.get("current-context")
    contexts = {c["name"]: c["context"] for c in base.get("contexts") or []}
    if ctx_name not in contexts:
        raise ClusterError(f"{base_path} has no current context")
    clusters = {c["name"]: c["cluster"] for c in base.get("clusters") or []}
    cluster = dict(clusters[contexts[ctx_name]["cluster"]])
    ca = cluster.get("certificate-authority")
    if ca and not os.path.isabs(ca):
        cluster["certificate-authority"] = str((base_path.parent / ca).resolve())
    context: dict[str, Any] = {"cluster": "cluster", "user": user}
    if namespace:
        context["namespace"] = namespace
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": user, "context": context}],
        "current-context": user,
    }
    out = Path(path)
    _write_private(out, yaml.safe_dump(config, sort_keys=False))
    return out


def _node() -> Any:
    """tests/cluster/realnode.py, imported only for a cluster with a real node."""
    if __package__:
        from . import realnode
    else:  # run as a script: tests/cluster is sys.path[0]
        import realnode  # type: ignore[no-redef]
    return realnode


def _die_with_parent() -> None:  # runs in the child between fork and exec
    # SIGKILL, not SIGTERM: all components get it at once, and an API server whose etcd is
    # gone takes many seconds over a graceful shutdown; the cluster is disposable anyway.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _sweep_stale_etcd_data(root: Path, min_age: float = 120.0) -> None:
    """Remove etcd data dirs (ours, on tmpfs) that no running etcd uses: leftovers of a test
    session that was killed before it could stop its cluster."""
    dirs = [d for d in root.glob("ramp-etcd-*") if time.time() - d.stat().st_mtime > min_age]
    if not dirs:
        return
    in_use = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                for arg in (proc / "cmdline").read_bytes().split(b"\0"):
                    if arg.startswith(b"--data-dir="):
                        in_use.add(arg.split(b"=", 1)[1].decode())
    for d in dirs:
        if str(d) not in in_use:
            shutil.rmtree(d, ignore_errors=True)


class Cluster:
    """One local control plane living in `dir`.

    `start()` returns once /readyz is ok, the Node(s) are Ready and schedulable, the
    controller manager and scheduler are healthy and the `default` ServiceAccount exists.
    `stop()` ends every process it started (also from another Python process: the pids are in
    DIR/cluster.json) and removes the etcd data. With ``die_with_parent=True`` the components
    also get SIGTERM when the starting process dies (used by the pytest fixture)."""

    def __init__(
        self,
        dir: str | os.PathLike[str],
        *,
        bin_dir: str | os.PathLike[str] = BIN_DIR,
        nodes: int = 1,
        apiserver_port: int | None = None,
        die_with_parent: bool = False,
        verbosity: int = 0,
        real_node: bool = False,
        controller_workers: int | None = None,
    ) -> None:
        self.dir = Path(dir).resolve()
        self.real_node = real_node
        self.controller_workers = controller_workers
        """Workers of the controller manager's Deployment and ReplicaSet controllers
        (``--concurrent-deployment-syncs``, ``--concurrent-replicaset-syncs``); None: its
        own default, 5 each. Only the benchmarks set it (bench/README.md)."""
        """Also a real node (tests/cluster/realnode.py): a kubelet with containerd, and the
        whole cluster in a network namespace of its own."""
        self.bin_dir = Path(bin_dir)
        self.nodes = nodes
        self.die_with_parent = die_with_parent
        self.verbosity = verbosity
        self._requested_port = apiserver_port
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._state: dict[str, Any] = {}
        self.startup_seconds: float | None = None
        self.load_state()

    # -- paths and state ------------------------------------------------------------------
    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def pki(self) -> Path:
        return self.dir / "pki"

    @property
    def logs_dir(self) -> Path:
        return self.dir / "logs"

    @property
    def ca_file(self) -> Path:
        return self.pki / "ca.crt"

    @property
    def admin_cert_file(self) -> Path:
        return self.pki / "admin.crt"

    @property
    def admin_key_file(self) -> Path:
        return self.pki / "admin.key"

    @property
    def state_file(self) -> Path:
        return self.dir / STATE_FILE

    @property
    def ports(self) -> dict[str, int]:
        return dict(self._state.get("ports", {}))

    @property
    def server(self) -> str:
        return f"https://{HOST}:{self.ports['kube-apiserver']}"

    @property
    def kubectl_path(self) -> Path:
        return binary("kubectl", self.bin_dir)

    @property
    def helm_path(self) -> Path:
        return binary("helm", self.bin_dir)

    def load_state(self) -> dict[str, Any]:
        try:
            self._state = json.loads(self.state_file.read_text())
        except (FileNotFoundError, ValueError):
            self._state = {}
        return self._state

    def _save_state(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self._state, indent=2))
        tmp.replace(self.state_file)
        pids = self.dir / "pids"
        pids.mkdir(exist_ok=True)
        for name, pid in self._state.get("pids", {}).items():
            (pids / f"{name}.pid").write_text(f"{pid}\n")

    def pids(self) -> dict[str, int]:
        """Process ids of the components started in this directory (alive or not)."""
        return {k: int(v) for k, v in self._state.get("pids", {}).items()}

    def alive(self) -> dict[str, int]:
        """The components whose process still runs."""
        exes = self._state.get("exes", {})
        return {
            name: pid
            for name, pid in self.pids().items()
            if _pid_runs(pid, exes.get(name, str(self.bin_dir / name)))
        }

    def log_path(self, component: str) -> Path:
        return self.logs_dir / f"{component}.log"

    def log_tail(self, component: str, lines: int = 30) -> str:
        return _tail(self.log_path(component), lines)

    def logs_tail(self, lines: int = 20) -> str:
        """The last lines of every component's log, for diagnostics."""
        parts = []
        for name in (*COMPONENTS, "netns", "containerd", "kubelet"):
            if self.log_path(name).exists():
                parts.append(
                    f"--- {name} ({self.log_path(name)}) ---\n{self.log_tail(name, lines)}"
                )
        return "\n".join(parts)

    def kubeconfig_for_token(
        self, token: str, path: str | os.PathLike[str], namespace: str | None = None
    ) -> Path:
        return kubeconfig_for_token(self.kubeconfig, token, path, namespace=namespace)

    # -- API access (stdlib HTTPS with the admin certificate) ------------------------------
    def _ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(str(self.admin_cert_file), str(self.admin_key_file))
        return ctx

    def api(
        self, method: str, path: str, body: Mapping[str, Any] | None = None, timeout: float = 5
    ) -> tuple[int, Any]:
        """One request to the API server as the admin; returns (status, decoded body)."""
        conn = http.client.HTTPSConnection(
            HOST, self.ports["kube-apiserver"], context=self._ssl(), timeout=timeout
        )
        try:
            data = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if data else {}
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read().decode(errors="replace")
        finally:
            conn.close()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, raw

    @staticmethod
    def _component_get(port: int, path: str, timeout: float) -> tuple[int, bytes]:
        """GET a path of the controller manager or the scheduler (their own self-signed
        serving certificates, on HOST): (status, body). Raises OSError."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conn = http.client.HTTPSConnection(HOST, port, context=ctx, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        finally:
            conn.close()

    @staticmethod
    def _healthz(port: int) -> bool:
        try:
            status, body = Cluster._component_get(port, "/healthz", timeout=2)
        except OSError:
            return False
        return status == 200 and body.strip() == b"ok"

    def component_metrics(self, name: str) -> str:
        """The text of a component's /metrics (the controller manager answers it without
        credentials, see _args); raises OSError if it does not answer 200."""
        status, body = self._component_get(self.ports[name], "/metrics", timeout=10)
        if status != 200:
            raise OSError(f"{name} /metrics answered {status}")
        return body.decode()

    def ready(self) -> bool:
        """The API server answers /readyz with ok."""
        if "kube-apiserver" not in self.ports or not self.ca_file.exists():
            return False
        try:
            status, body = self.api("GET", "/readyz", timeout=2)
        except (OSError, http.client.HTTPException):
            return False
        return status == 200 and str(body).strip() == "ok"

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 120.0) -> Cluster:
        """Start the control plane and wait until it is usable; on any failure everything
        already started is stopped before the error propagates."""
        began = time.monotonic()
        self.load_state()
        if self.alive():
            raise ClusterError(
                f"a cluster is already running in {self.dir} (pids {self.alive()}); "
                f"stop it with `{Path(__file__).name} down --dir {self.dir}`"
            )
        if self._state:
            self.stop()  # leftovers of a crashed run: clean the pids and etcd data
        if self.real_node and _node().missing():
            raise ClusterError(
                f"the real node needs: {', '.join(_node().missing())}; run "
                "`make cluster-build RAMP_REAL_NODE=1` (tests/cluster/node/build.sh)"
            )
        missing = [n for n in COMPONENTS if not os.access(self.bin_dir / n, os.X_OK)]
        if missing:
            raise ClusterError(
                f"missing control-plane binaries in {self.bin_dir}: {', '.join(missing)}; "
                "run `make cluster-build` (tests/cluster/build.sh) to build them"
            )
        exes = {name: binary(name, self.bin_dir) for name in COMPONENTS}
        if shutil.which("openssl") is None:
            raise ClusterError("the `openssl` command is required to make the cluster's PKI")
        if not KWOK_CONFIG.exists():
            raise ClusterError(f"the kwok configuration {KWOK_CONFIG} is missing")
        if self._requested_port is not None and not _port_free(self._requested_port):
            raise ClusterError(
                f"port {self._requested_port} on {HOST} is already in use "
                "(another cluster or program); choose another API server port"
            )
        for attempt in range(3):
            try:
                self._start(exes, began, timeout)
                break
            except _PortRace:
                self.stop()
                # a port picked as free was taken before the component bound it: new ports
                if attempt == 2 or self._requested_port is not None:
                    raise
            except BaseException:
                self.stop()
                raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _start(self, exes: dict[str, Path], began: float, timeout: float) -> None:
        for sub in ("logs", "pki", "pids"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        for old in (self.dir / "pids").glob("*.pid"):
            old.unlink()
        ports = _free_ports(5)
        names = ["etcd", "etcd-peer", "kube-controller-manager", "kube-scheduler"]
        port_map = dict(zip(names, ports[1:], strict=True))
        port_map["kube-apiserver"] = self._requested_port or ports[0]
        shm = Path("/dev/shm")
        data_root = shm if shm.is_dir() and os.access(shm, os.W_OK) else self.dir
        if data_root == shm:
            _sweep_stale_etcd_data(shm)
        etcd_data = tempfile.mkdtemp(prefix="ramp-etcd-", dir=data_root)
        self._state = {
            "dir": str(self.dir),
            "ports": port_map,
            "pids": {},
            "exes": {k: str(v) for k, v in exes.items()},
            "etcd_data": etcd_data,
            "started_at": time.time(),
        }
        self._save_state()
        self._make_pki()
        self._write_kubeconfig()
        if self.real_node:
            self._start_netns()
        for name in COMPONENTS:
            self._spawn(name, exes[name], self._args(name))
        if self.real_node:
            self._start_node(began, timeout)
        self._wait_ready(began, timeout)
        self._state["ready_at"] = time.time()
        self._save_state()

    def _openssl(self, *args: str) -> None:
        proc = subprocess.run(
            ["openssl", *args], cwd=self.pki, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise ClusterError(f"openssl {' '.join(args)} failed:\n{proc.stderr.strip()}")

    def _make_pki(self) -> None:
        cnf = self.pki / "openssl.cnf"
        cnf.write_text("[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = ramp\n")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        common = ["-config", str(cnf), "-days", "3650", *ec]
        self._openssl(
            "req", "-x509", *common, "-keyout", "ca.key", "-out", "ca.crt",
            "-subj", "/CN=ramp-local-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            "-addext", "subjectKeyIdentifier=hash",
        )  # fmt: skip
        leaf = [
            "-CA", "ca.crt", "-CAkey", "ca.key",
            "-addext", "basicConstraints=critical,CA:FALSE",
            "-addext", "keyUsage=critical,digitalSignature,keyEncipherment",
            "-addext", "authorityKeyIdentifier=keyid",
        ]  # fmt: skip
        sans = ",".join(
            [
                "DNS:localhost",
                "DNS:kubernetes",
                "DNS:kubernetes.default",
                "DNS:kubernetes.default.svc",
                "DNS:kubernetes.default.svc.cluster.local",
                f"IP:{HOST}",
                f"IP:{SERVICE_IP}",
            ]
        )
        self._openssl(
            "req", *common, *leaf, "-keyout", "apiserver.key", "-out", "apiserver.crt",
            "-subj", "/CN=kube-apiserver",
            "-addext", f"subjectAltName={sans}", "-addext", "extendedKeyUsage=serverAuth",
        )  # fmt: skip
        self._openssl(
            "req", *common, *leaf, "-keyout", "admin.key", "-out", "admin.crt",
            "-subj", "/O=system:masters/CN=ramp-admin", "-addext", "extendedKeyUsage=clientAuth",
        )  # fmt: skip
        # The API aggregation layer: kube-apiserver proxies aggregated APIs (e.g. the
        # External metrics API of prometheus-adapter) with this client certificate, and
        # the aggregated servers trust the user it names only if signed by this CA.
        self._openssl(
            "req", "-x509", *common, "-keyout", "front-proxy-ca.key", "-out", "front-proxy-ca.crt",
            "-subj", "/CN=ramp-front-proxy-ca",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
            "-addext", "subjectKeyIdentifier=hash",
        )  # fmt: skip
        self._openssl(
            "req", *common, *leaf[4:], "-CA", "front-proxy-ca.crt", "-CAkey", "front-proxy-ca.key",
            "-keyout", "front-proxy-client.key", "-out", "front-proxy-client.crt",
            "-subj", f"/CN={FRONT_PROXY_CLIENT}", "-addext", "extendedKeyUsage=clientAuth",
        )  # fmt: skip
        self._openssl(
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "sa.key"
        )
        self._openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        for key in self.pki.glob("*.key"):
            key.chmod(0o600)

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "ramp-local",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": _b64file(self.ca_file),
                    },
                }
            ],
            "users": [
                {
                    "name": "ramp-admin",
                    "user": {
                        "client-certificate-data": _b64file(self.admin_cert_file),
                        "client-key-data": _b64file(self.admin_key_file),
                    },
                }
            ],
            "contexts": [
                {"name": "ramp-local", "context": {"cluster": "ramp-local", "user": "ramp-admin"}}
            ],
            "current-context": "ramp-local",
        }
        _write_private(self.kubeconfig, yaml.safe_dump(config, sort_keys=False))

    def _args(self, name: str) -> list[str]:
        p = self.ports
        pki = self.pki
        kc = str(self.kubeconfig)
        v = f"--v={self.verbosity}"
        if name == "etcd":
            client, peer = f"http://{HOST}:{p['etcd']}", f"http://{HOST}:{p['etcd-peer']}"
            return [
                "--name=ramp",
                f"--data-dir={self._state['etcd_data']}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=ramp={peer}",
                "--unsafe-no-fsync=true",
                "--log-level=warn",
            ]
        if name == "kube-apiserver":
            return [
                f"--etcd-servers=http://{HOST}:{p['etcd']}",
                f"--bind-address={HOST}",
                f"--advertise-address={HOST}",
                f"--secure-port={p['kube-apiserver']}",
                f"--cert-dir={pki / 'apiserver'}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki / 'sa.pub'}",
                f"--service-account-signing-key-file={pki / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--authorization-mode=RBAC",
                "--endpoint-reconciler-type=none",
                "--allow-privileged=true",
                # the aggregation layer (APIService objects): see _make_pki
                f"--requestheader-client-ca-file={pki / 'front-proxy-ca.crt'}",
                f"--requestheader-allowed-names={FRONT_PROXY_CLIENT}",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
                # logs and exec on the real node: the kubelet trusts our CA's clients
                *(
                    [
                        f"--kubelet-client-certificate={pki / 'admin.crt'}",
                        f"--kubelet-client-key={pki / 'admin.key'}",
                        "--kubelet-preferred-address-types=InternalIP",
                    ]
                    if self.real_node
                    else []
                ),
                v,
            ]
        common = [
            # no --authentication/authorization-kubeconfig: with them the component exits
            # when the API server is not up yet; /healthz is always allowed anyway
            f"--kubeconfig={kc}",
            f"--bind-address={HOST}",
            f"--secure-port={p[name]}" if name in p else "",
            "--leader-elect=false",
            "--kube-api-qps=1000",
            "--kube-api-burst=2000",
            v,
        ]
        if name == "kube-controller-manager":
            return [
                *common,
                f"--cert-dir={pki / 'kcm'}",
                f"--root-ca-file={pki / 'ca.crt'}",
                f"--service-account-private-key-file={pki / 'sa.key'}",
                f"--cluster-signing-cert-file={pki / 'ca.crt'}",
                f"--cluster-signing-key-file={pki / 'ca.key'}",
                "--use-service-account-credentials=false",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                # HPAs are evaluated every 2 s instead of 15 s, so that the HPA test reacts
                # in seconds; no other test has an HPA (tests/e2e/test_hpa.py)
                "--horizontal-pod-autoscaler-sync-period=2s",
                # its work queues' figures for the benchmarks (bench/rollouts.py)
                "--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics",
                *(
                    [
                        f"--concurrent-deployment-syncs={self.controller_workers}",
                        f"--concurrent-replicaset-syncs={self.controller_workers}",
                    ]
                    if self.controller_workers
                    else []
                ),
            ]
        if name == "kube-scheduler":
            return [*common, f"--cert-dir={pki / 'scheduler'}"]
        if name == "kwok":
            # beside a real node kwok manages only its own (annotated) Nodes
            manage = [
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={KWOK_NODE_ANNOTATION}",
            ]
            return [
                f"--kubeconfig={kc}",
                f"--config={KWOK_CONFIG}",
                *(manage if self.real_node else ["--manage-all-nodes=true"]),
            ]
        raise ValueError(name)

    def _spawn(self, name: str, exe: Path, args: list[str], append: bool = False) -> None:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # kwok would also read ~/.kwok/kwok.yaml: give it a home of its own
            "HOME": str(self.dir / "home" / name),
        }
        Path(env["HOME"]).mkdir(parents=True, exist_ok=True)
        log = open(self.log_path(name), "ab" if append else "wb")  # noqa: SIM115 (child keeps it)
        try:
            log.write(f"--- {time.strftime('%H:%M:%S')} {exe} {' '.join(args)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                [str(exe), *[a for a in args if a]],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                env=env,
                start_new_session=True,  # own process group: stop() signals the group
                preexec_fn=self._preexec(name),
            )
        finally:
            log.close()
        self._procs[name] = proc
        self._state["pids"][name] = proc.pid
        self._save_state()

    def _preexec(self, name: str) -> Any:
        """What the child does before exec: die with the parent (when asked) and, with a real
        node, enter the cluster's network namespace (all but its holder)."""
        netns = self._state.get("netns_pid") if name != "netns" else None
        if not netns:
            return _die_with_parent if self.die_with_parent else None
        enter = _node().preexec_in(netns)

        def both() -> None:
            if self.die_with_parent:
                _die_with_parent()
            enter()

        return both

    def _start_netns(self) -> None:
        """The cluster's network namespace, held by a process that also forwards the control
        plane's ports from the machine's 127.0.0.1 into it (realnode.py)."""
        ready = self.dir / "netns.json"
        ready.unlink(missing_ok=True)
        ports = [p for n, p in self.ports.items() if n != "etcd-peer"]
        script = str(Path(_node().__file__))
        self._state["exes"]["netns"] = sys.executable
        self._spawn("netns", Path(sys.executable), [script, "netns", str(ready), *map(str, ports)])
        deadline = time.monotonic() + 20
        while not ready.exists():
            self._check_alive()
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"the network namespace holder did not start: {self.log_tail('netns')}"
                )
            time.sleep(0.05)
        info = json.loads(ready.read_text())
        self._state["netns_pid"] = info["pid"]
        self._state["netns_inode"] = info["inode"]
        self._state["real_node"] = True
        # a short path: unix sockets (containerd's, the kubelet's) take at most 107 bytes
        node = Path(tempfile.mkdtemp(prefix="ramp-node-", dir="/tmp"))
        self._state["node_dir"] = str(node)
        link = self.dir / "node"
        link.unlink(missing_ok=True)
        link.symlink_to(node)
        self._save_state()

    def _start_node(self, began: float, timeout: float) -> None:
        """containerd (our images imported) and the kubelet, in the cluster's namespace."""
        rn = _node()
        node = Path(self._state["node_dir"])
        rn.sweep_orphans()
        rn.write_config(node, self.ca_file)
        rn.prepare_network(self._state["netns_pid"])
        self._state["exes"]["containerd"] = rn.CONTAINERD
        self._spawn("containerd", Path(rn.CONTAINERD), rn.containerd_args(node))
        while not rn.containerd_up(node):
            self._check_alive()
            if time.monotonic() - began > timeout:
                raise ClusterError(f"containerd did not answer: {self.log_tail('containerd')}")
            time.sleep(0.1)
        rn.import_images(node)
        kubelet = rn.NODE_BIN / "kubelet"
        self._state["exes"]["kubelet"] = str(kubelet)
        self._spawn("kubelet", kubelet, rn.kubelet_args(node, self.kubeconfig, self.verbosity))

    def _check_alive(self) -> None:
        for name in list(self._procs):
            proc = self._procs.get(name)
            if proc is None or proc.poll() is None:
                continue
            tail = self.log_tail(name, 25)
            if "address already in use" in tail:
                raise _PortRace(
                    f"{name} exited early with code {proc.returncode} because a port it needs "
                    f"on {HOST} is already in use ({self.ports}); last lines of "
                    f"{self.log_path(name)}:\n{tail}"
                )
            raise ClusterError(
                f"{name} exited early with code {proc.returncode}; "
                f"last lines of {self.log_path(name)}:\n{tail}"
            )

    def _node_manifest(self, name: str) -> dict[str, Any]:
        resources = {"cpu": "1000", "memory": "1Ti", "pods": "1000", "ephemeral-storage": "1Ti"}
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": name,
                "labels": {
                    "kubernetes.io/hostname": name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                },
                "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            },
            "spec": {},
            "status": {"allocatable": resources, "capacity": resources},
        }

    def _wait_ready(self, began: float, timeout: float) -> None:
        pending = ["/readyz"]
        created = False
        node_names = [f"{NODE_PREFIX}{i}" for i in range(self.nodes)]
        while True:
            self._check_alive()
            pending = []
            if not self.ready():
                pending.append("kube-apiserver /readyz")
            else:
                if not created:
                    for node in node_names:
                        status, body = self.api("POST", "/api/v1/nodes", self._node_manifest(node))
                        if status not in (201, 409):
                            raise ClusterError(f"creating Node {node} failed ({status}): {body}")
                    created = True
                for node in node_names:
                    status, body = self.api("GET", f"/api/v1/nodes/{node}")
                    conds = {c["type"]: c["status"] for c in body.get("status", {}).get(
                        "conditions", []
                    )} if status == 200 else {}  # fmt: skip
                    taints = body.get("spec", {}).get("taints") if status == 200 else None
                    if conds.get("Ready") != "True" or taints:
                        pending.append(f"Node {node} Ready and untainted")
                if self.real_node and not self._node_ready(_node().NODE_NAME):
                    pending.append(f"Node {_node().NODE_NAME} (the kubelet) Ready")
                status, _ = self.api("GET", "/api/v1/namespaces/default/serviceaccounts/default")
                if status != 200:
                    pending.append("ServiceAccount default/default (controller manager)")
            for name in ("kube-controller-manager", "kube-scheduler"):
                if not self._healthz(self.ports[name]):
                    pending.append(f"{name} /healthz")
            if not pending:
                return
            if time.monotonic() - began > timeout:
                raise ClusterError(
                    f"the cluster in {self.dir} was not ready after {timeout:.0f}s; still waiting "
                    f"for: {', '.join(pending)}\n{self.logs_tail(15)}"
                )
            time.sleep(0.2)

    def _node_ready(self, name: str) -> bool:
        status, body = self.api("GET", f"/api/v1/nodes/{name}")
        conds = body.get("status", {}).get("conditions", []) if status == 200 else []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop every component (SIGTERM to each process group, SIGKILL after `timeout`),
        remove the etcd data, the pid files and the kubeconfig. Logs and PKI stay.

        Clients first, then the API server, then etcd: an API server whose etcd is gone
        takes many seconds to shut down."""
        if not self._state:
            self.load_state()
        exes = self._state.get("exes", {})
        running = {
            name: pid
            for name, pid in self.pids().items()
            if _pid_runs(pid, exes.get(name, str(self.bin_dir / name)))
        }
        left: dict[str, int] = {}
        problems: list[str] = []
        if self._state.get("real_node"):
            # the node first: the kubelet, containerd, then what containerd left behind
            for name in ("kubelet", "containerd"):
                left.update(
                    self._terminate({n: p for n, p in running.items() if n == name}, timeout)
                )
            problems += _node().cleanup(Path(self._state["node_dir"]))
            (self.dir / "node").unlink(missing_ok=True)
        groups = (COMPONENTS[2:], ("kube-apiserver",), ("etcd",), ("netns",))
        for group in groups:
            left.update(self._terminate({n: p for n, p in running.items() if n in group}, timeout))
        for proc in self._procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
        if left or problems:
            raise ClusterError(f"could not stop {left} in {self.dir}: {problems}")
        etcd_data = self._state.get("etcd_data")
        if etcd_data:
            shutil.rmtree(etcd_data, ignore_errors=True)
        for path in (self.state_file, self.kubeconfig, self.dir / "netns.json"):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.dir / "pids", ignore_errors=True)
        self._procs.clear()
        self._state = {}

    def stop_component(self, name: str, timeout: float = 10.0) -> None:
        """Stop one component (SIGTERM, SIGKILL after `timeout`); its state stays, so
        :meth:`start_component` brings it back on the same port with the same etcd data."""
        if name not in COMPONENTS:
            raise ValueError(f"unknown component {name!r}; one of {COMPONENTS}")
        self.load_state()
        pid = self.alive().get(name)
        if pid is not None and self._terminate({name: pid}, timeout):
            raise ClusterError(f"could not stop {name} (pid {pid}) in {self.dir}")
        proc = self._procs.pop(name, None)
        if proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)

    def start_component(self, name: str, timeout: float = 60.0) -> None:
        """Start a stopped component again with the arguments it had (same ports, same
        etcd data), its log appended to; returns once the cluster is usable again."""
        self.load_state()
        if name in self.alive():
            raise ClusterError(f"{name} is already running in {self.dir}")
        exe = Path(self._state.get("exes", {}).get(name) or binary(name, self.bin_dir))
        with open(self.log_path(name), "ab") as log:
            log.write(f"--- restart {time.strftime('%H:%M:%S')}\n".encode())
        self._spawn(name, exe, self._args(name), append=True)
        self._wait_ready(time.monotonic(), timeout)

    def restart_component(self, name: str, down_seconds: float = 0.0) -> float:
        """Stop a component, leave it down `down_seconds`, start it again (see
        :meth:`stop_component`); returns the seconds until the cluster was usable again."""
        began = time.monotonic()
        self.stop_component(name)
        time.sleep(down_seconds)
        self.start_component(name)
        return time.monotonic() - began

    def _terminate(self, targets: dict[str, int], timeout: float) -> dict[str, int]:
        """SIGTERM, then SIGKILL; returns what is still alive (nothing, normally)."""
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            if not targets:
                break
            for pid in targets.values():
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, sig)
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + wait
            while targets and time.monotonic() < deadline:
                time.sleep(0.02)
                for proc in self._procs.values():
                    proc.poll()  # reap our own children so that they do not stay zombies
                targets = {n: p for n, p in targets.items() if pid_alive(p)}
        return targets

    def status(self) -> dict[str, Any]:
        self.load_state()
        return {
            "dir": str(self.dir),
            "kubeconfig": str(self.kubeconfig) if self.kubeconfig.exists() else None,
            "server": self.server if self.ports else None,
            "running": self.alive(),
            "stopped": sorted(set(self.pids()) - set(self.alive())),
            "ready": bool(self.alive()) and self.ready(),
        }


def rss_bytes(pids: Iterable[int], field: str = "VmRSS") -> int:
    """Resident memory of the given processes, summed (bytes); ``field="VmHWM"`` gives the
    sum of each process's peak."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(f"{field}:"):
                    total += int(line.split()[1]) * 1024
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["up", "down", "status"])
    parser.add_argument("--dir", default=".cluster", help="state folder (default .cluster)")
    parser.add_argument("--port", type=int, default=None, help="API server port (default: free)")
    parser.add_argument("--nodes", type=int, default=1, help="kwok Nodes to create (default 1)")
    parser.add_argument("--timeout", type=float, default=120.0, help="start-up timeout (s)")
    parser.add_argument(
        "--real-node",
        action="store_true",
        default=os.environ.get("RAMP_REAL_NODE", "") not in ("", "0"),
        help="also a real node (kubelet + containerd), the cluster in a network namespace of "
        "its own (default: $RAMP_REAL_NODE); docs/real-node.md",
    )
    args = parser.parse_args(argv)
    # a SIGTERM during `up` unwinds through start(), which stops what it started
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    cluster = Cluster(
        args.dir, apiserver_port=args.port, nodes=args.nodes, real_node=args.real_node
    )
    try:
        if args.command == "up":
            if cluster.alive():
                if cluster.ready():
                    print(f"ramp: cluster already running; KUBECONFIG={cluster.kubeconfig}")
                    return 0
                raise ClusterError(
                    f"a cluster in {cluster.dir} runs but is not ready; "
                    f"run `{Path(__file__).name} down --dir {args.dir}` first"
                )
            cluster.start(timeout=args.timeout)
            print(
                f"ramp: cluster ready in {cluster.startup_seconds:.1f}s at {cluster.server}; "
                f"export KUBECONFIG={cluster.kubeconfig}"
            )
        elif args.command == "down":
            had = cluster.alive()
            cluster.stop()
            print("ramp: cluster stopped" if had else "ramp: no cluster was running")
        else:
            st = cluster.status()
            st["rss_mib"] = round(rss_bytes(st["running"].values()) / 2**20)
            print(json.dumps(st, indent=2))
            return 0 if st["ready"] else 1
    except ClusterError as e:
        print(f"ramp: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
