"""The shell's traffic-router registry: a Rollout naming no router objects reads nothing,
a route router's objects are read by its kind, and a write of a kind nobody registered is
an error, never dropped silently."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from ramp.api.rollout import RolloutSpec
from ramp.core.httproute import KIND
from ramp.shell.adapters import traffic_io


def spec(routes: list[str] | None) -> RolloutSpec:
    canary: dict[str, Any] = {"stableService": "s", "canaryService": "c"}
    if routes is not None:
        canary["httpRoutes"] = routes
    return RolloutSpec.model_validate(
        {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "a"}},
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": []}},
            "strategy": {"canary": canary},
        }
    )


@dataclass(frozen=True)
class Write:
    router: str


def test_read_traffic_by_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[tuple[str, list[str]]] = []

    def read(api: Any, namespace: str, names: Iterable[str]) -> dict[str, Any]:
        asked.append((namespace, list(names)))
        return {n: None for n in names}

    adapter = traffic_io.ADAPTERS[KIND]
    monkeypatch.setitem(
        traffic_io.ADAPTERS,
        KIND,
        traffic_io.TrafficAdapter(adapter.names, read, adapter.write, adapter.resource),
    )
    assert traffic_io.read_traffic(None, "ns", spec(None)) == {}
    assert asked == []
    assert traffic_io.read_traffic(None, "ns", spec(["shop"])) == {KIND: {"shop": None}}
    assert asked == [("ns", ["shop"])]


def test_a_write_of_an_unknown_router_is_an_error() -> None:
    assert traffic_io.traffic_adapter(Write(KIND)) is traffic_io.ADAPTERS[KIND]
    with pytest.raises(ValueError, match="no shell writer for the traffic router 'mesh'"):
        traffic_io.traffic_adapter(Write("mesh"))
