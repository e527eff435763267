"""Metric providers in the API: what each kind of metric reads, one field per kind.

A metric names its provider by the one source field it sets (``prometheus:``,
``compare:``): the field's name is the metric's **kind**, the key under which
:mod:`ramp.analysis.kinds` registers the code that validates, measures and describes it.
:class:`MetricSources` holds those fields; :class:`ramp.api.analysis.Metric` inherits them,
and the rules every metric obeys are generated from them (:func:`source_rules`): exactly
one source, and CEL conditions required or refused as the source's class says.

A new provider adds here its source model (a :class:`MetricSource`) and one optional field
of :class:`MetricSources`; ``make crds`` regenerates the CRDs.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, ClassVar, Self

from pydantic import Field, model_validator

from ramp.api.base import ApiModel, cel_rules
from ramp.api.durations import DURATION_PATTERN, parse_duration

ADDRESS_PATTERN = r"^https?://[^\s/?#@]+(/[^\s?#]*)?$"
"""``http(s)://host[:port][/path]``: no credentials in the URL, no query, no fragment."""

MAX_QUERY = 4096
MAX_TIMEOUT_SECONDS = 60
"""Ceiling of a metric's query timeout: a measurement holds its namespace's measurement
slot at most this long (plus a margin)."""


def parse_duration_seconds(text: str) -> float:
    """Seconds in a duration string such as ``1m30s`` or ``500ms``.

    >>> parse_duration_seconds("1m30s")
    90.0
    >>> parse_duration_seconds("250ms")
    0.25

    Raises ValueError for anything :data:`DURATION_PATTERN` does not accept.
    """
    return parse_duration(text).total_seconds()


def seconds(text: str) -> float:
    """``text`` in seconds; infinity for a duration too large to represent (or beyond
    the longest any field accepts: ``parse_duration`` refuses those; the pattern has
    refused any other string before this runs)."""
    try:
        return parse_duration_seconds(text)
    except (OverflowError, ValueError):
        return float("inf")


TIMEOUT_RULE = (
    f"!has(self.timeout) || (duration(self.timeout) >= duration('100ms') && "
    f"duration(self.timeout) <= duration('{MAX_TIMEOUT_SECONDS}s'))",
    f"timeout must be between 100ms and {MAX_TIMEOUT_SECONDS}s",
)


def check_timeout(timeout: str) -> None:
    """The CRD's :data:`TIMEOUT_RULE`, for objects the operator validates itself."""
    if not 0.1 <= seconds(timeout) <= MAX_TIMEOUT_SECONDS:
        raise ValueError(TIMEOUT_RULE[1])


class Conditions(StrEnum):
    """Whether a kind of metric is judged by the metric's CEL conditions over ``result``."""

    REQUIRED = "required"
    """A ``successCondition`` or a ``failureCondition`` is needed (e.g. a Prometheus query)."""
    REFUSED = "refused"
    """The source judges by its own fields; conditions are an error (e.g. ``compare``)."""
    OPTIONAL = "optional"
    """The source has its own verdict and conditions may refine it."""


class MetricSource(ApiModel):
    """Base of a provider's source model (the value of a metric's kind field)."""

    conditions: ClassVar[Conditions] = Conditions.REQUIRED
    refused_conditions: ClassVar[str] = ""
    """The error when conditions are :attr:`Conditions.REFUSED` (why, in words)."""

    @property
    def timeout_seconds(self) -> float:
        """How long one measurement may take, in seconds (its slot's deadline follows)."""
        timeout = getattr(self, "timeout", None)
        return parse_duration_seconds(timeout) if isinstance(timeout, str) else 10.0


class PrometheusSource(MetricSource):
    """An instant query against a Prometheus server on the operator's allow-list."""

    model_config = {"json_schema_extra": cel_rules(TIMEOUT_RULE)}

    address: str = Field(pattern=ADDRESS_PATTERN, max_length=2048)
    """Base URL of the Prometheus HTTP API, e.g. ``http://prometheus.monitoring:9090``."""
    query: str = Field(min_length=1, max_length=MAX_QUERY)
    """PromQL with placeholders ``{{args.NAME}}``, ``{{rollout}}``, ``{{namespace}}``,
    ``{{canaryRevision}}``, ``{{stableRevision}}``; substituted values are escaped."""
    timeout: str = Field(default="10s", pattern=DURATION_PATTERN, max_length=32)
    """How long one query may take before the measurement is an Error (100ms to 60s)."""

    @model_validator(mode="after")
    def _check_timeout(self) -> Self:
        check_timeout(self.timeout)
        return self


class CompareSource(ApiModel):
    """The queries of a canary-versus-stable comparison (each run once per revision)."""

    model_config = {"json_schema_extra": cel_rules(TIMEOUT_RULE)}

    address: str = Field(pattern=ADDRESS_PATTERN, max_length=2048)
    query: str = Field(min_length=1, max_length=MAX_QUERY)
    """The ratio to compare (e.g. error ratio), with ``{{revision}}`` for the revision."""
    count_query: str = Field(min_length=1, max_length=MAX_QUERY)
    """The request count behind the ratio, with ``{{revision}}``; run for the canary."""
    timeout: str = Field(default="10s", pattern=DURATION_PATTERN, max_length=32)
    """How long each query may take (100ms to 60s)."""

    @model_validator(mode="after")
    def _check_timeout(self) -> Self:
        check_timeout(self.timeout)
        return self


class Compare(MetricSource):
    """Judge the canary against the stable revision instead of a fixed threshold.

    Fail when ``canary - stable > maxIncrease``; Inconclusive when the canary's count is
    below ``minCount`` or either ratio is missing or NaN; Pass otherwise.
    """

    conditions = Conditions.REFUSED
    refused_conditions = "is judged by maxIncrease and minCount, not by conditions"

    prometheus: CompareSource
    max_increase: float = Field(ge=0)
    """How much the canary's ratio may exceed the stable's, absolute (0.01 = 1 point)."""
    min_count: float = Field(default=1, ge=0)
    """Fewer canary requests than this (from ``countQuery``) is Inconclusive."""

    @property
    def timeout_seconds(self) -> float:
        return parse_duration_seconds(self.prometheus.timeout)


class MetricSources(ApiModel):
    """The providers a metric can name: it sets exactly one of these fields, whose name is
    its kind (one line per provider; the registry in :mod:`ramp.analysis.kinds` has the
    same keys, a unit test checks both)."""

    prometheus: PrometheusSource | None = None
    compare: Compare | None = None

    @classmethod
    def kinds(cls) -> dict[str, type[MetricSource]]:
        """Each kind (the field's name) with its source model, in declaration order: the
        fields typed ``SomeSource | None``."""
        kinds = _KINDS.get(cls)
        if kinds is None:
            found = {name: _source_type(info.annotation) for name, info in cls.model_fields.items()}
            kinds = _KINDS[cls] = {name: s for name, s in found.items() if s is not None}
        return kinds

    @property
    def kind(self) -> str:
        """The kind of this metric: the name of its one source field."""
        for name in type(self).kinds():
            if getattr(self, name) is not None:
                return name
        raise ValueError(_exactly_one(type(self)))

    @property
    def source(self) -> MetricSource:
        """The value of the one source field."""
        source: MetricSource = getattr(self, self.kind)
        return source

    @property
    def timeout_seconds(self) -> float:
        """The source's measurement timeout, in seconds."""
        return self.source.timeout_seconds

    def check_source(self, has_condition: bool) -> None:
        """The rules of :func:`source_rules`, for objects the operator validates itself."""
        kinds = type(self).kinds()
        if sum(getattr(self, name) is not None for name in kinds) != 1:
            raise ValueError(_exactly_one(type(self)))
        source_type = kinds[self.kind]
        if source_type.conditions is Conditions.REQUIRED and not has_condition:
            raise ValueError(f"a {self.kind} metric needs a successCondition or a failureCondition")
        if source_type.conditions is Conditions.REFUSED and has_condition:
            raise ValueError(f"a {self.kind} metric {source_type.refused_conditions}")


_KINDS: dict[type[MetricSources], dict[str, type[MetricSource]]] = {}


def _source_type(annotation: Any) -> type[MetricSource] | None:
    for arg in getattr(annotation, "__args__", ()):
        if isinstance(arg, type) and issubclass(arg, MetricSource):
            return arg
    return None


def _exactly_one(cls: type[MetricSources]) -> str:
    *first, last = cls.kinds()
    names = f"{', '.join(first)} or {last}" if first else last
    return f"a metric has exactly one of {names}"


def source_rules(cls: type[MetricSources]) -> list[tuple[str, str]]:
    """The CEL rules of the kinds (for the CRD): exactly one source, conditions as each
    source's :class:`Conditions` says."""
    kinds = cls.kinds()
    count = " + ".join(f"(has(self.{name}) ? 1 : 0)" for name in kinds)
    rules = [(f"{count} == 1", _exactly_one(cls))]
    has_condition = "has(self.successCondition) || has(self.failureCondition)"
    no_condition = "(!has(self.successCondition) && !has(self.failureCondition))"
    for name, source_type in kinds.items():
        if source_type.conditions is Conditions.REQUIRED:
            rules.append(
                (
                    f"!has(self.{name}) || {has_condition}",
                    f"a {name} metric needs a successCondition or a failureCondition",
                )
            )
        elif source_type.conditions is Conditions.REFUSED:
            rules.append(
                (
                    f"!has(self.{name}) || {no_condition}",
                    f"a {name} metric {source_type.refused_conditions}",
                )
            )
    return rules
