"""Named examples of issue 25 (tracked configuration), replayed through the simulated
cluster: a change of the ConfigMap's data is a release through the steps with the stable's
children on the old copy, an abort keeps them there, data changed back is a rollback, and
a deleted ConfigMap is an invalid spec that changes nothing. The oracle's (cfg) holds in
each: nothing Ramp writes reads the ConfigMap itself."""

from __future__ import annotations

import pytest

from model.sim import Cluster, Config, template
from model.sim_bluegreen import ACTIVE, PREVIEW, bg_cluster
from model.sim_config import SOURCE
from ramp.core.config_tracking import config_of

STEPS = [{"setWeight": 50}, {"pause": {}}]


def steady(cfg: Config) -> Cluster:
    c = bg_cluster(cfg) if cfg.blue_green is not None else Cluster(cfg)
    drive(c, 4)
    assert c.status is not None and c.status["phase"] == "Healthy", c.status
    return c


def drive(c: Cluster, rounds: int, seconds: float = 3) -> list[str]:
    reasons = []
    for _ in range(rounds):
        c.advance(seconds, controller_acts=True)
        result = c.reconcile()
        reasons += [e.reason for e in result.events] if result is not None else []
    return reasons


def copies_read(c: Cluster, revision: str | None) -> set[str]:
    """The copies the Deployment of ``revision`` has its pods read."""
    return {
        copy for d in c.owned() if d.revision == revision for copy in config_of(d.template).values()
    }


def token(c: Cluster, verb: str, value: str) -> None:
    c.body["metadata"]["annotations"][f"ramp.dev/{verb}"] = value
    c.bump()


def tracked(**fields: object) -> Config:
    return Config(replicas=2, steps=STEPS, services=False, track_config=True, **fields)  # type: ignore[arg-type]


def test_a_data_change_is_a_canary_and_an_abort_keeps_the_stable_on_its_copy() -> None:
    c = steady(tracked())
    assert c.status is not None
    stable = c.status["stableRevision"]
    (old,) = copies_read(c, stable)
    c.set_config(2, invalid=False)
    reasons = drive(c, 6)
    assert "RolloutStarted" in reasons
    canary = c.status["canaryRevision"]
    assert c.status["phase"] == "Paused" and canary == c.revision(2)
    assert copies_read(c, stable) == {old}
    (new,) = copies_read(c, canary)
    assert new != old and new.startswith(f"{SOURCE.name}-")
    token(c, "abort", "a1")
    drive(c, 6)
    assert c.status["phase"] == "Aborted" and c.status["stableRevision"] == stable
    assert copies_read(c, stable) == {old}


def test_data_back_to_the_stables_mid_canary_is_a_rollback() -> None:
    c = steady(tracked())
    assert c.status is not None
    stable = c.status["stableRevision"]
    c.set_config(3, invalid=False)
    drive(c, 6)
    assert c.status["canaryRevision"] == c.revision(3)
    c.set_config(1, invalid=False)  # the data the stable was made with
    reasons = drive(c, 6)
    assert "RolledBack" in reasons
    assert c.status["stableRevision"] == stable and not c.status.get("canaryRevision")


def test_a_deleted_configmap_is_an_invalid_spec_that_changes_nothing() -> None:
    c = steady(tracked())
    assert c.status is not None
    before = {d.name: d.replicas for d in c.owned()}
    c.set_config(1, invalid=True)
    drive(c, 6)
    invalid = next(x for x in c.status["conditions"] if x["type"] == "InvalidSpec")
    assert invalid["status"] == "True" and "ConfigMap settings" in invalid["message"]
    assert {d.name: d.replicas for d in c.owned()} == before
    c.set_config(1, invalid=False)  # back with the same data: nothing to roll out
    drive(c, 4)
    assert c.status["phase"] == "Healthy" and not c.status.get("canaryRevision")


def test_a_blue_green_data_change_switches_to_green_on_its_copy() -> None:
    bg = {"activeService": ACTIVE, "previewService": PREVIEW, "scaleDownDelaySeconds": 0}
    c = steady(Config(replicas=2, services=False, blue_green=bg, track_config=True))
    assert c.status is not None
    blue = c.status["stableRevision"]
    c.set_config(2, invalid=False)
    drive(c, 12)
    assert c.status["stableRevision"] == c.revision(2) != blue
    assert copies_read(c, c.revision(2)) and copies_read(c, c.revision(2)) != {
        copy for d in c.owned() if d.revision == blue for copy in config_of(d.template).values()
    }


def test_an_untracked_template_is_planned_as_written() -> None:
    c = steady(Config(replicas=2, steps=STEPS, services=False))
    assert all(not config_of(d.template) for d in c.owned())
    assert c.tpl(1) == template(1)


@pytest.mark.parametrize("track", [False, True], ids=["untracked", "tracked"])
def test_a_selector_change_then_promotes_leaves_the_stable_service_on_a_ready_pod(
    track: bool,
) -> None:
    """Found by the canary machine with tracked configuration on (issue 25), and the same
    without it on main at 4681e67 (fixed by 5b1a432, pins falling back to a child's own
    pod-template labels): replicas 1, no steps, background analysis; promotes,
    ``track: x`` added to the selector and the template labels, more promotes. The oracle's
    (f): Service web-stable selects the new revision (with ``track: x``) and no ready pod
    while the Rollout has one ready."""
    from model.test_model_based import RolloutMachine
    from ramp.api.analysis import Verdict

    background = {
        "metrics": [
            {
                "name": "bg",
                "interval": "5s",
                "count": 2,
                "consecutiveErrorLimit": 1,
                "prometheus": {"address": "http://prometheus:9090", "query": "up"},
                "successCondition": "result > 0",
            }
        ],
        "startingStep": 0,
    }
    cfg = Config(replicas=1, background=background, history_limit=0, track_config=track)
    m = RolloutMachine()
    m.start(cfg=cfg, start_rollout=True, delay=2.0, verdict=Verdict.PASS)
    m.token(verb="promote")
    m.drive(rounds=3, seconds=10)
    for _ in range(3):
        m.token(verb="promote")
    m._selector(None)  # type: ignore[arg-type]
    for _ in range(4):
        m.token(verb="promote")
    m.drive(rounds=5, seconds=1)


def test_a_pruned_entry_of_an_edited_child_is_made_again_from_what_ramp_wrote() -> None:
    """make fuzz-for, seed 973134997 ((cfg), a simulation defect): blue-green, a tracked
    ConfigMap, ``revisionHistoryLimit: 1``. Someone edited blue's pod template; green was
    switched to and blue's history entry pruned; a rollback wrote blue's entry again from
    its Deployment, then someone deleted blue, which was recreated from that entry. The
    simulated shell copied the Deployment's (edited) pod template into the entry, a
    template reading the ConfigMap itself; the real shell copies the template Ramp wrote
    (the Deployment's ``ramp.dev/template`` annotation), which the simulation now does."""
    from model.sim import metric
    from model.test_model_bluegreen import BlueGreenMachine
    from ramp.api.analysis import Verdict

    bg = {
        "activeService": ACTIVE,
        "previewService": PREVIEW,
        "scaleDownDelaySeconds": 30,
        "abortScaleDownDelaySeconds": 30,
        "prePromotionAnalysis": {"metrics": [metric("pre")]},
    }
    cfg = Config(
        replicas=3, deadline=30, services=False, history_limit=1, blue_green=bg, track_config=True
    )
    m = BlueGreenMachine()
    m.start(cfg=cfg, start_release=True, verdict=Verdict.PASS, delay=2.0)
    c = m.cluster
    blue = c.status["stableRevision"] if c.status else ""
    c.change_selector()
    c.edit_template(c.deps[f"web-{blue}"], "image")  # kubectl set image deploy/web-<blue>
    c.reconcile(stale_body=True, cut=7)
    m.drive(rounds=2, seconds=1)
    m.drive(rounds=2, seconds=1)
    m.drive(rounds=4, seconds=2)
    c.reconcile(cut=7)
    assert blue not in c.history  # pruned
    m.token(verb="rollback")
    m.drive(rounds=1, seconds=1)
    del c.deps[f"web-{blue}"]  # kubectl delete deploy/web-<blue>
    m.drive(rounds=1, seconds=1)  # (cfg) failed here: blue recreated reading the ConfigMap
    read = copies_read(c, blue)
    assert read and SOURCE.name not in read  # recreated, reading its copy
