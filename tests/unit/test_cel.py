"""Condition evaluation (acceptance 9) and missing data (acceptance 5): table-driven."""

from __future__ import annotations

import math

import pytest

from ramp.analysis.cel import (
    ConditionError,
    Result,
    check_condition,
    evaluate_condition,
    format_result,
    judge,
    missing_data,
)
from ramp.api.analysis import Verdict

NAN = math.nan
INF = math.inf

# (id, result, successCondition, failureCondition, verdict, words in the message)
JUDGE = [
    # success condition only: not met is a failure
    (
        "success-met",
        0.005,
        "result < 0.01",
        None,
        Verdict.PASS,
        ["0.005", "meets successCondition"],
    ),
    ("success-boundary-not-met", 0.01, "result < 0.01", None, Verdict.FAIL, ["does not meet"]),
    ("success-not-met", 0.2, "result < 0.01", None, Verdict.FAIL, ["0.2", "`result < 0.01`"]),
    ("success-inf-fails", INF, "result < 0.01", None, Verdict.FAIL, ["+Inf"]),
    ("int-literal-compares-with-double", 0.5, "result < 1", None, Verdict.PASS, []),
    # failure condition only: not met is a pass
    ("failure-met", 0.2, None, "result >= 0.05", Verdict.FAIL, ["meets failureCondition"]),
    ("failure-not-met", 0.01, None, "result >= 0.05", Verdict.PASS, ["does not meet failure"]),
    # both: failure wins, neither is inconclusive
    ("both-success", 0.005, "result < 0.01", "result >= 0.05", Verdict.PASS, []),
    ("both-failure", 0.2, "result < 0.01", "result >= 0.05", Verdict.FAIL, []),
    ("both-neither", 0.03, "result < 0.01", "result >= 0.05", Verdict.INCONCLUSIVE, ["neither"]),
    ("both-true-failure-wins", 0.2, "result > 0.0", "result > 0.05", Verdict.FAIL, []),
    # vectors of several samples
    (
        "vector-all-pass",
        [0.001, 0.002],
        "result.all(x, x < 0.01)",
        None,
        Verdict.PASS,
        ["[0.001, 0.002]"],
    ),
    ("vector-one-bad", [0.001, 0.2], "result.all(x, x < 0.01)", None, Verdict.FAIL, []),
    ("vector-size", [0.1, 0.2, 0.3], "size(result) == 3", None, Verdict.PASS, []),
    ("vector-index", [0.1, 0.2], "result[1] > result[0]", None, Verdict.PASS, []),
    # acceptance 5: missing data is Inconclusive, whatever the conditions say
    ("nan", NAN, "result < 0.01", None, Verdict.INCONCLUSIVE, ["NaN"]),
    ("nan-failure-only", NAN, None, "result > 0.05", Verdict.INCONCLUSIVE, ["NaN"]),
    ("nan-negated-success", NAN, "!(result > 0.05)", None, Verdict.INCONCLUSIVE, ["NaN"]),
    ("empty-vector", [], "result.all(x, x < 0.01)", None, Verdict.INCONCLUSIVE, ["no data"]),
    (
        "empty-failure-only",
        [],
        None,
        "result.exists(x, x > 0.05)",
        Verdict.INCONCLUSIVE,
        ["no data"],
    ),
    (
        "nan-in-vector",
        [0.001, NAN],
        "result.all(x, x < 0.01)",
        None,
        Verdict.INCONCLUSIVE,
        ["1 of 2"],
    ),
    # a condition that cannot be evaluated is an Error that says why
    ("int-times-double", 0.2, "result * 2 < 1", None, Verdict.ERROR, ["`result * 2 < 1`", "2.0"]),
    ("syntax-error", 0.2, "result <", None, Verdict.ERROR, ["not valid CEL"]),
    ("unknown-name", 0.2, "rate < 1", None, Verdict.ERROR, ["rate"]),
    ("not-a-bool", 0.2, "result", None, Verdict.ERROR, ["not true or false"]),
    (
        "index-out-of-range",
        [0.1, 0.2],
        "result[5] < 1.0",
        None,
        Verdict.ERROR,
        ["failed on result"],
    ),
    ("scalar-used-as-list", 0.1, "result.all(x, x < 1.0)", None, Verdict.ERROR, ["failed"]),
    ("bad-failure-condition", 0.2, "result < 0.01", "result >", Verdict.ERROR, ["`result >`"]),
    ("no-condition", 0.2, None, None, Verdict.ERROR, ["neither successCondition nor failure"]),
]


@pytest.mark.parametrize(
    ("result", "success", "failure", "verdict", "words"),
    [case[1:] for case in JUDGE],
    ids=[case[0] for case in JUDGE],
)
def test_judge(
    result: Result,
    success: str | None,
    failure: str | None,
    verdict: Verdict,
    words: list[str],
) -> None:
    judgement = judge(result, success, failure)
    assert judgement.verdict is verdict, judgement.message
    for word in words:
        assert word in judgement.message


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("result < 0.01", None),
        ("result.all(x, x < 0.01)", None),
        ("result[0] < 1.0", None),  # fine for a vector: a scalar sample proves nothing
        ("size(result) > 0 && result.exists(x, x > 0.5)", None),
        ("result <", "not valid CEL"),
        ("", "not valid CEL"),
        ("ratio < 0.01", "may only refer to `result`"),
        ("result < threshold", "may only refer to `result`"),
    ],
    ids=["scalar", "vector", "index", "macro", "syntax", "empty", "unknown-var", "unknown-var-2"],
)
def test_check_condition(expression: str, problem: str | None) -> None:
    found = check_condition(expression)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_evaluate_condition_raises_condition_error() -> None:
    with pytest.raises(ConditionError, match="not true or false"):
        evaluate_condition("result + 1.0", 1.0)
    assert evaluate_condition("result == 2.5", 2.5) is True


@pytest.mark.parametrize(
    ("result", "reason"),
    [
        (0.0, None),
        (INF, None),
        ([0.1], None),
        (NAN, "NaN"),
        ([], "no data"),
        ([NAN, NAN], "2 of 2"),
    ],
    ids=["zero", "inf", "one", "nan", "empty", "all-nan"],
)
def test_missing_data(result: Result, reason: str | None) -> None:
    found = missing_data(result)
    assert (found is None) == (reason is None)
    if reason is not None:
        assert found is not None and reason in found


@pytest.mark.parametrize(
    ("result", "text"),
    [
        (0.0123456789, "0.0123457"),
        (NAN, "NaN"),
        (-INF, "-Inf"),
        ([1.0, 0.5], "[1, 0.5]"),
        ([0.001] * 100, None),
    ],
    ids=["rounded", "nan", "neg-inf", "list", "long-list-truncated"],
)
def test_format_result(result: Result, text: str | None) -> None:
    shown = format_result(result)
    if text is not None:
        assert shown == text
    else:
        assert len(shown) <= 200 and shown.endswith("…")
