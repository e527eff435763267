"""Model-based adversarial test of the blue-green planner (issue 10, acceptance 1).

The same lying cluster as the canary machine (:mod:`model.test_model_based`), with a
blue-green Rollout, simulated EndpointSlices a tick behind the Service selectors, and
the release's own invariants (:class:`model.sim_bluegreen.BlueGreenOracle`): the active
Service never selects a revision without ready pods while a verified one has them, never
an aborted or unverified one, and nothing it still lists is scaled away.

In ``make test`` it runs the ``bg-ci`` profile (derandomized, 500 examples); ``make fuzz``
(``RAMP_FUZZ=1``) explores long and at random (``RAMP_MODEL_BG_EXAMPLES=N`` sets the
budget) — long explorations still report scenarios under triage (see the closing notes
of issue 10). The bugs it found are named in :mod:`model.test_regressions_bluegreen`.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from model.sim import (
    FOREIGN_UID,
    NAME,
    PARTS,
    REFUSALS,
    ROLLOUT_NAMES,
    Cluster,
    Config,
    Dep,
    metric,
    template,
)
from model.sim_bluegreen import ACTIVE, PREVIEW, bg_cluster
from model.sim_shards import ShardChangeRules
from model.sim_workload import delete_rollout, unref
from ramp.api.analysis import Verdict

settings.register_profile(
    "bg-ci",
    max_examples=int(os.environ.get("RAMP_MODEL_BG_EXAMPLES", "500")),
    stateful_step_count=40,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "bg-fuzz",
    max_examples=int(os.environ.get("RAMP_MODEL_BG_EXAMPLES", "10000")),
    stateful_step_count=60,
    derandomize=False,
    deadline=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
WORKLOAD_REF = os.environ.get("RAMP_MODEL_WORKLOAD_REF", "1") != "0"
PROFILE = "bg-fuzz" if os.environ.get("RAMP_FUZZ") else "bg-ci"
# CPU-bound: on a loaded 2-core machine the fixed budget takes several times its CPU time.
pytestmark = pytest.mark.timeout(0 if PROFILE.endswith("fuzz") else 1800)  # make fuzz: no limit


@st.composite
def configs(draw: st.DrawFn) -> Config:
    replicas = draw(st.integers(1, 6))
    bg: dict[str, Any] = {"activeService": ACTIVE}
    if draw(st.sampled_from([True, True, True, False])):
        bg["previewService"] = PREVIEW
    preview = draw(st.sampled_from([None, 1, 2]))
    if preview is not None and preview <= replicas:
        bg["previewReplicaCount"] = preview
    if draw(st.sampled_from([False, False, True])):
        bg["autoPromotionEnabled"] = False
    seconds = draw(st.sampled_from([None, None, 5]))
    if seconds is not None:
        bg["autoPromotionSeconds"] = seconds
    bg["scaleDownDelaySeconds"] = draw(st.sampled_from([0, 5, 30]))
    bg["abortScaleDownDelaySeconds"] = draw(st.sampled_from([0, 5, 30]))
    if draw(st.booleans()):
        bg["prePromotionAnalysis"] = {"metrics": [metric("pre")]}
    if draw(st.booleans()):
        bg["postPromotionAnalysis"] = {"metrics": [metric("post")]}
    return Config(
        replicas=replicas,
        deadline=draw(st.sampled_from([30, 60])),
        services=False,
        history_limit=draw(st.sampled_from([0, 1, 2])),
        blue_green=bg,
        plain=draw(st.sampled_from([0, 0, 3])),
        # workloadRef adoption (and give-back) in a quarter of the examples
        # (RAMP_MODEL_WORKLOAD_REF=0 leaves it out). Pods a lagging index hides from the
        # planner are not counted against maxSurge by the oracle (sim.py, check (c)).
        workload_ref=WORKLOAD_REF and draw(st.sampled_from([False] * 3 + [True])),
        name=draw(st.sampled_from(ROLLOUT_NAMES)),
        track_config=(replicas + bg["scaleDownDelaySeconds"]) % 4 == 1,  # no draw (issue 25)
        replica_sets=(replicas + bg["abortScaleDownDelaySeconds"]) % 3 == 0,  # (issue 26)
    )


CUTS = st.sampled_from([len(PARTS)] * 8 + list(range(len(PARTS))))
VERDICTS = st.sampled_from([Verdict.PASS] * 3 + list(Verdict))
DELAYS = st.sampled_from([2.0, 2.0, 2.0, 15.0, None])


class BlueGreenMachine(ShardChangeRules, RuleBasedStateMachine):
    cluster: Cluster
    tokens: int

    @initialize(
        cfg=configs(),
        start_release=st.sampled_from([True, True, True, False]),
        verdict=VERDICTS,
        delay=DELAYS,
    )
    def start(
        self, cfg: Config, start_release: bool, verdict: Verdict, delay: float | None
    ) -> None:
        self.cluster = bg_cluster(cfg)
        self.tokens = 0
        for _ in range(3):
            self.cluster.reconcile()
            self.cluster.advance(3, controller_acts=True)
        self.cluster.verdicts[self.cluster.revision(2)] = verdict
        self.cluster.ready_delay[self.cluster.revision(2)] = delay
        if start_release:
            self.set_template(2, False)

    # -- the operator --------------------------------------------------------------

    @rule(
        lag_children=st.sampled_from([False] * 5 + [True]),
        lag_history=st.sampled_from([False] * 5 + [True]),
        stale_body=st.sampled_from([False] * 5 + [True]),
        cut=CUTS,
    )
    def reconcile(self, lag_children: bool, lag_history: bool, stale_body: bool, cut: int) -> None:
        self.cluster.reconcile(
            lag_children=lag_children, lag_history=lag_history, stale_body=stale_body, cut=cut
        )

    @rule(rounds=st.integers(1, 6), seconds=st.sampled_from([1, 2, 5, 10]))
    def drive(self, rounds: int, seconds: int) -> None:
        for _ in range(rounds):
            self.cluster.advance(seconds, controller_acts=True)
            self.cluster.reconcile()

    @rule(rounds=st.integers(1, 6), seconds=st.sampled_from([1, 2, 5, 10]))
    def drive_more(self, rounds: int, seconds: int) -> None:
        self.drive(rounds, seconds)

    @rule(seconds=st.sampled_from([1, 3, 10, 30, 70]), acts=st.booleans())
    def advance(self, seconds: int, acts: bool) -> None:
        self.cluster.advance(seconds, controller_acts=acts)

    # -- users -----------------------------------------------------------------------

    @rule(image=st.integers(1, 3), invalid=st.sampled_from([False] * 7 + [True]))
    def set_template(self, image: int, invalid: bool) -> None:
        if self.cluster.cfg.track_config:
            self.cluster.set_config(image, invalid)  # its ConfigMap's data changes
            return
        if self.cluster.change_workload(self.cluster.tpl(image, invalid)):
            return
        self.cluster.spec["template"] = self.cluster.tpl(image, invalid)
        self.cluster.bump(spec=True)

    @rule(
        verb=st.sampled_from(["promote", "promote", "promote-full", "abort", "retry", "rollback"])
    )
    def token(self, verb: str) -> None:
        self.tokens += 1
        self.cluster.body["metadata"]["annotations"][f"ramp.dev/{verb}"] = f"t{self.tokens}"
        self.cluster.bump()

    @rule(image=st.integers(1, 3), delay=DELAYS, verdict=VERDICTS)
    def behaviour(self, image: int, delay: float | None, verdict: Verdict) -> None:
        self.cluster.ready_delay[self.cluster.revision(image)] = delay
        self.cluster.verdicts[self.cluster.revision(image)] = verdict

    # -- the cluster pushes back -------------------------------------------------------

    @rule(
        data=st.data(),
        kind=st.sampled_from(
            [
                "hpa",
                "paused",
                "wipe_status",
                "scale_child",
                "delete_child",
                "delete_child_foreground",
                "lookalike",
                "pod_unready",
                "service",
                "selector",
                "delete_rollout",
                "unref",
                "refuse",
                "edit_template",
            ]
        ),
    )
    def chaos(self, data: st.DataObject, kind: str) -> None:
        getattr(self, f"_{kind}")(data)

    def _hpa(self, data: st.DataObject) -> None:
        self.cluster.spec["replicas"] = data.draw(st.integers(0, 6))
        self.cluster.bump(spec=True)

    def _paused(self, data: st.DataObject) -> None:
        self.cluster.spec["paused"] = not self.cluster.spec.get("paused")
        self.cluster.bump(spec=True)

    def _wipe_status(self, data: st.DataObject) -> None:
        self.cluster.status = None
        self.cluster.bump()

    def _pick_owned(self, data: st.DataObject) -> Dep | None:
        owned = sorted(d.name for d in self.cluster.owned())
        return self.cluster.deps[data.draw(st.sampled_from(owned))] if owned else None

    def _scale_child(self, data: st.DataObject) -> None:
        dep = self._pick_owned(data)
        if dep is not None:
            dep.replicas = data.draw(st.integers(0, 7))
            dep.generation += 1

    def _delete_child(self, data: st.DataObject) -> None:
        dep = self._pick_owned(data)
        if dep is not None:
            del self.cluster.deps[dep.name]

    def _delete_child_foreground(self, data: st.DataObject) -> None:
        dep = self._pick_owned(data)
        if dep is not None:
            dep.deleting = True

    def _lookalike(self, data: st.DataObject) -> None:
        name = f"{NAME}-lookalike"
        if name in self.cluster.deps:
            return
        revisions = sorted({d.revision for d in self.cluster.deps.values()} | {"x"})
        self.cluster.deps[name] = Dep(
            name=name,
            revision=data.draw(st.sampled_from(revisions)),
            role="stable",
            owner=FOREIGN_UID,
            template=template(9),
            replicas=2,
            created="000000",
        )

    def _pod_unready(self, data: st.DataObject) -> None:
        deps = sorted(d.name for d in self.cluster.owned() if d.pods)
        if not deps:
            return
        dep = self.cluster.deps[data.draw(st.sampled_from(deps))]
        pod = dep.pods[data.draw(st.integers(0, len(dep.pods) - 1))]
        seconds = data.draw(st.sampled_from([5, 40]))
        pod.unready_until = self.cluster.now + timedelta(seconds=seconds)

    def _delete_rollout(self, data: st.DataObject) -> None:
        """``kubectl delete rollout`` (held by the give-back finalizer with workloadRef)."""
        delete_rollout(self.cluster)

    def _unref(self, data: st.DataObject) -> None:
        """``workloadRef`` removed, the Deployment's template written instead."""
        unref(self.cluster)

    def _selector(self, data: st.DataObject) -> None:
        """A key added to (or taken out of) the selector and the template labels at once."""
        self.cluster.change_selector()

    def _service(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.cluster.services)))
        action = data.draw(st.sampled_from(["edit", "delete", "create"]))
        selector = self.cluster.services[name]
        if action == "delete":
            self.cluster.services[name] = None
        elif action == "create":
            self.cluster.services[name] = selector or {"app": NAME}
        elif selector is not None:
            selector["tier"] = "web"

    def _refuse(self, data: st.DataObject) -> None:
        """The API server refuses one write of the next reconcile (issue 19): a conflict,
        invalid, throttled, an internal error (a webhook down), a webhook's denial."""
        self.cluster.refuse = (data.draw(st.integers(1, 4)), data.draw(st.sampled_from(REFUSALS)))

    def _edit_template(self, data: st.DataObject) -> None:
        """Someone edits a child's pod template, or undoes the edit (issue 19)."""
        dep = self._pick_owned(data)
        if dep is not None:
            self.cluster.edit_template(dep, data.draw(st.sampled_from(["image", "undo"])))


BlueGreenMachine.TestCase.settings = settings.get_profile(PROFILE)
TestBlueGreen = BlueGreenMachine.TestCase
