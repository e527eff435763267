"""The API of the check sources (web, job, webhook): the model and the CRD's CEL rules agree.

Each case is validated by the pydantic model (the operator) and by the ``Metric``'s
``x-kubernetes-validations`` evaluated with a CEL engine (the API server); the e2e test
tests/e2e/test_checks_api.py sends the same bad objects to a real API server.
"""

from __future__ import annotations

from typing import Any

import cel
import pytest
from pydantic import ValidationError

from ramp.api.analysis import Metric

WEB = {"url": "http://checks.test:8080/health", "jsonPath": "ok"}
JOB = {
    "activeDeadlineSeconds": 60,
    "template": {"spec": {"containers": [{"name": "smoke", "image": "localhost/smoke:1"}]}},
}
HOOK = {"url": "http://checks.test:8080/hook", "signingSecret": {"name": "hook", "key": "key"}}


def _metric(**fields: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": "m"}
    spec.update(fields)
    return {k: v for k, v in spec.items() if v is not None}


def _cel_errors(obj: dict[str, Any]) -> list[str]:
    rules = Metric.model_json_schema(by_alias=True).get("x-kubernetes-validations", [])
    return [r["message"] for r in rules if not cel.evaluate(r["rule"], {"self": obj})]


CASES = [
    ("web", _metric(web=WEB, successCondition="result == 1.0"), True, ""),
    ("job", _metric(job=JOB), True, ""),
    ("webhook", _metric(webhook=HOOK), True, ""),
    ("web-without-condition", _metric(web=WEB), False, "web metric needs a successCondition"),
    (
        "job-with-condition",
        _metric(job=JOB, successCondition="result > 0.0"),
        False,
        "gives its own verdict",
    ),
    (
        "webhook-with-condition",
        _metric(webhook=HOOK, failureCondition="result > 0.0"),
        False,
        "gives its own verdict",
    ),
    (
        "two-checks",
        _metric(web=WEB, job=JOB, successCondition="result > 0.0"),
        False,
        "exactly one",
    ),
    ("no-source", _metric(), False, "exactly one of prometheus, compare, web, job or webhook"),
]


@pytest.mark.parametrize(
    ("obj", "valid", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_check_metric_rules_agree_with_crd(obj: dict[str, Any], valid: bool, words: str) -> None:
    errors = _cel_errors(obj)
    if valid:
        Metric.model_validate(obj)
        assert errors == []
        return
    with pytest.raises(ValidationError) as caught:
        Metric.model_validate(obj)
    assert words in str(caught.value)
    assert any(words in message for message in errors), errors


BAD = [
    ("job-without-deadline", {"job": {"template": JOB["template"]}}, "activeDeadlineSeconds"),
    ("job-deadline-too-long", {"job": {**JOB, "activeDeadlineSeconds": 7200}}, "3600"),
    ("job-without-containers", {"job": {**JOB, "template": {"spec": {}}}}, "containers"),
    (
        "job-restarting",
        {
            "job": {
                **JOB,
                "template": {"spec": {**JOB["template"]["spec"], "restartPolicy": "Always"}},
            }
        },
        "restartPolicy must be Never",
    ),
    ("web-without-url", {"web": {"jsonPath": "ok"}, "successCondition": "result > 0.0"}, "url"),
    (
        "web-credentials",
        {"web": {**WEB, "url": "http://u:p@h/x"}, "successCondition": "result > 0.0"},
        "pattern",
    ),
    (
        "web-not-http",
        {"web": {**WEB, "url": "file:///etc/passwd"}, "successCondition": "result > 0.0"},
        "pattern",
    ),
    ("web-method", {"web": {**WEB, "method": "DELETE"}, "successCondition": "result > 0.0"}, "GET"),
    (
        "web-timeout",
        {"web": {**WEB, "timeout": "2m"}, "successCondition": "result > 0.0"},
        "timeout",
    ),
    (
        "header-both-values",
        {
            "web": {
                **WEB,
                "headers": [
                    {
                        "name": "A",
                        "value": "x",
                        "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}},
                    }
                ],
            },
            "successCondition": "result > 0.0",
        },
        "exactly one of value or valueFrom",
    ),
    ("webhook-without-secret", {"webhook": {"url": HOOK["url"]}}, "signingSecret"),
    ("unknown-provider", {"datadog": {"query": "x"}}, "Extra inputs"),
]


@pytest.mark.parametrize(("fields", "word"), [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_checks_refused_naming_the_field(fields: dict[str, Any], word: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Metric.model_validate(_metric(**fields))
    assert word in str(caught.value)


def test_crd_requires_the_job_deadline_and_the_web_url() -> None:
    from ramp.crdgen import crds

    schema = crds()["analysistemplates.ramp.dev.yaml"]
    job = _find(schema, "job")
    assert "activeDeadlineSeconds" in job["required"] and "template" in job["required"]
    assert "url" in _find(schema, "web")["required"]
    assert "signingSecret" in _find(schema, "webhook")["required"]


def _find(node: Any, key: str) -> dict[str, Any]:
    """The first schema under a property named ``key``."""
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict) and key in props:
            found: dict[str, Any] = props[key]
            return found
        for value in node.values():
            try:
                return _find(value, key)
            except KeyError:
                continue
    if isinstance(node, list):
        for value in node:
            try:
                return _find(value, key)
            except KeyError:
                continue
    raise KeyError(key)


@pytest.mark.parametrize("path", ["checks-bluegreen-smoke.yaml", "checks-canary-load.yaml"])
def test_the_check_examples_are_valid_rollouts(path: str) -> None:
    from pathlib import Path

    import yaml

    from ramp.api.rollout import Rollout

    root = Path(__file__).resolve().parents[2]
    rollout = Rollout.model_validate(yaml.safe_load((root / "examples" / path).read_text()))
    kinds = {
        m.kind
        for s in (rollout.spec.strategy.canary.steps if rollout.spec.strategy.canary else [])
        if s.analysis
        for m in s.analysis.metrics
    }
    bluegreen = rollout.spec.strategy.blue_green
    if bluegreen and bluegreen.pre_promotion_analysis:
        kinds |= {m.kind for m in bluegreen.pre_promotion_analysis.metrics}
    assert "job" in kinds, kinds
