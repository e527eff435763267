"""Services Ramp pins, on the real cluster (issue 19, classes 1-3): a background sampler
checks, every 0.1 s, that the Service selects a ready pod (its whole selector, matched
against the pods' labels by the API server) while the app has ready pods."""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client.exceptions import ApiException
from perturb import create_service, ready_endpoints, ready_selected, wait_gone, watching
from ramp_e2e import GROUP, PLURAL, VERSION, OperatorProcess, Rollouts, rollout_manifest, wait_for
from test_workloadref import MANAGED, dep, deployment, ref_rollout

REVISION = "ramp.dev/revision"


def serving(rollouts: Rollouts, service: str) -> Any:
    def probe() -> str | None:
        selector, ready = ready_selected(rollouts, service)
        return None if ready > 0 else f"{service} selects {selector}: no ready pod"

    return probe


def pinned_to(rollouts: Rollouts, service: str, revision: str, ready: int) -> Any:
    return lambda: (
        ready_selected(rollouts, service)[0].get(REVISION) == revision
        and (ready_endpoints(rollouts, service) == ready)
    )


def test_class1_a_selector_change_is_refused_and_the_stable_service_keeps_serving(
    rollouts: Rollouts,
) -> None:
    """Adding a key to spec.selector.matchLabels and the template in one apply emptied the
    stable Service (re-pinned with a key the running pods lack). spec.selector is now
    immutable, as a Deployment's: the API server refuses the change."""
    name, r = "shop", 3
    create_service(rollouts, f"{name}-stable", name)
    steps: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}]
    rollouts.create(rollout_manifest(name, replicas=r, steps=steps, stableService=f"{name}-stable"))
    stable = rollouts.wait_healthy(name, r)["stableRevision"]
    wait_for("the stable Service pinned", pinned_to(rollouts, f"{name}-stable", stable, r))
    refused: ApiException | None = None
    serves = serving(rollouts, f"{name}-stable")
    with watching("the stable Service selects ready pods", serves, 0.1):
        change = {
            "spec": {
                "selector": {"matchLabels": {"track": "x"}},
                "template": {"metadata": {"labels": {"track": "x"}}},
            }
        }
        try:
            rollouts.patch(name, change)
        except ApiException as exc:
            refused = exc
            # A template change alone still rolls out; the stable Service stays on the stable.
            rollouts.set_template_labels(name, {"track": "x"})
        rollouts.wait(name, "paused at 50%", lambda s: s.get("phase") == "Paused")
        time.sleep(1.5)
        selector, ready = ready_selected(rollouts, f"{name}-stable")
    assert refused is not None and refused.status == 422, "the selector change was accepted"
    assert "spec.selector is immutable" in str(refused.body)
    assert selector == {"app": name, REVISION: stable} and ready > 0  # 1 at 50 % of 3


def adopted(rollouts: Rollouts, name: str, r: int, service: str, strategy: dict[str, Any]) -> str:
    """A Deployment of ``r`` ready pods and the Service ``service``, then a Rollout with
    ``workloadRef`` and ``strategy`` adopting it: its stable revision once Adopted and
    Healthy."""
    rollouts.apps.create_namespaced_deployment(rollouts.ns, deployment(name, r))
    create_service(rollouts, service, name)
    wait_for("the Deployment ready", lambda: (dep(rollouts, name).status.ready_replicas or 0) == r)
    manifest = ref_rollout(name, r, "progressively")
    manifest["spec"]["strategy"] = strategy
    rollouts.create(manifest)
    status = rollouts.wait(
        name,
        "adopted",
        lambda s: (
            (s.get("workload") or {}).get("state") == "Adopted" and s.get("phase") == "Healthy"
        ),
        timeout=90,
    )
    return str(status["stableRevision"])


def given_back(rollouts: Rollouts, name: str, service: str, r: int) -> None:
    """The Rollout gone, then Ramp's pods, and ``service`` lists the Deployment's ``r``."""
    wait_gone(rollouts, name, timeout=90)
    wait_for("Ramp's pods gone", lambda: not rollouts.deployments(name), timeout=60)
    wait_for(
        "the Service serves the Deployment's pods",
        lambda: ready_endpoints(rollouts, service) == r,
        timeout=30,
    )


def test_class2_deleting_a_workloadref_rollout_gives_its_services_back(
    rollouts: Rollouts,
) -> None:
    """Deleting a Rollout with workloadRef gave the Deployment back but left
    ramp.dev/revision in the Service: zero endpoints, for good. The key goes first, then
    the finalizer, then Ramp's pods."""
    name, r = "cart", 3
    canary = {"steps": [], "stableService": f"{name}-stable"}
    stable = adopted(rollouts, name, r, f"{name}-stable", {"canary": canary})
    wait_for("the stable Service pinned", pinned_to(rollouts, f"{name}-stable", stable, r))
    with watching("the Service selects ready pods", serving(rollouts, f"{name}-stable"), 0.1):
        rollouts.custom.delete_namespaced_custom_object(GROUP, VERSION, rollouts.ns, PLURAL, name)
        given_back(rollouts, name, f"{name}-stable", r)
    assert ready_selected(rollouts, f"{name}-stable") == ({"app": name}, r)


def test_class2_a_blue_green_give_back_keeps_the_active_services_endpoints_listed(
    rollouts: Rollouts,
) -> None:
    """Blue-green reads its Services' EndpointSlices: deleting a Rollout with workloadRef
    lets Ramp's pods go only once the active Service's EndpointSlices list a ready pod of
    the Deployment (the pods Ramp's planner counts there carry no revision label). The
    EndpointSlices, not only the pods' labels, are sampled every 0.1 s: never empty."""
    name, r = "till", 2
    active = f"{name}-active"
    stable = adopted(rollouts, name, r, active, {"blueGreen": {"activeService": active}})
    wait_for("the active Service pinned", pinned_to(rollouts, active, stable, r))

    def listed() -> str | None:
        return None if ready_endpoints(rollouts, active) > 0 else f"{active}: no ready endpoint"

    with watching("the active Service lists a ready endpoint", listed, 0.1):
        rollouts.custom.delete_namespaced_custom_object(GROUP, VERSION, rollouts.ns, PLURAL, name)
        given_back(rollouts, name, active, r)
    assert ready_selected(rollouts, active) == ({"app": name}, r)


def test_class2_a_rollout_that_lost_its_workload_ref_and_status_gives_the_deployment_back(
    rollouts: Rollouts, operator: OperatorProcess
) -> None:
    """The Rollout's ``workloadRef`` removed (its template written instead), its status
    lost (a restore) and the Rollout deleted, all while the operator was down: nothing
    named the Deployment it held. Before, the Services lost Ramp's key but the Deployment
    stayed paused at 0 replicas, annotated as held. It is found by its annotation and
    given back: unpaused, scaled back, unmarked, serving before Ramp's pods go."""
    name, r = "cart", 2
    canary = {"steps": [], "stableService": f"{name}-stable"}
    stable = adopted(rollouts, name, r, f"{name}-stable", {"canary": canary})
    wait_for("the stable Service pinned", pinned_to(rollouts, f"{name}-stable", stable, r))
    assert dep(rollouts, name).spec.replicas == 0 and dep(rollouts, name).spec.paused
    inline = rollouts.apps.api_client.sanitize_for_serialization(dep(rollouts, name).spec.template)
    inline["metadata"].pop("creationTimestamp", None)
    with watching("the Service selects ready pods", serving(rollouts, f"{name}-stable"), 0.1):
        operator.stop()
        try:
            spec = {"workloadRef": None, "template": inline}
            spec["selector"] = {"matchLabels": {"app": name}}
            args = (GROUP, VERSION, rollouts.ns, PLURAL, name)
            rollouts.custom.patch_namespaced_custom_object(*args, {"spec": spec})
            rollouts.custom.patch_namespaced_custom_object_status(*args, {"status": None})
            rollouts.custom.delete_namespaced_custom_object(*args)
        finally:
            operator.start()
        given_back(rollouts, name, f"{name}-stable", r)
    d = dep(rollouts, name)
    assert not d.spec.paused and d.spec.replicas == r
    assert MANAGED not in (d.metadata.annotations or {})
    assert ready_selected(rollouts, f"{name}-stable") == ({"app": name}, r)


def test_class3_an_existing_service_is_narrowed_only_once_the_revision_serves(
    rollouts: Rollouts,
) -> None:
    """A stableService serving a running Deployment (a migration, `kubectl ramp convert`'s
    output) was pinned at once to Ramp's revision, which had no ready pod yet."""
    name, r = "till", 3
    rollouts.apps.create_namespaced_deployment(rollouts.ns, deployment(name, r))
    create_service(rollouts, f"{name}-stable", name)
    wait_for("the Deployment ready", lambda: (dep(rollouts, name).status.ready_replicas or 0) == r)
    wait_for("its Service serves it", lambda: ready_endpoints(rollouts, f"{name}-stable") == r)
    manifest = rollout_manifest(f"{name}-ramp", replicas=r, stableService=f"{name}-stable")
    manifest["spec"]["selector"]["matchLabels"] = {"app": name}
    template = manifest["spec"]["template"]
    template["metadata"] = {
        "labels": {"app": name},
        "annotations": {"ramp.dev/test-ready-delay": "4s"},  # a window with none ready
    }
    with watching("the Service selects ready pods", serving(rollouts, f"{name}-stable"), 0.1):
        rollouts.create(manifest)
        stable = rollouts.wait_healthy(f"{name}-ramp", r, timeout=60)["stableRevision"]
        wait_for(
            "the Service pinned to Ramp's revision",
            lambda: ready_selected(rollouts, f"{name}-stable")[0].get(REVISION) == stable,
            timeout=30,
        )
    assert ready_selected(rollouts, f"{name}-stable") == ({"app": name, REVISION: stable}, r)
