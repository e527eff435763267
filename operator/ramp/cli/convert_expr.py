"""``kubectl ramp convert``: Argo's expressions, names and durations in Ramp's terms."""

from __future__ import annotations

import re
from typing import Any

_UNSUPPORTED_EXPR = re.compile(
    r"\b(len|all|any|none|filter|map|isNaN|isInf|default|asInt|asFloat)\("
)


def ident(name: str) -> str:
    """An Argo argument name as a Ramp identifier (``service-name`` → ``service_name``)."""
    out = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return out if re.match(r"^[A-Za-z_]", out) else f"_{out}"


def argo_duration(value: Any) -> str:
    """Argo durations are strings (``30s``, ``1h``) or integer seconds."""
    if isinstance(value, int | float):
        return f"{int(value)}s"
    return str(value)


def convert_condition(expr: str) -> tuple[str, list[str]]:
    """An Argo (expr-lang) condition as CEL over a scalar ``result``, and problems.

    >>> convert_condition("result[0] >= 0.95 and result[0] < 1")
    ('result >= 0.95 && result < 1.0', [])
    >>> convert_condition("len(result) == 0 || result[0] < 5")[1]
    ['uses len(): no CEL equivalent (Ramp never passes missing data to a condition)']
    """
    problems = []
    for fn in sorted(set(_UNSUPPORTED_EXPR.findall(expr))):
        problems.append(
            f"uses {fn}(): no CEL equivalent (Ramp never passes missing data to a condition)"
        )
    out = re.sub(r"\bresult\[0\]", "result", expr)
    out = re.sub(r"\band\b", "&&", out)
    out = re.sub(r"\bor\b", "||", out)
    out = re.sub(r"\bnot\s+", "!", out)
    out = re.sub(r"(?<![\w.\]])(\d+)(?![\w.])", r"\1.0", out)
    return out.strip(), problems


__all__ = ["argo_duration", "convert_condition", "ident"]
