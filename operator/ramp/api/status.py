"""The status of a Rollout: what the operator writes (the CRD's ``status``; only the
operator writes it). Re-exported by :mod:`ramp.api.rollout` beside the spec."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field

from ramp.api.analysis import Measurement, MetricResult
from ramp.api.base import ApiModel
from ramp.api.routes import RouteStatus


class Phase(StrEnum):
    """The one-word state of a Rollout, derived from the rest of its status."""

    HEALTHY = "Healthy"
    """The stable revision runs at full count and nothing is in progress."""
    PROGRESSING = "Progressing"
    """A canary is being shifted, or the stable is converging to its count."""
    PAUSED = "Paused"
    """Held: by ``spec.paused``, an indefinite pause step, or an inconclusive gate."""
    ABORTED = "Aborted"
    """The canary was rolled back to stable; it stays so until retried or replaced."""
    DEGRADED = "Degraded"
    """The spec is invalid or the workload cannot be made to match it."""


class Weights(ApiModel):
    """Canary weight in percent: what the step asks for and what the ready pods give.

    With no release in progress (no canary) the weights are the stable revision's:
    100 desired, and 100 actual once one of its pods is ready (0 while none is)."""

    desired: int = 0
    actual: int = 0


class StepRecord(ApiModel):
    """A step of the current (or last) rollout that completed by itself."""

    index: int
    completed_at: str


MAX_STEP_HISTORY = 64


class Condition(ApiModel):
    """A Kubernetes-style condition."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = ""
    message: str = ""
    last_transition_time: str | None = None


class HandledTokens(ApiModel):
    """The last request token of each verb that the operator acted on."""

    promote: str | None = None
    promote_full: str | None = None
    abort: str | None = None
    retry: str | None = None
    rollback: str | None = None


class AnalysisRun(ApiModel):
    """One analysis run of the current canary: an ``analysis`` step or the background."""

    name: str = Field(max_length=32)
    """``step-N`` (the N-th step, counting from 1) or ``background``."""
    revision: str = Field(max_length=63)
    """The canary revision it judges."""
    started_at: str = Field(max_length=40)
    metrics: list[MetricResult] = Field(default_factory=list, max_length=16)
    """Counters per metric: what the verdict accounting reads."""


class BlueGreenStatus(ApiModel):
    """Where a blue-green release stands."""

    active_revision: str | None = Field(default=None, max_length=63)
    preview_revision: str | None = Field(default=None, max_length=63)
    """The revision the preview Service selects."""
    promoted: bool | None = None
    """The switch was granted (auto-promotion or a promote): green goes to full size."""
    skip_analysis: bool | None = None
    """promote-full: the switch skips the pre-promotion analysis."""
    verified_at: str | None = Field(default=None, max_length=40)
    """When green was first ready and verified (auto-promotion counts from here)."""
    switched_at: str | None = Field(default=None, max_length=40)
    """When the active Service moved to green."""
    warm_revision: str | None = Field(default=None, max_length=63)
    """After a completed release: the previous active revision, still at full size."""
    warm_until: str | None = Field(default=None, max_length=40)
    """The rollback window: blue stays warm (and a rollback flips back) until then."""
    aborted_at: str | None = Field(default=None, max_length=40)
    waiting_for: str | None = Field(default=None, max_length=256)
    """Why the switch has not happened yet."""


class WorkloadStatus(ApiModel):
    """The adopted Deployment: where adoption or give-back stands, and any fight over it."""

    name: str = Field(max_length=253)
    state: Literal["Adopting", "Adopted", "GivingBack"]
    replicas: int | None = None
    """The Deployment's ``spec.replicas`` as last seen."""
    ready_replicas: int | None = None
    conflict_field: str | None = Field(default=None, max_length=64)
    """A field of the Deployment someone else keeps setting (``spec.replicas``)."""
    conflict_manager: str | None = Field(default=None, max_length=128)
    conflicts: int | None = None
    retry_at: str | None = Field(default=None, max_length=40)
    """Ramp leaves the fought-over field alone until then (backing off, never flapping)."""
    asserted_at: str | None = Field(default=None, max_length=40)


class ReleaseClock(ApiModel):
    """The release in progress: since when, and how long it was held (phase ``Paused``).

    The operator's duration histograms read it when the release ends
    (:mod:`ramp.core.release_clock`)."""

    revision: str = Field(max_length=63)
    """The canary (green) revision being released."""
    started_at: str = Field(max_length=40)
    paused_seconds: int = 0
    """Seconds spent in the phase ``Paused`` in earlier holds of this release."""
    paused_since: str | None = Field(default=None, max_length=40)
    """The current hold started then (None: not held now)."""


class RolloutStatus(ApiModel):
    """The observed state of a Rollout, written only by the operator.

    Unknown fields are ignored, not refused: a status written by a newer operator
    version must not turn every Rollout Degraded after a downgrade."""

    model_config = {"extra": "ignore"}

    observed_generation: int | None = None
    phase: Phase | None = None
    message: str | None = None
    stable_revision: str | None = None
    canary_revision: str | None = None
    current_step_index: int | None = None
    step_started_at: str | None = None
    progressed_at: str | None = None
    """While the rollout waits for replicas: when it last made progress (the progress
    deadline counts from here)."""
    weights: Weights | None = None
    routes: list[RouteStatus] | None = Field(default=None, max_length=8)
    """Each HTTPRoute of the strategy: the weight wanted and the one acknowledged."""
    replicas: int | None = None
    ready_replicas: int | None = None
    canary_replicas: int | None = None
    canary_ready_replicas: int | None = None
    stable_replicas: int | None = None
    stable_ready_replicas: int | None = None
    selector: str | None = None
    aborted_revision: str | None = None
    abort_reason: str | None = None
    abort_message: str | None = None
    held_by_spec_paused: bool | None = None
    conditions: list[Condition] | None = Field(default=None, max_length=16)
    analysis_runs: list[AnalysisRun] | None = Field(default=None, max_length=4)
    measurements: list[Measurement] | None = Field(default=None, max_length=64)
    """The most recent gate measurements of this rollout (newest last)."""
    step_history: list[StepRecord] | None = Field(default=None, max_length=MAX_STEP_HISTORY)
    """Steps of the current (or last) rollout that completed by themselves, in order
    (written with the step's own status patch instead of an Event per step)."""
    handled_tokens: HandledTokens | None = None
    blue_green: BlueGreenStatus | None = None
    workload_observed_generation: int | None = None
    """The generation of the referenced Deployment whose template was consumed."""
    workload: WorkloadStatus | None = None
    release: ReleaseClock | None = None
    """The release in progress (canary or green, not aborted): its start and holds."""
