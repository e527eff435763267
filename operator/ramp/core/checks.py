"""What the schema cannot check about a spec, and the selector as a string. Pure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ramp.api.labels import PREFIX
from ramp.api.rollout import RolloutSpec


def selector_string(spec: RolloutSpec) -> str:
    """The Rollout's selector as a label-selector string (scale subresource, HPA)."""
    parts = [f"{k}={v}" for k, v in sorted((spec.selector.match_labels or {}).items())]
    for expr in spec.selector.match_expressions or []:
        values = ",".join(expr.values or [])
        if expr.operator == "In":
            parts.append(f"{expr.key} in ({values})")
        elif expr.operator == "NotIn":
            parts.append(f"{expr.key} notin ({values})")
        elif expr.operator == "Exists":
            parts.append(expr.key)
        else:
            parts.append(f"!{expr.key}")
    return ",".join(parts)


def spec_problems(spec: RolloutSpec, template: Mapping[str, Any]) -> str | None:
    """What the schema cannot check of the template and selector (the strategy checks
    its own part: ``Strategy.problems``). None when they are usable."""
    labels = (template.get("metadata") or {}).get("labels") or {}
    for key in labels:
        if key.startswith(f"{PREFIX}/") and key != "ramp.dev/test-fault":
            return f"spec.template.metadata.labels: {key} is reserved for the operator"
    for expr in spec.selector.match_expressions or []:
        value = labels.get(expr.key)
        ok = {
            "In": value is not None and value in (expr.values or []),
            "NotIn": value not in (expr.values or []),
            "Exists": value is not None,
            "DoesNotExist": value is None,
        }[expr.operator]
        if not ok:
            return (
                f"spec.selector.matchExpressions: {expr.key} {expr.operator} "
                f"{expr.values or ''} does not match spec.template.metadata.labels"
            )
    return None
