"""Named example found by the canary machine with ``workloadRef`` on (the landing run of
4ef6c83): the pass that gives the adopted Deployment back (``workloadRef`` removed) took
the give-back finalizer off the Rollout *before* its status patch. Taking it off changes
the Rollout, so the status patch (guarded by the resourceVersion read) always conflicted:
that pass lost its status and its Events. Here it was also the pass that recreated a
canary someone had deleted: the progress it recorded (a create applied) was lost with the
status, the next pass saw the same counts as the last status written (the child was back),
and the canary was aborted for ProgressDeadlineExceeded 20 s after the progress ((g)).
``WorkloadGivenBack`` never reached the cluster either. The finalizer now leaves after the
status (:func:`ramp.core.actions.actions`).
"""

from __future__ import annotations

from model.sim import Cluster, Config
from model.sim_workload import delete_rollout, unref
from ramp.core.model import iso
from ramp.core.workload_model import MANAGED_ANNOTATION


def give_back_while_the_canary_is_recreated() -> Cluster:
    """A canary that never gets ready, its Deployment adopted; ``workloadRef`` removed,
    then the canary child deleted right before the pass that completes the give-back."""
    c = Cluster(Config(replicas=1, steps=[{"setWeight": 20}] * 2, deadline=30, workload_ref=True))
    for _ in range(3):
        c.reconcile()
        c.advance(3, controller_acts=True)
    c.ready_delay[c.revision(2)] = None  # the canary's pods are never ready
    assert c.change_workload(c.tpl(2))
    for _ in range(7):
        c.advance(1, controller_acts=True)
        c.reconcile()
    assert c.status is not None and c.status["canaryRevision"] == c.revision(2)
    unref(c)
    for _ in range(2):
        c.advance(1, controller_acts=True)
        c.reconcile()
    assert (c.status or {}).get("workload"), "still giving back"
    canary = next(d for d in c.owned() if d.revision == c.revision(2))
    del c.deps[canary.name]  # a GitOps prune, or kubectl delete
    c.advance(2, controller_acts=True)
    result = c.reconcile()  # recreates the canary and gives the Deployment back
    assert result is not None and "WorkloadGivenBack" in [e.reason for e in result.events]
    return c


def test_the_pass_that_gives_back_writes_its_status_and_events() -> None:
    c = give_back_while_the_canary_is_recreated()
    assert "ramp.dev/give-back" not in (c.body["metadata"].get("finalizers") or [])
    assert c.status is not None and not c.status.get("workload")
    assert c.status["progressedAt"] == iso(c.now)
    assert "WorkloadGivenBack" in [reason for _, reason, _ in c.events]


def test_a_canary_recreated_while_giving_back_is_progress_the_deadline_counts_from() -> None:
    c = give_back_while_the_canary_is_recreated()
    recreated = c.now
    # The oracle (g) checks every pass: no ProgressDeadlineExceeded within 30 s of the
    # last progress (the recreated child showing), and the abort once they are over.
    aborted_at = None
    for _ in range(12):
        c.advance(5, controller_acts=True)
        result = c.reconcile()
        assert result is not None
        if "Aborted" in [e.reason for e in result.events]:
            aborted_at = c.now
            break
    assert aborted_at is not None, "a canary that never gets ready is still aborted"
    assert (aborted_at - recreated).total_seconds() >= 30


def test_a_refused_unpin_is_judged_after_the_pass_that_retries_it() -> None:
    """Found by ``make fuzz-for`` (round 3, seed 444243135): a Rollout with workloadRef
    deleted (give-back) after someone deleted its stable child; once the user's Deployment
    had a ready pod, the pass that unpinned the stable Service had that write refused
    (409). The planner was right and the API server said no: the oracle's (f) judged that
    pass. A pass whose write was refused stops there; (f) now judges the Services after the
    next pass, which must have unpinned them."""
    from model.sim_workload import delete_rollout
    from model.test_model_based import RolloutMachine
    from ramp.api.analysis import Verdict
    from ramp.api.labels import REVISION_LABEL

    m = RolloutMachine()
    cfg = Config(replicas=1, deadline=30, services=True, workload_ref=True, track_config=True)
    m.start(cfg=cfg, start_rollout=True, verdict=Verdict.PASS, delay=2.0)
    c = m.cluster
    m.drive(1, 1)
    del c.deps[next(d.name for d in c.owned())]  # kubectl delete deploy (the stable child)
    delete_rollout(c)
    m.drive(1, 1)
    c.refuse = (1, 409)  # the unpin of the next pass
    m.advance(1, True)
    m.drive(1, 2)
    m.drive(1, 1)  # (f) judges this pass
    assert all(REVISION_LABEL not in (s or {}) for s in c.services.values()), c.services


def test_a_service_is_not_narrowed_onto_pods_the_same_pass_scales_away() -> None:
    """make fuzz-for, seed 227800127 ((f)). A ``workloadRef`` Rollout (R=1) whose
    Services still selected the Deployment's pods beside Ramp's was scaled to 0 by an
    HPA: the pass that scaled Ramp's pod away pinned the Services to it (it was ready
    when observed). Scaled back to 1, ``workloadRef`` removed: the Deployment, given back,
    served while the Services named Ramp's revision, whose new pod was not ready. A
    Service is now narrowed only onto ready pods that stay."""
    c = Cluster(Config(replicas=1, steps=[], services=True, workload_ref=True, track_config=True))
    for _ in range(3):
        c.reconcile()
        c.advance(3, controller_acts=True)
    assert c.services["web-stable"] == {"app": "web"}  # not narrowed yet
    c.spec["replicas"] = 0  # an HPA
    c.bump(spec=True)
    c.advance(1, controller_acts=True)
    c.reconcile()
    assert c.services["web-stable"] == {"app": "web"}  # not onto pods going away
    c.spec["replicas"] = 1
    c.bump(spec=True)
    unref(c)
    for _ in range(3):
        c.advance(2, controller_acts=True)
        c.reconcile()  # the oracle's (f) failed here: pinned to a revision with none ready


def test_a_rollout_deleted_that_lost_its_workload_still_unpins_its_services() -> None:
    """make fuzz-for, seed 171873156 ((f)). A ``workloadRef`` Rollout (R=2) mid-adoption,
    its Services pinned to Ramp's revision; its status lost (a restore), the Rollout
    deleted and its ``workloadRef`` removed in one go. The deleting pass knew no Deployment
    it held: it dropped the finalizer at once, garbage collection took Ramp's pods, and
    the Services kept Ramp's key while the Deployment's pod was ready. Ramp's key now
    leaves the Services before the finalizer does; and the Deployment, found by its
    annotation (``ramp.dev/workload-of``), is given back too (before, it stayed paused)."""
    c = Cluster(Config(replicas=2, steps=[], services=True, workload_ref=True))
    for _ in range(3):
        c.reconcile()
        c.advance(3, controller_acts=True)
    c.change_workload(c.tpl(2))
    c.advance(1, controller_acts=True)
    c.reconcile()
    assert c.services["web-stable"] == {"app": "web", "ramp.dev/revision": c.revision(1)}
    assert c.plain is not None and c.plain.ready > 0
    c.status = None  # restored from a backup without it
    c.bump()
    delete_rollout(c)
    unref(c)
    for _ in range(6):
        c.advance(1, controller_acts=True)
        c.reconcile()  # the oracle's (f) failed after the first: gone, still pinned
    assert c.gone
    assert c.services["web-stable"] == {"app": "web"}
    assert c.services["web-canary"] == {"app": "web"}
    assert not c.held.paused and MANAGED_ANNOTATION not in c.held.annotations
    assert c.plain.replicas == 2 and c.plain.ready == 2
