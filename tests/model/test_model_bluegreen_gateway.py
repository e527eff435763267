"""The blue-green machine of :mod:`model.test_model_bluegreen` (its lying cluster, chaos,
verbs and the oracle's (a)-(j)) with an HTTPRoute and a gateway that lags, reads a
generation in between, and whose weights a GitOps tool resets (:mod:`model.sim_gateway`):
besides the blue-green invariants, (r) a revision the gateway still sends requests to is
never scaled by the planner below the pods its share needs, and the user's fields of the
route stay.

CI runs a fixed, derandomized budget (``RAMP_MODEL_BG_GATEWAY_EXAMPLES``); ``make fuzz``
(``RAMP_FUZZ=1``) a long random one."""

from __future__ import annotations

import dataclasses
import os

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import initialize, rule

from model.sim import Config
from model.sim_gateway import GatewayCluster, routed_config
from model.test_model_bluegreen import DELAYS, VERDICTS, BlueGreenMachine, configs
from ramp.api.analysis import Verdict

FUZZ = bool(os.environ.get("RAMP_FUZZ"))
pytestmark = pytest.mark.timeout(0 if FUZZ else 1200)


class BlueGreenGatewayMachine(BlueGreenMachine):
    @initialize(
        cfg=configs(),
        start_release=st.sampled_from([True, True, True, False]),
        verdict=VERDICTS,
        delay=DELAYS,
    )
    def start(
        self, cfg: Config, start_release: bool, verdict: Verdict, delay: float | None
    ) -> None:
        assert cfg.blue_green is not None
        cfg = dataclasses.replace(cfg, blue_green=routed_config(cfg.blue_green))
        self.cluster = GatewayCluster(cfg)
        self.tokens = 0
        for _ in range(3):
            self.cluster.reconcile()
            self.cluster.advance(3, controller_acts=True)
        self.cluster.verdicts[self.cluster.revision(2)] = verdict
        self.cluster.ready_delay[self.cluster.revision(2)] = delay
        if start_release:
            self.set_template(2, False)

    @rule(lag=st.booleans())
    def gateway_lags(self, lag: bool) -> None:
        assert isinstance(self.cluster, GatewayCluster)
        self.cluster.gateway.lag = lag

    @rule()
    def gateway_reads_a_generation_in_between(self) -> None:
        assert isinstance(self.cluster, GatewayCluster)
        self.cluster.gateway.ack_between()

    @rule()
    def gitops_resets_the_weights(self) -> None:
        assert isinstance(self.cluster, GatewayCluster)
        self.cluster.gateway.gitops_reset()


BlueGreenGatewayMachine.TestCase.settings = settings(
    max_examples=int(os.environ.get("RAMP_MODEL_BG_GATEWAY_EXAMPLES", "5000" if FUZZ else "100")),
    stateful_step_count=60 if FUZZ else 40,
    derandomize=not FUZZ,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=list(HealthCheck),
)
TestBlueGreenGateway = BlueGreenGatewayMachine.TestCase
