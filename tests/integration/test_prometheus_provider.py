"""The Prometheus provider against a real Prometheus scraping the controllable exporter.

Acceptance 4 (outage is Error, not Fail), 5 (no data is Inconclusive), 6 (canary versus
stable), 7 (injection) and 8 (allow-list, token) at the provider level. Every test uses
its own rollout label, so tests do not see each other's traffic.
"""

from __future__ import annotations

import asyncio
import http.server
import itertools
import json
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from prometheus.fixtures import PrometheusServer, free_port
from ramp.analysis.prometheus import ErrorKind, PrometheusClient, ProviderConfig, ProviderError
from ramp.analysis.promql import QueryContext, render
from ramp.analysis.run import Measurer, measure_due
from ramp.api.analysis import Measurement, Metric, MetricPhase, MetricResult, Verdict
from ramp.core.verdicts import GateAction, analysis_state, metric_state, record

pytestmark = pytest.mark.prometheus

NS = "shop"
CANARY = "c0ffee1"
STABLE = "5ab1e00"
WINDOW = "5s"

_SELECTOR = 'namespace="{{namespace}}",rollout="{{rollout}}",revision="%s"'
ERROR_RATIO = (
    f'sum(rate(http_requests_total{{{_SELECTOR},code=~"5.."}}[{WINDOW}]))'
    f" / sum(rate(http_requests_total{{{_SELECTOR}}}[{WINDOW}]))"
)
CANARY_RATIO = ERROR_RATIO.replace("%s", "{{canaryRevision}}")
REVISION_RATIO = ERROR_RATIO.replace("%s", "{{revision}}")
REVISION_COUNT = (
    'sum(increase(http_requests_total{namespace="{{namespace}}",rollout="{{rollout}}",'
    'revision="{{revision}}"}[10s]))'
)
TOKEN = "s3cr3t-T0KEN-never-shown"
INJECTION = 'x"} or vector(0) #'
EVIL_NS = "evil"


def context(rollout: str, **args: str) -> QueryContext:
    """The query context of a rollout under test."""
    return QueryContext(
        rollout=rollout,
        namespace=NS,
        canary_revision=CANARY,
        stable_revision=STABLE,
        args=args,
    )


def threshold_metric(address: str, query: str = CANARY_RATIO, **fields: Any) -> Metric:
    """A threshold metric on ``address`` (success ``result < 0.01`` unless overridden)."""
    spec: dict[str, Any] = {
        "name": "error-ratio",
        "successCondition": "result < 0.01",
        "prometheus": {"address": address, "query": query, "timeout": "3s"},
    }
    spec.update(fields)
    return Metric.model_validate(spec)


def compare_metric(address: str, min_count: float = 100) -> Metric:
    """Canary versus stable error ratio, at most 1 point worse."""
    return Metric.model_validate(
        {
            "name": "versus-stable",
            "compare": {
                "prometheus": {
                    "address": address,
                    "query": REVISION_RATIO,
                    "countQuery": REVISION_COUNT,
                    "timeout": "3s",
                },
                "maxIncrease": 0.01,
                "minCount": min_count,
            },
        }
    )


def measure(
    config: ProviderConfig, metric: Metric, ctx: QueryContext, times: int = 1
) -> list[Measurement]:
    """Take ``times`` measurements with a fresh provider (one event loop per call)."""

    async def run() -> list[Measurement]:
        async with Measurer(config) as provider:
            return [await provider.measure(metric, ctx, analysis="test") for _ in range(times)]

    return asyncio.run(run())


def allow(prom: PrometheusServer, token: str | None = None) -> ProviderConfig:
    """A config that allows the test Prometheus."""
    return ProviderConfig(allowed_addresses=(prom.url,), token=token)


def wait_ratio(prom: PrometheusServer, rollout: str, revision: str, expected: float) -> None:
    """Wait until Prometheus computes ``expected`` as the revision's error ratio."""
    query = render(ERROR_RATIO.replace("%s", revision), context(rollout))
    prom.wait_for(
        query,
        lambda s: len(s) == 1 and not math.isnan(s[0][1]) and abs(s[0][1] - expected) < 0.002,
        timeout=30,
    )


TRAFFIC = [
    # (rollout, revision, rps, error ratio)
    ("good", CANARY, 200, 0.001),
    ("bad", CANARY, 200, 0.2),
    ("middling", CANARY, 200, 0.03),
    ("idle", CANARY, 0, 0.0),
    ("outage", CANARY, 200, 0.001),
    ("secret", CANARY, 200, 0.001),
    ("cmp-equal", CANARY, 50, 0.03),
    ("cmp-equal", STABLE, 200, 0.03),
    ("cmp-worse", CANARY, 50, 0.06),
    ("cmp-worse", STABLE, 200, 0.01),
    ("cmp-little", CANARY, 2, 0.03),
    ("cmp-little", STABLE, 200, 0.03),
]


@pytest.fixture(scope="module", autouse=True)
def traffic(prometheus: PrometheusServer) -> None:
    """Start every test's traffic at once, so that the rate windows fill in parallel."""
    for rollout, revision, rps, ratio in TRAFFIC:
        prometheus.exporter.set_rate(NS, rollout, revision, rps=rps, error_ratio=ratio)
    prometheus.exporter.set_rate(EVIL_NS, INJECTION, CANARY, rps=200, error_ratio=0.2)


# --- threshold metrics -----------------------------------------------------------------


def test_good_ratio_passes(prom: PrometheusServer) -> None:
    wait_ratio(prom, "good", CANARY, 0.001)
    [m] = measure(allow(prom, TOKEN), threshold_metric(prom.url), context("good"))
    assert m.verdict is Verdict.PASS, m.message
    assert m.value is not None and abs(float(m.value) - 0.001) < 0.002
    assert m.query == render(CANARY_RATIO, context("good"))
    assert m.query in prom.query_log()
    assert m.revision == CANARY and m.analysis == "test"


def test_bad_ratio_fails_and_names_value_and_condition(prom: PrometheusServer) -> None:
    wait_ratio(prom, "bad", CANARY, 0.2)
    metric = threshold_metric(prom.url)
    [m] = measure(allow(prom), metric, context("bad"))
    assert m.verdict is Verdict.FAIL
    assert m.message is not None
    assert "error-ratio" in m.message and "result < 0.01" in m.message and "0.2" in m.message
    now = datetime.now(UTC)
    state = metric_state(metric, record(metric, None, m), now, now)
    assert state.phase is MetricPhase.FAILED and state.action is GateAction.ABORT


def test_neither_condition_is_inconclusive(prom: PrometheusServer) -> None:
    wait_ratio(prom, "middling", CANARY, 0.03)
    metric = threshold_metric(prom.url, failureCondition="result >= 0.05")
    [m] = measure(allow(prom), metric, context("middling"))
    assert m.verdict is Verdict.INCONCLUSIVE, m.message
    assert m.message is not None and "neither" in m.message


# --- acceptance 5: no data is never a pass ----------------------------------------------


def test_no_traffic_is_inconclusive(prom: PrometheusServer) -> None:
    # The series exist (at 0) but never grow: rate 0 / rate 0 is NaN.
    query = render(CANARY_RATIO, context("idle"))
    prom.wait_for(query, lambda s: len(s) == 1 and math.isnan(s[0][1]), timeout=30)
    [m] = measure(allow(prom), threshold_metric(prom.url), context("idle"))
    assert m.verdict is Verdict.INCONCLUSIVE, m.message
    assert m.value == "NaN"


def test_empty_result_is_inconclusive(prom: PrometheusServer) -> None:
    [m] = measure(allow(prom), threshold_metric(prom.url), context("no-such-rollout"))
    assert m.verdict is Verdict.INCONCLUSIVE, m.message
    assert m.value is None
    assert m.message is not None and "no data" in m.message


def test_nan_scalar_is_inconclusive_even_with_only_a_failure_condition(
    prom: PrometheusServer,
) -> None:
    metric = Metric.model_validate(
        {
            "name": "nan",
            "failureCondition": "result > 0.05",
            "prometheus": {"address": prom.url, "query": "0/0"},
        }
    )
    [m] = measure(allow(prom), metric, context("any"))
    assert m.verdict is Verdict.INCONCLUSIVE and m.value == "NaN", m.message


def test_bad_query_is_error_with_prometheus_reason(prom: PrometheusServer) -> None:
    metric = threshold_metric(prom.url, query="sum(rate(http_requests_total[5s]")
    [m] = measure(allow(prom), metric, context("any"))
    assert m.verdict is Verdict.ERROR
    assert m.message is not None and "HTTP 400" in m.message and "bad_data" in m.message


def test_range_vector_is_error(prom: PrometheusServer) -> None:
    metric = threshold_metric(prom.url, query="http_requests_total[5s]")
    [m] = measure(allow(prom), metric, context("any"))
    assert m.verdict is Verdict.ERROR
    assert m.message is not None and "range vector" in m.message


# --- acceptance 4: an outage is an Error, and pauses ------------------------------------


def test_prometheus_stopped_is_error_unreachable_then_recovers(prom: PrometheusServer) -> None:
    wait_ratio(prom, "outage", CANARY, 0.001)
    metric = threshold_metric(prom.url, consecutiveErrorLimit=2)
    prom.stop()
    try:
        measurements = measure(allow(prom), metric, context("outage"), times=3)
    finally:
        prom.start()
    for m in measurements:
        assert m.verdict is Verdict.ERROR
        assert m.message is not None and "Prometheus unreachable" in m.message
    result = None
    for m in measurements:
        result = record(metric, result, m)
    now = datetime.now(UTC)
    state = metric_state(metric, result, now, now)
    assert state.phase is MetricPhase.ERROR and state.action is GateAction.PAUSE
    assert "unreachable" in state.message and "3 consecutive errors" in state.message

    wait_ratio(prom, "outage", CANARY, 0.001)
    [m] = measure(allow(prom), metric, context("outage"))
    assert m.verdict is Verdict.PASS, m.message


# --- acceptance 7: an argument cannot change the query's structure ----------------------


def test_injection_argument_stays_a_label_value(prom: PrometheusServer) -> None:
    template = (
        "sum(\n"
        '  http_requests_total{namespace="{{namespace}}",code="500",rollout="{{args.service}}"}\n'
        ")"
    )
    metric = threshold_metric(prom.url, query=template)
    # The attack is real: substituted naively, the argument ends the selector, adds
    # `or vector(0)` and comments out the rest; the query is valid and gives 0, a pass.
    naive = template.replace("{{namespace}}", NS).replace("{{args.service}}", INJECTION)
    assert prom.query(naive) == [({}, 0.0)]

    # Rendered, the argument is a label value: no series has it, so no data: Inconclusive.
    [m] = measure(allow(prom), metric, context("ignored", service=INJECTION))
    assert m.verdict is Verdict.INCONCLUSIVE, m.message
    assert m.query is not None and 'rollout="x\\"} or vector(0) #"}' in m.query
    assert m.query in prom.query_log()

    # And it selects exactly the series whose label is that string (served under EVIL_NS).
    evil = QueryContext(rollout="ignored", namespace=EVIL_NS, args={"service": INJECTION})
    rendered = render(template, evil)
    prom.wait_for(rendered, lambda s: len(s) == 1 and s[0][1] > 1, timeout=30)
    [m2] = measure(allow(prom), metric, evil)
    assert m2.verdict is Verdict.FAIL, m2.message


NASTY_VALUES = [
    INJECTION,
    "it's",
    'a"b',
    "back\\slash",
    "new\nline",
    "tab\tand\rcr",
    "`backtick`",
    "{{args.other}}",
    "unicode é ✓",
    "\x01ctrl\x7f",
]


@pytest.mark.parametrize("quote", ['"', "'", "`"], ids=["double", "single", "backtick"])
def test_round_trip_of_nasty_values(prom: PrometheusServer, quote: str) -> None:
    """Prometheus parses each substituted value back to exactly the original string."""
    # No escape exists in a backtick string: render() refuses a backtick there (unit-tested).
    values = [v for v in NASTY_VALUES if quote != "`" or "`" not in v]
    args = {f"v{i}": value for i, value in enumerate(values)}
    template = " or ".join(
        f'label_replace(vector({i}), "got", {quote}{{{{args.v{i}}}}}{quote}, "", "")'
        for i in range(len(values))
    )
    rendered = render(template, context("any", **args))
    got = {int(value): labels["got"] for labels, value in prom.query(rendered)}
    assert got == dict(enumerate(values))
    assert rendered in prom.query_log()


# --- acceptance 6: canary versus stable -------------------------------------------------


@pytest.mark.parametrize(
    ("rollout", "canary", "stable", "rps", "verdict"),
    [
        ("cmp-equal", 0.03, 0.03, 50, Verdict.PASS),
        ("cmp-worse", 0.06, 0.01, 50, Verdict.FAIL),
        ("cmp-little", 0.03, 0.03, 2, Verdict.INCONCLUSIVE),
    ],
    ids=["3pct-vs-3pct-passes", "6pct-vs-1pct-fails", "below-min-count-inconclusive"],
)
def test_compare_canary_with_stable(
    prom: PrometheusServer,
    rollout: str,
    canary: float,
    stable: float,
    rps: float,
    verdict: Verdict,
) -> None:
    wait_ratio(prom, rollout, CANARY, canary)
    wait_ratio(prom, rollout, STABLE, stable)
    count = render(REVISION_COUNT, context(rollout).with_revision(CANARY))
    prom.wait_for(count, lambda s: len(s) == 1 and s[0][1] >= rps * 8, timeout=30)
    [m] = measure(allow(prom), compare_metric(prom.url), context(rollout))
    assert m.verdict is verdict, m.message
    assert m.value is not None and m.value.startswith("canary=")
    log = prom.query_log()
    assert render(REVISION_RATIO, context(rollout).with_revision(CANARY)) in log
    assert render(REVISION_RATIO, context(rollout).with_revision(STABLE)) in log


# --- acceptance 8: allow-list and secrets -----------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A listening socket that counts as 'a server nobody may contact'."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.5)
    yield sock
    sock.close()


def test_address_outside_allow_list_is_refused_without_a_request(
    prom: PrometheusServer, listener: socket.socket
) -> None:
    other = f"http://127.0.0.1:{listener.getsockname()[1]}"
    [m] = measure(allow(prom, TOKEN), threshold_metric(other), context("any"))
    assert m.verdict is Verdict.ERROR
    assert m.message is not None and "is not available" in m.message
    assert other in m.message
    with pytest.raises(TimeoutError):
        listener.accept()  # nobody connected: no request, no token sent


def test_allow_list_matches_normalized_addresses(prom: PrometheusServer) -> None:
    config = ProviderConfig.from_env_and_args(
        [], environ={"RAMP_PROMETHEUS_ALLOW": f" {prom.url.upper()}/ , http://other:9090"}
    )
    [m] = measure(config, threshold_metric(prom.url + "/"), context("no-such-rollout"))
    assert m.verdict is Verdict.INCONCLUSIVE, m.message


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every request with what the test set; remembers the headers it saw."""

    answer: Callable[[_Recorder], None]
    seen: list[dict[str, str]]

    def do_GET(self) -> None:
        self.seen.append(dict(self.headers.items()))
        self.answer(self)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def fake_server() -> Iterator[Callable[[Callable[[_Recorder], None]], tuple[str, list[Any]]]]:
    """Start HTTP servers with a given answer; yields a factory returning (url, seen)."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(answer: Callable[[_Recorder], None]) -> tuple[str, list[Any]]:
        seen: list[dict[str, str]] = []
        handler = type("Handler", (_Recorder,), {"answer": staticmethod(answer), "seen": seen})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}", seen

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _reply(status: int, body: str) -> Callable[[_Recorder], None]:
    def answer(handler: _Recorder) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.end_headers()
        handler.wfile.write(body.encode())

    return answer


def test_token_is_sent_but_never_shown(
    prom: PrometheusServer,
    fake_server: Callable[[Callable[[_Recorder], None]], tuple[str, list[Any]]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A server that echoes the Authorization header back in its error: the provider must
    # not carry it into the measurement.
    def echo(handler: _Recorder) -> None:
        error = {"status": "error", "errorType": "unauthorized"}
        error["error"] = f"rejected {handler.headers.get('Authorization')}"
        _reply(401, json.dumps(error))(handler)

    url, seen = fake_server(echo)
    config = ProviderConfig(allowed_addresses=(url, prom.url), token=TOKEN)
    caplog.set_level(logging.DEBUG, logger="ramp")
    wait_ratio(prom, "secret", CANARY, 0.001)
    [echoed] = measure(config, threshold_metric(url), context("secret"))
    [fine] = measure(config, threshold_metric(prom.url), context("secret"))
    [refused] = measure(config, threshold_metric("http://elsewhere:9090"), context("secret"))

    # Plain http: the token is never sent (issue 20), and the error body is not copied.
    assert seen and "Authorization" not in seen[0]
    assert echoed.verdict is Verdict.ERROR and "HTTP 401" in (echoed.message or "")
    assert "rejected" not in (echoed.message or "")
    assert fine.verdict is Verdict.PASS
    for m in (echoed, fine, refused):
        assert TOKEN not in m.model_dump_json()
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(config)


def test_timeout_is_error(
    fake_server: Callable[[Callable[[_Recorder], None]], tuple[str, list[Any]]],
) -> None:
    def slow(handler: _Recorder) -> None:
        time.sleep(3)
        _reply(200, '{"status":"success","data":{"resultType":"scalar","result":[0,"0"]}}')(handler)

    url, _ = fake_server(slow)
    metric = threshold_metric(url)
    metric.prometheus.timeout = "1s"  # type: ignore[union-attr]
    start = time.monotonic()
    [m] = measure(ProviderConfig(allowed_addresses=(url,)), metric, context("any"))
    assert time.monotonic() - start < 2.5
    assert m.verdict is Verdict.ERROR and "timeout" in (m.message or ""), m.message


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (200, "<html>not json</html>", ErrorKind.MALFORMED),
        (200, '{"status":"success","data":{"resultType":"vector"}}', ErrorKind.MALFORMED),
        (
            200,
            '{"status":"success","data":{"resultType":"scalar","result":[0,"x"]}}',
            ErrorKind.MALFORMED,
        ),
        (503, "Service Unavailable", ErrorKind.HTTP_STATUS),
        (302, "", ErrorKind.HTTP_STATUS),
    ],
    ids=["not-json", "no-result", "not-a-number", "503", "redirect-not-followed"],
)
def test_bad_answers_are_errors(
    fake_server: Callable[[Callable[[_Recorder], None]], tuple[str, list[Any]]],
    status: int,
    body: str,
    kind: ErrorKind,
) -> None:
    url, _ = fake_server(_reply(status, body))

    async def run() -> ErrorKind:
        async with PrometheusClient(ProviderConfig(allowed_addresses=(url,))) as provider:
            with pytest.raises(ProviderError) as caught:
                await provider.query(url, "up", 2)
            return caught.value.kind

    assert asyncio.run(run()) is kind
    [m] = measure(ProviderConfig(allowed_addresses=(url,)), threshold_metric(url), context("x"))
    assert m.verdict is Verdict.ERROR


# --- a whole gate: shell measures, core decides -----------------------------------------


def run_gate(
    config: ProviderConfig, metric: Metric, ctx: QueryContext, deadline: float = 30
) -> tuple[GateAction, list[Measurement], str]:
    """Drive one analysis run as the operator will: measure what is due, decide, repeat."""

    async def run() -> tuple[GateAction, list[Measurement], str]:
        started = datetime.now(UTC)
        results: dict[str, MetricResult] = {}
        taken: list[Measurement] = []
        async with Measurer(config) as provider:
            end = time.monotonic() + deadline
            while time.monotonic() < end:
                now = datetime.now(UTC)
                step = await measure_due(
                    provider, [metric], results, started, now, ctx, analysis="step-1"
                )
                results = step.results
                taken += step.measurements
                decision = analysis_state(
                    [metric_state(metric, results.get(metric.name), started, now)]
                )
                if decision.action is not GateAction.WAIT:
                    return decision.action, taken, decision.message
                await asyncio.sleep(0.2)
        raise AssertionError(f"gate undecided after {deadline}s: {taken}")

    return asyncio.run(run())


def test_gate_passes_a_good_canary_after_count_passes(prom: PrometheusServer) -> None:
    wait_ratio(prom, "good", CANARY, 0.001)
    metric = threshold_metric(prom.url, interval="1s", count=3)
    action, taken, message = run_gate(allow(prom), metric, context("good"))
    assert action is GateAction.PROCEED, message
    assert [m.verdict for m in taken] == [Verdict.PASS] * 3
    times = [datetime.fromisoformat(m.time) for m in taken]
    assert all((b - a).total_seconds() >= 0.99 for a, b in itertools.pairwise(times))


def test_gate_aborts_a_bad_canary_at_first_measurement(prom: PrometheusServer) -> None:
    wait_ratio(prom, "bad", CANARY, 0.2)
    metric = threshold_metric(prom.url, interval="1s", count=3)
    action, taken, message = run_gate(allow(prom), metric, context("bad"))
    assert action is GateAction.ABORT
    assert len(taken) == 1 and taken[0].verdict is Verdict.FAIL
    assert "error-ratio" in message and "result < 0.01" in message and "0.2" in message


def test_gate_pauses_when_prometheus_is_down(prom: PrometheusServer) -> None:
    metric = threshold_metric(prom.url, interval="1s", count=3, consecutiveErrorLimit=1)
    prom.stop()
    try:
        action, taken, message = run_gate(allow(prom), metric, context("good"))
    finally:
        prom.start()
    assert action is GateAction.PAUSE
    assert [m.verdict for m in taken] == [Verdict.ERROR] * 2
    assert "Prometheus unreachable" in message
