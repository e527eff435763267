"""Blue-green on the real cluster, across operator crashes and with auto-promotion.

One release is walked with the operator SIGKILLed (and restarted) in each of its phases:
green coming up, waiting for a promote (the promote is requested while the operator is
down), just after the switch (post-promotion analysis on the real Prometheus), during the
scale-down delay (blue warm), and as blue scales down. A watch on the active Service
records every selector it ever had — the switch must happen exactly once — and the
sampler of :mod:`test_bluegreen` checks what traffic would have seen every 0.25 s."""

from __future__ import annotations

import copy
import threading
import time
from datetime import datetime
from typing import Any

from kubernetes import client, watch
from ramp_e2e import OperatorProcess, Rollouts, wait_for
from test_analysis import error_metric
from test_bluegreen import REV, Sampler, bg_manifest, services

from prometheus.fixtures import PrometheusServer
from ramp.api.labels import revision_hash

READY_DELAY = "ramp.dev/test-ready-delay"
DELAY = 24
"""scaleDownDelaySeconds: long enough to cover a restart of the operator after the switch
(4-10 s on a loaded 2-core machine) and the post-promotion analysis, so that the fourth
kill lands while blue is warm."""


class SelectorHistory:
    """Every revision the active Service's selector named, from a watch (no sampling gap:
    a flip and a flip back between two samples would still show)."""

    def __init__(self, rollouts: Rollouts, service: str) -> None:
        self.rollouts, self.service = rollouts, service
        self.values: list[tuple[float, str | None]] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        core = client.CoreV1Api(self.rollouts.custom.api_client)
        while not self.stop.is_set():
            w = watch.Watch()
            try:
                for event in w.stream(
                    core.list_namespaced_service,
                    self.rollouts.ns,
                    field_selector=f"metadata.name={self.service}",
                    timeout_seconds=5,
                ):
                    revision = (event["object"].spec.selector or {}).get(REV)
                    if not self.values or self.values[-1][1] != revision:
                        self.values.append((time.monotonic(), revision))
                    if self.stop.is_set():
                        w.stop()
            except Exception:  # the watch is re-opened; its first event repeats the state
                time.sleep(0.1)

    def revisions(self) -> list[str | None]:
        return [r for _, r in self.values]

    def __enter__(self) -> SelectorHistory:
        self.thread.start()
        wait_for("the selector watch", lambda: self.values, timeout=10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def release(rollouts: Rollouts, name: str, image: str, ready_delay: str) -> str:
    """A new template whose pods become ready ``ready_delay`` after starting; returns its
    revision."""
    template = copy.deepcopy(rollouts.get(name)["spec"]["template"])
    template["spec"]["containers"][0]["image"] = image
    template["metadata"].setdefault("annotations", {})[READY_DELAY] = ready_delay
    rollouts.patch(name, {"spec": {"template": template}})
    return revision_hash(template)


def test_sigkill_in_every_phase_neither_loses_nor_doubles_the_switch(
    rollouts: Rollouts, operator: OperatorProcess, prom: PrometheusServer
) -> None:
    name = "bgkill"
    started = time.monotonic()
    services(rollouts, name)
    post = {
        "metrics": [
            error_metric(prom.url, window="2s", interval="1s", count=2, inconclusiveLimit=5)
        ]
    }
    rollouts.create(
        bg_manifest(
            name,
            autoPromotionEnabled=False,
            postPromotionAnalysis=post,
            scaleDownDelaySeconds=DELAY,
        )
    )
    blue = rollouts.wait_healthy(name, 4)["stableRevision"]
    kills: list[tuple[str, dict[str, Any]]] = []
    down_for = 0.5

    def crash(phase: str, while_down: Any = None) -> dict[str, Any]:
        """SIGKILL the operator, note where the release stood, restart it."""
        operator.kill()
        at = rollouts.status(name)
        at["readyPods"] = rollouts.ready_pods(name)
        kills.append((phase, at))
        if while_down is not None:
            while_down()
        time.sleep(down_for)
        operator.start()
        return at

    def blue_replicas() -> int:
        return rollouts.deployments(name)[blue].spec.replicas or 0

    with SelectorHistory(rollouts, f"{name}-active") as history, Sampler(rollouts, name) as sampler:
        try:
            wait_for(
                "blue serves through the active Service",
                lambda: sampler.samples and sampler.samples[-1].endpoints.get(blue) == 4,
                timeout=30,
            )
            next_green = release(rollouts, name, "ramp-test/app:v2", "3s")
            prom.exporter.set_rate(rollouts.ns, name, next_green, rps=100, error_ratio=0.0)
            # 1. Green coming up: its Deployment exists, its pods are not ready yet.
            wait_for(
                "green created",
                lambda: next_green in rollouts.deployments(name),
                timeout=30,
                interval=0.05,
            )
            at = crash("green coming up")
            green = at.get("canaryRevision") or next_green
            assert green == next_green
            assert not at["readyPods"].get(green), "green was ready already"
            # 2. Green at its preview size, verified, waiting for a promote; the promote
            # is requested while the operator is down.
            at = rollouts.wait(
                name,
                "waiting for promote",
                lambda s: (s.get("blueGreen") or {}).get("waitingFor") == "waiting for promote",
                timeout=40,
            )
            assert at["blueGreen"]["previewRevision"] == green
            wait_for(
                "the preview Service on green",
                lambda: sampler.samples[-1].preview == green,
                timeout=5,
            )
            crash("waiting for promote", lambda: rollouts.request(name, "promote"))
            # 3. Just after the switch: the post-promotion analysis runs, blue at full size.
            wait_for(
                "the switch",
                lambda: history.revisions()[-1] == green,
                timeout=40,
                interval=0.02,
            )
            at = crash("after the switch (post-promotion analysis)")
            assert at.get("stableRevision") == blue, "the analysis was over already"
            # 4. Green stable, blue warm for scaleDownDelaySeconds.
            at = rollouts.wait(
                name,
                "blue warm",
                lambda s: (
                    s.get("stableRevision") == green
                    and (s.get("blueGreen") or {}).get("warmRevision") == blue
                ),
                timeout=DELAY,
            )
            crash("scale-down delay (blue warm)")
            assert blue_replicas() == 4
            # 5. Blue scales down.
            wait_for("blue scaling down", lambda: blue_replicas() == 0, timeout=30, interval=0.05)
            crash("blue scale-down")
            final = rollouts.wait(
                name,
                "Healthy with blue gone",
                lambda s: (
                    s.get("phase") == "Healthy"
                    and s.get("readyReplicas") == 4
                    and not (s.get("blueGreen") or {}).get("warmRevision")
                ),
                timeout=30,
            )
            wait_for(
                "blue's pods gone",
                lambda: rollouts.ready_pods(name) == {green: 4},
                timeout=20,
                describe=lambda: str(rollouts.ready_pods(name)),
            )
            time.sleep(1)
        finally:
            if not operator.alive:
                operator.start()
    elapsed = time.monotonic() - started

    assert [phase for phase, _ in kills] == [
        "green coming up",
        "waiting for promote",
        "after the switch (post-promotion analysis)",
        "scale-down delay (blue warm)",
        "blue scale-down",
    ]
    # The switch happened exactly once: the active Service named blue, then green, never
    # anything else; one Promoted (the token was taken once). Events are posted last, so
    # a kill just after the switch may lose one, but none is ever posted twice.
    assert history.revisions() == [blue, green], history.values
    reasons = [reason for _, reason, _ in rollouts.events(name)]
    assert reasons.count("Switched") <= 1 and reasons.count("RolloutCompleted") <= 1, reasons
    assert reasons.count("Promoted") == 1, reasons
    assert "Aborted" not in reasons and final["stableRevision"] == green
    assert {r: d.spec.replicas for r, d in rollouts.deployments(name).items()} == {
        blue: 0,
        green: 4,
    }
    samples = [s for s in sampler.samples if s.selector in (blue, green)]
    assert samples
    # No moment without ready active endpoints, operator up or down.
    gaps = [s for s in samples if sum(s.endpoints.values()) == 0]
    assert not gaps, gaps[:3]
    switch = next(s for s in samples if s.selector == green)
    assert switch.ready.get(green) == 4, switch
    assert all(s.selector == blue for s in samples if s.at < switch.at)
    # Once the switch settled, only green's endpoints are in the active Service.
    settled = [s for s in samples if s.at > switch.at + 2]
    assert settled and all(set(s.endpoints) == {green} for s in settled), settled[:3]
    # Blue stayed at full size through the delay and until its endpoints left.
    gone = next(s for s in samples if s.replicas.get(blue, 4) == 0)
    assert all(s.replicas.get(blue) == 4 for s in samples if s.at < gone.at)
    assert gone.at - switch.at >= DELAY - 0.5
    assert max(s.at for s in samples if s.endpoints.get(blue)) <= gone.at
    ready_at = next(s.at for s in samples if s.ready.get(green) == 4)
    print(
        f"\nblue-green SIGKILL: {len(kills)} kills ({', '.join(p for p, _ in kills)}); "
        f"green at full size and ready -> switch {switch.at - ready_at:.2f}s "
        f"switch -> blue at zero {gone.at - switch.at:.2f}s; samples {len(samples)}, "
        f"moments without active endpoints: {len(gaps)}; Switched Events "
        f"{reasons.count('Switched')}; selector history "
        f"{len(history.values)} values; test {elapsed:.1f}s"
    )


def test_auto_promotion_seconds_promotes_that_long_after_green_is_ready(
    rollouts: Rollouts,
) -> None:
    name = "bgauto"
    wait_s = 5
    services(rollouts, name)
    rollouts.create(bg_manifest(name, autoPromotionSeconds=wait_s))
    blue = rollouts.wait_healthy(name, 4)["stableRevision"]
    with Sampler(rollouts, name) as sampler:
        rollouts.set_image(name, "ramp-test/app:v2")
        status = rollouts.wait(
            name,
            "auto-promotion scheduled",
            lambda s: ((s.get("blueGreen") or {}).get("waitingFor") or "").startswith(
                "auto-promotion at"
            ),
            timeout=40,
        )
        green = status["canaryRevision"]
        bg = status["blueGreen"]
        at = datetime.fromisoformat(bg["waitingFor"].removeprefix("auto-promotion at "))
        verified = datetime.fromisoformat(bg["verifiedAt"])
        assert abs((at - verified).total_seconds() - wait_s) < 0.01, bg
        assert sampler.samples[-1].selector == blue
        rollouts.wait_healthy(name, 4, timeout=40)
        time.sleep(0.5)
    samples = sampler.samples
    # Green ready and verified: at its preview size, every pod ready (no analysis).
    ready_at = next(s.at for s in samples if s.ready.get(green) == 2)
    promoted_at = next(s.at for s in samples if s.replicas.get(green) == 4)
    switch_at = next(s.at for s in samples if s.selector == green)
    assert not [s for s in samples if sum(s.endpoints.values()) == 0]
    reasons = [reason for _, reason, _ in rollouts.events(name)]
    assert reasons.count("AutoPromoted") == 1 and reasons.count("Switched") == 1, reasons
    print(
        f"\nblue-green autoPromotionSeconds={wait_s}: green ready -> promoted "
        f"{promoted_at - ready_at:.2f}s, -> switch {switch_at - ready_at:.2f}s"
    )
    # Not earlier than autoPromotionSeconds (less the sampler's period), and not much later:
    # green grows to full size and its endpoints are listed, then the switch.
    assert promoted_at - ready_at >= wait_s - 0.3
    assert switch_at - ready_at >= wait_s - 0.3
    # Never early (above); not much later — with room for a loaded 2-core CI machine.
    assert promoted_at - ready_at <= wait_s + 4
    assert switch_at - ready_at <= wait_s + 8
