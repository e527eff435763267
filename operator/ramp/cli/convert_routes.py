"""``kubectl ramp convert``: Argo Rollouts' Gateway API plugin configuration to Ramp's
``httpRoutes`` and its ``setHeaderRoute`` steps (docs/gateway-api.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Obj = dict[str, Any]
PLUGIN = "argoproj-labs/gatewayAPI"
Warn = Callable[[str, str], None]
"""(path, message)."""


def traffic_routing(routing: Obj, warn: Warn) -> list[str]:
    """The HTTPRoute names of ``spec.strategy.canary.trafficRouting``; what has no Ramp
    equivalent is said, by path, and dropped."""
    path = "spec.strategy.canary.trafficRouting"
    names: list[str] = []
    if PLUGIN not in (routing.get("plugins") or {}):
        if routing:
            warn(path, "no Ramp equivalent (only the Gateway API plugin): dropped")
        return names
    for key in sorted(set(routing) - {"plugins", "managedRoutes"}):
        warn(f"{path}.{key}", "no Ramp equivalent (only the Gateway API plugin): dropped")
    plugins = routing.get("plugins") or {}
    for name in sorted(set(plugins) - {PLUGIN}):
        warn(f"{path}.plugins.{name}", "no Ramp equivalent: dropped")
    config = plugins.get(PLUGIN) or {}
    if config.get("httpRoute"):
        names.append(str(config["httpRoute"]))
    for route in config.get("httpRoutes") or []:
        if isinstance(route, dict) and route.get("name"):
            names.append(str(route["name"]))
    for key in sorted(set(config) - {"httpRoute", "httpRoutes", "namespace"}):
        warn(
            f"{path}.plugins.{PLUGIN}.{key}",
            "no Ramp equivalent (HTTPRoutes only; header routes need no opt-in): dropped",
        )
    if config.get("namespace"):
        warn(
            f"{path}.plugins.{PLUGIN}.namespace",
            "Ramp's routes are in the Rollout's namespace: dropped",
        )
    return list(dict.fromkeys(names))


def header_route_step(step: Obj) -> Obj:
    """A ``setHeaderRoute`` step: the same shape in both (name, match of headerName and
    headerValue exact / prefix / regex)."""
    out: Obj = {"name": step.get("name")}
    match = [
        {
            "headerName": m.get("headerName"),
            "headerValue": {
                k: v
                for k, v in (m.get("headerValue") or {}).items()
                if k in ("exact", "prefix", "regex")
            },
        }
        for m in step.get("match") or []
    ]
    if match:
        out["match"] = match
    return {"setHeaderRoute": out}
