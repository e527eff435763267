"""Namespaces created while the operator starts are watched (a CI failure of test_checks).

kopf lists the namespaces matching ``--namespace`` patterns, then starts a namespace watch
that ignores its own initial list: a namespace created between the two was never watched and
its Rollouts never reconciled (ramp.shell.runtime.namespaces re-lists and repairs that). CI
hit that gap once on a loaded machine. Here the gap is made wide on purpose: the operator's
namespace watch starts 4 s late (tests/e2e/lagging_watch), namespaces are created before the
operator, and inside the gap, one Rollout in each; every Rollout must become Healthy."""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from pathlib import Path

from ramp_e2e import OperatorProcess, Rollouts, rollout_manifest, wait_for

from cluster.fixtures import ClusterHandle

LAG = 4.0
LAGGING = Path(__file__).parent / "lagging_watch"


def test_namespaces_created_while_the_namespace_watch_lags_are_watched(
    cluster: ClusterHandle, crds: None, tmp_path: Path
) -> None:
    from kubernetes import client

    core = client.CoreV1Api(cluster.client)
    prefix = f"d-nsup-{secrets.token_hex(2)}"
    created: list[str] = []

    def namespace_with_a_rollout(i: int) -> None:
        name = f"{prefix}-{i}"
        core.create_namespace({"metadata": {"name": name}})
        created.append(name)
        Rollouts(cluster.client, name).create(rollout_manifest("web", replicas=1))

    path = os.pathsep.join(filter(None, [str(LAGGING), os.environ.get("PYTHONPATH")]))
    operator = OperatorProcess(
        cluster.kubeconfig,
        tmp_path / "operator.log",
        ["--namespace", f"{prefix}-*"],
        # kubernetes' default kubeconfig path is read when it is imported: here, before ramp
        # sets it from --kubeconfig (the lag imports kopf first)
        env={
            "PYTHONPATH": path,
            "RAMP_TEST_NAMESPACE_WATCH_LAG": str(LAG),
            "KUBECONFIG": str(cluster.kubeconfig),
        },
    )
    try:
        namespace_with_a_rollout(0)
        operator.start()
        wait_for(
            "kopf to list the namespaces",
            lambda: "Initial authentication has finished" in operator.log_text(),
            timeout=60,
            interval=0.05,
        )
        time.sleep(0.5)  # kopf's first list is done (it follows this line at once)
        began = time.monotonic()
        for i in range(1, 4):  # inside the gap: after kopf's list, before its watch
            namespace_with_a_rollout(i)
        assert time.monotonic() - began < LAG - 0.5, "the namespaces were not created in the gap"
        pending = set(created)

        def all_healthy() -> bool:
            for name in sorted(pending):
                if Rollouts(cluster.client, name).status("web").get("phase") == "Healthy":
                    pending.discard(name)
            return not pending

        wait_for(
            "every namespace's Rollout to become Healthy",
            all_healthy,
            timeout=45,
            interval=0.5,
            describe=lambda: f"never reconciled in {sorted(pending)}",
        )
        took = time.monotonic() - began
        print(f"\nnamespaces made in a lagging watch's gap: all Healthy {took:.1f}s")
        assert "the framework's namespace watch missed" in operator.log_text()
    finally:
        operator.stop()
        for name in created:
            with contextlib.suppress(Exception):
                core.delete_namespace(name, propagation_policy="Background")
