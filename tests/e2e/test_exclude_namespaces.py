"""``--exclude-namespace``: the operator leaves an excluded namespace's Rollouts alone (issue
20; the chart's ``excludeNamespaces``).

An operator of its own watches ``d-ex*`` and excludes ``d-exskip-*``: a Rollout in
``d-exkeep-…`` becomes Healthy, the same Rollout in ``d-exskip-…`` gets no status, no child
Deployment and no Event in the meantime."""

from __future__ import annotations

import time
from pathlib import Path

from ramp_chart import scratch_namespace
from ramp_e2e import OperatorProcess, Rollouts, rollout_manifest, wait_for

from cluster.fixtures import ClusterHandle


def test_an_excluded_namespace_is_left_alone(
    cluster: ClusterHandle, crds: None, tmp_path: Path
) -> None:
    with (
        scratch_namespace(cluster, "exkeep") as keep_ns,
        scratch_namespace(cluster, "exskip") as skip_ns,
    ):
        operator = OperatorProcess(
            cluster.kubeconfig,
            tmp_path / "operator.log",
            ["--namespace", "d-ex*", "--exclude-namespace", "d-exskip-*"],
        )
        operator.start()
        try:
            wait_for("the operator to start", lambda: "watching" in operator.log_text(), 30)
            assert "except d-exskip-*" in operator.log_text()
            keep, skip = Rollouts(cluster.client, keep_ns), Rollouts(cluster.client, skip_ns)
            skip.create(rollout_manifest("web", replicas=2))
            keep.create(rollout_manifest("web", replicas=2))
            keep.wait_healthy("web", 2, timeout=60)
            time.sleep(2)  # the skipped one was created first: it had every chance
            assert not skip.get("web").get("status"), skip.get("web")
            assert not skip.apps.list_namespaced_deployment(skip_ns).items
            assert not skip.events("web")
        finally:
            operator.stop()
