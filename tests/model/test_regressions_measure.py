"""Issue 19, class 11: measurements never hold a reconcile (named model examples).

The simulated cluster measures through the REAL shell
(:class:`ramp.shell.controller.gates.Gates`, see
:mod:`model.measure_shell`) with a Prometheus that answers late or never. On f61a406 the
reconcile awaited the measurement, so each of these fails there with violation (h).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from model.measure_shell import RealGates
from model.sim import Cluster, Config, metric, template
from model.test_regressions import drive, reasons, roll_to, steady, token
from ramp.api.labels import revision_hash

V1, V2 = (revision_hash(template(i)) for i in (1, 2))
STEPS = [{"setWeight": 50}, {"analysis": {"metrics": [metric("m")]}}, {"setWeight": 100}]


@pytest.fixture
def shells() -> Iterator[list[RealGates]]:
    made: list[RealGates] = []
    yield made
    for shell in made:
        shell.close()


def with_prometheus(c: Cluster, shells: list[RealGates], latency: float | None) -> RealGates:
    shell = RealGates(latency)
    shells.append(shell)
    c.shell_measure = shell  # type: ignore[attr-defined]
    return shell


def test_class11_a_hung_prometheus_holds_no_reconcile_and_abort_proceeds(
    shells: list[RealGates],
) -> None:
    c = steady(Config(replicas=2, steps=STEPS))
    shell = with_prometheus(c, shells, latency=None)  # never answers
    roll_to(c, 2)
    drive(c, 6)  # at the analysis step: its measurement hangs, reconciles go on
    assert shell.provider.calls >= 1
    assert c.status is not None and c.status["canaryRevision"] == V2
    token(c, "abort", "1")
    plans = drive(c, 1)
    assert "Aborted" in reasons(plans), reasons(plans)
    drive(c, 4)
    assert c.status["stableRevision"] == V1


def test_class11_a_slow_measurement_is_recorded_when_it_answers_and_the_rollout_completes(
    shells: list[RealGates],
) -> None:
    c = steady(Config(replicas=2, steps=STEPS))
    shell = with_prometheus(c, shells, latency=7.0)  # longer than a reconcile apart
    roll_to(c, 2)
    drive(c, 20)
    assert shell.provider.calls >= 2  # count 2: two measurements, each 7 s late
    assert c.status is not None and c.status["stableRevision"] == V2, c.status
    # Recorded by the real Measurer (metric-provider seam): the provider's outcome with
    # the metric's name, the canary revision and the run.
    recorded = c.status.get("measurements") or []
    assert recorded, c.status
    assert all(m["message"] == "m: simulated Pass" for m in recorded), recorded
    assert all((m["revision"], m["analysis"]) == (V2, "step-2") for m in recorded), recorded
