"""Blue-green pre-promotion analysis with a ``compare`` metric on the real Prometheus: green
judged against blue (``{{revision}}`` per side, ``minCount``), as a canary is judged against
its stable. Both revisions get real requests over the ready endpoints of a Service that
selects all of the Rollout's pods (what a smoke test through the preview would send)."""

from __future__ import annotations

from ramp_e2e import Rollouts
from test_analysis import Serve, release, serve, versus_stable_template
from test_bluegreen import bg_manifest, services

from prometheus.fixtures import PrometheusServer
from prometheus.traffic import ERROR_ANNOTATION

__all__ = ["serve"]  # the fixture, used by name


def test_green_judged_against_blue_aborts_when_worse_and_switches_when_not(
    rollouts: Rollouts, prom: PrometheusServer, serve: Serve
) -> None:
    name = "bgcmp"
    rollouts.custom.create_namespaced_custom_object(
        "ramp.dev",
        "v1alpha1",
        rollouts.ns,
        "analysistemplates",
        versus_stable_template(prom.url, min_count=50),
    )
    services(rollouts, name)
    manifest = bg_manifest(
        name,
        previewReplicaCount=4,
        prePromotionAnalysis={
            "templates": [{"templateName": "versus-stable"}],
            "args": [{"name": "margin", "value": "0.02"}],
        },
    )
    manifest["spec"]["template"]["metadata"]["annotations"] = {ERROR_ANNOTATION: "0.01"}
    rollouts.create(manifest)
    blue = rollouts.wait_healthy(name, 4)["stableRevision"]
    serve(name, 200)  # 100 rps for each side once green's 4 pods are ready endpoints

    # Green worse than blue by more than maxIncrease: abort, the active Service never moved.
    release(rollouts, name, "ramp-test/app:v2", 0.08)
    status = rollouts.wait_phase(name, "Aborted", timeout=60)
    assert status["abortReason"] == "AnalysisFailed", status
    assert "versus-stable" in status["message"], status["message"]
    assert status["stableRevision"] == blue
    assert status["blueGreen"]["activeRevision"] == blue
    assert not any(e[1] == "Switched" for e in rollouts.events(name))

    # Green as good as blue: the comparison passes and the switch happens.
    green = release(rollouts, name, "ramp-test/app:v3", 0.01)
    status = rollouts.wait(
        name, "green active", lambda s: s.get("stableRevision") == green, timeout=90
    )
    assert status["blueGreen"]["activeRevision"] == green
    verdicts = [m["verdict"] for m in status.get("measurements") or []]
    assert verdicts and set(verdicts) == {"Pass"}, status.get("measurements")
