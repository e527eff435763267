"""What the operator process imports before any Rollout has an analysis: the CEL evaluator
(about 12 MB resident) only comes with the first condition."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

OPERATOR = Path(__file__).resolve().parents[2] / "operator"


def loaded_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", f"import sys; {code}; print(' '.join(sys.modules))"],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(OPERATOR)},
    ).stdout
    return set(out.split())


def test_the_operator_starts_without_the_cel_evaluator() -> None:
    assert "cel" not in loaded_after(
        "import ramp.__main__, ramp.shell.handlers, ramp.shell.controller.controller"
    )


def test_the_first_condition_brings_it() -> None:
    code = "from ramp.analysis.cel import check_condition; check_condition('result < 1.0')"
    assert "cel" in loaded_after(code)
