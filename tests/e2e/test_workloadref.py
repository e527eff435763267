"""spec.workloadRef on the real cluster: adopt a running Deployment without a gap, roll
its template changes through the canary (never behind it), survive a GitOps loop, give
it back on deletion or removal of workloadRef."""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException
from ramp_e2e import GROUP, PLURAL, VERSION, Rollouts, Sampling, condition, wait_for

MANAGED = "ramp.dev/workload-of"
WATCH_LABEL = "ramp.dev/rollout"


def deployment(name: str, replicas: int, image: str = "ramp-test/app:v1") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]},
            },
        },
    }


def ref_rollout(
    name: str, replicas: int, scale_down: str, steps: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "Rollout",
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "workloadRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": name,
                "scaleDown": scale_down,
            },
            "progressDeadlineSeconds": 15,
            "strategy": {"canary": {"steps": steps or []}},
        },
    }


class Sampler(Sampling[tuple[float, int, int]]):
    """Ready pods of ``app=NAME`` (both sets) every 0.25 s; the minimum seen."""

    def __init__(self, rollouts: Rollouts, name: str) -> None:
        super().__init__()
        self.rollouts, self.name = rollouts, name
        self.stray: list[str] = []
        self.new_image: str | None = None

    def sample(self) -> tuple[float, int, int]:
        pods = self.rollouts.core.list_namespaced_pod(
            self.rollouts.ns, label_selector=f"app={self.name}"
        ).items
        ready = ours = 0
        for pod in pods:
            labels = pod.metadata.labels or {}
            image = pod.spec.containers[0].image
            if "ramp.dev/revision" not in labels and image == self.new_image:
                self.stray.append(pod.metadata.name)
            if pod.metadata.deletion_timestamp:
                continue
            if any(c.type == "Ready" and c.status == "True" for c in pod.status.conditions or []):
                ready += 1
                ours += "ramp.dev/revision" in labels
        return time.monotonic(), ready, ours

    def min_ready(self, since: float = 0.0) -> int:
        return min(r for t, r, _ in self.samples if t >= since)


def dep(rollouts: Rollouts, name: str) -> Any:
    return rollouts.apps.read_namespaced_deployment(name, rollouts.ns)


def set_image(
    rollouts: Rollouts, name: str, image: str, labels: dict[str, Any] | None = None
) -> None:
    body: dict[str, Any] = {
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}
    }
    if labels is not None:
        body["spec"]["template"]["metadata"] = {"labels": labels}
    rollouts.apps.patch_namespaced_deployment(name, rollouts.ns, body)


def test_progressive_adoption_no_bypass_abort_and_give_back_on_delete(rollouts: Rollouts) -> None:
    name, r = "shop", 6
    rollouts.apps.create_namespaced_deployment(rollouts.ns, deployment(name, r))
    wait_for("the Deployment ready", lambda: (dep(rollouts, name).status.ready_replicas or 0) == r)
    with Sampler(rollouts, name) as sampler:
        started = time.monotonic()
        rollouts.create(
            ref_rollout(
                name, r, "progressively", [{"setWeight": 50}, {"pause": {"duration": "2s"}}]
            )
        )
        rollouts.wait(
            name,
            "adopted",
            lambda s: (
                (s.get("workload") or {}).get("state") == "Adopted"
                and s.get("phase") == "Healthy"
                and s.get("readyReplicas") == r
            ),
            timeout=90,
        )
        wait_for("the Deployment at 0", lambda: dep(rollouts, name).status.replicas in (0, None))
        adoption = time.monotonic() - started
        adopt_min = sampler.min_ready(started)
        d = dep(rollouts, name)
        assert d.spec.paused is True and d.spec.replicas == 0
        assert d.metadata.annotations[MANAGED] == name
        # The label the operator's Deployment watch selects on the API server; its value
        # is no Rollout's name, so the Rollout's own Deployments are listed without it.
        assert d.metadata.labels[WATCH_LABEL] == "Adopted"
        assert name not in {x.metadata.name for x in rollouts.deployments(name).values()}
        wait_for(  # the status catches up with the Deployment's last generation
            "workloadObservedGeneration follows the Deployment",
            lambda: (
                rollouts.status(name).get("workloadObservedGeneration")
                == dep(rollouts, name).metadata.generation
            ),
            timeout=30,
        )
        status = rollouts.status(name)
        assert status["selector"] == f"app={name}"

        # A template change of the Deployment goes through the canary, never around it.
        sampler.new_image = "ramp-test/app:v2"
        set_image(rollouts, name, "ramp-test/app:v2")
        canary = rollouts.wait(name, "a canary", lambda s: bool(s.get("canaryRevision")))[
            "canaryRevision"
        ]
        rollouts.wait(
            name,
            "v2 stable",
            lambda s: s.get("stableRevision") == canary and s.get("phase") == "Healthy",
            timeout=90,
        )
        assert dep(rollouts, name).spec.paused is True
        assert not sampler.stray, f"pods of the new template outside Ramp: {sampler.stray}"

        # A bad template aborts; the stable keeps serving.
        set_image(rollouts, name, "ramp-test/app:v3", {"ramp.dev/test-fault": "never-ready"})
        rollouts.wait_phase(name, "Aborted", timeout=60)
        assert rollouts.ready_pods(name).get(canary) == r
        assert not any(
            p.spec.containers[0].image == "ramp-test/app:v3"
            and "ramp.dev/revision" not in (p.metadata.labels or {})
            for p in rollouts.core.list_namespaced_pod(
                rollouts.ns, label_selector=f"app={name}"
            ).items
        )
        set_image(rollouts, name, "ramp-test/app:v2", {"ramp.dev/test-fault": None})
        rollouts.wait_healthy(name, r, timeout=60)

        # Deletion gives the Deployment back before Ramp's pods go.
        deleted = time.monotonic()
        rollouts.custom.delete_namespaced_custom_object(GROUP, VERSION, rollouts.ns, PLURAL, name)

        def gone() -> bool:
            try:
                rollouts.get(name)
            except ApiException as exc:
                return exc.status == 404
            return False

        wait_for("the Rollout gone", gone, timeout=120)
        wait_for(
            "Ramp's pods gone",
            lambda: not rollouts.deployments(name) and rollouts.ready_pods(name).get("", 0) == r,
            timeout=60,
        )
        give_back_min = sampler.min_ready(deleted)
    d = dep(rollouts, name)
    assert d.spec.paused in (None, False) and d.spec.replicas == r
    assert MANAGED not in (d.metadata.annotations or {})
    assert WATCH_LABEL not in (d.metadata.labels or {})
    print(
        f"\nworkloadRef: adoption of R={r} in {adoption:.1f}s, min ready {adopt_min}; "
        f"give-back min ready {give_back_min} (gap {max(0, r - give_back_min)})"
    )
    assert adopt_min >= r, sampler.samples
    assert give_back_min >= r


def test_onsuccess_gitops_loop_and_removing_workload_ref(rollouts: Rollouts) -> None:
    name, r = "cart", 4
    rollouts.apps.create_namespaced_deployment(rollouts.ns, deployment(name, r))
    wait_for("the Deployment ready", lambda: (dep(rollouts, name).status.ready_replicas or 0) == r)
    rollouts.create(ref_rollout(name, r, "onsuccess"))
    rollouts.wait(
        name, "adopted", lambda s: (s.get("workload") or {}).get("state") == "Adopted", timeout=60
    )
    wait_for("the Deployment at 0", lambda: dep(rollouts, name).spec.replicas == 0)

    # "GitOps" re-applies replicas every 2 s for 30 s: reported once, no flapping.
    writes: list[int] = []
    with Sampler(rollouts, name) as sampler:
        end = time.monotonic() + 30
        while time.monotonic() < end:
            rollouts.apps.patch_namespaced_deployment(
                name, rollouts.ns, {"spec": {"replicas": r}}, field_manager="argocd-controller"
            )
            time.sleep(2)
            writes.append(dep(rollouts, name).spec.replicas)
        lowest = sampler.min_ready()
        highest = max(n for _, n, _ in sampler.samples)
    status = rollouts.status(name)
    fought = condition(status, "WorkloadConflict")
    assert fought["status"] == "True" and "spec.replicas" in fought["message"], fought
    assert "ignoreDifferences" in fought["message"] and "argocd-controller" in fought["message"]
    assert set(writes) == {r}, f"Ramp fought back within the back-off: {writes}"
    conflicts = [e for e in rollouts.events(name) if e[1] == "WorkloadConflict"]
    assert len(conflicts) == 1, conflicts
    assert lowest >= r and highest <= 2 * r, (lowest, highest)

    # Removing workloadRef (the template goes inline) gives the Deployment back.
    template = dep(rollouts, name).spec.template
    inline = rollouts.apps.api_client.sanitize_for_serialization(template)
    inline["metadata"].pop("creationTimestamp", None)
    with Sampler(rollouts, name) as sampler:
        removed = time.monotonic()
        rollouts.custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            rollouts.ns,
            PLURAL,
            name,
            {
                "spec": {
                    "workloadRef": None,
                    "template": inline,
                    "selector": {"matchLabels": {"app": name}},
                }
            },
        )
        rollouts.wait(name, "given back", lambda s: not s.get("workload"), timeout=60)
        wait_for(
            "the Deployment's pods ready again",
            lambda: (dep(rollouts, name).status.ready_replicas or 0) == r,
            timeout=60,
        )
        time.sleep(1)  # a few more samples after the give-back
        give_back_min = sampler.min_ready(removed)
    print(f"\nworkloadRef removed: give-back min ready {give_back_min} (R={r})")
    assert give_back_min >= r, sampler.samples
    d = dep(rollouts, name)
    assert not d.spec.paused and d.spec.replicas == r and (d.status.ready_replicas or 0) == r
    assert MANAGED not in (d.metadata.annotations or {})
    assert "ramp.dev/give-back" not in (rollouts.get(name)["metadata"].get("finalizers") or [])


def test_never_keeps_both_sets_running_with_the_deployment_paused(rollouts: Rollouts) -> None:
    """``scaleDown: never``: the documented count is twice the pods, the Deployment held
    (paused) at its replicas for as long as the Rollout exists."""
    name, r = "both-run", 3
    rollouts.apps.create_namespaced_deployment(rollouts.ns, deployment(name, r))
    wait_for("the Deployment ready", lambda: (dep(rollouts, name).status.ready_replicas or 0) == r)
    with Sampler(rollouts, name) as sampler:
        started = time.monotonic()
        rollouts.create(ref_rollout(name, r, "never"))
        rollouts.wait(
            name,
            "adopted",
            lambda s: (
                (s.get("workload") or {}).get("state") == "Adopted" and s.get("readyReplicas") == r
            ),
            timeout=60,
        )
        time.sleep(2)  # the Deployment is not touched later either
        lowest = sampler.min_ready(started)
        last = sampler.samples[-1]
    d = dep(rollouts, name)
    assert d.spec.paused is True and d.spec.replicas == r, (d.spec.paused, d.spec.replicas)
    assert (d.status.ready_replicas or 0) == r
    assert last[1] == 2 * r and last[2] == r, last  # both sets serve: twice the pods
    assert lowest >= r, sampler.samples


def test_bad_workload_refs_are_refused_or_reported(rollouts: Rollouts) -> None:
    both = ref_rollout("both", 2, "never")
    both["spec"]["template"] = deployment("both", 2)["spec"]["template"]
    both["spec"]["selector"] = {"matchLabels": {"app": "both"}}
    neither = ref_rollout("neither", 2, "never")
    del neither["spec"]["workloadRef"]
    kind = ref_rollout("kind", 2, "never")
    kind["spec"]["workloadRef"]["kind"] = "ReplicaSet"
    for manifest, words in (
        (both, "exactly one of template or workloadRef"),
        (neither, "exactly one of template or workloadRef"),
        (kind, "spec.workloadRef.kind"),
    ):
        with pytest.raises(ApiException) as refused:
            rollouts.create(manifest)
        assert refused.value.status == 422 and words in str(refused.value.body), refused.value.body

    rollouts.create(ref_rollout("missing", 2, "never"))
    status = rollouts.wait(
        name="missing",
        what="InvalidSpec",
        predicate=lambda s: condition(s, "InvalidSpec").get("status") == "True",
    )
    assert (
        "spec.workloadRef: deployment missing not found"
        in condition(status, "InvalidSpec")["message"]
    )
    assert not rollouts.deployments("missing")

    rollouts.apps.create_namespaced_deployment(rollouts.ns, deployment("other", 1))
    mismatch = ref_rollout("other", 1, "never")
    mismatch["spec"]["selector"] = {"matchLabels": {"app": "elsewhere"}}
    rollouts.create(mismatch)
    status = rollouts.wait(
        "other", "InvalidSpec", lambda s: condition(s, "InvalidSpec").get("status") == "True"
    )
    assert "spec.selector" in condition(status, "InvalidSpec")["message"]
    assert not dep(rollouts, "other").spec.paused, "an invalid Rollout touches nothing"
