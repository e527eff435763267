"""Named example for the oracle's (g) (found while fixing the give-back's lost status):
a canary child deleted, recreated by the next pass, whose status patch the API server
refuses (409, 422, 429, 5xx, a webhook's 400). The planner records progress (the create)
only in that status; refused, the next pass compares the counts with the last status
accepted, which are the same again (the child is back): the deadline counts from the
progress before. The oracle counted the deletion and the recreation, which no one reading
the cluster can see any more, as progress and reported a ProgressDeadlineExceeded 25 s
after it ((g)). It now forgets the progress of a pass whose status was not accepted, as
the planner does; a change that stays (a pod ready) is progress at the next pass.
"""

from __future__ import annotations

import pytest

from model.sim import NAME, REFUSALS, Cluster, Config, first_revision_runs


@pytest.mark.parametrize("code", REFUSALS)
def test_a_recreated_canary_whose_status_was_refused_is_no_progress(code: int) -> None:
    c = Cluster(Config(replicas=1, steps=[{"setWeight": 20}] * 2, deadline=30))
    first_revision_runs(c)
    c.ready_delay[c.revision(2)] = None  # the canary's pods are never ready
    c.spec["template"] = c.tpl(2)
    c.bump(spec=True)
    for _ in range(7):
        c.advance(1, controller_acts=True)
        c.reconcile()
    canary = next(d for d in c.owned() if d.revision == c.revision(2))
    del c.deps[canary.name]
    c.refuse = (2, code)  # the create goes through, the status patch after it does not
    c.advance(2, controller_acts=True)
    c.reconcile()
    assert c.deps.get(canary.name) is not None, "recreated"
    reasons = []
    for _ in range(12):  # the oracle checks (g) on every pass
        c.advance(5, controller_acts=True)
        result = c.reconcile()
        assert result is not None
        reasons += [e.reason for e in result.events]
    assert "Aborted" in reasons, "a canary that never gets ready is still aborted"


def test_a_pod_created_late_after_counts_a_lagging_index_recorded_is_progress() -> None:
    """make fuzz-for, seed 957627271 ((g)). R=1, no steps, deadline 30 s, a tracked
    ConfigMap. The config goes to v2, back to v1 (the canary scaled to 0, its pod gone),
    and to v2 again: that pass reads a lagging index that still shows the canary's old
    pod, and writes ``canaryReplicas: 1``; the next pass sees none, a move too small to be
    worth a status write. The Deployment controller creates the canary's pod 70 s later:
    the count is 1 again, as written, and the planner aborted for the deadline the moment
    the pod appeared. The Deployments' own record of progress (their ``Progressing``
    condition's ``lastUpdateTime``) now counts too."""
    c = Cluster(
        Config(replicas=1, max_surge=1, max_unavailable=0, steps=[], deadline=30, track_config=True)
    )
    first_revision_runs(c)
    v2 = c.revision(2)
    c.ready_delay[v2] = 2.0
    c.set_config(2, False)
    c.advance(30, controller_acts=False)
    c.reconcile(cut=4)  # history, creates, status, services: the canary created
    c.advance(1, controller_acts=True)  # its pod (not ready yet)
    c.advance(1, controller_acts=False)
    c.set_config(1, False)
    c.reconcile()  # the canary scaled to 0
    c.advance(1, controller_acts=True)  # its pod goes
    c.set_config(2, False)
    c.reconcile(lag_children=True)  # sees the canary's pod still there: canaryReplicas 1
    c.reconcile()  # sees none: not worth a status write
    assert c.status is not None and c.status["canaryReplicas"] == 1
    c.advance(70, controller_acts=True)  # the Deployment controller creates the pod late
    result = c.reconcile()  # the oracle's (g) fails here without the fix
    assert result is not None and "Aborted" not in [e.reason for e in result.events]
    for _ in range(4):
        c.advance(3, controller_acts=True)
        c.reconcile()
    assert c.status["stableRevision"] == v2


def test_a_stable_deleted_after_the_deadline_is_no_progress() -> None:
    """make fuzz-for, seed 127736494 ((g), an oracle defect). R=2, steps 100 % then 20 %:
    at the second step the stable's new pod never came (its controller stopped for 70 s);
    then someone deleted the stable's Deployment. The pass recreated it and aborted on the
    progress deadline, rightly: nothing had moved for 70 s. The oracle took the stable's
    counts dropping to nothing (its child gone) for progress. A change of counts that is
    only a child gone is none."""
    from model.test_model_based import RolloutMachine
    from ramp.api.analysis import Verdict

    steps = [{"setWeight": 100}, {"setWeight": 20}]
    cfg = Config(replicas=2, max_surge=1, max_unavailable=0, steps=steps, deadline=30)
    m = RolloutMachine()
    m.start(cfg=cfg, start_rollout=True, verdict=Verdict.PASS, delay=2.0)
    m.cluster.reconcile()
    m.drive(rounds=4, seconds=2)
    m.drive(rounds=2, seconds=1)
    c = m.cluster
    assert c.status is not None and c.status["currentStepIndex"] == 1
    m.advance(acts=False, seconds=70)  # the Deployment controller stopped
    del c.deps[f"{NAME}-{c.status['stableRevision']}"]  # kubectl delete deployment
    m.drive(rounds=1, seconds=1)  # the oracle's (g) failed here
    assert c.status["phase"] == "Aborted"
    assert "progressDeadlineSeconds=30" in c.status["message"]


def test_a_release_replaced_by_a_pass_cut_before_its_status_is_no_progress() -> None:
    """make fuzz-for, seed 224425150 ((g), an oracle defect of the blue-green machine):
    v3's release waited 34 s for green (the Deployment controller idle); the template went
    to v2, and the pass that replaced the release was cut before any write (a restart);
    the template went back to v3, and the next pass, from the status the API server holds
    (v3 since 0:28), rightly ended the release on the progress deadline. The blue-green
    oracle took the cut pass's new release for progress; like the canary oracle it now
    counts from what was accepted."""
    from model.test_model_bluegreen import BlueGreenMachine
    from ramp.api.analysis import Verdict

    bg = {
        "activeService": "web-active",
        "previewService": "web-preview",
        "scaleDownDelaySeconds": 0,
        "abortScaleDownDelaySeconds": 0,
    }
    cfg = Config(
        replicas=1, deadline=30, services=False, history_limit=0, blue_green=bg, track_config=True
    )
    m = BlueGreenMachine()
    m.start(cfg=cfg, start_release=True, verdict=Verdict.PASS, delay=2.0)
    c = m.cluster
    c.advance(19, controller_acts=False)
    m.set_template(image=3, invalid=False)
    c.reconcile(cut=7)  # v3's release starts
    c.advance(33, controller_acts=False)
    m.set_template(image=2, invalid=False)
    c.advance(1, controller_acts=False)
    c.reconcile(cut=0)  # v2 replaces it: cut before any write
    m.set_template(image=3, invalid=False)
    c.reconcile(cut=7)  # the oracle's (g) failed here
    assert c.status is not None and c.status["phase"] == "Aborted"
    assert "progressDeadlineSeconds" in c.status["message"]
