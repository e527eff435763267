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
from typing import Any, ClassVar, Literal, Self

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


# The checks (issue 24): web, job and webhook. A check is a metric like a Prometheus query
# (one of four verdicts per measurement, the same limits and decision record); what
# differs is where the verdict comes from (ramp.analysis.kinds.web, .job, .webhook).
# Secrets (header values, the webhook's signing key) come from Secrets of the Rollout's
# namespace, named here and read by the operator when it measures; never inline.

CHECK_URL_PATTERN = r"^https?://[^\s/?#@]+(/[^\s#]*)?$"
"""``http(s)://host[:port][/path][?query]``: no credentials in the URL, no fragment."""

MAX_JOB_DEADLINE_SECONDS = 3600
"""The longest a check Job may run (its ``activeDeadlineSeconds``)."""
JOB_GRACE_SECONDS = 30.0
"""Beyond a check Job's deadline, how long the operator waits to see it end."""
MAX_BODY = 16 * 1024
MAX_HEADERS = 16
_SECRET_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
_SECRET_KEY = r"^[-._a-zA-Z0-9]+$"
_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"


class SecretKeyRef(ApiModel):
    """A key of a Secret in the Rollout's namespace."""

    name: str = Field(pattern=_SECRET_NAME, max_length=253)
    key: str = Field(pattern=_SECRET_KEY, max_length=253)


class HeaderValueFrom(ApiModel):
    secret_key_ref: SecretKeyRef


class Header(ApiModel):
    """One request header: a literal ``value`` or one read from a Secret."""

    model_config = {
        "json_schema_extra": cel_rules(
            (
                "has(self.value) != has(self.valueFrom)",
                "a header has exactly one of value or valueFrom",
            )
        )
    }

    name: str = Field(pattern=_HEADER_NAME, max_length=256)
    value: str | None = Field(default=None, max_length=4096)
    value_from: HeaderValueFrom | None = None

    @model_validator(mode="after")
    def _one_value(self) -> Self:
        if (self.value is None) == (self.value_from is None):
            raise ValueError("a header has exactly one of value or valueFrom")
        return self


class WebSource(MetricSource):
    """An HTTP(S) request whose JSON answer, at ``jsonPath``, is judged by the conditions."""

    model_config = {"json_schema_extra": cel_rules(TIMEOUT_RULE)}

    url: str = Field(pattern=CHECK_URL_PATTERN, max_length=2048)
    """Must be under an address the cluster admin allowed for the namespace (the same
    allow-list as Prometheus). Placeholders as in queries: ``{{args.NAME}}``, ``{{rollout}}``,
    ``{{namespace}}``, ``{{canaryRevision}}``, ``{{stableRevision}}``."""
    method: Literal["GET", "POST", "PUT"] = "GET"
    headers: list[Header] = Field(default_factory=list, max_length=MAX_HEADERS)
    body: str | None = Field(default=None, max_length=MAX_BODY)
    json_path: str = Field(default="", max_length=256, pattern=r"^[A-Za-z0-9_.\[\]$-]*$")
    """Where the value is in the answer: ``data.errorRate``, ``items[0].ok`` (empty: the
    whole answer). A number, a boolean (1.0 / 0.0) or a list of numbers."""
    timeout: str = Field(default="10s", pattern=DURATION_PATTERN, max_length=32)

    @model_validator(mode="after")
    def _check_timeout(self) -> Self:
        check_timeout(self.timeout)
        return self


class WebhookSource(MetricSource):
    """A signed CloudEvent POSTed to a hook whose JSON answer is the verdict."""

    conditions = Conditions.REFUSED
    refused_conditions = "gives its own verdict (the hook's answer), not by conditions"

    model_config = {"json_schema_extra": cel_rules(TIMEOUT_RULE)}

    url: str = Field(pattern=CHECK_URL_PATTERN, max_length=2048)
    """Must be under an address the cluster admin allowed for the namespace."""
    signing_secret: SecretKeyRef
    """The HMAC-SHA256 key: the request carries ``X-Ramp-Signature: sha256=HEX`` over
    ``TIMESTAMP.BODY`` and ``X-Ramp-Timestamp``."""
    timeout: str = Field(default="10s", pattern=DURATION_PATTERN, max_length=32)
    data: dict[str, str] | None = Field(default=None, json_schema_extra={"maxProperties": 32})
    """Extra fields of the event's ``data`` (placeholders as in queries)."""

    @model_validator(mode="after")
    def _check_timeout(self) -> Self:
        check_timeout(self.timeout)
        return self


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


class JobPodTemplate(ApiModel):
    """The pod template of a check Job (``restartPolicy`` is always ``Never``)."""

    metadata: dict[str, Any] | None = Field(
        default=None, json_schema_extra={"x-kubernetes-preserve-unknown-fields": True}
    )
    spec: dict[str, Any] = Field(json_schema_extra=_POD_SPEC_SCHEMA)

    @model_validator(mode="after")
    def _check_spec(self) -> Self:
        containers = self.spec.get("containers")
        if not isinstance(containers, list) or not containers:
            raise ValueError("spec.containers: a check Job needs at least one container")
        policy = self.spec.get("restartPolicy")
        if policy not in (None, "Never"):
            raise ValueError("spec.restartPolicy must be Never: a check is not retried")
        return self


class JobSource(MetricSource):
    """A Job run once per measurement; its outcome is the verdict."""

    conditions = Conditions.REFUSED
    refused_conditions = "gives its own verdict (how the Job ended), not by conditions"

    active_deadline_seconds: int = Field(ge=1, le=MAX_JOB_DEADLINE_SECONDS)
    """Required: the Job is stopped after this long and the measurement is Inconclusive."""
    template: JobPodTemplate
    """Gets ``RAMP_ROLLOUT``, ``RAMP_NAMESPACE``, ``RAMP_CANARY_REVISION``,
    ``RAMP_STABLE_REVISION``, ``RAMP_CANARY_SERVICE``, ``RAMP_STABLE_SERVICE`` and
    ``RAMP_PREVIEW_SERVICE`` / ``RAMP_ACTIVE_SERVICE`` (blue-green) in every container's
    environment."""

    @property
    def timeout_seconds(self) -> float:
        """The deadline, plus the time to see the Job end."""
        return self.active_deadline_seconds + JOB_GRACE_SECONDS


class MetricSources(ApiModel):
    """The providers a metric can name: it sets exactly one of these fields, whose name is
    its kind (one line per provider; the registry in :mod:`ramp.analysis.kinds` has the
    same keys, a unit test checks both)."""

    prometheus: PrometheusSource | None = None
    compare: Compare | None = None
    web: WebSource | None = None
    job: JobSource | None = None
    webhook: WebhookSource | None = None

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
