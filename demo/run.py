#!/usr/bin/env python3
"""``make demo``: Ramp on a local cluster, a good release and a bad one, start to finish.

What it does, in order:

1. starts the local control plane (tests/cluster/launcher.py) in ``--dir`` (default
   ``.cluster``), or uses the one already running there, and applies the CRDs;
2. starts Prometheus (1 s scrapes) and a demo exporter that serves
   ``http_requests_total{namespace,rollout,revision,code}``. The pods are simulated by
   kwok, so the traffic is simulated too, but it follows the real split: a generator
   (tests/prometheus/traffic.py) spreads requests over the *ready endpoints* of the
   Service ``checkout`` (its EndpointSlices, as kube-proxy would), and each pod answers
   with the error ratio of its revision, set in the pod template (annotation
   ``demo.ramp.dev/error-ratio``);
3. starts the operator (``python -m ramp --prometheus-allow <that Prometheus>``, log in
   ``<dir>/operator.log``) and ``kubectl ramp dashboard`` (its URL is printed; it stays
   open while the demo runs, and after it with ``--keep``);
4. creates the Rollout ``checkout`` (10 replicas; steps: 20 %, pause, an ``error-rate``
   analysis on Prometheus, 50 %, pause, 100 %) and its AnalysisTemplate;
5. rolls out **v2**, whose error rate is 0.4 %: every gate passes, it becomes stable;
6. rolls out **v3**, whose error rate is 25 %: the analysis fails, the rollout aborts and
   v2 keeps serving;
7. prints a summary, with the overall error ratio the Service's clients saw while v3 had
   20 % of the pods (about 0.2 * 25 % = 5 %), and stops everything it started (``--keep``
   leaves the cluster, the operator and the dashboard running to explore with
   ``kubectl ramp``; ``make demo-down`` stops them).

With ``--gateway`` (``make demo GATEWAY=1``; on the real node) the canary goes through a
Gateway API HTTPRoute served by a real gateway, Traefik: 3 replicas, weights of 5, 20 and
50 % given exactly, real requests through the gateway counted per version at each weight,
the analysis on the gateway's own metrics (demo/gateway.py).

On a terminal it shows the live view of ``kubectl ramp get checkout --watch``; with
``--plain`` (automatic when stdout is not a terminal, e.g. in CI) it prints progress lines.
Exit status 0 when v2 ended Healthy and v3 Aborted, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))  # the cluster launcher and the Prometheus pieces

from rich.console import Console, Group  # noqa: E402
from rich.live import Live  # noqa: E402
from rich.panel import Panel  # noqa: E402
from rich.text import Text  # noqa: E402

from cluster.launcher import KUBECTL, Cluster, ClusterError, pid_alive, wait_established  # noqa: E402
from cluster.realnode import preexec_in  # noqa: E402
from prometheus.exporter import Exporter  # noqa: E402
from prometheus.fixtures import PrometheusServer  # noqa: E402
from prometheus.traffic import ERROR_ANNOTATION, ServiceTraffic  # noqa: E402
from ramp.api.labels import revision_hash  # noqa: E402
from ramp.cli.client import Kube, RolloutWatch  # noqa: E402
from ramp.cli.facts import outcome, progress_line, recent_events  # noqa: E402
from ramp.cli.preview import load_documents, plan_rollout, render_plan  # noqa: E402
from ramp.cli.render import render, to_text  # noqa: E402

NAMESPACE = "ramp-demo"
ROLLOUT = "checkout"
STATE = "demo.json"
RPS = 200.0
RELEASES = [
    # (label, image, error ratio of its traffic, the outcome expected)
    ("v2", "demo/checkout:v2", 0.004, "Healthy"),
    ("v3", "demo/checkout:v3", 0.25, "Aborted"),
]
V1 = ("v1", "demo/checkout:v1", 0.002)
ERROR_RATIO = (
    'sum(rate(http_requests_total{namespace="{{namespace}}",rollout="{{rollout}}",'
    'revision="{{canaryRevision}}",code=~"5.."}[5s])) / '
    'sum(rate(http_requests_total{namespace="{{namespace}}",rollout="{{rollout}}",'
    'revision="{{canaryRevision}}"}[5s]))'
)


REAL_ERROR_RATIO = (
    '(sum(rate(http_requests_total{namespace="{{namespace}}",rollout="{{rollout}}",'
    'revision="{{canaryRevision}}",code=~"5.."}[5s])) or vector(0)) / '
    'sum(rate(http_requests_total{namespace="{{namespace}}",rollout="{{rollout}}",'
    'revision="{{canaryRevision}}"}[5s]))'
)
"""With ``--real-node``: a real app has no 5xx series before its first error, so a clean
canary is 0, not "no data"."""
REAL_RPS = 50.0


def analysis_template(prometheus_url: str, real: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "ramp.dev/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": "error-rate"},
        "spec": {
            "metrics": [
                {
                    "name": "error-ratio",
                    "interval": "2s",
                    "count": 3,
                    "failureLimit": 0,
                    "inconclusiveLimit": 2,
                    "successCondition": "result < 0.01",
                    "failureCondition": "result >= 0.05",
                    "prometheus": {
                        "address": prometheus_url,
                        "query": REAL_ERROR_RATIO if real else ERROR_RATIO,
                    },
                }
            ]
        },
    }


def rollout_manifest(image: str, error_ratio: float, real: bool = False) -> dict[str, Any]:
    manifest = _rollout_manifest(image, error_ratio)
    if real:  # the demo app on the real node: its ERROR_RATIO, real probes, real metrics
        from realnode_e2e import demo_rollout

        template = demo_rollout(
            ROLLOUT, 10, [], {"VERSION": image.rpartition(":")[2], "ERROR_RATIO": str(error_ratio)}
        )["spec"]["template"]
        manifest["spec"]["template"]["metadata"]["annotations"] = template["metadata"][
            "annotations"
        ]
        manifest["spec"]["template"]["spec"] = template["spec"]
    return manifest


def _rollout_manifest(image: str, error_ratio: float) -> dict[str, Any]:
    return {
        "apiVersion": "ramp.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": ROLLOUT},
        "spec": {
            "replicas": 10,
            "selector": {"matchLabels": {"app": ROLLOUT}},
            "template": {
                "metadata": {
                    "labels": {"app": ROLLOUT},
                    # How the demo app behaves: the share of its answers that are errors.
                    "annotations": {ERROR_ANNOTATION: str(error_ratio)},
                },
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
            "progressDeadlineSeconds": 120,
            "strategy": {
                "canary": {
                    "maxSurge": "25%",
                    "maxUnavailable": 0,
                    "steps": [
                        {"setWeight": 20},
                        {"pause": {"duration": "5s"}},
                        {"analysis": {"templates": [{"templateName": "error-rate"}]}},
                        {"setWeight": 50},
                        {"pause": {"duration": "5s"}},
                        {"setWeight": 100},
                    ],
                }
            },
        },
    }


def template_for(image: str, error_ratio: float, real: bool = False) -> dict[str, Any]:
    template: dict[str, Any] = copy.deepcopy(
        rollout_manifest(image, error_ratio, real)["spec"]["template"]
    )
    return template


SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": ROLLOUT},
    "spec": {"selector": {"app": ROLLOUT}, "ports": [{"port": 80, "targetPort": 8080}]},
}
OVERALL_ERROR_RATIO = (
    f'sum(rate(http_requests_total{{namespace="{NAMESPACE}",rollout="{ROLLOUT}",code=~"5.."}}'
    f'[4s])) / sum(rate(http_requests_total{{namespace="{NAMESPACE}",rollout="{ROLLOUT}"}}[4s]))'
)


class Demo:
    def __init__(self, args: argparse.Namespace) -> None:
        self.dir = Path(args.dir).resolve()
        self.plain = args.plain or not sys.stdout.isatty() or bool(os.environ.get("CI"))
        self.keep = args.keep
        self.timeout = args.timeout
        self.console = Console(no_color=self.plain, highlight=False)
        self.real_node = bool(args.real_node or args.gateway)
        self.gw: Any = None
        """With ``--gateway``: demo/gateway.py's DemoGateway."""
        self.gateway_mode = bool(args.gateway)
        self.cluster = Cluster(self.dir, real_node=self.real_node)
        self.real: Any = None
        """With ``--real-node``: the cluster's namespace, Prometheus and traffic there."""
        self.real_prometheus: Any = None
        self.real_load: Any = None
        self.owns_cluster = False
        self.exporter: Exporter | None = None
        self.prometheus: PrometheusServer | None = None
        self.operator: subprocess.Popen[bytes] | None = None
        self.dashboard: subprocess.Popen[str] | None = None
        self.load: ServiceTraffic | None = None
        self.overall: dict[str, tuple[float, float]] = {}
        """Per release: (overall error ratio measured at weight 20, the split's own)."""
        self.kube: Kube | None = None
        self.started = time.monotonic()
        self.results: dict[str, dict[str, Any]] = {}
        self.seen_events: set[str] = set()

    # -- output ---------------------------------------------------------------------

    def say(self, text: str) -> None:
        stamp = f"[{time.monotonic() - self.started:6.1f}s]"
        if self.plain:
            print(f"{stamp} {Text.from_markup(text).plain}", flush=True)
        else:
            self.console.print(Text(stamp + " ", style="dim") + Text.from_markup(text))

    def show(self, renderable: Any) -> None:
        if self.plain:
            sys.stdout.write(to_text(renderable, 110))
            sys.stdout.flush()
        else:
            self.console.print(renderable)

    # -- setting up -------------------------------------------------------------------

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        proc = subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(self.cluster.kubeconfig), *args],
            input=input,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
        return proc.stdout

    def apply(self, obj: dict[str, Any]) -> None:
        self.kubectl("apply", "-n", NAMESPACE, "-f", "-", input=json.dumps(obj))

    def start_cluster(self) -> None:
        if self.cluster.alive() and self.cluster.ready():
            self.say(f"using the cluster already running in {self.dir}")
        else:
            self.say(f"starting the local Kubernetes control plane in {self.dir} ...")
            self.cluster.start()
            self.owns_cluster = True
            self.say(
                f"cluster ready in {self.cluster.startup_seconds or 0:.1f}s "
                f"(etcd, kube-apiserver, controller-manager, scheduler, kwok"
                f"{'; a real node: kubelet, containerd' if self.real_node else ''})"
            )
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
        wait_established(
            self.cluster.kubeconfig, ["rollouts.ramp.dev", "analysistemplates.ramp.dev"]
        )

    def start_real_prometheus(self) -> str:
        """Prometheus in the cluster's network namespace, scraping the real pods."""
        sys.path.insert(0, str(REPO / "tests" / "e2e"))
        sys.path.insert(0, str(REPO / "tests" / "e2e" / "realnode"))
        from realnode_e2e import RealCluster, RealPrometheus

        from cluster.fixtures import ClusterHandle

        if not self.cluster.load_state().get("real_node"):
            raise RuntimeError(
                f"the cluster running in {self.dir} has no real node: `make demo-down` first"
            )
        handle = ClusterHandle(self.cluster.kubeconfig, self.dir, self.cluster)
        self.real = RealCluster(handle, self.cluster)
        workdir = self.dir / "demo-prometheus"
        shutil.rmtree(workdir, ignore_errors=True)
        self.real_prometheus = RealPrometheus(self.real, workdir)
        self.real_prometheus.start()
        self.say(
            f"Prometheus at {self.real_prometheus.url} in the cluster's network namespace, "
            "scraping the real pods every 1s"
        )
        if self.gateway_mode:
            from gateway import DemoGateway

            self.gw = DemoGateway(self.real, self.dir / "demo-gateway", NAMESPACE, ROLLOUT)
            self.say(self.gw.start(self.real_prometheus))
        return str(self.real_prometheus.url)

    def start_prometheus(self) -> str:
        if self.real_node:
            return self.start_real_prometheus()
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed: run `make prometheus-install`")
        workdir = self.dir / "demo-prometheus"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        self.exporter = Exporter()
        self.prometheus = PrometheusServer(binary, workdir, self.exporter)
        self.prometheus.start()
        self.say(f"Prometheus at {self.prometheus.url}, scraping the demo exporter every 1s")
        return self.prometheus.url

    def start_operator(self, prometheus_url: str) -> None:
        log_path = self.dir / "operator.log"
        log = log_path.open("ab")
        self.operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ramp",
                "--kubeconfig",
                str(self.cluster.kubeconfig),
                "--namespace",
                NAMESPACE,
                "--prometheus-allow",
                prometheus_url,
                "--metrics-port",
                "0",
                "--health-port",
                "0",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            start_new_session=True,
            # with a real node the operator runs in the cluster's namespace (Prometheus)
            preexec_fn=preexec_in(self.real.netns_pid) if self.real is not None else None,
        )
        log.close()
        self.save_state()
        deadline = time.monotonic() + 60
        while "watching" not in log_path.read_text(errors="replace"):
            if self.operator.poll() is not None or time.monotonic() > deadline:
                tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
                raise RuntimeError(f"the operator did not start:\n{tail}")
            time.sleep(0.2)
        self.say(f"operator running (pid {self.operator.pid}, log {log_path})")

    def start_dashboard(self) -> None:
        """``kubectl ramp dashboard`` on the demo's namespace; its URL is printed."""
        started = time.monotonic()
        self.dashboard = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ramp.cli",
                "--kubeconfig",
                str(self.cluster.kubeconfig),
                "-n",
                NAMESPACE,
                "dashboard",
                "--port",
                "0",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=REPO,
            start_new_session=True,
        )
        self.save_state()
        assert self.dashboard.stdout is not None
        line = self.dashboard.stdout.readline().strip()
        url = line.rpartition(": ")[2]
        if not url.startswith("http://127.0.0.1:"):
            raise RuntimeError(f"the dashboard did not start: {line!r}")
        self.say(
            f"[bold]dashboard[/bold]: {url}  (ready in {time.monotonic() - started:.1f}s; "
            "open it to watch the rollouts, plots and buttons)"
        )

    def save_state(self) -> None:
        state = {
            "operator": self.operator.pid if self.operator else None,
            "dashboard": self.dashboard.pid if self.dashboard else None,
            "owns_cluster": self.owns_cluster,
        }
        (self.dir / STATE).write_text(json.dumps(state))

    def fresh_namespace(self) -> None:
        if self.kubectl("get", "namespace", NAMESPACE, "--ignore-not-found", "-o", "name"):
            self.say(f"deleting namespace {NAMESPACE} left by an earlier demo ...")
            self.kubectl("delete", "namespace", NAMESPACE, "--wait=true", "--timeout=90s")
        self.kubectl("create", "namespace", NAMESPACE)
        from kubernetes import config

        api_client = config.new_client_from_config(config_file=str(self.cluster.kubeconfig))
        self.kube = Kube(api_client, NAMESPACE)
        self.apply(SERVICE)
        if self.gw is not None:
            for obj in self.gw.objects(lambda name: copy.deepcopy(SERVICE)):
                self.apply(obj)
            return  # the traffic starts once v1 serves (run)
        if self.real is not None:
            from realnode_e2e import Traffic

            self.real_load = Traffic(
                self.real.pool, api_client, NAMESPACE, ROLLOUT, REAL_RPS, 1800, 100_000
            ).start()
            self.say(
                f"traffic: {REAL_RPS:.0f} real requests/s to Service {ROLLOUT}'s ready "
                "endpoints (the demo app's pods on the real node)"
            )
            return
        assert self.exporter is not None
        self.load = ServiceTraffic(api_client, self.exporter, NAMESPACE, ROLLOUT, ROLLOUT, RPS)
        self.load.start()
        self.say(
            f"traffic: {RPS:.0f} requests/s to Service {ROLLOUT}, spread over its ready "
            "endpoints; each pod answers with its revision's error ratio"
        )

    # -- the story -----------------------------------------------------------------------

    def measure_overall(self, label: str) -> None:
        """The overall error ratio the Service's clients see now (a 4 s window)."""
        if self.prometheus is None or self.load is None or label in self.overall:
            return
        expected = self.load.expected_error_ratio()
        with contextlib.suppress(Exception):
            values = [v for _, v in self.prometheus.query(OVERALL_ERROR_RATIO)]
            if values and expected is not None:
                self.overall[label] = (values[0], expected)

    def follow(
        self, label: str, revision: str, measured: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """Show the rollout until it settles; the final Rollout object. The measurements
        of the revision seen on the way are added to ``measured``."""
        assert self.kube is not None
        watcher = RolloutWatch(self.kube, ROLLOUT).start()
        deadline = time.monotonic() + self.timeout
        seen_events = self.seen_events
        last_line = ""
        final: dict[str, Any] = {}
        live: Live | None = None
        if not self.plain:
            live = Live(console=self.console, auto_refresh=False, transient=True)
            live.start()
        try:
            while time.monotonic() < deadline:
                watcher.changed.wait(2)
                time.sleep(0.05)
                watcher.changed.clear()
                rollout, deployments, events = watcher.snapshot()
                if rollout is None:
                    continue
                final = rollout
                status = rollout.get("status") or {}
                if live is not None:
                    title = f"kubectl ramp get {ROLLOUT} --watch   ·   rolling out {label}"
                    now = datetime.now(UTC)
                    view = render(rollout, deployments, events, now, compact=self.console.width - 4)
                    live.update(Panel(view, title=title, border_style="cyan"), refresh=True)
                else:
                    line = progress_line(rollout)
                    if line != last_line:
                        self.say(f"{label} {line}")
                        last_line = line
                    for e in recent_events(events, limit=50):
                        key = str(e["metadata"]["name"])
                        if key not in seen_events:
                            seen_events.add(key)
                            self.say(f"    event {e.get('reason')}: {e.get('message')}")
                if self.gw is not None:
                    said = self.gw.observe(label, status, time.monotonic())
                    if said:
                        self.say(f"{label} {said}")
                elif (
                    status.get("canaryRevision") == revision and status.get("currentStepIndex") == 2
                ):
                    self.measure_overall(label)  # the 5 s pause at 20 % just ended
                for m in status.get("measurements") or []:
                    key = f"{m.get('metric')}@{m.get('time')}"
                    if m.get("revision") in (None, revision) and key not in measured:
                        measured[key] = m
                settled = outcome(rollout)
                if settled == "Healthy" and status.get("stableRevision") == revision:
                    break
                if settled in ("Aborted", "Degraded") and status.get("canaryRevision") == revision:
                    # Wait for the abort to finish: the stable back at full count first.
                    replicas = int((rollout.get("spec") or {}).get("replicas") or 0)
                    if (
                        status.get("stableReadyReplicas") == replicas
                        and not status.get("canaryReplicas")
                    ) or settled == "Degraded":
                        break
            else:
                self.say(f"{label}: did not settle within {self.timeout:.0f}s")
        finally:
            watcher.stop()
            if live is not None:
                live.stop()
        if not self.plain and final:
            rollout, deployments, events = watcher.snapshot()
            self.show(render(rollout or final, deployments, events, datetime.now(UTC)))
        return final

    @property
    def replicas(self) -> int:
        return int(self.manifest(V1[1], V1[2])["spec"]["replicas"])

    def template(self, url: str) -> dict[str, Any]:
        """The AnalysisTemplate ``error-rate`` (the gateway's metrics with ``--gateway``)."""
        if self.gw is not None:
            return dict(self.gw.template(url))
        return analysis_template(url, self.real_node)

    def manifest(self, image: str, error_ratio: float) -> dict[str, Any]:
        manifest = rollout_manifest(image, error_ratio, self.real_node)
        return self.gw.shape(manifest) if self.gw is not None else manifest

    def release(self, label: str, image: str, error_ratio: float, expected: str) -> None:
        revision = revision_hash(self.manifest(image, error_ratio)["spec"]["template"])
        how = "ERROR_RATIO of the demo app" if self.real_node else f"{ERROR_ANNOTATION}"
        self.say(
            f"[bold]{label}[/bold]: {image} (revision {revision}), whose pods answer "
            f"{error_ratio:.1%} of requests with errors ({how} in the template)"
        )
        self.say(f"$ kubectl apply -n {NAMESPACE} -f checkout-{label}.yaml")
        self.apply(self.manifest(image, error_ratio))
        began = time.monotonic()
        measured: dict[str, dict[str, Any]] = {}
        final = self.follow(label, revision, measured)
        status = final.get("status") or {}
        self.results[label] = {
            "image": image,
            "revision": revision,
            "expected": expected,
            "phase": status.get("phase"),
            "stable": status.get("stableRevision"),
            "seconds": time.monotonic() - began,
            "status": status,
            "measurements": list(measured.values()),
        }

    def summary(self) -> bool:
        lines = []
        ok = True
        for label, r in self.results.items():
            status = r["status"]
            phase = r["phase"]
            if r["expected"] == "Healthy":
                good = phase == "Healthy" and r["stable"] == r["revision"]
                values = [f"{number(m.get('value'))} {m.get('verdict')}" for m in r["measurements"]]
                detail = f"promoted to stable in {r['seconds']:.0f}s"
                if values:
                    metric = r["measurements"][0].get("metric")
                    detail += f"; gate {metric}: {', '.join(values)}"
                lines.append(f"{label} ({r['revision']}): {phase} - {detail}")
            else:
                good = phase == "Aborted" and status.get("abortedRevision") == r["revision"]
                fails = [m for m in r["measurements"] if m.get("verdict") == "Fail"]
                if fails:
                    m = fails[-1]
                    metric = str(m.get("metric"))
                    why = str(m.get("message") or "").removeprefix(f"{metric}: ")
                    detail = f"{metric} = {number(m.get('value'))} (Fail: {why})"
                else:
                    detail = status.get("abortMessage") or status.get("message") or ""
                lines.append(
                    f"{label} ({r['revision']}): {phase} after {r['seconds']:.0f}s - "
                    f"{detail}; stable {status.get('stableRevision')} serves "
                    f"{status.get('stableReadyReplicas', 0)}/{self.replicas} again"
                )
            ok = ok and good
        for label, (measured, expected) in self.overall.items():
            lines.append(
                f"{label} at weight 20: the Service's clients saw {measured:.1%} errors "
                f"overall (the split's own: {expected:.1%})"
            )
        if self.gw is not None:
            lines.extend(self.gw.summary())
        title = "Summary" + ("" if ok else " (NOT AS EXPECTED)")
        if self.plain:
            print(f"\n{title}", flush=True)
            for line in lines:
                print(f"  {line}", flush=True)
        else:
            body = Group(*[Text(line) for line in lines])
            self.console.print(Panel(body, title=title, border_style="green" if ok else "red"))
        return ok

    def run(self) -> int:
        self.dir.mkdir(parents=True, exist_ok=True)
        stop_leftovers(self.dir, cluster=False)
        self.start_cluster()
        self.save_state()
        url = self.start_prometheus()
        self.start_operator(url)
        self.start_dashboard()
        self.fresh_namespace()
        template = self.template(url)
        self.apply(template)
        v1 = self.manifest(V1[1], V1[2])
        rollouts, templates = load_documents([template, v1])
        self.say("the plan of the demo Rollout (kubectl ramp plan -f <file>):")
        self.show(render_plan(plan_rollout(rollouts[0], templates)))
        self.apply(v1)
        self.say(f"created Rollout {NAMESPACE}/{ROLLOUT} with {V1[1]} (first revision: stable)")
        self.wait_healthy()
        if self.gw is not None:
            self.say(self.gw.start_traffic())
        for label, image, ratio, expected in RELEASES:
            self.release(label, image, ratio, expected)
        ok = self.summary()
        if self.keep:
            print(
                f"\nLeft running (stop with `make demo-down`):\n"
                f"  export KUBECONFIG={self.cluster.kubeconfig}\n"
                f"  kubectl ramp -n {NAMESPACE} get {ROLLOUT} --watch   # in another terminal\n"
                f"  kubectl ramp -n {NAMESPACE} undo {ROLLOUT}    # template back to v2\n"
                f"  the dashboard stays at the URL above\n"
                "(Prometheus and the exporter stopped with the demo: a new analysis pauses "
                "on Error verdicts.)\n",
                flush=True,
            )
        return 0 if ok else 1

    def wait_healthy(self) -> None:
        assert self.kube is not None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                rollout = self.kube.get(ROLLOUT)
                if outcome(rollout) == "Healthy":
                    self.say(f"v1 {progress_line(rollout)}")
                    return
            time.sleep(0.3)
        raise RuntimeError("the first revision did not become Healthy within 60s")

    def stop(self) -> None:
        if self.load is not None:
            self.load.stop()
        if self.real_load is not None:
            self.real_load.stop()
        if self.gw is not None:
            self.gw.stop()
        if self.real_prometheus is not None:
            self.real_prometheus.stop()
        if self.real is not None:
            self.real.pool.shutdown()
        if self.dashboard is not None and not self.keep:
            stop_process(self.dashboard.pid)
            self.dashboard.wait(timeout=10)
            self.dashboard = None
        if self.operator is not None and not self.keep:
            stop_process(self.operator.pid)
            self.operator.wait(timeout=10)
            self.operator = None
        if self.prometheus is not None:
            self.prometheus.stop()
        if self.exporter is not None:
            self.exporter.stop()
        if self.owns_cluster and not self.keep:
            self.cluster.stop()
            self.say("stopped the cluster, the operator and Prometheus")
        elif not self.keep:
            self.say("stopped the operator and Prometheus (the cluster was already running)")
        if not self.keep:
            (self.dir / STATE).unlink(missing_ok=True)


def number(value: Any) -> str:
    """A measured value, short: ``0.004000000000000002`` -> ``0.004``."""
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


def stop_process(pid: int) -> None:
    """SIGTERM the process group of ``pid`` (one we started), SIGKILL after 10 s."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)
        deadline = time.monotonic() + wait
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not pid_alive(pid):
            return


def _is_our_operator(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"ramp" in cmdline and b"--prometheus-allow" in cmdline


def _is_our_dashboard(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"ramp.cli" in cmdline and b"dashboard" in cmdline


def stop_leftovers(directory: Path, cluster: bool) -> bool:
    """Stop what an earlier demo left (its operator; the cluster too when asked)."""
    state_file = directory / STATE
    stopped = False
    if state_file.exists():
        with contextlib.suppress(ValueError, OSError):
            state = json.loads(state_file.read_text())
            pid = state.get("operator")
            if pid and pid_alive(pid) and _is_our_operator(pid):
                stop_process(int(pid))
                stopped = True
            pid = state.get("dashboard")
            if pid and pid_alive(pid) and _is_our_dashboard(pid):
                stop_process(int(pid))
                stopped = True
        state_file.unlink(missing_ok=True)
    if cluster:
        launcher = Cluster(directory)
        if launcher.alive():
            launcher.stop()
            stopped = True
    return stopped


@contextlib.contextmanager
def terminate_as_exit() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C, so that everything started is stopped."""
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="demo/run.py", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--dir", default=".cluster", help="cluster folder (default .cluster)")
    parser.add_argument(
        "--plain", action="store_true", help="progress lines instead of the live view"
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the cluster and the operator running"
    )
    parser.add_argument(
        "--down", action="store_true", help="stop what a demo left running, then exit"
    )
    parser.add_argument(
        "--timeout", type=float, default=180.0, help="seconds each release may take (180)"
    )
    parser.add_argument(
        "--real-node",
        action="store_true",
        default=os.environ.get("RAMP_REAL_NODE", "") not in ("", "0"),
        help="real pods of the demo app on a real node, real requests, real metrics "
        "(docs/real-node.md; default: $RAMP_REAL_NODE)",
    )
    parser.add_argument(
        "--gateway",
        action="store_true",
        default=os.environ.get("RAMP_GATEWAY", "") not in ("", "0"),
        help="the canary through a Gateway API HTTPRoute served by a real gateway (Traefik; "
        "implies --real-node; docs/gateway-api.md; default: $RAMP_GATEWAY)",
    )
    args = parser.parse_args(argv)
    if args.down:
        directory = Path(args.dir).resolve()
        stopped = stop_leftovers(directory, cluster=True)
        print("ramp demo: stopped" if stopped else "ramp demo: nothing was running")
        return 0
    demo = Demo(args)
    with terminate_as_exit():
        try:
            return demo.run()
        except (ClusterError, RuntimeError) as exc:
            print(f"ramp demo: {exc}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 130
        finally:
            demo.stop()


if __name__ == "__main__":
    sys.exit(main())
