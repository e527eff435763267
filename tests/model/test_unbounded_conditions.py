"""Generated hostile conditions: none is evaluated past its budget.

A tenant writes a condition; the operator evaluates it for everyone. Hypothesis builds
conditions from the whole of CEL a tenant could type (list literals, strings, nested
macros, concatenation, comprehensions over ``result``) and from the allowed subset, at
most 1024 characters (the CRD's bound). For each: either it is refused (by
``check_condition``, with a reason), or its evaluation over any number of samples is
refused for its cost, or it evaluates within the budget (100 ms, measured; the static cost
never exceeds :data:`MAX_STEPS`).

CI runs a fixed, derandomized budget; ``make fuzz`` (``RAMP_FUZZ=1``) a longer, random one.
The issue's freeze attack is a named example (it evaluates for years on f61a406).
"""

from __future__ import annotations

import contextlib
import os
import time

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ramp.analysis.cel import ConditionError, check_condition, evaluate_condition
from ramp.analysis.celguard import MAX_STEPS, analyse

BUDGET = 0.1
"""Seconds one evaluation may take (the acceptance: refused, or stopped within 100 ms)."""

settings.register_profile(
    "cel-ci",
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.register_profile(
    "cel-fuzz",
    max_examples=int(os.environ.get("RAMP_CEL_EXAMPLES", "20000")),
    derandomize=False,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
PROFILE = "cel-fuzz" if os.environ.get("RAMP_FUZZ") else "cel-ci"

VARIABLES = ["x", "y", "a"]
LISTS = ["[1, 2, 3]", "[1.0, 2.0]", "[0, 1, 2, 3, 4, 5, 6, 7]", "[[1], [2, 3]]", "[]"]
ATOMS = st.sampled_from(
    ["result", "result[0]", "0.5", "1.0", "2", "true", "false", "'ab'", "x", "y", "null", *LISTS]
)
MACROS = ["all", "exists", "exists_one", "map", "filter"]


def _extend(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(["+", "-", "*", "/", "%", "<", "<=", "==", "!=", "&&", "||", "in"])
    return st.one_of(
        st.tuples(inner, binary, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, st.sampled_from(MACROS), st.sampled_from(VARIABLES), inner).map(
            lambda t: f"{t[0]}.{t[1]}({t[2]}, {t[3]})"
        ),
        st.tuples(st.sampled_from(["size", "string", "double", "int", "!"]), inner).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
    )


HOSTILE = st.recursive(ATOMS, _extend, max_leaves=40).filter(lambda e: len(e) <= 1024)
"""Anything a tenant could type, mostly refused."""


def _nested(levels: int, receiver: str, body: str) -> str:
    text = body
    for level in reversed(range(levels)):
        text = f"{receiver}.all(v{level}, {text})"
    return text


NESTED = st.builds(
    _nested,
    st.integers(1, 60),
    st.sampled_from(["[1, 2, 3]", "result", "[0.0, 1.0]"]),
    st.sampled_from(["true", "result == result", "size(result) > 0"]),
).filter(lambda e: len(e) <= 1024)
"""The freeze's family: macros in macros, over literals or over ``result``."""

ALLOWED_ATOMS = st.sampled_from(["result", "result[0]", "0.5", "1.0", "2", "true", "size(result)"])


def _allowed(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.sampled_from(["+", "-", "*", "/", "<", "<=", "==", "!=", "&&", "||"])
    return st.one_of(
        st.tuples(inner, binary, inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(inner, inner, inner).map(lambda t: f"({t[0]} ? {t[1]} : {t[2]})"),
        inner.map(lambda e: f"!({e})"),
    )


def _one_macro(body: str, name: str, outer: str) -> str:
    return outer.replace("M", f"result.{name}(x, {body.replace('result[0]', 'x')})")


ALLOWED = st.one_of(
    st.recursive(ALLOWED_ATOMS, _allowed, max_leaves=60),
    st.builds(
        _one_macro,
        st.recursive(ALLOWED_ATOMS, _allowed, max_leaves=60),
        st.sampled_from(MACROS),
        st.sampled_from(["M", "size(M) > 0", "M == result", "size(result + result) > 0 && M"]),
    ),
).filter(lambda e: len(e) <= 1024)
"""Conditions the guard may accept: the budget is what bounds them."""

SAMPLES = st.sampled_from([0, 1, 3, 50, 500, 5000, 100_000])


def _bounded(expression: str, samples: int) -> None:
    """Refused, or refused for its cost, or evaluated within BUDGET."""
    if check_condition(expression) is not None:
        return
    result: float | list[float] = 0.25 if samples == 0 else [0.25] * samples
    start = time.perf_counter()
    try:
        evaluate_condition(expression, result)
    except ConditionError as error:
        if "evaluation steps" in str(error):
            assert analyse(expression).steps(max(samples, 1)) > MAX_STEPS
            return
    elapsed = time.perf_counter() - start
    assert analyse(expression).steps(max(samples, 1)) <= MAX_STEPS
    if elapsed >= BUDGET:  # one retry: a loaded machine can stall any single call
        start = time.perf_counter()
        with contextlib.suppress(ConditionError):
            evaluate_condition(expression, result)
        elapsed = time.perf_counter() - start
    assert elapsed < BUDGET, f"{len(expression)} chars over {samples} samples: {elapsed:.3f}s"


FREEZE = "true"
for _level in reversed(range(48)):
    FREEZE = f"[1,2,3].all(a{_level},{FREEZE})"


@settings(settings.get_profile(PROFILE))
@given(expression=st.one_of(HOSTILE, NESTED), samples=SAMPLES)
@example(expression=FREEZE, samples=0).via("the issue's freeze attack: 3**48 evaluations")
@example(expression=FREEZE, samples=3)
@example(expression=_nested(20, "result", "true"), samples=3).via("nested macros over result")
def test_hostile_conditions_stay_within_budget(expression: str, samples: int) -> None:
    _bounded(expression, samples)


@settings(settings.get_profile(PROFILE))
@given(expression=ALLOWED, samples=SAMPLES)
def test_allowed_conditions_stay_within_budget(expression: str, samples: int) -> None:
    _bounded(expression, samples)
