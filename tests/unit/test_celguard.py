"""Bounded conditions: what CEL a condition may use, its cost, and the evaluation budget.

The freeze (issue 20): about 720 characters of nested ``all()`` macros over small list
literals evaluated for years on the event loop. Every hostile shape below is refused with
a reason before the evaluator sees it; every allowed condition, at the largest result its
budget admits, evaluates in a few milliseconds (measured here).
"""

from __future__ import annotations

import time

import pytest

from ramp.analysis.cel import ConditionError, check_condition, evaluate_condition, judge
from ramp.analysis.celguard import MAX_STEPS, Cost, GuardError, analyse
from ramp.api.analysis import Verdict


def freeze_attack(levels: int = 48, items: str = "1,2,3") -> str:
    """The issue's freeze: ``[1,2,3].all(a0, [1,2,3].all(a1, ... true))``, 3**levels."""
    text = "true"
    for level in reversed(range(levels)):
        text = f"[{items}].all(a{level},{text})"
    return text


ALLOWED = [
    ("threshold", "result < 0.01"),
    ("range", "result >= 0.0 && result < 0.05"),
    ("negation", "!(result > 0.05)"),
    ("arithmetic", "result * 100.0 - 1.0 < 5.0 / 2.0"),
    ("ternary", "result > 1.0 ? result < 10.0 : true"),
    ("index", "result[0] < result[1]"),
    ("size", "size(result) > 2"),
    ("size-method", "result.size() == 3"),
    ("all", "result.all(x, x < 0.01)"),
    ("exists", "size(result) > 0 && result.exists(x, x > 0.5)"),
    ("exists_one", "result.exists_one(x, x > 0.5)"),
    ("filter", "size(result.filter(x, x > 0.5)) < 3"),
    ("map", "size(result.map(x, x * 2.0)) == 3"),
    ("conversions", "int(result[0]) == 1 || double(size(result)) > 2.5"),
    ("hex-and-exponent", "result < 1e3 && 0x10 > 3"),
]

REFUSED = [
    ("freeze-attack", freeze_attack(), "list literals"),
    ("nested-macros-over-result", "result.all(a, result.all(b, a < b))", "only one macro"),
    ("two-macros", "result.all(x, x < 1.0) && result.exists(x, x > 0.0)", "only one macro"),
    ("macro-over-map", "result.map(x, x * 2.0).all(y, y < 1.0)", "only be applied to result"),
    ("list-literal", "result in [1.0, 2.0]", "'in' operator"),
    ("list-literal-plain", "size([1, 2, 3]) > 0", "list literals"),
    ("string", "'a' + 'b' == 'ab'", "strings"),
    ("map-literal", "{1: 2}[1] == 2", "maps"),
    ("other-variable", "rate < 0.01", "may only refer to `result`"),
    ("field", "result.ok == true", "field selection"),
    ("function", "exp(result) > 1.0", "function exp()"),
    ("method", "result.contains(1.0)", "method contains()"),
    ("body-gives-list", "size(result.map(x, result)) > 0", "may not give a list"),
    ("deep-parens", "(" * 40 + "result" + ")" * 40 + " < 1.0", "nested more than"),
    ("deep-negation", "!" * 40 + "true", "nested more than"),
    ("comment", "result < 1.0 // fine", "comments are not allowed"),
    ("comment-hides-macro", "result.//c\nall(x, x < 1.0)", "comments are not allowed"),
    ("null", "result != null", "may only refer"),
    ("has", "has(result.x)", "function has()"),
]


@pytest.mark.parametrize("expression", [c[1] for c in ALLOWED], ids=[c[0] for c in ALLOWED])
def test_allowed(expression: str) -> None:
    analyse(expression)
    assert check_condition(expression) is None


@pytest.mark.parametrize(
    ("expression", "reason"), [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED]
)
def test_refused_with_a_reason(expression: str, reason: str) -> None:
    with pytest.raises(GuardError, match=None) as raised:
        analyse(expression)
    assert reason in str(raised.value)
    problem = check_condition(expression)
    assert problem is not None
    assert reason in problem or "not valid CEL" in problem, problem


def test_freeze_attack_is_refused_fast() -> None:
    """The issue's attack (~720 characters) is refused in well under 100 ms, and
    evaluating or judging it never reaches the evaluator."""
    attack = freeze_attack()
    assert 650 <= len(attack) <= 1024
    # The evaluator loaded and the parser warm (the first call's cost is not the guard's).
    assert check_condition("result < 0.01") is None
    judge([0.1], "result < 0.01", None)
    # CPU time of this thread, best of three: what the guard spends, not what a loaded
    # machine's scheduler or another thread of the process adds (an attack that reached
    # the evaluator takes seconds).
    spent = []
    for _ in range(3):
        start = time.thread_time()
        assert check_condition(attack) is not None
        judgement = judge([0.1, 0.2, 0.3], attack, None)
        with pytest.raises(ConditionError, match="list literals"):
            evaluate_condition(attack, 0.1)
        spent.append(time.thread_time() - start)
    assert min(spent) < 0.1, spent
    assert judgement.verdict is Verdict.ERROR and "not allowed" in judgement.message


@pytest.mark.parametrize(
    ("expression", "cost"),
    [
        ("result < 0.01", Cost(3, 1)),
        ("result.all(x, x < 0.01)", Cost(2, 4)),
        ("result == result", Cost(3, 2)),
        ("result + result + result == result", Cost(7, 9)),
        ("result.all(x, result == result)", Cost(2, 4, 2)),
    ],
    ids=["scalar", "macro", "list-equality", "concatenation", "list-op-in-body"],
)
def test_cost(expression: str, cost: Cost) -> None:
    assert analyse(expression) == cost


def test_a_result_too_large_for_the_condition_is_an_error_that_says_why() -> None:
    condition = "result.all(x, x < 0.01 && x >= 0.0 && x != 0.5)"
    assert evaluate_condition(condition, [0.001] * 100) is True
    judgement = judge([0.001] * 5000, condition, None)
    assert judgement.verdict is Verdict.ERROR
    assert "5000 samples" in judgement.message and "aggregate" in judgement.message


def _fill(prefix: str, unit: str, suffix: str, sep: str, limit: int = 1024) -> str:
    parts = [unit]
    while len(prefix + sep.join([*parts, unit]) + suffix) <= limit:
        parts.append(unit)
    return prefix + sep.join(parts) + suffix


WORST = [
    ("long-macro-body", _fill("result.all(x, ", "x < 1.0", ")", " && ")),
    ("concatenation", _fill("size(", "result", ") > 0", " + ")),
    ("list-equalities", _fill("", "result == result", "", " && ")),
    ("list-equality-in-body", _fill("result.all(x, ", "result == result", ")", " && ")),
    ("map", _fill("size(result.map(x, ", "x * 2.0", ")) >= 0", " + ")),
    ("flat", _fill("", "result[0] * 2.0", " > 0.0", " + ")),
]


def largest_admitted(cost: Cost) -> int:
    """The most samples a condition of ``cost`` may be evaluated over."""
    low, high = 1, 1
    while cost.steps(high) <= MAX_STEPS:
        low, high = high, high * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if cost.steps(mid) <= MAX_STEPS else (low, mid)
    return low


@pytest.mark.parametrize("expression", [c[1] for c in WORST], ids=[c[0] for c in WORST])
def test_worst_admitted_evaluation_takes_milliseconds(expression: str) -> None:
    """The budget's calibration: the costliest shapes, 1 KiB long, over the most samples
    their budget admits, evaluate in far less than 100 ms (about 12 ms idle, the best of
    three runs so that a loaded machine does not make the test flaky)."""
    cost = analyse(expression)
    samples = largest_admitted(cost)
    result = [0.5] * samples
    best = min(_timed(expression, result) for _ in range(3))
    assert best < 0.1, f"{samples} samples took {best * 1000:.1f} ms"
    with pytest.raises(ConditionError, match="evaluation steps"):
        evaluate_condition(expression, [0.5] * (samples + 1))


def _timed(expression: str, result: list[float]) -> float:
    """CPU seconds of this thread (the evaluator runs in it, holding the GIL): a loaded
    machine's scheduler does not count."""
    start = time.thread_time()
    try:
        evaluate_condition(expression, result)
    except ConditionError as error:
        assert "evaluation steps" not in str(error)
    return time.thread_time() - start
