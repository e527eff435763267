"""The metric-provider seam (issue 21): the API's kinds and the registry agree, the rules of
a kind are generated from its source model, and the Measurer dispatches by kind, records
what the provider found and survives a provider that misbehaves."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import cel
import pytest
from pydantic import Field, ValidationError

import ramp.shell.controller.gates as gates_module
from ramp.analysis.kinds import PROVIDERS
from ramp.analysis.kinds.base import Env, Outcome, source_of
from ramp.analysis.promql import QueryContext
from ramp.analysis.providers import ProviderConfig
from ramp.analysis.run import Measurer, check_metrics
from ramp.api.analysis import Metric, Verdict
from ramp.api.sources import (
    Compare,
    Conditions,
    MetricSource,
    MetricSources,
    PrometheusSource,
    source_rules,
)

PROM = "http://prometheus.monitoring:9090"
CTX = QueryContext("app", "team-a", canary_revision="c1", stable_revision="s1")
CLOCK = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_registry_serves_exactly_the_kinds_of_the_api() -> None:
    """A kind without a provider (or a provider without a kind) fails here, not in a
    Rollout: the API's source fields and the registry's keys are the same list."""
    assert list(PROVIDERS) == list(MetricSources.kinds())
    assert list(Metric.kinds()) == list(MetricSources.kinds())


@pytest.mark.parametrize("kind", list(PROVIDERS))
def test_every_provider_implements_the_protocol(kind: str) -> None:
    provider = PROVIDERS[kind](Measurer(ProviderConfig()))
    for method in ("validate", "measure", "describe", "close"):
        assert callable(getattr(provider, method)), f"{kind}: no {method}()"
    assert asyncio.iscoroutinefunction(provider.measure)
    assert asyncio.iscoroutinefunction(provider.close)


def test_existing_specs_name_their_kind_by_their_source_field() -> None:
    """Today's manifests (``prometheus:`` / ``compare:``) keep working unchanged."""
    threshold = Metric.model_validate(
        {
            "name": "m",
            "successCondition": "result < 1",
            "prometheus": {"address": PROM, "query": "up"},
        }
    )
    compare = Metric.model_validate(
        {
            "name": "c",
            "compare": {
                "prometheus": {"address": PROM, "query": "x", "countQuery": "y", "timeout": "3s"},
                "maxIncrease": 0.01,
            },
        }
    )
    assert (threshold.kind, compare.kind) == ("prometheus", "compare")
    assert isinstance(threshold.source, PrometheusSource) and isinstance(compare.source, Compare)
    assert compare.timeout_seconds == 3.0
    assert source_of(threshold, PrometheusSource) is threshold.prometheus
    with pytest.raises(TypeError, match="is a prometheus metric"):
        source_of(threshold, Compare)


# --- a new kind is one source model and one field --------------------------------------


class ToySource(MetricSource):
    """A made-up provider: judged by its own verdict, conditions may refine it."""

    conditions = Conditions.OPTIONAL
    url: str = Field(max_length=100)
    timeout: str = "2s"


class RefusingSource(MetricSource):
    conditions = Conditions.REFUSED
    refused_conditions = "judges by itself"
    word: str


class ToySources(MetricSources):
    toy: ToySource | None = None
    refusing: RefusingSource | None = None


class ToyMetric(ToySources):
    """A metric with the two extra kinds (what adding a field to MetricSources does)."""

    success_condition: str | None = None
    failure_condition: str | None = None


def _violations(obj: dict[str, Any]) -> list[str]:
    return [m for r, m in source_rules(ToySources) if not cel.evaluate(r, {"self": obj})]


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ({"toy": {"url": "u"}}, None),
        ({"toy": {"url": "u"}, "successCondition": "result"}, None),
        ({"refusing": {"word": "w"}}, None),
        (
            {"refusing": {"word": "w"}, "failureCondition": "x"},
            "a refusing metric judges by itself",
        ),
        ({"prometheus": {}}, "a prometheus metric needs a successCondition or a failureCondition"),
        ({}, "a metric has exactly one of prometheus, compare, web, job, webhook, toy or refusing"),
        ({"toy": {"url": "u"}, "refusing": {"word": "w"}}, "exactly one of"),
    ],
    ids=["optional", "optional-refined", "refused", "refused-given", "required", "none", "two"],
)
def test_the_rules_of_a_new_kind_are_generated(obj: dict[str, Any], message: str | None) -> None:
    """The CRD's CEL rules and the operator's own check agree for a kind added by a field."""
    cel_found = _violations(obj)
    assert (cel_found == []) == (message is None)
    if message is not None:
        assert any(message in m for m in cel_found)
    sources = {k: v for k, v in obj.items() if k in ToySources.kinds()}
    if "prometheus" in sources:
        sources["prometheus"] = {"address": PROM, "query": "up"}
    metric = ToyMetric.model_validate(
        {k: v for k, v in obj.items() if k not in ToySources.kinds()} | sources
    )
    has_condition = metric.success_condition is not None or metric.failure_condition is not None
    if message is None:
        metric.check_source(has_condition)
        assert metric.timeout_seconds == (2.0 if metric.kind == "toy" else 10.0)
    else:
        with pytest.raises(ValueError, match=message.split(" or ")[0]):
            metric.check_source(has_condition)


def test_only_source_fields_are_kinds() -> None:
    assert "name" not in Metric.kinds() and "successCondition" not in ToyMetric.kinds()
    assert list(ToyMetric.kinds()) == [*MetricSources.kinds(), "toy", "refusing"]


# --- the Measurer: dispatch, the record, surprises -------------------------------------


class FakeProvider:
    """A provider of the ``prometheus`` kind that answers what the test says."""

    def __init__(self, env: Env, outcome: Outcome | Exception) -> None:
        self.env = env
        self.outcome = outcome
        self.closed = 0

    def validate(self, metric: Metric, context: QueryContext) -> list[str]:
        return ["prometheus.query: not today"]

    async def measure(self, metric: Metric, context: QueryContext) -> Outcome:
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def describe(self, metric: Metric, context: QueryContext) -> str:
        raise RuntimeError("cannot describe")

    async def close(self) -> None:
        self.closed += 1


METRIC = Metric.model_validate(
    {"name": "m", "successCondition": "result < 1", "prometheus": {"address": PROM, "query": "up"}}
)


def _measurer(outcome: Outcome | Exception) -> tuple[Measurer, list[FakeProvider]]:
    built: list[FakeProvider] = []

    def factory(env: Env) -> FakeProvider:
        built.append(FakeProvider(env, outcome))
        return built[-1]

    config = ProviderConfig(allowed_addresses=(PROM,), token="s3cr3t-token")
    return Measurer(config, clock=lambda: CLOCK, providers={"prometheus": factory}), built


def test_the_measurer_records_the_outcome_scrubbed() -> None:
    measurer, built = _measurer(
        Outcome(Verdict.FAIL, "saw s3cr3t-token", value="0.5 s3cr3t-token", query="up")
    )

    async def run() -> Any:
        async with measurer:
            return await measurer.measure(METRIC, CTX, analysis="step-1")

    m = asyncio.run(run())
    assert (m.verdict, m.query, m.analysis, m.revision) == (Verdict.FAIL, "up", "step-1", "c1")
    assert m.message == "m: saw <redacted>" and m.value == "0.5 <redacted>"
    assert m.time == "2026-01-01T00:00:00Z"
    assert len(built) == 1 and built[0].env is measurer and built[0].closed == 1


def test_a_provider_that_raises_is_an_error_never_a_crash() -> None:
    measurer, _ = _measurer(KeyError("s3cr3t-token"))
    m = asyncio.run(measurer.measure(METRIC, CTX))
    assert m.verdict is Verdict.ERROR and "internal error" in (m.message or "")
    assert "s3cr3t" not in m.model_dump_json()
    assert measurer.describe(METRIC, CTX) is None  # a describe that raises: no query shown


def test_the_record_of_a_failed_measurement_shows_what_was_asked() -> None:
    """describe() fills the decision record when the provider gave no outcome."""

    class Failing(FakeProvider):
        def describe(self, metric: Metric, context: QueryContext) -> str:
            return f"asked {context.rollout}"

    config = ProviderConfig(allowed_addresses=(PROM,))
    providers = {"prometheus": lambda env: Failing(env, RuntimeError("boom"))}
    m = asyncio.run(Measurer(config, providers=providers).measure(METRIC, CTX))
    assert (m.verdict, m.query) == (Verdict.ERROR, "asked app")


def test_a_metric_of_an_unregistered_kind_is_refused_by_name() -> None:
    measurer = Measurer(ProviderConfig(), providers={})
    assert measurer.check([METRIC], CTX) == [
        "metric m: no metric provider is registered for 'prometheus'"
    ]
    m = asyncio.run(measurer.measure(METRIC, CTX))
    assert m.verdict is Verdict.ERROR


def test_check_prefixes_the_metric_and_checks_conditions_for_every_kind() -> None:
    measurer, _ = _measurer(Outcome(Verdict.PASS, "fine"))
    bad = METRIC.model_copy(update={"success_condition": "result <"})
    problems = measurer.check([bad], CTX)
    assert problems[0].startswith("metric m: successCondition:")
    assert problems[1] == "metric m: prometheus.query: not today"


def test_describe_shows_the_query_as_asked() -> None:
    config = ProviderConfig(allowed_addresses=(PROM,))
    measurer = Measurer(config)
    templated = METRIC.model_copy(
        update={"prometheus": PrometheusSource(address=PROM, query='up{r="{{rollout}}"}')}
    )
    assert measurer.describe(templated, CTX) == 'up{r="app"}'
    unknown = METRIC.model_copy(
        update={"prometheus": PrometheusSource(address=PROM, query="up{{nope}}")}
    )
    assert measurer.describe(unknown, CTX) == "up{{nope}}"
    assert check_metrics([unknown], CTX, config)[0].startswith("metric m: query:")


def test_an_unknown_source_field_is_refused() -> None:
    with pytest.raises(ValidationError, match="web"):
        Metric.model_validate({"name": "m", "web": {"url": "http://x"}})


def test_a_measurement_past_its_deadline_is_an_error_recorded_by_the_measurer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The scheduler's deadline record goes through the Measurer: the metric's name, the
    run, and what was asked (the provider's describe())."""

    class Hanging(FakeProvider):
        async def measure(self, metric: Metric, context: QueryContext) -> Outcome:
            await asyncio.sleep(3600)
            raise AssertionError("cancelled before")

        def describe(self, metric: Metric, context: QueryContext) -> str:
            return "up"

    monkeypatch.setattr(gates_module, "measurement_deadline", lambda timeout: 0.05)
    config = ProviderConfig(allowed_addresses=(PROM,))
    gates = gates_module.Gates(config, lambda namespace, name: None)
    gates._provider = Measurer(
        config, clock=lambda: CLOCK, providers={"prometheus": lambda env: Hanging(env, Exception())}
    )
    key = ("team-a", "app", "step-1", "m", "c1")

    async def run() -> Any:
        gates.submit(key, METRIC, CTX)
        for _ in range(200):
            await asyncio.sleep(0.01)
            taken = gates.scheduler.take(key)
            if taken is not None:
                return taken
        raise AssertionError("no record after the deadline")

    m = asyncio.run(run())
    assert (m.verdict, m.query, m.analysis, m.revision) == (Verdict.ERROR, "up", "step-1", "c1")
    assert m.message == "m: the measurement did not finish within 0.05s (timeout 10s)"
