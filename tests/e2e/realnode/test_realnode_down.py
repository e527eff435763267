"""`make cluster-down` leaves nothing of the real node: no process, no mount, no network
device (docs/real-node.md). Uses the launcher's command line, as the Makefile does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from realnode_e2e import FIGURES, container

from cluster import realnode
from cluster.launcher import KUBECTL

pytestmark = pytest.mark.realnode
LAUNCHER = Path(realnode.__file__).with_name("launcher.py")


def host_links() -> set[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def launcher(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(LAUNCHER), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "demo", "labels": {"app": "demo"}},
        "spec": {
            "containers": [container({"VERSION": "v1"})],
            "nodeSelector": {realnode.NODE_LABEL: "true"},
            "tolerations": [{"key": realnode.NODE_LABEL, "operator": "Exists"}],
            "automountServiceAccountToken": True,  # a projected volume: a tmpfs mount
        },
    }


def test_cluster_down_leaves_no_process_mount_or_network_device(tmp_path: Path) -> None:
    links = host_links()
    folder = tmp_path / "cluster"
    up = launcher("up", "--dir", str(folder), "--real-node")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        state = json.loads((folder / "cluster.json").read_text())
        node = Path(state["node_dir"])
        kubectl = [str(KUBECTL), "--kubeconfig", str(folder / "kubeconfig")]
        subprocess.run(
            [*kubectl, "apply", "-f", "-"], input=yaml.safe_dump(pod()), text=True, check=True
        )
        subprocess.run(
            [*kubectl, "wait", "--for=condition=Ready", "pod/demo", "--timeout=90s"],
            capture_output=True,
            check=True,
        )
        # while it runs: shims, containers, mounts and the namespace are there
        running_shims = realnode.shims(node)
        in_netns = realnode.processes_in_netns(int(state["netns_inode"]))
        mounts = realnode.mounts_under(node)
        ids = realnode.container_ids(node)
        containers = realnode._children(running_shims) - running_shims  # pause + demo app
        assert running_shims and mounts and len(in_netns) > 6, (running_shims, mounts, in_netns)
        assert host_links() == links, "the node's network devices are not in its namespace"
    finally:
        down = launcher("down", "--dir", str(folder))
    assert down.returncode == 0, down.stdout + down.stderr
    assert realnode.leftovers(state) == []
    assert ids and realnode.cgroups_of(ids) == []
    assert len(containers) >= 2, containers
    for pid in [*in_netns, *containers]:
        assert not Path(f"/proc/{pid}").exists() or realnode._zombie(pid), pid
    assert host_links() == links
    assert not (folder / "cluster.json").exists()
    FIGURES.append(
        f"cluster-down: {len(in_netns)} processes in the namespace, {len(running_shims)} "
        f"shims, {len(mounts)} mounts before; none after"
    )
