"""The registry of metric providers: each kind of metric and the provider that serves it.

The keys are the source fields of :class:`ramp.api.sources.MetricSources` (a unit test
checks both lists are the same); :mod:`ramp.analysis.kinds.base` is the guide to writing
a provider. One line per provider.
"""

from __future__ import annotations

from ramp.analysis.kinds.base import ProviderFactory
from ramp.analysis.kinds.compare import CompareMetric
from ramp.analysis.kinds.job import JobMetric
from ramp.analysis.kinds.prometheus import PrometheusMetric
from ramp.analysis.kinds.web import WebMetric
from ramp.analysis.kinds.webhook import WebhookMetric

PROVIDERS: dict[str, ProviderFactory] = {
    "prometheus": PrometheusMetric,
    "compare": CompareMetric,
    "web": WebMetric,
    "job": JobMetric,
    "webhook": WebhookMetric,
}
