"""Named example found by the blue-green machine with workloadRef left out
(``RAMP_MODEL_WORKLOAD_REF=0``) once its examples stopped depending on the test order
(issue 19): an invalid spec held the workload "as it was", also when someone had scaled
the stable (active) child to zero just before. Nothing restored it and the active Service
stayed on it: every request refused while the warm blue still had a ready pod.

Now an invalid spec still gives the stable the size the spec asks (a ``kubectl scale`` of
the child undone, an HPA's new count honoured), leaves the rest as it is, and the traffic
follows the ready pods (the active Service moves to the warm revision meanwhile).
"""

from __future__ import annotations

from model.sim import Config
from model.sim_bluegreen import ACTIVE, PREVIEW
from model.test_model_based import RolloutMachine
from model.test_model_bluegreen import BlueGreenMachine
from ramp.api.analysis import Verdict
from ramp.api.labels import REVISION_LABEL


def switched_release() -> BlueGreenMachine:
    """One replica, tracked configuration, green promoted and switched: blue warm."""
    m = BlueGreenMachine()
    cfg = Config(
        replicas=1,
        deadline=30,
        services=False,
        history_limit=0,
        blue_green={
            "activeService": ACTIVE,
            "previewService": PREVIEW,
            "scaleDownDelaySeconds": 0,
            "abortScaleDownDelaySeconds": 0,
        },
        workload_ref=False,
        track_config=True,
    )
    m.start(cfg=cfg, start_release=True, verdict=Verdict.PASS, delay=2.0)
    m.token("promote")
    m.drive(5, 1)
    return m


def test_an_invalid_spec_restores_a_stable_scaled_to_zero_and_serves_meanwhile() -> None:
    m = switched_release()
    c = m.cluster
    blue, green = c.revision(1), c.revision(2)
    assert (c.services[ACTIVE] or {}).get(REVISION_LABEL) == green
    c.deps[f"web-{green}"].replicas = 0  # kubectl scale deploy/web-<green> --replicas 0
    c.deps[f"web-{green}"].generation += 1
    c.refuse = (1, 409)
    m.set_template(1, True)  # its ConfigMap deleted: InvalidSpec
    m.drive(2, 1)  # the oracle's (h) holds on every pass
    assert c.status is not None and c.status["phase"] == "Degraded"
    assert (c.services[ACTIVE] or {}).get(REVISION_LABEL) == blue
    assert c.deps[f"web-{green}"].replicas == 1
    m.drive(4, 1)
    assert (c.services[ACTIVE] or {}).get(REVISION_LABEL) == green


def test_the_restored_stable_stays_within_the_surge_beside_a_canary() -> None:
    """Found by the canary machine against the first version of that fix: the stable
    scaled to zero by hand, an invalid maxSurge, the status lost (restored from a backup):
    the stable came back at full size beside a full-size canary, 4 pods for R+surge = 3.
    It now grows only as far as the surge allows."""
    m = RolloutMachine()
    cfg = Config(replicas=2, deadline=30)
    m.start(cfg=cfg, start_rollout=True, verdict=Verdict.PASS, delay=2.0)
    c = m.cluster
    stable = c.deps[f"web-{c.revision(1)}"]
    stable.replicas = 0  # kubectl scale deploy/web-<stable> --replicas 0
    stable.generation += 1
    m.drive_more(1, 1)
    c.canary_spec["maxSurge"] = "150%"  # invalid: InvalidSpec
    c.bump(spec=True)
    c.status = None  # restored from a backup
    c.bump()
    m.drive(3, 1)  # the oracle's (c) holds on every pass
    assert sum(d.replicas for d in c.owned()) <= 3


def test_a_stable_recreated_under_an_invalid_spec_leaves_the_serving_pods_alone() -> None:
    """Found by the canary machine (workloadRef left out) against the same fix: the status
    lost, the stable child deleted, the template then made invalid: the stable came back
    from its history and the invalid-spec pass scaled every other child to zero, the one
    ready pod of the canary (the only one serving) too. The rest now stays as it is."""
    m = RolloutMachine()
    cfg = Config(replicas=5, steps=[{"setWeight": 20}], deadline=30, name="b" * 64)
    m.start(cfg=cfg, start_rollout=True, verdict=Verdict.PASS, delay=2.0)
    c = m.cluster
    m.token("promote")
    m.drive(3, 1)
    c.status = None  # restored from a backup
    c.bump()
    del c.deps[f"{'b' * 64}-{c.revision(1)}"]  # kubectl delete deploy (the stable)
    m.set_template(1, True)
    m.drive(1, 1)  # the oracle's (b): ready pods never taken below the floor
    canary = c.deps[f"{'b' * 64}-{c.revision(2)}"]
    assert canary.replicas >= 1


def test_an_invalid_spec_moves_the_active_service_off_a_stable_being_deleted() -> None:
    """Found by the first hour of ``make fuzz-for`` (round 1, seed 843783384): the stable
    (active) child deleted in the foreground while its spec was invalid (its ConfigMap
    gone): nothing is recreated while the old child is still going, and the invalid spec
    left the Services as they were: the active Service selected the deleted revision's
    pods, none, while the warm blue still had a ready pod. Traffic now follows the ready
    pods under an invalid spec, whatever the stable's child is doing."""
    m = switched_release()
    c = m.cluster
    blue, green = c.revision(1), c.revision(2)
    assert (c.services[ACTIVE] or {}).get(REVISION_LABEL) == green
    m.set_template(2, True)  # its ConfigMap deleted: InvalidSpec
    c.deps[f"web-{green}"].deleting = True  # kubectl delete --cascade=foreground
    m.reconcile(cut=7, lag_children=False, lag_history=False, stale_body=False)
    m.drive(2, 1)  # the oracle's (h) holds on every pass
    assert (c.services[ACTIVE] or {}).get(REVISION_LABEL) == blue
