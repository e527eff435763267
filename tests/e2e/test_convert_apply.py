"""``kubectl ramp convert`` output applied to the real cluster: it completes a rollout.

The Argo Rollouts manifests are the convert goldens (``tests/unit/golden/convert``),
converted by the installed ``kubectl-ramp`` as a user runs it. What a user moving to
this cluster would change in the converted YAML, and only that, is changed here, with
``yaml`` as one would with an editor: the namespace, the Prometheus address (the
session's Prometheus instead of the one the Argo docs name) and the durations that
would make a test take minutes (a 5 m pause, a 30 s measurement interval). The image
change is the release; the pods are kwok's, so image names need not exist.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from ramp_e2e import REPO, Rollouts, wait_for
from test_analysis import next_revision

from cluster.fixtures import ClusterHandle
from prometheus.fixtures import PrometheusServer
from ramp import cli

PLUGIN = Path(sys.executable).with_name("kubectl-ramp")
GOLDEN = REPO / "tests" / "unit" / "golden" / "convert"


def ramp(cluster: ClusterHandle, ns: str, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(PLUGIN), "--kubeconfig", str(cluster.kubeconfig), "-n", ns, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    print(f"$ kubectl ramp {' '.join(args)} -> {proc.returncode}\n{proc.stderr}")
    return proc


def refused(cluster: ClusterHandle, ns: str, *args: str) -> str:
    """``kubectl ramp ARGS`` in this process (the same ``main`` the command runs, without
    a second's start-up per call): it must fail with exit 1 and print nothing; its stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["--kubeconfig", str(cluster.kubeconfig), "-n", ns, *args])
    print(f"$ kubectl ramp {' '.join(args)} -> {code}\n{err.getvalue()}")
    assert code == 1 and not out.getvalue(), (code, out.getvalue(), err.getvalue())
    return err.getvalue()


def convert_golden(cluster: ClusterHandle, ns: str, case: str) -> list[dict[str, Any]]:
    """``kubectl ramp convert -f`` on a golden: what the golden says, its warnings on
    stderr, exit 0 when it has none (lossless) and 3 otherwise."""
    proc = ramp(cluster, ns, "convert", "-f", str(GOLDEN / f"{case}.yaml"))
    warnings = (GOLDEN / f"{case}.warnings.txt").read_text().splitlines()
    assert proc.returncode == (3 if warnings else 0), proc.stderr
    assert [w for w in proc.stderr.splitlines() if w.startswith("warning: ")] == warnings
    assert proc.stdout == (GOLDEN / f"{case}.out.yaml").read_text()
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def apply(cluster: ClusterHandle, ns: str, docs: list[dict[str, Any]]) -> None:
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(docs), namespace=ns)


def service(rollouts: Rollouts, name: str, app: str) -> None:
    rollouts.core.create_namespaced_service(
        rollouts.ns,
        {"metadata": {"name": name}, "spec": {"selector": {"app": app}, "ports": [{"port": 80}]}},
    )


def selector(rollouts: Rollouts, name: str) -> str | None:
    svc = rollouts.core.read_namespaced_service(name, rollouts.ns)
    return (svc.spec.selector or {}).get("ramp.dev/revision")


def test_a_converted_canary_with_prometheus_analysis_completes_a_rollout(
    cluster: ClusterHandle, rollouts: Rollouts, prom: PrometheusServer
) -> None:
    ns = rollouts.ns
    docs = convert_golden(cluster, ns, "03-canary-step-analysis-hash")
    rollout = next(d for d in docs if d["kind"] == "Rollout")
    template = next(d for d in docs if d["kind"] == "AnalysisTemplate")
    # The user's edits for this cluster (see the module docstring).
    for doc in docs:
        doc["metadata"]["namespace"] = ns
    steps = rollout["spec"]["strategy"]["canary"]["steps"]
    assert steps[1] == {"pause": {"duration": "5m"}}
    steps[1]["pause"]["duration"] = "1s"
    (metric,) = template["spec"]["metrics"]
    assert metric["interval"] == "30s" and metric["count"] == 4
    metric["interval"] = "1s"
    metric["prometheus"]["address"] = prom.url
    name = rollout["metadata"]["name"]
    for svc in ("guestbook-stable", "guestbook-canary"):  # the Services the user already has
        service(rollouts, svc, "guestbook")

    apply(cluster, ns, docs)
    first = rollouts.wait_healthy(name, 4)["stableRevision"]
    # The existing Service is narrowed once the revision serves, by the same reconcile
    # that writes Healthy (status first, then the pin): waited for, not read at once.
    wait_for("the stable Service pinned", lambda: selector(rollouts, "guestbook-stable") == first)

    # The release: a new image. Its revision serves 100 rps without errors, as Prometheus
    # sees it (the converted query reads `revision="{{canaryRevision}}"`).
    image = "argoproj/rollouts-demo:yellow"
    green = next_revision(rollouts, name, image)
    prom.exporter.set_rate(ns, name, green, rps=100, error_ratio=0.0)
    time.sleep(3)  # a rate window of scrapes
    started = time.monotonic()
    rollouts.set_image(name, image)
    rollouts.wait(
        name,
        "the canary at 20 %",
        lambda s: s.get("canaryRevision") == green and (s.get("currentStepIndex") or 0) >= 1,
    )
    done = rollouts.wait_healthy(name, 4, timeout=90)
    took = time.monotonic() - started
    assert done["stableRevision"] == green
    assert rollouts.step_history(name) == [0, 1, 2, 3]
    passes = [
        m
        for m in done.get("measurements") or []
        if m["verdict"] == "Pass" and m.get("metric") == "error-ratio"
    ]
    assert len(passes) == 4, done.get("measurements")
    assert selector(rollouts, "guestbook-stable") == green
    assert rollouts.ready_pods(name) == {green: 4}
    print(f"\nconverted canary (4 steps, 4 Prometheus measurements) completed in {took:.1f}s")


def test_a_converted_blue_green_completes_a_rollout(
    cluster: ClusterHandle, rollouts: Rollouts
) -> None:
    ns = rollouts.ns
    docs = convert_golden(cluster, ns, "05-bluegreen-extras")
    # 05 carries fields Ramp has no equivalent for (anti-affinity, ...): warned, exit 3.
    (rollout,) = docs
    rollout["metadata"]["namespace"] = ns
    name = rollout["metadata"]["name"]
    bg = rollout["spec"]["strategy"]["blueGreen"]
    assert bg["autoPromotionSeconds"] == 30
    service(rollouts, bg["activeService"], name)
    if bg.get("previewService"):
        service(rollouts, bg["previewService"], name)

    apply(cluster, ns, docs)
    replicas = rollout["spec"]["replicas"]
    blue = rollouts.wait_healthy(name, replicas)["stableRevision"]
    assert selector(rollouts, bg["activeService"]) == blue

    image = rollout["spec"]["template"]["spec"]["containers"][0]["image"]
    image = image.rsplit(":", 1)[0] + ":next"
    started = time.monotonic()
    rollouts.set_image(name, image)
    green = rollouts.wait(
        name,
        "green ready, auto-promotion pending",
        lambda s: str((s.get("blueGreen") or {}).get("waitingFor", "")).startswith(
            "auto-promotion at"
        ),
    )["canaryRevision"]
    # Rather than wait the 30 s: promote, as a user would.
    proc = ramp(cluster, ns, "promote", name)
    assert proc.returncode == 0, proc.stderr
    rollouts.wait(name, "green active", lambda s: s.get("stableRevision") == green)
    done = rollouts.wait_healthy(name, replicas)
    took = time.monotonic() - started
    assert done["blueGreen"]["activeRevision"] == green
    assert selector(rollouts, bg["activeService"]) == green
    print(f"\nconverted blue-green (promoted by hand) completed in {took:.1f}s")


def test_convert_a_live_deployment_and_apply_adopts_it(
    cluster: ClusterHandle, rollouts: Rollouts
) -> None:
    ns, name, r = rollouts.ns, "web", 4
    rollouts.apps.create_namespaced_deployment(
        ns,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name},
            "spec": {
                "replicas": r,
                "selector": {"matchLabels": {"app": name}},
                "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "ramp-test/app:v1"}]},
                },
            },
        },
    )

    def dep() -> client.V1Deployment:
        return rollouts.apps.read_namespaced_deployment(name, ns)

    wait_for("the Deployment ready", lambda: (dep().status.ready_replicas or 0) == r)
    before = dep().metadata.resource_version
    proc = ramp(cluster, ns, "convert", f"deployment/{name}")
    assert proc.returncode == 0, proc.stderr
    assert dep().metadata.resource_version == before  # read-only
    (rollout,) = [d for d in yaml.safe_load_all(proc.stdout) if d]
    assert rollout["spec"]["workloadRef"]["name"] == name
    assert rollout["spec"]["replicas"] == r

    started = time.monotonic()
    cluster.kubectl("apply", "-f", "-", input=proc.stdout, namespace=ns)
    rollouts.wait(
        name,
        "adopted",
        lambda s: (
            (s.get("workload") or {}).get("state") == "Adopted"
            and s.get("phase") == "Healthy"
            and s.get("readyReplicas") == r
        ),
        timeout=90,
    )
    wait_for("the Deployment at 0", lambda: dep().status.replicas in (0, None))
    took = time.monotonic() - started
    d = dep()
    assert d.spec.paused is True and d.spec.replicas == 0
    (revision,) = rollouts.ready_pods(name)
    assert rollouts.ready_pods(name) == {revision: r}
    print(f"\nconvert deployment/{name} applied: adopted in {took:.1f}s")

    # What Ramp runs is not converted again: the adopted Deployment, nor Ramp's child.
    for target, words in (
        (name, f"already adopted by Rollout {name}"),
        (f"{name}-{revision}", f"is a revision of Rollout {name}"),
    ):
        assert words in refused(cluster, ns, "convert", f"deployment/{target}")

    # The template is the Deployment's: kubectl ramp says where to change it.
    err = refused(cluster, ns, "set", "image", name, "app=ramp-test/app:v2")
    assert f"set the image of the Deployment instead (kubectl set image deployment/{name}" in err
    # The converted Rollout's steps carry a change of the Deployment's template.
    container = d.spec.template.spec.containers[0].name
    rollouts.apps.patch_namespaced_deployment(
        name,
        ns,
        {
            "spec": {
                "template": {
                    "spec": {"containers": [{"name": container, "image": "ramp-test/app:v2"}]}
                }
            }
        },
    )
    canary = rollouts.wait(
        name,
        "the canary at 20 % in its 1 m pause",
        lambda s: bool(s.get("canaryRevision")) and s.get("currentStepIndex") == 1,
    )["canaryRevision"]
    proc = ramp(cluster, ns, "promote", name, "--full")
    assert proc.returncode == 0, proc.stderr
    done = rollouts.wait_healthy(name, r)
    assert done["stableRevision"] == canary != revision
    assert rollouts.ready_pods(name) == {canary: r}
    assert dep().spec.replicas == 0
