"""Resolving analysis references into metrics and arguments; checking metrics up front."""

from __future__ import annotations

from typing import Any

import pytest

from ramp.analysis.prometheus import ProviderConfig
from ramp.analysis.promql import QueryContext
from ramp.analysis.run import check_metrics
from ramp.api.analysis import AnalysisRef, AnalysisTemplateSpec, Metric
from ramp.core.resolve import AnalysisSpecError, resolve_analysis

PROM = "http://prom:9090"


def metric(name: str, query: str = "up", **fields: Any) -> dict[str, Any]:
    """A metric object (camelCase)."""
    spec: dict[str, Any] = {
        "name": name,
        "successCondition": "result < 0.01",
        "prometheus": {"address": PROM, "query": query},
    }
    spec.update(fields)
    return spec


TEMPLATES = {
    "error-rate": AnalysisTemplateSpec.model_validate(
        {"args": [{"name": "service"}], "metrics": [metric("errors")]}
    ),
    "latency": AnalysisTemplateSpec.model_validate(
        {"args": [{"name": "quantile", "value": "0.99"}], "metrics": [metric("p99")]}
    ),
    "latency-95": AnalysisTemplateSpec.model_validate(
        {"args": [{"name": "quantile", "value": "0.95"}], "metrics": [metric("p95")]}
    ),
    "errors-again": AnalysisTemplateSpec.model_validate({"metrics": [metric("errors")]}),
}

# (id, ref, metric names, args)
RESOLVED = [
    (
        "template-with-arg",
        {
            "templates": [{"templateName": "error-rate"}],
            "args": [{"name": "service", "value": "web"}],
        },
        ["errors"],
        {"service": "web"},
    ),
    ("default-arg", {"templates": [{"templateName": "latency"}]}, ["p99"], {"quantile": "0.99"}),
    (
        "ref-overrides-default",
        {
            "templates": [{"templateName": "latency"}],
            "args": [{"name": "quantile", "value": "0.5"}],
        },
        ["p99"],
        {"quantile": "0.5"},
    ),
    (
        "ref-settles-conflicting-defaults",
        {
            "templates": [{"templateName": "latency"}, {"templateName": "latency-95"}],
            "args": [{"name": "quantile", "value": "0.9"}],
        },
        ["p99", "p95"],
        {"quantile": "0.9"},
    ),
    (
        "templates-then-inline",
        {
            "templates": [{"templateName": "latency"}],
            "metrics": [metric("inline")],
            "args": [{"name": "extra", "value": "x"}],
        },
        ["p99", "inline"],
        {"quantile": "0.99", "extra": "x"},
    ),
]


@pytest.mark.parametrize(
    ("ref", "names", "args"),
    [case[1:] for case in RESOLVED],
    ids=[case[0] for case in RESOLVED],
)
def test_resolve(ref: dict[str, Any], names: list[str], args: dict[str, str]) -> None:
    resolved = resolve_analysis(AnalysisRef.model_validate(ref), TEMPLATES)
    assert [m.name for m in resolved.metrics] == names
    assert dict(resolved.args) == args


REFUSED = [
    ("missing-template", {"templates": [{"templateName": "nope"}]}, "'nope' not found"),
    ("arg-without-value", {"templates": [{"templateName": "error-rate"}]}, "'service'"),
    (
        "conflicting-defaults",
        {"templates": [{"templateName": "latency"}, {"templateName": "latency-95"}]},
        "different defaults",
    ),
    (
        "same-metric-in-two-templates",
        {
            "templates": [{"templateName": "error-rate"}, {"templateName": "errors-again"}],
            "args": [{"name": "service", "value": "web"}],
        },
        "'errors' is defined twice",
    ),
    (
        "inline-clashes-with-template",
        {"templates": [{"templateName": "latency"}], "metrics": [metric("p99")]},
        "inline",
    ),
]


@pytest.mark.parametrize(
    ("ref", "words"),
    [case[1:] for case in REFUSED],
    ids=[case[0] for case in REFUSED],
)
def test_resolve_refuses(ref: dict[str, Any], words: str) -> None:
    with pytest.raises(AnalysisSpecError, match=words):
        resolve_analysis(AnalysisRef.model_validate(ref), TEMPLATES)


CTX = QueryContext(
    rollout="r", namespace="n", canary_revision="c", stable_revision="s", args={"svc": "web"}
)
CONFIG = ProviderConfig(allowed_addresses=(PROM,))

CHECKS = [
    ("fine", metric("m", 'x{s="{{args.svc}}"}'), []),
    (
        "bad-condition",
        metric("m", successCondition="result <"),
        ["successCondition", "not valid CEL"],
    ),
    (
        "unknown-variable",
        metric("m", failureCondition="rate > 1"),
        ["failureCondition", "`result`"],
    ),
    ("unknown-placeholder", metric("m", 'x{s="{{args.nope}}"}'), ["{{args.nope}}"]),
    (
        "address-not-allowed",
        metric("m", prometheus={"address": "http://evil:9090", "query": "up"}),
        ["not available"],
    ),
    (
        "compare-fine",
        {
            "name": "m",
            "compare": {
                "prometheus": {
                    "address": PROM,
                    "query": 'x{r="{{revision}}"}',
                    "countQuery": 'y{r="{{revision}}"}',
                },
                "maxIncrease": 0.01,
            },
        },
        [],
    ),
    (
        "compare-bad-count-query",
        {
            "name": "m",
            "compare": {
                "prometheus": {"address": PROM, "query": "x", "countQuery": 'y{r="{{rev}}"}'},
                "maxIncrease": 0.01,
            },
        },
        ["{{rev}}"],
    ),
]


@pytest.mark.parametrize(
    ("spec", "words"),
    [case[1:] for case in CHECKS],
    ids=[case[0] for case in CHECKS],
)
def test_check_metrics(spec: dict[str, Any], words: list[str]) -> None:
    problems = check_metrics([Metric.model_validate(spec)], CTX, CONFIG)
    if not words:
        assert problems == []
    else:
        assert len(problems) == 1 and problems[0].startswith("metric m:")
        for word in words:
            assert word in problems[0]
