"""Named example found by ``make fuzz`` (the blue-green machine, a random batch): a status
lost in the one reconcile between an accepted promotion and the history mark that follows
it. The history then has no promoted revision; the planner took the spec's template, which
nobody had run, as a "first revision" and made it stable ((a): stable but never promoted).
The fix then: the stable is the child Ramp labelled stable. Since the second finding below,
the previous promotion's history entry is kept until the new one is marked, and a lost
status recovers it (the history is the record; a proven revision, never the template
nobody ran); the child labelled stable is the fallback when the history marks no
promotion (a status written before history existed).

Then (``make fuzz-for``, seed 1060942604) the same window with the promoted revision's
Deployment deleted too: no child labelled stable, and the previous stable's history entry
was pruned in the very pass of the promotion (``revisionHistoryLimit: 0``). Nothing said
which revision was proven, and the template nobody ran was made stable again. The
previous promotion's entry is now kept until the new one is marked: the lost status
recovers the previous stable (a proven revision; recreated from its template), and v3
goes through the steps.
"""

from __future__ import annotations

from model.sim import NAME, Cluster, Config, template
from model.sim_bluegreen import ACTIVE, bg_cluster
from ramp.api.labels import revision_hash

V1, V2, V3 = (revision_hash(template(i)) for i in (1, 2, 3))
BG = Config(
    replicas=1,
    services=False,
    history_limit=0,
    blue_green={"activeService": ACTIVE, "scaleDownDelaySeconds": 0},
)


def wipe_right_after_promotion(c: Cluster, delete_stable: bool = False) -> list[str]:
    """Roll to v2 and lose the status the moment it says v2 is stable (before the mark),
    then roll to v3; return the events of every pass after the loss. With
    ``delete_stable`` v2's Deployment goes too (``kubectl delete deploy``, foreground)."""
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
    if delete_stable:
        c.deps.pop(f"{NAME}-{V2}")
    c.spec["template"] = template(3)
    c.bump(spec=True)
    reasons: list[str] = []
    for _ in range(3):
        c.advance(1, controller_acts=True)
        result = c.reconcile()
        assert result is not None
        reasons += [e.reason for e in result.events]
    return reasons


def test_blue_green_status_lost_before_the_mark_recovers_a_proven_revision() -> None:
    c = bg_cluster(BG)
    reasons = wipe_right_after_promotion(c)
    assert "Initialized" not in reasons and "StatusRecovered" in reasons
    assert c.status is not None and c.status["stableRevision"] == V1  # marked promoted
    assert c.status["canaryRevision"] == V3  # v3 goes through the release, not around it


def test_canary_status_lost_before_the_mark_recovers_a_proven_revision() -> None:
    c = Cluster(Config(replicas=2, services=False, history_limit=0, steps=[]))
    reasons = wipe_right_after_promotion(c)
    assert "Initialized" not in reasons and "StatusRecovered" in reasons
    assert c.status is not None and c.status["stableRevision"] == V1  # marked promoted


def test_canary_status_and_stable_lost_before_the_mark_recovers_the_previous_stable() -> None:
    c = Cluster(Config(replicas=2, services=False, history_limit=0, steps=[{"setWeight": 50}]))
    reasons = wipe_right_after_promotion(c, delete_stable=True)
    assert "Initialized" not in reasons and "StatusRecovered" in reasons, reasons
    assert c.status is not None and c.status["stableRevision"] == V1
    assert c.status["canaryRevision"] == V3


def test_blue_green_status_and_stable_lost_before_the_mark_recovers_the_previous_stable() -> None:
    c = bg_cluster(BG)
    reasons = wipe_right_after_promotion(c, delete_stable=True)
    assert "Initialized" not in reasons and "StatusRecovered" in reasons, reasons
    assert c.status is not None and c.status["stableRevision"] == V1
    assert c.status["canaryRevision"] == V3


def test_a_token_recorded_when_the_status_was_recreated_while_paused_stays_handled() -> None:
    """make fuzz-for, seed 9766017 ((e), the canary machine, a tracked ConfigMap). A
    ``promote-full`` acted on; the Rollout paused; its status lost (a restore): the pass
    that recreated the status recorded the token present as handled and not applied, but
    the pause's hold then set the promotions' record back to the old status' (none), so
    after the resume the same token acted again. The hold now keeps only the promotions
    this pass has not acted on."""
    from hypothesis import strategies as st

    from model.test_model_based import RolloutMachine
    from ramp.api.analysis import Verdict

    m = RolloutMachine()
    cfg = Config(replicas=1, deadline=30, services=False, history_limit=0, track_config=True)
    m.start(cfg=cfg, start_rollout=True, verdict=Verdict.PASS, delay=2.0)
    m.token(verb="promote-full")
    m.drive(rounds=1, seconds=1)
    data: st.DataObject = None  # type: ignore[assignment]  # the two chaos kinds draw nothing
    m._paused(data)
    m._wipe_status(data)
    m.drive(rounds=1, seconds=1)  # the status recreated: t1 recorded, not applied
    m._paused(data)  # resumed
    m.drive(rounds=1, seconds=1)  # (e) failed here: promote-full=t1 had its effect again
    status = m.cluster.status
    assert status is not None and status["handledTokens"]["promoteFull"] == "t1"
