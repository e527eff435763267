"""The CEL that a condition may use, and what evaluating it can cost, before any evaluation.

A condition is written by whoever may write a Rollout or an AnalysisTemplate, and the
operator evaluates it for every tenant. Full CEL is not bounded in practice: about 720
characters of nested ``all()`` macros over small list literals evaluate for years, and the
evaluator (Rust, behind the GIL) cannot be interrupted. So a condition is parsed here, in
pure Python, and refused unless it keeps to what a rollout needs:

* numbers, ``true``/``false``, ``result`` (a double, or a list of doubles);
* arithmetic ``+ - * / %``, comparisons ``< <= > >= == !=``, ``&& || !``, ``a ? b : c``,
  parentheses, an index ``result[i]``;
* the functions ``size()``, ``double()`` and ``int()``;
* one macro, over ``result`` itself: ``result.all(x, …)``, ``exists``, ``exists_one``,
  ``filter``, ``map`` (its body may not hold another macro).

No strings, lists, maps, other variables or functions. With these rules a condition is a
tree of at most a few hundred nodes, evaluated once, plus the macro body once per sample:
:class:`Cost` counts those steps, and :data:`MAX_STEPS` (checked with the real number of
samples before the evaluator is called) keeps one evaluation to a few milliseconds.

>>> analyse("result.all(x, x < 0.01)").steps(3)
314
>>> analyse("[1, 2].all(a, true)")
Traceback (most recent call last):
...
ramp.analysis.celguard.GuardError: list literals are not allowed (at 1)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

MACROS = frozenset({"all", "exists", "exists_one", "filter", "map"})
"""The CEL macros a condition may apply to ``result`` (at most one per condition)."""
FUNCTIONS = frozenset({"size", "double", "int"})
MAX_DEPTH = 32
"""Deepest nesting of parentheses, operators and calls (the parsers recurse on it)."""
MAX_STEPS = 100_000
"""Evaluation steps one condition may take (nodes evaluated, per-sample work included):
at most about 20 ms of the evaluator, measured in tests/unit/test_celguard.py."""
SAMPLE_STEPS = 100
"""Steps charged per sample for handing ``result`` to the evaluator (a Python float
becomes a CEL value: about a hundred times the cost of one node)."""

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>&&|\|\||==|!=|<=|>=|[-+*/%<>!?:(),.\[\]])
  """,
    re.VERBOSE,
)
_RELATIONS = frozenset({"<", "<=", ">", ">=", "==", "!="})
_KEYWORDS = frozenset({"true", "false"})
_RESERVED = frozenset(
    {"in", "null", "as", "break", "const", "continue", "else", "for", "function", "if"}
    | {"import", "let", "loop", "package", "namespace", "return", "var", "void", "while"}
)


class GuardError(ValueError):
    """The condition is outside the allowed CEL; the message says what and where."""


@dataclass(frozen=True)
class Cost:
    """Evaluation steps of a condition as a polynomial in N, the number of samples:
    ``fixed + linear * N + square * N**2``.

    A node evaluated once is one step; a macro body's nodes are evaluated N times; an
    operation on a list value (``result == result``, ``result + result``: comparing or
    concatenating) takes one step per element; and inside a macro body, such an operation
    is repeated N times (hence ``square``)."""

    fixed: int
    linear: int
    square: int = 0

    def steps(self, samples: int) -> int:
        """Steps for a ``result`` of ``samples`` values (a scalar counts as one), plus
        :data:`SAMPLE_STEPS` per sample for handing ``result`` to the evaluator."""
        n = max(samples, 1)
        return self.fixed + (self.linear + SAMPLE_STEPS) * n + self.square * n * n


@dataclass
class _Token:
    kind: str
    text: str
    at: int  # 1-based column, for messages


def _tokens(expression: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(expression):
        if expression.startswith("//", pos):
            raise GuardError(f"comments are not allowed (at {pos + 1})")
        match = _TOKEN.match(expression, pos)
        if match is None:
            char = expression[pos]
            what = {
                "'": "strings are",
                '"': "strings are",
                "{": "maps are",
                "}": "maps are",
            }.get(char)
            if what is not None:
                raise GuardError(f"{what} not allowed (at {pos + 1})")
            raise GuardError(f"unexpected character {char!r} (at {pos + 1})")
        kind = match.lastgroup or ""
        if kind != "space":
            out.append(_Token(kind, match.group(), pos + 1))
        pos = match.end()
    out.append(_Token("end", "", len(expression) + 1))
    return out


class _Parser:
    """Recursive descent over CEL's grammar, restricted.

    Each parse method returns the *size* of its value as a multiple of N (0 for a number
    or a bool, 1 for ``result`` or a ``filter``/``map`` of it, 2 for ``result + result``)
    and charges the evaluation steps to ``cost[k]``, the coefficient of N**k (``level`` is
    1 inside the macro's body, which runs N times)."""

    def __init__(self, expression: str) -> None:
        self.tokens = _tokens(expression)
        self.index = 0
        self.depth = 0
        self.level = 0
        self.cost = [0, 0, 0]
        self.macros = 0
        self.in_macro: str | None = None  # the macro's variable while parsing its body

    # -- helpers ------------------------------------------------------------------------

    @property
    def token(self) -> _Token:
        return self.tokens[self.index]

    def take(self) -> _Token:
        token = self.token
        self.index += 1
        return token

    def accept(self, text: str) -> bool:
        if self.token.kind in ("op", "name") and self.token.text == text:
            self.index += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            found = self.token.text or "the end"
            raise GuardError(f"expected {text!r}, found {found!r} (at {self.token.at})")

    def charge(self, steps: int = 1, per_sample: int = 0) -> None:
        """One node (``steps``) plus ``per_sample`` steps for each sample, at this level."""
        self.cost[self.level] += steps
        self.cost[self.level + 1] += per_sample

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise GuardError(f"nested more than {MAX_DEPTH} levels deep (at {self.token.at})")

    def binary(self, operators: frozenset[str], operand: Callable[[], int], concat: bool) -> int:
        """``operand (op operand)*``; list operands cost their size; ``+`` may concatenate."""
        size = operand()
        while self.token.kind == "op" and self.token.text in operators:
            plus = self.take().text == "+"
            right = operand()
            self.charge(1, size + right)
            size = size + right if concat and plus else 0
        return size

    # -- grammar ------------------------------------------------------------------------

    def parse(self) -> Cost:
        self.expression()
        if self.token.kind != "end":
            raise GuardError(f"unexpected {self.token.text!r} (at {self.token.at})")
        return Cost(*self.cost)

    def expression(self) -> int:
        self.enter()
        size = self.binary(frozenset({"||"}), self.conjunction, concat=False)
        if self.accept("?"):
            self.charge()
            first = self.expression()
            self.expect(":")
            size = max(first, self.expression())
        self.depth -= 1
        return size

    def conjunction(self) -> int:
        return self.binary(frozenset({"&&"}), self.relation, concat=False)

    def relation(self) -> int:
        size = self.binary(_RELATIONS, self.addition, concat=False)
        if self.token.kind == "name" and self.token.text == "in":
            raise GuardError(f"the 'in' operator is not allowed (at {self.token.at})")
        return size

    def addition(self) -> int:
        return self.binary(frozenset({"+", "-"}), self.multiplication, concat=True)

    def multiplication(self) -> int:
        return self.binary(frozenset({"*", "/", "%"}), self.unary, concat=False)

    def unary(self) -> int:
        self.enter()
        if self.token.kind == "op" and self.token.text in ("!", "-"):
            self.take()
            size = self.unary()
            self.charge(1, size)
            size = 0
        else:
            size = self.member()
        self.depth -= 1
        return size

    def member(self) -> int:
        receiver, size = self.primary()
        while True:
            if self.accept("["):
                self.expression()
                self.expect("]")
                self.charge()
                size = 0
            elif self.accept("."):
                name = self.take()
                if name.kind != "name":
                    raise GuardError(f"expected a name after '.' (at {name.at})")
                if not self.accept("("):
                    raise GuardError(f"field selection .{name.text} is not allowed (at {name.at})")
                size = self.call_method(receiver, name)
            else:
                return size
            receiver = None

    def call_method(self, receiver: str | None, name: _Token) -> int:
        if name.text == "size":
            self.expect(")")
            self.charge()
            return 0
        if name.text not in MACROS:
            raise GuardError(f"the method {name.text}() is not allowed (at {name.at})")
        if receiver != "result":
            raise GuardError(
                f"the macro {name.text}() may only be applied to result (at {name.at})"
            )
        if self.in_macro is not None or self.macros:
            raise GuardError(f"only one macro per condition is allowed (at {name.at})")
        self.macros += 1
        variable = self.take()
        if variable.kind != "name" or variable.text in _KEYWORDS | _RESERVED | {"result"}:
            raise GuardError(f"the macro {name.text}() needs a variable name (at {variable.at})")
        self.expect(",")
        self.in_macro, self.level = variable.text, self.level + 1
        body = self.expression()
        self.in_macro, self.level = None, self.level - 1
        if body:
            raise GuardError(f"the body of {name.text}() may not give a list (at {variable.at})")
        self.expect(")")
        self.charge(1, 1)  # the macro, and its loop step per sample
        return 1 if name.text in ("filter", "map") else 0

    def primary(self) -> tuple[str | None, int]:
        """Parse a primary: its name when it is a bare identifier (a macro's receiver),
        and its size."""
        token = self.take()
        self.charge()
        if token.kind == "number":
            return None, 0
        if token.kind == "op" and token.text == "(":
            size = self.expression()
            self.expect(")")
            return None, size
        if token.kind == "op" and token.text == "[":
            raise GuardError(f"list literals are not allowed (at {token.at})")
        if token.kind != "name":
            found = token.text or "the end"
            raise GuardError(f"unexpected {found!r} (at {token.at})")
        if token.text in _KEYWORDS:
            return None, 0
        if self.accept("("):
            if token.text not in FUNCTIONS:
                raise GuardError(f"the function {token.text}() is not allowed (at {token.at})")
            self.expression()
            self.expect(")")
            return None, 0
        if token.text == "result":
            return token.text, 1
        if token.text == self.in_macro:
            return token.text, 0
        raise GuardError(
            f"unknown name {token.text!r}: a condition may only refer to `result` (at {token.at})"
        )


def analyse(expression: str) -> Cost:
    """The evaluation cost of ``expression``; :class:`GuardError` when it is not allowed."""
    if not expression.strip():
        raise GuardError("the condition is empty")
    return _Parser(expression).parse()


def budget_problem(cost: Cost, samples: int) -> str | None:
    """Why evaluating a condition of ``cost`` over ``samples`` values is refused, or None."""
    steps = cost.steps(samples)
    if steps <= MAX_STEPS:
        return None
    return (
        f"over {samples} samples it needs {steps} evaluation steps, more than the "
        f"{MAX_STEPS} allowed (aggregate the query, e.g. with max() or sum(), or simplify "
        "the condition)"
    )


__all__ = ["FUNCTIONS", "MACROS", "MAX_DEPTH", "MAX_STEPS", "Cost", "GuardError", "analyse"]
