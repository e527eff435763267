"""Per-address Prometheus providers (issue 20): namespaces, tokens over https only,
refusals that reveal nothing, Prometheus' error bodies classified, never copied."""

from __future__ import annotations

import asyncio
import json

import pytest

from ramp.analysis.prometheus import (
    ErrorKind,
    PrometheusClient,
    ProviderError,
    classify_status,
    parse_response,
    scope_query,
)
from ramp.analysis.promql import QueryContext
from ramp.analysis.providers import Endpoint, ProviderConfig, parse_providers
from ramp.analysis.run import check_metrics
from ramp.api.analysis import Metric

A = "https://prom-a.monitoring:9090"
SHARED = "https://prom.monitoring:9090"


def config(**kw: object) -> ProviderConfig:
    return ProviderConfig(
        providers=(
            Endpoint(A, token="tok-a", token_secret="ramp/a", namespaces=("team-a",)),
            Endpoint(SHARED, enforce_namespace=True),
        ),
        **kw,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize(
    ("address", "namespace", "allowed"),
    [
        (A, "team-a", True),
        (A, "team-b", False),
        ("https://PROM-A.monitoring:9090/", "team-a", True),
        (SHARED, "team-b", True),
        ("http://prom.monitoring:9090", "team-a", False),
        ("https://elsewhere:9090", "team-a", False),
    ],
)
def test_a_provider_serves_only_its_namespaces(address: str, namespace: str, allowed: bool) -> None:
    refusal = config().refusal(address, namespace)
    assert (refusal is None) == allowed
    if refusal is not None:
        # Same words whether the address exists for others or not at all; no list.
        assert f"not available to namespace {namespace}" in refusal
        assert "no request was sent" in refusal
        for other in (A, SHARED, "team-a", "tok-a"):
            if other not in (address, namespace):
                assert other not in refusal


def test_a_token_is_never_configured_for_plain_http() -> None:
    with pytest.raises(ValueError, match="only sent over https"):
        ProviderConfig(providers=(Endpoint("http://prom:9090", token_secret="ns/s"),))


def test_the_legacy_global_token_is_not_sent_over_plain_http() -> None:
    legacy = ProviderConfig(allowed_addresses=("http://p:9090", "https://q:9090"), token="t0k")
    http, https = legacy.endpoints()
    assert http.sends_token() is None
    assert https.sends_token() == "t0k"


def test_tokens_are_redacted_and_not_in_repr() -> None:
    cfg = config(token="global-secret")
    assert "tok-a" not in repr(cfg) and "global-secret" not in repr(cfg)
    assert cfg.redact("x tok-a y global-secret") == "x <redacted> y <redacted>"


def test_enforcement_default_and_per_provider() -> None:
    off = ProviderConfig(allowed_addresses=("http://p:9090",))
    assert scope_query(off, "http://p:9090", "up", "team-a", "prometheus.query") == "up"
    on = ProviderConfig(allowed_addresses=("http://p:9090",), enforce_namespace=True)
    assert scope_query(on, "http://p:9090", "up", "team-a", "q") == 'up{namespace="team-a"}'
    # A provider that says enforceNamespace: false is trusted to scope by itself.
    trusted = ProviderConfig(
        providers=(Endpoint("https://proxy:443", enforce_namespace=False),),
        enforce_namespace=True,
    )
    assert scope_query(trusted, "https://proxy:443", "up", "team-a", "q") == "up"


def test_scoping_refusal_names_the_field() -> None:
    with pytest.raises(ProviderError) as caught:
        scope_query(config(), SHARED, 'x{namespace="team-b"}', "team-a", "prometheus.query")
    assert caught.value.kind is ErrorKind.OUT_OF_NAMESPACE
    assert caught.value.message.startswith("prometheus.query: ")
    assert 'namespace="team-b"' in caught.value.message


def test_check_metrics_reports_the_cross_namespace_query_at_once() -> None:
    metric = Metric.model_validate(
        {
            "name": "steal",
            "prometheus": {"address": SHARED, "query": 'sum(x{namespace="team-b"})'},
            "successCondition": "result < 1",
        }
    )
    problems = check_metrics([metric], QueryContext("web", "team-a"), config())
    assert len(problems) == 1
    assert problems[0].startswith("metric steal: prometheus.query: ")


def test_parse_providers_names_the_field() -> None:
    doc = """
providers:
  - address: https://prom:9090
    tokenSecret: ramp/prom
    namespaces: [team-a, team-b]
    enforceNamespace: true
"""
    [p] = parse_providers(doc)
    assert p.namespaces == ("team-a", "team-b") and p.token_secret == "ramp/prom"
    assert parse_providers(json.dumps([{"address": "http://p:1"}]))[0].namespaces is None
    for bad, words in [
        ("[{address: 'ftp://x'}]", "providers[0]"),
        ("[{address: 'http://x', namespaces: team-a}]", "providers[0].namespaces"),
        ("[{address: 'http://x', tokenSecret: 'noslash'}]", "providers[0].tokenSecret"),
        ("[{address: 'http://x', color: red}]", "unknown field 'color'"),
        ("[{}]", "providers[0].address"),
    ]:
        with pytest.raises(ValueError, match=words.replace("[", r"\[").replace("]", r"\]")):
            parse_providers(bad)


LEAK = (
    'found duplicate series for the match group {pod="x"} ... '
    '{namespace="team-b", secret="db-password"}'
)


@pytest.mark.parametrize("status", [400, 422, 500, 503, 401, 418, 302])
def test_error_bodies_are_classified_never_copied(status: int) -> None:
    decoded = {"status": "error", "errorType": "execution", "error": LEAK}
    message = classify_status("https://prom:9090", status, decoded)
    assert f"HTTP {status}" in message
    assert (
        "team-b" not in message
        and "db-password" not in message
        and "duplicate" not in (message if status != 422 else "")
    )
    weird = {"errorType": "<script>team-b</script>"}
    assert "team-b" not in classify_status("https://prom:9090", status, weird)


def test_answers_with_too_many_series_are_refused() -> None:
    body = {
        "status": "success",
        "data": {
            "resultType": "vector",
            "result": [{"metric": {"i": str(i)}, "value": [0, "1"]} for i in range(11)],
        },
    }
    assert len(parse_response(body, max_series=11).samples) == 11
    with pytest.raises(ProviderError) as caught:
        parse_response(body, max_series=10)
    assert caught.value.kind is ErrorKind.TOO_LARGE and "11 series" in caught.value.message


def test_malformed_answers_never_quote_the_data() -> None:
    body = {"status": "success", "data": {"resultType": "scalar", "result": [0, "team-b-secret"]}}
    with pytest.raises(ProviderError) as caught:
        parse_response(body)
    assert "team-b" not in caught.value.message


def test_a_refused_address_sends_nothing() -> None:
    async def run() -> ErrorKind:
        async with PrometheusClient(config()) as provider:
            with pytest.raises(ProviderError) as caught:
                await provider.query(A, "up", 1, "team-b")
            return caught.value.kind

    assert asyncio.run(run()) is ErrorKind.REFUSED


@pytest.mark.parametrize(
    ("mode", "namespaces", "on"),
    [
        ("auto", [], True),
        ("auto", ["team-a", "team-b"], True),
        ("auto", ["t-*"], True),
        ("auto", ["team-a"], False),
        ("on", ["team-a"], True),
        ("off", [], False),
    ],
)
def test_enforcement_is_on_by_default_wherever_namespaces_are_tenants(
    mode: str, namespaces: list[str], on: bool
) -> None:
    import argparse

    from ramp.shell.runtime.run import enforces_namespace

    args = argparse.Namespace(namespace=namespaces, prometheus_namespace_enforcement=mode)
    assert enforces_namespace(args) is on
