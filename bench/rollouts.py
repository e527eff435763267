"""Benchmark: N Rollouts rolled out at once on the local cluster.

    .venv/bin/python bench/rollouts.py                 # 50 Rollouts, its own local cluster
    .venv/bin/python bench/rollouts.py --count 1000
    .venv/bin/python bench/rollouts.py --kubeconfig .cluster/kubeconfig

Each Rollout has 5 replicas and steps 20/40/60/80/100 with no pauses. The first revisions
are created and become Healthy; then the operator is restarted (so its counters cover the
rollout phase only) and every Rollout gets a new image at once. Printed figures:

- wall time until all are Healthy on the new revision;
- step-transition latency p50/p99: from the event that showed the canary ready to the
  next split written, measured inside the operator;
- Kubernetes API writes and reads per step made by the reconcile loop (watch streams
  excluded);
- the operator's peak RSS (VmHWM) and CPU seconds (user + system) over the rollout phase,
  and its RSS idle (no Rollouts yet) and at rest (all Rollouts listed, before the rollout);
- the local cluster's CPU seconds over the rollout phase (API server, etcd, controller
  manager, scheduler, kwok): on a shared machine the operator's wall time is mostly theirs;
- every write the API server served during the rollout phase (``apiserver_request_total``
  before and after: POST/PUT/PATCH/DELETE/APPLY), per step and by verb and resource — the
  operator's own and those it causes (the Deployment and ReplicaSet controllers, kwok);
- the controller manager's Deployment and ReplicaSet controllers over the rollout phase
  (its ``/metrics``): workers busy on average (of the 5 each runs by default), syncs per
  step, mean wait in the queue and work per sync. When both run all 5, they, not the
  operator, set the pace.

``--max-unavailable N|P%`` sets the Rollouts' ``strategy.canary.maxUnavailable``.

``--controller-workers N`` starts the local cluster's controller manager with N workers
in its Deployment and ReplicaSet controllers (``--concurrent-deployment-syncs``,
``--concurrent-replicaset-syncs``; its default is 5 each).

``--soak SECONDS`` then keeps rolling every Rollout out again (a new image each cycle)
for that long and prints the operator's RSS at the start, after the first cycle and at the
end (growth after warm-up); the per-step figures then cover the soak too.

``--bystanders N`` first creates N Deployments that are not Ramp's (one pod each, in
the same namespace): what a cluster holds besides the Rollouts. The operator's watch
should not be streamed them (its figures should not move with N).

It prints figures; it is not a test and has no pass/fail threshold.
"""

from __future__ import annotations

import argparse
import http.client
import json
import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "e2e")]

from kubernetes import client, config  # noqa: E402
from ramp_e2e import CRDS, OperatorProcess, rollout_manifest  # noqa: E402

from cluster.launcher import BIN_DIR, Cluster  # noqa: E402

STEPS = [{"setWeight": w} for w in (20, 40, 60, 80, 100)]
REPLICAS = 5


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(q * (len(ordered) - 1))))
    return ordered[k]


PARTS = [
    ("queue", "queue wait (event -> reconcile start)"),
    ("observe", "observe"),
    ("observe_pool", "  of which API-pool wait"),
    ("observe_api", "  of which API requests"),
    ("plan", "plan"),
    ("apply", "apply"),
    ("apply_pool", "  of which API-pool wait"),
    ("apply_api", "  of which API requests"),
    ("total", "total (event -> split written)"),
]


def print_breakdown(timings: list[dict[str, float]]) -> None:
    """Where the step transitions' latency went (the operator's ``step_timings``)."""
    print(f"where a step waits ({len(timings)} transitions; ms: mean / p50 / p99, share of mean)")
    total = statistics.mean(t["total"] for t in timings) or float("nan")
    for key, label in PARTS:
        ms = [t.get(key, 0.0) * 1000 for t in timings]
        mean = statistics.mean(ms)
        print(
            f"    {label:38s} {mean:7.1f} / {percentile(ms, 0.5):6.1f} / "
            f"{percentile(ms, 0.99):7.1f}  {mean / 1000 / total:6.1%}"
        )


def peak_rss_mb(pid: int, field: str = "VmHWM") -> float:
    """Peak (``VmHWM``) or current (``VmRSS``) resident memory of a process, in MB."""
    text = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"{field}:\s+(\d+) kB", text)
    return int(match.group(1)) / 1024 if match else float("nan")


def rss_mb(operator: OperatorProcess) -> float:
    return peak_rss_mb(operator.proc.pid, "VmRSS") if operator.proc else float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (``/proc/<pid>/stat``)."""
    import os

    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cluster_cpu(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds so far of each component of the local cluster (API server, etcd, the
    controller manager, the scheduler, kwok), by name (those still running)."""
    out: dict[str, float] = {}
    for name, pid in pids.items():
        try:
            out[name] = cpu_seconds(pid)
        except OSError:
            continue
    return out


def print_cluster_cpu(before: dict[str, float], after: dict[str, float]) -> float:
    """The cluster's CPU seconds over a phase, in all and by component; returns the total."""
    used = {k: v - before[k] for k, v in after.items() if k in before}
    total = sum(used.values())
    parts = ", ".join(f"{k} {v:.1f}" for k, v in sorted(used.items(), key=lambda kv: -kv[1]))
    print(f"cluster CPU seconds           {total:.1f} s ({parts})")
    return total


WRITE_VERBS = {"POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE"}
_SAMPLE = re.compile(r"^apiserver_request_total\{(.*)\} ([0-9.e+]+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def apiserver_writes(kubectl: list[str]) -> dict[str, float]:
    """Writes served by the API server so far, by "VERB resource[/subresource]"."""
    import subprocess

    text = subprocess.run(
        [*kubectl, "get", "--raw", "/metrics"], check=True, capture_output=True, text=True
    ).stdout
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group(1)))
        if labels.get("verb") not in WRITE_VERBS:
            continue
        kind = labels.get("resource", "?")
        if labels.get("subresource"):
            kind += "/" + labels["subresource"]
        key = f"{labels['verb']} {kind}"
        out[key] = out.get(key, 0.0) + float(match.group(2))
    return out


KCM_QUEUES = ("deployment", "replicaset")  # each with 5 workers, the controller manager's default
_QUEUE = re.compile(
    r"^workqueue_(adds_total|queue_duration_seconds_sum|work_duration_seconds_sum)"
    r'\{name="(\w+)"\} (\S+)$'
)


def kcm_queues(launcher: Cluster | None) -> dict[str, float]:
    """The controller manager's Deployment and ReplicaSet work queues so far, from its
    /metrics: "<queue> adds_total", "... queue_duration_seconds_sum" (seconds items waited
    to be worked on), "... work_duration_seconds_sum" (seconds its workers worked)."""
    if launcher is None:
        return {}
    try:
        return parse_kcm_queues(launcher.component_metrics("kube-controller-manager"))
    except (OSError, http.client.HTTPException) as exc:
        print(f"the controller manager's /metrics: {exc}")
        return {}


def parse_kcm_queues(text: str) -> dict[str, float]:
    """``kcm_queues``' figures from the text of the controller manager's /metrics."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        match = _QUEUE.match(line)
        if match and match.group(2) in KCM_QUEUES:
            out[f"{match.group(2)} {match.group(1)}"] = float(match.group(3))
    return out


def print_kcm_queues(
    before: dict[str, float],
    after: dict[str, float],
    steps: int,
    wall: float,
    launcher: Cluster | None = None,
) -> dict[str, float]:
    """The Deployment and ReplicaSet controllers over a phase: how many of their workers
    (of the launcher's ``controller_workers``, by default 5) were busy on average, syncs per
    step, mean wait in the queue and mean work per sync. Returns "<queue>_busy" (workers
    busy on average) for each."""
    if not after:
        return {}
    workers = (launcher.controller_workers if launcher else None) or 5
    print(
        f"controller manager's queues   workers busy (of {workers}), syncs / step, wait / work mean"
    )
    used = {key: value - before.get(key, 0.0) for key, value in after.items()}
    busy: dict[str, float] = {}
    for queue in KCM_QUEUES:
        syncs = used.get(f"{queue} adds_total", 0.0)
        work = used.get(f"{queue} work_duration_seconds_sum", 0.0)
        busy[f"{queue}_busy"] = work / max(wall, 1e-9)
        wait_ms = 1000 * used.get(f"{queue} queue_duration_seconds_sum", 0.0) / max(syncs, 1)
        print(
            f"    {queue:26s}{busy[f'{queue}_busy']:4.1f}, {syncs / max(steps, 1):5.2f}, "
            f"{wait_ms:5.0f} / {1000 * work / max(syncs, 1):3.0f} ms"
        )
    return busy


def canary_options(max_unavailable: str | None) -> dict[str, int | str]:
    """``strategy.canary`` fields beside the steps: ``maxUnavailable`` when one is given
    ("25%" or a count), else none (each controller's own default)."""
    if max_unavailable is None:
        return {}
    value = max_unavailable.strip()
    return {"maxUnavailable": value if value.endswith("%") else int(value)}


def by_cause(counts: dict[str, int] | None, steps: int) -> str:
    """Reconciles per step by cause, most first: "child 3.10, rollout 2.00, ... (total)"."""
    if not counts:
        return "-"
    parts = [
        f"{c} {n / max(steps, 1):.2f}" for c, n in sorted(counts.items(), key=lambda kv: -kv[1])
    ]
    return f"{', '.join(parts)} ({sum(counts.values()) / max(steps, 1):.2f})"


def stats_from_log(text: str) -> dict[str, Any]:
    lines = [ln for ln in text.splitlines() if "ramp stats " in ln]
    if not lines:
        raise SystemExit("the operator did not log its stats on shutdown")
    result: dict[str, Any] = json.loads(lines[-1].split("ramp stats ", 1)[1])
    return result


def all_healthy(custom: Any, ns: str, count: int, not_revision: dict[str, str] | None) -> int:
    items = custom.list_namespaced_custom_object("ramp.dev", "v1alpha1", ns, "rollouts")["items"]
    done = 0
    for item in items:
        s = item.get("status") or {}
        if s.get("phase") != "Healthy" or s.get("readyReplicas") != REPLICAS:
            continue
        if s.get("canaryRevision"):
            continue
        if not_revision and s.get("stableRevision") == not_revision.get(item["metadata"]["name"]):
            continue
        done += 1
    return done


def set_image(custom: Any, ns: str, count: int, image: str) -> None:
    for i in range(count):
        custom.patch_namespaced_custom_object(
            "ramp.dev",
            "v1alpha1",
            ns,
            "rollouts",
            f"r{i}",
            {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}},
        )


def stable_revisions(custom: Any, ns: str) -> dict[str, str]:
    items = custom.list_namespaced_custom_object("ramp.dev", "v1alpha1", ns, "rollouts")
    return {it["metadata"]["name"]: it["status"]["stableRevision"] for it in items["items"]}


def soak(
    custom: Any, ns: str, count: int, seconds: float, timeout: float, operator: OperatorProcess
) -> int:
    """Roll every Rollout out again and again for ``seconds``; print the operator's RSS
    at the start, after the first cycle (warm) and at the end. Returns rollouts done."""
    start = rss_mb(operator)
    warm = float("nan")
    t0 = time.monotonic()
    cycles = done = 0
    while time.monotonic() - t0 < seconds:
        old = stable_revisions(custom, ns)
        set_image(custom, ns, count, f"ramp-test/app:soak{cycles}")
        t1 = time.monotonic()
        while all_healthy(custom, ns, count, old) < count:
            if time.monotonic() - t1 > timeout:
                raise SystemExit(f"soak cycle {cycles} did not complete in time")
            time.sleep(1)
        cycles += 1
        done += count
        now = rss_mb(operator)
        warm = now if cycles == 1 else warm
        print(
            f"soak cycle {cycles}: {time.monotonic() - t1:.1f} s, RSS {now:.1f} MB, "
            f"{done} rollouts",
            flush=True,
        )
    end = rss_mb(operator)
    print()
    print(f"soak                          {time.monotonic() - t0:.0f} s, {cycles} cycles, {done}")
    print(f"soak RSS start / warm / end   {start:.1f} / {warm:.1f} / {end:.1f} MB")
    print(f"soak RSS growth after warm-up {100 * (end - warm) / warm:+.1f} %")
    return done


def create_bystanders(apps: Any, ns: str, count: int) -> None:
    """Deployments that are not Ramp's, one pod each (what else a namespace holds)."""
    for i in range(count):
        labels = {"app": f"bystander-{i}"}
        apps.create_namespaced_deployment(
            ns,
            {
                "metadata": {"name": f"bystander-{i}", "labels": labels},
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "app", "image": "bystander:1"}]},
                    },
                },
            },
        )
    print(f"created {count} bystander Deployments in {ns}", flush=True)


def print_cluster_writes(cluster: dict[str, int], steps: int) -> None:
    """Every write the API server served, per step and by verb and resource."""
    total = sum(cluster.values())
    print(f"cluster writes per step       {total / max(steps, 1):.2f} ({total} in all)")
    for kind, n in sorted(cluster.items(), key=lambda kv: -kv[1]):
        print(f"    {kind:40s} {n:7d}  {n / max(steps, 1):.2f}/step")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument(
        "--max-unavailable",
        metavar="N|P%",
        help="the Rollouts' strategy.canary.maxUnavailable (default: Ramp's own, 0)",
    )
    parser.add_argument(
        "--controller-workers",
        type=int,
        metavar="N",
        help="the local cluster's controller manager runs N workers in its Deployment and "
        "in its ReplicaSet controller (default: its own, 5)",
    )
    parser.add_argument("--kubeconfig", help="use this cluster instead of starting one")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per phase")
    parser.add_argument(
        "--soak",
        type=float,
        default=0,
        metavar="SECONDS",
        help="after the measured rollout, keep rolling all Rollouts out again in a loop "
        "for SECONDS and report the operator's RSS growth",
    )
    parser.add_argument(
        "--json",
        metavar="PATH",
        help="also write the figures to PATH as JSON (bench/compare_argo.py reads them)",
    )
    parser.add_argument(
        "--operator-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an extra argument of the operator (repeatable): --operator-arg=--coalesce-window=0",
    )
    parser.add_argument(
        "--bystanders",
        type=int,
        default=0,
        metavar="N",
        help="first create N Deployments that are not Ramp's (one pod each) beside them",
    )
    args = parser.parse_args()
    if args.kubeconfig and args.controller_workers is not None:
        parser.error("--controller-workers sizes the cluster this starts, not --kubeconfig's")
    # SIGTERM (e.g. from `timeout`) cleans up like Ctrl-C: cluster and operator stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    workdir = Path(tempfile.mkdtemp(prefix="ramp-bench-"))
    launcher = None
    if args.kubeconfig:
        kubeconfig = Path(args.kubeconfig)
    else:
        # A kwok Node takes 1000 pods: enough Nodes for every pod plus the surge.
        nodes = max(1, -(-(args.count * (REPLICAS + 2) + args.bystanders) // 1000))
        launcher = Cluster(
            workdir / "cluster",
            nodes=nodes,
            die_with_parent=True,
            controller_workers=args.controller_workers,
        )
        launcher.start()
        kubeconfig = launcher.kubeconfig
    import subprocess

    kubectl = [str(BIN_DIR / "kubectl"), "--kubeconfig", str(kubeconfig)]
    subprocess.run([*kubectl, "apply", "--server-side", "-f", str(CRDS)], check=True)
    for attempt in range(10):  # right after the apply the CRD may have no conditions yet
        wait = [*kubectl, "wait", "--for=condition=Established", "crd/rollouts.ramp.dev"]
        if subprocess.run(wait, check=attempt == 9).returncode == 0:
            break
        time.sleep(1)
    api = config.new_client_from_config(config_file=str(kubeconfig))
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    ns = f"bench-{int(time.time())}"
    core.create_namespace({"metadata": {"name": ns}})
    if args.bystanders:
        create_bystanders(client.AppsV1Api(api), ns, args.bystanders)
    operator = OperatorProcess(
        kubeconfig, workdir / "operator.log", ["--namespace", ns, *args.operator_arg]
    )
    try:
        operator.start()
        time.sleep(3)
        rss_empty = rss_mb(operator)
        print(f"creating {args.count} Rollouts of {REPLICAS} replicas in {ns} ...", flush=True)
        for i in range(args.count):
            custom.create_namespaced_custom_object(
                "ramp.dev",
                "v1alpha1",
                ns,
                "rollouts",
                rollout_manifest(
                    f"r{i}",
                    replicas=REPLICAS,
                    steps=STEPS,
                    deadline=3600,
                    **canary_options(args.max_unavailable),
                ),
            )
        t0 = time.monotonic()
        while all_healthy(custom, ns, args.count, None) < args.count:
            if time.monotonic() - t0 > args.timeout:
                raise SystemExit("first revisions did not become Healthy in time")
            time.sleep(1)
        print(f"first revisions Healthy after {time.monotonic() - t0:.1f}s", flush=True)
        operator.stop()

        items = custom.list_namespaced_custom_object("ramp.dev", "v1alpha1", ns, "rollouts")
        old = {it["metadata"]["name"]: it["status"]["stableRevision"] for it in items["items"]}
        operator.start()
        time.sleep(3)  # let it list everything before the clock starts
        rss_rest = rss_mb(operator)
        writes_before = apiserver_writes(kubectl)
        queues_before = kcm_queues(launcher)
        cpu_before = cpu_seconds(operator.proc.pid) if operator.proc else 0.0
        pids = launcher.pids() if launcher is not None else {}
        cluster_before = cluster_cpu(pids)
        t1 = time.monotonic()
        set_image(custom, ns, args.count, "ramp-test/app:v2")
        done = 0
        while done < args.count:
            if time.monotonic() - t1 > args.timeout:
                print(f"timeout: {done}/{args.count} Healthy on the new revision")
                break
            time.sleep(1)
            done = all_healthy(custom, ns, args.count, old)
        wall = time.monotonic() - t1
        rss = peak_rss_mb(operator.proc.pid) if operator.proc else float("nan")
        cpu = cpu_seconds(operator.proc.pid) - cpu_before if operator.proc else float("nan")
        cluster_after = cluster_cpu(pids)
        queues_after = kcm_queues(launcher)
        soaked = 0
        if args.soak:
            soaked = soak(custom, ns, args.count, args.soak, args.timeout, operator)
        writes_after = apiserver_writes(kubectl)
        cluster = {
            k: int(v - writes_before.get(k, 0.0))
            for k, v in writes_after.items()
            if v - writes_before.get(k, 0.0) > 0
        }
        operator.stop(signal.SIGTERM, timeout=60)
        stats = stats_from_log(operator.log_text())
        steps = (done + soaked) * len(STEPS)  # the operator's counters include the soak
        lat = [x * 1000 for x in stats["step_latencies"]]
        print()
        print(f"Rollouts                      {args.count} ({done} completed)")
        print(f"wall time to all Healthy      {wall:.1f} s")
        print(f"step transitions measured     {len(lat)}")
        print(
            f"step latency p50 / p99        {percentile(lat, 0.5):.0f} / "
            f"{percentile(lat, 0.99):.0f} ms"
        )
        if lat:
            print(f"step latency mean             {statistics.mean(lat):.0f} ms")
        print(f"API writes per step           {stats['api_writes'] / max(steps, 1):.2f}")
        print(f"API writes by kind            {stats.get('api_writes_by_kind')}")
        print(f"status patches by reason      {stats.get('status_writes_by_reason')}")
        print(f"API reads per step            {stats['api_reads'] / max(steps, 1):.2f}")
        print(f"reconciles per step           {stats['reconciles'] / max(steps, 1):.2f}")
        print(f"  by cause                    {by_cause(stats.get('reconciles_by_cause'), steps)}")
        print(f"reconciles started, by cause  {by_cause(stats.get('wakes_by_cause'), steps)}")
        print(f"writes held back (expected)   {stats.get('expectations')}")
        if stats.get("step_timings"):
            print_breakdown(stats["step_timings"])
        if args.bystanders:
            print(f"bystander Deployments         {args.bystanders}")
        print(f"operator RSS idle / at rest   {rss_empty:.0f} / {rss_rest:.0f} MB")
        print(f"operator peak RSS             {rss:.0f} MB")
        print(f"operator CPU seconds          {cpu:.1f} s")
        cluster_seconds = print_cluster_cpu(cluster_before, cluster_after) if pids else None
        print_cluster_writes(cluster, steps)
        busy = print_kcm_queues(queues_before, queues_after, done * len(STEPS), wall, launcher)
        if args.json:
            figures = {
                "controller": "ramp",
                "count": args.count,
                "completed": done,
                "wall": wall,
                "cpu": cpu,
                "reconciles_per_step": stats["reconciles"] / max(steps, 1),
                "reconciles_by_cause": stats.get("reconciles_by_cause"),
                "writes_per_step": stats["api_writes"] / max(steps, 1),
                "peak_rss": rss,
                "rss_rest": rss_rest,
                "cluster_writes_per_step": sum(cluster.values()) / max(steps, 1),
                "cluster_cpu": cluster_seconds,
                "step_p50_ms": percentile(lat, 0.5),
                "step_p99_ms": percentile(lat, 0.99),
                **busy,
            }
            Path(args.json).write_text(json.dumps(figures, indent=1))
    finally:
        operator.stop()
        try:
            core.delete_namespace(ns)
        except Exception as exc:  # the cluster may be gone
            print(f"could not delete {ns}: {exc}")
        if launcher is not None:
            launcher.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
