"""Argo CD integration: the shipped Lua health check and actions, run in gopher-lua (the
engine Argo CD embeds, in its sandbox) and in PUC Lua 5.1 (lupa) over real Rollout objects
read from the cluster in every phase; each action's result, applied to the cluster as Argo
CD applies it (a JSON merge patch), makes the operator carry out the verb. Where the two
engines differ, the difference is pinned in ``test_where_gopher_lua_differs_from_lua51``."""

from __future__ import annotations

import copy
import re
import time
from typing import Any

import argocd_lua
import yaml
from kubernetes import client
from ramp_e2e import GROUP, PLURAL, VERSION, Rollouts, condition, rollout_manifest, wait_for
from test_analysis import error_metric, next_revision
from test_bluegreen import bg_manifest, services

from prometheus.fixtures import PrometheusServer

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
        assert argocd_lua.gopher_health(obj) == hs, (phase, "gopher-lua differs")
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
    assert argocd_lua.gopher_health(unobserved)["status"] == "Progressing"
    fresh = copy.deepcopy(captured["Healthy"])
    del fresh["status"]
    assert argocd_lua.health(fresh)["status"] == "Progressing"
    assert argocd_lua.gopher_health(fresh)["status"] == "Progressing"

    every_action_in_gopher_lua(captured)


TOKEN = re.compile(r"argocd-\d+-\d+")
ANNOTATED = {"promote", "promote-full", "abort", "retry", "rollback"}
OFFERED = {
    # phase: verbs discovery enables (the captured objects are not spec.paused)
    "Healthy": {"pause"},
    "Progressing": {"promote", "promote-full", "abort", "pause"},
    "Paused": {"promote", "promote-full", "abort", "pause"},
    "Aborted": {"retry", "pause"},
    "Degraded": {"pause"},
}


def normalized(patch: dict[str, Any]) -> dict[str, Any]:
    """A merge patch with its one-shot token replaced by a placeholder (tokens carry the
    time of the click)."""
    out = copy.deepcopy(patch)
    for key, value in (out.get("metadata", {}).get("annotations") or {}).items():
        assert TOKEN.fullmatch(value), (key, value)
        out["metadata"]["annotations"][key] = "<token>"
    return out


def every_action_in_gopher_lua(
    captured: dict[str, dict[str, Any]], offered_by_state: dict[str, set[str]] = OFFERED
) -> None:
    """Discovery and every action over every captured phase in gopher-lua: what Argo CD
    offers, and the merge patch each action makes, as lupa computes them too."""
    for phase, live in captured.items():
        offered = argocd_lua.gopher_discovery(live)
        assert offered == argocd_lua.discovery(live), phase
        enabled = {v for v, d in offered.items() if not d.get("disabled")}
        assert enabled == offered_by_state[phase], (phase, enabled)
        for verb in argocd_lua.VERBS:
            result = argocd_lua.gopher_action(verb, live)
            patch = normalized(argocd_lua.merge_patch(live, result))
            if verb in ANNOTATED:
                want: dict[str, Any] = {
                    "metadata": {"annotations": {f"ramp.dev/{verb}": "<token>"}}
                }
            else:
                want = {"spec": {"paused": verb == "pause"}}
            assert patch == want, (phase, verb, patch)
            lupa = normalized(argocd_lua.merge_patch(live, argocd_lua.action(verb, live)))
            assert lupa == patch, (phase, verb, "lupa differs", lupa)


def test_where_gopher_lua_differs_from_lua51() -> None:
    """Differences between Argo CD's engine and PUC Lua 5.1 that matter to these scripts,
    found by running both (the lupa sandbox alone would not show them)."""
    obj: dict[str, Any] = {"spec": {"steps": [{"pause": {}}, {"setWeight": 10}]}}

    def both(source: str) -> tuple[Any, Any]:
        (gopher,) = argocd_lua.gopher_raw([(source, obj)])
        return gopher, argocd_lua.run_source(source, obj)

    # An empty table comes back from gopher-json as an empty *array*: a returned object
    # whose steps hold `pause: {}` would patch `pause: []` (refused by the CRD schema)
    # without Argo CD's clean-up from the live object; lupa's conversion hides this.
    gopher, lupa = both("return obj")
    assert gopher["spec"]["steps"][0] == {"pause": []}
    assert argocd_lua.argocd_clean(gopher, obj) == obj == lupa
    # tostring of numbers: Go's shortest form, not %.14g. Tokens use os.time() (10 digits)
    # and resourceVersion (a string), which print the same in both.
    gopher, lupa = both("return {a=tostring(0.1+0.2), b=tostring(2^53), c=tostring(1700000000)}")
    assert gopher == {"a": "0.30000000000000004", "b": "9007199254740992", "c": "1700000000"}
    assert lupa == {"a": "0.3", "b": "9.007199254741e+15", "c": "1700000000"}
    # A table with both array and map keys cannot be encoded: the action fails in Argo CD.
    (mixed,) = argocd_lua.gopher_outcomes([("return {1, x = 2}", obj)])
    assert "cannot encode mixed" in mixed["error"], mixed
    assert argocd_lua.run_source("return {1, x = 2}", obj) == {"1": 1, "x": 2}
    # Neither engine has the string library or string methods, nor math.
    gopher, lupa = both(
        "return {s = string == nil, m = math == nil, "
        "meth = pcall(function() return ('x'):upper() end)}"
    )
    assert gopher == lupa == {"s": True, "m": True, "meth": False}
    # Argo CD's sandbox is wider than the lupa one here: require("os") (the package library
    # and a preloaded safe os), loadstring and dofile exist. The scripts use none of them.
    gopher, lupa = both(
        "local ok, m = pcall(require, 'os'); "
        "return {req = ok and type(m.time) == 'function', ls = loadstring ~= nil}"
    )
    assert gopher == {"req": True, "ls": True} and lupa == {"req": False, "ls": False}


def run_action(rollouts: Rollouts, name: str, verb: str) -> dict[str, Any]:
    """What Argo CD does: discover, run the action on the live object, merge-patch it."""
    live = rollouts.get(name)
    offered = argocd_lua.discovery(live)
    assert set(offered) == set(argocd_lua.VERBS)
    assert not offered[verb].get("disabled"), f"{verb} is disabled on {live.get('status')}"
    assert argocd_lua.gopher_discovery(live) == offered
    result = argocd_lua.gopher_action(verb, live)  # the engine Argo CD runs
    patch = argocd_lua.merge_patch(live, result)
    assert patch and set(patch) <= {"metadata", "spec"}, patch
    lupa = argocd_lua.merge_patch(live, argocd_lua.action(verb, live))
    assert normalized(lupa) == normalized(patch), (verb, lupa, patch)
    rollouts.custom.patch_namespaced_custom_object(GROUP, VERSION, rollouts.ns, PLURAL, name, patch)
    return patch


def disabled(rollouts: Rollouts, name: str) -> set[str]:
    return {v for v, d in argocd_lua.discovery(rollouts.get(name)).items() if d.get("disabled")}


def test_each_action_makes_the_operator_carry_out_its_verb(rollouts: Rollouts) -> None:
    rollouts.create(rollout_manifest("app", replicas=4, steps=PAUSES))
    first = rollouts.wait_healthy("app", 4)["stableRevision"]
    bg_only = {"rollback"}  # a blue-green verb: never offered for a canary
    assert (
        disabled(rollouts, "app")
        == {
            "promote",
            "promote-full",
            "abort",
            "retry",
            "resume",
        }
        | bg_only
    )
    rollouts.set_image("app", "ramp-test/app:v2")
    rollouts.wait(
        "app",
        "paused at step 2",
        lambda s: s.get("phase") == "Paused" and s.get("currentStepIndex") == 1,
    )
    assert disabled(rollouts, "app") == {"retry", "resume"} | bg_only

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
    assert disabled(rollouts, "app") == {"retry", "pause"} | bg_only
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
    assert disabled(rollouts, "app") == {"promote", "promote-full", "abort", "resume"} | bg_only

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


# -- blue-green ------------------------------------------------------------------------------

BG_EXPECTED = {
    # captured state: (phase, Argo CD health, words the message must hold)
    "green coming up": ("Progressing", "Progressing", "waiting for green 0/2 ready"),
    "pre-promotion analysis": ("Progressing", "Progressing", "pre-promotion: metric"),
    "waiting for promote": ("Paused", "Suspended", "Waiting for promote"),
    "post-promotion analysis": ("Progressing", "Progressing", "post-promotion analysis runs"),
    "complete, blue warm": ("Healthy", "Healthy", "stays warm until"),
    "aborted before the switch": ("Aborted", "Degraded", "UserAbort: "),
    "green never ready": ("Aborted", "Degraded", "ProgressDeadlineExceeded: "),
    "rolled back": ("Aborted", "Degraded", "UserRollback: "),
}
BG_OFFERED = {
    "green coming up": {"promote", "promote-full", "abort", "pause"},
    "pre-promotion analysis": {"promote", "promote-full", "abort", "pause"},
    "waiting for promote": {"promote", "promote-full", "abort", "pause"},
    "post-promotion analysis": {"promote-full", "abort", "pause"},  # promote: nothing to skip
    "complete, blue warm": {"rollback", "pause"},
    "aborted before the switch": {"retry", "pause"},
    "green never ready": {"retry", "pause"},
    "rolled back": {"retry", "pause"},
}


def bg_status(rollouts: Rollouts, name: str) -> dict[str, Any]:
    return dict(rollouts.status(name).get("blueGreen") or {})


def test_blue_green_health_in_every_phase_and_the_rollback_action(
    rollouts: Rollouts, prom: PrometheusServer
) -> None:
    """Four blue-green Rollouts released at once, captured in each state of a release; the
    Argo CD rollback action, applied as Argo CD applies it, makes the operator flip the
    active Service back to the warm blue."""
    ok = {"metrics": [error_metric(prom.url, count=40)]}  # runs ~40 s: long enough to see
    post = {"metrics": [error_metric(prom.url, count=3)]}
    manifests = {
        "bgup": bg_manifest("bgup", deadline=8),
        "bgana": bg_manifest("bgana", prePromotionAnalysis=ok),
        "bghold": bg_manifest("bghold", autoPromotionEnabled=False),
        "bgdone": bg_manifest("bgdone", postPromotionAnalysis=post, scaleDownDelaySeconds=120),
    }
    for name, manifest in manifests.items():
        services(rollouts, name)
        rollouts.create(manifest)
    blue = {name: rollouts.wait_healthy(name, 4)["stableRevision"] for name in manifests}
    fresh = rollouts.get("bghold")  # first revision, nothing warm: no rollback offered
    assert "rollback" in {v for v, d in argocd_lua.discovery(fresh).items() if d.get("disabled")}
    assert argocd_lua.gopher_health(fresh)["status"] == "Healthy"
    for name in ("bgana", "bgdone"):
        green = next_revision(rollouts, name, "ramp-test/app:v2")
        prom.exporter.set_rate(rollouts.ns, name, green, rps=100, error_ratio=0.0)
    time.sleep(3)  # a rate window of data for the analyses
    rollouts.set_template_labels("bgup", {"ramp.dev/test-fault": "never-ready"})
    for name in ("bgana", "bghold", "bgdone"):
        rollouts.set_image(name, "ramp-test/app:v2")

    captured: dict[str, dict[str, Any]] = {}
    rollouts.wait(
        "bgup",
        "green not ready",
        lambda s: (
            s.get("phase") == "Progressing"
            and str((s.get("blueGreen") or {}).get("waitingFor", "")).startswith("green 0/2")
        ),
    )
    captured["green coming up"] = rollouts.get("bgup")
    rollouts.wait(
        "bgdone",
        "switched, post-promotion analysis running",
        lambda s: (
            (s.get("blueGreen") or {}).get("switchedAt") is not None
            and s.get("phase") == "Progressing"
        ),
    )
    captured["post-promotion analysis"] = rollouts.get("bgdone")
    rollouts.wait(
        "bgana",
        "pre-promotion analysis measuring",
        lambda s: s.get("phase") == "Progressing" and bool(s.get("measurements")),
    )
    captured["pre-promotion analysis"] = rollouts.get("bgana")
    captured["waiting for promote"] = obj = rollouts.get("bghold")
    if obj["status"].get("phase") != "Paused":
        rollouts.wait_phase("bghold", "Paused")
        captured["waiting for promote"] = rollouts.get("bghold")
    done = rollouts.wait(
        "bgdone",
        "complete with blue warm",
        lambda s: (
            s.get("phase") == "Healthy" and bool((s.get("blueGreen") or {}).get("warmRevision"))
        ),
    )
    assert done["blueGreen"]["warmRevision"] == blue["bgdone"]
    green = done["stableRevision"]
    captured["complete, blue warm"] = warm = rollouts.get("bgdone")

    # The window's end decides: the same object a second after warmUntil offers no rollback.
    late = copy.deepcopy(warm)
    late["status"]["blueGreen"]["warmUntil"] = "2000-01-01T00:00:00Z"
    for run in (argocd_lua.discovery, argocd_lua.gopher_discovery):
        assert run(late)["rollback"]["disabled"] is True
        assert run(warm)["rollback"]["disabled"] is False

    # Argo CD's rollback: the operator flips the active Service back to the warm blue.
    run_action(rollouts, "bgdone", "rollback")
    core = client.CoreV1Api(rollouts.custom.api_client)
    wait_for(
        "the active Service selects blue again",
        lambda: (
            (core.read_namespaced_service("bgdone-active", rollouts.ns).spec.selector or {}).get(
                "ramp.dev/revision"
            )
            == blue["bgdone"]
        ),
        timeout=20,
    )
    rolled = rollouts.wait_phase("bgdone", "Aborted", timeout=20)
    assert rolled["abortReason"] == "UserRollback"
    assert rolled["stableRevision"] == blue["bgdone"] and rolled["canaryRevision"] == green
    assert rolled["blueGreen"]["activeRevision"] == blue["bgdone"]
    assert rollouts.wait_events("bgdone", "RolledBack", 1)
    captured["rolled back"] = rollouts.get("bgdone")

    rollouts.wait_phase("bgup", "Aborted", timeout=30)  # progressDeadlineSeconds=8
    captured["green never ready"] = rollouts.get("bgup")

    run_action(rollouts, "bghold", "abort")
    rollouts.wait_phase("bghold", "Aborted", timeout=20)
    captured["aborted before the switch"] = rollouts.get("bghold")

    for state, live in captured.items():
        phase, health, words = BG_EXPECTED[state]
        assert live["status"]["phase"] == phase, (state, live["status"].get("message"))
        hs = argocd_lua.gopher_health(live)
        assert hs == argocd_lua.health(live), (state, "lupa differs")
        assert hs["status"] == health, (state, hs)
        assert words in hs["message"], (state, hs)
        offered = argocd_lua.gopher_discovery(live)
        assert offered == argocd_lua.discovery(live), state
        enabled = {v for v, d in offered.items() if not d.get("disabled")}
        assert enabled == BG_OFFERED[state], (state, enabled)
        print(f"\n{state}: {hs['status']}: {hs['message']}")
    waiting = argocd_lua.gopher_health(captured["waiting for promote"])["message"]
    assert blue["bghold"] in waiting  # names what the active Service still serves
    assert blue["bgdone"] in argocd_lua.gopher_health(captured["complete, blue warm"])["message"]
    every_action_in_gopher_lua({f"{state}": live for state, live in captured.items()}, BG_OFFERED)
