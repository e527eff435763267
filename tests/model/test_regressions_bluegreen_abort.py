"""Named examples found by the blue-green machine once its examples no longer depend on
the test order (Hypothesis' local-constants pool emptied, issue 19): a switched release
whose blue (the stable, active before the switch) someone deleted, then ``abort`` (with or
without a ``retry`` token in the same pass).

The planner flipped the active Service back to the blue it had just recreated, which had
no ready pod, and scaled green away: every request refused until blue came up (the oracle
did not see it: the aborted green was no alternative for (h)). The machine's (i) then
reported the planner's first fix, the active Service held on green. Decided: an abort
never empties the active Service. It stays on what it selects (green, aborted or not yet
re-verified) while blue has no ready pod, flips once blue has one, and green goes only
after its endpoints left the active Service. The oracle's (h) forbids moving from a
revision with ready pods to one without; its (i) allows holding, never moving, onto an
aborted or unverified revision while no eligible one serves.
"""

from __future__ import annotations

from model.sim import USER_KEY, Cluster, Config, first_revision_runs
from model.sim_bluegreen import ACTIVE, PREVIEW, bg_cluster, bg_config
from ramp.api.analysis import Verdict
from ramp.api.labels import REVISION_LABEL

POST = {
    "metrics": [
        {
            "name": "post",
            "interval": "5s",
            "count": 2,
            "consecutiveErrorLimit": 1,
            "prometheus": {"address": "http://prometheus:9090", "query": "up"},
            "successCondition": "result > 0",
        }
    ]
}


def post_checked(**fields: object) -> dict[str, object]:
    """Blue-green with a post-promotion analysis and no scale-down delays."""
    return {
        "activeService": ACTIVE,
        "scaleDownDelaySeconds": 0,
        "abortScaleDownDelaySeconds": 0,
        "postPromotionAnalysis": POST,
        **fields,
    }


def running(cfg: Config) -> Cluster:
    """A blue-green cluster whose first revision runs."""
    c = bg_cluster(cfg)
    first_revision_runs(c)
    return c


def switched_release_with_blue_deleted(retry: bool) -> Cluster:
    c = running(
        Config(
            replicas=2,
            deadline=30,
            services=False,
            history_limit=0,
            blue_green=post_checked(previewService=PREVIEW),
        )
    )
    c.verdicts[c.revision(2)] = Verdict.PASS
    c.ready_delay[c.revision(2)] = 2.0
    c.spec["template"] = c.tpl(2)
    c.bump(spec=True)
    tokens = 0

    def token(verb: str) -> None:
        nonlocal tokens
        tokens += 1
        c.body["metadata"]["annotations"][f"ramp.dev/{verb}"] = f"t{tokens}"
        c.bump()

    def drive(rounds: int, seconds: int) -> None:
        for _ in range(rounds):
            c.advance(seconds, controller_acts=True)
            c.reconcile()

    drive(1, 1)
    drive(3, 2)
    if retry:
        token("retry")
    del c.deps[f"web-{c.revision(1)}"]  # the active (stable) child
    token("abort")
    return c


def test_an_abort_holds_the_active_service_on_green_until_the_recreated_blue_is_ready() -> None:
    c = switched_release_with_blue_deleted(retry=False)
    blue, green = c.revision(1), c.revision(2)
    c.ready_delay[blue] = 3.0
    seen = []
    for _ in range(8):
        c.advance(1, controller_acts=True)
        c.reconcile()  # the oracle's (h) and (i) hold on every pass
        seen.append((c.services[ACTIVE] or {}).get(REVISION_LABEL))
    assert seen[0] == green, seen  # blue has no ready pod yet
    assert seen[-1] == blue, seen
    assert c.status is not None and c.status["phase"] == "Aborted"
    assert c.deps[f"web-{green}"].replicas == 0  # gone once the active Service left it


def test_an_abort_and_a_retry_in_one_pass_keep_green_serving_and_complete_it() -> None:
    c = switched_release_with_blue_deleted(retry=True)
    green = c.revision(2)
    for _ in range(10):
        c.advance(1, controller_acts=True)
        c.reconcile()
        assert (c.services[ACTIVE] or {}).get(REVISION_LABEL) == green
    assert c.status is not None and c.status["stableRevision"] == green


def test_an_abort_may_name_an_unready_blue_in_a_service_the_user_broke() -> None:
    """make fuzz-for, seed 471258659 ((h), an oracle defect). The user added a key no pod
    carries to the active Service's selector: it serves nothing whatever revision it
    names, and its EndpointSlices list no pod. Green switched to, blue's pod unready, an
    abort: green went (the active Service lists none of its endpoints) and the Service
    named blue. (h) judged the revision key alone; like the whole-selector check, it now
    leaves a Service the user broke to the user."""
    c = running(Config(replicas=1, steps=[], track_config=True, blue_green=post_checked()))
    blue, green = c.revision(1), c.revision(2)
    c.verdicts[green] = Verdict.PASS
    selector = c.services[ACTIVE]
    assert selector is not None
    selector[USER_KEY] = "web"  # kubectl edit: the Service is the user's to break
    c.set_config(2, False)
    for _ in range(2):
        c.advance(1, controller_acts=True)
        c.reconcile()
    c.ready_delay[blue] = 15.0  # blue's pod unready (until 15 s after it started)
    c.advance(1, controller_acts=False)
    for _ in range(2):
        c.advance(1, controller_acts=True)
        c.reconcile()
    assert (c.services[ACTIVE] or {}).get(REVISION_LABEL) == green  # switched
    c.body["metadata"]["annotations"]["ramp.dev/abort"] = "a1"
    c.bump()
    c.advance(1, controller_acts=True)
    c.reconcile()  # aborted: green scaled to zero (its pod not gone yet)
    c.reconcile()  # the oracle's (h) failed here: moved from green (1 ready) to blue (none)
    assert (c.services[ACTIVE] or {}).get(REVISION_LABEL) == blue
    assert c.deps[f"web-{green}"].replicas == 0 and c.deps[f"web-{blue}"].ready == 0
    c.advance(15, controller_acts=True)
    c.reconcile()
    assert c.deps[f"web-{blue}"].ready == 1


def test_a_rolled_back_revision_released_again_may_complete_in_one_pass() -> None:
    """make fuzz-for, seed 81393978 ((a), an oracle defect; the gateway machine). v2 was
    promoted; v1, warm for rollback, lost its ready pod; a ``rollback`` aborted v2, and
    the active Service held on it (v1 had no ready pod). The user applied v3, then v2
    again with a ``promote``: the pass replaced v3 with a new release of v2, whose pods
    serve, skipped the pause and switched to it: released, verified and completed in one
    plan, the right outcome. The oracle cleared its abort mark by the status' canary,
    which the same plan had cleared; it now goes by the revision the release runs."""
    c = running(
        Config(
            replicas=1,
            deadline=30,
            services=False,
            history_limit=0,
            blue_green=bg_config(scaleDownDelaySeconds=30, abortScaleDownDelaySeconds=0),
        )
    )
    v1, v2 = c.revision(1), c.revision(2)
    annotations = c.body["metadata"]["annotations"]
    c.spec["template"] = c.tpl(2)
    c.bump(spec=True)
    for _ in range(6):
        c.advance(1, controller_acts=True)
        c.reconcile()
    assert c.status is not None and c.status["stableRevision"] == v2  # v1 stays warm
    c.ready_delay[v1] = None  # v1's pod is no longer ready
    c.advance(1, controller_acts=True)
    annotations["ramp.dev/rollback"] = "t1"
    c.bump()
    c.reconcile()
    assert c.status["stableRevision"] == v1 and c.status["abortedRevision"] == v2
    assert (c.services[ACTIVE] or {}).get(REVISION_LABEL) == v2  # v1 has no ready pod
    c.spec["template"] = c.tpl(3)
    c.bump(spec=True)
    c.reconcile()  # a release of v3
    annotations["ramp.dev/promote"] = "t2"
    c.spec["template"] = c.tpl(2)
    c.bump(spec=True)
    c.reconcile()  # the oracle's (a) failed here: "aborted revision ... promoted"
    assert c.status["stableRevision"] == v2 and c.status["phase"] == "Healthy"
    assert (c.services[ACTIVE] or {}).get(REVISION_LABEL) == v2
