"""Named example found by ``make fuzz`` (the blue-green machine, a random batch): a status
lost in the one reconcile between an accepted promotion and the history mark that follows
it. The history then has no promoted revision; the planner took the spec's template, which
nobody had run, as a "first revision" and made it stable ((a): stable but never promoted).
The stable is the child Ramp labelled stable (a label written only after a status saying so
was accepted), in both machines.
"""

from __future__ import annotations

from model.sim import Cluster, Config, template
from model.sim_bluegreen import ACTIVE, bg_cluster
from ramp.api.labels import revision_hash

V1, V2, V3 = (revision_hash(template(i)) for i in (1, 2, 3))


def wipe_right_after_promotion(c: Cluster) -> list[str]:
    """Roll to v2 and lose the status the moment it says v2 is stable (before the mark),
    then roll to v3; return the events of every pass after the loss."""
    for _ in range(4):
        c.reconcile()
        c.advance(3, controller_acts=True)
    assert c.status is not None and c.status["stableRevision"] == V1
    c.spec["template"] = template(2)
    c.bump(spec=True)
    for _ in range(20):
        c.advance(2, controller_acts=True)
        c.reconcile()
        if c.status is not None and c.status.get("stableRevision") == V2:
            break
    assert c.status is not None and c.status["stableRevision"] == V2
    c.status = None  # a restore without status, or a status subresource wiped
    c.bump()
    c.spec["template"] = template(3)
    c.bump(spec=True)
    reasons: list[str] = []
    for _ in range(3):
        c.advance(1, controller_acts=True)
        result = c.reconcile()
        assert result is not None
        reasons += [e.reason for e in result.events]
    return reasons


def test_blue_green_status_lost_before_the_mark_keeps_the_switched_green_stable() -> None:
    c = bg_cluster(
        Config(
            replicas=1,
            services=False,
            history_limit=0,
            blue_green={"activeService": ACTIVE, "scaleDownDelaySeconds": 0},
        )
    )
    reasons = wipe_right_after_promotion(c)
    assert "Initialized" not in reasons and "StatusRecovered" in reasons
    assert c.status is not None and c.status["stableRevision"] == V2
    assert c.status["canaryRevision"] == V3  # v3 goes through the release, not around it


def test_canary_status_lost_before_the_mark_keeps_the_promoted_revision_stable() -> None:
    c = Cluster(Config(replicas=2, services=False, history_limit=0, steps=[]))
    reasons = wipe_right_after_promotion(c)
    assert "Initialized" not in reasons and "StatusRecovered" in reasons
    assert c.status is not None and c.status["stableRevision"] == V2
