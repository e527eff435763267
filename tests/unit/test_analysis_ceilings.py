"""Ceilings of the analysis API (issue 20, fair sharing): query timeout, interval,
metrics per analysis run; the same rules in the CRD (CEL) and in the operator."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from ramp.api.analysis import MAX_RUN_METRICS, AnalysisRef, AnalysisTemplateSpec, Metric
from ramp.core.resolve import AnalysisSpecError, resolve_analysis
from ramp.crdgen import crds


def metric(name: str = "m", **prometheus: Any) -> dict[str, Any]:
    return {
        "name": name,
        "prometheus": {"address": "http://p:9090", "query": "up", **prometheus},
        "successCondition": "result > 0",
    }


@pytest.mark.parametrize(
    ("timeout", "ok"),
    [("100ms", True), ("60s", True), ("61s", False), ("1h", False), ("50ms", False)],
)
def test_query_timeout_is_bounded(timeout: str, ok: bool) -> None:
    if ok:
        Metric.model_validate(metric(timeout=timeout))
    else:
        with pytest.raises(ValidationError, match="timeout must be between 100ms and 60s"):
            Metric.model_validate(metric(timeout=timeout))


def test_interval_and_initial_delay_are_bounded() -> None:
    with pytest.raises(ValidationError, match="interval must be at most 24h"):
        Metric.model_validate({**metric(), "interval": "25h"})
    with pytest.raises(ValidationError, match="initialDelay must be at most 24h"):
        Metric.model_validate({**metric(), "initialDelay": "99999999999h"})
    Metric.model_validate({**metric(), "initialDelay": "24h"})


def test_a_run_has_at_most_sixteen_metrics_once_resolved() -> None:
    spec = AnalysisTemplateSpec.model_validate({"metrics": [metric(f"t{i}") for i in range(10)]})
    ref = AnalysisRef.model_validate(
        {
            "templates": [{"templateName": "a"}],
            "metrics": [metric(f"i{i}") for i in range(MAX_RUN_METRICS - 10)],
        }
    )
    assert len(resolve_analysis(ref, {"a": spec}).metrics) == MAX_RUN_METRICS
    ref.metrics.append(Metric.model_validate(metric("one-more")))
    with pytest.raises(AnalysisSpecError, match="at most 16"):
        resolve_analysis(ref, {"a": spec})


def test_the_crd_carries_the_same_rules() -> None:
    text = str(crds())
    assert "duration(self.timeout) <= duration('60s')" in text
    assert "duration(self.interval) <= duration('86400s')" in text
