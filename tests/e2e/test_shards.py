"""Shards on the real cluster: the chart with ``shards: 3`` and two replicas per shard.

Six operator processes (the chart's arguments, the chart's ServiceAccount), each shard
electing its leader on its own Lease ``ramp-shard-<i>`` (shard 0's leader also holds the
layout Lease ``ramp``). The story: every Rollout is reconciled by exactly one process —
its shard's leader (operator metrics and write attribution); a shard leader SIGKILLed
mid-rollout is replaced by its standby within the lease and its Rollouts finish without
a step done twice; the other shards never pause. And a change of the shard count (2 → 3,
the two layouts running side by side as in a rolling update) never gives a Rollout two
acting writers (issue 19).
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
import yaml
from ramp_chart import (
    CHART,
    container_args,
    helm_install,
    local_args,
    scratch_namespace,
    service_account_kubeconfig,
)
from ramp_e2e import OperatorProcess, Rollouts, rollout_manifest, wait_for

from cluster.fixtures import ClusterHandle
from ramp.shell.runtime.shard import Shard, shard_of

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
    lease = {i: Shard(i, SHARDS).lease_name("ramp") for i in range(SHARDS)}
    for i in range(SHARDS):
        wait_for(
            f"s{i}-a to hold {lease[i]}",
            lambda i=i: holder(cluster, ns, lease[i]) == f"s{i}-a",
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
            f"s0-b to take {lease[0]}",
            lambda: holder(cluster, ns, lease[0]) == "s0-b",
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

        def behind() -> str:
            late = []
            for n in sorted(owner):
                st = r.get(n).get("status") or {}
                if st.get("phase") != "Healthy" or st.get("stableRevision") == first[n]:
                    late.append(
                        f"{n} (shard {owner[n]}): {st.get('phase')} step "
                        f"{st.get('currentStepIndex')} {st.get('message')!r}"
                    )
            return f"{len(late)} behind: " + "; ".join(late[:12])

        wait_for("every Rollout on v2", lambda: done(set(owner)), timeout=150, describe=behind)
        finished = time.monotonic()
        gap_others = seen.longest_gap(others, killed, min(finished, killed + LEASE))
    print(
        f"\nshards: {lease[0]} taken {took_over:.1f}s after SIGKILL (lease {LEASE:.0f}s); "
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


class WriterSampler:
    """Samples, about ten times a second, which operator processes may write (their
    ``ramp_leader`` gauge: the predicate every write of ``GuardedKube`` asks) and, for each
    Rollout, how many of its owners (by each process's own ``--shard``) may write at once."""

    def __init__(self, namespace: str, rollouts: list[str]) -> None:
        self.namespace = namespace
        self.rollouts = rollouts
        self.procs: dict[str, tuple[OperatorProcess, Shard]] = {}
        self.lock = threading.Lock()
        self.rounds = 0
        self.double: list[tuple[float, str, list[str]]] = []
        self.acting: dict[str, int] = {}
        """Per process: rounds in which it could write."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def add(self, name: str, proc: OperatorProcess, shard: Shard) -> None:
        proc.metrics_url()  # wait for its server (outside the sampling thread)
        with self.lock:
            self.procs[name] = (proc, shard)

    def _leading(self, proc: OperatorProcess) -> bool:
        if not proc.alive:
            return False
        try:
            return "ramp_leader 1.0" in proc.scrape(timeout=2)
        except OSError:
            return False  # stopping: its server is gone

    def _run(self) -> None:
        while not self._stop.is_set():
            with self.lock:
                procs = dict(self.procs)
            began = time.monotonic()
            leading = {n: self._leading(p) for n, (p, _) in procs.items()}
            if time.monotonic() - began < 1.0:  # well within lease duration - renew deadline
                self.rounds += 1
                for n, on in leading.items():
                    self.acting[n] = self.acting.get(n, 0) + on
                for rollout in self.rollouts:
                    writers = sorted(
                        n
                        for n, (_, shard) in procs.items()
                        if leading[n] and shard.owns(self.namespace, rollout)
                    )
                    if len(writers) > 1:
                        self.double.append((began, rollout, writers))
            self._stop.wait(0.05)

    def __enter__(self) -> WriterSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def helm_upgrade(cluster: ClusterHandle, namespace: str, *args: str) -> dict[str, Any]:
    """``helm upgrade`` the release ``ramp``; returns the rendered objects by kind/name."""
    cluster.helm("upgrade", "ramp", str(CHART), "--namespace", namespace, *args, timeout=180)
    manifest = cluster.helm("get", "manifest", "ramp", "--namespace", namespace).stdout
    return {
        f"{o['kind']}/{o['metadata']['name']}": o
        for o in yaml.safe_load_all(manifest)
        if isinstance(o, dict)
    }


def test_a_shard_count_change_never_gives_a_rollout_two_writers(
    cluster: ClusterHandle, crds: None, tmp_path: Path
) -> None:
    """``shards: 2`` → ``3`` as a rolling update does it: the chart is upgraded (Role and
    arguments), the new layout's processes start beside the old ones, Rollouts move during
    the overlap, then the old processes stop (SIGTERM). A sampler checks all along that no
    Rollout ever has two processes that may write to it; then that the new layout took
    over and every rollout finished with no step done twice."""
    old_n, new_n = 2, 3
    timings = (
        f"leaderElection.leaseDuration={LEASE:.0f},leaderElection.renewDeadline="
        f"{RENEW_DEADLINE:.0f},leaderElection.renewPeriod={RENEW:.0f},"
        f"leaderElection.retryPeriod={RETRY:.0f}"
    )
    steps: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {"duration": "1s"}}]
    with scratch_namespace(cluster, "reshard") as ns:
        common = (
            "--set",
            "scope=namespace,replicaCount=1,leaderElection.enabled=true",
            "--set",
            timings,
        )
        objects = helm_install(cluster, "ramp", ns, *common, "--set", f"shards={old_n}")
        kubeconfig = service_account_kubeconfig(cluster, ns, "ramp", tmp_path / "kc")
        # One Rollout in every cell (old shard, new shard): each handover is exercised.
        names: list[str] = []
        cells: set[tuple[int, int]] = set()
        for n in range(200):
            cell = (shard_of(ns, f"r{n}", old_n), shard_of(ns, f"r{n}", new_n))
            if cell not in cells:
                cells.add(cell)
                names.append(f"r{n}")
        assert len(cells) == old_n * new_n, cells
        procs: list[OperatorProcess] = []

        def start(objs: dict[str, Any], count: int, i: int, tag: str) -> OperatorProcess:
            args = local_args(container_args(objs, f"ramp-shard-{i}"))
            assert f"--shard={i}/{count}" in args and "--leader-elect" in args, args
            env = {"POD_NAME": f"{tag}{i}"}
            p = OperatorProcess(kubeconfig, tmp_path / f"{tag}{i}.log", args, env=env)
            procs.append(p)
            p.start()
            return p

        try:
            old = [start(objects, old_n, i, "old") for i in range(old_n)]
            r = Rollouts(cluster.client, ns)
            for name in names:
                r.create(rollout_manifest(name, replicas=2, steps=steps))

            def phase(n: str) -> str | None:
                return (r.get(n).get("status") or {}).get("phase")

            wait_for(
                f"{len(names)} Rollouts Healthy",
                lambda: all(phase(n) == "Healthy" for n in names),
                timeout=120,
            )
            first = {n: r.get(n)["status"]["stableRevision"] for n in names}
            with WriterSampler(ns, names) as sampler:
                for i, p in enumerate(old):
                    sampler.add(f"old{i}", p, Shard(i, old_n))
                upgraded = helm_upgrade(cluster, ns, *common, "--set", f"shards={new_n}")
                new = [start(upgraded, new_n, j, "new") for j in range(new_n)]
                for j, p in enumerate(new):
                    sampler.add(f"new{j}", p, Shard(j, new_n))
                for name in names:
                    r.set_image(name, "ramp-test/app:v2")
                time.sleep(2 * RENEW + RETRY)  # both layouts up, side by side
                for p in reversed(old):  # the rolling update replaces the old pods
                    p.stop()
                stopped = time.monotonic()
                wait_for(
                    "the new layout acting",
                    lambda: all("ramp_leader 1.0" in p.scrape() for p in new),
                    timeout=LEASE * 2 + RENEW * 2 + 15,
                    interval=0.2,
                    describe=lambda: "\n".join(p.tail(20) for p in new),
                )
                took_over = time.monotonic() - stopped

                def done() -> bool:
                    for n in names:
                        s = r.get(n).get("status") or {}
                        if s.get("phase") != "Healthy" or s.get("stableRevision") == first[n]:
                            return False
                    return True

                wait_for("every Rollout on v2", done, timeout=120)
                time.sleep(0.5)
            print(
                f"\nshards {old_n} -> {new_n}: {sampler.rounds} sampling rounds, "
                f"rounds acting {sampler.acting}; the new layout acted {took_over:.1f}s "
                f"after the old processes stopped (lease {LEASE:.0f}s)"
            )
            assert sampler.rounds >= 20, sampler.rounds
            assert not sampler.double, f"two writers: {sampler.double[:5]}"
            assert all(sampler.acting.get(f"new{j}") for j in range(new_n)), sampler.acting
            # Released Lease + the layout's settling (a lease duration) + a renewal.
            assert took_over <= 2 * LEASE + 2 * RENEW + 5, took_over
            for name in names:
                assert r.step_history(name) == list(range(len(steps))), r.get(name)["status"]
        finally:
            for p in procs:
                p.stop()
