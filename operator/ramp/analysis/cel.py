"""Success and failure conditions: CEL expressions over ``result``.

``result`` is a double when the query returned a scalar or a one-sample vector, and a
list of doubles when it returned several samples (so ``result.all(x, x < 0.01)`` works).
Missing data is never handed to a condition: an empty result or a NaN anywhere is
Inconclusive before any condition runs (a NaN would otherwise compare false and could
turn ``!(result > 0.05)`` into a pass).

The evaluator is the ``common-expression-language`` package (``import cel``), bindings of
the Rust CEL implementation: strict typing as in Kubernetes' cel-go (``result * 2`` on a
double is an error, ``result * 2.0`` is not), compiled programs, type stubs.

How conditions become a verdict:

==================  =====================  ============================================
conditions set      condition true         neither true
==================  =====================  ============================================
success only        success → Pass         Fail ("does not meet successCondition")
failure only        failure → Fail         Pass
both                failure wins → Fail;   Inconclusive ("meets neither")
                    else success → Pass
==================  =====================  ============================================

A condition that does not compile, fails at run time or returns a non-bool gives an
Error verdict with a message naming the condition and the problem.

Bounded: before the evaluator sees a condition, :mod:`ramp.analysis.celguard` parses it
and refuses anything outside the small CEL a rollout needs (no list literals, strings,
nested macros...), and before each evaluation the condition's cost over the actual number
of samples is checked against :data:`~ramp.analysis.celguard.MAX_STEPS`. The evaluator
holds the GIL and cannot be interrupted, so refusing in advance is the only hard bound.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ramp.analysis.celguard import Cost, GuardError, analyse, budget_problem
from ramp.api.analysis import Verdict

if TYPE_CHECKING:
    import cel

Result = float | Sequence[float]
"""What a condition sees as ``result``."""


class ConditionError(ValueError):
    """A condition that cannot be compiled or evaluated; the message says why."""


@dataclass(frozen=True)
class Judgement:
    """A verdict with its reason in words."""

    verdict: Verdict
    message: str


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def compile_condition(expression: str) -> cel.Program:
    """Compile ``expression`` once (cached); ConditionError if it is not valid CEL or
    not allowed (see :mod:`ramp.analysis.celguard`)."""
    return _compiled(expression)[0]


@functools.lru_cache(maxsize=512)
def _compiled(expression: str) -> tuple[cel.Program, Cost]:
    """The program and its cost. The evaluator is imported here, at the first condition:
    it costs about 12 MB of memory, which an operator whose Rollouts have no analysis never
    pays. Its parser is safe on any input (it has a depth limit); the guard then refuses
    what would be unbounded to evaluate."""
    import cel

    try:
        program = cel.compile(expression)
    except Exception as error:  # the extension raises ValueError, but be safe
        raise ConditionError(
            f"condition `{_shown(expression)}` is not valid CEL: {_first_line(error)}"
        ) from error
    try:
        cost = analyse(expression)
    except GuardError as error:
        raise ConditionError(f"condition `{_shown(expression)}` is not allowed: {error}") from None
    return program, cost


def _shown(expression: str) -> str:
    """The condition on one line, cut to 120 characters, for a message."""
    line = " ".join(expression.split())
    return line if len(line) <= 120 else line[:119] + "…"


def check_condition(expression: str) -> str | None:
    """A reason why ``expression`` cannot be used as a condition, or None when it can.

    For spec validation before an analysis starts: the expression must compile, keep to
    the CEL that :mod:`ramp.analysis.celguard` allows and name no variable but ``result``.
    """
    try:
        compile_condition(expression)
    except ConditionError as error:
        return str(error)
    return None


def evaluate_condition(expression: str, result: Result) -> bool:
    """Evaluate one condition with ``result`` bound; ConditionError unless it gives a bool."""
    program, cost = _compiled(expression)
    samples = 1 if isinstance(result, float) else len(result)
    problem = budget_problem(cost, samples)
    if problem is not None:
        raise ConditionError(f"condition `{_shown(expression)}` refused: {problem}")
    value: object = result if isinstance(result, float) else [float(x) for x in result]
    try:
        outcome = program.execute({"result": value})
    except Exception as error:
        hint = ""
        if isinstance(error, TypeError) and ("int" in str(error).lower()):
            hint = " (CEL does not mix int and double: write 2.0, not 2)"
        raise ConditionError(
            f"condition `{expression}` failed on result {format_result(result)}: "
            f"{_first_line(error)}{hint}"
        ) from error
    if not isinstance(outcome, bool):
        raise ConditionError(
            f"condition `{expression}` returned {outcome!r} ({type(outcome).__name__}), "
            "not true or false"
        )
    return outcome


def format_result(result: Result) -> str:
    """A short text form of a result for messages and status (``0.012``, ``[0.1, 0.2]``)."""
    if isinstance(result, float):
        return _format_float(result)
    text = "[" + ", ".join(_format_float(x) for x in result) + "]"
    return text if len(text) <= 200 else text[:199] + "…"


def _format_float(x: float) -> str:
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    return f"{x:.6g}"


def missing_data(result: Result) -> str | None:
    """Why ``result`` cannot be judged (empty, NaN), or None when it can."""
    if isinstance(result, float):
        return (
            "result is NaN (for example 0/0: no requests in the window)"
            if math.isnan(result)
            else None
        )
    if len(result) == 0:
        return "query returned no data (empty result)"
    nans = sum(1 for x in result if math.isnan(x))
    if nans:
        return f"{nans} of {len(result)} samples are NaN"
    return None


def judge(
    result: Result,
    success_condition: str | None,
    failure_condition: str | None,
) -> Judgement:
    """Turn a query result and the metric's conditions into a verdict with a reason."""
    reason = missing_data(result)
    if reason is not None:
        return Judgement(Verdict.INCONCLUSIVE, reason)
    if success_condition is None and failure_condition is None:
        return Judgement(
            Verdict.ERROR, "the metric has neither successCondition nor failureCondition"
        )
    shown = format_result(result)
    try:
        if failure_condition is not None and evaluate_condition(failure_condition, result):
            return Judgement(
                Verdict.FAIL, f"value {shown} meets failureCondition `{failure_condition}`"
            )
        if success_condition is not None:
            if evaluate_condition(success_condition, result):
                return Judgement(
                    Verdict.PASS, f"value {shown} meets successCondition `{success_condition}`"
                )
            if failure_condition is None:
                return Judgement(
                    Verdict.FAIL,
                    f"value {shown} does not meet successCondition `{success_condition}`",
                )
            return Judgement(
                Verdict.INCONCLUSIVE,
                f"value {shown} meets neither successCondition `{success_condition}` "
                f"nor failureCondition `{failure_condition}`",
            )
    except ConditionError as error:
        return Judgement(Verdict.ERROR, str(error))
    return Judgement(
        Verdict.PASS, f"value {shown} does not meet failureCondition `{failure_condition}`"
    )
