"""Two operator replicas with leader election (the chart's HA mode) on the real cluster.

Both processes run with the chart's ServiceAccount token and the chart's own arguments, so
the Lease permissions are the chart's too. The story: only the Lease holder writes; kill it
mid-rollout and the standby finishes the rollout within the lease duration plus one step,
with no step done twice; a holder frozen past its lease wakes up and writes nothing; a
holder stopped gracefully hands the Lease over at once.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from ramp_chart import (
    container_args,
    helm_install,
    local_args,
    scratch_namespace,
    service_account_kubeconfig,
)
from ramp_e2e import OperatorProcess, Rollouts, rollout_manifest, wait_for

from cluster.fixtures import ClusterHandle


class StepRecorder:
    """Every value of ``status.currentStepIndex`` the API server stored, with its time."""

    def __init__(self, rollouts: Rollouts, name: str) -> None:
        self.rollouts, self.name = rollouts, name
        self.transitions: list[tuple[float, int | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        from kubernetes import watch

        w = watch.Watch()
        for event in w.stream(
            self.rollouts.custom.list_namespaced_custom_object,
            "ramp.dev",
            "v1alpha1",
            self.rollouts.ns,
            "rollouts",
            field_selector=f"metadata.name={self.name}",
            timeout_seconds=180,
        ):
            step = (event["object"].get("status") or {}).get("currentStepIndex")
            if not self.transitions or self.transitions[-1][1] != step:
                self.transitions.append((time.monotonic(), step))
            if self._stop.is_set():
                w.stop()

    def __enter__(self) -> StepRecorder:
        self._thread.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.rollouts.patch(self.name, {"metadata": {"labels": {"recorded": "yes"}}})
        self._thread.join(10)

    def steps(self) -> list[int]:
        return [s for _, s in self.transitions if s is not None]


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from a /metrics page (0 when absent)."""
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    pattern = rf"^{re.escape(name)}(?:\{{{re.escape(want)}\}})? ([0-9.e+-]+)$"
    for line in text.splitlines():
        found = re.match(pattern, line)
        if found and (labels or "{" not in line):
            return float(found.group(1))
    return 0.0


def holder(cluster: ClusterHandle, namespace: str) -> str | None:
    """The Lease's holder (None before it exists or after a release)."""
    proc = cluster.kubectl("get", "lease", "ramp", "-o", "json", namespace=namespace, check=False)
    if proc.returncode != 0:
        return None
    spec: dict[str, Any] = json.loads(proc.stdout).get("spec") or {}
    return spec.get("holderIdentity")


def assert_json_logs(*operators: OperatorProcess) -> None:
    for op in operators:
        for line in op.current_log().splitlines():
            if line.startswith("--- start"):
                continue
            record = json.loads(line)  # every line the operator writes is one JSON object
            assert {"time", "level", "logger", "message"} <= record.keys(), line


@dataclass
class HA:
    """The chart installed in HA mode, and a way to run its replicas here."""

    namespace: str
    rollouts: Rollouts
    start: Callable[[str], OperatorProcess]
    """``start(name)``: an operator replica as the chart's ServiceAccount, POD_NAME=name."""


@pytest.fixture
def ha(cluster: ClusterHandle, crds: None, tmp_path: Path, request: Any) -> Iterator[HA]:
    """The chart installed with two replicas (leader election on) in a scratch namespace."""
    timings: list[str] = getattr(request, "param", [])
    with scratch_namespace(cluster, "ha") as ns:
        objects = helm_install(
            cluster, "ramp", ns, "--set", "scope=namespace,replicaCount=2", *timings
        )
        args = local_args(container_args(objects, "ramp"))
        assert "--leader-elect" in args
        kubeconfig = service_account_kubeconfig(cluster, ns, "ramp", tmp_path / "kc")
        procs: list[OperatorProcess] = []

        def start(name: str) -> OperatorProcess:
            p = OperatorProcess(kubeconfig, tmp_path / f"{name}.log", args, env={"POD_NAME": name})
            procs.append(p)
            p.start()
            return p

        try:
            yield HA(ns, Rollouts(cluster.client, ns), start)
        finally:
            for p in procs:
                if p.alive and p.proc is not None:
                    os.killpg(p.proc.pid, signal.SIGCONT)  # a frozen one must be able to stop
                p.stop()


LEASE = 15.0
RETRY = 2.0


def test_only_the_holder_writes_and_the_standby_finishes_when_it_is_killed(
    cluster: ClusterHandle, ha: HA
) -> None:
    a = ha.start("ramp-a")
    wait_for("ramp-a to hold the Lease", lambda: holder(cluster, ha.namespace) == "ramp-a")
    b = ha.start("ramp-b")
    b.metrics_url()
    steps: list[dict[str, Any]] = [
        {"setWeight": 20},
        {"pause": {"duration": "1s"}},
        {"setWeight": 40},
        {"pause": {"duration": "1s"}},
        {"setWeight": 60},
        {"pause": {"duration": "1s"}},
        {"setWeight": 80},
        {"pause": {"duration": "3s"}},
    ]
    r = ha.rollouts
    r.create(rollout_manifest("web", replicas=5, steps=steps))
    first = r.wait_healthy("web", 5)["stableRevision"]
    with StepRecorder(r, "web") as recorder:
        r.set_image("web", "ramp-test/app:v2")
        r.wait("web", "at the last step", lambda s: s.get("currentStepIndex") == len(steps) - 1)

        # Only the holder has written anything; the standby has not sent one write.
        a_metrics, b_metrics = a.scrape(), b.scrape()
        assert metric(a_metrics, "ramp_api_requests_total", kind="write") > 0
        assert metric(a_metrics, "ramp_leader") == 1
        assert metric(b_metrics, "ramp_api_requests_total", kind="write") == 0, b_metrics
        assert metric(b_metrics, "ramp_leader") == 0
        assert "ramp_rollout_phase{" not in b_metrics, "a standby reports no Rollouts"
        times = [t for t, _ in recorder.transitions]
        longest_step = max(b - a for a, b in itertools.pairwise(times[1:]))

        a.kill()  # SIGKILL: no release, the Lease must expire
        killed = time.monotonic()
        wait_for(
            "ramp-b to take the Lease",
            lambda: holder(cluster, ha.namespace) == "ramp-b",
            timeout=LEASE + RETRY + 5,
            interval=0.1,
        )
        took_over = time.monotonic() - killed
        final = r.wait_healthy("web", 5, timeout=LEASE + 30)
        finished = time.monotonic() - killed
    print(
        f"\nfailover: Lease taken {took_over:.1f}s after SIGKILL (lease {LEASE:.0f}s, retry "
        f"{RETRY:.0f}s); rollout finished {finished:.1f}s after it (longest step before: "
        f"{longest_step:.1f}s)"
    )
    # The standby measures the expiry from when it first saw the last renewal (its own
    # clock), and it reads the Lease every RETRY: it saw that renewal up to RETRY late and
    # finds it expired up to RETRY late, so LEASE + 2 * RETRY at worst (+1 s of load;
    # 18.1 s was seen against a bound of LEASE + RETRY + 1).
    assert took_over <= LEASE + 2 * RETRY + 1.0
    assert finished <= LEASE + 2 * RETRY + longest_step + 3.0, (finished, longest_step)
    assert final["stableRevision"] != first
    seen = recorder.steps()
    assert seen == list(range(seen[0], seen[0] + len(seen))), f"a step repeated or skipped: {seen}"
    assert seen[0] == 0 and seen[-1] >= len(steps) - 1, seen
    # The Events of a plan are posted after its status (the last of its writes): poll.
    wait_for(
        "the RolloutCompleted Event",
        lambda: "RolloutCompleted" in [e[1] for e in r.events("web")],
        timeout=30,
    )
    reasons = [e[1] for e in r.events("web")]
    assert r.step_history("web") == list(range(len(steps))), final
    assert reasons.count("RolloutCompleted") == 1, reasons
    assert metric(b.scrape(), "ramp_leader") == 1
    lease = cluster.get_json("lease", "ramp", namespace=ha.namespace)
    assert lease["spec"]["leaseTransitions"] == 1
    assert_json_logs(a, b)


SHORT = ["--set", "leaderElection.leaseDuration=6,leaderElection.renewDeadline=4"]
SHORT += ["--set", "leaderElection.renewPeriod=2,leaderElection.retryPeriod=1"]


@pytest.mark.parametrize("ha", [SHORT], indirect=True, ids=["lease-6s"])
def test_a_frozen_holder_writes_nothing_when_it_wakes_and_a_stopped_one_hands_over(
    cluster: ClusterHandle, ha: HA
) -> None:
    a = ha.start("ramp-a")
    wait_for("ramp-a to hold the Lease", lambda: holder(cluster, ha.namespace) == "ramp-a")
    b = ha.start("ramp-b")
    b.metrics_url()
    steps: list[dict[str, Any]] = [
        {"setWeight": 20},
        {"pause": {}},
        {"setWeight": 40},
        {"pause": {"duration": "2s"}},
        {"setWeight": 60},
        {"pause": {"duration": "2s"}},
        {"setWeight": 80},
        {"pause": {"duration": "2s"}},
    ]
    r = ha.rollouts
    r.create(rollout_manifest("api", replicas=5, steps=steps))
    r.wait_healthy("api", 5)
    with StepRecorder(r, "api") as recorder:
        r.set_image("api", "ramp-test/app:v2")
        r.wait("api", "paused at step 2", lambda s: s.get("phase") == "Paused")
        time.sleep(1)  # the holder is idle: nothing left to write while paused
        writes_before = metric(a.scrape(), "ramp_api_requests_total", kind="write")
        assert writes_before > 0

        assert a.proc is not None
        os.killpg(a.proc.pid, signal.SIGSTOP)  # frozen: no renewal, no writes
        wait_for(
            "ramp-b to take the Lease from the frozen holder",
            lambda: holder(cluster, ha.namespace) == "ramp-b",
            timeout=15,
            interval=0.1,
        )
        r.request("api", "promote")
        r.wait("api", "step 4 under ramp-b", lambda s: (s.get("currentStepIndex") or 0) >= 4)
        # Wake the old holder while the rollout moves: its watches deliver a backlog of
        # events and its timers fire, but its renewal is long past its deadline.
        os.killpg(a.proc.pid, signal.SIGCONT)
        r.wait_healthy("api", 5, timeout=60)
    wait_for("ramp-a to notice", lambda: "lost the Lease" in a.current_log(), timeout=10)
    a_metrics = a.scrape()
    assert metric(a_metrics, "ramp_api_requests_total", kind="write") == writes_before, (
        "the old holder wrote after waking up"
    )
    assert metric(a_metrics, "ramp_leader") == 0
    seen = recorder.steps()
    assert seen == list(range(seen[0], seen[0] + len(seen))), f"a step repeated or skipped: {seen}"
    reasons = [e[1] for e in r.events("api")]
    assert len(r.step_history("api")) == len(steps) - 1 and reasons.count("Promoted") == 1

    # A graceful stop releases the Lease: the standby takes it within a retry period.
    stopped = time.monotonic()
    b.stop()
    wait_for(
        "ramp-a to take the released Lease",
        lambda: holder(cluster, ha.namespace) == "ramp-a",
        timeout=6,
        interval=0.1,
    )
    handover = time.monotonic() - stopped
    print(f"\ngraceful handover (SIGTERM, Lease released): {handover:.1f}s (lease 6s)")
    assert handover < 6
    assert "released the Lease" in b.current_log()
    # The new holder acts at once: a new canary progresses under it.
    r.set_image("api", "ramp-test/app:v3")
    r.wait("api", "paused at step 2 under ramp-a", lambda s: s.get("phase") == "Paused")
    assert metric(a.scrape(), "ramp_api_requests_total", kind="write") > writes_before
    assert_json_logs(a, b)
