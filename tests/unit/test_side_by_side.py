"""``bench/compare_argo.py --with-ramp`` (issue 26): Ramp and Argo run in alternating order
in one invocation (both orders), and the ratios come out of the runs' figures."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import compare_argo
import rollouts


def figures(
    wall: float, cpu: float, reconciles: float, rss: float, busy: tuple[float, float]
) -> dict[str, Any]:
    return {
        "deployment_busy": busy[0],
        "replicaset_busy": busy[1],
        "controller": "argo v1.9.1",
        "wall": wall,
        "cpu": cpu,
        "reconciles_per_step": reconciles,
        "writes_per_step": 4.0,
        "writes_per_step_settled": 7.5,
        "peak_rss": rss,
        "cluster_writes_per_step": 20.0,
    }


def test_rounds_alternate_the_order_and_print_the_ratios(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    runs: list[str] = []

    def one_run(which: str, args: argparse.Namespace, workdir: Path, n: int) -> dict[str, Any]:
        runs.append(which)
        if which == "ramp":
            return figures(90.0 + n, 30.0, 3.5, 120.0, (4.9, 4.8))
        return figures(100.0, 40.0, 3.6, 150.0, (0.0, 4.0))

    monkeypatch.setattr(compare_argo, "one_run", one_run)
    args = argparse.Namespace(
        count=200,
        rounds=3,
        qps=1000.0,
        burst=2000,
        max_unavailable=None,
        controller_workers=None,
        ramp_arg=None,
    )
    assert compare_argo.side_by_side(args) == 0
    assert runs == ["ramp", "argo", "argo", "ramp", "ramp", "argo"]
    out = capsys.readouterr().out
    assert "rounds: Ramp then Argo, Argo then Ramp, Ramp then Argo" in out
    assert "| wall to all Healthy (s) | 91.0 / 100.0 | 94.0 / 100.0 | 95.0 / 100.0 |" in out
    assert "**0.91 / 0.94 / 0.95**" in out  # Ramp ÷ Argo, round by round
    assert "| operator CPU (s) | 30.0 / 40.0" in out and "**0.75 / 0.75 / 0.75**" in out
    assert "| peak RSS (MB) | 120 / 150" in out and "**0.80 / 0.80 / 0.80**" in out
    assert "Argo's writes per step once settled: 7.50 / 7.50 / 7.50" in out
    assert "maxUnavailable: each its own default (Ramp 0, Argo 25%)" in out
    assert "controller manager: 5 Deployment and 5 ReplicaSet workers (its default)" in out
    # the controller manager's workers: Argo has no Deployment controller work (no ratio)
    assert "| Deployment controller busy (workers of 5) | 4.9 / 0.0 |" in out
    assert "**- / - / -**" in out
    assert "| ReplicaSet controller busy (workers of 5) | 4.8 / 4.0 |" in out
    assert "**1.20 / 1.20 / 1.20**" in out


def test_both_controllers_get_the_same_max_unavailable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    argvs: list[list[str]] = []

    def run(argv: list[str], **_: Any) -> Any:
        argvs.append(argv)
        Path(argv[argv.index("--json") + 1]).write_text('{"wall": 1.0}')
        return argparse.Namespace(returncode=0)

    monkeypatch.setattr(compare_argo.subprocess, "run", run)
    args = argparse.Namespace(
        count=10,
        timeout=60.0,
        max_unavailable="25%",
        controller="argo",
        crds="crds",
        loglevel="info",
        qps=None,
        burst=None,
        controller_workers=20,
        ramp_arg=["--children=replicasets"],
    )
    compare_argo.one_run("ramp", args, tmp_path, 1)
    compare_argo.one_run("argo", args, tmp_path, 2)
    assert [a[a.index("--max-unavailable") + 1] for a in argvs] == ["25%", "25%"]
    # the same controller manager under both: each run's cluster gets the same workers
    assert [a[a.index("--controller-workers") + 1] for a in argvs] == ["20", "20"]
    # Ramp's operator arguments go to Ramp's run only
    assert [a for a in argvs[0] if a.startswith("--operator-arg")] == [
        "--operator-arg=--children=replicasets"
    ]
    assert not [a for a in argvs[1] if a.startswith("--operator-arg")]
    manifest = compare_argo.argo_rollout("r0", "25%")
    assert manifest["spec"]["strategy"]["canary"]["maxUnavailable"] == "25%"
    assert rollouts.canary_options("1") == {"maxUnavailable": 1}
    assert rollouts.canary_options(None) == {}


METRICS = """\
# HELP workqueue_adds_total [ALPHA] Total number of adds handled by workqueue
workqueue_adds_total{name="deployment"} 7553
workqueue_adds_total{name="replicaset"} 7115
workqueue_adds_total{name="endpoint"} 12
workqueue_queue_duration_seconds_bucket{name="deployment",le="0.001"} 1
workqueue_queue_duration_seconds_sum{name="deployment"} 15821.3
workqueue_queue_duration_seconds_sum{name="replicaset"} 5843.4
workqueue_work_duration_seconds_sum{name="deployment"} 360.8
workqueue_work_duration_seconds_sum{name="replicaset"} 362.9
"""


def test_the_controller_managers_queues_over_a_phase(capsys: pytest.CaptureFixture[str]) -> None:
    after = rollouts.parse_kcm_queues(METRICS)
    assert after == {
        "deployment adds_total": 7553.0,
        "replicaset adds_total": 7115.0,
        "deployment queue_duration_seconds_sum": 15821.3,
        "replicaset queue_duration_seconds_sum": 5843.4,
        "deployment work_duration_seconds_sum": 360.8,
        "replicaset work_duration_seconds_sum": 362.9,
    }
    before = {
        "deployment adds_total": 553.0,
        "deployment queue_duration_seconds_sum": 1821.3,
        "deployment work_duration_seconds_sum": 10.8,
    }
    busy = rollouts.print_kcm_queues(before, after, steps=1000, wall=70.0)
    assert busy == pytest.approx({"deployment_busy": 5.0, "replicaset_busy": 362.9 / 70})
    out = capsys.readouterr().out
    # 7000 syncs in 1000 steps, 14000 s waited and 350 s worked over them
    assert " 5.0,  7.00,  2000 /  50 ms" in out
    assert rollouts.print_kcm_queues({}, {}, steps=1000, wall=70.0) == {}


def test_the_controller_managers_workers_are_sized_for_both_and_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """``--controller-workers N`` reaches the controller manager's command line (both of
    its flags), and the side by side says which controller manager the figures are from."""
    from cluster.launcher import Cluster

    sized = Cluster(tmp_path / "a", controller_workers=20)._args("kube-controller-manager")
    assert "--concurrent-deployment-syncs=20" in sized
    assert "--concurrent-replicaset-syncs=20" in sized
    default = Cluster(tmp_path / "b")._args("kube-controller-manager")
    assert not [a for a in default if a.startswith("--concurrent-")]

    def one_run(which: str, args: argparse.Namespace, workdir: Path, n: int) -> dict[str, Any]:
        return figures(80.0 if which == "ramp" else 100.0, 30.0, 3.5, 120.0, (19.0, 18.0))

    monkeypatch.setattr(compare_argo, "one_run", one_run)
    args = argparse.Namespace(
        count=200,
        rounds=2,
        qps=1000.0,
        burst=2000,
        max_unavailable=None,
        controller_workers=20,
        ramp_arg=None,
    )
    assert compare_argo.side_by_side(args) == 0
    out = capsys.readouterr().out
    assert (
        "controller manager: 20 Deployment and 20 ReplicaSet workers (--controller-workers)" in out
    )
    assert "| Deployment controller busy (workers of 20) | 19.0 / 19.0 |" in out
    assert "**0.80 / 0.80**" in out
