"""Named regressions of the blue-green planner found by the model-based test
(:mod:`model.test_model_bluegreen`), replayed through the simulated cluster."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from model.sim import Cluster, Config, Oracle, View, first_revision_runs, template
from model.sim_bluegreen import ACTIVE, PREVIEW, BlueGreenOracle, bg_cluster
from model.test_model_bluegreen import BlueGreenMachine
from ramp.api.analysis import Verdict
from ramp.api.labels import REVISION_LABEL, revision_hash
from ramp.core.model import Observed, Plan

V1, V2, V3 = (revision_hash(template(i)) for i in (1, 2, 3))
POST = {"metrics": [{"name": "post", "interval": "5s", "count": 2, "consecutiveErrorLimit": 1,
                     "prometheus": {"address": "http://p:9090", "query": "up"},
                     "successCondition": "result > 0"}]}  # fmt: skip


class StrictOracle(BlueGreenOracle):
    """(g) without the one-grain tolerance."""

    def before_apply(self, observed: Observed, view: View, result: Plan) -> None:
        Oracle.before_apply(self, observed, view, result)


def released(strict: bool = False, history_limit: int = 0, **bg: object) -> Cluster:
    cfg = Config(
        replicas=1,
        services=False,
        history_limit=history_limit,
        blue_green={"activeService": ACTIVE, "previewService": PREVIEW, **bg},
    )
    c = bg_cluster(cfg)
    if strict:
        c.oracle = StrictOracle(c)
    first_revision_runs(c)
    c.spec["template"] = template(2)
    c.bump(spec=True)
    return c


def drive(c: Cluster, rounds: int, seconds: float) -> None:
    for _ in range(rounds):
        c.advance(seconds, controller_acts=True)
        c.reconcile()


def test_template_back_to_blue_after_the_switch_keeps_green_while_it_is_listed() -> None:
    """bg_steady scaled the active green to zero while the active Service's
    EndpointSlices still listed it (the selector had just flipped back to blue)."""
    c = released(scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0, postPromotionAnalysis=POST)
    drive(c, 4, 2)
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2  # switched, post-promotion running
    c.spec["template"] = template(1)
    c.bump(spec=True)
    drive(c, 3, 1)  # the oracle's (j) holds on every reconcile
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1


def test_an_edited_green_whose_pods_are_gone_may_go_when_the_template_is_back_to_blue() -> None:
    """make fuzz-for, seed 324332672 ((j), an oracle defect): green switched to, its
    post-promotion analysis running; someone edited green's pod template, and its
    Deployment replaced the pod (not ready yet); the template went back to blue. The pass
    flipped the active Service to blue and scaled green to zero while the slices, a tick
    behind, still listed green's old pod, which was gone. (j) counted that endpoint; it
    now counts those whose pods exist, as the shell reads them."""
    c = released(scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0, postPromotionAnalysis=POST)
    drive(c, 4, 2)
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2  # switched, post-promotion running
    c.edit_template(c.deps[f"web-{V2}"], "image")
    c.spec["template"] = template(1)
    c.bump(spec=True)
    c.advance(1, controller_acts=True)  # green's pod replaced; the slices still list it
    assert c.endpoints[ACTIVE] == {V2: 1} and c.shell_endpoints()[ACTIVE] == {}
    c.reconcile()  # the oracle's (j) failed here
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1
    assert c.deps[f"web-{V2}"].replicas == 0


def test_third_template_after_the_switch_flips_back_and_drains_green_once_unlisted() -> None:
    """drain_others scaled the active green to zero at once when a third template
    replaced it after the switch (post-promotion analysis running)."""
    c = released(scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0, postPromotionAnalysis=POST)
    drive(c, 4, 2)
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2
    c.spec["template"] = template(3)
    c.bump(spec=True)
    drive(c, 3, 1)
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1
    assert all(d.revision != V2 or d.replicas == 0 for d in c.owned())


def test_progress_within_the_grain_is_not_lost() -> None:
    """progress_deadline: a pod more within PROGRESS_GRAIN of the last recorded progress
    was written as a count (status write) but not as progress; the next reconcile saw no
    movement, so the deadline counted from the earlier progress: an abort up to one grain
    early (at 74 s, progress at 19 s, deadline 60 s). The deadline now counts from the end
    of the grain."""
    c = released(strict=True, scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0)
    c.ready_delay[V2] = None
    drive(c, 6, 5)
    c.advance(30, controller_acts=False)
    drive(c, 1, 5)


def test_an_invalid_spec_mid_release_holds_and_never_scales_the_active_blue_down() -> None:
    """invalid() held a blue-green release with the canary's step walk: with no steps the
    weight was 100, so blue (still active, listed by the active Service) went to zero."""
    c = released(scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0)
    c.reconcile()
    c.spec["template"] = template(1, True)  # invalid: a reserved label
    c.bump(spec=True)
    drive(c, 2, 2)  # the oracle's (j) holds on every reconcile
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1
    assert any(d.revision == V1 and d.replicas == 1 for d in c.owned())


def test_stable_recreated_under_an_invalid_spec_keeps_the_warm_revision_it_serves_from() -> None:
    """invalid() with no release in play recreated a deleted stable (blue) from the
    history and scaled every other child to zero -- the warm green too, although the
    active Service had flipped to it (blue had no pod) and its EndpointSlices listed it."""
    c = released(scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0)
    c.body["metadata"]["annotations"]["ramp.dev/promote-full"] = "t1"
    c.bump()
    drive(c, 4, 2)
    assert c.status is not None and c.status["stableRevision"] == V2
    c.spec["template"] = template(1)  # back to V1 (in the history): a release, V2 warm
    c.bump(spec=True)
    for _ in range(10):  # up to the switch back to V1 (V2 still listed: a tick behind)
        drive(c, 1, 2)
        if c.status["stableRevision"] == V1:
            break
    assert c.status["stableRevision"] == V1 and c.endpoints[ACTIVE].get(V2)
    del c.deps[f"web-{V1}"]
    c.spec["template"] = template(1, True)  # invalid: a reserved label
    c.bump(spec=True)
    c.reconcile()  # the oracle's (j) holds
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2
    assert any(d.revision == V2 and d.replicas == 1 for d in c.owned())
    assert any(d.revision == V1 for d in c.owned())  # recreated from the history


def test_the_active_service_stays_where_it_serves_while_a_rolled_back_blue_comes_up() -> None:
    """The template went back to blue after the switch while blue had no ready pod (its
    pod restarting): blue is stable again, and bg_pins moved the active Service to it at
    once, leaving no ready endpoint while green still served. The Service now stays on
    green until blue serves again."""
    c = released(scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0, postPromotionAnalysis=POST)
    drive(c, 4, 2)
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2  # switched, post-promotion running
    blue = next(d for d in c.owned() if d.revision == V1)
    assert blue.replicas == 1 and blue.pods
    blue.pods[0].unready_until = c.now + timedelta(seconds=5)
    c.spec["template"] = template(1)
    c.bump(spec=True)
    drive(c, 2, 1)  # the oracle's (h) holds on every reconcile
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2
    drive(c, 5, 1)
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1


def test_promote_full_switches_and_completes_without_the_pre_promotion_analysis() -> None:
    """By design (issue 10: "promote-full (switch now, skip analysis, say so in an
    Event)"): green switches with its pre-promotion analysis still running and, with no
    post-promotion analysis, completes in the same plan. The oracle once took that for an
    unverified switch (it read skip_analysis from the completed status)."""
    pre = {"metrics": [{**POST["metrics"][0], "name": "pre"}]}
    c = released(scaleDownDelaySeconds=0, prePromotionAnalysis=pre)
    drive(c, 3, 2)  # green ready, one of two passes measured
    assert c.status is not None and c.status["stableRevision"] == V1
    c.body["metadata"]["annotations"]["ramp.dev/promote-full"] = "t1"
    c.bump()
    drive(c, 1, 1)
    assert c.status["stableRevision"] == V2
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2
    reasons = [reason for _, reason, _ in c.events]
    assert reasons[-3:] == ["PromotedFull", "Switched", "RolloutCompleted"]


def test_an_old_green_scaled_up_by_someone_drains_without_taking_blue_down() -> None:
    """drain_others took the stable's target as R minus green's share, as for a canary:
    an aborted green scaled up by someone was drained by scaling blue (active, listed by
    the active Service's EndpointSlices) to zero. Blue stays at full size beside green."""
    c = released(history_limit=1, scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0)
    drive(c, 1, 1)  # green created
    c.body["metadata"]["annotations"]["ramp.dev/abort"] = "t1"
    c.bump()
    drive(c, 2, 1)
    assert c.status is not None and c.status["abortedRevision"] == V2
    c.spec["template"] = template(3)
    c.bump(spec=True)
    drive(c, 1, 1)
    old_green = c.deps[f"web-{V2}"]
    old_green.replicas, old_green.generation = 6, old_green.generation + 1
    drive(c, 2, 1)  # the oracle's (j) holds on every reconcile
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1
    assert c.deps[f"web-{V1}"].replicas == 1 and old_green.replicas == 0


def test_active_falls_back_to_the_warm_blue_when_every_green_pod_goes_unready() -> None:
    """Not a bug found, the (h) fallback pinned in CI (the derandomized machine's budget
    rarely knocks every active pod out while blue is warm): green switched to, blue warm
    for 30 s, all of green's pods unready -- the active Service selects blue meanwhile."""
    c = released(scaleDownDelaySeconds=30)
    drive(c, 6, 2)
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2
    for pod in c.deps[f"web-{V2}"].pods:
        pod.unready_until = c.now + timedelta(seconds=40)
    drive(c, 3, 2)  # the oracle's (h) holds on every reconcile
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1


def test_the_active_revision_scaled_to_zero_by_someone_still_serves_until_its_pods_go() -> None:
    """Oracle too strict (fuzz run16): someone scaled the active green to 0 and the next
    reconcile saw the children a tick behind. (h) counted min(ready, replicas) and failed,
    but the Deployment controller had not acted: green's pod was still ready, the Service
    still served. Once the scale is seen, green is brought back to full size."""
    c = released(scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0)
    drive(c, 4, 2)
    green = c.deps[f"web-{V2}"]
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2 and green.ready == 1
    green.replicas, green.generation = 0, green.generation + 1  # kubectl scale --replicas 0
    c.reconcile(lag_children=True)  # the oracle's (h) holds: green's pod is still ready
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2 and green.pods
    drive(c, 4, 1)
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2
    assert green.replicas == 1 and green.ready == 1


def test_a_lost_status_does_not_recover_an_aborted_revision_as_stable() -> None:
    """Planner bug (fuzz run17): a plan made from a stale body completed the release of
    blue again and, blue's previous green having no history entry (pruned), re-marked it
    promoted in the same second. That green was released again and aborted; the status
    was then lost. recover_identities took the newest promotion, ties broken by entry
    number: the aborted green (recreated last) became stable and the active Service
    selected it. Of two promotions in the same second, the one aborted since loses."""
    c = released(scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0)
    drive(c, 5, 1)
    assert c.status is not None and c.status["stableRevision"] == V2
    c.spec["template"] = template(1)  # back to blue: a release of V1
    c.bump(spec=True)
    for _ in range(10):
        drive(c, 1, 1)
        if c.status["stableRevision"] == V1:
            break
    assert c.status["stableRevision"] == V1 and V2 not in c.history  # pruned (limit 0)
    c.reconcile(stale_body=True)  # completes again; its status write conflicts
    # (Since issue 19 a completion marks the history only once its status was accepted,
    # so this stale plan no longer re-marks both in the same second; the end must hold.)
    c.body["metadata"]["annotations"]["ramp.dev/abort"] = "t1"
    c.spec["replicas"] = 0  # an HPA
    c.spec["template"] = template(2)
    c.bump(spec=True)
    c.reconcile()
    assert c.status is not None and c.status["abortedRevision"] == V2
    c.status = None  # restored from a backup without status
    c.bump()
    drive(c, 2, 1)  # the oracle's (i) holds on every reconcile
    assert c.status is not None and c.status["stableRevision"] == V1
    assert c.status["abortedRevision"] == V2
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1


def test_a_deleted_active_green_unseen_by_a_lagging_watch_is_left_on_the_next_fresh_view() -> None:
    """Found by the fuzz machine after the (h) oracle counted the data plane's pods: the
    active green's Deployment deleted by someone, the next reconcile's children lagging
    (green still listed as ready). That plan cannot know; (h) judges the next reconcile
    that sees the deletion, and it must move the active Service to the warm blue."""
    c = released(scaleDownDelaySeconds=30, abortScaleDownDelaySeconds=0)
    drive(c, 4, 2)
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2
    del c.deps[f"web-{V2}"]  # someone deletes the active green
    c.reconcile(lag_children=True)  # still sees green: not judged by (h)
    c.reconcile()  # sees the deletion: the active Service goes to blue, which serves
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1


def test_an_active_green_gone_unready_unseen_by_a_lagging_watch_flips_on_the_next_view() -> None:
    """make fuzz-for, seed 870520857 ((h), an oracle defect): green switched to and
    stable, blue warm for 5 s; green's pod went unready and its Deployment said so, but
    the next reconcile's children lagged (green still ready). That plan cannot know; (h)
    judges the next reconcile that sees it, which moves the active Service to blue."""
    c = released(scaleDownDelaySeconds=5, abortScaleDownDelaySeconds=0)
    drive(c, 4, 2)
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2
    c.ready_delay[V2] = 15.0  # green's pod unready until 15 s after it started
    c.advance(1, controller_acts=True)
    assert c.deps[f"web-{V2}"].ready == 0 and c.deps[f"web-{V1}"].ready == 1
    c.reconcile(lag_children=True)  # the oracle's (h) failed here
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2
    c.reconcile()
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1


def test_a_switched_green_replaced_and_aborted_in_one_plan_goes_only_once_unlisted() -> None:
    """Found by the fuzz machine: a switched green (V3, post-promotion analysis running)
    replaced by a new template and an abort in the same plan. bg_aborted flipped the
    active Service back to blue and scaled every other revision to zero at once,
    including V3, which the active Service's EndpointSlices still listed; now V3 goes only
    once it is unlisted (and the oracle no longer forgets an aborted green when a new
    release starts)."""
    c = released(scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0, postPromotionAnalysis=POST)
    c.spec["template"] = template(3)
    c.bump(spec=True)
    drive(c, 4, 2)
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V3  # switched, post-promotion runs
    c.body["metadata"]["annotations"]["ramp.dev/abort"] = "a1"
    c.bump()
    c.spec["template"] = template(2)  # a new release right after the abort
    c.bump(spec=True)
    drive(c, 3, 1)  # (j) holds on every reconcile
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1
    assert all(d.revision != V3 or d.replicas == 0 for d in c.owned())


def test_abort_and_retry_in_one_plan_flip_back_and_switch_again_only_when_verified() -> None:
    """Found by the fuzz machine: ``abort`` and ``retry`` seen by the same reconcile after
    the switch. The retry restarted the release with ``activeRevision`` still green and
    no switch recorded, so the active Service stayed on green, unverified in the new
    release. Now it flips back to blue and the retried release switches again."""
    c = released(scaleDownDelaySeconds=0, abortScaleDownDelaySeconds=0, postPromotionAnalysis=POST)
    drive(c, 4, 2)
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2
    c.body["metadata"]["annotations"]["ramp.dev/abort"] = "a1"
    c.body["metadata"]["annotations"]["ramp.dev/retry"] = "r1"
    c.bump()
    c.reconcile()  # (i) holds: the active Service is on blue again
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V1
    drive(c, 6, 2)
    assert (c.services[ACTIVE] or {})[REVISION_LABEL] == V2  # switched again, verified


def test_counts_a_pass_writes_without_judging_the_deadline_are_progress() -> None:
    """make fuzz-for, seed 883951112 ((g)). R=4, green's pods never ready: green is
    created, its pods appear, someone deletes blue (foreground), and no reconcile runs for
    70 s. The pass that sees blue being deleted leaves it alone and judges no deadline,
    but wrote the counts it saw (green's pods there). The next pass, blue gone, found
    nothing moved since that status and aborted for the deadline a second after green's
    pods appeared. Counts a status writes that moved are progress, whatever the pass
    judged."""
    bg = {"activeService": ACTIVE, "previewService": PREVIEW, "postPromotionAnalysis": POST}
    c = bg_cluster(
        Config(replicas=4, max_surge=1, steps=[], deadline=30, services=False, blue_green=bg)
    )
    first_revision_runs(c)
    c.ready_delay[V2] = None  # green's pods are never ready
    c.spec["template"] = template(2)
    c.bump(spec=True)
    c.reconcile()  # green created
    assert c.status is not None and c.status["canaryRevision"] == V2
    c.advance(1, controller_acts=True)  # its pods
    c.deps[f"web-{V1}"].deleting = True  # kubectl delete --cascade=foreground
    c.advance(70, controller_acts=False)  # no reconcile saw them meanwhile
    c.reconcile()  # blue being deleted: left alone; green's pods written
    drive(c, 1, 1)  # the oracle's (g) fails here without the fix
    assert c.status["phase"] != "Aborted"
    drive(c, 20, 3)
    assert c.status["phase"] == "Aborted", "a green that never gets ready is still aborted"


def test_a_recreated_blue_ready_unseen_by_a_lagging_index_is_judged_next_pass() -> None:
    """make fuzz-for, seed 685721533 ((h), an oracle defect). R=1, green switched to and
    its post-promotion analysis inconclusive (paused); someone deletes both Deployments.
    Blue is recreated (green is not: the release waits), and the active Service stays on
    green, since nothing is ready. Blue's pod becomes ready, and a pass that reads a lagging
    index sees it unready: it had nothing ready to move to. (h) judged that pass; it now
    judges the next one, which moves the active Service to blue."""
    bg = {"activeService": ACTIVE, "previewService": PREVIEW, "scaleDownDelaySeconds": 0,
          "abortScaleDownDelaySeconds": 0, "postPromotionAnalysis": POST}  # fmt: skip
    cfg = Config(replicas=1, deadline=30, services=False, history_limit=0, blue_green=bg)
    m = BlueGreenMachine()
    m.start(cfg=replace(cfg, track_config=True), start_release=True,
            verdict=Verdict.INCONCLUSIVE, delay=2.0)  # fmt: skip
    c = m.cluster
    m.advance(5, False)
    m.drive(2, 1)
    m.advance(1, False)
    m.drive(2, 1)
    assert c.services[ACTIVE] is not None and c.services[ACTIVE][REVISION_LABEL] == c.revision(2)
    for name in list(c.deps):
        del c.deps[name]  # blue and green deleted
    m.drive(1, 1)
    m.advance(2, False)
    m.drive(1, 1)
    assert c.status is not None and c.status["phase"] == "Paused"
    m.advance(3, True)  # blue's recreated pod ready
    m.reconcile(cut=7, lag_children=True, lag_history=False, stale_body=False)  # (h) failed
    m.drive(1, 1)
    assert c.services[ACTIVE][REVISION_LABEL] == c.status["stableRevision"]
    m.drive(1, 1)
    assert c.endpoints[ACTIVE] == {c.status["stableRevision"]: 1}


def test_a_selector_change_then_abort_and_rollback_never_switch_active_to_an_unready_revision() -> (
    None
):
    """make fuzz-for, seed 479896203: the active Service moved from the warm revision (its
    pod ready) to blue with no ready pod. A selector change (a key added to the selector
    and the template labels) made and promoted a new blue, the old one warm; a release was
    aborted while blue's pod was unready, and the abort scaled the warm revision to 0 as
    the Service fell back to it; the next pass (cut after its deletes) then had nothing
    else to send it to. The warm revision now stays while blue has no ready pod."""
    bg = {"activeService": ACTIVE, "previewService": PREVIEW, "scaleDownDelaySeconds": 0,
          "abortScaleDownDelaySeconds": 0}  # fmt: skip
    cfg = Config(replicas=1, deadline=30, services=False, history_limit=0, blue_green=bg)
    m = BlueGreenMachine()
    m.start(cfg=replace(cfg, track_config=True), start_release=True,
            verdict=Verdict.PASS, delay=2.0)  # fmt: skip
    m.at_most_one_writer()
    m.chaos(data=None, kind="selector")  # type: ignore[arg-type]  # draws nothing
    m.at_most_one_writer()
    m.set_template(image=3, invalid=False)
    m.at_most_one_writer()
    m.drive(rounds=4, seconds=2)
    m.at_most_one_writer()
    m.token(verb="abort")
    m.at_most_one_writer()
    m.set_template(image=1, invalid=False)
    m.at_most_one_writer()
    m.behaviour(delay=15.0, image=3, verdict=Verdict.PASS)
    m.at_most_one_writer()
    m.drive(rounds=1, seconds=1)
    m.at_most_one_writer()
    m.reconcile(cut=7, lag_children=False, lag_history=False, stale_body=False)
