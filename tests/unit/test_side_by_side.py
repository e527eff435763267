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


def figures(wall: float, cpu: float, reconciles: float, rss: float) -> dict[str, Any]:
    return {
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
            return figures(90.0 + n, 30.0, 3.5, 120.0)
        return figures(100.0, 40.0, 3.6, 150.0)

    monkeypatch.setattr(compare_argo, "one_run", one_run)
    args = argparse.Namespace(count=200, rounds=3, qps=1000.0, burst=2000)
    assert compare_argo.side_by_side(args) == 0
    assert runs == ["ramp", "argo", "argo", "ramp", "ramp", "argo"]
    out = capsys.readouterr().out
    assert "rounds: Ramp then Argo, Argo then Ramp, Ramp then Argo" in out
    assert "| wall to all Healthy (s) | 91.0 / 100.0 | 94.0 / 100.0 | 95.0 / 100.0 |" in out
    assert "**0.91 / 0.94 / 0.95**" in out  # Ramp ÷ Argo, round by round
    assert "| operator CPU (s) | 30.0 / 40.0" in out and "**0.75 / 0.75 / 0.75**" in out
    assert "| peak RSS (MB) | 120 / 150" in out and "**0.80 / 0.80 / 0.80**" in out
    assert "Argo's writes per step once settled: 7.50 / 7.50 / 7.50" in out
