"""Named example found by ``make fuzz`` (the blue-green machine, a random batch): a
blue-green stable Deployment deleted (foreground) after a selector change, with the spec
invalid. The planner pinned the active Service to the previous revision (still running)
with the *new* selector key, which that revision's pods lack: the previous revision's
template had been pruned from the history (``revisionHistoryLimit: 1``) and a child's own
pod labels were not observed, so (f) the active Service selected no ready pod. Each
child's pod-template labels are now observed (``Child.pod_labels``) and a pin falls back
to them when the history no longer holds the revision's template.
"""

from __future__ import annotations

from model.sim import Cluster, Config, first_revision_runs, template
from model.sim_bluegreen import ACTIVE, PREVIEW, bg_cluster
from ramp.api.labels import revision_hash
from ramp.core.verdicts import Verdict

V1, V2 = (revision_hash(template(i)) for i in (1, 2))


def test_bg_stable_deleted_after_a_selector_change_keeps_the_active_service_serving() -> None:
    c = bg_cluster(
        Config(
            replicas=1,
            services=False,
            history_limit=1,
            blue_green={
                "activeService": ACTIVE,
                "scaleDownDelaySeconds": 0,
                "abortScaleDownDelaySeconds": 0,
            },
        )
    )
    first_revision_runs(c)
    c.verdicts[V2] = Verdict.PASS
    c.ready_delay[V2] = 2.0

    def drive(rounds: int, seconds: float) -> None:
        for _ in range(rounds):
            c.advance(seconds, controller_acts=True)
            c.reconcile()

    c.spec["template"] = c.tpl(2, False)
    c.bump(spec=True)
    drive(1, 1)
    c.change_selector()
    c.body["metadata"]["annotations"]["ramp.dev/promote"] = "t1"
    c.bump()
    c.reconcile()
    drive(3, 5)
    assert c.status is not None and c.status["phase"] == "Healthy"
    stable = c.status["stableRevision"]
    c.spec["template"] = c.tpl(1, True)  # an invalid spec
    c.bump(spec=True)
    next(d for d in c.deps.values() if d.revision == stable).deleting = True
    drive(2, 1)


def test_bg_switched_revision_deleted_after_a_selector_change_keeps_the_active_serving() -> None:
    """The same, found again by the derandomized machine on a branch that shifted its
    draws: a selector change alone (a new revision switched at once), its Deployment
    deleted, no history kept (``revisionHistoryLimit: 0``)."""
    c = bg_cluster(
        Config(
            replicas=1,
            services=False,
            history_limit=0,
            blue_green={
                "activeService": ACTIVE,
                "previewService": PREVIEW,
                "scaleDownDelaySeconds": 5,
                "abortScaleDownDelaySeconds": 0,
            },
        )
    )
    first_revision_runs(c)
    c.change_selector()
    c.advance(1, controller_acts=True)
    c.reconcile()
    c.advance(1, controller_acts=True)
    for _ in range(2):
        c.advance(2, controller_acts=True)
        c.reconcile()
    assert c.status is not None and c.status["stableRevision"] != V1  # switched at once
    victim = next(n for n, d in c.deps.items() if d.revision == c.status["stableRevision"])
    del c.deps[victim]
    c.advance(1, controller_acts=True)
    c.reconcile()


def test_of_two_revisions_created_in_the_same_second_the_newer_is_kept() -> None:
    """Found by the e2e test of config tracking (``.ci/run`` on a loaded machine): the
    ConfigMap changed within the second the Rollout was created, so the first two
    revisions' Deployments had the same ``creationTimestamp`` (one second's resolution).
    ``revisionHistoryLimit: 1``; once a third was promoted, the pruning ordered the idle
    revisions by that timestamp alone and kept the first, deleting the second (the one a
    rollback goes to) with its history and its config copies. Ties go by the revision's
    number in the history. The simulated creations carry such timestamps now."""
    c = Cluster(Config(replicas=2, steps=[{"setWeight": 50}, {"pause": {}}], history_limit=1))
    c.reconcile()  # v1 created
    c.spec["template"] = template(2)
    c.bump(spec=True)
    for _ in range(3):  # v1 steady, v2 created in the same second
        c.reconcile()
        c.advance(0, controller_acts=True)
    v1, v2, v3 = (c.revision(i) for i in (1, 2, 3))
    assert c.deps[f"web-{v1}"].created == c.deps[f"web-{v2}"].created

    def promoted(revision: str) -> None:
        for n in range(20):
            c.advance(1, controller_acts=True)
            c.reconcile()
            if c.status is not None and c.status.get("phase") == "Paused":
                c.body["metadata"]["annotations"]["ramp.dev/promote"] = f"{revision}-{n}"
                c.bump()
            if c.status is not None and c.status["stableRevision"] == revision:
                return
        raise AssertionError(f"{revision} not promoted: {c.status}")

    promoted(v2)
    c.spec["template"] = template(3)
    c.bump(spec=True)
    promoted(v3)
    for _ in range(6):
        c.advance(1, controller_acts=True)
        c.reconcile()
    assert f"web-{v2}" in c.deps and f"web-{v1}" not in c.deps
    assert sorted(c.history) == sorted([v2, v3])
