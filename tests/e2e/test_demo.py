"""``make demo`` in its non-interactive mode, start to finish, as CI runs it.

The demo starts its own cluster (in a temporary folder), Prometheus with the demo
exporter and the operator; it rolls out a good v2 and a bad v3 and prints a summary.
The Makefile's prerequisites (venv, cluster-build, prometheus-install) are taken as done
(``make -o``): ``make test`` has just run them; what is tested here is the recipe and the
script it runs.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from cluster.launcher import Cluster

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.cluster, pytest.mark.prometheus, pytest.mark.timeout(420)]


def make_demo(cluster_dir: Path, *variables: str, timeout: float = 400) -> str:
    """``make demo`` in plain mode (its prerequisites taken as done); its output, once it
    exited 0."""
    make = shutil.which("make")
    assert make, "make is needed for `make demo`"
    started = time.monotonic()
    done = ["venv", "cluster-build", "prometheus-install", "node-build", "gateway-build"]
    proc = subprocess.run(
        [
            make,
            "--no-print-directory",
            *[arg for target in done for arg in ("-o", target)],
            "demo",
            *variables,
            f"DEMO_ARGS=--plain --dir {cluster_dir}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    elapsed = time.monotonic() - started
    out = proc.stdout
    said = " ".join(variables)
    print(f"\nmake demo {said} took {elapsed:.0f}s\n{out[-3000:]}\n{proc.stderr[-3000:]}")
    assert proc.returncode == 0, proc.stderr
    return out


def test_make_demo_plain_shows_v2_healthy_and_v3_aborted_with_the_metric_value(
    tmp_path: Path,
) -> None:
    cluster_dir = tmp_path / "demo-cluster"
    out = make_demo(cluster_dir)

    summary = out[out.index("\nSummary") :]
    v2 = next(line for line in summary.splitlines() if line.strip().startswith("v2 "))
    v3 = next(line for line in summary.splitlines() if line.strip().startswith("v3 "))
    assert ": Healthy - promoted to stable" in v2, v2
    assert "error-ratio:" in v2 and "Pass" in v2, v2
    # v3 is aborted by the error-rate gate, and the summary names the value that did it.
    match = re.search(r": Aborted after \d+s - error-ratio = ([0-9.]+) \(Fail", v3)
    assert match, v3
    assert float(match.group(1)) == pytest.approx(0.25, abs=0.01)
    assert "failureCondition `result >= 0.05`" in v3

    # The traffic follows the split: with v3 (25 % errors) on 2 of 10 pods and v2 (0.4 %)
    # on 8, the Service's clients saw 0.2 * 25 % + 0.8 * 0.4 % = 5.3 % errors overall.
    overall = next(line for line in summary.splitlines() if "v3 at weight 20" in line)
    match = re.search(r"saw ([0-9.]+)% errors overall \(the split's own: ([0-9.]+)%\)", overall)
    assert match, overall
    assert float(match.group(2)) == pytest.approx(5.3, abs=0.05)
    assert float(match.group(1)) == pytest.approx(5.3, abs=0.8), overall
    # The dashboard was there to look at while it ran.
    assert re.search(r"dashboard: http://127\.0\.0\.1:\d+/\?token=", out), out[:2000]

    # Progress lines along the way, not only the end.
    assert "v2 Progressing step 3/6" in out and "v3 Aborted" in out
    # Everything the demo started is stopped: no cluster process, no operator left.
    assert not Cluster(cluster_dir).alive()
    assert not (cluster_dir / "demo.json").exists()
    assert "stopped the cluster, the operator and Prometheus" in out


@pytest.mark.realnode
def test_make_demo_gateway_rolls_the_canary_through_a_route_with_exact_weights(
    tmp_path: Path,
) -> None:
    """``make demo GATEWAY=1``: on the real node, through the real gateway, 3 replicas; the
    gateway's users got v2 at 5, 20 and 50 % exactly as the route said (300 requests
    each); v3 is aborted by the analysis of the gateway's own metrics; no request failed."""
    cluster_dir = tmp_path / "demo-cluster"
    out = make_demo(cluster_dir, "GATEWAY=1")
    summary = out[out.index("\nSummary") :]
    lines = summary.splitlines()
    v2 = next(line for line in lines if line.strip().startswith("v2 ("))
    v3 = next(line for line in lines if line.strip().startswith("v3 ("))
    assert ": Healthy - promoted to stable" in v2 and "gateway-error-ratio" in v2, v2
    match = re.search(r": Aborted after \d+s - gateway-error-ratio = ([0-9.]+) \(Fail", v3)
    assert match and float(match.group(1)) >= 0.05, v3
    shares = next(line for line in lines if line.strip().startswith("v2 through the gateway"))
    got = re.findall(r"(\d+)% -> ([0-9.]+)%", shares)
    assert [w for w, _ in got] == ["5", "20", "50"], shares
    assert all(abs(float(s) - float(w)) <= 1.5 for w, s in got), shares
    assert "v3 through the gateway" in summary and "0 failed (no answer)" in summary, summary
    assert "gateway: Traefik on 127.0.0.1:" in out
    assert not Cluster(cluster_dir).alive()
