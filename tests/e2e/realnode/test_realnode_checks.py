"""Check Jobs on the real node (issue 24): the container really runs, its exit code is its
own, a missing image is a real image error, and a restarted operator finds its Job.

Each case is a Rollout of the demo app whose canary is judged, before its first weight, by
one ``job`` metric whose Job runs the demo app's image on the real node:

* ``demoapp smoke`` is the new version's own smoke test (it serves on loopback with the
  canary's configuration and sends 20 requests): all answered 200, exit 0, Pass, the
  canary is promoted; with ``ERROR_RATIO=0.5`` its real errors make it exit 1: Fail;
* ``ERROR_RATIO=bad`` makes the demo app exit 2 at once: Fail, the Rollout aborts, the
  exit code and the container's own words (its log, ``FallbackToLogsOnError``) are in the
  decision record;
* an image that is not on the node (``imagePullPolicy: Never``): ``ErrImageNeverPull``,
  Inconclusive at once, the Rollout pauses, the Job is deleted;
* ``demoapp pause`` runs until the Job's deadline: Inconclusive, never a pass; and when
  the operator is SIGKILLed while that Job runs, the restarted one finds the same Job:
  exactly one Job, the same verdict.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from ramp_e2e import OperatorProcess, Rollouts, condition, wait_for
from realnode_e2e import RealCluster, demo_rollout, release

from cluster import realnode

pytestmark = pytest.mark.realnode


def job_metric(
    deadline: int, env: dict[str, str] | None = None, args: list[str] | None = None,
    image: str = realnode.DEMO_IMAGE,
) -> dict[str, Any]:  # fmt: skip
    container: dict[str, Any] = {
        "name": "smoke",
        "image": image,
        "imagePullPolicy": "Never",
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
    }
    if args:
        container["args"] = args
    return {
        "name": "smoke",
        "inconclusiveLimit": 0,
        "job": {
            "activeDeadlineSeconds": deadline,
            "template": {
                "spec": {
                    "containers": [container],
                    "nodeSelector": {realnode.NODE_LABEL: "true"},
                    "tolerations": [
                        {"key": realnode.NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}
                    ],
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 1,
                }
            },
        },
    }


def jobs_of(rollouts: Rollouts, real: RealCluster, name: str) -> list[Any]:
    from kubernetes import client

    found = client.BatchV1Api(real.handle.client).list_namespaced_job(
        rollouts.ns, label_selector=f"ramp.dev/rollout={name}"
    )
    return list(found.items)


def test_check_jobs_on_the_real_node_pass_exit_image_error_deadline_and_a_restart(
    real_cluster: RealCluster, real_rollouts: Rollouts, real_operator: OperatorProcess
) -> None:
    rollouts = real_rollouts
    cases = {
        "smoke": job_metric(60, env={"VERSION": "v2"}, args=["smoke"]),
        "smokebad": job_metric(60, env={"ERROR_RATIO": "0.5"}, args=["smoke"]),
        "exit": job_metric(60, env={"ERROR_RATIO": "bad"}),
        "noimage": job_metric(60, image="localhost/ramp-not-there:v1"),
        "restart": job_metric(12, args=["pause"]),
    }
    for name, metric in cases.items():
        steps = [{"analysis": {"metrics": [metric]}}, {"setWeight": 100}]
        rollouts.create(demo_rollout(name, 1, steps, deadline=120))
    stables = {
        name: rollouts.wait_healthy(name, 1, timeout=120)["stableRevision"] for name in cases
    }
    began = time.monotonic()
    for name in cases:
        release(rollouts, name, {"VERSION": "v2"})
    # The operator dies while the "restart" Job runs, and comes back.
    wait_for(
        "the restart case's Job", lambda: jobs_of(rollouts, real_cluster, "restart"), timeout=60
    )
    real_operator.kill()
    time.sleep(2)
    real_operator.start()

    def ended(name: str) -> dict[str, Any] | None:
        status = rollouts.status(name)
        if status.get("phase") in ("Aborted", "Paused"):
            return status
        promoted = status.get("stableRevision") not in (None, stables[name])
        return status if promoted and status.get("phase") == "Healthy" else None

    final = {
        name: wait_for(f"{name} to end", lambda n=name: ended(n), timeout=120) for name in cases
    }
    print(f"\nreal-node check Jobs: {len(cases)} cases ended in {time.monotonic() - began:.1f}s")
    passed = final.pop("smoke")
    assert passed["phase"] == "Healthy", passed
    record = passed["measurements"][-1]
    assert record["verdict"] == "Pass" and record["value"] == "exit 0", record
    assert "smoke v2: 20 GET / answered map[200:20]" in record["message"], record
    for name, status in final.items():
        assert status["stableRevision"] == stables[name], name
        assert all(m["verdict"] != "Pass" for m in status["measurements"]), status
    smokebad = final["smokebad"]
    assert smokebad["phase"] == "Aborted", smokebad
    record = smokebad["measurements"][-1]
    assert record["verdict"] == "Fail" and record["value"] == "exit 1", record
    assert "not 2xx" in record["message"], record

    exited = final["exit"]
    assert exited["phase"] == "Aborted" and exited["abortReason"] == "AnalysisFailed", exited
    record = exited["measurements"][-1]
    assert record["verdict"] == "Fail" and record["value"] == "exit 2", record
    assert "exited with code 2" in record["message"] and "ERROR_RATIO" in record["message"]

    noimage = final["noimage"]
    assert condition(noimage, "Paused")["reason"] == "AnalysisInconclusive", noimage
    record = noimage["measurements"][-1]
    assert record["verdict"] == "Inconclusive" and "ErrImageNeverPull" in record["message"]
    wait_for(
        "the image-error Job deleted",
        lambda: not jobs_of(rollouts, real_cluster, "noimage"),
        timeout=30,
    )

    restarted = final["restart"]
    assert condition(restarted, "Paused")["reason"] == "AnalysisInconclusive", restarted
    records = restarted["measurements"]
    assert [m["verdict"] for m in records] == ["Inconclusive"], records
    assert "deadline" in records[-1]["message"]
    assert len(jobs_of(rollouts, real_cluster, "restart")) == 1, (
        "a restarted operator started a second Job"
    )
