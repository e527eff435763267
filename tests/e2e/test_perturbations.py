"""Never unsafe (issue 9, acceptance 2): the cluster pushes back mid-rollout, on the real
local cluster with the real operator. Each test perturbs one thing and checks the safety
property the whole time (a background :class:`~perturb.Watch`), not just the end state.

The properties: an aborted or unproven revision never becomes stable; pods ready stay at
``replicas`` (``maxUnavailable`` 0) whenever the stable can provide them; a pinned Service
always selects ready pods; only the Rollout's own children are ever touched.
"""

from __future__ import annotations

import time
from typing import Any

from kubernetes.client.exceptions import ApiException
from perturb import (
    REVISION_LABEL,
    ROLLOUT_LABEL,
    controller_uid,
    create_service,
    delete_rollout,
    history,
    launcher_of,
    owned,
    ready_endpoints,
    ready_selected,
    replicas,
    scale,
    uid,
    wait_gone,
    wait_split,
    watching,
)
from ramp_e2e import Rollouts, condition, rollout_manifest, wait_for
from test_analysis import error_metric, next_revision

from cluster.fixtures import ClusterHandle
from prometheus.fixtures import PrometheusServer

HALF_AND_HOLD: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]


def start_canary(
    rollouts: Rollouts,
    name: str,
    replicas: int = 4,
    steps: list[dict[str, Any]] | None = None,
    **extra: Any,
) -> tuple[str, str]:
    """A Rollout Healthy on v1, then v2 rolling out and paused at 50 %. Returns
    (stable, canary) revisions."""
    rollouts.create(
        rollout_manifest(name, replicas=replicas, steps=steps or HALF_AND_HOLD, **extra)
    )
    stable = rollouts.wait_healthy(name, replicas)["stableRevision"]
    rollouts.set_image(name, "ramp-test/app:v2")
    status = rollouts.wait(name, "paused at step 2", lambda s: s.get("phase") == "Paused")
    canary = status["canaryRevision"]
    half = replicas // 2
    wait_split(rollouts, name, {canary: half, stable: replicas - half})
    return stable, canary


def never_stable(rollouts: Rollouts, name: str, revision: str) -> Any:
    """A probe: ``revision`` is never the stable one and is never scaled up."""

    def probe() -> str | None:
        try:
            status = rollouts.status(name)
        except ApiException as exc:
            if exc.status == 404:
                return None  # deleted and re-created on purpose (test 11)
            raise
        if status.get("stableRevision") == revision:
            return f"{revision} became stable: {status.get('message')!r}"
        for rev, d in rollouts.deployments(name).items():
            if rev == revision and (d.spec.replicas or 0) > 0:
                return f"{revision} scaled to {d.spec.replicas}"
        return None

    return probe


def capacity(rollouts: Rollouts, name: str, floor: int) -> Any:
    """A probe: at least ``floor`` pods of the Rollout are ready."""

    def probe() -> str | None:
        ready = rollouts.ready_pods(name)
        return None if sum(ready.values()) >= floor else f"only {ready} ready (< {floor})"

    return probe


# 1 -------------------------------------------------------------------------------------


def test_stable_deleted_after_abort_is_recreated_from_history(rollouts: Rollouts) -> None:
    stable, canary = start_canary(rollouts, "web")
    rollouts.request("web", "abort")
    rollouts.wait_phase("web", "Aborted")
    wait_split(rollouts, "web", {stable: 4})
    assert history(rollouts, "web")[canary].metadata.annotations.get("ramp.dev/aborted")
    old = owned(rollouts, "web")[stable]

    with (
        watching("the aborted canary never takes over", never_stable(rollouts, "web", canary)),
        watching("phase stays Aborted", lambda: _phase_is(rollouts, "web", "Aborted")),
    ):
        # A GitOps prune or a mistaken `kubectl delete deployment`.
        rollouts.apps.delete_namespaced_deployment(old.metadata.name, rollouts.ns)
        rollouts.wait_events("web", "StableRecreated", 1, timeout=30)
        wait_for(
            "the stable recreated at full size",
            lambda: (
                (d := owned(rollouts, "web").get(stable)) is not None
                and d.metadata.uid != old.metadata.uid
                and d.status.ready_replicas == 4
            ),
            timeout=60,
        )
        wait_split(rollouts, "web", {stable: 4})
        time.sleep(2)
    status = rollouts.status("web")
    assert status["stableRevision"] == stable and status["abortedRevision"] == canary
    assert replicas(rollouts, "web") == {stable: 4, canary: 0}
    template = history(rollouts, "web")[stable].metadata.annotations["ramp.dev/template"]
    assert "ramp-test/app:v1" in template


def _phase_is(rollouts: Rollouts, name: str, phase: str) -> str | None:
    status = rollouts.status(name)
    return None if status.get("phase") == phase else f"phase {status.get('phase')}: {status}"


# 2 -------------------------------------------------------------------------------------


def test_scale_during_long_pause_past_the_deadline_does_not_abort(rollouts: Rollouts) -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 50},
        {"pause": {"duration": "1h"}},
        {"setWeight": 100},
    ]
    rollouts.create(rollout_manifest("api", replicas=4, steps=steps, deadline=5))
    stable = rollouts.wait_healthy("api", 4)["stableRevision"]
    rollouts.set_image("api", "ramp-test/app:v2")
    canary = rollouts.wait("api", "in the long pause", lambda s: s.get("currentStepIndex") == 1)[
        "canaryRevision"
    ]
    wait_split(rollouts, "api", {canary: 2, stable: 2})
    time.sleep(6)  # the step started more than progressDeadlineSeconds ago

    def not_aborted() -> str | None:
        s = rollouts.status("api")
        if s.get("phase") == "Aborted" or s.get("abortedRevision"):
            return f"aborted: {s.get('abortReason')} {s.get('message')!r}"
        return None

    with watching("no abort", not_aborted):
        scale(rollouts, "api", 8)
        wait_split(rollouts, "api", {canary: 4, stable: 4})
        scale(rollouts, "api", 2)
        wait_split(rollouts, "api", {canary: 1, stable: 1})
        scale(rollouts, "api", 6)
        wait_split(rollouts, "api", {canary: 3, stable: 3})
        time.sleep(6)  # another deadline's worth: the pause holds, nothing is stuck
    status = rollouts.status("api")
    assert status["currentStepIndex"] == 1 and status["phase"] == "Progressing", status
    assert replicas(rollouts, "api") == {canary: 3, stable: 3}
    assert not [e for e in rollouts.events("api") if e[1] == "Aborted"]


# 3 -------------------------------------------------------------------------------------


def test_stable_service_keeps_ready_endpoints_at_weight_100_pause(rollouts: Rollouts) -> None:
    create_service(rollouts, "shop-stable", "shop")
    steps: list[dict[str, Any]] = [{"setWeight": 100}, {"pause": {}}]
    rollouts.create(rollout_manifest("shop", replicas=4, steps=steps, stableService="shop-stable"))
    stable = rollouts.wait_healthy("shop", 4)["stableRevision"]
    wait_for("the stable Service pinned", lambda: ready_selected(rollouts, "shop-stable")[1] == 4)

    def serves() -> str | None:
        selector, ready = ready_selected(rollouts, "shop-stable")
        return None if ready > 0 else f"shop-stable selects {selector}: no ready pod"

    with watching("the stable Service always selects ready pods", serves, interval=0.1):
        rollouts.set_image("shop", "ramp-test/app:v2")
        status = rollouts.wait("shop", "paused at weight 100", lambda s: s.get("phase") == "Paused")
        canary = status["canaryRevision"]
        wait_split(rollouts, "shop", {canary: 4})
        wait_for(
            "the stable Service follows the revision that serves",
            lambda: (
                ready_selected(rollouts, "shop-stable")
                == ({"app": "shop", REVISION_LABEL: canary}, 4)
            ),
            describe=lambda: str(ready_selected(rollouts, "shop-stable")),
        )
        wait_for(
            "its EndpointSlices list 4 ready endpoints",
            lambda: ready_endpoints(rollouts, "shop-stable") == 4,
            timeout=30,
        )
        time.sleep(2)
        assert rollouts.status("shop")["stableRevision"] == stable, "not promoted by itself"
        rollouts.request("shop", "promote")
        rollouts.wait_healthy("shop", 4)
    assert ready_selected(rollouts, "shop-stable") == ({"app": "shop", REVISION_LABEL: canary}, 4)


# 4 -------------------------------------------------------------------------------------


def test_promoting_past_many_paused_analyses_keeps_status_writable(
    rollouts: Rollouts, prom: PrometheusServer, operator: Any
) -> None:
    analysis = {"metrics": [error_metric(prom.url, count=1)]}
    steps: list[dict[str, Any]] = [{"setWeight": 25}]
    steps += [{"analysis": analysis} for _ in range(6)]  # more than analysisRuns' maxItems (4)
    steps += [{"pause": {}}, {"setWeight": 100}]
    rollouts.create(rollout_manifest("gate", replicas=4, steps=steps))
    stable = rollouts.wait_healthy("gate", 4)["stableRevision"]
    rollouts.set_image("gate", "ramp-test/app:v2")  # no traffic at all: Inconclusive
    canary = rollouts.wait("gate", "a canary", lambda s: bool(s.get("canaryRevision")))[
        "canaryRevision"
    ]
    for index in range(1, 7):
        status = rollouts.wait(
            "gate",
            f"paused on the analysis of step {index + 1}",
            lambda s, i=index: (
                s.get("currentStepIndex") == i  # type: ignore[misc]
                and condition(s, "Paused").get("reason") == "AnalysisInconclusive"
            ),
            timeout=30,
        )
        assert len(status.get("analysisRuns") or []) <= 2, status["analysisRuns"]
        rollouts.request("gate", "promote")
    status = rollouts.wait(
        "gate",
        "paused at the pause step",
        lambda s: s.get("currentStepIndex") == 7 and s.get("phase") == "Paused",
        timeout=30,
    )
    assert not status.get("analysisRuns"), status["analysisRuns"]
    assert status["stableRevision"] == stable and status["canaryRevision"] == canary
    # The status follows a spec change (no 422 freeze).
    rollouts.patch("gate", {"spec": {"progressDeadlineSeconds": 61}})
    generation = rollouts.get("gate")["metadata"]["generation"]
    rollouts.wait(
        "gate", "observedGeneration follows", lambda s: s.get("observedGeneration") == generation
    )
    rollouts.request("gate", "promote")
    rollouts.wait_healthy("gate", 4)
    assert rollouts.status("gate")["stableRevision"] == canary
    log = operator.log_text()
    assert not [line for line in log.splitlines() if rollouts.ns in line and "422" in line]


# 5 -------------------------------------------------------------------------------------


def test_abort_while_the_spec_is_invalid_is_carried_out(rollouts: Rollouts) -> None:
    stable, canary = start_canary(rollouts, "inv")
    rollouts.set_template_labels("inv", {"ramp.dev/x": "y"})  # reserved: InvalidSpec
    rollouts.wait(
        "inv", "InvalidSpec", lambda s: condition(s, "InvalidSpec").get("status") == "True"
    )
    wait_split(rollouts, "inv", {canary: 2, stable: 2})  # the workload is left as it was
    rollouts.request("inv", "abort")
    status = rollouts.wait(
        "inv", "aborted while invalid", lambda s: s.get("abortedRevision") == canary
    )
    assert condition(status, "Aborted")["status"] == "True"
    assert condition(status, "InvalidSpec")["status"] == "True"
    assert status["phase"] in ("Degraded", "Aborted"), status["phase"]
    assert "abort" in status["message"], status["message"]
    wait_for(
        "stable back to full, canary at 0",
        lambda: replicas(rollouts, "inv") == {stable: 4, canary: 0},
        describe=lambda: str(replicas(rollouts, "inv")),
    )
    wait_split(rollouts, "inv", {stable: 4})
    with watching("the aborted canary never comes back", never_stable(rollouts, "inv", canary)):
        # The spec made valid again (the aborted template): the abort is not forgotten.
        rollouts.set_template_labels("inv", {"ramp.dev/x": None})
        rollouts.wait_phase("inv", "Aborted")
        time.sleep(2)
    assert replicas(rollouts, "inv") == {stable: 4, canary: 0}


# 6 -------------------------------------------------------------------------------------


def test_canary_deleted_mid_step_is_recreated_and_the_rollout_completes(
    rollouts: Rollouts,
) -> None:
    stable, canary = start_canary(rollouts, "del")
    old = owned(rollouts, "del")[canary]
    with watching("stable keeps its share", capacity(rollouts, "del", 2)):
        rollouts.apps.delete_namespaced_deployment(old.metadata.name, rollouts.ns)
        wait_for(
            "the canary recreated",
            lambda: (
                (d := owned(rollouts, "del").get(canary)) is not None
                and d.metadata.uid != old.metadata.uid
            ),
            timeout=30,
        )
        wait_split(rollouts, "del", {canary: 2, stable: 2})
    status = rollouts.wait(
        "del", "paused at step 2 again", lambda s: s.get("phase") == "Paused", timeout=15
    )
    assert status["currentStepIndex"] == 1, status
    rollouts.request("del", "promote")
    final = rollouts.wait_healthy("del", 4)
    assert final["stableRevision"] == canary


# 7 -------------------------------------------------------------------------------------


def test_hand_edited_child_replicas_are_corrected(rollouts: Rollouts) -> None:
    stable, canary = start_canary(rollouts, "edit")
    children = owned(rollouts, "edit")
    for revision, count in ((canary, 4), (stable, 0)):
        rollouts.apps.patch_namespaced_deployment(
            children[revision].metadata.name, rollouts.ns, {"spec": {"replicas": count}}
        )
    wait_for(
        "both children corrected",
        lambda: replicas(rollouts, "edit") == {canary: 2, stable: 2},
        timeout=30,
        describe=lambda: str(replicas(rollouts, "edit")),
    )
    wait_split(rollouts, "edit", {canary: 2, stable: 2})
    status = rollouts.wait(
        "edit", "paused at step 2 again", lambda s: s.get("phase") == "Paused", timeout=15
    )
    assert status["currentStepIndex"] == 1, status
    assert status["stableRevision"] == stable


# 8 -------------------------------------------------------------------------------------


def test_foreign_look_alike_deployment_is_never_touched(rollouts: Rollouts) -> None:
    rollouts.create(rollout_manifest("look", replicas=4, steps=HALF_AND_HOLD))
    rollouts.wait_healthy("look", 4)
    canary = next_revision(rollouts, "look", "ramp-test/app:v2")
    foreign = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "look-alike",
            # The Rollout's labels, and the revision of the canary to come.
            "labels": {ROLLOUT_LABEL: "look", REVISION_LABEL: canary},
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "other"}},
            "template": {
                "metadata": {"labels": {"app": "other"}},
                "spec": {"containers": [{"name": "app", "image": "ramp-test/app:v9"}]},
            },
        },
    }
    created = rollouts.apps.create_namespaced_deployment(rollouts.ns, foreign)

    def untouched() -> str | None:
        d = rollouts.apps.read_namespaced_deployment("look-alike", rollouts.ns)
        if d.metadata.uid != created.metadata.uid:
            return "the look-alike was replaced"
        if d.spec.replicas != 3 or d.metadata.generation != created.metadata.generation:
            return f"the look-alike was changed: replicas {d.spec.replicas}"
        return None

    with watching("the look-alike is never touched", untouched):
        rollouts.wait_events("look", "ForeignChildren", 1, timeout=30)
        rollouts.set_image("look", "ramp-test/app:v2")
        rollouts.wait("look", "paused", lambda s: s.get("phase") == "Paused")
        rollouts.request("look", "promote")
        final = rollouts.wait_healthy("look", 4)
        time.sleep(1)
    assert final["stableRevision"] == canary
    assert condition(final, "ForeignChildren")["status"] == "True"
    warning = next(e for e in rollouts.events("look") if e[1] == "ForeignChildren")
    assert warning[0] == "Warning" and "look-alike" in warning[2]
    own = owned(rollouts, "look")
    assert own[canary].metadata.name != "look-alike" and own[canary].status.ready_replicas == 4


# 9 -------------------------------------------------------------------------------------


def test_rollout_deleted_mid_rollout_leaves_nothing_behind(rollouts: Rollouts) -> None:
    create_service(rollouts, "gone-canary", "gone")
    stable, canary = start_canary(rollouts, "gone", canaryService="gone-canary")
    wait_for(
        "the canary Service pinned",
        lambda: (
            ready_selected(rollouts, "gone-canary") == ({"app": "gone", REVISION_LABEL: canary}, 2)
        ),
    )
    assert set(history(rollouts, "gone")) == {stable, canary}
    delete_rollout(rollouts, "gone")
    wait_gone(rollouts, "gone")

    def everything_gone() -> bool:
        ns = rollouts.ns
        return not (
            rollouts.deployments("gone")
            or history(rollouts, "gone")
            or rollouts.apps.list_namespaced_replica_set(ns, label_selector="app=gone").items
            or rollouts.core.list_namespaced_pod(ns, label_selector="app=gone").items
        )

    wait_for("children, history, ReplicaSets and pods gone", everything_gone, timeout=60)
    time.sleep(3)  # and nothing comes back
    assert everything_gone()
    assert ready_selected(rollouts, "gone-canary")[1] == 0, "nothing serves the canary"


# 10 ------------------------------------------------------------------------------------


def test_kube_apiserver_restart_mid_rollout_then_completes(
    rollouts: Rollouts, cluster: ClusterHandle
) -> None:
    steps: list[dict[str, Any]] = []
    for weight in (25, 50, 75):
        steps += [{"setWeight": weight}, {"pause": {"duration": "2s"}}]
    rollouts.create(rollout_manifest("rs", replicas=4, steps=steps))
    rollouts.wait_healthy("rs", 4)
    rollouts.set_image("rs", "ramp-test/app:v2")
    canary = rollouts.wait("rs", "step 2", lambda s: (s.get("currentStepIndex") or 0) >= 1)[
        "canaryRevision"
    ]
    launcher = launcher_of(cluster)
    port = launcher.ports["kube-apiserver"]
    launcher.stop_component("kube-apiserver")
    time.sleep(4)  # down for longer than a pause step
    launcher.start_component("kube-apiserver")
    assert launcher.ports["kube-apiserver"] == port
    final = rollouts.wait_healthy("rs", 4, timeout=90)
    assert final["stableRevision"] == canary
    assert not [e for e in rollouts.events("rs") if e[1] == "Aborted"]
    assert {r: n for r, n in replicas(rollouts, "rs").items() if n} == {canary: 4}


# 11 ------------------------------------------------------------------------------------


def test_rollout_recreated_from_a_backup_without_status_stays_safe(rollouts: Rollouts) -> None:
    stable, canary = start_canary(rollouts, "bak")
    rollouts.request("bak", "abort")
    rollouts.wait_phase("bak", "Aborted")
    wait_split(rollouts, "bak", {stable: 4})
    backup = rollouts.get("bak")
    old_uid = backup["metadata"]["uid"]
    old_children = {rev: d.metadata.uid for rev, d in owned(rollouts, "bak").items()}

    delete_rollout(rollouts, "bak", propagation="Orphan")
    wait_gone(rollouts, "bak")
    manifest = {
        "apiVersion": backup["apiVersion"],
        "kind": backup["kind"],
        "metadata": {
            "name": "bak",
            "annotations": backup["metadata"].get("annotations") or {},
            "labels": backup["metadata"].get("labels") or {},
        },
        "spec": backup["spec"],
    }
    with (
        watching("the workload keeps serving", capacity(rollouts, "bak", 4)),
        watching("the aborted canary never takes over", never_stable(rollouts, "bak", canary)),
    ):
        rollouts.create(manifest)
        new_uid = uid(rollouts, "bak")
        assert new_uid != old_uid
        status = rollouts.wait(
            "bak", "a status", lambda s: s.get("observedGeneration") is not None, timeout=30
        )
        time.sleep(5)
        status = rollouts.status("bak")
    # The orphaned children and history (no owner any more) are adopted, as a Deployment
    # adopts its ReplicaSets: the history says v1 is stable and v2 was aborted.
    assert status.get("stableRevision") == stable, status
    assert status.get("abortedRevision") == canary and status.get("phase") == "Aborted", status
    deployments = rollouts.deployments("bak")
    assert {rev: d.metadata.uid for rev, d in deployments.items()} == old_children
    assert {rev: controller_uid(d) for rev, d in deployments.items()} == {
        stable: new_uid,
        canary: new_uid,
    }
    assert replicas(rollouts, "bak") == {stable: 4, canary: 0}, "nothing scaled"
    assert {rev: controller_uid(c) for rev, c in history(rollouts, "bak").items()} == {
        stable: new_uid,
        canary: new_uid,
    }
    assert len(rollouts.wait_events("bak", "Adopted", 4)) == 4
    # The restored aborted template is not rolled out again by itself.
    rollouts.request("bak", "promote")
    time.sleep(2)
    assert rollouts.status("bak")["phase"] == "Aborted"
    assert replicas(rollouts, "bak") == {stable: 4, canary: 0}


# 12 ------------------------------------------------------------------------------------


def test_scale_during_spec_paused_follows_in_proportion(rollouts: Rollouts) -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 50},
        {"pause": {"duration": "1s"}},
        {"setWeight": 100},
    ]
    rollouts.create(rollout_manifest("hold", replicas=4, steps=steps))
    stable = rollouts.wait_healthy("hold", 4)["stableRevision"]
    canary = next_revision(rollouts, "hold", "ramp-test/app:v2")
    template = rollouts.get("hold")["spec"]["template"]
    template["spec"]["containers"][0]["image"] = "ramp-test/app:v2"
    rollouts.patch("hold", {"spec": {"paused": True, "template": template}})
    rollouts.wait(
        "hold",
        "held by spec.paused",
        lambda s: condition(s, "Paused").get("reason") == "SpecPaused",
    )
    wait_split(rollouts, "hold", {canary: 2, stable: 2})

    def step_holds() -> str | None:
        s = rollouts.status("hold")
        return None if s.get("currentStepIndex") == 0 else f"step moved: {s}"

    with watching("the step does not move", step_holds):
        scale(rollouts, "hold", 8)
        wait_split(rollouts, "hold", {canary: 4, stable: 4})
        scale(rollouts, "hold", 2)
        wait_split(rollouts, "hold", {canary: 1, stable: 1})
        time.sleep(2)  # longer than the 1s pause step: still held
    assert condition(rollouts.status("hold"), "Paused")["reason"] == "SpecPaused"
    rollouts.patch("hold", {"spec": {"paused": False}})
    final = rollouts.wait_healthy("hold", 2)
    assert final["stableRevision"] == canary


# 13 ------------------------------------------------------------------------------------


def test_background_analysis_aborts_a_canary_held_by_spec_paused(
    rollouts: Rollouts, prom: PrometheusServer
) -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 50},
        {"pause": {"duration": "1s"}},
        {"setWeight": 100},
    ]
    background = {
        "metrics": [error_metric(prom.url, window="2s", inconclusiveLimit=5)],
        "startingStep": 0,
    }
    rollouts.create(rollout_manifest("bgp", replicas=4, steps=steps, analysis=background))
    stable = rollouts.wait_healthy("bgp", 4)["stableRevision"]
    canary = next_revision(rollouts, "bgp", "ramp-test/app:v2")
    prom.exporter.set_rate(rollouts.ns, "bgp", canary, rps=200, error_ratio=0.0)
    time.sleep(3)
    template = rollouts.get("bgp")["spec"]["template"]
    template["spec"]["containers"][0]["image"] = "ramp-test/app:v2"
    rollouts.patch("bgp", {"spec": {"paused": True, "template": template}})
    rollouts.wait(
        "bgp",
        "held by spec.paused with passing background analysis",
        lambda s: (
            condition(s, "Paused").get("reason") == "SpecPaused"
            and sum(m["verdict"] == "Pass" for m in s.get("measurements") or []) >= 2
        ),
        timeout=60,
    )
    wait_split(rollouts, "bgp", {canary: 2, stable: 2})
    prom.exporter.set_rate(rollouts.ns, "bgp", canary, rps=200, error_ratio=0.2)
    wait_for(
        "background analysis to abort while paused",
        lambda: (
            rollouts.status("bgp").get("phase") == "Aborted"
            and replicas(rollouts, "bgp") == {canary: 0, stable: 4}
        ),
        timeout=60,
        describe=lambda: f"{rollouts.status('bgp').get('message')!r} {replicas(rollouts, 'bgp')}",
    )
    status = rollouts.status("bgp")
    assert status["abortReason"] == "AnalysisFailed"
    assert "background analysis" in status["message"]
    assert rollouts.get("bgp")["spec"]["paused"] is True, "still held: the abort came anyway"
    wait_split(rollouts, "bgp", {stable: 4})
