"""Running the operator image with podman the way the chart runs it in a pod.

:func:`hardening` turns the chart's rendered Deployment into ``podman run`` flags, so the
container test runs with exactly the chart's security context (one source of truth): a
field it does not know makes it fail rather than silently run with less hardening.
:data:`PODMAN` is podman as it works on the project's machines (see podman.sh, the same
rules for the shell scripts).
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
IMAGE = os.environ.get("RAMP_IMAGE", "ramp/ramp-operator:dev")
"""The image ``make image`` builds (tests/image/build.sh)."""


def _limit(kind: int, cap: int) -> int:
    hard = resource.getrlimit(kind)[1]
    return cap if hard == resource.RLIM_INFINITY or hard > cap else hard


# runc (crun refuses this host's hybrid cgroups); rlimits podman can set without
# CAP_SYS_RESOURCE (its defaults are above this host's hard limits).
PODMAN = ["podman", "--runtime", os.environ.get("RAMP_OCI_RUNTIME", "runc")]
LIMITS = [
    "--ulimit",
    f"nofile={_limit(resource.RLIMIT_NOFILE, 65536)}:{_limit(resource.RLIMIT_NOFILE, 65536)}",
    "--ulimit",
    f"nproc={_limit(resource.RLIMIT_NPROC, 32768)}:{_limit(resource.RLIMIT_NPROC, 32768)}",
]


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*PODMAN, *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


POD_KEYS = {"runAsNonRoot", "runAsUser", "runAsGroup", "fsGroup", "seccompProfile"}
CONTAINER_KEYS = {
    "allowPrivilegeEscalation",
    "readOnlyRootFilesystem",
    "runAsNonRoot",
    "runAsUser",
    "runAsGroup",
    "capabilities",
    "seccompProfile",
}


def _quantity_bytes(q: str) -> int:
    units = {"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 10**3, "M": 10**6}
    found = re.fullmatch(r"(\d+)([A-Za-z]*)", str(q))
    assert found and found.group(2) in units, f"unsupported quantity {q!r}"
    return int(found.group(1)) * units[found.group(2)]


@dataclass
class Hardening:
    """What the chart's pod spec asks of the runtime, as podman flags."""

    flags: list[str]
    user: int
    group: int
    grace_seconds: int
    env: dict[str, str] = field(default_factory=dict)
    args: list[str] = field(default_factory=list)


def hardening(
    deployment: Mapping[str, Any], container: str = "operator", field_refs: Mapping[str, str] = {}
) -> Hardening:
    """``podman run`` flags for the chart's container: security context, writable mounts,
    environment (``fieldRef`` values from ``field_refs``, e.g. ``metadata.name``), args.

    seccompProfile RuntimeDefault is podman's default profile (no flag); a pod whose
    security context this function does not understand is refused."""
    pod = deployment["spec"]["template"]["spec"]
    (c,) = [x for x in pod["containers"] if x["name"] == container]
    psc, csc = pod.get("securityContext") or {}, c.get("securityContext") or {}
    assert set(psc) <= POD_KEYS, f"unmapped pod securityContext fields: {set(psc) - POD_KEYS}"
    assert set(csc) <= CONTAINER_KEYS, f"unmapped fields: {set(csc) - CONTAINER_KEYS}"
    for sc in (psc, csc):
        if "seccompProfile" in sc:
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, sc["seccompProfile"]
    user = csc.get("runAsUser", psc.get("runAsUser"))
    group = csc.get("runAsGroup", psc.get("runAsGroup", user))
    assert isinstance(user, int) and isinstance(group, int), "a numeric user is required"
    if csc.get("runAsNonRoot", psc.get("runAsNonRoot")):
        assert user != 0
    flags = ["--user", f"{user}:{group}"]
    if psc.get("fsGroup") is not None:
        flags += ["--group-add", str(psc["fsGroup"])]
    caps = csc.get("capabilities") or {}
    assert set(caps) <= {"drop", "add"}, caps
    flags += [x for cap in caps.get("drop", []) for x in ("--cap-drop", cap)]
    flags += [x for cap in caps.get("add", []) for x in ("--cap-add", cap)]
    if csc.get("allowPrivilegeEscalation") is False:
        flags += ["--security-opt", "no-new-privileges"]
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    if csc.get("readOnlyRootFilesystem"):
        # No tmpfs of podman's own on /run, /tmp, /var/tmp: only the chart's volumes.
        flags += ["--read-only", "--read-only-tmpfs=false"]
    for mount in c.get("volumeMounts") or []:
        volume = volumes[mount["name"]]
        assert set(volume) == {"name", "emptyDir"}, f"only emptyDir volumes are mapped: {volume}"
        size = (volume["emptyDir"] or {}).get("sizeLimit")
        opts = ["rw", "mode=1777", "nosuid", "nodev"]
        if size:
            opts.append(f"size={_quantity_bytes(size)}")
        flags += ["--tmpfs", f"{mount['mountPath']}:{','.join(opts)}"]
    env: dict[str, str] = {}
    for var in c.get("env") or []:
        if "value" in var:
            env[var["name"]] = str(var["value"])
        else:
            ref = var["valueFrom"]["fieldRef"]["fieldPath"]
            env[var["name"]] = field_refs[ref]
    return Hardening(
        flags=flags,
        user=user,
        group=group,
        grace_seconds=int(pod.get("terminationGracePeriodSeconds", 30)),
        env=env,
        args=list(c.get("args") or []),
    )


def run_flags(h: Hardening, extra_env: Mapping[str, str] = {}) -> list[str]:
    """Flags for ``podman run -d``: host network (the cluster and the test are on
    loopback), the hardening, the environment."""
    env = {**h.env, **extra_env}
    return [
        "--network",
        "host",
        *LIMITS,
        *h.flags,
        *[x for k, v in sorted(env.items()) for x in ("--env", f"{k}={v}")],
    ]


def proc_status(container: str, pid: int = 1) -> dict[str, str]:
    """``/proc/PID/status`` inside the container, as a dict."""
    text = podman("exec", container, "cat", f"/proc/{pid}/status").stdout
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def host_rss_bytes(container: str) -> int:
    """Resident memory of the container's PID 1, read on the host."""
    pid = podman("inspect", "--format", "{{.State.Pid}}", container).stdout.strip()
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def image_exists(image: str = IMAGE) -> bool:
    return podman("image", "exists", image, check=False).returncode == 0


def diff(container: str) -> list[str]:
    """``podman diff``: ``C /path`` / ``A /path`` / ``D /path`` lines, sorted."""
    return sorted(podman("diff", container).stdout.split("\n")[:-1])


def remove(names: Sequence[str]) -> None:
    for name in names:
        podman("rm", "--force", "--time", "0", name, check=False)
