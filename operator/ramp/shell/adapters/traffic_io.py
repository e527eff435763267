"""The shell's side of the traffic routers beyond the Service pins, by the router's kind
(the core's side is :func:`ramp.core.routers.routers_for`): what to read for a Rollout
(``Observed.traffic[kind]``) and who carries out the writes a router planned
(``Plan.traffic`` items whose ``router`` is that kind). A new router: one entry in
:data:`ADAPTERS` (its reader and writer in a module of their own)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ramp.api.rollout import RolloutSpec
from ramp.core.httproute import KIND as HTTPROUTE
from ramp.shell.adapters.gateway_routes import read_routes, write_routes


@dataclass(frozen=True)
class TrafficAdapter:
    """How the shell reads and writes one kind of router's objects."""

    names: Callable[[RolloutSpec], Sequence[str]]
    """The objects of this kind a Rollout names (none: nothing is read)."""
    read: Callable[[Any, str, Iterable[str]], Mapping[str, Any]]
    """``(api client, namespace, names)``: what the router reads in ``Observed.traffic``."""
    write: Callable[[Any, str, Iterable[object]], float | None]
    """``(api client, namespace, writes)``: carry them out; a delay to look again when
    one was refused (the object changed in between)."""
    resource: str
    """The name the API write counters give its writes."""


ADAPTERS: dict[str, TrafficAdapter] = {
    HTTPROUTE: TrafficAdapter(
        lambda spec: spec.http_routes, read_routes, write_routes, "httproutes"
    ),
}


def read_traffic(api_client: Any, namespace: str, spec: RolloutSpec) -> dict[str, Any]:
    """``Observed.traffic``: for each router kind the Rollout names objects of, what its
    reader found (an error of the API other than "not found" is raised)."""
    found: dict[str, Any] = {}
    for kind, adapter in ADAPTERS.items():
        names = adapter.names(spec)
        if names:
            found[kind] = adapter.read(api_client, namespace, names)
    return found


def traffic_adapter(write: object) -> TrafficAdapter:
    """The adapter of the router that planned ``write``."""
    kind = getattr(write, "router", None)
    adapter = ADAPTERS.get(kind) if isinstance(kind, str) else None
    if adapter is None:
        raise ValueError(f"no shell writer for the traffic router {kind!r}")
    return adapter


__all__ = ["ADAPTERS", "TrafficAdapter", "read_traffic", "traffic_adapter"]
