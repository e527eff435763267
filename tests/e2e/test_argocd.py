"""Argo CD integration: the shipped Lua health check and actions, run with real Lua 5.1 over
real Rollout objects read from the cluster in every phase; each action's result, applied
to the cluster as Argo CD applies it (a JSON merge patch), makes the operator carry out
the verb."""

from __future__ import annotations

import copy
from typing import Any

import argocd_lua
import yaml
from ramp_e2e import GROUP, PLURAL, VERSION, Rollouts, condition, rollout_manifest

PAUSES: list[dict[str, Any]] = [
    {"setWeight": 25},
    {"pause": {}},
    {"setWeight": 50},
    {"pause": {}},
    {"setWeight": 75},
    {"pause": {}},
]


def test_the_argocd_cm_snippet_embeds_the_lua_files() -> None:
    proc = argocd_lua.render_check()
    assert proc.returncode == 0, proc.stderr
    cm = yaml.safe_load((argocd_lua.ARGOCD / "argocd-cm.yaml").read_text())
    data = cm["data"]
    health = data["resource.customizations.health.ramp.dev_Rollout"]
    assert health == (argocd_lua.ARGOCD / "health.lua").read_text()
    actions = yaml.safe_load(data["resource.customizations.actions.ramp.dev_Rollout"])
    assert [d["name"] for d in actions["definitions"]] == list(argocd_lua.VERBS)
    for d in actions["definitions"]:
        assert (
            d["action.lua"]
            == (argocd_lua.ARGOCD / "actions" / d["name"] / "action.lua").read_text()
        )


def test_health_of_real_rollouts_in_every_phase(rollouts: Rollouts) -> None:
    captured: dict[str, dict[str, Any]] = {}

    rollouts.create(rollout_manifest("calm", replicas=3, steps=PAUSES))
    rollouts.wait_healthy("calm", 3)
    captured["Healthy"] = rollouts.get("calm")

    timed = [{"setWeight": 50}, {"pause": {"duration": "1h"}}]
    rollouts.create(rollout_manifest("moving", replicas=2, steps=timed))
    rollouts.wait_healthy("moving", 2)
    rollouts.set_image("moving", "ramp-test/app:v2")
    rollouts.wait(
        "moving",
        "in its timed pause",
        lambda s: s.get("currentStepIndex") == 1 and s.get("phase") == "Progressing",
    )
    captured["Progressing"] = rollouts.get("moving")

    rollouts.create(rollout_manifest("held", replicas=2, steps=PAUSES))
    rollouts.wait_healthy("held", 2)
    rollouts.set_image("held", "ramp-test/app:v2")
    rollouts.wait_phase("held", "Paused")
    captured["Paused"] = rollouts.get("held")

    rollouts.create(rollout_manifest("stopped", replicas=2, steps=PAUSES))
    rollouts.wait_healthy("stopped", 2)
    rollouts.set_image("stopped", "ramp-test/app:v2")
    rollouts.wait_phase("stopped", "Paused")
    rollouts.request("stopped", "abort")
    rollouts.wait_phase("stopped", "Aborted")
    captured["Aborted"] = rollouts.get("stopped")

    rollouts.create(rollout_manifest("odd", replicas=2, steps=PAUSES))
    rollouts.wait_healthy("odd", 2)
    rollouts.set_template_labels("odd", {"ramp.dev/role": "mine"})  # reserved label
    rollouts.wait_phase("odd", "Degraded")
    captured["Degraded"] = rollouts.get("odd")

    expected = {
        "Healthy": "Healthy",
        "Progressing": "Progressing",
        "Paused": "Suspended",
        "Aborted": "Degraded",
        "Degraded": "Degraded",
    }
    for phase, obj in captured.items():
        assert obj["status"]["phase"] == phase
        hs = argocd_lua.health(obj)
        assert hs["status"] == expected[phase], (phase, hs)
        assert isinstance(hs.get("message"), str)
        if phase != "Healthy":
            assert hs["message"], (phase, hs)
    assert argocd_lua.health(captured["Aborted"])["message"].startswith("UserAbort: ")
    assert "ramp.dev/role" in argocd_lua.health(captured["Degraded"])["message"]

    # The same real objects a moment before the operator sees a change: Progressing, not
    # the old verdict (Argo CD would otherwise report a stale Healthy right after a sync).
    unobserved = copy.deepcopy(captured["Healthy"])
    unobserved["metadata"]["generation"] += 1
    assert argocd_lua.health(unobserved)["status"] == "Progressing"
    fresh = copy.deepcopy(captured["Healthy"])
    del fresh["status"]
    assert argocd_lua.health(fresh)["status"] == "Progressing"


def run_action(rollouts: Rollouts, name: str, verb: str) -> dict[str, Any]:
    """What Argo CD does: discover, run the action on the live object, merge-patch it."""
    live = rollouts.get(name)
    offered = argocd_lua.discovery(live)
    assert set(offered) == set(argocd_lua.VERBS)
    assert not offered[verb].get("disabled"), f"{verb} is disabled on {live.get('status')}"
    result = argocd_lua.action(verb, live)
    patch = argocd_lua.merge_patch(live, result)
    assert patch and set(patch) <= {"metadata", "spec"}, patch
    rollouts.custom.patch_namespaced_custom_object(GROUP, VERSION, rollouts.ns, PLURAL, name, patch)
    return patch


def disabled(rollouts: Rollouts, name: str) -> set[str]:
    return {v for v, d in argocd_lua.discovery(rollouts.get(name)).items() if d.get("disabled")}


def test_each_action_makes_the_operator_carry_out_its_verb(rollouts: Rollouts) -> None:
    rollouts.create(rollout_manifest("app", replicas=4, steps=PAUSES))
    first = rollouts.wait_healthy("app", 4)["stableRevision"]
    assert disabled(rollouts, "app") == {"promote", "promote-full", "abort", "retry", "resume"}
    rollouts.set_image("app", "ramp-test/app:v2")
    rollouts.wait(
        "app",
        "paused at step 2",
        lambda s: s.get("phase") == "Paused" and s.get("currentStepIndex") == 1,
    )
    assert disabled(rollouts, "app") == {"retry", "resume"}

    patch = run_action(rollouts, "app", "promote")
    token = patch["metadata"]["annotations"]["ramp.dev/promote"]
    status = rollouts.wait(
        "app",
        "paused at step 4",
        lambda s: s.get("currentStepIndex") == 3 and s.get("phase") == "Paused",
    )
    assert status["handledTokens"]["promote"] == token

    run_action(rollouts, "app", "pause")
    assert rollouts.get("app")["spec"]["paused"] is True
    rollouts.wait(
        "app", "held by spec.paused", lambda s: condition(s, "Paused").get("reason") == "SpecPaused"
    )
    assert disabled(rollouts, "app") == {"retry", "pause"}
    # While paused, a promote waits for the resume (it is not consumed).
    run_action(rollouts, "app", "promote")
    run_action(rollouts, "app", "resume")
    assert rollouts.get("app")["spec"]["paused"] is False
    rollouts.wait(
        "app",
        "the held promote applied after resume",
        lambda s: s.get("currentStepIndex") == 5 and s.get("phase") == "Paused",
    )

    run_action(rollouts, "app", "abort")
    aborted = rollouts.wait_phase("app", "Aborted")
    assert aborted["abortReason"] == "UserAbort" and aborted["stableRevision"] == first
    assert disabled(rollouts, "app") == {"promote", "promote-full", "abort", "resume"}

    run_action(rollouts, "app", "retry")
    rollouts.wait(
        "app",
        "restarted and paused at step 2",
        lambda s: s.get("phase") == "Paused" and s.get("currentStepIndex") == 1,
    )
    assert rollouts.wait_events("app", "Retried", 1)

    run_action(rollouts, "app", "promote-full")
    done = rollouts.wait_healthy("app", 4)
    assert done["stableRevision"] != first
    assert rollouts.wait_events("app", "PromotedFull", 1)
    assert argocd_lua.health(rollouts.get("app"))["status"] == "Healthy"
