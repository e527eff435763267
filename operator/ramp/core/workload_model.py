"""The adopted Deployment as the planner sees it, and what the plan asks of it. Data only.

:class:`Workload` is the referenced Deployment (``spec.workloadRef``) summarised by the
shell; :class:`WorkloadPatch` is one merge patch of it (replicas, paused, Ramp's
annotations). See :mod:`ramp.core.workload` for the decisions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

MANAGED_ANNOTATION = "ramp.dev/workload-of"
"""On an adopted Deployment: the name of the Rollout that holds it (paused)."""
SCALED_TO_ANNOTATION = "ramp.dev/scaled-to"
"""On an adopted Deployment: the ``spec.replicas`` Ramp last wrote (a different value
means someone else set it: a GitOps sync, a person)."""
ORIGINAL_ANNOTATION = "ramp.dev/original-replicas"
"""On an adopted Deployment: its ``spec.replicas`` when Ramp adopted it."""
WATCHED_VALUE = "Adopted"
"""On an adopted Deployment, the value of the ``ramp.dev/rollout`` label: the operator's
Deployment watch selects that label on the API server, and this value can never be a
Rollout's name (names are lowercase), so nothing that lists a Rollout's children by
``ramp.dev/rollout=<name>`` ever sees the adopted Deployment as one."""
GIVE_BACK_FINALIZER = "ramp.dev/give-back"
"""On a Rollout that holds a Deployment: deletion waits until it is given back."""


@dataclass(frozen=True)
class Workload:
    """The referenced Deployment (``found`` False: it does not exist)."""

    name: str
    found: bool = True
    template: Mapping[str, Any] | None = None
    selector: Mapping[str, Any] | None = None
    replicas: int = 0
    ready: int = 0
    current: int = 0
    """``status.replicas``: its pods that exist."""
    updated: int = 0
    """``status.updatedReplicas``: its pods of its current template."""
    paused: bool = False
    generation: int = 0
    observed_generation: int = 0
    managed_by: str | None = None
    scaled_to: int | None = None
    original: int | None = None
    replicas_manager: str | None = None
    """The field manager that last set ``spec.replicas`` (from managedFields)."""
    paused_manager: str | None = None
    watched: bool = True
    """It carries the label the operator's watch selects (``WATCHED_VALUE``)."""

    @property
    def settled(self) -> bool:
        return self.observed_generation >= self.generation


@dataclass(frozen=True)
class WorkloadPatch:
    """A merge patch of the adopted Deployment (None / absent: leave it)."""

    name: str
    replicas: int | None = None
    paused: bool | None = None
    annotations: Mapping[str, str | None] = field(default_factory=dict)
    labels: Mapping[str, str | None] = field(default_factory=dict)
