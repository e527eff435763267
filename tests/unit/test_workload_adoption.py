"""spec.workloadRef in the pure core: adoption, no bypass, GitOps back-off, give-back."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from ramp.api.labels import revision_hash
from ramp.api.rollout import Rollout
from ramp.core.plan import Child, Observed, Plan, plan
from ramp.core.workload_model import (
    MANAGED_ANNOTATION,
    SCALED_TO_ANNOTATION,
    WATCHED_VALUE,
    Workload,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TEMPLATE = {
    "metadata": {"labels": {"app": "web"}},
    "spec": {"containers": [{"name": "app", "image": "app:1"}]},
}
REV = revision_hash(TEMPLATE)


def body(scale_down: str = "progressively", status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "web", "namespace": "ns", "generation": 1, "uid": "u1"},
        "spec": {
            "replicas": 6,
            "selector": {"matchLabels": {"app": "web"}},
            "workloadRef": {"kind": "Deployment", "name": "web", "scaleDown": scale_down},
            "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
        },
        "status": status,
    }


def workload(**kw: Any) -> Workload:
    base: dict[str, Any] = {
        "name": "web",
        "template": TEMPLATE,
        "replicas": 6,
        "ready": 6,
        "current": 6,
        "updated": 6,
        "generation": 3,
        "observed_generation": 3,
    }
    base.update(kw)
    return Workload(**base)


def observe(b: dict[str, Any], w: Workload | None, ready: int | None = None, **kw: Any) -> Observed:
    children: tuple[Child, ...] = ()
    if ready is not None:
        children = (Child("web-" + REV, REV, "stable", 6, ready, 6, True, owner="u1"),)
    return Observed(
        rollout=Rollout.model_validate(b),
        template=w.template if w and w.template else {},
        generation=1,
        annotations={},
        children=children,
        uid="u1",
        workload=w,
        **kw,
    )


def settle(b: dict[str, Any], result: Plan) -> dict[str, Any]:
    b["status"] = result.status.to_k8s()
    return b


def test_first_pass_pauses_annotates_and_holds_a_finalizer_before_anything_is_scaled() -> None:
    result = plan(observe(body(), workload()), T0)
    assert result.finalizer is True
    patch = result.workload
    assert patch is not None and patch.paused is True and patch.replicas is None
    assert patch.annotations[MANAGED_ANNOTATION] == "web"
    # Ramp's stable starts within maxSurge (25% of 6 → 2) beside the Deployment's 6 pods.
    assert result.creates == {REV: TEMPLATE} and result.replicas == {REV: 2}
    assert result.status.workload is not None and result.status.workload.state == "Adopting"
    assert result.status.workload_observed_generation == 3


def test_progressively_scales_the_deployment_down_only_as_ramp_pods_are_ready() -> None:
    w = workload(managed_by="web", paused=True, scaled_to=6)
    for ready, expected in ((0, None), (2, 4), (5, 1), (6, 0)):
        result = plan(observe(body(), w, ready=ready), T0)
        got = result.workload.replicas if result.workload else None
        assert got == expected, (ready, got)
        if got is not None:
            assert result.workload is not None
            assert result.workload.annotations[SCALED_TO_ANNOTATION] == str(got)


def test_onsuccess_waits_for_the_full_stable_and_never_leaves_replicas_alone() -> None:
    w = workload(managed_by="web", paused=True, scaled_to=6)
    assert plan(observe(body("onsuccess"), w, ready=5), T0).workload is None
    done = plan(observe(body("onsuccess"), w, ready=6), T0).workload
    assert done is not None and done.replicas == 0
    never = plan(observe(body("never"), w, ready=6), T0)
    assert never.workload is None and never.status.workload is not None
    assert never.status.workload.state == "Adopted"


def test_someone_unpausing_the_deployment_is_undone_at_once_and_reported() -> None:
    w = workload(managed_by="web", paused=False, scaled_to=0, replicas=0, paused_manager="kubectl")
    result = plan(observe(body(), w, ready=6), T0)
    assert result.workload is not None and result.workload.paused is True
    assert any(e.reason == "WorkloadConflict" and "spec.paused" in e.message for e in result.events)


def test_a_gitops_rescale_is_reported_and_left_alone_for_a_back_off_then_asserted_once() -> None:
    b = body()
    w = workload(managed_by="web", paused=True, scaled_to=0, replicas_manager="argocd-controller")
    first = plan(observe(b, w, ready=6), T0)
    assert first.workload is None, "no write inside the back-off"
    conflict = next(c for c in first.status.conditions or [] if c.type == "WorkloadConflict")
    assert conflict.status == "True" and "spec.replicas" in conflict.message
    assert "argocd-controller" in conflict.message and "ignoreDifferences" in conflict.message
    assert [e.reason for e in first.events].count("WorkloadConflict") == 1
    settle(b, first)
    again = plan(observe(b, w, ready=6), T0 + timedelta(seconds=30))
    assert again.workload is None and not [
        e for e in again.events if e.reason == "WorkloadConflict"
    ]
    settle(b, again)
    later = plan(observe(b, w, ready=6), T0 + timedelta(seconds=61))
    assert later.workload is not None and later.workload.replicas == 0
    settle(b, later)
    w2 = workload(managed_by="web", paused=True, scaled_to=0, replicas=6)
    second = plan(observe(b, w2, ready=6), T0 + timedelta(seconds=70))
    assert second.status.workload is not None and second.status.workload.conflicts == 2
    assert second.workload is None
    # Ramp's value held long enough: the conflict is over.
    calm = workload(managed_by="web", paused=True, scaled_to=0, replicas=0)
    b["status"]["workload"].update(conflicts=1, retryAt=None, assertedAt="2026-01-01T00:01:01Z")
    b["status"]["workload"]["conflictField"] = "spec.replicas"
    over = plan(observe(b, calm, ready=6), T0 + timedelta(seconds=200))
    assert over.status.workload is not None and over.status.workload.conflict_field is None


def test_deletion_gives_back_first_and_releases_only_once_the_deployment_serves() -> None:
    b = body()
    deleted = {"deleting": True, "deleted_at": "2026-01-01T00:00:00Z"}
    held = workload(managed_by="web", paused=True, scaled_to=0, replicas=0, ready=0)
    first = plan(observe(b, held, ready=6, **deleted), T0)
    assert first.finalizer is True and not first.write_status
    assert first.workload is not None
    assert (first.workload.paused, first.workload.replicas) == (False, 6)
    assert first.scales == [] and first.delete == [], "Ramp's pods stay"
    coming = workload(managed_by="web", paused=False, scaled_to=6, replicas=6, ready=3, updated=6)
    assert plan(observe(b, coming, ready=6, **deleted), T0).finalizer is True
    back = workload(managed_by="web", paused=False, scaled_to=6, replicas=6, ready=6)
    released = plan(observe(b, back, ready=6, **deleted), T0)
    assert released.finalizer is False
    assert (
        released.workload is not None and released.workload.annotations[MANAGED_ANNOTATION] is None
    )
    assert released.workload.labels == {"ramp.dev/rollout": None}, "no longer watched"
    late = plan(observe(b, coming, ready=6, **deleted), T0 + timedelta(seconds=301))
    assert late.finalizer is False
    assert any(e.reason == "WorkloadGiveBackTimedOut" for e in late.events)


def test_a_deletion_releases_only_once_the_services_read_list_the_deployments_pods() -> None:
    """Where the Services' EndpointSlices are read (blue-green, a route), the Deployment
    ready is not enough: each of them lists one of its pods (a ready endpoint with no
    revision label) before garbage collection may take Ramp's; the deadline still
    releases. Without a deletion (workloadRef removed) the Services stay pinned to Ramp's
    pods, which stay: nothing to wait for."""
    b = body()
    b["spec"]["strategy"] = {"blueGreen": {"activeService": "web-active"}}
    deleted: dict[str, Any] = {"deleting": True, "deleted_at": "2026-01-01T00:00:00Z"}
    back = workload(managed_by="web", paused=False, scaled_to=6, replicas=6, ready=6)
    slices = {"endpoints": {"web-active": {REV: 6}}}
    behind = plan(observe(b, back, ready=6, **deleted, **slices, others={"web-active": 0}), T0)
    assert behind.finalizer is True and behind.requeue_after is not None
    listed = plan(observe(b, back, ready=6, **deleted, **slices, others={"web-active": 2}), T0)
    assert listed.finalizer is False
    assert any(e.reason == "WorkloadGivenBack" for e in listed.events)
    late = T0 + timedelta(seconds=301)
    assert plan(observe(b, back, ready=6, **deleted, **slices), late).finalizer is False
    unread = plan(observe(b, back, ready=6, **deleted), T0)
    assert unread.finalizer is False, "no slices read: the ready count decides"


def test_missing_or_foreign_deployment_is_an_invalid_spec_and_touches_nothing() -> None:
    missing = plan(observe(body(), Workload(name="web", found=False)), T0)
    invalid = next(c for c in missing.status.conditions or [] if c.type == "InvalidSpec")
    assert invalid.status == "True" and "spec.workloadRef" in invalid.message
    assert not missing.creates and missing.workload is None and not missing.history
    foreign = plan(observe(body(), workload(managed_by="other")), T0)
    assert foreign.workload is None and not foreign.creates
    b = body()
    b["spec"]["selector"] = {"matchLabels": {"app": "elsewhere"}}
    mismatch = plan(observe(b, workload()), T0)
    assert mismatch.workload is None
    assert "spec.selector" in (mismatch.status.message or "")


def test_an_adopted_deployment_is_labelled_for_the_server_side_watch_selector() -> None:
    """The operator's Deployment watch selects ``ramp.dev/rollout`` on the API server: the
    adopted Deployment gets that label (with a value no Rollout name can have) in its
    first patch, and one adopted by an earlier version gets it at the next pass."""
    first = plan(observe(body(), workload()), T0)
    assert first.workload is not None
    assert first.workload.labels == {"ramp.dev/rollout": WATCHED_VALUE}
    dns_subdomain = r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?"  # what a Rollout's name must be
    assert not re.fullmatch(dns_subdomain, WATCHED_VALUE), "never a Rollout's name"
    held = {"managed_by": "web", "paused": True, "scaled_to": 6}
    labelled = plan(observe(body(), workload(**held), ready=0), T0)
    assert labelled.workload is None or not labelled.workload.labels, "nothing to add"
    unlabelled = plan(observe(body(), workload(**held, watched=False), ready=0), T0)
    assert unlabelled.workload is not None
    assert unlabelled.workload.labels == {"ramp.dev/rollout": WATCHED_VALUE}
    assert not any(e.reason == "WorkloadAdopted" for e in unlabelled.events), "adopted once"
