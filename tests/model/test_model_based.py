"""Model-based adversarial test of the planner (issue 9, acceptance 1).

A hypothesis :class:`RuleBasedStateMachine` drives the real ``ramp.core.plan.plan()``
through the lying cluster of :mod:`model.sim`; every reconcile checks the invariants
(a)-(g) (:class:`model.sim.Oracle`). CI runs a fixed, derandomized budget; ``make fuzz``
(``RAMP_FUZZ=1``) a longer, random one.
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    rule,
)

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
from model.sim_shards import ShardChangeRules
from model.sim_workload import delete_rollout, unref
from ramp.api.analysis import Verdict

settings.register_profile(
    "ci",
    max_examples=int(os.environ.get("RAMP_MODEL_EXAMPLES", "2000")),
    stateful_step_count=20,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
settings.register_profile(
    "fuzz",
    max_examples=int(os.environ.get("RAMP_MODEL_EXAMPLES", "20000")),
    stateful_step_count=60,
    derandomize=False,
    deadline=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
WORKLOAD_REF = os.environ.get("RAMP_MODEL_WORKLOAD_REF", "1") != "0"
PROFILE = "fuzz" if os.environ.get("RAMP_FUZZ") else "ci"
# CPU-bound: on a loaded 2-core machine the fixed budget takes several times its CPU time.
pytestmark = pytest.mark.timeout(0 if PROFILE.endswith("fuzz") else 1800)  # make fuzz: no limit

STEP = st.sampled_from(
    [
        {"setWeight": 20},
        {"setWeight": 50},
        {"setWeight": 100},
        {"setWeight": 0},
        {"pause": {}},
        {"pause": {"duration": "5s"}},
        {"pause": {"duration": "20s"}},
        {"analysis": {"metrics": [metric("step")]}},
    ]
)


@st.composite
def configs(draw: st.DrawFn) -> Config:
    surge: Any = draw(st.sampled_from([1, 0, 2, "25%", "50%"]))
    unavailable: Any = draw(st.sampled_from([0, 0, 1, "25%"]))
    if surge in (0, "0%") and unavailable in (0, "0%"):
        unavailable = 1  # both zero is refused by the CRD (bug 12)
    background = None
    if draw(st.booleans()):
        background = {
            "metrics": [metric("bg", abort_on_limits=draw(st.booleans()))],
            "startingStep": draw(st.sampled_from([0, 1])),
        }
    replicas = draw(st.integers(1, 6))
    steps = draw(st.lists(STEP, min_size=0, max_size=5)) or draw(st.lists(STEP, max_size=4))
    return Config(
        replicas=replicas,
        max_surge=surge,
        max_unavailable=unavailable,
        steps=steps,
        background=background,
        abort_scale_down=draw(st.sampled_from([None, None, "Immediate"])),
        deadline=draw(st.sampled_from([30, 60])),
        services=draw(st.booleans()),
        history_limit=draw(st.sampled_from([0, 1, 2])),
        plain=draw(st.sampled_from([0, 0, 3])),
        # workloadRef adoption (and give-back) in a quarter of the examples
        # (RAMP_MODEL_WORKLOAD_REF=0 leaves it out). Pods a lagging index hides from the
        # planner are not counted against maxSurge by the oracle (sim.py, check (c)).
        workload_ref=WORKLOAD_REF and draw(st.sampled_from([False] * 3 + [True])),
        # Names at the limits (issue 19) without a draw of their own: an extra draw would
        # shift every derandomized example of this machine away from what CI has covered.
        name=ROLLOUT_NAMES[(replicas + len(steps)) % len(ROLLOUT_NAMES)],
        # Tracked configuration (issue 25) in about a quarter of the examples, drawn from
        # what was drawn already (no draw of its own, as the names above).
        track_config=(replicas + 2 * len(steps)) % 4 == 1,
        # ReplicaSet children (--children=replicasets, issue 26) in about a third, no draw
        replica_sets=(2 * replicas + len(steps)) % 3 == 0,
    )


CUTS = st.sampled_from([len(PARTS)] * 8 + list(range(len(PARTS))))


VERDICTS = st.sampled_from([Verdict.PASS] * 3 + list(Verdict))
DELAYS = st.sampled_from([2.0, 2.0, 2.0, 15.0, None])


class RolloutMachine(ShardChangeRules, RuleBasedStateMachine):
    cluster: Cluster
    tokens: int

    @initialize(
        cfg=configs(),
        start_rollout=st.sampled_from([True, True, True, False]),
        verdict=VERDICTS,
        delay=DELAYS,
    )
    def start(
        self, cfg: Config, start_rollout: bool, verdict: Verdict, delay: float | None
    ) -> None:
        self.cluster = Cluster(cfg)
        self.tokens = 0
        self.cfg = cfg
        # From a steady first revision, most examples start rolling out the next one.
        for _ in range(3):
            self.cluster.reconcile()
            self.cluster.advance(3, controller_acts=True)
        self.cluster.verdicts[self.cluster.revision(2)] = verdict
        self.cluster.ready_delay[self.cluster.revision(2)] = delay
        if start_rollout:
            self.set_template(2, False)

    # -- the operator --------------------------------------------------------------

    @rule(
        lag_children=st.sampled_from([False] * 5 + [True]),
        lag_history=st.sampled_from([False] * 5 + [True]),
        stale_body=st.sampled_from([False] * 5 + [True]),
        cut=CUTS,
    )
    def reconcile(self, lag_children: bool, lag_history: bool, stale_body: bool, cut: int) -> None:
        """A reconcile through a lagging index / a stale body, or cut by a restart."""
        self.cluster.reconcile(
            lag_children=lag_children, lag_history=lag_history, stale_body=stale_body, cut=cut
        )

    @rule(rounds=st.integers(1, 6), seconds=st.sampled_from([1, 2, 5, 10]))
    def drive(self, rounds: int, seconds: int) -> None:
        """A well-behaved stretch: the cluster settles and the operator reconciles."""
        for _ in range(rounds):
            self.cluster.advance(seconds, controller_acts=True)
            self.cluster.reconcile()

    @rule(rounds=st.integers(1, 6), seconds=st.sampled_from([1, 2, 5, 10]))
    def drive_more(self, rounds: int, seconds: int) -> None:
        self.drive(rounds, seconds)  # the same, drawn twice as often

    @rule(seconds=st.sampled_from([1, 3, 10, 30, 70]), acts=st.booleans())
    def advance(self, seconds: int, acts: bool) -> None:
        """Time passes; the Deployment controller may not act (observedGeneration lags)."""
        self.cluster.advance(seconds, controller_acts=acts)

    # -- users -----------------------------------------------------------------------

    @rule(image=st.integers(1, 3), invalid=st.sampled_from([False] * 7 + [True]))
    def set_template(self, image: int, invalid: bool) -> None:
        """A new template, back to the stable one (rollback), or an invalid one."""
        if self.cluster.cfg.track_config:
            self.cluster.set_config(image, invalid)  # its ConfigMap's data changes
            return
        if self.cluster.change_workload(self.cluster.tpl(image, invalid)):
            return
        self.cluster.spec["template"] = self.cluster.tpl(image, invalid)
        self.cluster.bump(spec=True)

    @rule(verb=st.sampled_from(["promote", "promote", "promote-full", "abort", "retry"]))
    def token(self, verb: str) -> None:
        self.tokens += 1
        self.cluster.body["metadata"]["annotations"][f"ramp.dev/{verb}"] = f"t{self.tokens}"
        self.cluster.bump()

    @rule(image=st.integers(1, 3), delay=DELAYS, verdict=VERDICTS)
    def behaviour(self, image: int, delay: float | None, verdict: Verdict) -> None:
        """How a revision behaves: pods ready after ``delay`` s (or never), its verdicts."""
        self.cluster.ready_delay[self.cluster.revision(image)] = delay
        self.cluster.verdicts[self.cluster.revision(image)] = verdict

    # -- the cluster pushes back -------------------------------------------------------

    @rule(
        data=st.data(),
        kind=st.sampled_from(
            [
                "hpa",
                "paused",
                "bad_surge",
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
        """An HPA or ``kubectl scale`` changes spec.replicas."""
        self.cluster.spec["replicas"] = data.draw(st.integers(0, 6))
        self.cluster.bump(spec=True)

    def _paused(self, data: st.DataObject) -> None:
        self.cluster.spec["paused"] = not self.cluster.spec.get("paused")
        self.cluster.bump(spec=True)

    def _bad_surge(self, data: st.DataObject) -> None:
        """An invalid spec (maxSurge above 100 %) that comes and goes."""
        canary = self.cluster.canary_spec
        canary["maxSurge"] = "150%" if canary["maxSurge"] != "150%" else self.cfg.max_surge
        self.cluster.bump(spec=True)

    def _wipe_status(self, data: st.DataObject) -> None:
        """Restored from a backup: no status; the ControllerRevisions are still there."""
        self.cluster.status = None
        self.cluster.bump()

    def _pick_owned(self, data: st.DataObject) -> Dep | None:
        owned = sorted(d.name for d in self.cluster.owned())
        return self.cluster.deps[data.draw(st.sampled_from(owned))] if owned else None

    def _scale_child(self, data: st.DataObject) -> None:
        """Someone scales a child Deployment by hand."""
        dep = self._pick_owned(data)
        if dep is not None:
            dep.replicas = data.draw(st.integers(0, 7))
            dep.generation += 1

    def _delete_child(self, data: st.DataObject) -> None:
        """A GitOps prune or a ``kubectl delete`` of a child (gone at once)."""
        dep = self._pick_owned(data)
        if dep is not None:
            del self.cluster.deps[dep.name]

    def _delete_child_foreground(self, data: st.DataObject) -> None:
        """A foreground delete: the child has a deletionTimestamp until GC finishes."""
        dep = self._pick_owned(data)
        if dep is not None:
            dep.deleting = True

    def _lookalike(self, data: st.DataObject) -> None:
        """A Deployment with the Rollout's label but another owner."""
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
        """A pod goes unready for a while (a failing probe)."""
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
        """A pinned Service is edited (a key Ramp does not own), deleted or recreated."""
        if not self.cluster.services:
            return
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


RolloutMachine.TestCase.settings = settings.get_profile(PROFILE)
TestRollout = RolloutMachine.TestCase


def teardown_module() -> None:
    if os.environ.get("RAMP_MODEL_STATS"):
        from model.sim import STATS

        for key, n in sorted(STATS.items()):
            print(f"{key:40} {n}")
