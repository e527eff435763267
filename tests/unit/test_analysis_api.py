"""The analysis API models, and their CRD rules checked against the same cases.

Each case is validated twice: by the pydantic model (what the operator does) and by the
model's ``x-kubernetes-validations`` rules evaluated with a CEL engine over the camelCase
object (what the API server does). Both must agree, so the CRD does not drift from the
operator's own checks.
"""

from __future__ import annotations

from typing import Any

import cel
import pytest
from pydantic import BaseModel, ValidationError

from ramp.api.analysis import (
    AnalysisRef,
    AnalysisTemplateSpec,
    BackgroundAnalysis,
    Measurement,
    Metric,
    MetricResult,
    OnLimit,
    Verdict,
    parse_duration_seconds,
)

PROM = {"address": "http://prometheus.monitoring:9090", "query": "up"}
COMPARE = {
    "prometheus": {**PROM, "countQuery": "up"},
    "maxIncrease": 0.01,
    "minCount": 100,
}


def _metric(**fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "m", "successCondition": "result < 0.01", "prometheus": PROM}
    spec.update(fields)
    return {k: v for k, v in spec.items() if v is not None}


def _cel_rules(model: type[BaseModel]) -> list[dict[str, str]]:
    schema = model.model_json_schema(by_alias=True)
    rules: list[dict[str, str]] = schema.get("x-kubernetes-validations", [])
    return rules


def _cel_accepts(model: type[BaseModel], obj: dict[str, Any]) -> list[str]:
    """Messages of the model's top-level CEL rules that ``obj`` violates."""
    return [
        rule["message"]
        for rule in _cel_rules(model)
        if not cel.evaluate(rule["rule"], {"self": obj})
    ]


# (id, object, valid, words of the error)
METRICS = [
    ("threshold", _metric(), True, []),
    (
        "failure-condition-only",
        _metric(successCondition=None, failureCondition="result > 0.1"),
        True,
        [],
    ),
    ("compare", _metric(successCondition=None, prometheus=None, compare=COMPARE), True, []),
    (
        "neither-source",
        _metric(prometheus=None),
        False,
        ["exactly one of prometheus, compare, web, job or webhook"],
    ),
    ("both-sources", _metric(successCondition=None, compare=COMPARE), False, ["exactly one"]),
    (
        "no-condition",
        _metric(successCondition=None),
        False,
        ["successCondition or a failureCondition"],
    ),
    (
        "compare-with-condition",
        _metric(prometheus=None, compare=COMPARE),
        False,
        ["not by conditions"],
    ),
    ("interval-too-short", _metric(interval="500ms"), False, ["at least 1s"]),
    ("interval-composite", _metric(interval="1m30s"), True, []),
]


@pytest.mark.parametrize(
    ("obj", "valid", "words"),
    [case[1:] for case in METRICS],
    ids=[case[0] for case in METRICS],
)
def test_metric_rules_agree_with_crd(obj: dict[str, Any], valid: bool, words: list[str]) -> None:
    cel_errors = _cel_accepts(Metric, obj)
    if valid:
        Metric.model_validate(obj)
        assert cel_errors == []
    else:
        with pytest.raises(ValidationError) as caught:
            Metric.model_validate(obj)
        assert cel_errors, "the CRD rules accept what the model refuses"
        for word in words:
            assert word in str(caught.value)
            assert any(word in message for message in cel_errors)


@pytest.mark.parametrize(
    ("fields", "word"),
    [
        ({"interval": "10"}, "pattern"),
        ({"interval": "10 s"}, "pattern"),
        ({"initialDelay": "1d"}, "pattern"),
        ({"count": 0}, "greater than or equal to 1"),
        ({"failureLimit": -1}, "greater than or equal to 0"),
        ({"name": "Has Space"}, "pattern"),
        ({"onError": "Retry"}, "Pause"),
        ({"prometheus": {**PROM, "address": "http://user:pw@prom:9090"}}, "pattern"),
        ({"prometheus": {**PROM, "address": "file:///etc/passwd"}}, "pattern"),
        ({"prometheus": {**PROM, "address": "http://prom:9090?x=1"}}, "pattern"),
        ({"prometheus": {**PROM, "query": "x" * 5000}}, "at most 4096"),
        ({"successCondition": "x" * 2000}, "at most 1024"),
        ({"unknownField": 1}, "Extra inputs"),
    ],
    ids=[
        "duration-no-unit",
        "duration-space",
        "duration-days",
        "count-zero",
        "negative-limit",
        "bad-name",
        "bad-policy",
        "credentials-in-url",
        "not-http",
        "query-in-url",
        "query-too-long",
        "condition-too-long",
        "unknown-field",
    ],
)
def test_metric_schema_bounds(fields: dict[str, Any], word: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Metric.model_validate(_metric(**fields))
    assert word in str(caught.value)


def test_metric_defaults_and_helpers() -> None:
    m = Metric.model_validate(_metric())
    assert (m.interval, m.count, m.failure_limit, m.inconclusive_limit) == ("10s", 1, 0, 0)
    assert m.consecutive_error_limit == 4
    assert m.on_inconclusive is OnLimit.PAUSE and m.on_error is OnLimit.PAUSE
    assert (m.interval_seconds, m.initial_delay_seconds, m.timeout_seconds) == (10.0, 0.0, 10.0)
    assert m.kind == "prometheus" and m.source is m.prometheus
    c = Metric.model_validate(_metric(successCondition=None, prometheus=None, compare=COMPARE))
    assert c.kind == "compare" and c.source is c.compare and c.timeout_seconds == 10.0
    assert m.to_k8s()["successCondition"] == "result < 0.01"


ARGS = [{"name": "service", "value": "checkout"}]
REFS = [
    ("template", {"templates": [{"templateName": "error-rate"}]}, True),
    ("inline", {"metrics": [_metric()]}, True),
    ("both", {"templates": [{"templateName": "t"}], "metrics": [_metric()], "args": ARGS}, True),
    ("nothing", {}, False),
    ("empty-lists", {"templates": [], "metrics": []}, False),
    ("duplicate-metrics", {"metrics": [_metric(), _metric()]}, False),
    ("duplicate-args", {"templates": [{"templateName": "t"}], "args": ARGS + ARGS}, False),
]


@pytest.mark.parametrize(
    ("model", "obj", "valid"),
    [(model, *case[1:]) for model in (AnalysisRef, BackgroundAnalysis) for case in REFS],
    ids=[
        f"{model.__name__}-{case[0]}"
        for model in (AnalysisRef, BackgroundAnalysis)
        for case in REFS
    ],
)
def test_analysis_ref_rules_agree_with_crd(
    model: type[BaseModel], obj: dict[str, Any], valid: bool
) -> None:
    cel_errors = _cel_accepts(model, obj)
    if valid:
        model.model_validate(obj)
        assert cel_errors == []
    else:
        with pytest.raises(ValidationError):
            model.model_validate(obj)
        assert cel_errors


def test_background_analysis_starting_step() -> None:
    bg = BackgroundAnalysis.model_validate(
        {"templates": [{"templateName": "t"}], "startingStep": 2}
    )
    assert bg.starting_step == 2


@pytest.mark.parametrize(
    ("obj", "valid"),
    [
        ({"args": [{"name": "service"}], "metrics": [_metric()]}, True),
        ({"metrics": []}, False),
        ({"args": [{"name": "bad-name"}], "metrics": [_metric()]}, False),
        ({"metrics": [_metric(), _metric()]}, False),
    ],
    ids=["ok", "no-metrics", "arg-name-not-identifier", "duplicate-metrics"],
)
def test_template_spec(obj: dict[str, Any], valid: bool) -> None:
    if valid:
        AnalysisTemplateSpec.model_validate(obj)
    else:
        with pytest.raises(ValidationError):
            AnalysisTemplateSpec.model_validate(obj)


def test_status_records_are_truncated_to_their_schema_bounds() -> None:
    m = Measurement(
        metric="m",
        verdict=Verdict.PASS,
        time="2024-05-01T12:00:00Z",
        value="9" * 1000,
        query="q" * 5000,
        message="x" * 5000,
    )
    assert m.value is not None and len(m.value) == 256 and m.value.endswith("…")
    assert m.query is not None and len(m.query) == 1024
    assert m.message is not None and len(m.message) == 1024
    r = MetricResult(name="m", last_value="9" * 1000, message="x" * 5000)
    assert len(r.last_value or "") == 256 and len(r.message or "") == 1024
    dumped = m.to_k8s()
    assert dumped["verdict"] == "Pass" and "revision" not in dumped


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("10s", 10.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("1.5m", 90.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "10", "1d", "s", "-1s", "1s2"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration_seconds(text)


def test_status_strings_are_optional_and_cut_to_their_bounds() -> None:
    from ramp.api.analysis import MAX_STATUS_MESSAGE, Measurement, MetricResult

    empty = Measurement(metric="m", verdict="Error", time="2026-01-01T00:00:00Z")
    assert empty.value is None and empty.query is None and empty.message is None
    long = Measurement(metric="m", verdict="Error", time="t", message="x" * 5000)
    assert long.message is not None and len(long.message) == MAX_STATUS_MESSAGE
    assert MetricResult(name="m", last_value=None).last_value is None
