"""Named example for the oracle's (g) (found while fixing the give-back's lost status):
a canary child deleted, recreated by the next pass, whose status patch the API server
refuses (409, 422, 429, 5xx, a webhook's 400). The planner records progress (the create)
only in that status; refused, the next pass compares the counts with the last status
accepted, which are the same again (the child is back): the deadline counts from the
progress before. The oracle counted the deletion and the recreation, which no one reading
the cluster can see any more, as progress and reported a ProgressDeadlineExceeded 25 s
after it ((g)). It now forgets the progress of a pass whose status was not accepted, as
the planner does; a change that stays (a pod ready) is progress at the next pass.
"""

from __future__ import annotations

import pytest

from model.sim import REFUSALS, Cluster, Config


@pytest.mark.parametrize("code", REFUSALS)
def test_a_recreated_canary_whose_status_was_refused_is_no_progress(code: int) -> None:
    c = Cluster(Config(replicas=1, steps=[{"setWeight": 20}] * 2, deadline=30))
    for _ in range(3):
        c.reconcile()
        c.advance(3, controller_acts=True)
    c.ready_delay[c.revision(2)] = None  # the canary's pods are never ready
    c.spec["template"] = c.tpl(2)
    c.bump(spec=True)
    for _ in range(7):
        c.advance(1, controller_acts=True)
        c.reconcile()
    canary = next(d for d in c.owned() if d.revision == c.revision(2))
    del c.deps[canary.name]
    c.refuse = (2, code)  # the create goes through, the status patch after it does not
    c.advance(2, controller_acts=True)
    c.reconcile()
    assert c.deps.get(canary.name) is not None, "recreated"
    reasons = []
    for _ in range(12):  # the oracle checks (g) on every pass
        c.advance(5, controller_acts=True)
        result = c.reconcile()
        assert result is not None
        reasons += [e.reason for e in result.events]
    assert "Aborted" in reasons, "a canary that never gets ready is still aborted"
