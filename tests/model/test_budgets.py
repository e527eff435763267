"""The model machines' CI budgets are what issue 19 asks for (acceptance): the canary
machine at least 2,000 examples and the blue-green machine at least 500, derandomized
(the same examples on every run, so that CI is reproducible), with the vocabulary of
every class (here: two controllers during a shard change), and no example database.

``RAMP_MODEL_EXAMPLES`` / ``RAMP_MODEL_BG_EXAMPLES`` may lower them for a quick local run,
never in CI (``make test`` sets neither); ``make fuzz`` (``RAMP_FUZZ=1``) runs more, at
random. Measured times are in docs/safety.md ("Shards and CI").
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

import model.test_model_based as canary
import model.test_model_bluegreen as bluegreen
from model.sim_shards import ShardChangeRules

CANARY_EXAMPLES = 2000
BLUE_GREEN_EXAMPLES = 500


@pytest.mark.skipif(
    bool(os.environ.get("RAMP_MODEL_EXAMPLES") or os.environ.get("RAMP_MODEL_BG_EXAMPLES")),
    reason="a budget set by hand (RAMP_MODEL_EXAMPLES / RAMP_MODEL_BG_EXAMPLES)",
)
@pytest.mark.skipif(bool(os.environ.get("RAMP_FUZZ")), reason="make fuzz: random, longer")
def test_the_ci_budgets_are_the_issues() -> None:
    ci, bg = settings.get_profile("ci"), settings.get_profile("bg-ci")
    assert ci.max_examples >= CANARY_EXAMPLES, ci.max_examples
    assert bg.max_examples >= BLUE_GREEN_EXAMPLES, bg.max_examples
    for profile in (ci, bg):
        assert profile.derandomize and profile.database is None
    assert canary.TestRollout.settings.max_examples == ci.max_examples
    assert bluegreen.TestBlueGreen.settings.max_examples == bg.max_examples


def test_both_machines_speak_of_shard_changes() -> None:
    for machine in (canary.RolloutMachine, bluegreen.BlueGreenMachine):
        assert issubclass(machine, ShardChangeRules), machine
