"""Named regressions of issue 19, classes 1-3: what a Service Ramp pins selects, judged as
a user sees it (the oracle matches the Service's whole selector against the simulated
pods' labels, :meth:`model.sim.Oracle.judge_service`), in the canary and the blue-green
machines. Each fails on f61a406 (the oracle raises) and passes now.
"""

from __future__ import annotations

from dataclasses import replace

from model.sim import NAME, Cluster, Config, first_revision_runs, template
from model.sim_bluegreen import ACTIVE, PREVIEW, bg_cluster
from model.sim_workload import delete_rollout, unref
from ramp.api.labels import REVISION_LABEL, revision_hash

V1 = revision_hash(template(1))
STABLE, CANARY = f"{NAME}-stable", f"{NAME}-canary"
PAUSED = [{"setWeight": 50}, {"pause": {}}]


def drive(c: Cluster, rounds: int, seconds: float = 3) -> None:
    for _ in range(rounds):
        c.advance(seconds, controller_acts=True)
        c.reconcile()


def steady(c: Cluster) -> Cluster:
    drive(c, 4)
    assert c.status is not None and c.status["stableRevision"] == V1
    return c


def token(c: Cluster, verb: str, value: str) -> None:
    c.body["metadata"]["annotations"][f"ramp.dev/{verb}"] = value
    c.bump()


def bg(**fields: object) -> Config:
    return Config(
        replicas=3,
        services=False,
        blue_green={"activeService": ACTIVE, "previewService": PREVIEW, **fields},
    )


# -- class 1: a selector change ---------------------------------------------------------


def test_class1_selector_key_added_keeps_the_stable_service_on_the_running_pods() -> None:
    """A key added to matchLabels and the template in one apply re-pinned the stable
    Service with that key, which the running (stable) pods lack: zero endpoints while
    the Rollout waited at its pause."""
    c = steady(Cluster(Config(replicas=4, steps=PAUSED)))
    c.change_selector()
    drive(c, 8)
    assert c.status is not None and c.status["currentStepIndex"] == 1  # paused, waiting
    assert c.services[STABLE] == {"app": NAME, REVISION_LABEL: V1}
    canary = c.status["canaryRevision"]
    assert c.services[CANARY] == {"app": NAME, "track": "x", REVISION_LABEL: canary}


def test_class1_selector_key_removed_after_promotion_leaves_no_stale_key() -> None:
    """Taking the key out again: the Service kept ``track: x`` (no longer a matchLabels
    key, so no longer written) and selected none of the new revision's pods."""
    c = steady(Cluster(Config(replicas=2, steps=[{"setWeight": 50}])))
    c.change_selector()
    drive(c, 8)
    assert (c.services[STABLE] or {}).get("track") == "x"  # promoted with the key
    c.change_selector()
    drive(c, 8)
    stable = c.status["stableRevision"] if c.status else None
    assert c.services[STABLE] == {"app": NAME, REVISION_LABEL: stable}


def test_class1_bluegreen_selector_change_keeps_the_active_service_on_blue() -> None:
    c = steady(bg_cluster(bg(autoPromotionEnabled=False)))
    c.change_selector()
    drive(c, 6)
    assert c.services[ACTIVE] == {"app": NAME, REVISION_LABEL: V1}  # waiting for promote
    token(c, "promote", "p1")
    drive(c, 6)
    green = c.status["stableRevision"] if c.status else None
    assert green != V1
    assert c.services[ACTIVE] == {"app": NAME, "track": "x", REVISION_LABEL: green}


# -- class 3: an existing Service that serves a plain Deployment ------------------------


def test_class3_canary_narrows_an_existing_service_only_once_its_revision_is_ready() -> None:
    """A stableService that serves a running Deployment (a migration, `kubectl ramp
    convert`'s output) was pinned at once to Ramp's revision with no ready pod."""
    c = Cluster(Config(replicas=3, plain=3, steps=PAUSED))
    c.reconcile()  # Ramp's stable is created: no pod ready yet
    assert c.services[STABLE] == {"app": NAME}  # still serving the Deployment's pods
    drive(c, 4)
    assert c.services[STABLE] == {"app": NAME, REVISION_LABEL: V1}


def test_class3_bluegreen_narrows_an_existing_service_only_once_available() -> None:
    """Blue-green already did (issue 10): kept as a named example of the vocabulary."""
    c = bg_cluster(Config(**{**bg().__dict__, "plain": 3}))
    c.reconcile()
    assert c.services[ACTIVE] == {"app": NAME}
    drive(c, 4)
    assert c.services[ACTIVE] == {"app": NAME, REVISION_LABEL: V1}


# -- class 2: workloadRef give-back ---------------------------------------------------


def adopted(cfg: Config) -> Cluster:
    """A Deployment adopted (``workloadRef``), its Services created afterwards (so that
    the example does not depend on class 3)."""
    c = bg_cluster(cfg) if cfg.blue_green is not None else Cluster(cfg)
    names = sorted(c.services)
    c.services = dict.fromkeys(names)
    drive(c, 10)
    assert c.plain is not None and c.plain.replicas == 0  # progressively scaled down
    assert c.status is not None and c.status["stableRevision"] == V1
    c.services = {name: {"app": NAME} for name in names}
    drive(c, 2)
    return c


def test_class2_deleted_rollout_gives_back_its_services_with_the_deployment() -> None:
    """Deleting a Rollout with workloadRef brought the Deployment back but left
    ``ramp.dev/revision`` in the Services: zero endpoints once Ramp's pods were gone."""
    c = adopted(Config(replicas=3, workload_ref=True))
    assert c.services[STABLE] == {"app": NAME, REVISION_LABEL: V1}
    delete_rollout(c)
    drive(c, 8)
    assert c.gone
    assert c.plain is not None and c.plain.ready == 3
    assert c.services[STABLE] == c.services[CANARY] == {"app": NAME}


def test_class2_bluegreen_deleted_rollout_gives_back_its_services() -> None:
    c = adopted(Config(**{**bg().__dict__, "workload_ref": True}))
    delete_rollout(c)
    drive(c, 8)
    assert c.gone
    assert c.services[ACTIVE] == c.services[PREVIEW] == {"app": NAME}


def test_class2_workloadref_removed_keeps_serving_through_the_rollout() -> None:
    """workloadRef removed (the template written instead): the Deployment is given back
    and the Rollout goes on; its Services stay on its ready pods."""
    c = adopted(Config(replicas=3, workload_ref=True))
    unref(c)
    drive(c, 8)
    assert c.plain is not None and c.plain.replicas == 3 and not c.held.paused
    assert c.services[STABLE] == {"app": NAME, REVISION_LABEL: V1}


# -- a pass whose view lags (make fuzz-for, seed 768349580) ------------------------------


def test_a_canary_deleted_behind_a_lagging_index_is_judged_once_the_planner_can_see_it() -> None:
    """Someone deletes the canary's Deployment; the next pass reads a child index that
    does not show it yet and rightly writes nothing new. The canary Service (pinned to the
    canary, whose pods are gone) selects no ready pod: the user's delete did that, not a
    write of Ramp's, and no plan can answer what it cannot see. The oracle judged that pass
    and reported (f); it now judges the Services after a pass that saw the truth, which
    moves the pin within that pass (the oracle of that pass must pass, so this fails if the
    planner stops answering a deleted canary)."""
    c = steady(Cluster(Config(replicas=4, max_surge=1, steps=PAUSED)))
    c.spec["template"] = template(2)
    c.bump(spec=True)
    drive(c, 6)
    v2 = revision_hash(template(2))
    assert c.services[CANARY] == {"app": NAME, REVISION_LABEL: v2}
    assert c.deps[f"{NAME}-{v2}"].ready > 0
    c.deps.pop(f"{NAME}-{v2}")  # kubectl delete deployment, its pods gone with it
    c.advance(1, controller_acts=True)
    c.reconcile(lag_children=True)  # the index still shows the canary
    c.advance(1, controller_acts=True)
    c.reconcile()  # sees it gone: judged, and the canary Service must select ready pods
    assert c.services[CANARY] != {"app": NAME, REVISION_LABEL: v2}


def test_a_scale_to_zero_of_ours_behind_a_lagging_index_is_not_counted_as_serving() -> None:
    """make fuzz-for, seed 986322198 ((b): ready pods 1 -> 0). R=1, no steps: v2 is
    promoted and v1 scaled to 0; the template goes back to v1 and the next pass reads an
    index that does not show that scale yet (v1: 1 replica, 1 ready). Planned from it, v1
    looked serving and v2, the only pod that stays, was scaled to 0. The shell now plans
    a child it scaled as it scaled it until the watch shows it (Expectations.overlay)."""
    c = steady(Cluster(Config(replicas=1, max_surge=1, steps=[])))
    c.spec["template"] = template(2)
    c.bump(spec=True)
    for _ in range(12):
        c.advance(1, controller_acts=True)
        c.reconcile()
        if c.deps[f"{NAME}-{V1}"].replicas == 0:
            break  # the pass that scaled v1 to 0: the next view may not show it
    assert c.deps[f"{NAME}-{V1}"].replicas == 0
    c.spec["template"] = template(1)
    c.bump(spec=True)
    c.reconcile(lag_children=True)  # the oracle's (b) fails here without the overlay
    drive(c, 6)
    assert c.status is not None and c.status["stableRevision"] == V1


def test_a_service_moved_off_pods_a_lagging_index_showed_unready_is_judged_next_pass() -> None:
    """make fuzz-for, seed 338110868 ((f), an oracle defect). R=1, no steps: the stable's
    pod went unready (its pass saw 0/1), a new template, and the pod was ready again; the
    pass read an index that did not show it yet. Planned from it, the canary Service,
    which selected the stable with no ready pod, moved to the new canary (no pod yet).
    That pass cannot know; the next one, which sees the stable's pod ready, moves the
    canary Service back to it until the canary has a ready pod."""
    c = steady(Cluster(Config(replicas=1, max_surge=1, steps=[])))
    c.ready_delay[V1] = 15.0  # the stable's pod unready (until 15 s after it started)
    drive(c, 1, 1)
    assert c.deps[f"{NAME}-{V1}"].ready == 0
    c.spec["template"] = template(2)
    c.bump(spec=True)
    c.ready_delay[V1] = 2.0  # ready again
    c.advance(1, controller_acts=True)
    assert c.deps[f"{NAME}-{V1}"].ready == 1
    c.reconcile(lag_children=True)  # the oracle's (f) failed here
    v2 = revision_hash(template(2))
    assert c.services[CANARY] == {"app": NAME, REVISION_LABEL: v2}
    c.reconcile()  # judged: the canary Service selects a ready pod again
    assert c.services[CANARY] == {"app": NAME, REVISION_LABEL: V1}
    drive(c, 4, 1)
    assert c.status is not None and c.status["stableRevision"] == v2


def test_a_rollout_deleted_with_its_stable_gone_gives_the_services_back_at_once() -> None:
    """make fuzz-for, seed 539499381 ((f)): mid-adoption (the Deployment still has a ready
    pod, the stable Service already pinned to Ramp's revision), someone deletes Ramp's
    stable Deployment, then the Rollout. The give-back unpaused the Deployment first and
    unpinned the Services only in a later pass: meanwhile the Service selected no pod
    while the Deployment's pod was ready. The Services are now unpinned in the pass that
    starts the give-back (unpinned, they select the Deployment's pods beside Ramp's)."""
    c = Cluster(Config(replicas=1, workload_ref=True, steps=[]))
    for _ in range(12):
        c.advance(1, controller_acts=True)
        c.reconcile()
        pinned = REVISION_LABEL in (c.services[STABLE] or {})
        if pinned and c.plain is not None and c.plain.ready > 0:
            break
    assert pinned and c.plain is not None and c.plain.ready > 0
    c.deps.pop(f"{NAME}-{V1}")  # kubectl delete deployment web-<hash>
    delete_rollout(c)
    c.reconcile()  # the oracle's (f) fails here without the fix
    assert c.services[STABLE] == {"app": NAME}
    drive(c, 8)
    assert c.gone


def test_a_rollback_pins_no_service_to_a_stable_whose_scale_down_the_index_has_not_shown() -> None:
    """make fuzz-for, seed 16224389 ((f)). R=1, no steps, a tracked ConfigMap: the canary
    got ready, the stable was scaled to 0 and its pod went; the config went back to the
    stable's and the next pass read an index still showing the stable's pod ready. The
    Services moved to the stable for a pod that was gone. A revision's ready pods count
    for the pins only up to its replicas (the overlay gives the scale written)."""
    c = Cluster(Config(replicas=1, max_surge=1, steps=[], history_limit=0, track_config=True))
    first_revision_runs(c)
    c.ready_delay[c.revision(2)] = 2.0
    c.set_config(2, False)
    drive(c, 1, 1)
    drive(c, 2, 2)
    v1 = c.revision(1)
    assert c.deps[f"{NAME}-{v1}"].replicas == 0
    c.advance(1, controller_acts=True)  # its pod goes
    c.set_config(1, False)  # back to the stable's config: a rollback
    c.reconcile(lag_children=True)  # the oracle's (f) fails here without the fix
    assert c.services[STABLE] == {"app": NAME, REVISION_LABEL: c.revision(2)}
    drive(c, 6)
    assert c.services[STABLE] == {"app": NAME, REVISION_LABEL: v1}


def test_a_pin_made_by_a_pass_cut_after_its_service_writes_is_a_takeover() -> None:
    """make fuzz-for, seed 153825904 ((f), an oracle defect). Mid-adoption (the adopted
    Deployment still has a ready pod), a new template: the pass that started it pinned the
    stable Service to Ramp's ready stable revision and was cut by a restart before its
    scales. Its pin was not recorded as a takeover, so when that pod then went unready the
    oracle counted the Deployment's pod as one the Service should select -- which it does
    not after a takeover that a whole pass makes (judged the same way, not a fault). The
    oracle now notes takeovers after any pass whose Service writes were carried out."""
    c = Cluster(Config(replicas=2, max_unavailable=0, steps=[], history_limit=0, workload_ref=True))
    first_revision_runs(c)
    assert c.plain is not None and min(c.plain.ready, c.plain.replicas) >= 1
    assert c.deps[f"{NAME}-{V1}"].ready >= 1
    assert REVISION_LABEL not in (c.services[STABLE] or {})  # not yet pinned
    c.ready_delay[c.revision(2)] = 2.0
    assert c.change_workload(template(2))
    c.ready_delay[V1] = 15.0  # its pods' readiness probe fails for a while
    c.reconcile(cut=4)  # history, creates, status, services: a restart before the scales
    assert c.services[STABLE] == {"app": NAME, REVISION_LABEL: V1}  # pinned to a ready pod
    c.advance(1, controller_acts=True)
    assert c.deps[f"{NAME}-{V1}"].ready == 0 and min(c.plain.ready, c.plain.replicas) >= 1
    c.reconcile()  # the oracle's (f) fails here without noting the cut pass's takeover
    assert c.services[STABLE] == {"app": NAME, REVISION_LABEL: V1}
    drive(c, 10)
    assert c.status is not None and c.status["stableRevision"] == c.revision(2)


def test_a_stale_read_that_undoes_a_scale_down_moves_the_canary_service_back() -> None:
    """make fuzz-for, seed 499187107 ((f)). R=1, surge 1, unavailable 1, one step at
    weight 0: a pass heads to full (the stable to 0, the canary to 1, the canary Service
    pinned to the canary, not ready yet); the next pass reads the Rollout as it was
    before (a stale body: step 0) and plans it back (the stable to 1, the canary to 0)
    before the Deployment controller carried out the stable's scale-down, so its pod is
    still ready. The canary Service stayed on the drained canary: the pins counted only
    ready pods of a child not being scaled down, and no child had one. A child whose
    ready pods this plan keeps is chosen next."""
    c = Cluster(
        Config(replicas=1, max_surge=1, max_unavailable=1, steps=[{"setWeight": 0}], deadline=30)
    )
    first_revision_runs(c)
    v2 = c.revision(2)
    c.ready_delay[v2] = 2.0
    c.spec["template"] = template(2)
    c.bump(spec=True)
    for cut in (0, 2, 7, 7):
        c.reconcile(cut=cut)
    assert c.services[CANARY] == {"app": NAME, REVISION_LABEL: v2}
    assert c.deps[f"{NAME}-{V1}"].replicas == 0 and c.deps[f"{NAME}-{V1}"].ready == 1
    c.reconcile(stale_body=True)  # the oracle's (f) fails here without the fix
    assert c.services[CANARY] == {"app": NAME, REVISION_LABEL: V1}
    drive(c, 8)
    assert c.status is not None and c.status["stableRevision"] == v2


def test_a_selector_key_taken_out_again_leaves_the_services_as_they_move_to_the_stable() -> None:
    """make fuzz-for, seed 217938708 ((f), canary machine, history limit 0). ``track: x``
    added to the selector and the template labels mid-promotion (the canary replaced by
    one whose pods carry it, the old canary deleted): the Services moved to it with the
    key. Then the key was taken out again: a new canary, the stable scaled back up, and
    the Services moved to the stable still selecting ``track: x``, which its pods lack:
    they selected none. The key was a label of no revision Ramp knew (the history pruned,
    the template without it), so it was kept as the user's. A live child's pod labels
    are Ramp's keys too now."""
    from model.test_model_based import RolloutMachine
    from ramp.api.analysis import Verdict

    steps = [{"setWeight": 20}, {"pause": {"duration": "5s"}}]
    cfg = Config(replicas=5, max_surge="25%", max_unavailable="25%", steps=steps, history_limit=0)
    m = RolloutMachine()
    m.start(cfg=cfg, verdict=Verdict.PASS, delay=2.0, start_rollout=True)
    m.advance(acts=False, seconds=1)
    m.drive(rounds=5, seconds=5)
    for verb in ("promote", "promote", "promote", "promote-full"):
        m.token(verb=verb)
    c = m.cluster
    c.change_selector()
    assert c.status is not None
    c.deps[f"{NAME}-{c.status['canaryRevision']}"].deleting = True  # kubectl delete
    for _ in range(2):
        c.reconcile()
        c.advance(10, controller_acts=True)
    for _ in range(3):
        c.advance(10, controller_acts=True)
    c.reconcile()
    tracked = c.status["canaryRevision"]
    assert c.services["web-stable"] == {"app": NAME, REVISION_LABEL: tracked, "track": "x"}
    c.change_selector()  # taken out again
    m.drive(rounds=4, seconds=1)  # the oracle's (f) failed here
    stable = c.status["stableRevision"]
    assert c.services["web-stable"] == {"app": NAME, REVISION_LABEL: stable}


def test_a_service_moved_onto_a_stable_deleted_unseen_is_judged_next_pass() -> None:
    """make fuzz-for, seed 899243642 ((f), an oracle defect). R=2, no steps: the canary
    Service already selected the new canary (1 pod ready), the stable (2 ready) was being
    scaled down; someone deleted the stable's Deployment (foreground) and set the template
    back to the stable's. The pass read an index that did not show the deletion: the
    release was left, and the canary Service moved back to the stable, whose pods were
    going. That pass cannot know; the next one, which sees the deletion, moves the canary
    Service back to the pods that serve."""
    from model.test_model_based import RolloutMachine
    from ramp.api.analysis import Verdict

    m = RolloutMachine()
    cfg = Config(replicas=2, deadline=30, history_limit=0)
    m.start(cfg=cfg, start_rollout=True, verdict=Verdict.PASS, delay=2.0)
    m.drive(rounds=3, seconds=2)
    c = m.cluster
    v2 = revision_hash(template(2))
    assert c.services[CANARY] == {"app": NAME, REVISION_LABEL: v2}
    c.deps[f"{NAME}-{V1}"].deleting = True  # kubectl delete --cascade=foreground
    m.set_template(image=1, invalid=False)
    c.reconcile(lag_children=True, cut=7)  # the oracle's (f) failed here
    assert c.services[CANARY] == {"app": NAME, REVISION_LABEL: V1}
    c.reconcile()  # judged: the canary Service selects a ready pod again
    assert c.services[CANARY] == {"app": NAME, REVISION_LABEL: v2}


def test_a_pin_made_by_a_refused_pass_is_a_takeover_all_the_same() -> None:
    """make fuzz-for, seed 134641869 ((f), an oracle defect). Blue-green mid-adoption
    (R=1): the pass whose second write the API server refused (429) pinned both Services
    to Ramp's ready stable, beside the adopted Deployment's pod scaled away. Someone then
    deleted the stable's Deployment: the Services selected nothing until it came back,
    and the oracle counted the adopted Deployment's pod as one they should select: the
    refused pass had been skipped without recording its takeover. A takeover is recorded
    now whether the pass is judged or not."""
    bg = {"activeService": ACTIVE, "previewService": PREVIEW, "scaleDownDelaySeconds": 5,
          "abortScaleDownDelaySeconds": 0}  # fmt: skip
    cfg = Config(replicas=1, deadline=30, services=False, history_limit=0, blue_green=bg)
    c = bg_cluster(replace(cfg, workload_ref=True))
    for _ in range(3):
        c.reconcile()
        c.advance(3, controller_acts=True)
    c.ready_delay[c.revision(2)] = 2.0
    assert c.change_workload(template(2))
    assert c.endpoints[ACTIVE] == {"plain": 1}  # not pinned yet: the Deployment's pod
    c.refuse = (2, 429)
    c.reconcile(cut=7)
    blue = c.deps[f"{NAME}-{V1}"]
    assert c.services[ACTIVE] == {"app": NAME, REVISION_LABEL: V1} and blue.ready == 1
    del c.deps[blue.name]
    c.reconcile(cut=7)  # the oracle's (f) failed here
    drive(c, 5)  # blue is back, green is switched to
    assert c.status is not None and c.status["stableRevision"] == c.revision(2)
    assert c.endpoints[ACTIVE] == {c.revision(2): 1}
