"""Named examples of issue 19, class 5 (long names), replayed through the simulated cluster:
pods named as the API server names them (cut to 58 characters before the random suffix),
EndpointSlices read as the shell reads them, and the oracle's (n): every name and label
value the shell derives is valid."""

from __future__ import annotations

import pytest

from model.sim import Cluster, Config, template
from model.sim_bluegreen import ACTIVE, PREVIEW, bg_cluster
from ramp.api.labels import REVISION_LABEL, revision_hash

V2 = revision_hash(template(2))
NAMES = {
    "47": "a" * 47,
    "58": "b" * 58,
    "63": "c" * 63,
    "64": "d" * 64,
    "253": ("long-name." * 26)[:252] + "x",
}
"""A 47-character name is the first whose pods do not start with ``<child>-``."""


def _run(c: Cluster, rounds: int) -> None:
    for _ in range(rounds):
        c.advance(2, controller_acts=True)
        c.reconcile()


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "no-preview"])
@pytest.mark.parametrize("name", list(NAMES.values()), ids=list(NAMES))
def test_a_long_named_blue_green_rollout_switches(name: str, preview: bool) -> None:
    """f61a406 matched endpoints to revisions by the pod-name prefix ``<child>-``: from 47
    characters on, the API server's cut made every green endpoint unknown and the switch
    waited forever ("waiting for 0/2 green endpoints ready")."""
    bg = {"activeService": ACTIVE, "scaleDownDelaySeconds": 0}
    if preview:
        bg["previewService"] = PREVIEW
    c = bg_cluster(Config(name=name, replicas=2, services=False, blue_green=bg))
    _run(c, 3)
    c.spec["template"] = template(2)
    c.bump(spec=True)
    _run(c, 12)
    assert (c.services[ACTIVE] or {}).get(REVISION_LABEL) == V2, c.status
    assert c.status is not None and c.status["phase"] == "Healthy", c.status["message"]


@pytest.mark.parametrize("name", list(NAMES.values()), ids=list(NAMES))
def test_a_long_named_canary_rollout_completes(name: str) -> None:
    """Children of a Rollout named up to 253 characters get valid names and labels (the
    oracle's (n) checks every create) and the release completes."""
    c = Cluster(Config(name=name, replicas=2, steps=[{"setWeight": 50}]))
    _run(c, 3)
    c.spec["template"] = template(2)
    c.bump(spec=True)
    _run(c, 12)
    assert c.status is not None and c.status["stableRevision"] == V2, c.status["message"]
