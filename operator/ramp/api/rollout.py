"""The Rollout resource: the spec models here, the status models in :mod:`ramp.api.status`
(re-exported here); together the one source of truth for the CRD."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from ramp.api.analysis import AnalysisRef, BackgroundAnalysis
from ramp.api.base import ApiModel
from ramp.api.durations import DURATION_PATTERN, duration_rule
from ramp.api.routes import HeaderRouteMatch, HTTPRoutes, SetHeaderRouteStep, http_routes_field
from ramp.api.status import (
    MAX_STEP_HISTORY,
    AnalysisRun,
    BlueGreenStatus,
    Condition,
    HandledTokens,
    Phase,
    ReleaseClock,
    RolloutStatus,
    StepRecord,
    Weights,
    WorkloadStatus,
)

_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE_PATTERN)]
"""Kubernetes label values are at most 63 characters (bounds the CEL cost too) of their
own syntax: the API server takes no Rollout whose labels no Deployment could carry."""


def _cel(*rules: tuple[str, str]) -> dict[str, Any]:
    """``x-kubernetes-validations`` for a model or field: (CEL rule, message) pairs."""
    return {"x-kubernetes-validations": [{"rule": r, "message": m} for r, m in rules]}


class LabelSelectorRequirement(ApiModel):
    """One ``matchExpressions`` entry of a label selector."""

    key: str = Field(max_length=317)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[LabelValue] | None = Field(default=None, max_length=64)


class LabelSelector(ApiModel):
    """Which pods belong to the Rollout; must match the template's labels."""

    match_labels: dict[str, LabelValue] | None = Field(
        default=None, json_schema_extra={"maxProperties": 64}
    )
    match_expressions: list[LabelSelectorRequirement] | None = Field(default=None, max_length=16)


class TemplateMetadata(ApiModel):
    """Labels and annotations of the pod template."""

    labels: dict[str, LabelValue] | None = Field(
        default=None, json_schema_extra={"maxProperties": 64}
    )
    annotations: dict[str, str] | None = Field(
        default=None, json_schema_extra={"maxProperties": 64}
    )


_POD_SPEC_SCHEMA: dict[str, Any] = {
    "x-kubernetes-preserve-unknown-fields": True,
    "required": ["containers"],
    "properties": {
        "containers": {
            "type": "array",
            "minItems": 1,
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        }
    },
}


class PodTemplate(ApiModel):
    """The pod template of the workload, as in a Deployment."""

    metadata: TemplateMetadata
    spec: dict[str, Any] = Field(json_schema_extra=_POD_SPEC_SCHEMA)


class PauseStep(ApiModel):
    """Hold the rollout: for ``duration``, or until promoted when no duration is given."""

    duration: str | None = Field(
        default=None, pattern=DURATION_PATTERN, max_length=32, json_schema_extra=duration_rule()
    )


class Step(ApiModel):
    """One step of a canary: exactly one of ``setWeight``, ``pause`` or ``analysis``."""

    model_config = {
        "json_schema_extra": _cel(
            (
                "[has(self.setWeight), has(self.pause), has(self.analysis),"
                " has(self.setHeaderRoute)].filter(x, x).size() == 1",
                "a step has exactly one of setWeight, pause, analysis or setHeaderRoute",
            )
        )
    }

    set_weight: int | None = Field(default=None, ge=0, le=100)
    pause: PauseStep | None = None
    analysis: AnalysisRef | None = None
    set_header_route: SetHeaderRouteStep | None = None


class CanaryStrategy(ApiModel):
    """Replica-ratio canary: steps, shifting limits, optional Services and analysis."""

    model_config = {
        "json_schema_extra": _cel(
            (
                "!has(self.maxSurge) || type(self.maxSurge) == int ? true"
                " : string(self.maxSurge).matches('^[0-9]{1,3}%$')",
                "maxSurge must be an integer or a percentage like '25%'",
            ),
            (
                "!has(self.maxUnavailable) || type(self.maxUnavailable) == int ? true"
                " : string(self.maxUnavailable).matches('^[0-9]{1,3}%$')",
                "maxUnavailable must be an integer or a percentage like '25%'",
            ),
            (
                "!has(self.maxSurge) || !(type(self.maxSurge) == int ? self.maxSurge == 0"
                " : string(self.maxSurge) == '0%') || (has(self.maxUnavailable)"
                " && (type(self.maxUnavailable) == int ? self.maxUnavailable != 0"
                " : string(self.maxUnavailable) != '0%'))",
                "maxSurge and maxUnavailable must not both be zero (maxUnavailable defaults "
                "to 0): nothing could move",
            ),
            (
                "!has(self.stableService) || !has(self.canaryService)"
                " || self.stableService != self.canaryService",
                "stableService and canaryService must name different Services",
            ),
            (
                "!has(self.httpRoutes) || (has(self.stableService) && has(self.canaryService))",
                "httpRoutes needs stableService and canaryService (the route's backends)",
            ),
        )
    }

    max_surge: int | str | None = Field(default=None, json_schema_extra={"minimum": 0})
    max_unavailable: int | str | None = Field(default=None, json_schema_extra={"minimum": 0})
    stable_service: str | None = Field(default=None, pattern=_NAME, max_length=63)
    canary_service: str | None = Field(default=None, pattern=_NAME, max_length=63)
    http_routes: HTTPRoutes | None = http_routes_field()
    """HTTPRoutes whose weights carry the steps' weights (docs/gateway-api.md)."""
    steps: list[Step] = Field(default_factory=list, max_length=64)
    analysis: BackgroundAnalysis | None = None
    abort_scale_down: Literal["Gradual", "Immediate"] | None = None

    @property
    def surge(self) -> int | str:
        """``maxSurge`` with its default (25 %)."""
        return "25%" if self.max_surge is None else self.max_surge

    @property
    def unavailable(self) -> int | str:
        """``maxUnavailable`` with its default (0: never below the full count)."""
        return 0 if self.max_unavailable is None else self.max_unavailable


class BlueGreenStrategy(ApiModel):
    """Run green beside blue, verify it, flip the active Service at once, keep blue warm."""

    model_config = {
        "json_schema_extra": _cel(
            (
                "!has(self.previewService) || self.previewService != self.activeService",
                "activeService and previewService must name different Services",
            ),
            (
                "!has(self.httpRoutes) || has(self.previewService)",
                "httpRoutes needs previewService (the route's backends: activeService and "
                "previewService)",
            ),
            (
                "!has(self.previewHeaderRoute) || has(self.httpRoutes)",
                "previewHeaderRoute needs httpRoutes (a rule Ramp adds to them)",
            ),
        )
    }

    active_service: str = Field(pattern=_NAME, max_length=63)
    """Its selector is pinned to the active revision."""
    preview_service: str | None = Field(default=None, pattern=_NAME, max_length=63)
    """Selects the green revision once it has ready pods (the active one otherwise)."""
    preview_replica_count: int | None = Field(default=None, ge=1, le=10000)
    """Green runs this many until promotion starts (default: full size)."""
    auto_promotion_enabled: bool | None = None
    """False: wait for a promote (default true)."""
    auto_promotion_seconds: int | None = Field(default=None, ge=0, le=86400)
    """Promote by itself this long after green is ready and verified (default 0)."""
    scale_down_delay_seconds: int | None = Field(default=None, ge=0, le=86400)
    """Blue stays warm at least this long after the switch (default 30)."""
    abort_scale_down_delay_seconds: int | None = Field(default=None, ge=0, le=86400)
    """Green stays this long after an abort (default 30; 0 = at once)."""
    pre_promotion_analysis: AnalysisRef | None = None
    """Gates the switch."""
    post_promotion_analysis: AnalysisRef | None = None
    """Runs after the switch while blue is warm; a failure flips back."""
    http_routes: HTTPRoutes | None = http_routes_field()
    """HTTPRoutes that switch by their weights: active Service 100, preview 0, flipped at
    once (docs/gateway-api.md)."""
    preview_header_route: list[HeaderRouteMatch] | None = Field(default=None, max_length=16)
    """While a release runs, requests matching every header reach the preview Service
    (a rule Ramp adds to the routes; removed at completion and abort)."""

    @property
    def auto_promotion(self) -> bool:
        return self.auto_promotion_enabled is not False

    @property
    def scale_down_delay(self) -> int:
        return 30 if self.scale_down_delay_seconds is None else self.scale_down_delay_seconds

    @property
    def abort_scale_down_delay(self) -> int:
        return (
            30
            if self.abort_scale_down_delay_seconds is None
            else self.abort_scale_down_delay_seconds
        )


class Strategy(ApiModel):
    """How a new revision is rolled out: exactly one of ``canary`` or ``blueGreen``."""

    model_config = {
        "json_schema_extra": _cel(
            (
                "has(self.canary) != has(self.blueGreen)",
                "exactly one strategy must be set: canary or blueGreen",
            ),
        )
    }

    canary: CanaryStrategy | None = None
    blue_green: BlueGreenStrategy | None = None


class WorkloadRef(ApiModel):
    """An existing Deployment that the Rollout adopts instead of an inline template."""

    model_config = {
        "json_schema_extra": _cel(
            (
                "self.name == oldSelf.name",
                "workloadRef.name is immutable: remove workloadRef (the Deployment is given "
                "back) before referring to another one",
            ),
        )
    }

    api_version: Literal["apps/v1"] = "apps/v1"
    kind: Literal["Deployment"]
    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
    scale_down: Literal["never", "onsuccess", "progressively"] | None = None
    """What happens to the Deployment's own pods (default ``progressively``): scaled down
    as Ramp's become ready, at once when Ramp's stable is ready, or never (both run)."""

    @property
    def mode(self) -> str:
        return self.scale_down or "progressively"


class RolloutSpec(ApiModel):
    """The desired state of a Rollout."""

    model_config = {
        "json_schema_extra": _cel(
            (
                "!has(self.template) || !has(self.selector) || !has(self.selector.matchLabels)"
                " || self.selector.matchLabels.all(k,"
                " has(self.template.metadata.labels) && k in self.template.metadata.labels"
                " && self.template.metadata.labels[k] == self.selector.matchLabels[k])",
                "selector.matchLabels must match template.metadata.labels",
            ),
            (
                "!has(self.selector) || has(self.selector.matchLabels)"
                " || has(self.selector.matchExpressions)",
                "selector must not be empty",
            ),
            (
                "has(self.template) != has(self.workloadRef)",
                "exactly one of template or workloadRef must be set",
            ),
            (
                "!has(oldSelf.selector) || has(self.selector) && self.selector == oldSelf.selector",
                "spec.selector is immutable (as a Deployment's): its running pods would no "
                "longer be selected; create a new Rollout to change it",
            ),
            (
                "has(self.selector) || has(self.workloadRef)",
                "selector is required with template (with workloadRef it defaults to the "
                "Deployment's)",
            ),
            (
                "!has(self.strategy.blueGreen) || !has(self.strategy.blueGreen.previewReplicaCount)"
                " || !has(self.replicas) || self.strategy.blueGreen.previewReplicaCount"
                " <= self.replicas",
                "strategy.blueGreen.previewReplicaCount must not exceed replicas",
            ),
        )
    }

    replicas: int = Field(default=1, ge=0, le=10000)
    selector: LabelSelector = Field(default_factory=LabelSelector)
    template: PodTemplate | None = None
    workload_ref: WorkloadRef | None = None
    """Adopt this Deployment: its pod template is rolled out (see docs/workloadref.md)."""
    progress_deadline_seconds: int | None = Field(default=None, ge=1, le=86400)
    paused: bool | None = None
    revision_history_limit: int | None = Field(default=None, ge=0, le=10)
    track_config: bool | None = None
    """Tracked configuration: the ConfigMaps and Secrets the template references (env,
    envFrom, volumes, projected volumes) are part of the revision. A change of their
    data is a new revision rolled out through the steps; each revision's pods read an
    immutable copy made for it (see docs/config-tracking.md)."""
    strategy: Strategy

    @property
    def deadline_seconds(self) -> int:
        """``progressDeadlineSeconds`` with its default (600)."""
        return 600 if self.progress_deadline_seconds is None else self.progress_deadline_seconds

    @property
    def history_limit(self) -> int:
        """``revisionHistoryLimit`` with its default (1 old revision kept at zero)."""
        return 1 if self.revision_history_limit is None else self.revision_history_limit

    @property
    def canary(self) -> CanaryStrategy:
        """The canary strategy; for a blue-green Rollout an empty one (no steps, no
        Services), so that code common to both strategies reads one shape."""
        return self.strategy.canary or _NO_CANARY

    @property
    def blue_green(self) -> BlueGreenStrategy | None:
        return self.strategy.blue_green

    @property
    def http_routes(self) -> list[str]:
        """The HTTPRoutes the strategy names (canary or blue-green)."""
        bg = self.strategy.blue_green
        return list((bg.http_routes if bg is not None else self.canary.http_routes) or [])


_NO_CANARY = CanaryStrategy()


class Rollout(ApiModel):
    """A workload rolled out progressively (``ramp.dev/v1alpha1``)."""

    model_config = {"extra": "ignore"}

    api_version: str = "ramp.dev/v1alpha1"
    kind: str = "Rollout"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: RolloutSpec
    status: RolloutStatus | None = None


__all__ = [
    "LABEL_VALUE_PATTERN",
    "MAX_STEP_HISTORY",
    "AnalysisRun",
    "BlueGreenStatus",
    "BlueGreenStrategy",
    "CanaryStrategy",
    "Condition",
    "HandledTokens",
    "LabelSelector",
    "LabelSelectorRequirement",
    "LabelValue",
    "PauseStep",
    "Phase",
    "PodTemplate",
    "ReleaseClock",
    "Rollout",
    "RolloutSpec",
    "RolloutStatus",
    "Step",
    "StepRecord",
    "Strategy",
    "TemplateMetadata",
    "Weights",
    "WorkloadRef",
    "WorkloadStatus",
]
