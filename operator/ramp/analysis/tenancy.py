"""Scope a PromQL query to one namespace, the way prom-label-proxy enforces a label.

Every series selector of the query (plain, in a range, in a subquery, in every ``or``
group of a selector) gets the matcher ``namespace="<the Rollout's namespace>"`` added, so
the query reads only series of its own namespace, whatever else it says. The query is
parsed with a real PromQL parser (``promql-parser``) and written out again by
:func:`unparse` below, which escapes every string itself (the parser's own printer does
not escape quotes or backslashes, so it is never used for the text sent to Prometheus).

Two checks make the rewrite trustworthy rather than plausible:

* the query without enforcement, written out and parsed again, must give the same tree as
  the original (so the printer is faithful for this query);
* the enforced text, parsed again, must have the matcher in every selector.

A matcher the tenant wrote on the label itself is kept (Prometheus applies both), unless
it excludes the tenant's own namespace (``namespace="team-b"``, ``namespace!="team-a"``,
a regular expression that does not match ``team-a``): that query is refused with a
message naming the namespace it asked for, because it is either an attempt to read
another tenant or a query that can only ever return nothing.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import timedelta

import promql_parser as pp

from ramp.analysis.promql import escape_string_literal

DEFAULT_LABEL = "namespace"

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_METRIC = re.compile(r"^[A-Za-z_:][A-Za-z0-9_:]*$")
_MAX_QUERY = 8192
"""Longer queries are refused before parsing (a rollout metric is a line or two)."""
_REFUSED_FUNCTIONS = frozenset({"info"})
"""Functions that read series no selector of the query names (``info`` looks up
``target_info`` by itself), so no matcher can scope them."""

_OPS = (
    (pp.MatchOp.Equal, "="),
    (pp.MatchOp.NotEqual, "!="),
    (pp.MatchOp.Re, "=~"),
    (pp.MatchOp.NotRe, "!~"),
)


def _op(matcher: pp.Matcher) -> str:
    for op, text in _OPS:
        if matcher.op == op:
            return text
    raise TenancyError("unsupported label matcher")


class TenancyError(ValueError):
    """The query cannot be scoped to its namespace; the message says why (no secrets)."""


def _duration(delta: timedelta) -> str:
    if delta < timedelta(0):
        return "-" + pp.display_duration(-delta)
    return pp.display_duration(delta)


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _string(value: str) -> str:
    return '"' + escape_string_literal(value, '"') + '"'


def _label(name: str) -> str:
    if not _IDENT.match(name):
        raise TenancyError(f"label name {name[:40]!r} is not supported")
    return name


def _labels(names: list[str] | None) -> str:
    return ", ".join(_label(n) for n in names or [])


def _modifiers(at: pp.AtModifier | None, offset: timedelta | None) -> str:
    out = ""
    if at is not None:
        if at.type == pp.AtModifierType.Start:
            out += " @ start()"
        elif at.type == pp.AtModifierType.End:
            out += " @ end()"
        else:
            assert at.at is not None
            out += f" @ {at.at.timestamp():.3f}"
    if offset is not None and offset:
        out += f" offset {_duration(offset)}"
    return out


Enforcer = Callable[[list[pp.Matcher]], list[str]]


def _selector(node: pp.VectorSelector, enforce: Enforcer | None) -> str:
    matchers = node.matchers
    groups: list[list[pp.Matcher]] = [list(g) for g in matchers.or_matchers]
    if groups and matchers.matchers:
        raise TenancyError("a selector mixing plain and 'or' matchers is not supported")
    if not groups:
        groups = [list(matchers.matchers)]
    texts: list[str] = []
    for group in groups:
        parts = [f"{_label(m.name)}{_op(m)}{_string(m.value)}" for m in group]
        if enforce is not None:
            parts += enforce(group)
        texts.append(",".join(parts))
    name = node.name or ""
    if name and not _METRIC.match(name):
        raise TenancyError(f"metric name {name[:40]!r} is not supported")
    body = " or ".join(texts)
    return f"{name}{{{body}}}" if body or not name else name


def unparse(expr: pp.Expr, enforce: Enforcer | None = None) -> str:
    """PromQL text for ``expr``; ``enforce(matchers)`` gives matchers to add to each group."""
    match expr:
        case pp.VectorSelector():
            return _selector(expr, enforce) + _modifiers(expr.at, expr.offset)
        case pp.MatrixSelector():
            vs = expr.vector_selector
            return (
                f"{_selector(vs, enforce)}[{_duration(expr.range)}]{_modifiers(vs.at, vs.offset)}"
            )
        case pp.SubqueryExpr():
            step = _duration(expr.step) if expr.step else ""
            assert expr.range is not None
            inner = unparse(expr.expr, enforce)
            return f"{inner}[{_duration(expr.range)}:{step}]{_modifiers(expr.at, expr.offset)}"
        case pp.NumberLiteral():
            return _number(expr.val)
        case pp.StringLiteral():
            return _string(expr.val)
        case pp.ParenExpr():
            return f"({unparse(expr.expr, enforce)})"
        case pp.UnaryExpr():
            return f"-{unparse(expr.expr, enforce)}"
        case pp.Call():
            name = expr.func.name
            if name in _REFUSED_FUNCTIONS:
                raise TenancyError(
                    f"the function {name}() reads series no selector names and cannot be "
                    "scoped to a namespace"
                )
            return f"{name}({', '.join(unparse(a, enforce) for a in expr.args)})"
        case pp.AggregateExpr():
            mod = ""
            if expr.modifier is not None:
                word = "by" if expr.modifier.type == pp.AggModifierType.By else "without"
                mod = f" {word} ({_labels(expr.modifier.labels)})"
            operands = [unparse(expr.param, enforce)] if expr.param is not None else []
            operands.append(unparse(expr.expr, enforce))
            return f"{expr.op}{mod}({', '.join(operands)})"
        case pp.BinaryExpr():
            return f"{unparse(expr.lhs, enforce)} {_binop(expr)} {unparse(expr.rhs, enforce)}"
    raise TenancyError(f"unsupported PromQL construct {type(expr).__name__}")


def _binop(expr: pp.BinaryExpr) -> str:
    out = str(expr.op)
    mod = expr.modifier
    if mod is None:
        return out
    fill = mod.fill_values
    if fill is not None and (fill.lhs is not None or fill.rhs is not None):
        raise TenancyError("fill modifiers of vector matching are not supported")
    if mod.return_bool:
        out += " bool"
    if mod.matching is not None:
        word = "on" if mod.matching.type == pp.LabelModifierType.Include else "ignoring"
        out += f" {word} ({_labels(mod.matching.labels)})"
    if mod.card == pp.VectorMatchCardinality.ManyToOne:
        out += f" group_left ({_labels(mod.group_labels)})"
    elif mod.card == pp.VectorMatchCardinality.OneToMany:
        out += f" group_right ({_labels(mod.group_labels)})"
    return out


def _parse(query: str) -> pp.Expr:
    if len(query) > _MAX_QUERY:
        raise TenancyError(f"the query is longer than {_MAX_QUERY} characters")
    try:
        return pp.parse(query)
    except Exception:
        raise TenancyError(
            "the query is not valid PromQL (the operator parses every query to keep it in "
            "its namespace)"
        ) from None


def _accepts(matcher: pp.Matcher, namespace: str) -> bool:
    """Whether ``matcher`` lets series of ``namespace`` through (unknown regex: yes)."""
    if matcher.op == pp.MatchOp.Equal:
        return bool(matcher.value == namespace)
    if matcher.op == pp.MatchOp.NotEqual:
        return bool(matcher.value != namespace)
    try:
        matched = re.fullmatch(matcher.value, namespace) is not None
    except re.error:
        return True  # Prometheus judges it; our equality matcher still applies
    return matched if matcher.op == pp.MatchOp.Re else not matched


def enforce_namespace(query: str, namespace: str, label: str = DEFAULT_LABEL) -> str:
    """``query`` with ``label="namespace"`` in every selector; TenancyError when refused.

    >>> enforce_namespace('sum(rate(http_requests_total{code=~"5.."}[5m]))', "team-a")
    'sum(rate(http_requests_total{code=~"5..",namespace="team-a"}[5m]))'
    """
    _label(label)
    original = _parse(query)
    plain = unparse(original)
    if repr(_parse(plain)) != repr(original):
        raise TenancyError("the query uses PromQL the operator cannot scope to a namespace")

    def enforce(group: list[pp.Matcher]) -> list[str]:
        scoped = False
        for matcher in group:
            if matcher.name == label and matcher.op == pp.MatchOp.Equal:
                scoped = matcher.value == namespace
            if matcher.name == label and not _accepts(matcher, namespace):
                raise TenancyError(
                    f"the selector matcher {label}{_op(matcher)}{_string(matcher.value)} "
                    f"asks for series outside namespace {namespace}; a metric reads only its "
                    f"own namespace (the operator adds {label}={_string(namespace)} to every "
                    "selector)"
                )
        return [] if scoped else [f"{label}={_string(namespace)}"]

    scoped = unparse(original, enforce)
    check(scoped, namespace, label)
    return scoped


def check(query: str, namespace: str, label: str = DEFAULT_LABEL) -> None:
    """TenancyError unless every selector of ``query`` has ``label="namespace"``."""
    missing: list[str] = []

    def visit(node: pp.Expr) -> None:
        selector = node.vector_selector if isinstance(node, pp.MatrixSelector) else node
        if isinstance(selector, pp.VectorSelector):
            matchers = selector.matchers
            groups = [list(g) for g in matchers.or_matchers] or [list(matchers.matchers)]
            for group in groups:
                if not any(
                    m.name == label and m.op == pp.MatchOp.Equal and m.value == namespace
                    for m in group
                ):
                    missing.append(selector.name or "{}")
        if isinstance(node, pp.Call) and node.func.name in _REFUSED_FUNCTIONS:
            missing.append(node.func.name + "()")

    pp.walk(_parse(query), visit)
    if missing:
        raise TenancyError("the scoped query still has a selector outside its namespace")
