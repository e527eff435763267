"""Blue-green on the real cluster: real Services, the EndpointSlices kube-controller-manager
publishes for kwok pods, the real Prometheus for the analyses.

A sampler reads the active Service every 0.25 s — its selector and the ready endpoints of
its EndpointSlices, by revision (pods are named after their revision's Deployment) — so
the tests check what traffic would have seen, not only what the status says."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from ramp_e2e import Rollouts, Sampling, rollout_manifest, wait_for
from test_analysis import error_metric, next_revision

from prometheus.fixtures import PrometheusServer

REV = "ramp.dev/revision"


def bg_manifest(name: str, replicas: int = 4, **bg: Any) -> dict[str, Any]:
    manifest = rollout_manifest(name, replicas=replicas, deadline=bg.pop("deadline", 60))
    manifest["spec"]["strategy"] = {
        "blueGreen": {
            "activeService": f"{name}-active",
            "previewService": f"{name}-preview",
            "previewReplicaCount": 2,
            "scaleDownDelaySeconds": 3,
            "abortScaleDownDelaySeconds": 2,
            **bg,
        }
    }
    return manifest


def services(rollouts: Rollouts, name: str) -> None:
    core = client.CoreV1Api(rollouts.custom.api_client)
    for svc in (f"{name}-active", f"{name}-preview"):
        core.create_namespaced_service(
            rollouts.ns,
            {
                "metadata": {"name": svc},
                "spec": {"selector": {"app": name}, "ports": [{"port": 80}]},
            },
        )


@dataclass
class Sample:
    at: float
    selector: str | None
    endpoints: dict[str, int]
    preview: str | None
    replicas: dict[str, int]
    ready: dict[str, int]


class Sampler(Sampling[Sample]):
    """Every 0.25 s: the active Service's selector and ready endpoints by revision, the
    preview's selector, each revision's replicas and ready pods."""

    def __init__(self, rollouts: Rollouts, name: str) -> None:
        super().__init__()
        self.rollouts, self.name = rollouts, name
        self.core = client.CoreV1Api(self.rollouts.custom.api_client)
        self.discovery = client.DiscoveryV1Api(self.rollouts.custom.api_client)

    def endpoints(self, service: str) -> dict[str, int]:
        slices = self.discovery.list_namespaced_endpoint_slice(
            self.rollouts.ns, label_selector=f"kubernetes.io/service-name={service}"
        )
        out: dict[str, int] = {}
        for s in slices.items:
            for e in s.endpoints or []:
                if e.conditions is not None and e.conditions.ready is False:
                    continue
                pod = e.target_ref.name if e.target_ref else ""
                # <rollout>-<revision>-<replicaset hash>-<suffix>
                revision = pod.removeprefix(f"{self.name}-").split("-")[0]
                out[revision] = out.get(revision, 0) + 1
        return out

    def sample(self) -> Sample:
        active = self.core.read_namespaced_service(f"{self.name}-active", self.rollouts.ns)
        preview = self.core.read_namespaced_service(f"{self.name}-preview", self.rollouts.ns)
        deps = self.rollouts.deployments(self.name)
        return Sample(
            time.monotonic(),
            (active.spec.selector or {}).get(REV),
            self.endpoints(f"{self.name}-active"),
            (preview.spec.selector or {}).get(REV),
            {r: d.spec.replicas or 0 for r, d in deps.items()},
            {r: d.status.ready_replicas or 0 for r, d in deps.items()},
        )


def test_switch_waits_for_green_endpoints_with_no_gap_and_blue_leaves_after_the_delay(
    rollouts: Rollouts, prom: PrometheusServer
) -> None:
    name = "bg"
    services(rollouts, name)
    pre = {"metrics": [error_metric(prom.url, count=2)]}
    rollouts.create(bg_manifest(name, prePromotionAnalysis=pre))
    blue = rollouts.wait_healthy(name, 4)["stableRevision"]
    green = next_revision(rollouts, name, "ramp-test/app:v2")
    prom.exporter.set_rate(rollouts.ns, name, green, rps=100, error_ratio=0.0)
    time.sleep(3)
    with Sampler(rollouts, name) as sampler:
        wait_for(
            "blue serves through the active Service",
            lambda: sampler.samples and sampler.samples[-1].endpoints.get(blue) == 4,
            timeout=30,
        )
        rollouts.set_image(name, "ramp-test/app:v2")
        rollouts.wait(
            name,
            "switched",
            lambda s: (s.get("blueGreen") or {}).get("activeRevision") == green,
            timeout=90,
        )
        rollouts.wait(
            name,
            "blue scaled down",
            lambda s: (
                not (s.get("blueGreen") or {}).get("warmRevision") and s.get("phase") == "Healthy"
            ),
            timeout=60,
        )
        time.sleep(1)
    samples = [s for s in sampler.samples if s.selector in (blue, green)]
    assert samples, "no sample"
    # No moment without ready active endpoints.
    gaps = [s for s in samples if sum(s.endpoints.values()) == 0]
    assert not gaps, gaps[:3]
    # The preview named green only once green had ready pods.
    early = [s for s in samples if s.preview == green and s.ready.get(green, 0) == 0]
    assert not early, early[:3]
    # The switch: the first sample whose selector names green.
    switch = next(s for s in samples if s.selector == green)
    assert switch.replicas.get(green) == 4 and switch.ready.get(green) == 4
    # Until then green had been at its preview size, or was growing to full size.
    assert all(s.selector == blue for s in samples if s.ready.get(green, 0) < 4)
    # After the switch settles (2 s), only green's endpoints are in the active Service.
    settled = [s for s in samples if s.at > switch.at + 2]
    assert all(set(s.endpoints) == {green} for s in settled), settled[:3]
    # Blue goes only after the delay (3 s) and once its endpoints left the active Service.
    gone = next(s for s in samples if s.replicas.get(blue, 4) == 0)
    assert gone.at - switch.at >= 3 - 0.5
    last_blue = max((s.at for s in samples if s.endpoints.get(blue)), default=0.0)
    assert last_blue <= gone.at
    ready_at = next(s.at for s in samples if s.ready.get(green) == 4 and s.replicas.get(green) == 4)
    status = rollouts.status(name)
    passes = [m for m in status.get("measurements") or [] if m["verdict"] == "Pass"]
    assert len(passes) >= 2
    print(
        f"\nblue-green: green at full size and ready -> switch {switch.at - ready_at:.2f}s; "
        f"switch -> blue at zero {gone.at - switch.at:.2f}s; samples {len(samples)}, "
        f"moments without active endpoints: {len(gaps)}"
    )


def test_a_green_that_never_becomes_ready_aborts_and_the_active_never_moves(
    rollouts: Rollouts,
) -> None:
    name = "bgbad"
    services(rollouts, name)
    rollouts.create(bg_manifest(name, deadline=6))
    blue = rollouts.wait_healthy(name, 4)["stableRevision"]
    with Sampler(rollouts, name) as sampler:
        rollouts.set_template_labels(name, {"ramp.dev/test-fault": "never-ready"})
        status = rollouts.wait_phase(name, "Aborted", timeout=60)
        green = status["canaryRevision"]
        assert status["abortReason"] == "ProgressDeadlineExceeded"
        wait_for(
            "green removed after abortScaleDownDelaySeconds",
            lambda: rollouts.deployments(name)[green].spec.replicas == 0,
            timeout=30,
        )
    assert all(s.selector == blue for s in sampler.samples), "the active Service moved"
    assert all(s.replicas.get(blue) == 4 for s in sampler.samples)


def test_a_failed_post_promotion_analysis_flips_back_to_the_warm_blue(
    rollouts: Rollouts, prom: PrometheusServer
) -> None:
    name = "bgpost"
    services(rollouts, name)
    # The ratio passes through the band between pass and fail while Prometheus' window
    # fills: a few Inconclusive measurements there are tolerated, a Fail is not.
    post = {
        "metrics": [
            error_metric(prom.url, window="2s", interval="1s", count=30, inconclusiveLimit=5)
        ]
    }
    rollouts.create(bg_manifest(name, postPromotionAnalysis=post, scaleDownDelaySeconds=60))
    blue = rollouts.wait_healthy(name, 4)["stableRevision"]
    green = next_revision(rollouts, name, "ramp-test/app:v2")
    prom.exporter.set_rate(rollouts.ns, name, green, rps=100, error_ratio=0.0)
    time.sleep(3)
    with Sampler(rollouts, name) as sampler:
        rollouts.set_image(name, "ramp-test/app:v2")
        rollouts.wait(
            name,
            "switched",
            lambda s: (s.get("blueGreen") or {}).get("switchedAt") is not None,
            timeout=60,
        )
        time.sleep(2)  # a couple of passing measurements
        prom.exporter.set_rate(rollouts.ns, name, green, rps=100, error_ratio=0.3)
        # "Seen": Prometheus' own ratio meets the failure condition (>= 0.05).
        prom.wait_for(
            f'sum(rate(http_requests_total{{revision="{green}",code=~"5.."}}[2s])) / '
            f'sum(rate(http_requests_total{{revision="{green}"}}[2s]))',
            lambda samples: bool(samples) and samples[0][1] >= 0.05,
        )
        seen = time.monotonic()
        wait_for(
            "the active Service back on blue",
            lambda: sampler.samples[-1].selector == blue and sampler.samples[-1].at > seen,
            timeout=30,
            interval=0.05,
        )
        flipped = next(s.at for s in sampler.samples if s.at > seen and s.selector == blue)
        status = rollouts.wait_phase(name, "Aborted", timeout=10)
    assert status["abortReason"] == "AnalysisFailed"
    assert all(s.replicas.get(blue) == 4 for s in sampler.samples), "blue left full size"
    print(
        f"\nblue-green flip-back: {flipped - seen:.2f}s after Prometheus had the error rate "
        "(analysis interval 1s)"
    )
    assert flipped - seen <= 1 + 1 + 0.5  # one interval + 1 s (+ the sampler's period)


def test_promotion_by_hand_and_rollback_inside_the_window_only(rollouts: Rollouts) -> None:
    name = "bghand"
    services(rollouts, name)
    rollouts.create(bg_manifest(name, autoPromotionEnabled=False, scaleDownDelaySeconds=8))
    blue = rollouts.wait_healthy(name, 4)["stableRevision"]
    rollouts.set_image(name, "ramp-test/app:v2")
    status = rollouts.wait_phase(name, "Paused", timeout=60)
    green = status["canaryRevision"]
    assert status["blueGreen"]["waitingFor"] == "waiting for promote"
    time.sleep(2)
    assert rollouts.status(name)["blueGreen"]["activeRevision"] == blue
    rollouts.request(name, "promote")
    rollouts.wait(name, "green stable", lambda s: s.get("stableRevision") == green, timeout=60)
    rollouts.request(name, "rollback")
    status = rollouts.wait_phase(name, "Aborted", timeout=20)
    assert status["stableRevision"] == blue and status["blueGreen"]["activeRevision"] == blue
    # Retry the release; once its window is over, a rollback is refused with a reason.
    rollouts.request(name, "retry")
    rollouts.wait(name, "green waits again", lambda s: s.get("phase") == "Paused", timeout=60)
    rollouts.request(name, "promote")
    rollouts.wait(
        name, "green stable again", lambda s: s.get("stableRevision") == green, timeout=60
    )
    rollouts.wait(
        name,
        "blue no longer warm",
        lambda s: not (s.get("blueGreen") or {}).get("warmRevision"),
        timeout=30,
    )
    rollouts.request(name, "rollback")
    assert rollouts.wait_events(name, "RollbackIgnored", 1)
    assert rollouts.status(name)["blueGreen"]["activeRevision"] == green


def test_scale_before_and_after_the_switch_and_a_third_template(rollouts: Rollouts) -> None:
    name = "bgscale"
    services(rollouts, name)
    rollouts.create(bg_manifest(name, autoPromotionEnabled=False))
    blue = rollouts.wait_healthy(name, 4)["stableRevision"]
    rollouts.set_image(name, "ramp-test/app:v2")
    green = rollouts.wait_phase(name, "Paused", timeout=60)["canaryRevision"]
    scale = rollouts.custom.patch_namespaced_custom_object_scale
    scale("ramp.dev", "v1alpha1", rollouts.ns, "rollouts", name, {"spec": {"replicas": 6}})
    wait_for(
        "active at 6, green at its preview size",
        lambda: rollouts.ready_pods(name) == {blue: 6, green: 2},
        timeout=60,
        describe=lambda: str(rollouts.ready_pods(name)),
    )
    # While paused, a change of counts only waits up to STATUS_THROTTLE (3 s) for company.
    status = rollouts.wait(
        name, "status counts the 6 active pods", lambda s: s.get("replicas") == 6, timeout=15
    )
    assert f"{REV}={blue}" in status["selector"]
    rollouts.set_image(name, "ramp-test/app:v3")
    third = rollouts.wait(
        name,
        "third template",
        lambda s: s.get("canaryRevision") not in (None, green) and s.get("phase") == "Paused",
        timeout=60,
    )["canaryRevision"]
    rollouts.request(name, "promote")
    rollouts.wait(name, "third active", lambda s: s.get("stableRevision") == third, timeout=60)
    scale("ramp.dev", "v1alpha1", rollouts.ns, "rollouts", name, {"spec": {"replicas": 3}})
    wait_for(
        "the active side follows the scale",
        lambda: rollouts.ready_pods(name).get(third) == 3,
        timeout=60,
        describe=lambda: str(rollouts.ready_pods(name)),
    )
