"""Service pins in the pure core (issue 19, classes 1-3): a pin selects the labels its
revision's pods carry, an existing Service is narrowed only once its revision serves,
and a deleted Rollout takes its key out of its Services before it lets go."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

from ramp.api.labels import REVISION_LABEL, revision_hash
from ramp.api.rollout import Rollout
from ramp.core.plan import Child, HistoryEntry, Observed, plan
from ramp.core.workload_model import Workload

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def template(image: int, **labels: str) -> dict[str, Any]:
    return {
        "metadata": {"labels": {"app": "web", **labels}},
        "spec": {"containers": [{"name": "app", "image": f"app:{image}"}]},
    }


V1 = revision_hash(template(1))
STATUS = {"stableRevision": V1, "observedGeneration": 1, "phase": "Healthy"}


def body(
    tpl: dict[str, Any], match: dict[str, str] | None = None, status: Any = STATUS
) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "ns", "generation": 2, "uid": "u1"},
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": match or {"app": "web"}},
            "template": tpl,
            "strategy": {
                "canary": {
                    "steps": [{"setWeight": 50}, {"pause": {}}],
                    "stableService": "web-stable",
                    "canaryService": "web-canary",
                }
            },
        },
        "status": copy.deepcopy(status),
    }


def child(revision: str, replicas: int, ready: int) -> Child:
    return Child(f"web-{revision}", revision, None, replicas, ready, replicas, True, owner="u1")


def observe(
    b: dict[str, Any], children: list[Child], services: dict[str, Any], **kw: Any
) -> Observed:
    return Observed(
        rollout=Rollout.model_validate(b),
        template=b["spec"].get("template") or kw.pop("template", {}),
        generation=2,
        annotations={},
        children=tuple(children),
        uid="u1",
        history=(HistoryEntry(V1, 1, template(1), promoted_at="2026-01-01T00:00:00Z"),),
        services=services,
        **kw,
    )


def pins(result: Any) -> dict[str, dict[str, str | None]]:
    return {p.service: dict(p.selector) for p in result.services}


def test_a_selector_key_added_with_the_template_keeps_the_stable_pin_on_its_pods() -> None:
    """Class 1: ``track: x`` added to matchLabels and the template in one apply."""
    new = template(1, track="x")
    v2 = revision_hash(new)
    pinned = {"app": "web", REVISION_LABEL: V1}
    b = body(new, match={"app": "web", "track": "x"})
    result = plan(observe(b, [child(V1, 4, 4), child(v2, 2, 2)], {"web-stable": pinned}), T0)
    assert "web-stable" not in pins(result), "the stable pods lack track: not re-pinned"
    assert pins(result)["web-canary"] == {"app": "web", "track": "x", REVISION_LABEL: v2}
    # A Service an earlier version pinned with the new key is put back on the stable pods.
    wrong = {**pinned, "track": "x"}
    fixed = plan(observe(b, [child(V1, 4, 4), child(v2, 2, 2)], {"web-stable": wrong}), T0)
    assert pins(fixed)["web-stable"] == {"app": "web", REVISION_LABEL: V1, "track": None}


def test_a_users_own_key_is_left_alone() -> None:
    mine = {"app": "web", "tier": "web", REVISION_LABEL: "old"}
    result = plan(observe(body(template(1)), [child(V1, 4, 4)], {"web-stable": mine}), T0)
    assert pins(result)["web-stable"] == {"app": "web", REVISION_LABEL: V1}


def test_an_existing_service_is_narrowed_only_once_its_revision_serves() -> None:
    """Class 3: a stableService that serves a plain Deployment (no revision key yet)."""
    first = {"stableRevision": None}
    b = body(template(1), status=None)
    unpinned = {"web-stable": {"app": "web"}, "web-canary": {"app": "web"}}
    created = plan(observe(b, [], unpinned), T0)
    assert created.creates and not created.services
    b["status"] = {**STATUS, **first, "stableRevision": V1}
    coming = plan(observe(b, [child(V1, 4, 3)], unpinned), T0)
    assert not coming.services, "3/4 ready: the Service keeps serving what it served"
    ready = plan(observe(b, [child(V1, 4, 4)], unpinned), T0)
    assert pins(ready)["web-stable"] == {"app": "web", REVISION_LABEL: V1}
    # Once pinned, it follows as before (a Service Ramp pinned has the revision key).
    pinned = {"web-stable": {"app": "web", REVISION_LABEL: "gone"}}
    assert pins(plan(observe(b, [child(V1, 4, 1)], pinned), T0))["web-stable"]


def test_a_deleted_rollout_unpins_its_services_before_it_lets_go() -> None:
    """Class 2: the Deployment given back serves; the revision key goes, then the
    finalizer."""
    b = body(template(1))
    del b["spec"]["template"]
    b["spec"]["workloadRef"] = {"kind": "Deployment", "name": "web"}
    b["status"]["workload"] = {"name": "web", "state": "GivingBack"}
    back = Workload(
        name="web",
        template=template(1),
        replicas=4,
        ready=4,
        current=4,
        updated=4,
        generation=3,
        observed_generation=3,
        managed_by="web",
        scaled_to=4,
    )
    deleted = {"deleting": True, "deleted_at": "2026-01-01T00:00:00Z", "workload": back}
    pinned = {"app": "web", REVISION_LABEL: V1}
    services = {"web-stable": pinned, "web-canary": pinned}
    first = plan(observe(b, [child(V1, 4, 4)], services, template=template(1), **deleted), T0)
    assert first.finalizer is True and not first.write_status
    assert pins(first) == {s: {REVISION_LABEL: None} for s in services}
    free = {"web-stable": {"app": "web"}, "web-canary": {"app": "web"}}
    then = plan(observe(b, [child(V1, 4, 4)], free, template=template(1), **deleted), T0)
    assert then.finalizer is False and not then.services
