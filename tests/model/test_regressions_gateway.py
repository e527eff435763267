"""Named examples of the blue-green machine with a gateway (:mod:`model.sim_gateway`)."""

from __future__ import annotations

import copy
import dataclasses

from model.sim import NAME, Config, first_revision_runs
from model.sim_bluegreen import ACTIVE, PREVIEW
from model.sim_gateway import Gateway, GatewayCluster, carried, routed_config
from model.sim_workload import delete_rollout
from model.test_model_bluegreen_gateway import BlueGreenGatewayMachine
from model.test_regressions_bluegreen_abort import POST
from ramp.api.analysis import Verdict
from ramp.api.labels import REVISION_LABEL as REVISION

BG = {
    "activeService": ACTIVE,
    "previewService": PREVIEW,
    "scaleDownDelaySeconds": 0,
    "abortScaleDownDelaySeconds": 0,
}


def releasing(**fields: object) -> tuple[GatewayCluster, str]:
    """R=1 blue-green through the route, a tracked ConfigMap: blue steady, then green's
    config (its pods ready 2 s after they start). Returns the cluster and blue."""
    cfg = Config(replicas=1, steps=[], blue_green=routed_config(BG), track_config=True)
    c = GatewayCluster(dataclasses.replace(cfg, **fields))
    first_revision_runs(c)
    assert c.status is not None
    blue = c.status["stableRevision"]
    c.ready_delay[c.revision(2)] = 2.0
    c.set_config(2, False)
    return c, blue


def green_applied(bg: dict[str, object], **fields: object) -> tuple[GatewayCluster, str, str]:
    """Blue-green through the route (``bg``, Config ``fields``): blue steady, then green's
    template applied (its pods ready 2 s after they start). Returns the cluster, blue and
    green."""
    cfg = Config(steps=[], blue_green=routed_config(bg))
    c = GatewayCluster(dataclasses.replace(cfg, **fields))
    first_revision_runs(c)
    assert c.status is not None
    blue, green = c.status["stableRevision"], c.revision(2)
    c.ready_delay[green] = 2.0
    c.spec["template"] = c.tpl(2)
    c.bump(spec=True)
    return c, blue, green


def test_a_give_back_through_a_route_removes_ramps_pods_once_the_deployments_serve() -> None:
    """make fuzz-for, seed 945596145 ((r), an oracle defect). A blue-green Rollout through an
    HTTPRoute adopts a Deployment (``workloadRef``, R=1), a release starts and the Rollout
    is deleted: the give-back unpins the Services, which then select the Deployment's pod
    beside Ramp's, and Ramp's children go. The simulated EndpointSlices left out the
    Deployment's pods, so (r) saw the active Service's whole share on Ramp's revision when
    its pod went. The slices now list them (as revision ``plain``) and (r) spreads a
    Service's share over the ready endpoints it keeps."""
    c, v1 = releasing(workload_ref=True)
    delete_rollout(c)
    c.advance(1, controller_acts=True)
    c.reconcile()  # the give-back: the Deployment unpaused, the Services unpinned
    assert c.services[ACTIVE] == {"app": NAME}
    c.advance(1, controller_acts=True)
    assert c.endpoints[ACTIVE] == {v1: 1, "plain": 1}
    c.reconcile()  # the oracle's (r) fails here without the fix: Ramp's pod goes
    assert c.gone or c.deps[f"{NAME}-{v1}"].deleting or c.deps[f"{NAME}-{v1}"].replicas == 0


def test_a_give_back_keeps_ramps_pods_until_the_services_list_the_deployments() -> None:
    """make fuzz-for, seed 982122904 ((r)). The same give-back after the adoption had
    finished (the Deployment at 0): unpaused, its new pod became ready, and the give-back
    released it and let garbage collection take Ramp's pods at once, while the Services'
    EndpointSlices (a moment behind the pods) listed only Ramp's pod: the gateway's
    requests had no endpoint. The give-back now waits until each Service whose
    EndpointSlices it reads lists a ready pod that is not Ramp's (``Observed.others``)."""
    c, v1 = releasing(workload_ref=True)
    c.advance(1, controller_acts=True)
    c.reconcile()
    assert c.plain is not None and c.plain.replicas == 0  # adopted: scaled to zero
    delete_rollout(c)
    for _ in range(2):
        c.advance(2, controller_acts=True)
        c.reconcile()  # given back: the Deployment unpaused, its pod not ready yet
    assert not c.gone and c.plain.ready == 0
    c.advance(2, controller_acts=True)
    assert c.plain.ready == 1 and "plain" not in c.endpoints[ACTIVE]  # slices behind
    c.reconcile()  # the oracle's (r) fails here without the fix: Ramp's pod went
    assert not c.gone and c.deps[f"{NAME}-{v1}"].replicas == 1
    c.advance(2, controller_acts=True)
    assert c.endpoints[ACTIVE] == {v1: 1, "plain": 1}
    c.reconcile()  # now listed: released, garbage collection takes Ramp's pod
    c.advance(1, controller_acts=True)
    c.reconcile()
    assert c.gone


def test_a_rollback_mid_switch_to_an_unready_blue_keeps_the_active_service_on_green() -> None:
    """make fuzz-for, seed 954848776 ((h)). R=1 through an HTTPRoute: green switched to by
    the route's weights (the active Service held on blue until the release completes, so
    that an abort flips the weights back), then the template goes back to blue just as
    blue's pods go unready. The active Service stayed on blue, with no ready pod, while
    green served. It now follows the green this release switched to until blue has a
    ready pod, then flips back."""
    c, blue = releasing()
    for _ in range(4):
        c.advance(2, controller_acts=True)
        c.reconcile()
    green = c.status["canaryRevision"]
    assert c.status["blueGreen"].get("switchedAt") and c.services[ACTIVE][REVISION] == blue
    c.set_config(1, False)  # back to blue's config
    c.ready_delay[blue] = None  # and blue's readiness probe fails
    c.advance(1, controller_acts=True)
    c.reconcile()  # the oracle's (h) fails here without the fix
    assert c.services[ACTIVE][REVISION] == green
    c.ready_delay[blue] = 1.0
    for _ in range(8):
        c.advance(2, controller_acts=True)
        c.reconcile()
    assert c.services[ACTIVE][REVISION] == blue


def test_a_pod_created_during_an_invalid_spec_is_progress_for_the_deadline() -> None:
    """make fuzz-for, seed 940750721 ((g)). Green's Deployment waited 70 s for its
    controller; it created green's pod in the pass where the spec was invalid (the
    release held as it is), and that status wrote the new counts without recording the
    progress: the next, valid, pass compared with them, saw none, and aborted for the
    deadline. A held release now records its pods' progress too."""
    c, _ = releasing(deadline=30)
    c.advance(1, controller_acts=True)
    c.reconcile()
    c.advance(70, controller_acts=False)  # the Deployment controller does not act
    c.set_config(1, True)  # an invalid spec: its ConfigMap missing
    c.advance(1, controller_acts=True)  # green's pod created
    c.reconcile()
    assert c.status is not None and c.status["phase"] == "Degraded"
    c.set_config(2, False)
    c.advance(1, controller_acts=True)
    c.reconcile()  # the oracle's (g) fails here without the fix
    assert c.status["phase"] == "Progressing" and not c.status.get("abortedRevision")


def test_the_share_a_revision_carries_is_its_services_spread_over_what_they_keep() -> None:
    """(r) can still fail: a revision pinned alone carries its Service's share, a Service
    emptied by a scale-down puts its whole share on the revision that emptied it, and
    only other ready endpoints in the same Service take requests off a revision."""
    gateway = Gateway()
    spec = copy.deepcopy(gateway.accepted)
    for ref in spec["rules"][0]["backendRefs"]:
        ref["weight"] = {ACTIVE: 80, PREVIEW: 20}[ref["name"]]
    gateway.accepted = spec
    pinned = {ACTIVE: {"blue": 4}, PREVIEW: {"green": 1}}
    assert carried("green", {"green": 0}, gateway, pinned) == 20.0
    assert carried("blue", {"blue": 2}, gateway, pinned) == 80.0
    both = {ACTIVE: {"blue": 4}, PREVIEW: {"blue": 4}}
    assert carried("blue", {"blue": 3}, gateway, both) == 100.0
    mixed = {ACTIVE: {"blue": 1, "plain": 1}, PREVIEW: {"green": 1}}
    assert carried("blue", {"blue": 0}, gateway, mixed) == 0.0
    assert carried("blue", {"blue": 1}, gateway, mixed) == 40.0


def test_a_release_resumed_after_a_rollback_counts_its_deadline_from_then() -> None:
    """make fuzz-for, seed 381349363 ((g)). The template went back to blue mid-release
    (steady: green drains; the status keeps green for the traffic's sake), blue grew
    (``workloadRef`` adoption in the seed; here spec.replicas) and its pod became ready,
    which steady does not record as progress, and the template came back to green: the
    release resumed with the progress recorded at blue's scale and aborted for the
    deadline at once, although a pod had become ready within it. A release left mid-way
    now keeps no progress: resumed, its deadline counts from then."""
    c, blue = releasing(deadline=30)
    c.ready_delay[c.revision(2)] = None  # green's pods never become ready
    for _ in range(2):
        c.advance(1, controller_acts=True)
        c.reconcile()  # the release: green's pod created
    assert c.status is not None and c.status["progressedAt"]
    c.set_config(1, False)  # back to blue: steady, green drains
    for _ in range(5):
        c.advance(5, controller_acts=True)
        c.reconcile()
    c.ready_delay[blue] = 10.0
    c.spec["replicas"] = 2  # blue grows: its scale is progress, its pod ready 10 s later
    c.bump(spec=True)
    for _ in range(10):
        c.advance(3, controller_acts=True)
        c.reconcile()  # no progress recorded while nothing is released
    c.set_config(2, False)  # green again: the release resumes, 33 s after its progress
    c.advance(6, controller_acts=True)
    c.reconcile()  # the oracle's (g) fails here without the fix
    assert c.status["phase"] == "Progressing" and not c.status.get("abortedRevision")


def test_blue_scaled_away_unseen_is_judged_once_the_planner_sees_it() -> None:
    """make fuzz-for, seed 758236576 ((h), an oracle defect). Green ready behind the route,
    someone scaled blue to 0 and its pods went; the reconcile's watch still showed blue
    at 5 ready (and its EndpointSlices listed them), so it left the active Service on
    blue. The oracle forgave an unseen deletion, not an unseen scale: it now judges (h)
    from the first pass that sees it, which moves the active Service to green."""
    bg = {**BG, "previewReplicaCount": 1}
    c = GatewayCluster(
        Config(replicas=5, steps=[], blue_green=routed_config(bg), track_config=True)
    )
    first_revision_runs(c)
    assert c.status is not None
    blue, green = c.status["stableRevision"], c.revision(2)
    c.set_config(2, False)
    for _ in range(7):
        c.advance(1, controller_acts=True)
        c.reconcile()
    assert c.deps[f"{NAME}-{green}"].ready == 5
    c.deps[f"{NAME}-{blue}"].replicas = 0  # kubectl scale, by someone else
    c.deps[f"{NAME}-{blue}"].generation += 1
    c.advance(1, controller_acts=True)
    assert c.deps[f"{NAME}-{blue}"].ready == 0
    c.reconcile(lag_children=True)  # the oracle's (h) failed here: blue seen at 5 ready
    assert c.services[ACTIVE][REVISION] == blue
    c.reconcile()  # seen: the active Service moves to green
    assert c.services[ACTIVE][REVISION] == green


def test_an_aborts_active_service_moves_to_blue_through_the_route() -> None:
    """make fuzz-for, seed 956072036 ((i), an oracle defect). Green was switched to by
    the route's weights while blue's pod was not ready, the gateway lagged, and the
    release aborted for the deadline; when blue's pod became ready, the active Service
    kept the aborted green for a few passes: it moves through the route
    (``through_the_route``: the preview Service takes blue, the weights go to it, and
    once the gateway is seen to have applied them the active Service moves). (i) now
    lets it keep what it selects while the preview Service carries the ready revision
    it moves to."""
    cfg = Config(replicas=1, steps=[], deadline=30, blue_green=routed_config(BG))
    c = GatewayCluster(dataclasses.replace(cfg, track_config=True))
    first_revision_runs(c)
    assert c.status is not None
    blue = c.status["stableRevision"]
    c.gateway.lag = True
    c.ready_delay[blue] = None  # blue's pod goes unready
    c.set_config(2, False)
    c.reconcile()
    for seconds in (1,) * 5 + (10,) * 5:
        c.advance(seconds, controller_acts=True)
        c.reconcile()
    assert c.status["phase"] == "Aborted"
    c.ready_delay[blue] = 2.0  # blue's pod ready again
    c.advance(1, controller_acts=True)
    c.reconcile()  # the oracle's (i) failed here: the active Service still on green
    assert c.services[PREVIEW] is not None and c.services[PREVIEW][REVISION] == blue
    c.gateway.lag = False
    for _ in range(4):
        c.advance(1, controller_acts=True)
        c.reconcile()
    assert c.services[ACTIVE] is not None and c.services[ACTIVE][REVISION] == blue


def test_blue_scaled_to_zero_and_green_deleted_keep_the_active_service_on_blue() -> None:
    """make fuzz-for, seed 289686157 ((h)). R=2, green switched to by the route's
    weights, the gateway not done acknowledging; someone scales blue to 0 (its pods still
    ready: the Deployment controller has not acted) and deletes green. The pass scales
    blue back and recreates green, and moved the active Service to the new green, which
    has no pod: neither counted as serving (blue's ready pods were above its replicas).
    A revision whose ready pods this plan keeps now serves for the pins: both Services
    stay on (or come to) blue until green is back."""
    c, blue, green = green_applied(BG, replicas=2, deadline=30)
    for _ in range(3):
        c.gateway.ack_between()
    for _ in range(5):
        c.advance(1, controller_acts=True)
        c.reconcile()
    assert c.status["blueGreen"]["switchedAt"] and c.services[ACTIVE][REVISION] == blue
    c.deps[f"{NAME}-{blue}"].replicas = 0  # kubectl scale, by someone else
    c.deps[f"{NAME}-{blue}"].generation += 1
    for _ in range(2):
        c.gateway.ack_between()
    del c.deps[f"{NAME}-{green}"]  # kubectl delete deployment
    c.reconcile()  # the oracle's (h) fails here without the fix
    assert c.services[ACTIVE][REVISION] == blue and c.services[PREVIEW][REVISION] == blue
    assert c.deps[f"{NAME}-{blue}"].replicas == 2
    for _ in range(8):
        c.advance(1, controller_acts=True)
        c.reconcile()
    assert c.status["stableRevision"] == green and c.services[ACTIVE][REVISION] == green


def test_a_status_lost_while_the_gateway_lags_keeps_the_header_routes_green() -> None:
    """make fuzz-for, seed 394401876 ((r)). R=1, blue-green through the route with a
    preview header rule, a tracked ConfigMap. Green waits for promote; the gateway lags;
    a selector change makes a new revision, which is aborted; the abort removes the
    header rule in a generation the gateway has not acknowledged, and the status is lost
    (a restore) before the next pass: the record of the header rule's revisions
    (``status.routes[].headers``) went with it, and green, still listed by the preview
    Service, was scaled to 0 while the gateway sent it the header's requests. With no
    record and an unacknowledged generation, every revision the Rollout's Services list
    keeps a pod."""
    c = GatewayCluster(
        Config(replicas=1, steps=[], blue_green=routed_config(BG), track_config=True)
    )
    first_revision_runs(c)
    green = c.revision(2)
    c.ready_delay[green] = 2.0
    c.set_config(2, False)
    for _ in range(4):
        c.gateway.ack_between()
    for _ in range(4):
        c.advance(1, controller_acts=True)
        c.reconcile()
    c.gateway.lag = True
    c.change_selector()  # a new revision
    c.body["metadata"]["annotations"]["ramp.dev/abort"] = "a"
    c.bump()
    c.advance(1, controller_acts=True)
    c.reconcile()  # the abort: the header rule removed, not acknowledged
    assert c.status is not None and c.status["phase"] == "Aborted"
    assert c.services[PREVIEW] is not None and c.services[PREVIEW][REVISION] == green
    c.status = None  # restored from a backup
    c.bump()
    c.advance(2, controller_acts=True)
    c.reconcile()  # the oracle's (r) fails here without the fix
    assert c.deps[f"{NAME}-{green}"].replicas == 1
    c.gateway.lag = False
    for _ in range(6):
        c.advance(1, controller_acts=True)
        c.reconcile()
    assert c.deps[f"{NAME}-{green}"].replicas == 0  # gone once the gateway caught up


def test_an_abort_moves_the_active_service_the_route_sends_nothing_at_once() -> None:
    """make fuzz-for, seed 814673983 ((i)). Blue deleted by someone and recreated while
    green, ready, was switched to: the route sent everything to the preview Service and,
    blue having no ready pod yet, the active Service followed green too. Green's
    post-promotion analysis failed once blue was ready: both Services selected the aborted
    green, and the active Service was to move through the route (the preview Service first,
    which the route's weights held on green). The route sends the active Service nothing
    then: it now moves to blue at once, and the weights come back to it."""
    bg = {**BG, "scaleDownDelaySeconds": 5, "postPromotionAnalysis": POST}
    c = GatewayCluster(Config(replicas=1, steps=[], blue_green=routed_config(bg)))
    first_revision_runs(c)
    assert c.status is not None
    blue, green = c.status["stableRevision"], c.revision(2)
    c.verdicts[green] = Verdict.FAIL
    c.spec["template"] = c.tpl(2)
    c.bump(spec=True)
    c.reconcile()
    c.advance(2, controller_acts=True)
    del c.deps[f"{NAME}-{blue}"]  # kubectl delete deployment: blue recreated, not ready
    seen = []
    for _ in range(8):
        c.advance(2, controller_acts=True)
        c.reconcile()  # the oracle's (i) failed at the abort
        seen.append((c.status["phase"], (c.services[ACTIVE] or {}).get(REVISION)))
    aborted = next(i for i, (phase, _) in enumerate(seen) if phase == "Aborted")
    assert ("Progressing", green) in seen[:aborted], seen  # switched to green
    assert seen[aborted] == ("Aborted", blue), seen  # at once
    assert c.services[PREVIEW] is not None and c.services[PREVIEW][REVISION] == blue


def test_a_header_rule_the_gateway_still_proxies_keeps_what_the_preview_lists_now() -> None:
    """make fuzz-for, seed 917422010 ((r)). The preview header rule was acknowledged while
    the preview Service selected blue (recorded: the header reaches blue), then the
    preview Service moved to green. An ``abort`` and a new template: the rule's removal
    was written, the gateway lagged, and green was scaled to 0 while the gateway still
    sent it the header's requests through the preview Service. The rule reaches what its
    Service lists now, not what it listed when acknowledged."""
    c, blue = releasing()
    green = c.revision(2)
    c.reconcile()
    for _ in range(2):
        c.advance(10, controller_acts=True)
        c.reconcile()
    assert c.services[PREVIEW] is not None and c.services[PREVIEW][REVISION] == green
    assert c.status is not None and c.status["routes"][0]["headers"] == [blue]
    c.gateway.lag = True
    c.body["metadata"]["annotations"]["ramp.dev/abort"] = "t1"
    c.bump()
    c.set_config(3, False)
    c.reconcile(cut=4)  # a restart after its first writes (the route's among them)
    c.advance(1, controller_acts=True)
    c.reconcile()  # the oracle's (r) failed here: green scaled to 0
    assert c.deps[f"{NAME}-{green}"].replicas == 1
    c.gateway.lag = False
    for _ in range(4):
        c.advance(1, controller_acts=True)
        c.reconcile()
    assert c.deps[f"{NAME}-{green}"].replicas == 0  # once the removal is acknowledged


def test_a_rollback_right_after_completion_moves_the_active_service_once_unrouted() -> None:
    """make fuzz-for, seed 910736183 ((i)). Green completed while the route sent
    everything to the preview Service (0/100, the header rule's removal not acknowledged
    yet): the active Service moved to green. A ``rollback`` in the same second: the
    preview Service was held on green (the route gave it weight), and the weights were
    assigned by the active Service's lagging endpoints, which still listed blue (100/0 to
    a Service that selects green). Both Services stayed on the aborted green while blue
    was ready. The preview Service now takes the revision the active Service is to move
    to, a Service's lagging endpoints count only for the revision it is to select, and the
    active Service moves at once when the gateway sends it nothing."""
    c, blue, green = green_applied({**BG, "scaleDownDelaySeconds": 5}, replicas=1, history_limit=0)
    c.reconcile(cut=7)
    for _ in range(5):
        c.advance(2, controller_acts=True)
        c.reconcile()
    assert c.status["phase"] == "Healthy" and c.status["stableRevision"] == green
    route = c.gateway.route
    assert c.gateway.accepted_generation < route["metadata"]["generation"]  # header removal
    c.body["metadata"]["annotations"]["ramp.dev/rollback"] = "t1"
    c.bump()
    c.reconcile(cut=7)  # the oracle's (i) failed here: both Services on green
    assert c.services[PREVIEW] is not None and c.services[PREVIEW][REVISION] == blue
    refs = c.gateway.route["spec"]["rules"][0]["backendRefs"]
    assert {r["name"]: r["weight"] for r in refs} == {ACTIVE: 0, PREVIEW: 100}  # not to green
    c.advance(2, controller_acts=True)
    c.reconcile()
    assert c.services[ACTIVE] is not None and c.services[ACTIVE][REVISION] == blue


def test_a_switch_whose_record_is_lost_twice_keeps_what_the_gateway_may_proxy() -> None:
    """make fuzz-for, seed 856184725 ((r)). R=2, a preview of 1 pod. The switch wrote
    everything to the preview Service (green) and the gateway lagged; the status was lost,
    and the pass that recovered the release as not switched wrote everything back to the
    active Service (blue); the gateway then read the switch's generation; the status was
    lost again: the pass knew only that the route's generation was not acknowledged, not
    what the gateway proxied, and scaled green to its preview count while it carried every
    request. With no record and an unacknowledged generation, each revision the Services
    list may carry every request (and the record the pass writes says so)."""
    bg = {**BG, "previewReplicaCount": 1}
    c, blue, green = green_applied(bg, replicas=2, history_limit=0)
    c.gateway.ack_between()
    c.body["metadata"]["annotations"]["ramp.dev/promote"] = "t1"
    c.bump()
    for _ in range(4):
        c.advance(2, controller_acts=True)
        c.reconcile()
    c.gateway.lag = True
    c.status = None  # restored from a backup
    c.bump()
    c.advance(1, controller_acts=True)
    c.reconcile()
    c.gateway.ack_between()  # the gateway proxies the switch (everything to green)
    assert c.gateway.service_shares() == {PREVIEW: 100}
    assert c.services[PREVIEW] is not None and c.services[PREVIEW][REVISION] == green
    c.status = None  # and again
    c.bump()
    c.advance(1, controller_acts=True)
    c.reconcile()  # the oracle's (r) failed here: green scaled to 1
    assert c.deps[f"{NAME}-{green}"].replicas == 2
    assert blue != green


def test_a_warm_blue_released_again_and_aborted_never_takes_the_active_service() -> None:
    """make fuzz-for, seed 348458296 ((i)). R=1, ``autoPromotionSeconds: 5``: v1 stable,
    then v3 released and completed (v1 warm); the template back to v1, whose release the
    gateway never acknowledged, ended on its deadline (v1 aborted, still warm). Someone
    deleted v3's Deployment and the template went to v2: the new release made the status
    forget the abort, and the pins' fallback (no ready pod on the active revision, the warm
    one has one) moved the active Service to the aborted v1. An aborted revision (the
    status or the history says so) never takes the active Service: it stays on v3 while
    its recreated Deployment comes up."""
    bg = {**BG, "autoPromotionSeconds": 5}
    cfg = Config(replicas=1, deadline=30, services=False, history_limit=0, blue_green=bg)
    m = BlueGreenGatewayMachine()
    m.start(
        cfg=dataclasses.replace(cfg, track_config=True),
        start_release=True,
        verdict=Verdict.PASS,
        delay=2.0,
    )
    c = m.cluster
    v1 = c.revision(1)
    m.set_template(3, False)
    m.drive(1, 1)
    m.drive(6, 5)
    m.set_template(1, False)
    m.drive(1, 1)
    m.advance(1, False)
    m.drive(5, 1)
    m.advance(70, False)
    m.drive(1, 1)
    assert c.status is not None
    v3 = c.status["stableRevision"]
    assert c.status["abortedRevision"] == v1 and c.services[ACTIVE] is not None
    assert not c.status["blueGreen"].get("warmRevision")  # no rollback target either
    assert c.services[ACTIVE][REVISION] == v3
    del c.deps[f"{NAME}-{v3}"]
    m.set_template(2, False)
    m.drive(1, 1)  # the oracle's (i) failed here: the active Service on v1
    assert c.services[ACTIVE][REVISION] == v3
    m.drive(3, 2)
    assert c.endpoints[ACTIVE] == {v3: 1}


def test_a_blue_whose_pods_an_edit_replaced_may_go_at_completion() -> None:
    """make fuzz-for, seed 839727882 ((r), an oracle defect). R=2: green switched to and
    acknowledged (0/100); a GitOps sync set the route back to 100/0 (everything to the
    active Service, still on blue), and someone edited blue's pod template, whose pods
    were replaced at once. The release completed and blue went while the EndpointSlices,
    a tick behind, still listed its old pods: (r) counted them as carrying every request,
    but they were gone and served nothing. (r) now counts the listed endpoints whose pods
    exist, as (j) does."""
    bg = {**BG, "scaleDownDelaySeconds": 0}
    cfg = Config(replicas=2, deadline=30, services=False, history_limit=0, blue_green=bg)
    m = BlueGreenGatewayMachine()
    m.start(cfg=cfg, start_release=True, verdict=Verdict.PASS, delay=2.0)
    c = m.cluster
    assert isinstance(c, GatewayCluster)
    m.drive(5, 2)
    assert c.gateway.service_shares() == {PREVIEW: 100}  # the switch, acknowledged
    blue = c.deps[f"{NAME}-{c.revision(1)}"]
    m.gitops_resets_the_weights()
    c.edit_template(blue, "image")
    m.drive(1, 1)  # the oracle's (r) failed here
    assert c.status is not None and c.status["stableRevision"] == c.revision(2)
    assert c.services[ACTIVE] is not None and c.services[ACTIVE][REVISION] == c.revision(2)
