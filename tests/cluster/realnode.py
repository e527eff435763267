"""A real node for the local cluster: a kubelet with Debian's containerd, runc and CNI plugins.

Used by :class:`launcher.Cluster` with ``real_node=True`` (``launcher.py up --real-node``,
``make cluster-up RAMP_REAL_NODE=1``); built by ``node/build.sh``; see docs/real-node.md.

Everything of such a cluster lives in one network namespace of its own: the control plane,
containerd, the kubelet, the pods on the CNI bridge (``POD_CIDR``) and whatever a test runs
there. The namespace is held by the ``netns`` component (``python realnode.py netns``),
which also forwards the control plane's ports from the machine's 127.0.0.1 to the same
ports in the namespace, so that kubectl, the tests and the operator reach the API server
with the ordinary kubeconfig. Nothing of the node is reachable from outside the machine,
and two clusters with real nodes never see each other's pods.

Stopping (:func:`stop_node`): the kubelet, then containerd, then the shims and containers
that containerd left behind (found by the node's own containerd socket in their command
line), then every mount under the node's folder, then the folder. The namespace and its
network devices go away with the ``netns`` process (:func:`leftovers` checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
NODE_BIN = Path(os.environ.get("RAMP_NODE_BIN_DIR") or HERE / "node" / "bin")
NODE_NAME = "real-node-0"
NODE_LABEL = "ramp.dev/real-node"
"""Label (value ``"true"``) and NoSchedule taint of the real node: only pods that tolerate
it and select it run there; the kwok node keeps everything else."""
POD_CIDR = "10.250.0.0/24"
NODE_IP = "10.250.0.1"
"""The CNI bridge's address in the namespace: the node's InternalIP and the kubelet's."""
BRIDGE = "ramp0"
DEMO_IMAGE = "localhost/ramp-demoapp:v1"
PAUSE_IMAGE = "localhost/ramp-pause:v1"
IMAGES = {"demoapp.oci.tar": DEMO_IMAGE, "pause.oci.tar": PAUSE_IMAGE}
CNI_DIR = Path(os.environ.get("RAMP_CNI_BIN_DIR") or "/usr/lib/cni")
CONTAINERD = shutil.which("containerd") or "/usr/bin/containerd"
CTR = shutil.which("ctr") or "/usr/bin/ctr"
RUNC = shutil.which("runc") or "/usr/sbin/runc"
CLONE_NEWNET = 0x40000000
NODE_COMPONENTS = ("containerd", "kubelet")

_libc = ctypes.CDLL(None, use_errno=True)


class NodeError(RuntimeError):
    """The real node could not be built, started or cleaned up."""


def setns(path: str | os.PathLike[str]) -> None:
    """Move the calling thread into the network namespace at `path` (e.g.
    ``/proc/PID/ns/net``). Sockets made afterwards by this thread live there."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns({path}): {os.strerror(err)}")
    finally:
        os.close(fd)


def netns_path(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


def netns_inode(pid: int | str) -> int:
    """The inode that identifies a process's network namespace (``self`` for ours)."""
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def preexec_in(pid: int) -> Callable[[], None]:
    """A ``preexec_fn`` that puts the child into the network namespace of process `pid`."""
    path = netns_path(pid)

    def enter() -> None:
        setns(path)

    return enter


def missing() -> list[str]:
    """What the machine lacks for a real node (empty when all is there)."""
    out = [f"{p} (node/build.sh)" for p in ("kubelet", *IMAGES) if not (NODE_BIN / p).exists()]
    for exe in (CONTAINERD, CTR, RUNC):
        if not os.access(exe, os.X_OK):
            out.append(f"{exe} (node/prereqs.sh)")
    for plugin in ("bridge", "host-local", "loopback"):
        if not os.access(CNI_DIR / plugin, os.X_OK):
            out.append(f"{CNI_DIR / plugin} (node/prereqs.sh: containernetworking-plugins)")
    return out


# -- the namespace holder and port forwarder (a process of its own) --------------------------


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _netns_main(ports: list[int], ready_file: Path) -> None:
    """Unshare a new network namespace (loopback up), forward 127.0.0.1:PORT of the namespace
    we came from to 127.0.0.1:PORT in the new one, and live until SIGTERM."""
    host_ns = os.open("/proc/self/ns/net", os.O_RDONLY)
    listeners = []
    for port in ports:  # bound in the machine's namespace before leaving it
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError as e:
            print(f"netns: cannot forward port {port}: address already in use ({e})", flush=True)
            sys.exit(3)
        s.listen(128)
        s.setblocking(False)
        listeners.append((port, s))
    if _libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        print(f"netns: unshare(CLONE_NEWNET) failed: {os.strerror(err)}", flush=True)
        sys.exit(2)
    os.close(host_ns)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)

        def handler(port: int) -> Callable[..., Any]:
            async def forward(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
                try:
                    r2, w2 = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    w.close()
                    return
                await asyncio.gather(_pipe(r, w2), _pipe(r2, w))

            return forward

        for port, s in listeners:
            await asyncio.start_server(handler(port), sock=s)
        ready_file.write_text(json.dumps({"pid": os.getpid(), "inode": netns_inode("self")}))
        print(f"netns: holding {netns_inode('self')}, forwarding {ports}", flush=True)
        await stop.wait()

    asyncio.run(serve())


# -- configuration ------------------------------------------------------------------------


def _containerd_config(node: Path) -> str:
    cd = node / "containerd"
    return f"""version = 2
root = "{cd / "root"}"
state = "{cd / "state"}"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.overlayfs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{cd / "containerd.sock"}"
[ttrpc]
  address = "{cd / "containerd.sock.ttrpc"}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{cd / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # the machine has no CAP_SYS_RESOURCE: no negative oom_score_adj (docs/real-node.md)
  restrict_oom_score_adj = true
  disable_apparmor = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "{RUNC}"
        Root = "{node / "runc"}"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{CNI_DIR}"
    conf_dir = "{node / "cni"}"
"""


def _cni_config() -> dict[str, Any]:
    return {
        "cniVersion": "0.4.0",
        "name": "ramp",
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": POD_CIDR, "gateway": NODE_IP}]],
                    "dataDir": "",  # set in write_config
                },
            },
            {"type": "loopback"},
        ],
    }


def _kubelet_config(node: Path, ca_file: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "containerRuntimeEndpoint": f"unix://{node / 'containerd' / 'containerd.sock'}",
        "podLogsDir": str(node / "pod-logs"),
        # what the machine allows (docs/real-node.md): cgroup v1, no CAP_SYS_RESOURCE
        "failCgroupV1": False,
        "cgroupDriver": "cgroupfs",
        "cgroupsPerQOS": False,
        "enforceNodeAllocatable": [],
        "failSwapOn": False,
        "oomScoreAdj": 0,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": False},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "AlwaysAllow"},
        "registerWithTaints": [{"key": NODE_LABEL, "value": "true", "effect": "NoSchedule"}],
        "resolvConf": "",
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "1Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "nodeStatusUpdateFrequency": "4s",
        "nodeStatusReportFrequency": "10s",
        "syncFrequency": "10s",
        "kubeAPIQPS": 50,
        "kubeAPIBurst": 100,
        "shutdownGracePeriod": "0s",
        "maxPods": 50,
    }


def write_config(node: Path, ca_file: Path) -> None:
    for sub in ("containerd", "cni", "runc", "kubelet", "pod-logs", "ipam"):
        (node / sub).mkdir(parents=True, exist_ok=True)
    (node / "containerd" / "config.toml").write_text(_containerd_config(node))
    cni = _cni_config()
    cni["plugins"][0]["ipam"]["dataDir"] = str(node / "ipam")
    (node / "cni" / "10-ramp.conflist").write_text(json.dumps(cni, indent=2))
    (node / "kubelet.yaml").write_text(json.dumps(_kubelet_config(node, ca_file), indent=2))


def containerd_args(node: Path) -> list[str]:
    return ["--config", str(node / "containerd" / "config.toml")]


def kubelet_args(node: Path, kubeconfig: Path, verbosity: int) -> list[str]:
    return [
        f"--config={node / 'kubelet.yaml'}",
        f"--kubeconfig={kubeconfig}",
        f"--root-dir={node / 'kubelet'}",
        f"--cert-dir={node / 'kubelet' / 'pki'}",
        f"--hostname-override={NODE_NAME}",
        f"--node-ip={NODE_IP}",
        f"--node-labels={NODE_LABEL}=true,type=real",
        f"--v={max(verbosity, 1)}",
    ]


def prepare_network(netns_pid: int) -> None:
    """The CNI bridge with the node's address, made before the kubelet starts (it needs
    its node IP on an interface; the bridge plugin reuses the existing bridge)."""
    ns = ["nsenter", f"--net={netns_path(netns_pid)}", "ip"]
    for cmd in (
        ["link", "add", BRIDGE, "type", "bridge"],
        ["addr", "add", f"{NODE_IP}/24", "dev", BRIDGE],
        ["link", "set", BRIDGE, "up"],
    ):
        proc = subprocess.run([*ns, *cmd], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise NodeError(f"ip {' '.join(cmd)} in the node's namespace: {proc.stderr.strip()}")


def ctr(node: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    sock = node / "containerd" / "containerd.sock"
    return subprocess.run(
        [CTR, "--address", str(sock), "--namespace", "k8s.io", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def import_images(node: Path) -> None:
    """Import the locally built images (no registry): pods use ``imagePullPolicy: Never``."""
    for archive, ref in IMAGES.items():
        proc = ctr(node, "images", "import", "--snapshotter", "native", str(NODE_BIN / archive))
        if proc.returncode != 0:
            raise NodeError(f"ctr images import {archive} failed: {proc.stderr.strip()}")
        listed = ctr(node, "images", "ls", "-q").stdout.split()
        if ref not in listed:
            raise NodeError(f"{archive} did not give the image {ref} (containerd has {listed})")


def containerd_up(node: Path) -> bool:
    return ctr(node, "version", timeout=5).returncode == 0


# -- clean-up -----------------------------------------------------------------------------


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


def _all_pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _children(pids: set[int]) -> set[int]:
    """`pids` and all their descendants (by parent pid in /proc)."""
    parent: dict[int, int] = {}
    for pid in _all_pids():
        with contextlib.suppress(OSError, IndexError, ValueError):
            stat = Path(f"/proc/{pid}/stat").read_text()
            parent[pid] = int(stat.rsplit(")", 1)[1].split()[1])
    found = set(pids)
    grew = True
    while grew:
        more = {p for p, pp in parent.items() if pp in found and p not in found}
        found |= more
        grew = bool(more)
    return found


def shims(node: Path) -> set[int]:
    """The containerd shims of this node: their command line names the node's socket."""
    sock = str(node / "containerd" / "containerd.sock")
    return {
        pid
        for pid in _all_pids()
        if (cmd := _cmdline(pid)) and "containerd-shim" in cmd[0] and sock in cmd
    }


def mounts_under(root: Path) -> list[str]:
    """Mount points at or under `root` (deepest first), from /proc/self/mountinfo."""
    prefix = str(root).rstrip("/") + "/"
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(root) or point.startswith(prefix):
            found.append(point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def processes_in_netns(inode: int) -> list[int]:
    """Processes whose network namespace is `inode`."""
    out = []
    for pid in _all_pids():
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}/ns/net").st_ino == inode:
                out.append(pid)
    return out


def _kill_all(pids: Iterable[int], timeout: float = 5.0) -> None:
    pids = set(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
        if not left:
            return
        time.sleep(0.05)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except OSError:
        return True


def cleanup(node: Path) -> list[str]:
    """After the kubelet and containerd have stopped: kill the shims and the containers
    they run, unmount what the kubelet and containerd mounted under `node`, remove the
    folder. Returns what could not be cleaned (empty normally)."""
    problems: list[str] = []
    left = shims(node)
    if left:
        _kill_all(_children(left) - left)  # the containers first, then their shims
        _kill_all(left)
    for point in mounts_under(node):
        proc = subprocess.run(["umount", point], capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            lazy = subprocess.run(["umount", "-l", point], capture_output=True, text=True)
            if lazy.returncode != 0:
                problems.append(f"umount {point}: {proc.stderr.strip()}")
    _remove_cgroups(node)
    if not mounts_under(node):
        shutil.rmtree(node, ignore_errors=True)
    if shims(node):
        problems.append(f"containerd shims still running: {sorted(shims(node))}")
    return problems


def container_ids(node: Path) -> set[str]:
    """Ids of the node's containers and sandboxes (runc's state folder, which outlives a
    killed container)."""
    return {d.name for d in (node / "runc" / "k8s.io").glob("*")}


def cgroups_of(ids: Iterable[str]) -> list[Path]:
    """The cgroup folders runc made for these containers (any hierarchy, 3 levels deep)."""
    found = []
    for hierarchy in Path("/sys/fs/cgroup").iterdir():
        for cid in ids:
            for pattern in (cid, f"*/{cid}", f"*/*/{cid}"):
                found.extend(hierarchy.glob(pattern))
    return found


def _remove_cgroups(node: Path) -> None:
    """runc's cgroups of the node's containers; empty folders only."""
    groups = cgroups_of(container_ids(node))
    for cg in sorted(groups, key=lambda p: -len(p.parts)):
        with contextlib.suppress(OSError):
            cg.rmdir()
    for parent in {cg.parent for cg in groups if cg.parent.name == "k8s.io"}:
        with contextlib.suppress(OSError):  # containerd's parent, if no other node uses it
            parent.rmdir()


def sweep_orphans() -> list[Path]:
    """Clean the nodes of killed sessions: shims of a real node whose containerd no longer
    runs (a test process killed before its clean-up). Returns the node folders cleaned."""
    configs = set()
    for pid in _all_pids():
        cmd = _cmdline(pid)
        if cmd and cmd[0].endswith("containerd") and "--config" in cmd[:-1]:
            configs.add(cmd[cmd.index("--config") + 1])
    cleaned = []
    for pid in _all_pids():
        cmd = _cmdline(pid)
        if not (cmd and "containerd-shim" in cmd[0] and "-address" in cmd[:-1]):
            continue
        sock = Path(cmd[cmd.index("-address") + 1])
        node = sock.parent.parent
        mine = str(sock).endswith("/node/containerd/containerd.sock")  # our layout
        if mine and str(node / "containerd" / "config.toml") not in configs:
            cleanup(node)
            cleaned.append(node)
    return cleaned


def leftovers(state: dict[str, Any]) -> list[str]:
    """What a stopped real-node cluster left behind (empty when nothing): processes of the
    node (its shims, anything in its network namespace), mounts under its folder, its
    folder, and the namespace itself with its network devices (alive while any process
    or mount holds it)."""
    node = Path(state["node_dir"])
    out = [f"containerd shim pid {p}" for p in sorted(shims(node))]
    inode = int(state["netns_inode"])
    out += [f"pid {p} ({' '.join(_cmdline(p)[:2])}) in the node's network namespace"
            for p in processes_in_netns(inode)]  # fmt: skip
    out += [f"mount {m}" for m in mounts_under(node)]
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        if f"net:[{inode}]" in line:
            out.append(f"a mount of the node's network namespace: {line.split()[4]}")
    if node.exists():
        out.append(f"folder {node}")
    return out


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "netns":
        ready = Path(argv[1])
        _netns_main([int(p) for p in argv[2:]], ready)
        return 0
    print("usage: realnode.py netns READY_FILE PORT...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
