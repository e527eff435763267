"""Canary Rollouts on the real cluster: the user's story, step by step."""

from __future__ import annotations

import time
from typing import Any

from ramp_e2e import Rollouts, condition, rollout_manifest, wait_for

STEPS = [
    {"setWeight": 20},
    {"pause": {"duration": "2s"}},
    {"setWeight": 50},
    {"pause": {"duration": "2s"}},
    {"setWeight": 100},
]


def test_canary_walks_every_step_and_promotes_without_restarting_pods(
    rollouts: Rollouts,
) -> None:
    rollouts.create(rollout_manifest("web", replicas=10, steps=STEPS))
    first = rollouts.wait_healthy("web", 10)
    stable = first["stableRevision"]
    assert "canaryRevision" not in first
    assert not first.get("stepHistory"), "no steps"

    started = time.monotonic()
    rollouts.set_image("web", "ramp-test/app:v2")
    canary = rollouts.wait("web", "a canary", lambda s: bool(s.get("canaryRevision")))[
        "canaryRevision"
    ]
    splits: dict[int, dict[str, int]] = {}
    uids: set[str] = set()
    steps_seen: list[int] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        status = rollouts.status("web")
        step = status.get("currentStepIndex")
        if step is not None and (not steps_seen or steps_seen[-1] != step):
            steps_seen.append(step)
        if status.get("stableRevision") == canary:
            break
        if step in (1, 3) and step not in splits:
            # A pause after a setWeight: the split must be exact while it lasts.
            splits[step] = rollouts.ready_pods("web")
            uids = rollouts.pod_uids("web", canary)
        time.sleep(0.1)
    final = rollouts.wait_healthy("web", 10)
    elapsed = time.monotonic() - started
    print(f"\nscenario 2: image change to Healthy in {elapsed:.1f}s")

    assert final["stableRevision"] == canary
    assert steps_seen == sorted(steps_seen), f"steps out of order: {steps_seen}"
    assert {1, 3} <= set(steps_seen)
    assert splits[1] == {canary: 2, stable: 8}, splits
    assert splits[3] == {canary: 5, stable: 5}, splits
    assert rollouts.step_history("web") == list(range(5)), final
    deployments = rollouts.deployments("web")
    live = {rev: d.spec.replicas for rev, d in deployments.items() if d.spec.replicas}
    assert live == {canary: 10}
    assert deployments[canary].status.ready_replicas == 10
    # Promotion is a pure scaling operation: the canary's pods survive it.
    assert uids and uids <= rollouts.pod_uids("web", canary)
    assert condition(final, "Healthy")["status"] == "True"


def test_never_ready_canary_aborts_at_deadline_then_retry_and_rollback(
    rollouts: Rollouts,
) -> None:
    rollouts.create(rollout_manifest("api", replicas=10, steps=STEPS, deadline=5))
    stable = rollouts.wait_healthy("api", 10)["stableRevision"]
    rollouts.set_template_labels("api", {"ramp.dev/test-fault": "never-ready"})
    canary = rollouts.wait("api", "a canary", lambda s: bool(s.get("canaryRevision")))[
        "canaryRevision"
    ]

    # Record the order: the stable is back at 10 ready before the canary is at 0.
    order: list[tuple[int, int]] = []

    def aborted_and_drained() -> bool:
        deps = rollouts.deployments("api")
        s_ready = deps[stable].status.ready_replicas or 0
        c_repl = deps[canary].spec.replicas if canary in deps else 0
        order.append((s_ready, c_repl))
        status = rollouts.status("api")
        return status.get("phase") == "Aborted" and c_repl == 0 and s_ready == 10

    wait_for("abort and canary at 0", aborted_and_drained, timeout=60, interval=0.1)
    for s_ready, c_repl in order:
        assert c_repl > 0 or s_ready == 10, f"canary reached 0 before stable was back: {order}"
    status = rollouts.status("api")
    assert status["abortReason"] == "ProgressDeadlineExceeded"
    assert "progressDeadlineSeconds=5" in status["message"]
    aborted = condition(status, "Aborted")
    assert aborted["status"] == "True" and aborted["reason"] == "ProgressDeadlineExceeded"
    assert rollouts.wait_events("api", "Aborted", 1)[0][0] == "Warning"

    # The operator does not retry by itself.
    time.sleep(2)
    assert rollouts.status("api")["phase"] == "Aborted"

    # retry without template change: it starts again at step 0 (and aborts again).
    rollouts.request("api", "retry")
    rollouts.wait(
        "api",
        "restarted",
        lambda s: s.get("phase") == "Progressing" and s.get("currentStepIndex") == 0,
        timeout=30,
    )
    assert rollouts.wait_events("api", "Retried", 1)

    # Back to the stable template: Healthy at once, without steps.
    rollouts.set_template_labels("api", {"ramp.dev/test-fault": None})
    final = rollouts.wait_healthy("api", 10, timeout=60)
    assert final["stableRevision"] == stable
    assert rollouts.wait_events("api", "RolledBack", 1)


def test_indefinite_pause_and_tokens(rollouts: Rollouts) -> None:
    steps: list[dict[str, Any]] = [
        {"setWeight": 20},
        {"pause": {}},
        {"setWeight": 40},
        {"pause": {}},
        {"setWeight": 60},
        {"pause": {}},
    ]
    rollouts.create(rollout_manifest("pay", replicas=5, steps=steps))
    rollouts.wait_healthy("pay", 5)
    rollouts.set_image("pay", "ramp-test/app:v2")
    rollouts.wait("pay", "paused at step 1", lambda s: s.get("phase") == "Paused")
    assert rollouts.status("pay")["currentStepIndex"] == 1
    time.sleep(2)
    assert rollouts.status("pay")["currentStepIndex"] == 1, "an indefinite pause waits"

    token = rollouts.request("pay", "promote")
    rollouts.wait(
        "pay",
        "paused at step 3",
        lambda s: s.get("phase") == "Paused" and s.get("currentStepIndex") == 3,
    )
    # The same token re-applied (e.g. by a GitOps sync) does nothing.
    rollouts.request("pay", "promote", token)
    rollouts.patch("pay", {"metadata": {"labels": {"touched": "yes"}}})
    time.sleep(2)
    assert rollouts.status("pay")["currentStepIndex"] == 3
    assert rollouts.status("pay")["handledTokens"]["promote"] == token

    rollouts.request("pay", "abort")
    rollouts.wait("pay", "aborted", lambda s: s.get("phase") == "Aborted")
    assert rollouts.status("pay")["abortReason"] == "UserAbort"
    rollouts.request("pay", "retry")
    rollouts.wait(
        "pay",
        "paused at step 1 again",
        lambda s: s.get("phase") == "Paused" and s.get("currentStepIndex") == 1,
    )
    canary = rollouts.status("pay")["canaryRevision"]
    rollouts.request("pay", "promote-full")
    final = rollouts.wait_healthy("pay", 5)
    assert final["stableRevision"] == canary


def test_new_template_mid_rollout_scale_and_spec_paused(rollouts: Rollouts) -> None:
    steps: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 100}]
    rollouts.create(rollout_manifest("cart", replicas=4, steps=steps))
    stable = rollouts.wait_healthy("cart", 4)["stableRevision"]
    rollouts.set_image("cart", "ramp-test/app:v2")
    first = rollouts.wait("cart", "paused", lambda s: s.get("phase") == "Paused")["canaryRevision"]

    # A newer template replaces the canary and restarts at step 0.
    rollouts.set_image("cart", "ramp-test/app:v3")
    second = rollouts.wait(
        "cart",
        "a new canary",
        lambda s: s.get("canaryRevision") not in (None, first),
    )["canaryRevision"]
    assert rollouts.wait_events("cart", "CanaryReplaced", 1)
    rollouts.wait(
        "cart",
        "paused with the new canary",
        lambda s: s.get("phase") == "Paused" and s.get("currentStepIndex") == 1,
    )
    assert rollouts.ready_pods("cart") == {second: 2, stable: 2}

    # kubectl scale works through the scale subresource and re-splits.
    rollouts.custom.patch_namespaced_custom_object_scale(
        "ramp.dev", "v1alpha1", rollouts.ns, "rollouts", "cart", {"spec": {"replicas": 6}}
    )
    wait_for(
        "a 3/3 split of 6",
        lambda: rollouts.ready_pods("cart") == {second: 3, stable: 3},
        timeout=60,
        describe=lambda: str(rollouts.ready_pods("cart")),
    )

    # spec.paused holds the rollout where it is, even against a promote.
    rollouts.patch("cart", {"spec": {"paused": True}})
    rollouts.wait(
        "cart",
        "held by spec.paused",
        lambda s: condition(s, "Paused").get("reason") == "SpecPaused",
    )
    rollouts.request("cart", "promote")
    time.sleep(2)
    assert rollouts.status("cart")["currentStepIndex"] == 1
    assert rollouts.ready_pods("cart") == {second: 3, stable: 3}
    rollouts.patch("cart", {"spec": {"paused": False}})
    # The promote waited for the resume: it now advances to the last step.
    final = rollouts.wait_healthy("cart", 6, timeout=60)
    assert final["stableRevision"] == second


def test_stable_and_canary_services_are_pinned(rollouts: Rollouts) -> None:
    for svc in ("shop-stable", "shop-canary"):
        rollouts.core.create_namespaced_service(
            rollouts.ns,
            {
                "metadata": {"name": svc},
                "spec": {"selector": {"app": "shop"}, "ports": [{"port": 80}]},
            },
        )
    steps: list[dict[str, Any]] = [{"setWeight": 25}, {"pause": {}}]
    rollouts.create(
        rollout_manifest(
            "shop",
            replicas=4,
            steps=steps,
            stableService="shop-stable",
            canaryService="shop-canary",
        )
    )
    stable = rollouts.wait_healthy("shop", 4)["stableRevision"]

    def selectors() -> dict[str, str | None]:
        return {
            svc: (rollouts.core.read_namespaced_service(svc, rollouts.ns).spec.selector or {}).get(
                "ramp.dev/revision"
            )
            for svc in ("shop-stable", "shop-canary")
        }

    wait_for(
        "both pinned to stable",
        lambda: selectors() == {"shop-stable": stable, "shop-canary": stable},
    )
    rollouts.set_image("shop", "ramp-test/app:v2")
    canary = rollouts.wait("shop", "paused", lambda s: s.get("phase") == "Paused")["canaryRevision"]
    wait_for(
        "canary service pinned to the canary",
        lambda: selectors() == {"shop-stable": stable, "shop-canary": canary},
        describe=lambda: str(selectors()),
    )
    rollouts.request("shop", "abort")
    rollouts.wait_phase("shop", "Aborted")
    wait_for(
        "both back on stable after abort",
        lambda: selectors() == {"shop-stable": stable, "shop-canary": stable},
        describe=lambda: str(selectors()),
    )
    rollouts.request("shop", "retry")
    rollouts.wait("shop", "paused again", lambda s: s.get("phase") == "Paused")
    rollouts.request("shop", "promote-full")
    rollouts.wait_healthy("shop", 4)
    wait_for(
        "both on the new stable after promotion",
        lambda: selectors() == {"shop-stable": canary, "shop-canary": canary},
        describe=lambda: str(selectors()),
    )


def test_operator_restart_mid_rollout_neither_repeats_nor_skips_a_step(
    rollouts: Rollouts, operator: Any
) -> None:
    import threading

    from kubernetes import watch

    steps: list[dict[str, Any]] = []
    for weight in (10, 20, 30, 40, 50, 60, 70, 80, 90):
        steps += [{"setWeight": weight}, {"pause": {"duration": "1s"}}]
    rollouts.create(rollout_manifest("svc", replicas=10, steps=steps))
    rollouts.wait_healthy("svc", 10)

    # Record every value of currentStepIndex the API server ever stored.
    transitions: list[int | None] = []
    stop = threading.Event()

    def record() -> None:
        w = watch.Watch()
        for event in w.stream(
            rollouts.custom.list_namespaced_custom_object,
            "ramp.dev",
            "v1alpha1",
            rollouts.ns,
            "rollouts",
            field_selector="metadata.name=svc",
            timeout_seconds=120,
        ):
            step = (event["object"].get("status") or {}).get("currentStepIndex")
            if not transitions or transitions[-1] != step:
                transitions.append(step)
            if stop.is_set():
                w.stop()

    recorder = threading.Thread(target=record, daemon=True)
    recorder.start()
    time.sleep(0.5)
    rollouts.set_image("svc", "ramp-test/app:v2")
    rollouts.wait("svc", "step 5", lambda s: (s.get("currentStepIndex") or 0) >= 5, timeout=60)
    operator.kill()
    at_kill = rollouts.status("svc")["currentStepIndex"]
    time.sleep(3)
    assert rollouts.status("svc")["currentStepIndex"] == at_kill, "nothing moves while down"
    operator.start()
    final = rollouts.wait_healthy("svc", 10, timeout=120)
    stop.set()
    rollouts.patch("svc", {"metadata": {"labels": {"done": "yes"}}})  # wake the watch
    recorder.join(10)
    steps_seen = [t for t in transitions if t is not None]
    assert steps_seen == list(range(steps_seen[0], len(steps) + 1))[: len(steps_seen)], transitions
    assert steps_seen[0] == 0 and steps_seen[-1] >= len(steps) - 1, transitions
    assert rollouts.step_history("svc") == list(range(len(steps))), final
    live = {r: d.spec.replicas for r, d in rollouts.deployments("svc").items() if d.spec.replicas}
    assert live == {final["stableRevision"]: 10}
