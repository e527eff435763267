"""Analysis API: AnalysisTemplate spec, metric definitions, and the analysis status records.

A *metric* reads one source, whose field names its kind (:mod:`ramp.api.sources`): a
Prometheus query judged by CEL conditions over ``result``, or a comparison of the canary
revision with the stable one. Each time a metric is measured it gets one of
four :class:`Verdict` values; a :class:`Measurement` records it in the Rollout's status and a
:class:`MetricResult` keeps the per-metric counters that ``ramp.core.verdicts`` turns into a
decision (continue, proceed, pause, abort).

Validation happens twice: the API server applies the generated CRD schema (patterns,
bounds and the CEL ``x-kubernetes-validations`` below), and the operator re-validates with
these same pydantic models (the ``model_validator`` hooks mirror the CEL rules), so inline
metrics in a Rollout and AnalysisTemplates are held to the same rules.
"""

from __future__ import annotations

import re
from enum import StrEnum
from functools import partial
from typing import Annotated, Any, Self

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from ramp.api.base import ApiModel
from ramp.api.base import cel_rules as _cel
from ramp.api.durations import DURATION_PATTERN
from ramp.api.sources import (
    MAX_QUERY,
    MAX_TIMEOUT_SECONDS,
    MetricSources,
    parse_duration_seconds,
    source_rules,
)
from ramp.api.sources import seconds as _seconds

__all__ = ["MAX_QUERY", "MAX_TIMEOUT_SECONDS", "parse_duration_seconds"]  # re-exported

ARG_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
"""Argument names are identifiers: they appear as ``{{args.NAME}}`` in queries."""

METRIC_NAME_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"

MAX_CONDITION = 1024
MAX_METRICS = 16
MAX_ARGS = 32
MAX_TEMPLATES = 8
MAX_RUN_METRICS = 16
"""Metrics of one analysis run once its templates are resolved (issue 20: fair sharing)."""
MAX_INTERVAL_SECONDS = 24 * 3600

# Bounds of the status records: the operator truncates to these (see _truncate) so that a
# status patch never violates the CRD's status schema.
MAX_STATUS_QUERY = 1024
MAX_STATUS_MESSAGE = 1024
MAX_STATUS_VALUE = 256


class OnLimit(StrEnum):
    """What the rollout does when a metric reaches its inconclusive or error limit."""

    PAUSE = "Pause"
    """Hold the rollout where it is and say why; a retry (or resume) measures again."""
    ABORT = "Abort"
    """Treat the limit like a failure: roll back to the stable revision."""


class Verdict(StrEnum):
    """The outcome of one measurement of one metric."""

    PASS = "Pass"
    """The value met the success condition (or did not meet the failure condition).
    Only Pass counts toward the metric's ``count``."""
    FAIL = "Fail"
    """The value met the failure condition (or did not meet the success condition).
    More Fail verdicts than ``failureLimit`` abort the rollout."""
    INCONCLUSIVE = "Inconclusive"
    """Prometheus answered but the answer cannot judge the canary: empty result, NaN, too
    few requests, or neither condition matched. Never counts as a pass."""
    ERROR = "Error"
    """No usable answer: Prometheus unreachable, timeout, non-200, malformed response, a
    query or condition that cannot be evaluated. Says nothing about the canary."""


class MetricPhase(StrEnum):
    """Where one metric of an analysis run stands."""

    RUNNING = "Running"
    """Still measuring: fewer than ``count`` passes and no limit reached."""
    PASSED = "Passed"
    """``count`` Pass verdicts were recorded before any limit was exceeded."""
    FAILED = "Failed"
    """More Fail verdicts than ``failureLimit``: the canary is worse than allowed."""
    INCONCLUSIVE = "Inconclusive"
    """More Inconclusive verdicts than ``inconclusiveLimit``: not enough data to judge."""
    ERROR = "Error"
    """More consecutive Error verdicts than ``consecutiveErrorLimit``: the metric source
    is failing (for example Prometheus is unreachable)."""


_MACRO = "(all|one|exists|filter|map)\\\\s*\\\\("
"""A macro's name and its parenthesis (``one`` for ``exists_one``), kept short: the
API server's cost estimate of a rule grows with the length of its regular expression."""
_CONDITION_RULES = (
    (
        f"!self.matches('(?s){_MACRO}.*{_MACRO}')",
        "a condition may use at most one macro (all, exists, exists_one, filter, map), over result",
    ),
    (
        "!self.matches('(^|[-+*/%<>=!&|?:(,[])\\\\s*\\\\[')",
        "a condition may not use list literals",
    ),
)
"""Admission's part of bounding a condition (:mod:`ramp.analysis.celguard` is the whole
rule, checked by the operator): the freeze attack needs nested macros or list literals."""


def _condition_rules(text: str | None) -> str | None:
    """The CRD's condition rules, for objects the operator validates itself."""
    if text is None:
        return text
    cel_to_python = {"(?s)": "", "\\\\": "\\"}
    for rule, message in _CONDITION_RULES:
        pattern = rule.removeprefix("!self.matches('").removesuffix("')")
        for cel_form, python_form in cel_to_python.items():
            pattern = pattern.replace(cel_form, python_form)
        if re.search(pattern, text, re.S):
            raise ValueError(message)
    return text


_METRIC_RULES = (
    (
        "!has(self.interval) || duration(self.interval) >= duration('1s')",
        "interval must be at least 1s",
    ),
    (
        f"!has(self.interval) || duration(self.interval) <= duration('{MAX_INTERVAL_SECONDS}s')",
        "interval must be at most 24h",
    ),
    (
        "!has(self.initialDelay) || "
        f"duration(self.initialDelay) <= duration('{MAX_INTERVAL_SECONDS}s')",
        "initialDelay must be at most 24h",
    ),
)


Condition = Annotated[
    str | None,
    Field(
        default=None,
        min_length=1,
        max_length=MAX_CONDITION,
        json_schema_extra=_cel(*_CONDITION_RULES),
    ),
    AfterValidator(_condition_rules),
]


def _metric_rules(schema: dict[str, Any], cls: type[MetricSources]) -> None:
    """The CRD rules of a metric: its kinds' (:func:`source_rules`), then its own."""
    schema.update(_cel(*source_rules(cls), *_METRIC_RULES))


class MetricSchedule(ApiModel):
    """A metric's fields other than its source: name, schedule, limits, conditions."""

    name: str = Field(pattern=METRIC_NAME_PATTERN, max_length=63)
    interval: str = Field(default="10s", pattern=DURATION_PATTERN, max_length=32)
    """Time between two measurements (at least 1s)."""
    count: int = Field(default=1, ge=1, le=1000)
    """Pass verdicts needed for the metric to pass (background analysis keeps measuring)."""
    initial_delay: str | None = Field(default=None, pattern=DURATION_PATTERN, max_length=32)
    """Wait this long after the analysis starts before the first measurement."""
    failure_limit: int = Field(default=0, ge=0, le=1000)
    """Fail verdicts tolerated; one more aborts the rollout."""
    inconclusive_limit: int = Field(default=0, ge=0, le=1000)
    """Inconclusive verdicts tolerated; one more applies ``onInconclusive``."""
    consecutive_error_limit: int = Field(default=4, ge=0, le=1000)
    """Consecutive Error verdicts tolerated; one more applies ``onError``."""
    success_condition: Condition = None
    """CEL over ``result``; true means Pass. E.g. ``result < 0.01``."""
    failure_condition: Condition = None
    """CEL over ``result``; true means Fail. E.g. ``result >= 0.05``."""
    on_inconclusive: OnLimit = OnLimit.PAUSE
    on_error: OnLimit = OnLimit.PAUSE


class Metric(MetricSources, MetricSchedule):
    """One measured signal of an analysis, with its schedule and limits."""

    # Its provider is the one source field it sets (ramp.api.sources.MetricSources); the
    # base classes' order keeps the source fields last.
    model_config = {"json_schema_extra": _metric_rules}

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        """The CEL rules of the CRD, for objects the operator validates itself."""
        self.check_source(self.success_condition is not None or self.failure_condition is not None)
        if _seconds(self.interval) < 1:
            raise ValueError("interval must be at least 1s")
        if _seconds(self.interval) > MAX_INTERVAL_SECONDS:
            raise ValueError("interval must be at most 24h")
        if self.initial_delay is not None and _seconds(self.initial_delay) > MAX_INTERVAL_SECONDS:
            raise ValueError("initialDelay must be at most 24h")
        return self

    @property
    def interval_seconds(self) -> float:
        """``interval`` in seconds."""
        return parse_duration_seconds(self.interval)

    @property
    def initial_delay_seconds(self) -> float:
        """``initialDelay`` in seconds (0 when unset)."""
        return 0.0 if self.initial_delay is None else parse_duration_seconds(self.initial_delay)


class Arg(ApiModel):
    """A template argument: declared by a template (maybe with a default), valued by a ref."""

    name: str = Field(pattern=ARG_NAME_PATTERN, max_length=63)
    value: str | None = Field(default=None, max_length=1024)


_UNIQUE_METRICS = (
    "!has(self.metrics) || self.metrics.all(m, self.metrics.exists_one(n, n.name == m.name))",
    "metric names must be unique",
)
_UNIQUE_ARGS = (
    "!has(self.args) || self.args.all(a, self.args.exists_one(b, b.name == a.name))",
    "argument names must be unique",
)


def _unique(names: list[str], what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"{what} names must be unique: {name!r} appears twice")
        seen.add(name)


class AnalysisTemplateSpec(ApiModel):
    """The spec of an ``AnalysisTemplate``: declared arguments and the metrics to run."""

    model_config = {"json_schema_extra": _cel(_UNIQUE_METRICS, _UNIQUE_ARGS)}

    args: list[Arg] = Field(default_factory=list, max_length=MAX_ARGS)
    metrics: list[Metric] = Field(min_length=1, max_length=MAX_METRICS)

    @model_validator(mode="after")
    def _check_unique(self) -> Self:
        _unique([m.name for m in self.metrics], "metric")
        _unique([a.name for a in self.args], "argument")
        return self


class TemplateRef(ApiModel):
    """A reference to an ``AnalysisTemplate`` in the Rollout's namespace."""

    template_name: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", min_length=1, max_length=253
    )


_REF_RULES = (
    (
        "(has(self.templates) && size(self.templates) > 0)"
        " || (has(self.metrics) && size(self.metrics) > 0)",
        "an analysis needs at least one template or one inline metric",
    ),
    _UNIQUE_METRICS,
    _UNIQUE_ARGS,
)


class AnalysisRef(ApiModel):
    """What an ``analysis`` step (or background analysis) runs: templates and inline metrics.

    ``args`` give values to the templates' arguments (and are available to inline metrics
    as ``{{args.NAME}}``).
    """

    model_config = {"json_schema_extra": _cel(*_REF_RULES)}

    templates: list[TemplateRef] = Field(default_factory=list, max_length=MAX_TEMPLATES)
    args: list[Arg] = Field(default_factory=list, max_length=MAX_ARGS)
    metrics: list[Metric] = Field(default_factory=list, max_length=MAX_METRICS)

    @model_validator(mode="after")
    def _check_rules(self) -> Self:
        if not self.templates and not self.metrics:
            raise ValueError("an analysis needs at least one template or one inline metric")
        _unique([m.name for m in self.metrics], "metric")
        _unique([a.name for a in self.args], "argument")
        return self


class BackgroundAnalysis(AnalysisRef):
    """Analysis that runs beside the steps, from ``startingStep`` until the rollout ends."""

    model_config = {"json_schema_extra": _cel(*_REF_RULES)}

    starting_step: int | None = Field(default=None, ge=0, le=1000)
    """Index of the step from which the analysis runs (0 when unset)."""


def _truncate(value: Any, limit: int) -> Any:
    if isinstance(value, str) and len(value) > limit:
        return value[: limit - 1] + "…"
    return value


# Optional status strings cut to their bound on construction (never rejected).
StatusValue = Annotated[
    Annotated[str, Field(max_length=MAX_STATUS_VALUE)] | None,
    BeforeValidator(partial(_truncate, limit=MAX_STATUS_VALUE)),
]
StatusQuery = Annotated[
    Annotated[str, Field(max_length=MAX_STATUS_QUERY)] | None,
    BeforeValidator(partial(_truncate, limit=MAX_STATUS_QUERY)),
]
StatusMessage = Annotated[
    Annotated[str, Field(max_length=MAX_STATUS_MESSAGE)] | None,
    BeforeValidator(partial(_truncate, limit=MAX_STATUS_MESSAGE)),
]


class Measurement(ApiModel):
    """One measurement of one metric, as recorded in the Rollout's status.

    Strings are truncated to the status schema's bounds on construction, so a record
    never makes a status patch invalid.
    """

    metric: str = Field(max_length=63)
    verdict: Verdict
    time: str = Field(max_length=40)
    """When the measurement was taken (RFC 3339, UTC)."""
    value: StatusValue = None
    """The value as Prometheus gave it (``NaN`` included); none when there was no data."""
    query: StatusQuery = None
    """The query as sent, after substitution (the canary's for a compare metric)."""
    message: StatusMessage = None
    """Why this verdict, in words; never contains a secret."""
    revision: str | None = Field(default=None, max_length=63)
    """The canary revision under judgement."""
    analysis: str | None = Field(default=None, max_length=63)
    """Which analysis run took it, e.g. ``step-2`` or ``background``."""


class MetricResult(ApiModel):
    """Counters of one metric in the current analysis run (kept in status, one per metric).

    The bounded measurement list in status is for people; these counters are what the
    verdict accounting reads, so a long background analysis is judged on all of its
    measurements, not only on the ones still listed.
    """

    name: str = Field(max_length=63)
    phase: MetricPhase = MetricPhase.RUNNING
    passed: int = Field(default=0, ge=0)
    failed: int = Field(default=0, ge=0)
    inconclusive: int = Field(default=0, ge=0)
    errors: int = Field(default=0, ge=0)
    consecutive_errors: int = Field(default=0, ge=0)
    last_time: str | None = Field(default=None, max_length=40)
    last_verdict: Verdict | None = None
    last_value: StatusValue = None
    message: StatusMessage = None
    """The message of the last measurement."""

    @property
    def measured(self) -> int:
        """How many measurements were taken in this run."""
        return self.passed + self.failed + self.inconclusive + self.errors
