"""The metric-provider seam: one protocol for every kind of metric.

A metric names its provider by the one source field it sets (``prometheus:``, ``compare:``;
:class:`ramp.api.sources.MetricSources`): that field's name is its **kind**, and
:data:`ramp.analysis.kinds.PROVIDERS` maps each kind to the factory of a
:class:`MetricProvider`. The shell never asks which kind a metric is: it calls
:class:`ramp.analysis.run.Measurer`, which validates, measures and describes through the
registered provider, stamps the record and turns any surprise into an Error.

Writing a new provider (``web``, ``job``, ``webhook``, ...): three files, tests and docs aside.

1. **The API** (``operator/ramp/api/sources.py``): a source model subclassing
   :class:`~ramp.api.sources.MetricSource` (its fields camelCase on the wire, bounds and
   patterns on every string, CEL rules via ``cel_rules`` mirrored by a ``model_validator``)
   and one field ``<kind>: YourSource | None = None`` in ``MetricSources``. Set the class
   variable ``conditions``: ``REQUIRED`` when the metric's ``successCondition`` /
   ``failureCondition`` judge a ``result`` you produce, ``REFUSED`` (with
   ``refused_conditions``, the reason) when your source judges by its own fields,
   ``OPTIONAL`` otherwise. The "exactly one source" rule and the conditions rules are
   generated from that; a ``timeout`` field (duration string) bounds the measurement's slot
   (override ``timeout_seconds`` otherwise). Run ``make crds``.
2. **The provider** (``operator/ramp/analysis/kinds/<kind>.py``): a class built with the
   shared :class:`Env` (keep ``__init__`` cheap: :func:`ramp.analysis.run.check_metrics`
   builds providers to validate; open connections lazily) implementing the four methods
   below. Get your typed source with :func:`source_of`.
3. **The registry** (``operator/ramp/analysis/kinds/__init__.py``): one line,
   ``"<kind>": YourProvider``. ``tests/unit/test_metric_kinds.py`` fails when the API's
   kinds and the registry's differ.

The rules every provider keeps (the anchors paid for them):

* **Never a false Pass.** Transport problems (refused, unreachable, timeout, non-2xx,
  malformed answer) are :attr:`Verdict.ERROR`; an answer that cannot judge the canary (no
  data, NaN, too few samples, "accepted, later", infrastructure failure of a Job) is
  :attr:`Verdict.INCONCLUSIVE`. Only a real answer that meets the success rule is a Pass.
* ``measure`` does not raise for a measurement problem: it returns an :class:`Outcome`.
  (The :class:`~ramp.analysis.run.Measurer` catches anything else and records an Error, but
  that is a bug, logged as one.) It must end within the source's ``timeout_seconds``: the
  scheduler cancels it a few seconds later and records an Error.
* Messages are for the tenant who owns the Rollout: never a secret (the Measurer also
  scrubs the configured tokens with ``config.redact``), never data of another namespace,
  never a raw body from the network; name the field at fault (``web.url: ...``).
* Addresses come from the cluster admin's allow-list (``env.config``), never from the
  tenant alone; anything that reaches another service is scoped to the Rollout's
  namespace or refused.
* ``validate`` runs when an analysis run starts: report a bad spec at once (as the
  Rollout's ``InvalidSpec`` message) rather than after a few Error verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, TypeVar

from ramp.analysis.prometheus import PrometheusClient
from ramp.analysis.promql import QueryContext
from ramp.analysis.providers import ProviderConfig
from ramp.api.analysis import Metric, Verdict
from ramp.api.sources import MetricSource

__all__ = ["Env", "MetricProvider", "Outcome", "ProviderFactory", "QueryContext", "source_of"]


@dataclass(frozen=True)
class Outcome:
    """What one measurement found; the Measurer turns it into the decision record (a
    :class:`ramp.api.analysis.Measurement`: metric, time, revision and run added)."""

    verdict: Verdict
    message: str
    """Why this verdict, in words (the metric's name is prefixed by the Measurer)."""
    value: str | None = None
    """The value as the source gave it (``NaN`` included); None when there was no data."""
    query: str | None = None
    """What was asked, as sent (the rendered query, the request, the Job's name)."""


class Env(Protocol):
    """What the providers of one operator share (the :class:`~ramp.analysis.run.Measurer`).

    Read it at each call rather than copying it in ``__init__``: the config changes when
    a token Secret is rotated.
    """

    @property
    def config(self) -> ProviderConfig:
        """The cluster admin's settings: allowed addresses, tokens, TLS, namespaces."""
        ...

    @property
    def prometheus(self) -> PrometheusClient:
        """The Prometheus client (one per operator: its connection pools are shared)."""
        ...


class MetricProvider(Protocol):
    """Validates, measures and describes the metrics of one kind."""

    def validate(self, metric: Metric, context: QueryContext) -> list[str]:
        """Why ``metric`` cannot be measured for this Rollout (empty when it can): each
        problem names the field (the caller prefixes ``metric NAME:``). Pure and quick:
        no network; the CEL conditions are checked by the caller for every kind."""
        ...

    async def measure(self, metric: Metric, context: QueryContext) -> Outcome:
        """Measure ``metric`` once and judge it (see the module's rules); never raises for
        a measurement problem."""
        ...

    def describe(self, metric: Metric, context: QueryContext) -> str:
        """What the metric asks, in one line, for the decision record of a measurement
        that has no outcome (it missed its deadline, it failed unexpectedly). Never
        raises: an unrenderable template is described as written."""
        ...

    async def close(self) -> None:
        """Release what the provider holds (connections); it may be used again after."""
        ...


class ProviderFactory(Protocol):
    """How the registry builds a provider: usually the provider's class itself."""

    def __call__(self, env: Env) -> MetricProvider: ...


S = TypeVar("S", bound=MetricSource)


def source_of(metric: Metric, kind: type[S]) -> S:
    """The metric's source, typed (TypeError when the metric is of another kind: the
    registry dispatched it wrongly)."""
    source = metric.source
    if not isinstance(source, kind):
        raise TypeError(f"metric {metric.name} is a {metric.kind} metric, not {kind.__name__}")
    return source
