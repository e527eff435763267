"""Named examples of issue 19, classes 4, 7, 8 and 9 (promotion and history), replayed
through the simulated cluster of :mod:`model.sim` in both machines (canary and
blue-green). Each failed on f61a406 on the widened oracle: (k) a revision promoted (or
switched to) without ever running a ready pod of its own template, (l) a history mark
that says more than the accepted status, (m) Healthy while a child runs an edited
template, (n) a verb consumed by a refused create.
"""

from __future__ import annotations

from model.sim import NAME, Cluster, Config, template
from model.sim_bluegreen import ACTIVE, PREVIEW, bg_cluster
from ramp.api.labels import PROMOTED_ANNOTATION, REVISION_LABEL, revision_hash

V1, V2 = (revision_hash(template(i)) for i in (1, 2))


def steady(cfg: Config) -> Cluster:
    c = bg_cluster(cfg) if cfg.blue_green is not None else Cluster(cfg)
    for _ in range(4):
        c.reconcile()
        c.advance(3, controller_acts=True)
    assert c.status is not None and c.status["stableRevision"] == V1
    return c


def bg(**fields: object) -> Config:
    return Config(
        replicas=2,
        services=False,
        blue_green={"activeService": ACTIVE, "previewService": PREVIEW, **fields},
    )


def drive(c: Cluster, rounds: int, seconds: float = 3) -> list[str]:
    reasons = []
    for _ in range(rounds):
        c.advance(seconds, controller_acts=True)
        result = c.reconcile()
        assert result is not None
        reasons += [e.reason for e in result.events]
    return reasons


def roll_to(c: Cluster, image: int) -> None:
    c.spec["template"] = template(image)
    c.bump(spec=True)


def token(c: Cluster, verb: str, value: str) -> None:
    c.body["metadata"]["annotations"][f"ramp.dev/{verb}"] = value
    c.bump()


def scale(c: Cluster, replicas: int) -> None:
    c.spec["replicas"] = replicas  # KEDA, an off-hours scaler, kubectl scale
    c.bump(spec=True)


def condition(c: Cluster, ctype: str) -> dict[str, str]:
    assert c.status is not None
    return next(x for x in c.status["conditions"] if x["type"] == ctype)


# -- class 4: at zero replicas nothing unproven is promoted --------------------------------


def test_class4_canary_at_zero_replicas_holds_instead_of_promoting_an_unproven_revision() -> None:
    """f61a406: at spec.replicas 0 every step is 'reached' with nothing to wait for and
    a revision whose pods would never be ready was promoted ((k))."""
    c = steady(Config(replicas=3, steps=[{"setWeight": 20}, {"pause": {"duration": "5s"}}]))
    scale(c, 0)
    drive(c, 3)
    c.ready_delay[V2] = None  # its pods would never be ready
    roll_to(c, 2)
    reasons = drive(c, 12)
    assert "RolloutCompleted" not in reasons
    assert c.status is not None and c.status["stableRevision"] == V1
    assert c.status["phase"] == "Paused"
    assert condition(c, "Paused")["reason"] == "NoReplicas"
    scale(c, 3)  # back: the canary's pods never get ready; it is never promoted
    reasons = drive(c, 40)
    assert "RolloutCompleted" not in reasons
    assert c.status["stableRevision"] == V1 and c.status["abortedRevision"] == V2


def test_class4_canary_scaled_back_up_goes_on_and_promotes_once_proven() -> None:
    c = steady(Config(replicas=2, steps=[{"setWeight": 50}]))
    scale(c, 0)
    roll_to(c, 2)
    drive(c, 6)
    assert c.status is not None and c.status["stableRevision"] == V1
    scale(c, 2)
    reasons = drive(c, 12)
    assert "RolloutCompleted" in reasons and c.status["stableRevision"] == V2


def test_class4_bluegreen_at_zero_replicas_never_switches_to_an_unproven_green() -> None:
    """f61a406: green at size 0 was 'ready', the active Service switched to it and the
    release completed ((k)); scaled up again, nothing was ready."""
    c = steady(bg())
    scale(c, 0)
    drive(c, 3)
    c.ready_delay[V2] = None
    roll_to(c, 2)
    reasons = drive(c, 12)
    assert "Switched" not in reasons and "RolloutCompleted" not in reasons
    assert c.status is not None and c.status["stableRevision"] == V1
    assert condition(c, "Paused")["reason"] == "NoReplicas"
    scale(c, 2)
    reasons = drive(c, 40)
    assert "Switched" not in reasons
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1


# -- class 7: a refused create consumes no verb ----------------------------------------


def test_class7_canary_create_refused_consumes_no_promote_token() -> None:
    """f61a406: the canary's Deployment refused (422: a webhook's denial, an invalid
    Deployment) was planned as an invalid spec, which marked promote as handled and
    ignored ((n)). Now the token waits and acts once the create goes through."""
    c = steady(Config(replicas=2, steps=[{"setWeight": 50}, {"pause": {}}]))
    roll_to(c, 2)
    token(c, "promote", "p1")
    c.refuse = (2, 422)  # the history entry goes through; the create is refused
    c.reconcile()
    assert f"{NAME}-{V2}" not in c.deps
    assert c.status is not None
    assert (c.status.get("handledTokens") or {}).get("promote") != "p1"
    c.reconcile()  # the refusal is the next pass's input: reported as an invalid spec
    assert f"{NAME}-{V2}" not in c.deps
    assert (c.status.get("handledTokens") or {}).get("promote") != "p1"
    assert condition(c, "InvalidSpec")["status"] == "True"
    reasons = drive(c, 10)
    assert c.status["handledTokens"]["promote"] == "p1" and "Promoted" in reasons
    assert condition(c, "InvalidSpec")["status"] == "False"


def test_class7_bluegreen_green_create_refused_consumes_no_token() -> None:
    c = steady(bg(autoPromotionEnabled=False))
    roll_to(c, 2)
    token(c, "promote-full", "f1")
    c.refuse = (2, 400)  # an admission webhook denies it
    c.reconcile()
    c.reconcile()  # planned with the refusal
    assert c.status is not None
    assert (c.status.get("handledTokens") or {}).get("promoteFull") != "f1"
    reasons = drive(c, 10)
    assert "PromotedFull" in reasons and c.status["stableRevision"] == V2


def test_class7_a_token_found_with_no_status_is_ignored_even_beside_a_refused_create() -> None:
    """make fuzz-for, seed 613476233: a create refused (422), then the status wiped (a
    restore) with a promote token present. A token found when the status is (re)created
    may have been acted on before: recorded as handled and never acted on (the machines'
    "never twice" promise). The refusal consumed nothing, but the oracle's (n) blamed it:
    (n) now judges only passes that had a status to keep the token in."""
    c = steady(Config(replicas=2, steps=[{"setWeight": 50}, {"pause": {}}]))
    roll_to(c, 2)
    c.refuse = (2, 422)  # the history entry goes through; the create is refused
    c.reconcile()
    token(c, "promote", "p1")
    c.status = None  # restored from a backup without status
    c.bump()
    result = c.reconcile()  # planned with the refusal and no status
    assert result is not None
    assert "PromoteIgnored" in [e.reason for e in result.events]
    reasons = drive(c, 10)
    assert "Promoted" not in reasons  # the token found with no status never acts


# -- class 8: the history never says more than the accepted status -----------------------


def test_class8_abort_racing_a_promotion_leaves_no_promoted_mark_on_the_aborted_revision() -> None:
    """f61a406: a plan from a stale body promoted the canary and wrote ``promoted-at`` on
    its ControllerRevision before its status patch, which conflicted (an abort had come
    in); the abort won, and a status lost later recovered the aborted revision as stable
    ((l), then (a))."""
    c = steady(Config(replicas=2, steps=[{"setWeight": 100}, {"pause": {}}]))
    roll_to(c, 2)
    drive(c, 8)
    assert c.status is not None and c.status["currentStepIndex"] == 1  # paused at 100
    token(c, "promote", "p1")
    c.reconcile(cut=0)  # this read (with the promote) is what the next one plans from
    token(c, "abort", "a1")
    c.reconcile(stale_body=True)  # promotes; the status patch conflicts
    assert PROMOTED_ANNOTATION not in c.history[V2].annotations
    drive(c, 3)
    assert c.status["abortedRevision"] == V2 and c.status["stableRevision"] == V1
    c.status = None  # restored from a backup without status
    c.bump()
    drive(c, 4)
    assert c.status["stableRevision"] == V1 and c.status["abortedRevision"] == V2


def test_class8_promotion_is_marked_once_its_status_is_accepted() -> None:
    c = steady(Config(replicas=2, steps=[{"setWeight": 50}]))
    roll_to(c, 2)
    reasons = drive(c, 10)
    assert "RolloutCompleted" in reasons
    assert (
        c.history[V2].annotations[PROMOTED_ANNOTATION]
        >= (c.history[V1].annotations[PROMOTED_ANNOTATION])
    )
    c.status = None
    c.bump()
    drive(c, 2)
    assert c.status is not None and c.status["stableRevision"] == V2


def test_class8_bluegreen_abort_racing_the_switch_leaves_no_promoted_mark() -> None:
    c = steady(bg(autoPromotionEnabled=False))
    roll_to(c, 2)
    drive(c, 6)
    assert c.status is not None and c.status["blueGreen"]["waitingFor"] == "waiting for promote"
    token(c, "promote", "p1")
    c.reconcile(cut=0)
    token(c, "abort", "a1")
    c.reconcile(stale_body=True)  # switches and completes; the status patch conflicts
    assert PROMOTED_ANNOTATION not in c.history[V2].annotations
    drive(c, 3)
    c.status = None
    c.bump()
    drive(c, 4)
    assert c.status["stableRevision"] == V1
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1


# -- class 9: a child whose template someone edited -----------------------------------


def test_class9_edited_canary_is_never_promoted_and_the_rollout_says_so() -> None:
    """f61a406: ``kubectl set image deploy/<canary>`` before its pods were ready; the
    edited pods passed the steps and the revision was promoted ((k)), then reported
    Healthy while serving them ((m))."""
    c = steady(Config(replicas=2, steps=[{"setWeight": 50}, {"pause": {"duration": "5s"}}]))
    roll_to(c, 2)
    c.reconcile()  # the canary's Deployment is created
    c.edit_template(c.deps[f"{NAME}-{V2}"], "image")
    reasons = drive(c, 10)
    assert "RolloutCompleted" not in reasons
    assert c.status is not None and c.status["phase"] == "Degraded"
    assert condition(c, "TemplateDrift")["status"] == "True"
    assert "TemplateDrift" in reasons
    c.edit_template(c.deps[f"{NAME}-{V2}"], "undo")  # kubectl rollout undo
    reasons = drive(c, 12)
    assert "RolloutCompleted" in reasons and c.status["stableRevision"] == V2
    assert c.status["phase"] == "Healthy"


def test_class9_edited_stable_is_not_healthy() -> None:
    """f61a406: the stable's template edited, the Rollout kept saying Healthy ((m))."""
    c = steady(Config(replicas=2))
    c.edit_template(c.deps[f"{NAME}-{V1}"], "image")
    drive(c, 3)
    assert c.status is not None and c.status["phase"] == "Degraded"
    assert "kubectl rollout undo" in condition(c, "TemplateDrift")["message"]
    c.edit_template(c.deps[f"{NAME}-{V1}"], "undo")
    drive(c, 3)
    assert c.status["phase"] == "Healthy"


def test_class9_an_edited_childs_pods_keep_the_labels_its_selector_holds() -> None:
    """make fuzz-for, seed 470401404 (a model defect). After a selector change (``track:
    x`` into the selector and the template labels, then out again) someone edited the
    image of a child created with it: the simulated edit took ``track`` out of its pods,
    which no cluster accepts (the child's selector holds it; the API server refuses a
    template its selector does not match), and (f) found the Service pinned to it
    selecting none of them. ``kubectl set image`` changes the image, not the labels."""
    c = steady(Config(replicas=2, steps=[{"setWeight": 50}, {"pause": {}}], services=True))
    c.change_selector()  # track: x, a new revision
    drive(c, 3, 1)
    assert c.status is not None
    dep = c.deps[f"{NAME}-{c.status['canaryRevision']}"]
    assert c.pod_labels(dep).get("track") == "x"
    c.change_selector()  # and out again
    c.edit_template(dep, "image")  # kubectl set image deploy/<child>
    assert c.pod_labels(dep).get("track") == "x"
    drive(c, 6, 1)  # the oracle's (f) holds on every pass


def test_class9_bluegreen_never_switches_to_an_edited_green() -> None:
    c = steady(bg())
    roll_to(c, 2)
    c.reconcile()
    c.edit_template(c.deps[f"{NAME}-{V2}"], "image")
    reasons = drive(c, 10)
    assert "Switched" not in reasons
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1
    assert c.status is not None and c.status["phase"] == "Degraded"


def test_a_retry_whose_events_a_restart_cut_still_counts_once_its_status_is_written() -> None:
    """Found by ``make fuzz-for`` (seed 858042074): an abort, then ``retry`` in a pass cut by
    a restart after its status (the Events, written last, lost). The status recorded the
    retried release; it completed two passes later. The canary oracle forgot the abort only
    on a written ``Retried`` Event, so it reported "(a) aborted revision promoted" for a
    retried one. It now takes what a plan decided once its status is written, as the
    blue-green oracle does."""
    from model.test_model_based import RolloutMachine
    from ramp.api.analysis import Verdict

    m = RolloutMachine()
    cfg = Config(replicas=1, deadline=30, track_config=True)
    m.start(cfg=cfg, start_rollout=True, verdict=Verdict.PASS, delay=2.0)
    c = m.cluster
    m.token("abort")
    m.drive(1, 1)
    assert c.status is not None and c.status["phase"] == "Aborted"
    m.token("retry")
    m.reconcile(cut=3, lag_children=False, lag_history=False, stale_body=False)
    m.drive(3, 2)  # the oracle's (a) holds
    assert c.status["phase"] == "Healthy"


def test_an_unproven_canary_scaled_down_unseen_is_no_growth_of_a_lagging_pass() -> None:
    """make fuzz-for, seed 703775334 ((a), an oracle defect; a 47-character name, a
    tracked ConfigMap). R=5, no steps: v3's canary had 2 pods (1 ready) when someone
    scaled it to 0 and the template went back to v1; the pass read an index that still
    showed v3 at 2 and scaled it down to 1 as the release was left. The oracle took 0 -> 1
    for an unproven revision growing; the pass scaled it down from what it could see, and
    the next one, which sees the truth, takes it away."""
    from model.test_model_based import RolloutMachine
    from ramp.api.analysis import Verdict

    cfg = Config(
        replicas=5, deadline=30, services=False, history_limit=1, name="a" * 47, track_config=True
    )
    m = RolloutMachine()
    m.start(cfg=cfg, start_rollout=True, verdict=Verdict.PASS, delay=2.0)
    c = m.cluster
    v1, v3 = c.revision(1), c.revision(3)
    c.deps[f"{cfg.name}-{v1}"].replicas = 0  # kubectl scale --replicas=0
    m.drive(rounds=3, seconds=2)
    m.set_template(image=3, invalid=False)
    m.drive(rounds=1, seconds=1)
    m.drive(rounds=2, seconds=2)
    canary = c.deps[f"{cfg.name}-{v3}"]
    assert canary.replicas == 2
    canary.replicas = 0  # kubectl scale --replicas=0, unseen by the next pass
    m.set_template(image=1, invalid=False)
    c.reconcile(lag_children=True, cut=7)  # the oracle's (a) failed here: 0 -> 1
    assert canary.replicas == 1
    m.drive(rounds=3, seconds=2)
    assert f"{cfg.name}-{v3}" not in c.deps or c.deps[f"{cfg.name}-{v3}"].replicas == 0
