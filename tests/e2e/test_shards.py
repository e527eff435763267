"""Shards on the real cluster: the chart with ``shards: 3`` and two replicas per shard.

Six operator processes (the chart's arguments, the chart's ServiceAccount), each shard
electing its leader on its own Lease ``ramp-shard-<i>``. The story: every Rollout is
reconciled by exactly one process — its shard's leader (operator metrics and write
attribution); a shard leader SIGKILLed mid-rollout is replaced by its standby within the
lease and its Rollouts finish without a step done twice; the other shards never pause.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import threading
import time
from collections.abc import Iterator
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
from ramp.shard import shard_of

SHARDS = 3
COUNT = 60
REPLICAS = 2
LEASE, RENEW_DEADLINE, RENEW, RETRY = 6.0, 4.0, 2.0, 1.0
STEPS: list[dict[str, Any]] = [
    {"setWeight": 50},
    {"pause": {"duration": "2s"}},
    {"setWeight": 100},
    {"pause": {"duration": "2s"}},
]


def holder(cluster: ClusterHandle, namespace: str, lease: str) -> str | None:
    proc = cluster.kubectl("get", "lease", lease, "-o", "json", namespace=namespace, check=False)
    if proc.returncode != 0:
        return None
    spec: dict[str, Any] = json.loads(proc.stdout).get("spec") or {}
    return spec.get("holderIdentity")


def acted_on(metrics: str, namespace: str) -> set[str]:
    """Rollouts this process reconciled (its ``ramp_rollout_phase`` series)."""
    out = set()
    for line in metrics.splitlines():
        if line.startswith("ramp_rollout_phase{"):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if labels.get("namespace") == namespace:
                out.add(labels["rollout"])
    return out


def writes(metrics: str) -> float:
    found = re.search(r'^ramp_api_requests_total\{kind="write"\} ([0-9.e+]+)$', metrics, re.M)
    return float(found.group(1)) if found else 0.0


class Transitions:
    """Every (time, rollout, currentStepIndex) the API server stored, from one watch."""

    def __init__(self, rollouts: Rollouts) -> None:
        self.rollouts = rollouts
        self.seen: list[tuple[float, str, int | None]] = []
        self._last: dict[str, int | None] = {}
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
            timeout_seconds=120,
        ):
            obj = event["object"]
            name = obj["metadata"]["name"]
            step = (obj.get("status") or {}).get("currentStepIndex")
            if self._last.get(name, -1) != step:
                self._last[name] = step
                self.seen.append((time.monotonic(), name, step))
            if self._stop.is_set():
                w.stop()

    def __enter__(self) -> Transitions:
        self._thread.start()
        time.sleep(0.5)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.rollouts.patch("r0", {"metadata": {"labels": {"recorded": "yes"}}})
        self._thread.join(10)

    def longest_gap(self, names: set[str], since: float, until: float) -> float:
        """The longest time within [since, until] in which none of ``names`` moved."""
        times = sorted(t for t, n, _ in self.seen if n in names and since <= t <= until)
        points = [since, *times, until]
        return max(b - a for a, b in itertools.pairwise(points))


@pytest.fixture
def shards(cluster: ClusterHandle, crds: None, tmp_path: Path) -> Iterator[tuple[str, Any]]:
    with scratch_namespace(cluster, "shards") as ns:
        objects = helm_install(
            cluster,
            "ramp",
            ns,
            "--set",
            f"scope=namespace,replicaCount=2,shards={SHARDS}",
            "--set",
            f"leaderElection.leaseDuration={LEASE:.0f},"
            f"leaderElection.renewDeadline={RENEW_DEADLINE:.0f},"
            f"leaderElection.renewPeriod={RENEW:.0f},leaderElection.retryPeriod={RETRY:.0f}",
        )
        kubeconfig = service_account_kubeconfig(cluster, ns, "ramp", tmp_path / "kc")
        procs: dict[str, OperatorProcess] = {}

        def start(shard: int, replica: str) -> OperatorProcess:
            args = local_args(container_args(objects, f"ramp-shard-{shard}"))
            assert f"--shard={shard}/{SHARDS}" in args and "--leader-elect" in args, args
            name = f"s{shard}-{replica}"
            p = OperatorProcess(kubeconfig, tmp_path / f"{name}.log", args, env={"POD_NAME": name})
            procs[name] = p
            p.start()
            return p

        try:
            yield ns, start
        finally:
            for p in procs.values():
                p.stop()


def test_each_rollout_has_one_shard_and_a_killed_shard_leader_is_replaced(
    cluster: ClusterHandle, shards: tuple[str, Any]
) -> None:
    ns, start = shards
    leaders = {i: start(i, "a") for i in range(SHARDS)}
    for i in range(SHARDS):
        wait_for(
            f"s{i}-a to hold ramp-shard-{i}",
            lambda i=i: holder(cluster, ns, f"ramp-shard-{i}") == f"s{i}-a",
        )
    standbys = {i: start(i, "b") for i in range(SHARDS)}
    owner = {f"r{n}": shard_of(ns, f"r{n}", SHARDS) for n in range(COUNT)}
    assert set(owner.values()) == set(range(SHARDS)), owner

    r = Rollouts(cluster.client, ns)
    for name in owner:
        r.create(rollout_manifest(name, replicas=REPLICAS, steps=STEPS))
    wait_for(
        f"{COUNT} Rollouts Healthy",
        lambda: all((r.get(n).get("status") or {}).get("phase") == "Healthy" for n in owner),
        timeout=180,
    )
    first = {n: r.get(n)["status"]["stableRevision"] for n in owner}

    # Exactly one process acted on each Rollout: its shard's leader; standbys wrote nothing.
    acted = {i: acted_on(leaders[i].scrape(), ns) for i in range(SHARDS)}
    for i in range(SHARDS):
        assert acted[i] == {n for n, s in owner.items() if s == i}, (i, acted[i])
        standby = standbys[i].scrape()
        assert acted_on(standby, ns) == set() and writes(standby) == 0

    victim = {n for n, s in owner.items() if s == 0}
    others = set(owner) - victim
    with Transitions(r) as seen:
        for name in owner:
            r.set_image(name, "ramp-test/app:v2")
        wait_for(
            "a shard-0 Rollout mid-rollout",
            lambda: any((r.get(n).get("status") or {}).get("currentStepIndex") for n in victim),
            timeout=30,
            interval=0.1,
        )
        leaders[0].kill()  # SIGKILL: no release, the Lease must expire
        killed = time.monotonic()
        wait_for(
            "s0-b to take ramp-shard-0",
            lambda: holder(cluster, ns, "ramp-shard-0") == "s0-b",
            timeout=LEASE + RETRY + 5,
            interval=0.1,
        )
        took_over = time.monotonic() - killed

        def done(names: set[str]) -> bool:
            for n in names:
                s = r.get(n).get("status") or {}
                if s.get("phase") != "Healthy" or s.get("stableRevision") == first[n]:
                    return False
            return True

        wait_for("every Rollout on v2", lambda: done(set(owner)), timeout=150)
        finished = time.monotonic()
        gap_others = seen.longest_gap(others, killed, min(finished, killed + LEASE))
    print(
        f"\nshards: ramp-shard-0 taken {took_over:.1f}s after SIGKILL (lease {LEASE:.0f}s); "
        f"all {COUNT} on v2 {finished - killed:.1f}s after it; longest stall of the other "
        f"shards while shard 0 had no leader: {gap_others:.1f}s"
    )
    assert took_over <= LEASE + RETRY + 2.0  # + a kubectl poll on a loaded machine
    # The other shards never paused: their Rollouts kept moving while shard 0 waited
    # (or were all done before the lease ran out).
    others_done_early = all(
        t <= killed + LEASE for t, n, step in seen.seen if n in others and step is None
    )
    assert gap_others < LEASE or others_done_early, gap_others
    for name in owner:  # no step done twice, none skipped, on any shard
        assert r.step_history(name) == list(range(len(STEPS))), (name, r.get(name).get("status"))
    # Write attribution after the failover: still one writer per Rollout.
    acted_b0 = acted_on(standbys[0].scrape(), ns)
    assert acted_b0 <= victim and acted_b0, acted_b0
    for i in (1, 2):
        assert acted_on(standbys[i].scrape(), ns) == set()
        assert writes(standbys[i].scrape()) == 0
        assert acted_on(leaders[i].scrape(), ns) == {n for n, s in owner.items() if s == i}
    for p in (*leaders.values(), *standbys.values()):
        if p.alive and p.proc is not None:
            os.killpg(p.proc.pid, signal.SIGCONT)
