"""The operator *as its image*, hardened exactly as the chart runs it, against the cluster.

``make image`` builds ./Dockerfile with podman; this runs that image with the chart's
ServiceAccount token (the chart's RBAC, not admin) and the chart's rendered security
context turned into podman flags (tests/image/podman.py: read-only root, only /tmp
writable, uid 65532, no capabilities, no-new-privileges, the runtime's default seccomp).
It must: answer /healthz and /readyz, log JSON, complete a canary, abort a never-ready
one, write nothing outside /tmp (``podman diff`` equals that of a container that ran
nothing), and stop on SIGTERM within the grace period, releasing its Lease.
"""

from __future__ import annotations

import json
import secrets
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ramp_chart import RESTRICTED, helm_install, scratch_namespace, service_account_kubeconfig
from ramp_e2e import Rollouts, Sampling, metrics_reader_token, rollout_manifest, wait_for

from cluster.fixtures import ClusterHandle
from image.podman import (
    IMAGE,
    REPO,
    diff,
    hardening,
    host_rss_bytes,
    image_exists,
    podman,
    proc_status,
    remove,
    run_flags,
)

STEPS: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {"duration": "1s"}}]


@pytest.fixture(scope="module")
def image() -> str:
    """The image of ``make image`` (built here when missing, e.g. by a lone pytest run)."""
    if not image_exists():
        import subprocess

        subprocess.run([str(REPO / "tests/image/build.sh")], check=True, timeout=280)
    assert image_exists(), f"{IMAGE} is missing: run `make image`"
    return IMAGE


@pytest.fixture
def containers() -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    remove(names)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def self_contained_kubeconfig(kubeconfig: Path) -> Path:
    """The kubeconfig with its CA inline (the container sees no host file), readable by
    the container's user (it is bind-mounted read-only; a test token of one hour)."""
    import base64

    config = yaml.safe_load(kubeconfig.read_text())
    for entry in config["clusters"]:
        ca = entry["cluster"].pop("certificate-authority", None)
        if ca:
            data = base64.b64encode(Path(ca).read_bytes()).decode()
            entry["cluster"]["certificate-authority-data"] = data
    kubeconfig.write_text(yaml.safe_dump(config))
    kubeconfig.chmod(0o644)
    return kubeconfig


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0


def lease_holder(cluster: ClusterHandle, namespace: str, name: str) -> str | None:
    lease = cluster.get_json("lease", name, namespace=namespace)
    holder: str | None = (lease.get("spec") or {}).get("holderIdentity") or None
    return holder


class RssSampler(Sampling[int]):
    """The container's PID 1 resident memory, sampled on the host every half second."""

    interval = 0.5

    def __init__(self, container: str) -> None:
        super().__init__()
        self.container = container

    def sample(self) -> int:
        return host_rss_bytes(self.container)

    def peak(self) -> int:
        return max(self.samples, default=0)


def restricted(manifest: dict[str, Any]) -> dict[str, Any]:
    """Pods the namespace's restricted Pod Security profile admits."""
    pod = manifest["spec"]["template"]["spec"]
    pod["securityContext"] = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
    for c in pod["containers"]:
        c["securityContext"] = {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
    return manifest


def test_the_image_runs_hardened_as_the_chart_identity(
    cluster: ClusterHandle, crds: None, image: str, tmp_path: Path, containers: list[str]
) -> None:
    with scratch_namespace(cluster, "img", RESTRICTED) as ns:
        objects = helm_install(
            cluster, "ramp", ns, "--set", "scope=namespace,leaderElection.enabled=true"
        )
        deployment = objects["Deployment/ramp"]
        pod_name = f"ramp-image-{secrets.token_hex(3)}"
        hard = hardening(
            deployment, field_refs={"metadata.name": pod_name, "metadata.namespace": ns}
        )
        # The chart's arguments, serving on a free loopback port (host network, shared
        # machine); everything else as rendered.
        port, probes = free_port(), free_port()
        args = [a for a in hard.args if not a.startswith(("--metrics-", "--health-"))]
        args += [f"--metrics-port={port}", "--metrics-bind-address=127.0.0.1"]
        args += [f"--health-port={probes}", "--health-bind-address=127.0.0.1"]
        assert f"--namespace={ns}" in args and "--leader-elect" in args, args
        lease = next(a.split("=", 1)[1] for a in args if a.startswith("--leader-elect-lease-name="))
        kubeconfig = self_contained_kubeconfig(
            service_account_kubeconfig(cluster, ns, "ramp", tmp_path / "kubeconfig")
        )

        mount = ["--volume", f"{kubeconfig}:/etc/ramp/kubeconfig:ro"]
        # A container that runs nothing, with the same flags and mount: what podman itself
        # changes (mount points).
        baseline = f"ramp-baseline-{secrets.token_hex(3)}"
        containers.append(baseline)
        podman("run", "--name", baseline, *run_flags(hard), *mount, "--entrypoint", "true", image)
        expected_diff = diff(baseline)

        name = f"ramp-e2e-{secrets.token_hex(3)}"
        containers.append(name)
        started = time.monotonic()
        podman(
            "run",
            "--detach",
            "--name",
            name,
            *run_flags(hard),
            *mount,
            image,
            "--kubeconfig=/etc/ramp/kubeconfig",
            *args,
        )
        base = f"http://127.0.0.1:{probes}"

        def logs() -> str:
            proc = podman("logs", name, check=False)  # the operator logs to stderr
            return proc.stdout + proc.stderr

        def ready() -> bool:
            running = podman("inspect", "--format", "{{.State.Running}}", name).stdout.strip()
            assert running == "true", f"the container exited:\n{logs()[-3000:]}"
            return http_status(f"{base}/readyz") == 200

        wait_for(
            "/readyz 200",
            ready,
            timeout=60,
            interval=0.1,
            describe=lambda: logs()[-3000:],
        )
        ready_after = time.monotonic() - started
        rss = RssSampler(name).start()
        assert http_status(f"{base}/healthz") == 200

        def leading() -> bool:
            scrape = urllib.request.Request(
                f"http://127.0.0.1:{port}/metrics",
                headers={"Authorization": f"Bearer {metrics_reader_token()}"},
            )
            with urllib.request.urlopen(scrape, timeout=5) as resp:
                return "ramp_leader 1.0" in resp.read().decode()

        # /readyz answers once the watches run; the Lease is won by its own thread, maybe
        # a moment later on a loaded machine (issue 19: a CI flake read it at once).
        wait_for(
            "ramp_leader 1 (the Lease won)", leading, timeout=30, describe=lambda: logs()[-3000:]
        )

        # The process is what the chart promises: uid/gid 65532, no capabilities at all,
        # no privilege gain, a seccomp filter.
        status = proc_status(name)
        assert status["Uid"].split() == [str(hard.user)] * 4, status["Uid"]
        assert status["Gid"].split() == [str(hard.group)] * 4, status["Gid"]
        for caps in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
            assert int(status[caps], 16) == 0, (caps, status[caps])
        assert status["NoNewPrivs"] == "1" and status["Seccomp"] == "2", status

        # A canary that completes, then a never-ready canary that aborts at its deadline.
        rollouts = Rollouts(cluster.client, ns)
        rollouts.create(restricted(rollout_manifest("web", replicas=4, steps=STEPS, deadline=5)))
        first = rollouts.wait_healthy("web", 4, timeout=60)["stableRevision"]
        rollouts.set_image("web", "ramp-test/app:v2")
        rollouts.wait("web", "a canary", lambda s: bool(s.get("canaryRevision")), timeout=30)
        done = rollouts.wait_healthy("web", 4, timeout=60)
        assert done["stableRevision"] != first
        reasons = [e[1] for e in rollouts.events("web")]
        assert rollouts.step_history("web") == list(range(len(STEPS)))
        assert "RolloutCompleted" in reasons
        rollouts.set_template_labels("web", {"ramp.dev/test-fault": "never-ready"})
        aborted = rollouts.wait(
            "web",
            "aborted, canary at 0",
            lambda s: s.get("phase") == "Aborted" and not s.get("canaryReplicas"),
            timeout=60,
        )
        assert aborted["abortReason"] == "ProgressDeadlineExceeded", aborted
        assert aborted["stableRevision"] == done["stableRevision"]
        assert lease_holder(cluster, ns, lease) == pod_name
        rss.stop()
        peak_rss = rss.peak()

        # What the container wrote: only under /tmp (listed for docs/install.md).
        tmp = podman("exec", name, "find", "/tmp", "-mindepth", "1").stdout.split()

        # SIGTERM (podman stop), within the chart's grace period; the Lease is released.
        stopping = time.monotonic()
        podman("stop", "--time", str(hard.grace_seconds), name, timeout=hard.grace_seconds + 30)
        stopped_in = time.monotonic() - stopping
        state = json.loads(podman("inspect", name).stdout)[0]["State"]
        assert stopped_in < hard.grace_seconds, f"stopped only after {stopped_in:.1f}s"
        assert state["ExitCode"] == 0, state
        assert lease_holder(cluster, ns, lease) is None, "the Lease was not released"

        log = logs()
        lines = [line for line in log.splitlines() if line.strip()]
        assert lines, "no log"
        for line in lines:
            record = json.loads(line)  # every line is one JSON object
            assert {"time", "level", "logger", "message"} <= record.keys(), line
        for word in ("Forbidden", "Read-only file system", "Permission denied", "Traceback"):
            assert word not in log, f"{word!r} in the container's log:\n{log[-3000:]}"
        assert "released the Lease" in log

        assert diff(name) == expected_diff, "the container wrote outside /tmp"
        print(
            f"\nimage {image}: /readyz 200 after {ready_after:.1f}s; peak RSS "
            f"{peak_rss / 2**20:.0f} MiB; stopped in {stopped_in:.1f}s (grace "
            f"{hard.grace_seconds}s); /tmp held {tmp}; podman diff {expected_diff}"
        )
