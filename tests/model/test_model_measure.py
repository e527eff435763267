"""The model-based machine with slow and hanging measurements (issue 19, class 11).

:class:`RolloutMachine` (every rule of the canary machine: aborts, promotions, template
changes, a lying cluster) with one change: measurements go through the REAL shell
(:class:`ramp.shell.controller.gates.Gates`, see :mod:`model.measure_shell`) and take a
drawn latency in simulated time, or never finish. Besides the oracle's invariants (a)-(g),
every reconcile checks (h): it never waits on a measurement.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize

from model.measure_shell import RealGates
from model.sim import Config
from model.test_model_based import VERDICTS, RolloutMachine, configs
from ramp.api.analysis import Verdict

LATENCIES = st.sampled_from([0.0, 3.0, 7.0, 30.0, None])


class SlowMeasurementMachine(RolloutMachine):
    shell: RealGates | None = None

    @initialize(
        cfg=configs(),
        start_rollout=st.sampled_from([True, True, True, False]),
        verdict=VERDICTS,
        delay=st.sampled_from([2.0, 2.0, 15.0, None]),
        latency=LATENCIES,
    )
    def start(  # replaces the parent's initialize rule
        self,
        cfg: Config,
        start_rollout: bool,
        verdict: Verdict,
        delay: float | None,
        latency: float | None,
    ) -> None:
        self.shell = RealGates(latency)
        RolloutMachine.start(self, cfg, start_rollout, verdict, delay)
        self.cluster.shell_measure = self.shell  # type: ignore[attr-defined]

    def teardown(self) -> None:
        if self.shell is not None:
            self.shell.close()


SlowMeasurementMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("RAMP_MODEL_MEASURE_EXAMPLES", "60")),
    stateful_step_count=20,
    derandomize=not os.environ.get("RAMP_FUZZ"),
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
TestSlowMeasurements = SlowMeasurementMachine.TestCase
