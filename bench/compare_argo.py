"""Benchmark: Argo Rollouts' controller on the local cluster, for a side-by-side with Ramp.

    bench/argo-build.sh                 # builds bench/argo/bin/rollouts-controller and crds/
    .venv/bin/python bench/compare_argo.py --count 10
    .venv/bin/python bench/compare_argo.py ... --qps 1000 --burst 2000   # tuned client
    .venv/bin/python bench/compare_argo.py --count 200 --qps 1000 --burst 2000 --with-ramp

``--with-ramp`` runs the side by side in one invocation: ``--rounds`` rounds (default 2)
of one run of each, Ramp first in the even rounds and Argo first in the odd ones (so
both orders are measured), each run on a fresh local cluster of its own (``bench/rollouts.py``
for Ramp, this script for Argo, as subprocesses writing their figures as JSON). It prints
each run's figures and Ramp ÷ Argo per round and over all rounds: wall, CPU, reconciles
per step, operator writes per step, peak RSS, cluster writes per step, cluster CPU and
the controller manager's Deployment and ReplicaSet controllers' workers busy.
``--max-unavailable`` gives both controllers' Rollouts the same
``strategy.canary.maxUnavailable`` (by default each has its own: Ramp 0, Argo 25%).
``--controller-workers N`` starts every run's local cluster with N workers in the
controller manager's Deployment and ReplicaSet controllers (its default is 5 each; see
bench/README.md, "A controller manager sized for the load").

The same load as ``bench/rollouts.py``: N Rollouts (``argoproj.io/v1alpha1``) of 5
replicas, the pod template of ``rollout_manifest`` (kwok makes the pods Ready), canary
steps setWeight 20/40/60/80/100 with no pauses and no traffic routing. Argo's controller is
not part of this repository: ``bench/argo-build.sh`` builds it from the Go module proxy
into ``bench/argo/bin`` (the default of ``--controller``), with its CRDs (the default of
``--crds``: a file or a folder of CRD manifests, Rollout, Experiment, AnalysisRun and
AnalysisTemplate at least, whose informers the controller waits for).

The script, its own local cluster and the controller run in a network namespace of their
own (``unshare --net``; see :func:`private_network`). The controller runs as a subprocess
out of cluster against that cluster's kubeconfig, on the
benchmark's namespace only (``--namespaced --namespace NS``), without leader election, its
metrics and healthz servers on free ports (it binds them on all interfaces: it has no flag
for the address). Once the first revisions are Healthy (``status.phase`` Healthy and
``status.stableRS == status.currentPodHash``) and its writes have settled, nothing is
restarted: every Rollout gets a new image at once. Printed figures:

- wall time until all are Healthy on the new revision;
- the controller's own API requests per step (``controller_clientset_k8s_request_total``
  on its metrics endpoint, before and after): writes (Create/Update/Patch/Delete) and
  reads (Get/List), and by verb and resource;
- its reconciles per step (``rollout_reconcile_count``);
- its CPU seconds (user + system) and its peak RSS (``VmHWM``, reset before the rollout
  phase) over the rollout phase, and its RSS at rest;
- the local cluster's CPU seconds over the rollout phase, by component;
- every write the API server served during the rollout phase (``apiserver_request_total``),
  per step and by verb and resource, as ``bench/rollouts.py`` prints them.

These are counted when all are Healthy, the point where ``bench/rollouts.py`` counts.
Argo's controller still sends requests after that (Events go out on their own goroutine
and, like every request, wait for the client's QPS limit): the "settled" lines count
again once it has written nothing for 3 s, and name what came late.

It prints figures; it is not a test and has no pass/fail threshold.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import math
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ARGO_BIN = BENCH / "argo" / "bin"
REPO = BENCH.parent
sys.path[:0] = [str(BENCH), str(REPO / "tests"), str(REPO / "tests" / "e2e")]

from kubernetes import client, config  # noqa: E402
from ramp_e2e import rollout_manifest, stop_group  # noqa: E402
from rollouts import (  # noqa: E402
    _LABEL,
    REPLICAS,
    STEPS,
    apiserver_writes,
    canary_options,
    cluster_cpu,
    cpu_seconds,
    kcm_queues,
    peak_rss_mb,
    print_cluster_cpu,
    print_cluster_writes,
    print_kcm_queues,
)

from cluster.launcher import BIN_DIR, Cluster  # noqa: E402

GROUP, VERSION, PLURAL = "argoproj.io", "v1alpha1", "rollouts"
NEEDED_CRDS = ("rollouts", "experiments", "analysisruns", "analysistemplates")
REQUESTS = "controller_clientset_k8s_request_total"
RECONCILES = "rollout_reconcile_count"
WRITE_VERBS = {"Create", "Update", "Patch", "Delete"}
READ_VERBS = {"Get", "List"}
SUBRESOURCES = {"status", "scale"}
_SAMPLE = re.compile(r"^(\w+)\{(.*)\} ([0-9.e+-]+)$")


def free_port() -> int:
    """A port free on every interface (the controller binds ``0.0.0.0:PORT``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("", 0))
        port: int = s.getsockname()[1]
        return port


def _die_with_parent() -> None:  # runs in the child between fork and exec
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class Controller:
    """Argo Rollouts' controller as a subprocess, its log in a file."""

    def __init__(self, exe: Path, kubeconfig: Path, namespace: str, log_path: Path) -> None:
        self.exe = exe
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.log_path = log_path
        self.metrics_port = free_port()
        self.healthz_port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def args(self, qps: float | None, burst: int | None, loglevel: str) -> list[str]:
        out = [
            str(self.exe),
            "--kubeconfig",
            str(self.kubeconfig),
            "--namespaced",
            "--namespace",
            self.namespace,
            "--leader-elect=false",
            "--metricsPort",
            str(self.metrics_port),
            "--healthzPort",
            str(self.healthz_port),
            "--loglevel",
            loglevel,
        ]
        if qps is not None:
            out += ["--qps", f"{qps:g}"]
        if burst is not None:
            out += ["--burst", str(burst)]
        return out

    def start(self, argv: list[str]) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its ConfigMap, notification config and Secret are looked up in
                # POD_NAMESPACE (else "argo-rollouts"): keep them in the bench's namespace.
                env={**os.environ, "POD_NAMESPACE": self.namespace},
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("the controller is not running")
        return self.proc.pid

    def stop(self, timeout: float = 15) -> None:
        stop_group(self.proc, signal.SIGTERM, timeout)
        self.proc = None

    def tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def metrics_text(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as resp:
            body: bytes = resp.read()
            return body.decode()

    def wait_metrics(self, timeout: float = 60) -> None:
        t0 = time.monotonic()
        while True:
            if self.proc is None or self.proc.poll() is not None:
                raise SystemExit(f"the controller exited:\n{self.tail()}")
            with contextlib.suppress(OSError):
                self.metrics_text()
                return
            if time.monotonic() - t0 > timeout:
                raise SystemExit(f"the controller's metrics did not answer:\n{self.tail()}")
            time.sleep(0.5)

    def counters(self) -> dict[str, float]:
        """Its API requests so far by "Verb resource" (``REQUESTS``, see ``request_key``),
        the non-2xx ones also under "! Verb resource CODE", and its Rollout reconciles
        under ``RECONCILES``."""
        out: dict[str, float] = {}
        for line in self.metrics_text().splitlines():
            match = _SAMPLE.match(line)
            if not match or match.group(1) not in (REQUESTS, RECONCILES):
                continue
            value = float(match.group(3))
            if match.group(1) == RECONCILES:
                out[RECONCILES] = out.get(RECONCILES, 0.0) + value
                continue
            labels = dict(_LABEL.findall(match.group(2)))
            key = request_key(labels)
            out[key] = out.get(key, 0.0) + value
            code = labels.get("status_code", "")
            if not code.startswith("2"):
                out[f"! {key} {code}"] = out.get(f"! {key} {code}", 0.0) + value
        return out


def request_key(labels: dict[str, str]) -> str:
    """The "Verb resource[/subresource]" key of one ``REQUESTS`` sample. The controller labels a
    request from its URL's last segments: on a subresource (``.../rollouts/r0/status``)
    "kind" is the object's name and "name" the subresource, so the bench's object names
    (Rollouts ``rN``, their ReplicaSets ``rN-HASH``) tell the resource back. A create
    whose body it could not read has no kind ("?")."""
    verb, kind, name = labels.get("verb", "?"), labels.get("kind", ""), labels.get("name", "")
    if name in SUBRESOURCES:
        if re.fullmatch(r"r\d+", kind):
            kind = f"rollouts/{name}"
        elif re.fullmatch(r"r\d+-\w+", kind):
            kind = f"replicasets/{name}"
        else:
            kind = f"?/{name}"
    return f"{verb} {kind or '?'}"


def diff(after: dict[str, float], before: dict[str, float]) -> dict[str, int]:
    return {k: int(v - before.get(k, 0.0)) for k, v in after.items() if v - before.get(k, 0.0) > 0}


def total(counts: dict[str, int], verbs: set[str]) -> int:
    return sum(n for k, n in counts.items() if k.split(" ", 1)[0] in verbs)


def by_kind(counts: dict[str, int], verbs: set[str]) -> dict[str, int]:
    mine = [(k, n) for k, n in counts.items() if k.split(" ", 1)[0] in verbs]
    return dict(sorted(mine, key=lambda kv: -kv[1]))


def split_counters(counts: dict[str, int]) -> tuple[dict[str, int], dict[str, int], int]:
    """(requests by "Verb resource", the non-2xx ones by "Verb resource CODE", reconciles)."""
    requests = {k: n for k, n in counts.items() if k != RECONCILES and not k.startswith("! ")}
    errors = {k[2:]: n for k, n in counts.items() if k.startswith("! ")}
    return requests, errors, counts.get(RECONCILES, 0)


def writes_so_far(controller: Controller) -> int:
    counts = {k: int(v) for k, v in controller.counters().items()}
    return total(counts, WRITE_VERBS)


def settle(controller: Controller, quiet: float = 3, cap: float = 30) -> float:
    """Wait until the controller has written nothing for ``quiet`` seconds (at most
    ``cap``); returns the seconds waited."""
    t0 = time.monotonic()
    last, since = writes_so_far(controller), time.monotonic()
    while time.monotonic() - since < quiet and time.monotonic() - t0 < cap:
        time.sleep(0.5)
        now = writes_so_far(controller)
        if now != last:
            last, since = now, time.monotonic()
    return time.monotonic() - t0


def argo_rollout(name: str, max_unavailable: str | None = None) -> dict[str, Any]:
    """``rollout_manifest``'s Rollout (template, selector, steps) as Argo's kind."""
    manifest = rollout_manifest(
        name,
        replicas=REPLICAS,
        steps=STEPS,
        deadline=3600,
        **canary_options(max_unavailable),
    )
    manifest["apiVersion"] = f"{GROUP}/{VERSION}"
    return manifest


def list_rollouts(custom: Any, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = custom.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)[
        "items"
    ]
    return items


def healthy(item: dict[str, Any]) -> bool:
    s = item.get("status") or {}
    return (
        s.get("phase") == "Healthy"
        and bool(s.get("stableRS"))
        and s.get("stableRS") == s.get("currentPodHash")
        and str(s.get("observedGeneration")) == str(item["metadata"].get("generation"))
    )


def all_healthy(custom: Any, ns: str, old: dict[str, str] | None) -> int:
    """How many Rollouts are Healthy (on a stable ReplicaSet other than ``old``'s)."""
    done = 0
    for item in list_rollouts(custom, ns):
        if not healthy(item):
            continue
        if old and item["status"]["stableRS"] == old.get(item["metadata"]["name"]):
            continue
        done += 1
    return done


def set_image(custom: Any, ns: str, count: int, image: str) -> None:
    body = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
    for i in range(count):
        custom.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, f"r{i}", body)


def crd_files(path: Path) -> list[Path]:
    """The CRD manifests of a file or a folder (a folder may hold a kustomization too)."""
    if path.is_file():
        return [path]
    found = sorted(
        p
        for p in path.iterdir()
        if p.suffix in (".yaml", ".yml", ".json")
        and "CustomResourceDefinition" in p.read_text(errors="replace")
    )
    if not found:
        raise SystemExit(f"no CustomResourceDefinition in {path}")
    return found


def apply_crds(kubectl: list[str], path: Path) -> None:
    files = [a for p in crd_files(path) for a in ("-f", str(p))]
    apply = [*kubectl, "apply", "--server-side", "--force-conflicts", *files]
    subprocess.run(apply, check=True, stdout=subprocess.DEVNULL)
    # The controller waits for its informers of all of these before it reconciles anything.
    needed = [f"crd/{p}.{GROUP}" for p in NEEDED_CRDS]
    if subprocess.run([*kubectl, "get", *needed], capture_output=True).returncode != 0:
        raise SystemExit(f"--crds must hold the CRDs of {', '.join(NEEDED_CRDS)} ({GROUP})")
    for attempt in range(10):  # right after the apply the CRDs may have no conditions yet
        wait = [*kubectl, "wait", "--for=condition=Established", *needed]
        if subprocess.run(wait, check=attempt == 9, capture_output=True).returncode == 0:
            return
        time.sleep(1)


def wait_until_healthy(
    custom: Any, ns: str, count: int, old: dict[str, str] | None, timeout: float
) -> int:
    t0 = time.monotonic()
    done = all_healthy(custom, ns, old)
    while done < count:
        if time.monotonic() - t0 > timeout:
            print(f"timeout: {done}/{count} Healthy", flush=True)
            break
        time.sleep(1)
        done = all_healthy(custom, ns, old)
    return done


def run(
    args: argparse.Namespace,
    workdir: Path,
    kubeconfig: Path,
    pids: dict[str, int],
    launcher: Cluster | None = None,
) -> dict[str, Any]:
    kubectl = [str(BIN_DIR / "kubectl"), "--kubeconfig", str(kubeconfig)]
    apply_crds(kubectl, Path(args.crds))
    api = config.new_client_from_config(config_file=str(kubeconfig))  # type: ignore[no-untyped-call]
    custom = client.CustomObjectsApi(api)
    ns = f"bench-argo-{int(time.time())}"
    subprocess.run([*kubectl, "create", "namespace", ns], check=True, stdout=subprocess.DEVNULL)
    controller = Controller(Path(args.controller), kubeconfig, ns, workdir / "controller.log")
    try:
        version = subprocess.run(
            [str(controller.exe), "--version"], capture_output=True, text=True, check=True
        ).stdout.strip()
        argv = controller.args(args.qps, args.burst, args.loglevel)
        print(f"controller {version}: {' '.join(argv[1:])}", flush=True)
        controller.start(argv)
        controller.wait_metrics()
        time.sleep(3)
        rss_empty = peak_rss_mb(controller.pid, "VmRSS")
        print(f"creating {args.count} Rollouts of {REPLICAS} replicas in {ns} ...", flush=True)
        for i in range(args.count):
            custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, argo_rollout(f"r{i}", args.max_unavailable)
            )
        t0 = time.monotonic()
        if wait_until_healthy(custom, ns, args.count, None, args.timeout) < args.count:
            raise SystemExit(f"first revisions did not become Healthy in time\n{controller.tail()}")
        print(f"first revisions Healthy after {time.monotonic() - t0:.1f}s", flush=True)
        print(f"controller writes settled after {settle(controller):.1f}s", flush=True)

        old = {it["metadata"]["name"]: it["status"]["stableRS"] for it in list_rollouts(custom, ns)}
        rss_rest = peak_rss_mb(controller.pid, "VmRSS")
        # Reset VmHWM so that the peak covers the rollout phase only (nothing is restarted).
        Path(f"/proc/{controller.pid}/clear_refs").write_text("5")
        counters_before = controller.counters()
        writes_before = apiserver_writes(kubectl)
        queues_before = kcm_queues(launcher)
        cpu_before = cpu_seconds(controller.pid)
        cluster_before = cluster_cpu(pids)
        t1 = time.monotonic()
        set_image(custom, ns, args.count, "ramp-test/app:v2")
        done = wait_until_healthy(custom, ns, args.count, old, args.timeout)
        wall = time.monotonic() - t1
        cpu = cpu_seconds(controller.pid) - cpu_before
        cluster_after = cluster_cpu(pids)
        queues_after = kcm_queues(launcher)
        rss = peak_rss_mb(controller.pid)
        if controller.proc is None or controller.proc.poll() is not None:
            raise SystemExit(f"the controller exited during the run:\n{controller.tail()}")
        counters_after = controller.counters()
        writes_after = apiserver_writes(kubectl)
        # Requests the client's rate limiter held back (and the Events, sent on their own
        # goroutine) still go out after all are Healthy: count them too, apart.
        settled_after = settle(controller)
        counters_settled = controller.counters()
        writes_settled = apiserver_writes(kubectl)

        own, errors, reconciles = split_counters(diff(counters_after, counters_before))
        own_settled, errors_settled, _ = split_counters(diff(counters_settled, counters_before))
        late = diff(
            {k: float(v) for k, v in own_settled.items()}, {k: float(v) for k, v in own.items()}
        )
        cluster = diff(writes_after, writes_before)
        cluster_settled = diff(writes_settled, writes_before)
        steps = max(done * len(STEPS), 1)
        writes = total(own, WRITE_VERBS)
        print()
        print(f"Rollouts                      {args.count} ({done} completed)")
        print(f"controller                    Argo Rollouts {version}")
        print(f"client QPS / burst            {args.qps or 'default'} / {args.burst or 'default'}")
        print(f"wall time to all Healthy      {wall:.1f} s")
        print(f"API writes per step           {writes / steps:.2f}")
        print(f"API writes by kind            {by_kind(own, WRITE_VERBS)}")
        print(f"API answers not 2xx           {errors}")
        print(f"API reads per step            {total(own, READ_VERBS) / steps:.2f}")
        print(f"API reads by kind             {by_kind(own, READ_VERBS)}")
        print(f"reconciles per step           {reconciles / steps:.2f}")
        print(f"controller RSS idle / at rest {rss_empty:.0f} / {rss_rest:.0f} MB")
        print(f"controller peak RSS           {rss:.0f} MB")
        print(f"controller CPU seconds        {cpu:.1f} s")
        cluster_seconds = print_cluster_cpu(cluster_before, cluster_after)
        print_cluster_writes(cluster, steps)
        busy = print_kcm_queues(queues_before, queues_after, steps, wall, launcher)
        print()
        print(f"settled                       {settled_after:.1f} s after all Healthy")
        print(
            f"API writes per step, settled  {total(own_settled, WRITE_VERBS) / steps:.2f} "
            f"({total(late, WRITE_VERBS)} sent after all Healthy: {by_kind(late, WRITE_VERBS)})"
        )
        print(f"API answers not 2xx, settled  {errors_settled}")
        settled_writes = sum(cluster_settled.values())
        print(
            f"cluster writes per step, set. {settled_writes / steps:.2f} ({settled_writes} in all)"
        )
        print(f"controller log                {controller.log_path}")
        return {
            "controller": f"argo {version}",
            "count": args.count,
            "completed": done,
            "wall": wall,
            "cpu": cpu,
            "reconciles_per_step": reconciles / steps,
            "writes_per_step": writes / steps,
            "writes_per_step_settled": total(own_settled, WRITE_VERBS) / steps,
            "peak_rss": rss,
            "rss_rest": rss_rest,
            "cluster_writes_per_step": sum(cluster.values()) / steps,
            "cluster_cpu": cluster_seconds,
            "cluster_writes_per_step_settled": settled_writes / steps,
            **busy,
        }
    finally:
        controller.stop()
        with contextlib.suppress(Exception):  # the cluster may be gone
            subprocess.run(
                [*kubectl, "delete", "namespace", ns, "--wait=false"],
                capture_output=True,
                timeout=30,
            )


# -- the side by side ----------------------------------------------------------------------

COLUMNS = [
    # (figure, label, format)
    ("wall", "wall to all Healthy (s)", "{:.1f}"),
    ("cpu", "operator CPU (s)", "{:.1f}"),
    ("reconciles_per_step", "reconciles per step", "{:.2f}"),
    ("writes_per_step", "operator writes per step", "{:.2f}"),
    ("peak_rss", "peak RSS (MB)", "{:.0f}"),
    ("cluster_writes_per_step", "cluster writes per step", "{:.2f}"),
    ("cluster_cpu", "cluster CPU (s)", "{:.1f}"),
    ("deployment_busy", "Deployment controller busy (workers of {workers})", "{:.1f}"),
    ("replicaset_busy", "ReplicaSet controller busy (workers of {workers})", "{:.1f}"),
]
KCM_DEFAULT_WORKERS = 5
"""The controller manager's own default for both controllers' workers."""


def one_run(which: str, args: argparse.Namespace, workdir: Path, n: int) -> dict[str, Any]:
    """One run of Ramp (``bench/rollouts.py``) or Argo (this script), each on a fresh
    cluster of its own, as a subprocess; its output goes to a log, its figures come back."""
    out = workdir / f"{n:02d}-{which}.json"
    log = workdir / f"{n:02d}-{which}.log"
    common = ["--count", str(args.count), "--timeout", str(args.timeout), "--json", str(out)]
    if args.max_unavailable is not None:
        common += ["--max-unavailable", args.max_unavailable]
    if args.controller_workers is not None:
        common += ["--controller-workers", str(args.controller_workers)]
    if which == "ramp":
        argv = [sys.executable, str(BENCH / "rollouts.py"), *common]
        argv += [f"--operator-arg={arg}" for arg in args.ramp_arg or []]
    else:
        argv = [sys.executable, str(BENCH / "compare_argo.py"), *common]
        argv += ["--controller", args.controller, "--crds", args.crds, "--loglevel", args.loglevel]
        argv += ["--qps", f"{args.qps:g}"] if args.qps is not None else []
        argv += ["--burst", str(args.burst)] if args.burst is not None else []
    print(f"run {n}: {which} ({log})", flush=True)
    with log.open("wb") as sink:
        code = subprocess.run(argv, stdout=sink, stderr=subprocess.STDOUT).returncode
    if code != 0 or not out.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise SystemExit(f"the {which} run failed (exit {code}):\n{tail}")
    figures: dict[str, Any] = json.loads(out.read_text())
    shown = ", ".join(f"{key} {_shown(fmt, figures.get(key))}" for key, _, fmt in COLUMNS)
    print(f"run {n}: {which}: {shown}", flush=True)
    return figures


def _shown(fmt: str, value: float | None) -> str:
    return "-" if value is None else fmt.format(value)


def ratio_rows(
    pairs: list[tuple[dict[str, Any], dict[str, Any]]], workers: int = KCM_DEFAULT_WORKERS
) -> list[str]:
    """Markdown rows: each figure of Ramp and Argo per round, and Ramp ÷ Argo; ``workers``:
    the controller manager's workers per controller, for the rows of its queues."""
    rows = ["| | " + " | ".join(f"Ramp / Argo, round {i + 1}" for i in range(len(pairs)))]
    rows[0] += " | Ramp ÷ Argo |"
    rows.append("|---" * (len(pairs) + 2) + "|")
    for key, label, fmt in COLUMNS:
        cells = [f"{_shown(fmt, r.get(key))} / {_shown(fmt, a.get(key))}" for r, a in pairs]
        ratios = [r[key] / a[key] if r.get(key) and a.get(key) else float("nan") for r, a in pairs]
        shown = " / ".join("-" if math.isnan(x) else f"{x:.2f}" for x in ratios)
        label = label.format(workers=workers)
        rows.append(f"| {label} | " + " | ".join(cells) + f" | **{shown}** |")
    return rows


def side_by_side(args: argparse.Namespace) -> int:
    """``--rounds`` rounds of Ramp and Argo, the order alternating; the table of ratios."""
    workdir = Path(tempfile.mkdtemp(prefix="ramp-bench-side-by-side-"))
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = []
    n = 0
    for round_ in range(args.rounds):
        order = ["ramp", "argo"] if round_ % 2 == 0 else ["argo", "ramp"]
        got: dict[str, dict[str, Any]] = {}
        for which in order:
            n += 1
            got[which] = one_run(which, args, workdir, n)
        pairs.append((got["ramp"], got["argo"]))
        print(f"round {round_ + 1} ({' then '.join(order)}) done", flush=True)
    argo = pairs[0][1]["controller"]
    qps = "default" if args.qps is None else f"{args.qps:g}"
    tuned = f"QPS {qps} / burst {args.burst or 'default'}"
    print()
    print(f"{args.count} Rollouts; Ramp against {argo} ({tuned}); runs in {workdir}")
    unavailable = args.max_unavailable or "each its own default (Ramp 0, Argo 25%)"
    print(f"maxUnavailable: {unavailable}")
    print(f"Ramp's operator arguments: {' '.join(args.ramp_arg or []) or 'none'}")
    workers = args.controller_workers or KCM_DEFAULT_WORKERS
    sized = "its default" if args.controller_workers is None else "--controller-workers"
    print(f"controller manager: {workers} Deployment and {workers} ReplicaSet workers ({sized})")
    print(
        "rounds: "
        + ", ".join(
            "Ramp then Argo" if i % 2 == 0 else "Argo then Ramp" for i in range(args.rounds)
        )
    )
    for row in ratio_rows(pairs, workers):
        print(row)
    settled = [f"{a['writes_per_step_settled']:.2f}" for _, a in pairs]
    print(f"Argo's writes per step once settled: {' / '.join(settled)}")
    return 0


NETNS_ENV = "RAMP_BENCH_PRIVATE_NETWORK"


def private_network() -> None:
    """Run the rest of this script in a network namespace of its own, with only a loopback
    interface: Argo's controller has no flag for the address of its metrics and health
    servers and listens on every interface; in here "every interface" is this loopback,
    which nothing outside the namespace reaches. The cluster is started in here too."""
    if os.environ.get(NETNS_ENV) == "1":
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        return
    unshare = ["unshare", "--net"] + ([] if os.geteuid() == 0 else ["--map-root-user"])
    env = {**os.environ, NETNS_ENV: "1"}
    os.execvpe(unshare[0], [*unshare, "--", sys.executable, *sys.argv], env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--controller",
        default=str(ARGO_BIN / "rollouts-controller"),
        help="Argo's rollouts-controller binary (default: bench/argo-build.sh's)",
    )
    parser.add_argument(
        "--crds",
        default=str(ARGO_BIN / "crds"),
        help="Argo's CRD manifest, or a folder of them (default: bench/argo-build.sh's)",
    )
    parser.add_argument("--count", type=int, default=10)
    parser.add_argument(
        "--max-unavailable",
        metavar="N|P%",
        help="the Rollouts' strategy.canary.maxUnavailable, the same for both controllers "
        "(default: each its own, Ramp 0 and Argo 25%%)",
    )
    parser.add_argument(
        "--controller-workers",
        type=int,
        metavar="N",
        help="the local cluster's controller manager runs N workers in its Deployment and "
        "in its ReplicaSet controller, for both controllers' runs (default: its own, 5)",
    )
    parser.add_argument(
        "--ramp-arg",
        action="append",
        metavar="ARG",
        help="with --with-ramp: an argument of Ramp's operator (repeatable): "
        "--ramp-arg=--children=replicasets",
    )
    parser.add_argument("--qps", type=float, help="the controller's --qps (its default: 40)")
    parser.add_argument("--burst", type=int, help="the controller's --burst (its default: 80)")
    parser.add_argument("--loglevel", default="info", help="the controller's --loglevel")
    parser.add_argument("--timeout", type=float, default=900, help="seconds per phase")
    parser.add_argument("--json", metavar="PATH", help="also write the figures to PATH as JSON")
    parser.add_argument(
        "--with-ramp",
        action="store_true",
        help="the side by side: Ramp (bench/rollouts.py) and Argo in alternating order",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="with --with-ramp: rounds of one run each, the order alternating (default 2)",
    )
    args = parser.parse_args()
    for what, path in (("--controller", args.controller), ("--crds", args.crds)):
        if not Path(path).exists():
            raise SystemExit(f"{what} {path} does not exist: build it with bench/argo-build.sh")
    if args.with_ramp:
        return side_by_side(args)
    private_network()
    # SIGTERM (e.g. from `timeout`) cleans up like Ctrl-C: controller and cluster stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    workdir = Path(tempfile.mkdtemp(prefix="ramp-bench-argo-"))
    launcher = None
    try:
        # A kwok Node takes 1000 pods: enough Nodes for every pod plus the surge.
        nodes = max(1, -(-args.count * (REPLICAS + 2) // 1000))
        launcher = Cluster(
            workdir / "cluster",
            nodes=nodes,
            die_with_parent=True,
            controller_workers=args.controller_workers,
        )
        launcher.start()
        figures = run(args, workdir, launcher.kubeconfig, launcher.pids(), launcher)
        if args.json:
            Path(args.json).write_text(json.dumps(figures, indent=1))
    finally:
        if launcher is not None:
            launcher.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
