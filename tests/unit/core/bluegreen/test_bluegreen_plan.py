"""Blue-green, planned against a small simulated cluster with Services and EndpointSlices.

The simulated EndpointSlices of a Service list the ready pods of the revision its
selector names, one tick after the selector changed (what kube-proxy would program)."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ramp.api.labels import ABORTED_ANNOTATION, PROMOTED_ANNOTATION, REVISION_LABEL, revision_hash
from ramp.api.rollout import Rollout
from ramp.core.model import Child, HistoryEntry, Observed, Plan
from ramp.core.plan import plan

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def bg_body(replicas: int = 4, **bg: Any) -> dict[str, Any]:
    return {
        "apiVersion": "ramp.dev/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": "web", "namespace": "ns", "generation": 1, "annotations": {}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "app", "image": "app:1"}]},
            },
            "progressDeadlineSeconds": 30,
            "strategy": {
                "blueGreen": {
                    "activeService": "web",
                    "previewService": "web-preview",
                    "previewReplicaCount": 2,
                    "scaleDownDelaySeconds": 10,
                    "abortScaleDownDelaySeconds": 5,
                    **bg,
                }
            },
        },
    }


@dataclass
class Sim:
    body: dict[str, Any]
    now: datetime = T0
    children: dict[str, Child] = field(default_factory=dict)
    history: dict[str, HistoryEntry] = field(default_factory=dict)
    selectors: dict[str, dict[str, str]] = field(
        default_factory=lambda: {"web": {"app": "web"}, "web-preview": {"app": "web"}}
    )
    endpoints: dict[str, dict[str, int]] = field(default_factory=dict)
    never_ready: set[str] = field(default_factory=set)
    analysis: dict[str, Any] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    active_samples: list[dict[str, int]] = field(default_factory=list)

    def tick(self, seconds: float = 0.5) -> Plan:
        obs = Observed(
            rollout=Rollout.model_validate(self.body),
            template=self.body["spec"]["template"],
            generation=self.body["metadata"]["generation"],
            annotations=self.body["metadata"]["annotations"],
            children=tuple(self.children.values()),
            history=tuple(self.history.values()),
            services=copy.deepcopy(self.selectors),
            endpoints=copy.deepcopy(self.endpoints),
            analysis=self.analysis,
        )
        result = plan(obs, self.now)
        for w in result.history:
            old = self.history.get(w.revision)
            marks = {
                PROMOTED_ANNOTATION: old.promoted_at if old else None,
                ABORTED_ANNOTATION: old.aborted if old else None,
            }
            marks.update(w.annotations)
            self.history[w.revision] = HistoryEntry(
                w.revision,
                old.number if old else len(self.history) + 1,
                w.template or (old.template if old else None),
                marks[PROMOTED_ANNOTATION],
                marks[ABORTED_ANNOTATION],
            )
        if result.replicas is not None:
            for rev in result.creates:
                self.children[rev] = Child(f"web-{rev}", rev, None, 0, 0, 0, True)
            for rev, n in result.replicas.items():
                c = self.children[rev]
                self.children[rev] = Child(c.name, rev, c.role, n, min(c.ready, n), c.current, True)
            for pin in result.services:
                self.selectors[pin.service].update(pin.selector)
        self.body["status"] = result.status.to_k8s()
        self.events += [e.reason for e in result.events]
        self.now += timedelta(seconds=seconds)
        # EndpointSlices follow the selectors as they were (one tick of propagation).
        self.endpoints = {
            svc: {sel.get(REVISION_LABEL, ""): self.serving(sel.get(REVISION_LABEL))}
            for svc, sel in self.selectors.items()
        }
        self.active_samples.append(self.endpoints["web"])
        for rev, c in list(self.children.items()):
            ready = 0 if rev in self.never_ready else c.replicas
            self.children[rev] = Child(c.name, rev, c.role, c.replicas, ready, c.replicas, True)
        return result

    def serving(self, revision: str | None) -> int:
        c = self.children.get(revision or "")
        return min(c.ready, c.replicas) if c else 0

    def status(self) -> dict[str, Any]:
        return dict(self.body.get("status") or {})

    def bg(self) -> dict[str, Any]:
        return dict(self.status().get("blueGreen") or {})

    def run_until(self, predicate: Any, limit: int = 200) -> None:
        for _ in range(limit):
            self.tick()
            if predicate(self):
                return
        raise AssertionError(f"not reached: {self.status()}")

    def set_image(self, image: str) -> str:
        self.body["spec"]["template"]["spec"]["containers"][0]["image"] = image
        self.body["metadata"]["generation"] += 1
        return revision_hash(self.body["spec"]["template"])

    def annotate(self, verb: str, token: str) -> None:
        self.body["metadata"]["annotations"][f"ramp.dev/{verb}"] = token

    def replicas(self) -> dict[str, int]:
        return {r: c.replicas for r, c in self.children.items() if c.replicas}


def healthy(sim: Sim) -> bool:
    s = sim.status()
    return s.get("phase") == "Healthy" and not sim.bg().get("warmRevision")


def started(body: dict[str, Any]) -> tuple[Sim, str]:
    sim = Sim(body)
    sim.run_until(healthy)
    return sim, sim.status()["stableRevision"]


def test_first_revision_is_active_at_once_and_the_hpa_sees_only_active_pods() -> None:
    sim, blue = started(bg_body())
    assert sim.selectors["web"] == {"app": "web", REVISION_LABEL: blue}
    assert sim.status()["selector"] == f"app=web,{REVISION_LABEL}={blue}"
    assert sim.status()["replicas"] == 4


def test_a_release_switches_on_endpoints_and_blue_goes_only_after_the_delay() -> None:
    sim, blue = started(bg_body())
    before = len(sim.active_samples)
    green = sim.set_image("app:2")
    sim.tick()
    assert sim.replicas() == {blue: 4, green: 2}
    assert sim.selectors["web-preview"][REVISION_LABEL] == blue  # never an empty preview
    sim.run_until(lambda s: s.selectors["web-preview"][REVISION_LABEL] == green)
    assert sim.serving(green) > 0
    sim.run_until(lambda s: s.selectors["web"][REVISION_LABEL] == green)
    switched = sim.now
    assert sim.endpoints["web-preview"][green] == 4  # the switch waited for the data plane
    assert sim.replicas()[blue] == 4
    sim.run_until(lambda s: blue not in s.replicas())
    assert sim.now - switched >= timedelta(seconds=10)
    samples = sim.active_samples[before:]
    assert all(sum(sample.values()) > 0 for sample in samples)  # never without endpoints
    assert all(len(sample) == 1 for sample in samples)  # never two revisions at once
    assert "Switched" in sim.events and "RolloutCompleted" in sim.events
    assert sim.status()["stableRevision"] == green


def test_without_auto_promotion_it_waits_for_promote() -> None:
    sim, blue = started(bg_body(autoPromotionEnabled=False))
    green = sim.set_image("app:2")
    sim.run_until(lambda s: s.status().get("phase") == "Paused")
    for _ in range(20):
        sim.tick()
    assert sim.selectors["web"][REVISION_LABEL] == blue
    assert sim.bg()["waitingFor"] == "waiting for promote"
    sim.annotate("promote", "p1")
    sim.run_until(lambda s: s.selectors["web"][REVISION_LABEL] == green)


def test_auto_promotion_seconds_waits_after_green_is_ready() -> None:
    sim, blue = started(bg_body(autoPromotionSeconds=5))
    green = sim.set_image("app:2")
    sim.run_until(lambda s: s.bg().get("verifiedAt") is not None)
    verified = sim.now
    sim.run_until(lambda s: s.selectors["web"][REVISION_LABEL] == green)
    assert sim.now - verified >= timedelta(seconds=5)
    del blue


def test_the_auto_promotion_time_counts_from_the_recorded_verification() -> None:
    """Issue 19 (a CI flake): green verified between two whole seconds; the first status
    said verifiedAt :23 and "auto-promotion at :27" (4 s apart, not 5), and every later
    pass waited until :28. The status keeps whole seconds: both count from :23."""
    sim, _ = started(bg_body(autoPromotionSeconds=5))
    sim.now += timedelta(seconds=0.25)
    green = sim.set_image("app:2")
    sim.run_until(lambda s: s.bg().get("verifiedAt") is not None)
    bg = sim.bg()
    at = datetime.fromisoformat(bg["waitingFor"].removeprefix("auto-promotion at "))
    verified = datetime.fromisoformat(bg["verifiedAt"])
    assert at - verified == timedelta(seconds=5), bg
    sim.run_until(lambda s: s.selectors["web"][REVISION_LABEL] == green)
    assert sim.now >= at


def test_a_never_ready_green_aborts_and_the_active_never_moves() -> None:
    sim, blue = started(bg_body())
    before = len(sim.active_samples)
    green = sim.set_image("app:2")
    sim.never_ready.add(green)
    sim.run_until(lambda s: s.status().get("phase") == "Aborted")
    aborted = sim.now
    assert sim.selectors["web"][REVISION_LABEL] == blue
    assert sim.replicas()[blue] == 4
    sim.run_until(lambda s: green not in s.replicas())
    assert sim.now - aborted >= timedelta(seconds=4.5)
    assert all(set(sample) == {blue} for sample in sim.active_samples[before:])


def test_abort_after_the_switch_flips_back_to_the_warm_blue_at_once() -> None:
    sim, blue = started(bg_body())
    green = sim.set_image("app:2")
    # Post-promotion analysis that cannot resolve: Error pauses the release after the
    # switch, with blue still at full size.
    sim.body["spec"]["strategy"]["blueGreen"]["postPromotionAnalysis"] = {
        "templates": [{"templateName": "missing"}]
    }
    sim.analysis["post-promotion"] = "analysis post-promotion: AnalysisTemplate 'missing'"
    sim.run_until(lambda s: s.selectors["web"][REVISION_LABEL] == green)
    sim.run_until(lambda s: s.status().get("phase") == "Paused")
    assert sim.replicas()[blue] == 4
    sim.annotate("abort", "a1")
    sim.tick()
    assert sim.selectors["web"][REVISION_LABEL] == blue
    assert sim.status()["phase"] == "Aborted"


def test_rollback_flips_back_inside_the_window_and_is_refused_after_it() -> None:
    sim, blue = started(bg_body())
    green = sim.set_image("app:2")
    sim.run_until(lambda s: s.status().get("stableRevision") == green)
    assert sim.bg()["warmRevision"] == blue
    sim.annotate("rollback", "r1")
    sim.tick()
    assert sim.selectors["web"][REVISION_LABEL] == blue
    assert sim.status()["phase"] == "Aborted"
    assert sim.status()["stableRevision"] == blue
    # Retry the release, let it complete, wait out the window: rollback is refused.
    sim.annotate("retry", "t1")
    sim.run_until(lambda s: s.status().get("stableRevision") == green)
    sim.run_until(healthy)
    sim.annotate("rollback", "r2")
    sim.tick()
    assert "RollbackIgnored" in sim.events
    assert sim.selectors["web"][REVISION_LABEL] == green


def test_a_third_template_mid_release_replaces_green() -> None:
    sim, blue = started(bg_body(autoPromotionEnabled=False))
    green = sim.set_image("app:2")
    sim.run_until(lambda s: s.status().get("phase") == "Paused")
    third = sim.set_image("app:3")
    sim.run_until(lambda s: green not in s.replicas() and third in s.replicas())
    sim.annotate("promote", "p1")
    sim.run_until(lambda s: s.selectors["web"][REVISION_LABEL] == third)
    del blue


def test_a_scale_follows_on_the_active_side_and_green_at_full_size() -> None:
    sim, blue = started(bg_body(autoPromotionEnabled=False))
    green = sim.set_image("app:2")
    sim.run_until(lambda s: s.status().get("phase") == "Paused")
    sim.body["spec"]["replicas"] = 6
    sim.tick()
    assert sim.replicas() == {blue: 6, green: 2}
    sim.annotate("promote", "p1")
    sim.run_until(lambda s: s.selectors["web"][REVISION_LABEL] == green)
    assert sim.replicas()[green] == 6


def test_status_strings_are_clipped_to_the_schema() -> None:
    """Found by the e2e compare test: a long analysis message copied into
    ``status.blueGreen.waitingFor`` (max 256) got every status patch refused with a 422."""
    from ramp.api.rollout import BlueGreenStatus, RolloutStatus

    st = RolloutStatus(message="m" * 5000, blue_green=BlueGreenStatus())
    assert st.blue_green is not None
    st.blue_green.waiting_for = "w" * 1000  # as the planner assigns it: not validated
    st.blue_green.preview_revision = "≥" * 30  # 90 bytes in UTF-8 for a 63-byte field
    st.clip_strings()
    assert st.blue_green is not None and st.blue_green.waiting_for is not None
    assert len(st.blue_green.waiting_for.encode()) == 256
    assert st.blue_green.waiting_for.endswith("…")
    assert len((st.blue_green.preview_revision or "").encode()) <= 63
    RolloutStatus.model_validate(st.model_dump())  # inside the schema again


def test_a_long_pre_promotion_message_stays_inside_the_schema() -> None:
    """Found by the e2e compare test: the held pre-promotion analysis's message was copied
    into ``status.blueGreen.waitingFor`` (max 256 bytes) after the plan was finished; the
    API server refused every status patch (422) and the release stood still."""
    sim, _ = started(bg_body(prePromotionAnalysis={"templates": [{"templateName": "missing"}]}))
    sim.analysis["pre-promotion"] = "analysis pre-promotion: " + "é" * 400
    sim.set_image("app:2")
    sim.run_until(lambda s: s.status().get("phase") == "Paused")
    waiting = sim.bg()["waitingFor"]
    assert waiting.endswith("…") and len(waiting.encode()) <= 256, waiting
    Rollout.model_validate({**sim.body, "status": sim.status()})  # the schema holds


def test_an_existing_service_is_narrowed_only_once_the_first_revision_is_fully_available() -> None:
    """Adopting a Service that serves what ran before Ramp: its selector keeps serving
    those pods until every pod of the first revision is ready."""
    sim = Sim(bg_body())
    blue = revision_hash(sim.body["spec"]["template"])
    narrowed_at = None
    for _ in range(20):
        ready = sim.serving(blue)  # what the plan of this tick sees
        sim.tick()
        if REVISION_LABEL in sim.selectors["web"] and narrowed_at is None:
            narrowed_at = ready
    assert sim.selectors["web"][REVISION_LABEL] == blue
    assert narrowed_at == 4, narrowed_at  # not before all 4 were ready


def test_a_slow_first_revision_leaves_the_existing_service_alone() -> None:
    sim = Sim(bg_body())
    sim.never_ready.add(revision_hash(sim.body["spec"]["template"]))
    for _ in range(10):
        sim.tick()
    assert sim.selectors["web"] == {"app": "web"}
    assert sim.selectors["web-preview"] == {"app": "web"}
