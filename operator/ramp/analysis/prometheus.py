"""Prometheus provider: instant queries over the HTTP API, judged into a Measurement.

Everything that can go wrong between the operator and Prometheus is an **Error** verdict
with a message saying what (address refused, unreachable, timeout, HTTP status, malformed
answer), so an outage is never mistaken for a bad canary. An answer without usable data
(empty vector, NaN, too few requests) is **Inconclusive**, never a pass. Only an answer
with data reaches the CEL conditions (see :mod:`ramp.analysis.cel`).

Security:

* only addresses on the operator's allow-list (:class:`ProviderConfig`) are queried; any
  other is refused before a connection is made, and redirects are not followed;
* the bearer token goes only into the ``Authorization`` header of requests to allowed
  addresses; it is never logged, never put into a message, and any text that comes back
  from the network is scrubbed of it before it is used in a message;
* substituted query values are escaped (:mod:`ramp.analysis.promql`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import math
import os
import ssl
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

import aiohttp

from ramp.analysis.cel import Result, format_result, judge, missing_data
from ramp.analysis.promql import QueryContext, QueryTemplateError, render
from ramp.api.analysis import Compare, Measurement, Metric, Verdict
from ramp.core.verdicts import format_time

log = logging.getLogger("ramp.analysis.prometheus")

ALLOW_ENV = "RAMP_PROMETHEUS_ALLOW"
"""Environment variable with comma-separated allowed Prometheus base URLs."""

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_address(address: str) -> str:
    """Canonical form of a Prometheus base URL, for allow-list comparison.

    Lower-case scheme and host, explicit port, no trailing slash. ValueError for anything
    that is not a plain ``http(s)://host[:port][/path]`` (credentials, query or fragment
    in the URL are refused).

    >>> normalize_address("HTTP://Prometheus.Monitoring:9090/")
    'http://prometheus.monitoring:9090'
    >>> normalize_address("https://prom.example/sub/")
    'https://prom.example:443/sub'
    """
    parts = urlsplit(address.strip())
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise ValueError(f"{address!r} is not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError(f"{address!r} carries credentials; give the token to the operator")
    if parts.query or parts.fragment:
        raise ValueError(f"{address!r} has a query or fragment")
    if not parts.hostname:
        raise ValueError(f"{address!r} has no host")
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme.lower()]
    except ValueError as error:
        raise ValueError(f"{address!r} has an invalid port") from error
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    return f"{parts.scheme.lower()}://{host}:{port}{parts.path.rstrip('/')}"


@dataclass(frozen=True)
class ProviderConfig:
    """The operator's Prometheus settings: which servers may be queried, with what.

    The token is excluded from ``repr`` so that logging the config cannot leak it.
    """

    allowed_addresses: tuple[str, ...] = ()
    """Base URLs that metrics may name (compared after :func:`normalize_address`)."""
    token: str | None = field(default=None, repr=False)
    """Bearer token sent to every allowed address (from ``--prometheus-token-secret``)."""
    ca_file: str | None = None
    """CA bundle (PEM) to verify https servers; the system store when unset."""
    max_response_bytes: int = 4 * 1024 * 1024
    """Larger answers are an Error (a query that returns too many series)."""

    def __post_init__(self) -> None:
        for address in self.allowed_addresses:
            normalize_address(address)  # fail at startup on a malformed flag
        if self.token is not None and (
            not self.token or any(ch.isspace() or not ch.isprintable() for ch in self.token)
        ):
            # Checked here so that the HTTP client never raises an error quoting it.
            raise ValueError("the Prometheus token is empty or contains whitespace")

    @classmethod
    def from_env_and_args(
        cls,
        allow: Iterable[str] = (),
        *,
        environ: Mapping[str, str] | None = None,
        token: str | None = None,
        ca_file: str | None = None,
    ) -> ProviderConfig:
        """Build the config from ``--prometheus-allow`` values and ``RAMP_PROMETHEUS_ALLOW``.

        Both sources add up (flags first, then the environment's comma-separated list);
        empty entries are ignored and duplicates removed. ``environ`` defaults to
        ``os.environ``. ValueError names a malformed address.
        """
        env = os.environ if environ is None else environ
        entries = [*allow, *env.get(ALLOW_ENV, "").split(",")]
        seen: dict[str, str] = {}
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            try:
                key = normalize_address(entry)
            except ValueError as error:
                raise ValueError(f"invalid Prometheus allow-list entry: {error}") from None
            seen.setdefault(key, entry)
        token = token.strip() if token else None
        return cls(allowed_addresses=tuple(seen.values()), token=token or None, ca_file=ca_file)

    def with_token(self, token: str | None) -> ProviderConfig:
        """The same config with another token (e.g. after the Secret changed)."""
        return replace(self, token=(token or "").strip() or None)

    def refusal(self, address: str) -> str | None:
        """Why ``address`` may not be queried, or None when it is on the allow-list."""
        try:
            wanted = normalize_address(address)
        except ValueError as error:
            return f"Prometheus address refused: {error}"
        allowed = {normalize_address(a) for a in self.allowed_addresses}
        if wanted in allowed:
            return None
        if not allowed:
            hint = "the operator allows no Prometheus address"
        else:
            hint = "allowed: " + ", ".join(self.allowed_addresses)
        return (
            f"Prometheus address {address} is not on the operator's allow-list ({hint}; "
            f"set --prometheus-allow or {ALLOW_ENV}); no request was sent"
        )

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the token replaced."""
        if self.token:
            text = text.replace(self.token, "<redacted>")
        return text


def parse_secret_ref(ref: str) -> tuple[str, str]:
    """Split ``--prometheus-token-secret NAMESPACE/NAME``; ValueError when malformed."""
    namespace, sep, name = ref.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise ValueError(f"expected NAMESPACE/NAME, got {ref!r}")
    return namespace, name


def token_from_secret_data(data: Mapping[str, str] | None, key: str = "token") -> str:
    """The bearer token from a Secret's base64 ``data`` (surrounding whitespace removed).

    The error messages name the key, never a value.
    """
    if not data or key not in data:
        raise ValueError(f"the Secret has no {key!r} key")
    try:
        token = base64.b64decode(data[key], validate=True).decode("utf-8").strip()
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"the Secret's {key!r} key is not base64-encoded UTF-8") from None
    if not token:
        raise ValueError(f"the Secret's {key!r} key is empty")
    return token


class ErrorKind(StrEnum):
    """Why a query gave no usable answer (all of them give an Error verdict)."""

    REFUSED = "Refused"
    """The address is not on the allow-list (no request was sent)."""
    UNREACHABLE = "Unreachable"
    """No connection: DNS, refused, reset, TLS failure."""
    TIMEOUT = "Timeout"
    """No complete answer within the metric's timeout."""
    HTTP_STATUS = "HttpStatus"
    """Prometheus answered with a non-200 status (bad query, auth, overload)."""
    MALFORMED = "Malformed"
    """The answer is not a Prometheus API response we can read."""
    UNSUPPORTED = "Unsupported"
    """A valid answer of a shape a metric cannot use (range vector, string)."""


class ProviderError(Exception):
    """A query that produced no usable answer; ``str()`` is safe to show (no secrets)."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Sample:
    """One value of an instant query's answer."""

    labels: Mapping[str, str]
    value: float
    text: str
    """The value exactly as Prometheus wrote it (``"0.0123"``, ``"NaN"``)."""


@dataclass(frozen=True)
class QueryResult:
    """The answer to an instant query: a scalar (one unlabelled sample) or a vector."""

    result_type: str
    samples: tuple[Sample, ...]

    @property
    def result(self) -> Result:
        """``result`` for CEL: a double for one sample, else a list of doubles."""
        if len(self.samples) == 1:
            return self.samples[0].value
        return [s.value for s in self.samples]

    @property
    def text(self) -> str | None:
        """The value for the status record; None when there is no data."""
        if not self.samples:
            return None
        if len(self.samples) == 1:
            return self.samples[0].text
        return format_result(self.result)


def _parse_value(pair: Any) -> tuple[float, str]:
    if not isinstance(pair, list) or len(pair) != 2 or not isinstance(pair[1], str):
        raise ValueError(f'expected [time, "value"], got {str(pair)[:80]}')
    text = pair[1]
    try:
        return float(text), text
    except ValueError:
        raise ValueError(f"value {text[:40]!r} is not a number") from None


def parse_response(body: Any) -> QueryResult:
    """Read a decoded ``/api/v1/query`` success body; ProviderError when unusable."""
    try:
        if not isinstance(body, dict) or body.get("status") != "success":
            raise ValueError("status is not 'success'")
        data = body["data"]
        result_type = data["resultType"]
        result = data["result"]
        if result_type == "scalar":
            value, text = _parse_value(result)
            return QueryResult("scalar", (Sample({}, value, text),))
        if result_type == "vector":
            if not isinstance(result, list):
                raise ValueError("vector result is not a list")
            samples = []
            for item in result:
                value, text = _parse_value(item["value"])
                labels = item.get("metric", {})
                if not isinstance(labels, dict):
                    raise ValueError("sample labels are not an object")
                samples.append(Sample({str(k): str(v) for k, v in labels.items()}, value, text))
            return QueryResult("vector", tuple(samples))
    except (KeyError, TypeError, ValueError) as error:
        raise ProviderError(
            ErrorKind.MALFORMED, f"malformed answer from Prometheus: {error}"
        ) from None
    if result_type == "matrix":
        raise ProviderError(
            ErrorKind.UNSUPPORTED,
            "the query returned a range vector (matrix); a metric needs an instant vector or "
            "a scalar (wrap the range selector in rate(), avg_over_time(), ...)",
        )
    raise ProviderError(
        ErrorKind.UNSUPPORTED, f"the query returned a {str(result_type)[:20]!r}, not a number"
    )


def _now() -> datetime:
    return datetime.now(UTC)


class PrometheusProvider:
    """Takes measurements of metrics. One per operator; use as an async context manager
    (or call :meth:`close`) so the HTTP session is closed.

    ``clock`` stamps measurements (UTC); tests pass their own.
    """

    def __init__(self, config: ProviderConfig, *, clock: Callable[[], datetime] = _now) -> None:
        self.config = config
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the HTTP session (a new one is opened on the next query)."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def set_config(self, config: ProviderConfig) -> None:
        """Use another config from now on (e.g. a rotated token)."""
        self.config = config

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            ssl_context: ssl.SSLContext | bool = True
            if self.config.ca_file:
                ssl_context = ssl.create_default_context(cafile=self.config.ca_file)
            connector = aiohttp.TCPConnector(ssl=ssl_context, limit=32)
            # trust_env=False: no proxy from the environment; the allow-list is the truth.
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    async def query(self, address: str, query: str, timeout: float) -> QueryResult:
        """Run an instant query; ProviderError (safe message) when there is no usable answer."""
        refusal = self.config.refusal(address)
        if refusal is not None:
            raise ProviderError(ErrorKind.REFUSED, refusal)
        url = address.rstrip("/") + "/api/v1/query"
        headers = {"Accept": "application/json"}
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        params = {"query": query, "timeout": f"{timeout:g}s"}
        redact = self.config.redact
        log.debug("querying %s: %s", address, query)
        try:
            async with asyncio.timeout(timeout):
                async with self._get_session().get(
                    url, params=params, headers=headers, allow_redirects=False
                ) as response:
                    body = await self._read(response)
                    status = response.status
        except TimeoutError:
            raise ProviderError(
                ErrorKind.TIMEOUT,
                f"Prometheus at {address} did not answer within {timeout:g}s (timeout)",
            ) from None
        except ProviderError:
            raise
        except (aiohttp.ClientError, OSError, ssl.SSLError) as error:
            detail = redact(str(error) or type(error).__name__)
            raise ProviderError(
                ErrorKind.UNREACHABLE, f"Prometheus unreachable at {address}: {detail}"
            ) from None
        try:
            decoded = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            decoded = None
        if status != 200:
            raise ProviderError(
                ErrorKind.HTTP_STATUS, self._status_message(address, status, decoded, body)
            )
        if decoded is None:
            raise ProviderError(
                ErrorKind.MALFORMED, f"malformed answer from Prometheus at {address}: not JSON"
            )
        return parse_response(decoded)

    async def _read(self, response: aiohttp.ClientResponse) -> bytes:
        limit = self.config.max_response_bytes
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_chunked(65536):
            size += len(chunk)
            if size > limit:
                raise ProviderError(
                    ErrorKind.MALFORMED,
                    f"Prometheus answer larger than {limit} bytes (does the query return too "
                    "many series?)",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _status_message(self, address: str, status: int, decoded: Any, body: bytes) -> str:
        if isinstance(decoded, dict) and "error" in decoded:
            detail = f"{decoded.get('errorType', 'error')}: {decoded['error']}"
        else:
            detail = body[:200].decode("utf-8", "replace").strip() or "(empty body)"
        if 300 <= status < 400:
            detail = "redirects are not followed (allow the final address instead)"
        message = f"Prometheus at {address} answered HTTP {status}: {detail}"
        return self.config.redact(message)[:600]

    async def measure(
        self, metric: Metric, context: QueryContext, *, analysis: str | None = None
    ) -> Measurement:
        """Measure ``metric`` once and judge it; never raises for a measurement problem.

        ``analysis`` labels the run in the record (e.g. ``step-2``, ``background``).
        """
        try:
            if metric.compare is not None:
                query, value, verdict, message = await self._compare(
                    metric, metric.compare, context
                )
            else:
                query, value, verdict, message = await self._threshold(metric, context)
        except Exception as error:  # the operator must survive any surprise
            trace = "".join(traceback.format_exception(error))
            log.error(
                "unexpected error measuring metric %s: %s", metric.name, self.config.redact(trace)
            )
            query, value = None, None
            verdict = Verdict.ERROR
            message = f"internal error while measuring: {type(error).__name__}: {error}"
        return Measurement(
            metric=metric.name,
            verdict=verdict,
            time=format_time(self._clock()),
            value=None if value is None else self.config.redact(value),
            query=query,
            message=self.config.redact(f"{metric.name}: {message}"),
            revision=context.canary_revision,
            analysis=analysis,
        )

    async def _threshold(
        self, metric: Metric, context: QueryContext
    ) -> tuple[str | None, str | None, Verdict, str]:
        source = metric.prometheus
        assert source is not None
        try:
            query = render(source.query, context)
        except QueryTemplateError as error:
            return None, None, Verdict.ERROR, f"query template: {error}"
        try:
            answer = await self.query(source.address, query, metric.timeout_seconds)
        except ProviderError as error:
            return query, None, Verdict.ERROR, error.message
        judgement = judge(answer.result, metric.success_condition, metric.failure_condition)
        return query, answer.text, judgement.verdict, judgement.message

    async def _compare(
        self, metric: Metric, compare: Compare, context: QueryContext
    ) -> tuple[str | None, str | None, Verdict, str]:
        source = compare.prometheus
        if not context.canary_revision or not context.stable_revision:
            return None, None, Verdict.ERROR, "compare needs both a canary and a stable revision"
        try:
            canary_q = render(source.query, context.with_revision(context.canary_revision))
            stable_q = render(source.query, context.with_revision(context.stable_revision))
            count_q = render(source.count_query, context.with_revision(context.canary_revision))
        except QueryTemplateError as error:
            return None, None, Verdict.ERROR, f"query template: {error}"
        timeout = metric.timeout_seconds
        answers = await asyncio.gather(
            self.query(source.address, canary_q, timeout),
            self.query(source.address, stable_q, timeout),
            self.query(source.address, count_q, timeout),
            return_exceptions=True,
        )
        for answer in answers:
            if isinstance(answer, ProviderError):
                return canary_q, None, Verdict.ERROR, answer.message
            if isinstance(answer, BaseException):
                raise answer
        canary_a, stable_a, count_a = (a for a in answers if isinstance(a, QueryResult))
        try:
            canary = _single(canary_a, "canary ratio")
            stable = _single(stable_a, "stable ratio")
            count = _single(count_a, "canary count")
        except ProviderError as error:
            return canary_q, None, Verdict.ERROR, error.message
        shown = f"canary={_show(canary)} stable={_show(stable)} count={_show(count)}"
        if count is None or math.isnan(count) or count < compare.min_count:
            seen = "no data" if count is None else _show(count)
            return (
                canary_q,
                shown,
                Verdict.INCONCLUSIVE,
                (f"canary count {seen} is below minCount {compare.min_count:g}"),
            )
        for name, value in (("canary", canary), ("stable", stable)):
            reason = "query returned no data" if value is None else missing_data(value)
            if reason is not None:
                return canary_q, shown, Verdict.INCONCLUSIVE, f"{name} ratio: {reason}"
        assert canary is not None and stable is not None
        increase = canary - stable
        if increase > compare.max_increase:
            return (
                canary_q,
                shown,
                Verdict.FAIL,
                (
                    f"canary {_show(canary)} exceeds stable {_show(stable)} by {_show(increase)} "
                    f"> maxIncrease {compare.max_increase:g}"
                ),
            )
        return (
            canary_q,
            shown,
            Verdict.PASS,
            (
                f"canary {_show(canary)} vs stable {_show(stable)}: increase {_show(increase)} "
                f"<= maxIncrease {compare.max_increase:g}"
            ),
        )


def _single(answer: QueryResult, what: str) -> float | None:
    """The one value of a compare query; None for no data; ProviderError for several."""
    if not answer.samples:
        return None
    if len(answer.samples) > 1:
        raise ProviderError(
            ErrorKind.UNSUPPORTED,
            f"the {what} query returned {len(answer.samples)} series; compare queries must "
            "return one value (aggregate with sum(...))",
        )
    return answer.samples[0].value


def _show(value: float | None) -> str:
    return "none" if value is None else format_result(value)
