"""Named example found by the blue-green machine once its examples no longer depend on
the test order (the local-constants pool of Hypothesis emptied, see the report of issue
19's workloadRef round): a release with post-promotion analysis, a ``retry`` token, the
stable (active) child deleted, then ``abort``: the next pass leaves the active Service on
the unverified green ((i)). Not fixed yet: strict xfail, remove the mark with the fix.
"""

from __future__ import annotations

import pytest

from model.sim import Config, Violation
from model.sim_bluegreen import ACTIVE, PREVIEW, bg_cluster
from ramp.api.analysis import Verdict


@pytest.mark.xfail(raises=Violation, strict=True, reason="(i) after abort of a deleted active")
def test_abort_after_the_active_child_was_deleted_keeps_the_active_service_verified() -> None:
    post = {
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
    c = bg_cluster(
        Config(
            replicas=2,
            deadline=30,
            services=False,
            history_limit=0,
            blue_green={
                "activeService": ACTIVE,
                "previewService": PREVIEW,
                "scaleDownDelaySeconds": 0,
                "abortScaleDownDelaySeconds": 0,
                "postPromotionAnalysis": post,
            },
        )
    )
    for _ in range(3):
        c.reconcile()
        c.advance(3, controller_acts=True)
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
    token("retry")
    del c.deps[f"web-{c.revision(1)}"]  # the active (stable) child
    token("abort")
    drive(1, 1)
