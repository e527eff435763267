"""``kubectl ramp plan``: golden tests of the offline preview.

Each case is a manifest under ``golden/plan/`` and the exact output expected from
``kubectl ramp plan -f <manifest> [args]`` beside it. After an intended change of the
output, regenerate the goldens with ``RAMP_UPDATE_GOLDEN=1 pytest tests/unit/test_cli_plan.py``
and review the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from ramp.cli import main
from ramp.cli.preview import format_seconds, load_documents, plan_rollout
from ramp.core.split import split_replicas

GOLDEN = Path(__file__).parent / "golden" / "plan"
UPDATE = bool(os.environ.get("RAMP_UPDATE_GOLDEN"))

CASES = [
    # (golden output, manifest, extra arguments)
    ("canary-10.txt", "canary-10.yaml", []),
    ("canary-10--replicas-1.txt", "canary-10.yaml", ["--replicas", "1"]),
    ("canary-10--replicas-7.txt", "canary-10.yaml", ["--replicas", "7"]),
    ("unrepresentable-3.txt", "unrepresentable-3.yaml", []),
    ("unrepresentable-3.json", "unrepresentable-3.yaml", ["-o", "json"]),
    ("analysis.txt", "analysis.yaml", []),
    ("no-steps.txt", "no-steps.yaml", []),
    ("bluegreen.txt", "bluegreen.yaml", []),
    ("bluegreen--replicas-1.json", "bluegreen.yaml", ["--replicas", "1", "-o", "json"]),
    ("bluegreen-manual.txt", "bluegreen-manual.yaml", []),
    ("bluegreen-routes.txt", "bluegreen-routes.yaml", []),
    ("bluegreen-routes.json", "bluegreen-routes.yaml", ["-o", "json"]),
]


@pytest.fixture(autouse=True)
def fixed_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain output is 120 columns wide unless COLUMNS says otherwise: pin it."""
    monkeypatch.setenv("COLUMNS", "120")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(("golden", "manifest", "extra"), CASES, ids=[c[0] for c in CASES])
def test_plan_matches_golden(
    capsys: pytest.CaptureFixture[str], golden: str, manifest: str, extra: list[str]
) -> None:
    code, out, err = run(capsys, "plan", "--no-color", "-f", str(GOLDEN / manifest), *extra)
    assert code == 0, err
    path = GOLDEN / golden
    if UPDATE:
        path.write_text(out)
    assert out == path.read_text(), f"output differs from {path} (RAMP_UPDATE_GOLDEN=1 to update)"


def test_unrepresentable_weights_are_warned_with_the_actual_weight(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "plan", "-f", str(GOLDEN / "unrepresentable-3.yaml"), "-o", "json")
    assert code == 0
    data = json.loads(out)
    assert data["warnings"] == [
        "step 1: setWeight 10 with 3 replicas is 1 canary / 2 stable: actual weight 33%",
        "step 3: setWeight 50 with 3 replicas is 2 canary / 1 stable: actual weight 67%",
    ]
    assert [s["representable"] for s in data["steps"]] == [False] * 4 + [True, True]
    assert data["waitsForPromote"] == [4]
    assert data["leastSeconds"] == 30


def test_analysis_time_comes_from_the_templates_in_the_file(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = run(capsys, "plan", "-f", str(GOLDEN / "analysis.yaml"), "-o", "yaml")
    assert code == 0
    assert "leastSeconds: 110.0" in out  # 30s + 2 x 10s (error-rate) + 1 x 1m (latency)
    assert "unknown:\n- 5" in out  # the saturation template is not in the file


def test_the_table_is_the_operators_arithmetic() -> None:
    """Every row is split_replicas of the step's weight: no second copy of the math."""
    docs = yaml.safe_load_all((GOLDEN / "canary-10.yaml").read_text())
    rollouts, _ = load_documents(docs)
    for replicas in range(0, 23):
        plan = plan_rollout(rollouts[0], replicas=replicas)
        for row in plan.steps:
            split = split_replicas(replicas, row.weight)
            assert (row.canary, row.stable, row.actual_weight) == (
                split.canary,
                split.stable,
                split.actual_weight,
            )


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        ("invalid.yaml", "document 1 (Rollout bad) is not valid"),
        ("missing.yaml", "cannot read"),
    ],
    ids=["invalid-rollout", "missing-file"],
)
def test_bad_input_is_an_error_with_a_reason(
    capsys: pytest.CaptureFixture[str], manifest: str, message: str
) -> None:
    code, out, err = run(capsys, "plan", "-f", str(GOLDEN / manifest))
    assert code == 1
    assert message in err
    assert out == ""


def test_a_file_without_a_rollout_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    code, _, err = run(capsys, "plan", "-f", str(path))
    assert code == 1 and "holds no Rollout" in err


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (0.25, "250ms"), (59, "59s"), (60, "1m"), (90, "1m30s"), (7260, "2h1m")],
)
def test_format_seconds(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text
