"""``kubectl ramp``: each verb run as the installed command, its effect read on the Rollout.

The CLI runs as a subprocess (the ``kubectl-ramp`` console script of this environment)
with ``--kubeconfig`` and ``-n``, against the shared operator, like a user at a terminal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from ramp_e2e import Rollouts, condition, rollout_manifest

from cluster.fixtures import ClusterHandle

PLUGIN = Path(sys.executable).with_name("kubectl-ramp")
HOLD = [
    {"setWeight": 20},
    {"pause": {}},
    {"setWeight": 50},
    {"pause": {}},
    {"setWeight": 100},
]
"""Steps that wait for a promote after each weight: the rollout stays where a verb puts it."""


class Ramp:
    """``kubectl ramp ...`` against the test cluster, in the test's namespace."""

    def __init__(self, cluster: ClusterHandle, namespace: str) -> None:
        self.base = [str(PLUGIN), "--kubeconfig", str(cluster.kubeconfig), "-n", namespace]

    def __call__(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*self.base, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        print(f"$ kubectl ramp {' '.join(args)} -> {proc.returncode}\n{proc.stdout}{proc.stderr}")
        return proc

    def ok(self, *args: str, timeout: float = 60) -> str:
        proc = self(*args, timeout=timeout)
        assert proc.returncode == 0, f"kubectl ramp {' '.join(args)} failed:\n{proc.stderr}"
        return proc.stdout


@pytest.fixture
def ramp(cluster: ClusterHandle, namespace: str, rollouts: Rollouts) -> Ramp:
    assert PLUGIN.exists(), f"{PLUGIN} is not installed: pip install -e ."
    return Ramp(cluster, namespace)


def image_of(obj: dict[str, Any]) -> str:
    return str(obj["spec"]["template"]["spec"]["containers"][0]["image"])


def at_step(index: int, phase: str = "Paused") -> Any:
    return lambda s: s.get("currentStepIndex") == index and s.get("phase") == phase


def test_set_image_starts_a_rollout_promote_advances_one_step_and_full_completes(
    rollouts: Rollouts, ramp: Ramp
) -> None:
    rollouts.create(rollout_manifest("web", replicas=10, steps=HOLD))
    stable = rollouts.wait_healthy("web", 10)["stableRevision"]

    out = ramp.ok("set", "image", "web", "app=ramp-test/app:v2")
    assert "rolls out" in out
    assert image_of(rollouts.get("web")) == "ramp-test/app:v2"
    status = rollouts.wait("web", "paused at step 2", at_step(1))
    canary = status["canaryRevision"]
    assert canary != stable
    assert rollouts.ready_pods("web") == {canary: 2, stable: 8}

    # promote: the pause (step 2) is skipped; setWeight 50 runs; the next pause holds.
    ramp.ok("promote", "web", "--wait")
    rollouts.wait("web", "paused at step 4", at_step(3))
    assert rollouts.ready_pods("web") == {canary: 5, stable: 5}
    assert rollouts.wait_events("web", "Promoted", 1)

    # promote --full: every remaining step skipped, the canary becomes stable.
    ramp.ok("promote", "--full", "web")
    final = rollouts.wait_healthy("web", 10)
    assert final["stableRevision"] == canary
    assert rollouts.wait_events("web", "PromotedFull", 1)

    # Nothing left to promote: refused with a reason, nothing annotated.
    proc = ramp("promote", "web")
    assert proc.returncode == 1 and "no rollout in progress" in proc.stderr


def test_abort_aborts_status_exits_1_and_retry_restarts(rollouts: Rollouts, ramp: Ramp) -> None:
    rollouts.create(rollout_manifest("api", replicas=4, steps=HOLD))
    stable = rollouts.wait_healthy("api", 4)["stableRevision"]
    ramp.ok("set", "image", "api", "app=ramp-test/app:v2")
    canary = rollouts.wait("api", "paused at step 2", at_step(1))["canaryRevision"]

    ramp.ok("abort", "api")
    status = rollouts.wait_phase("api", "Aborted")
    assert status["abortReason"] == "UserAbort"
    assert condition(status, "Aborted")["status"] == "True"
    rollouts.wait(
        "api",
        "canary at 0",
        lambda s: s.get("canaryReadyReplicas") == 0 and s.get("readyReplicas") == 4,
    )
    assert rollouts.ready_pods("api") == {stable: 4}

    started = time.monotonic()
    proc = ramp("status", "api", "--timeout", "30s")
    assert proc.returncode == 1, proc.stdout
    assert "Aborted" in proc.stdout
    assert time.monotonic() - started < 15

    ramp.ok("retry", "api")
    status = rollouts.wait("api", "restarted and paused at step 2", at_step(1))
    assert status["canaryRevision"] == canary
    assert rollouts.wait_events("api", "Retried", 1)


def test_pause_holds_and_resume_goes_on(rollouts: Rollouts, ramp: Ramp) -> None:
    steps = [{"setWeight": 25}, {"pause": {"duration": "1s"}}, {"setWeight": 100}]
    rollouts.create(rollout_manifest("cart", replicas=4, steps=steps))
    rollouts.wait_healthy("cart", 4)

    ramp.ok("pause", "cart")
    assert rollouts.get("cart")["spec"]["paused"] is True
    ramp.ok("set", "image", "cart", "app=ramp-test/app:v2")
    rollouts.wait("cart", "held by spec.paused", lambda s: s.get("phase") == "Paused")
    time.sleep(2)  # longer than the pause step: a held rollout does not move
    held = rollouts.status("cart")
    assert held["phase"] == "Paused" and held.get("currentStepIndex") == 0
    assert "spec.paused" in held["message"]

    ramp.ok("resume", "cart")
    assert not rollouts.get("cart")["spec"].get("paused")
    final = rollouts.wait_healthy("cart", 4, timeout=60)
    assert final["stableRevision"] == held["canaryRevision"]


def test_undo_mid_rollout_rolls_back_to_stable_without_steps(
    rollouts: Rollouts, ramp: Ramp
) -> None:
    rollouts.create(rollout_manifest("pay", replicas=5, steps=HOLD))
    stable = rollouts.wait_healthy("pay", 5)["stableRevision"]
    ramp.ok("set", "image", "pay", "app=ramp-test/app:v2")
    rollouts.wait("pay", "paused at step 2", at_step(1))

    out = ramp.ok("undo", "pay")
    assert "rollback to the stable revision" in out
    assert image_of(rollouts.get("pay")) == "ramp-test/app:v1"
    final = rollouts.wait_healthy("pay", 5)
    assert final["stableRevision"] == stable  # the same revision: the exact template is back
    assert rollouts.wait_events("pay", "RolledBack", 1)


def test_undo_after_a_completed_rollout_goes_back_to_the_previous_revision(
    rollouts: Rollouts, ramp: Ramp
) -> None:
    rollouts.create(rollout_manifest("shop", replicas=3, steps=[]))
    first = rollouts.wait_healthy("shop", 3)["stableRevision"]
    ramp.ok("set", "image", "shop", "app=ramp-test/app:v2")
    second = rollouts.wait(
        "shop",
        "v2 stable",
        lambda s: s.get("phase") == "Healthy" and s.get("stableRevision") not in (None, first),
    )["stableRevision"]
    rollouts.wait_healthy("shop", 3)
    assert first in rollouts.deployments("shop"), "the previous revision is kept at zero"

    ramp.ok("undo", "shop")
    assert image_of(rollouts.get("shop")) == "ramp-test/app:v1"
    final = rollouts.wait(
        "shop",
        "v1 stable again",
        lambda s: s.get("phase") == "Healthy" and s.get("stableRevision") == first,
    )
    assert final["stableRevision"] == first != second


def test_status_exit_codes_healthy_and_timeout(rollouts: Rollouts, ramp: Ramp) -> None:
    rollouts.create(rollout_manifest("ci", replicas=3, steps=[{"setWeight": 34}, {"pause": {}}]))
    rollouts.wait_healthy("ci", 3)

    proc = ramp("status", "ci", "--timeout", "30s")
    assert proc.returncode == 0, proc.stdout
    assert "Healthy" in proc.stdout

    ramp.ok("set", "image", "ci", "app=ramp-test/app:v2")
    started = time.monotonic()
    proc = ramp("status", "ci", "--timeout", "4s")
    elapsed = time.monotonic() - started
    assert proc.returncode == 2, proc.stdout
    assert "timed out after 4s" in proc.stdout
    assert "Paused" in proc.stdout  # the progress lines say where it waits
    assert 3.5 < elapsed < 20

    # Promoted: status follows the rollout to its end and exits 0.
    ramp.ok("promote", "ci")
    proc = ramp("status", "ci", "--timeout", "60s")
    assert proc.returncode == 0, proc.stdout
    lines = proc.stdout.strip().splitlines()
    assert lines[-1].split(" ", 1)[1].startswith("Healthy")


def test_get_lists_shows_and_watches(
    cluster: ClusterHandle, rollouts: Rollouts, ramp: Ramp
) -> None:
    rollouts.create(rollout_manifest("view", replicas=4, steps=HOLD))
    rollouts.wait_healthy("view", 4)
    ramp.ok("set", "image", "view", "app=ramp-test/app:v2")
    status = rollouts.wait("view", "paused at step 2", at_step(1))

    table = ramp.ok("get")
    row = next(line for line in table.splitlines() if line.startswith("view"))
    assert row.split()[1:5] == ["Paused", "20/25", "2/5", "4/4"], row

    # kubectl finds the plugin on PATH: `kubectl ramp ...` is the same command.
    # (kubectl refuses flags before a plugin's name: the kubeconfig comes from KUBECONFIG.)
    via_kubectl = subprocess.run(
        [cluster.kubectl_bin, "ramp", "get", "-n", rollouts.ns],
        env={**cluster.env, "PATH": f"{PLUGIN.parent}{os.pathsep}{os.environ.get('PATH', '')}"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert via_kubectl.returncode == 0, via_kubectl.stderr
    assert via_kubectl.stdout == table

    data = json.loads(ramp.ok("get", "view", "-o", "json"))
    assert data["status"]["canaryRevision"] == status["canaryRevision"]
    listed = json.loads(ramp.ok("get", "-o", "json"))
    assert [i["metadata"]["name"] for i in listed["items"]] == ["view"]

    view = ramp.ok("get", "view")
    assert "⏸ 2 pause (until promoted)" in view
    assert status["canaryRevision"] in view and "RolloutStarted" in view

    # --watch: the first frame at once, a new frame when the Rollout changes.
    proc = subprocess.Popen(
        [*ramp.base, "get", "view", "--watch", "--timeout", "20s", "--no-color"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2)
        ramp.ok("promote", "--full", "view")
        rollouts.wait_healthy("view", 4)
        time.sleep(1.5)
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    frames = out.split("\n--- ")
    assert len(frames) >= 2, out + err
    assert "Paused" in frames[0] and "Healthy" in frames[-1], out

    proc = ramp("get", "nothing-here")
    assert proc.returncode == 1 and "not found" in proc.stderr
