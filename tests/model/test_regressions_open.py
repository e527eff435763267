"""Named examples of bugs found by ``make fuzz`` and not fixed yet: each is a strict xfail
(it fails today; the day it passes, the marker must go and the example joins the others).

* A blue-green stable Deployment deleted (foreground) after a selector change, with the
  spec invalid: the planner pins the active Service to the previous revision (still
  running) with the *new* selector key, which that revision's pods lack, because the
  previous revision's template was pruned from the history (``revisionHistoryLimit: 1``)
  and a child's own pod labels are not observed: (f) the active Service selects no ready
  pod. Fix: observe each child's pod-template labels (``Child``) and let
  ``pins``/``pod_labels`` fall back to them when the history has no template.
"""

from __future__ import annotations

import pytest

from model.sim import Config, Violation, template
from model.sim_bluegreen import ACTIVE, bg_cluster
from ramp.core.model import revision_hash
from ramp.core.verdicts import Verdict

V2 = revision_hash(template(2))


@pytest.mark.xfail(strict=True, raises=Violation, reason="open: see the module docstring")
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
    for _ in range(3):
        c.reconcile()
        c.advance(3, controller_acts=True)
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
